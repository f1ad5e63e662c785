//! Runs `N` complete purchases (`purchase N`) or `N` times the floor of 17 bare DES block
//! operations (`floor N`), for counting instructions with a load-independent tool:
//!
//! ```text
//! cargo build --release -p epurse --example purchase_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/purchase_cost purchase 2000
//! ```
//!
//! The difference between two counts (e.g. 2000 and 1000) divided by 1000 is the cost of one.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use std::hint::black_box;

use apdu_codec::parse_command;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
use epurse::card::{Account, Entropy, Session, key_function, process};
use epurse::crypto::TdesKey;
use epurse::danger;
use epurse::pboc::{self, DateTime, InitPurchaseResponse, PurseKind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("purchase", String::as_str);
    let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    if mode == "floor" {
        let k16: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        let tdes = des::TdesEde2::new(&Array::from(k16));
        let single = des::Des::new(&Array::from([
            0x13u8, 0x34, 0x57, 0x79, 0x9B, 0xBC, 0xDF, 0xF1,
        ]));
        let mut block = Array::from([0u8; 8]);
        for _ in 0..n {
            for _ in 0..2 {
                tdes.encrypt_block(black_box(&mut block));
            }
            for _ in 0..11 {
                single.encrypt_block(black_box(&mut block));
            }
        }
        println!("{:02X?}", &block[..]);
        return;
    }
    let mut state = danger::test_purse_state().unwrap();
    danger::force_account(
        &mut state,
        PurseKind::Ep,
        Account {
            balance: 1_000_000,
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
    for i in 0..n {
        let init = [
            0x80, 0x50, 0x01, 0x02, 0x0B, 0x01, 0, 0, 0, 1, 0, 0, 0, 0, 0x07, 0x77, 0x0F,
        ];
        let mut e = [0u8; 16];
        e[..4].copy_from_slice(&i.to_be_bytes());
        let out = process(
            &state,
            &mut session,
            &parse_command(&init).unwrap(),
            &Entropy(e),
        );
        let rsp = InitPurchaseResponse::parse(&out.reply.view()).unwrap();
        let serial = i.to_be_bytes();
        let ses = pboc::purchase_session_key(&dpk, &rsp.random, rsp.offline_atc, &serial);
        let mac1 = pboc::purchase_mac1(&ses, 1, pboc::TYPE_EP_PURCHASE, &terminal, &when);
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
            &Entropy(e),
        );
        state = out.new_state.unwrap();
        let (_, mac2) = pboc::parse_pair(&out.reply.view()).unwrap();
        assert_eq!(pboc::purchase_mac2(&ses, 1), mac2);
    }
    println!("balance {}", state.account(PurseKind::Ep).balance);
}
