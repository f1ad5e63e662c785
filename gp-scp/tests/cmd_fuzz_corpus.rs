//! Replays the committed corpus and any crash files of the card-management fuzz targets
//! (`fuzz/corpus/gp_cmd_*`, `fuzz/artifacts/gp_cmd_*`) through the same checking functions the
//! targets run (`gp_scp::cmd::fuzzing`), so CI covers them without a nightly toolchain.
#![allow(clippy::unwrap_used, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for kind in ["corpus", "artifacts"] {
        let Ok(entries) = fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            let data = fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn gp_cmd_card_corpus() {
    assert!(replay("gp_cmd_card", gp_scp::cmd::fuzzing::gp_cmd_card) >= 14);
}

#[test]
fn gp_cmd_responses_corpus() {
    assert!(replay("gp_cmd_responses", gp_scp::cmd::fuzzing::gp_cmd_responses) >= 13);
}

#[test]
fn gp_cmd_sequences_corpus() {
    assert!(replay("gp_cmd_sequences", gp_scp::cmd::fuzzing::gp_cmd_sequences) >= 3);
}

/// The checking functions on random inputs (a cheap stand-in for a fuzzing run in CI).
#[test]
fn checks_hold_on_random_inputs() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for _ in 0..3000 {
        let len = usize::try_from(next() % 120).unwrap();
        let data: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        gp_scp::cmd::fuzzing::gp_cmd_card(&data);
        gp_scp::cmd::fuzzing::gp_cmd_responses(&data);
        gp_scp::cmd::fuzzing::gp_cmd_sequences(&data);
    }
}
