//! Replays the committed fuzz corpus and any crash artifacts (`../fuzz/corpus/<target>/`,
//! `../fuzz/artifacts/<target>/`) through the same checking functions the fuzz targets run.
//! `cargo test -p gp-scp --test fuzz_corpus -- --ignored write_seeds` regenerates the seeds.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::fs;
use std::path::PathBuf;

use apdu_codec::Command;
use gp_scp::SecurityLevel;
use gp_scp::fuzzing::{self, Pair, Variant};

const SCP03: Variant = Variant::Scp03 {
    i: 0x70,
    key_len: 16,
};
const SCP02: Variant = Variant::Scp02(0x55);

type Check = fn(&[u8]);

fn targets() -> Vec<(&'static str, Check)> {
    vec![
        ("scp03_card_unwrap", |d| fuzzing::card_unwrap(SCP03, d)),
        ("scp02_card_unwrap", |d| fuzzing::card_unwrap(SCP02, d)),
        ("scp11_card_unwrap", |d| {
            fuzzing::card_unwrap(Variant::Scp11b, d)
        }),
        (
            "initialize_update_response",
            fuzzing::initialize_update_response,
        ),
        ("put_key_data", fuzzing::put_key_data),
        (
            "scp11_internal_authenticate",
            fuzzing::internal_authenticate_request,
        ),
    ]
}

fn fuzz_dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target)
}

#[test]
fn replay_corpus_and_artifacts() {
    for (target, check) in targets() {
        let mut seeds = 0;
        for kind in ["corpus", "artifacts"] {
            let Ok(entries) = fs::read_dir(fuzz_dir(kind, target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_file() {
                    check(&fs::read(&path).unwrap());
                    if kind == "corpus" {
                        seeds += 1;
                    }
                }
            }
        }
        assert!(seeds > 0, "no committed corpus for {target}");
    }
}

fn levels(variant: Variant) -> Vec<SecurityLevel> {
    match variant {
        Variant::Scp02(_) => SecurityLevel::SCP02_LEVELS.to_vec(),
        _ => SecurityLevel::SCP03_LEVELS.to_vec(),
    }
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir("corpus", target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), data).unwrap();
}

/// Seeds that reach deep: correctly wrapped commands for the session each selector opens.
#[test]
#[ignore = "writes the seed corpus"]
fn write_seeds() {
    for (target, variant) in [
        ("scp03_card_unwrap", SCP03),
        ("scp02_card_unwrap", SCP02),
        ("scp11_card_unwrap", Variant::Scp11b),
    ] {
        let ls = levels(variant);
        for sel in 0u8..(ls.len() as u8) {
            let level = ls[usize::from(sel) % ls.len()];
            let mut pair = Pair::open(variant, level, u64::from(sel)).unwrap();
            for (n, len) in [0usize, 5, 16, 200].into_iter().enumerate() {
                let cmd = Command::new(0x80, 0xF2, 0x40, 0x02)
                    .with_data(vec![0x4F; len])
                    .with_le(256);
                let mut bytes = vec![sel];
                bytes.extend_from_slice(&pair.host.wrap(&cmd).unwrap().to_vec().unwrap());
                // Each seed is the first command of a fresh session: re-open for the next.
                pair = Pair::open(variant, level, u64::from(sel)).unwrap();
                write(
                    target,
                    &format!("seed-level{:02x}-len{len}-{n}", level.to_byte()),
                    &bytes,
                );
            }
        }
    }
    let t = include_str!("data/scp03.toml")
        .parse::<toml::Table>()
        .unwrap();
    for (n, case) in t["session"].as_array().unwrap().iter().enumerate() {
        let r = case["trace"].as_array().unwrap()[1].as_str().unwrap();
        let hex: String = r[2..].chars().filter(|c| c.is_ascii_hexdigit()).collect();
        let bytes = hex::decode(hex).unwrap();
        write(
            "initialize_update_response",
            &format!("seed-scp03-{n}"),
            &bytes[..bytes.len() - 2],
        );
    }
    let t = include_str!("data/scp02.toml")
        .parse::<toml::Table>()
        .unwrap();
    for (n, case) in t["session"].as_array().unwrap().iter().enumerate() {
        let r = case["trace"].as_array().unwrap()[1].as_str().unwrap();
        let hex: String = r[2..]
            .split('#')
            .next()
            .unwrap()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let bytes = hex::decode(hex).unwrap();
        write(
            "initialize_update_response",
            &format!("seed-scp02-{n}"),
            &bytes[..28],
        );
    }
    use gp_scp::keys::{KeyType, SecretKey};
    use gp_scp::put_key::encode_put_key_data;
    let k = SecretKey::new(&[0x41; 16]);
    write(
        "put_key_data",
        "seed-des",
        &encode_put_key_data(
            0x21,
            &[(KeyType::Des, &k), (KeyType::Des, &k)],
            &[0x40; 16],
            KeyType::Des,
        )
        .unwrap(),
    );
    let k32 = SecretKey::new(&[0x42; 32]);
    write(
        "put_key_data",
        "seed-aes",
        &encode_put_key_data(
            0x31,
            &[(KeyType::Aes, &k), (KeyType::Aes, &k32)],
            &[0x40; 16],
            KeyType::Aes,
        )
        .unwrap(),
    );
    let mut rng = fuzzing::DangerSeededRng::new(1);
    let card =
        gp_scp::scp11::card::Scp11CardKeys::from_scalar(1, 0x13, &[0x5A; 32], vec![]).unwrap();
    let host = gp_scp::scp11::host::Scp11bHost::new(
        gp_scp::scp11::host::Scp11HostConfig {
            key_version: 1,
            key_id: 0x13,
            card_key: card.public_key(),
        },
        &[card.public_key()],
        &mut rng,
    )
    .unwrap();
    write(
        "scp11_internal_authenticate",
        "seed-valid",
        &host.internal_authenticate().data,
    );
}
