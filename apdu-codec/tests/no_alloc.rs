//! Parsing allocates nothing: a counting global allocator (`stats_alloc`) watches the bench
//! corpora (10,000 command APDUs, 10,000 GlobalPlatform-style TLV structures) being parsed
//! and walked, responses parsed, and every error path taken.
#![allow(clippy::unwrap_used)]

use std::alloc::System;

use apdu_codec::tlv::{self, Limits, Tlv, TlvIter};
use apdu_codec::{StatusWord, parse_command, parse_response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "../benches/corpus/mod.rs"]
mod corpus;

fn visit(tlv: Tlv<'_>) -> usize {
    let mut nodes = 1;
    for child in tlv.children().flatten() {
        nodes += visit(child);
    }
    nodes
}

/// One test only: the allocator is global, and a second test thread would allocate (its
/// name, its output capture) while a region is being measured.
#[test]
fn parsing_allocates_nothing() {
    let apdus = corpus::commands();
    let structures = corpus::tlv_structures();
    let responses: Vec<Vec<u8>> = structures
        .iter()
        .map(|s| {
            let mut r = s.clone();
            r.extend_from_slice(&[0x90, 0x00]);
            r
        })
        .collect();
    let malformed: Vec<Vec<u8>> = apdus
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.push(0xFF);
            a
        })
        .collect();

    let expected_errors = malformed
        .iter()
        .filter(|a| parse_command(a).is_err())
        .count();

    let region = Region::new(GLOBAL);
    let mut parsed = 0usize;
    let mut nodes = 0usize;
    let mut errors = 0usize;
    for apdu in &apdus {
        let cmd = parse_command(apdu).unwrap();
        parsed += cmd.data().len() + usize::from(cmd.cla().logical_channel());
    }
    for apdu in &malformed {
        // Trailing bytes or a broken length field: the error path allocates nothing either.
        if let Err(error) = parse_command(apdu) {
            errors += 1;
            let _ = StatusWord::from(&error);
        }
    }
    for structure in &structures {
        for tlv in TlvIter::new(structure) {
            nodes += visit(tlv.unwrap());
        }
        nodes -= tlv::validate(structure, Limits::default()).unwrap();
    }
    for response in &responses {
        let rsp = parse_response(response).unwrap();
        parsed += rsp.data().len() + usize::from(rsp.status().is_success());
        // Truncations hit the TLV error paths.
        let _ = tlv::parse_single(rsp.data().get(..rsp.data().len() / 2).unwrap());
    }
    let stats = region.change();

    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
    assert_eq!(stats.bytes_allocated, 0, "{stats:?}");
    // The work was really done.
    assert!(parsed > 1_000_000, "{parsed}");
    assert_eq!(nodes, 0, "walk and validate count the same nodes");
    assert_eq!(errors, expected_errors);
    assert!(errors > apdus.len() / 2, "{errors}");
}
