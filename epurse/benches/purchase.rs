//! A complete purchase in process: INITIALIZE FOR PURCHASE -> SAM MAC1 -> DEBIT FOR PURCHASE
//! -> SAM MAC2 check, against the floor: the same 17 DES block operations done bare with the
//! `des` crate (2 two-key 3DES blocks = 6 DES, plus 11 single-DES blocks).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use std::hint::black_box;

use apdu_codec::parse_command;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
use epurse::card::{Entropy, PurseState, Session, key_function, process};
use epurse::crypto::TdesKey;
use epurse::danger;
use epurse::pboc::{self, DateTime, InitPurchaseResponse, PurseKind};

const WHEN: DateTime = DateTime {
    date: [0x20, 0x25, 0x06, 0x15],
    time: [0x10, 0x20, 0x30],
};
const TERMINAL: [u8; 6] = [0, 0, 0, 0, 0x07, 0x77];

struct Sam {
    dpk: TdesKey,
    serial: u32,
}

fn purchase(state: &mut PurseState, session: &mut Session, sam: &mut Sam, n: u64) {
    // INITIALIZE FOR PURCHASE 80 50 01 02 0B key index, amount 1, terminal id.
    let mut init = [
        0x80, 0x50, 0x01, 0x02, 0x0B, 0x01, 0, 0, 0, 1, 0, 0, 0, 0, 0x07, 0x77, 0x0F,
    ];
    init[9] = 1;
    let cmd = parse_command(&init).unwrap();
    let mut e = [0u8; 16];
    e[..8].copy_from_slice(&n.to_be_bytes());
    let out = process(state, session, &cmd, &Entropy(e));
    let rsp = InitPurchaseResponse::parse(&out.reply.view()).unwrap();
    // SAM: MAC1 (the per-card DPK was diversified once and is kept, as a SAM caches it).
    sam.serial = sam.serial.wrapping_add(1);
    let serial = sam.serial.to_be_bytes();
    let ses = pboc::purchase_session_key(&sam.dpk, &rsp.random, rsp.offline_atc, &serial);
    let mac1 = pboc::purchase_mac1(&ses, 1, pboc::TYPE_EP_PURCHASE, &TERMINAL, &WHEN);
    // DEBIT FOR PURCHASE 80 54 01 00 0F serial date time MAC1 08.
    let mut debit = [0u8; 21];
    debit[..5].copy_from_slice(&[0x80, 0x54, 0x01, 0x00, 0x0F]);
    debit[5..9].copy_from_slice(&serial);
    debit[9..13].copy_from_slice(&WHEN.date);
    debit[13..16].copy_from_slice(&WHEN.time);
    debit[16..20].copy_from_slice(&mac1);
    debit[20] = 0x08;
    let cmd = parse_command(&debit).unwrap();
    let out = process(state, session, &cmd, &Entropy(e));
    // Commit (the in-memory runtime's atomic swap).
    *state = out.new_state.unwrap();
    let (_, mac2) = pboc::parse_pair(&out.reply.view()).unwrap();
    // SAM: CREDIT SAM FOR PURCHASE.
    assert_eq!(pboc::purchase_mac2(&ses, 1), mac2);
}

fn bench(c: &mut Criterion) {
    let base = danger::test_purse_state().unwrap();
    let dpk = base.key(key_function::PURCHASE, 1).unwrap().key.clone();
    let mut group = c.benchmark_group("epurse");
    group.throughput(Throughput::Elements(1));

    group.bench_function("purchase_complete", |b| {
        let mut state = base.clone();
        danger::force_account(
            &mut state,
            PurseKind::Ep,
            epurse::card::Account {
                balance: 1_000_000,
                online_atc: 0,
                offline_atc: 0,
            },
        );
        let fresh = state.clone();
        let mut session = Session::new();
        let sel = [
            0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0, 0, 0x03, 0x33, 1, 1, 1,
        ];
        let _ = process(
            &state,
            &mut session,
            &parse_command(&sel).unwrap(),
            &Entropy::default(),
        );
        let mut sam = Sam {
            dpk: TdesKey::new(&dpk),
            serial: 0,
        };
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            if state.account(PurseKind::Ep).offline_atc == 0xFFFE {
                state = fresh.clone();
            }
            purchase(&mut state, &mut session, &mut sam, n);
        });
    });

    group.bench_function("floor_17_des_blocks", |b| {
        let k16: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let tdes = des::TdesEde2::new(&Array::from(k16));
        let single = des::Des::new(&Array::from([
            0x13u8, 0x34, 0x57, 0x79, 0x9B, 0xBC, 0xDF, 0xF1,
        ]));
        let mut block = Array::from([0u8; 8]);
        b.iter(|| {
            for _ in 0..2 {
                tdes.encrypt_block(black_box(&mut block));
            }
            for _ in 0..11 {
                single.encrypt_block(black_box(&mut block));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
