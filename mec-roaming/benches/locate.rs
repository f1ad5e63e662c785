//! Home location over 100,000 partner prefixes.
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::hint::black_box;

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::{CountryCode, E164, PartnerConfig, Registry, RegistryConfig, SeededRng};
use rand_core::Rng;

/// 40 country codes x 5 partners x 500 local prefixes of 3 to 6 digits = 100,000 prefixes.
pub fn build(rng: &mut SeededRng) -> (Registry, Vec<E164>) {
    let ccs = [
        "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44",
        "45", "46", "47", "48", "49", "51", "52", "55", "61", "62", "63", "64", "65", "66", "81",
        "82", "84", "86", "90", "91", "351", "353", "358", "372", "420",
    ];
    let key = PrivateKey::generate(rng).public_key_pem().unwrap();
    let mut partners = Vec::new();
    let mut used = std::collections::HashSet::new();
    for cc in ccs {
        for p in 0..5 {
            let mut prefixes = Vec::new();
            while prefixes.len() < 500 {
                let len = 3 + (rng.next_u32() % 4) as usize;
                let s: String = (0..len)
                    .map(|_| char::from(b'0' + (rng.next_u32() % 10) as u8))
                    .collect();
                if used.insert(format!("{cc}/{s}")) {
                    prefixes.push(s);
                }
            }
            partners.push(PartnerConfig {
                name: format!("{cc}-{p}"),
                url: "https://p.invalid".into(),
                country: "XX".into(),
                country_code: CountryCode::parse(cc).unwrap(),
                local_prefixes: prefixes,
                priority: 100,
                verifying_key: key.clone(),
                encryption_key: None,
                user_url: None,
            });
        }
    }
    let reg = Registry::from_config(RegistryConfig {
        serial: 1,
        partners,
    })
    .unwrap();
    // Query numbers: 12-digit E.164 numbers, two thirds under a registered country code.
    let mut numbers = Vec::with_capacity(4096);
    for _ in 0..4096 {
        let mut d: Vec<u8> = if rng.next_u32().is_multiple_of(3) {
            Vec::new()
        } else {
            ccs[(rng.next_u32() as usize) % ccs.len()]
                .bytes()
                .map(|b| b - b'0')
                .collect()
        };
        while d.len() < 12 {
            d.push((rng.next_u32() % 10) as u8);
        }
        numbers.push(E164::from_digits(&d).unwrap());
    }
    (reg, numbers)
}

fn bench(c: &mut Criterion) {
    let mut rng = SeededRng::from_u64(2026);
    let (reg, numbers) = build(&mut rng);
    let hits = numbers
        .iter()
        .filter(|n| reg.longest_match(n).is_some())
        .count();
    eprintln!(
        "registry: {} prefixes, index {} bytes = {:.1} bytes/prefix; {} of {} queries matched",
        reg.prefix_count(),
        reg.index_memory_bytes(),
        reg.index_memory_bytes() as f64 / reg.prefix_count() as f64,
        hits,
        numbers.len()
    );
    // On-CPU rate (leaves out time spent waiting for a CPU on a loaded machine).
    let origin = std::time::Instant::now();
    let t = common::cpu_ns(origin);
    let mut found = 0usize;
    for _ in 0..500 {
        for n in &numbers {
            found += usize::from(reg.longest_match(black_box(n)).is_some());
        }
    }
    let ns = (common::cpu_ns(origin) - t) as f64;
    eprintln!(
        "longest_match on-CPU: {:.1} ns per lookup, {:.1} M lookups/s ({found})",
        ns / (500.0 * numbers.len() as f64),
        500.0 * numbers.len() as f64 / ns * 1e3
    );

    // Baseline from /work/shared/PERFORMANCE.md: a HashMap of prefix strings probed from the
    // longest length down, measured side by side.
    let mut naive: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for (i, p) in reg.partners().enumerate() {
        for prefix in p.prefixes() {
            naive.insert(
                prefix.iter().map(|d| char::from(b'0' + d)).collect(),
                i as u32,
            );
        }
    }
    let texts: Vec<String> = numbers
        .iter()
        .map(|n| n.to_string()[1..].to_owned())
        .collect();
    let naive_hits = texts
        .iter()
        .filter(|t| (1..=t.len()).rev().any(|l| naive.contains_key(&t[..l])))
        .count();
    assert_eq!(naive_hits, hits, "baseline and trie agree");

    let mut g = c.benchmark_group("locate_100k_prefixes");
    g.throughput(Throughput::Elements(numbers.len() as u64));
    g.bench_function("longest_match", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for n in &numbers {
                if reg.longest_match(black_box(n)).is_some() {
                    found += 1;
                }
            }
            black_box(found)
        });
    });
    g.bench_function("naive_hashmap_baseline", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for t in &texts {
                let t = black_box(t.as_str());
                if (1..=t.len()).rev().any(|l| naive.contains_key(&t[..l])) {
                    found += 1;
                }
            }
            black_box(found)
        });
    });
    g.bench_function("candidates", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for n in &numbers {
                total += reg.candidates(black_box(n)).len();
            }
            black_box(total)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
