//! Card throughput: APDUs per second through the virtual card.
//!
//! - `get_status_scp03_33`: GET STATUS (ISD, tagged) under SCP03 level 33 on an in-memory card;
//!   each iteration is the whole round trip (host wrap, card unwrap + GET STATUS + wrap, host
//!   unwrap), as a host sees it.
//! - `put_key_disk`: PUT KEY (replace a three-key AES set) under SCP03 level 33 on a card whose
//!   store is a `DiskStore` in a temporary directory: every iteration commits one journal
//!   record with `fsync`.
//!
//! `cargo bench -p virtual-se --bench card -- --measurement-time 3 --warm-up-time 1`
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::hint::black_box;

use apdu_codec::{Command, parse_response};
use chacha20::ChaCha20Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gp_scp::keys::{KeySet, KeyType, SecretKey, danger_test_keys::K40};
use gp_scp::scp03::host::Scp03HostConfig;
use gp_scp::{HostProtocol, HostSession, HostStep, SecurityLevel};
use rand_core::SeedableRng;
use virtual_se::applet::Packages;
use virtual_se::card::Card;
use virtual_se::profile::Profile;
use virtual_se::store::{DiskStore, MemoryStore, Store};

fn open<S: Store>(card: &mut Card<S>, keys: KeySet) -> HostSession {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let cfg = Scp03HostConfig {
        level: SecurityLevel::ALL,
        ..Scp03HostConfig::default()
    };
    let mut session = HostSession::new(keys, HostProtocol::Scp03(cfg), &mut rng).unwrap();
    let mut step = HostStep::Send(session.begin().unwrap());
    while let HostStep::Send(cmd) = step {
        let raw = card.transmit(&cmd.to_vec().unwrap());
        step = session.process(&parse_response(&raw).unwrap()).unwrap();
    }
    session
}

fn exchange<S: Store>(card: &mut Card<S>, session: &mut HostSession, cmd: &Command) -> u16 {
    let wrapped = session.wrap(cmd).unwrap().to_vec().unwrap();
    let raw = card.transmit(&wrapped);
    let view = parse_response(&raw).unwrap();
    session.unwrap(&view).unwrap().view().status().to_u16()
}

fn get_status(c: &mut Criterion) {
    let profile = Profile::default_profile().unwrap();
    let mut card = Card::open(MemoryStore::new(), &profile, Packages::builtin(), [1; 32]).unwrap();
    card.power_on();
    let mut session = open(&mut card, KeySet::single(0xFF, KeyType::Aes, &K40).unwrap());
    let cmd = Command::new(0x80, 0xF2, 0x80, 0x02)
        .with_data(vec![0x4F, 0x00])
        .with_le(256);
    let mut g = c.benchmark_group("virtual-se card");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_status_scp03_33 (memory store)", |b| {
        b.iter(|| assert_eq!(black_box(exchange(&mut card, &mut session, &cmd)), 0x9000));
    });
    g.finish();
}

fn put_key_disk(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(dir.path()).unwrap();
    let profile = Profile::default_profile().unwrap();
    let mut card = Card::open(store, &profile, Packages::builtin(), [1; 32]).unwrap();
    card.power_on();
    let mut session = open(&mut card, KeySet::single(0xFF, KeyType::Aes, &K40).unwrap());
    let dek = session.dek().unwrap().as_bytes().to_vec();
    let key = SecretKey::new(&K40);
    let keys = [
        (KeyType::Aes, &key),
        (KeyType::Aes, &key),
        (KeyType::Aes, &key),
    ];
    // Add version 01 once, then alternate 01 -> 02 -> 01 ... (replace).
    let add = gp_scp::put_key::encode_put_key_data(0x01, &keys, &dek, KeyType::Aes).unwrap();
    assert_eq!(
        exchange(
            &mut card,
            &mut session,
            &Command::new(0x80, 0xD8, 0x00, 0x81).with_data(add)
        ),
        0x9000
    );
    let to2 = Command::new(0x80, 0xD8, 0x01, 0x81)
        .with_data(gp_scp::put_key::encode_put_key_data(0x02, &keys, &dek, KeyType::Aes).unwrap());
    let to1 = Command::new(0x80, 0xD8, 0x02, 0x81)
        .with_data(gp_scp::put_key::encode_put_key_data(0x01, &keys, &dek, KeyType::Aes).unwrap());
    let mut current = 1u8;
    let mut g = c.benchmark_group("virtual-se card");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("put_key_scp03_33 (disk store, fsync)", |b| {
        b.iter(|| {
            let cmd = if current == 1 { &to2 } else { &to1 };
            assert_eq!(exchange(&mut card, &mut session, cmd), 0x9000);
            current = 3 - current;
        });
    });
    g.finish();
}

criterion_group!(benches, get_status, put_key_disk);
criterion_main!(benches);
