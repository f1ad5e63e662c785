//! The card side of a purchase allocates nothing: INITIALIZE FOR PURCHASE and DEBIT FOR
//! PURCHASE are processed and committed under a counting global allocator.
#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::System;

use apdu_codec::parse_command;
use epurse::card::{Entropy, Session, key_function, process};
use epurse::crypto::TdesKey;
use epurse::danger;
use epurse::pboc::{self, DateTime, InitPurchaseResponse, PurseKind};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn purchase_path_does_not_allocate() {
    let mut state = danger::test_purse_state().unwrap();
    danger::force_account(
        &mut state,
        PurseKind::Ep,
        epurse::card::Account {
            balance: 10_000,
            online_atc: 0,
            offline_atc: 0,
        },
    );
    let dpk = TdesKey::new(&state.key(key_function::PURCHASE, 1).unwrap().key);
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
    let when = DateTime {
        date: [0x20, 0x25, 0x06, 0x15],
        time: [0x10, 0x20, 0x30],
    };
    let terminal = [0, 0, 0, 0, 0x07, 0x77];
    for round in 0..3u8 {
        let region = Region::new(GLOBAL);
        let init = [
            0x80, 0x50, 0x01, 0x02, 0x0B, 0x01, 0, 0, 0, 5, 0, 0, 0, 0, 0x07, 0x77, 0x0F,
        ];
        let out = process(
            &state,
            &mut session,
            &parse_command(&init).unwrap(),
            &Entropy([round; 16]),
        );
        let rsp = InitPurchaseResponse::parse(&out.reply.view()).unwrap();
        let serial = [0, 0, 0, round];
        let ses = pboc::purchase_session_key(&dpk, &rsp.random, rsp.offline_atc, &serial);
        let mac1 = pboc::purchase_mac1(&ses, 5, pboc::TYPE_EP_PURCHASE, &terminal, &when);
        let mut debit = [0u8; 21];
        debit[..5].copy_from_slice(&[0x80, 0x54, 0x01, 0x00, 0x0F]);
        debit[5..9].copy_from_slice(&serial);
        debit[9..13].copy_from_slice(&when.date);
        debit[13..16].copy_from_slice(&when.time);
        debit[16..20].copy_from_slice(&mac1);
        debit[20] = 0x08;
        let out = process(
            &state,
            &mut session,
            &parse_command(&debit).unwrap(),
            &Entropy([round; 16]),
        );
        state = out.new_state.unwrap();
        let (_, mac2) = pboc::parse_pair(&out.reply.view()).unwrap();
        assert_eq!(mac2, pboc::purchase_mac2(&ses, 5));
        let stats = region.change();
        assert_eq!(
            stats.allocations + stats.reallocations,
            0,
            "round {round}: {stats:?}"
        );
    }
    assert_eq!(state.account(PurseKind::Ep).balance, 9_985);
}
