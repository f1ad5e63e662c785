//! Parsing benchmark: our parsers against `iso7816` 0.2 (command APDUs) and `iso7816-tlv` 0.4
//! (BER-TLV), side by side in one run over the same fixed corpora (see `corpus.rs`).
//!
//! ```text
//! cargo bench -p apdu-codec --bench parse
//! ```
//!
//! Each measured iteration parses the whole corpus of 10,000 items; for TLV, every node of
//! every structure is visited (the walk descends into every constructed object).

use std::hint::black_box;
use std::time::Duration;

use apdu_codec::parse_command;
use apdu_codec::tlv::{Tlv, TlvIter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod corpus;

/// Our APDU parse: the fields a card dispatcher reads.
fn parse_ours(apdus: &[Vec<u8>]) -> usize {
    let mut acc = 0usize;
    for apdu in apdus {
        if let Ok(cmd) = parse_command(apdu) {
            acc = acc
                .wrapping_add(cmd.data().len())
                .wrapping_add(cmd.le().unwrap_or(0))
                .wrapping_add(usize::from(cmd.ins()));
        }
    }
    acc
}

/// The same with `iso7816::command::CommandView::try_from`.
fn parse_iso7816(apdus: &[Vec<u8>]) -> usize {
    let mut acc = 0usize;
    for apdu in apdus {
        if let Ok(cmd) = iso7816::command::CommandView::try_from(apdu.as_slice()) {
            acc = acc
                .wrapping_add(cmd.data().len())
                .wrapping_add(cmd.expected())
                .wrapping_add(usize::from(u8::from(cmd.instruction())));
        }
    }
    acc
}

/// Visit a node and its whole subtree: count nodes and primitive value bytes.
fn visit_ours(tlv: Tlv<'_>) -> usize {
    if tlv.is_constructed() {
        let mut acc = 1;
        for child in tlv.children().flatten() {
            acc += visit_ours(child);
        }
        acc
    } else {
        1 + tlv.value().len()
    }
}

fn walk_ours(structures: &[Vec<u8>]) -> usize {
    let mut acc = 0usize;
    for bytes in structures {
        for tlv in TlvIter::new(bytes).flatten() {
            acc += visit_ours(tlv);
        }
    }
    acc
}

fn visit_iso7816_tlv(tlv: &iso7816_tlv::ber::Tlv) -> usize {
    match tlv.value() {
        iso7816_tlv::ber::Value::Primitive(value) => 1 + value.len(),
        iso7816_tlv::ber::Value::Constructed(children) => {
            1 + children.iter().map(visit_iso7816_tlv).sum::<usize>()
        }
    }
}

fn walk_iso7816_tlv(structures: &[Vec<u8>]) -> usize {
    let mut acc = 0usize;
    for bytes in structures {
        for tlv in iso7816_tlv::ber::Tlv::parse_all(bytes) {
            acc += visit_iso7816_tlv(&tlv);
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let apdus = corpus::commands();
    let structures = corpus::tlv_structures();
    // Both sides must accept the whole corpus and agree, or the comparison means nothing.
    assert_eq!(parse_ours(&apdus), parse_iso7816(&apdus));
    assert!(apdus.iter().all(|a| parse_command(a).is_ok()));
    assert!(
        apdus
            .iter()
            .all(|a| iso7816::command::CommandView::try_from(a.as_slice()).is_ok())
    );
    assert_eq!(walk_ours(&structures), walk_iso7816_tlv(&structures));

    let mut group = c.benchmark_group("apdu_parse_10k");
    group.throughput(Throughput::Elements(apdus.len() as u64));
    group.bench_function("apdu-codec", |b| b.iter(|| parse_ours(black_box(&apdus))));
    group.bench_function("iso7816", |b| b.iter(|| parse_iso7816(black_box(&apdus))));
    group.finish();

    let mut group = c.benchmark_group("tlv_walk_10k");
    group.throughput(Throughput::Elements(structures.len() as u64));
    group.bench_function("apdu-codec", |b| {
        b.iter(|| walk_ours(black_box(&structures)))
    });
    group.bench_function("iso7816-tlv", |b| {
        b.iter(|| walk_iso7816_tlv(black_box(&structures)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
