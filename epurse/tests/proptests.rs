//! Property tests: long random sequences of loads, purchases, lost responses and power cuts at
//! every persistent write keep money exactly conserved, every completed transaction provable
//! and nothing debited twice; arbitrary input never panics.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod common;

use apdu_codec::{StatusWord, parse_command};
use common::*;
use epurse::card::{Entropy, PurseState, Session, process};
use epurse::danger;
use epurse::pboc::{self, InitializeData, PurseKind};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Op {
    Load { ed: bool, amount: u32, fate: u8 },
    Purchase { ed: bool, amount: u32, fate: u8 },
    PowerCut,
    VerifyPin,
}

fn fate(f: u8) -> Fate {
    match f % 4 {
        0 | 1 => Fate::Normal,
        2 => Fate::TearBeforeCommit,
        _ => Fate::LoseResponse,
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 1u32..60_000, any::<u8>()).prop_map(|(ed, amount, fate)| Op::Load { ed, amount, fate }),
        6 => (any::<bool>(), 1u32..20_000, any::<u8>()).prop_map(|(ed, amount, fate)| Op::Purchase { ed, amount, fate }),
        1 => Just(Op::PowerCut),
        2 => Just(Op::VerifyPin),
    ]
}

/// What the terminals and the issuer know: completed transactions.
#[derive(Default)]
struct Ledger {
    loaded: [i64; 2],
    spent: [i64; 2],
    /// (type, ATC) of every completed transaction, in order.
    completed: Vec<(u8, u16)>,
}

fn idx(kind: PurseKind) -> usize {
    match kind {
        PurseKind::Ed => 0,
        PurseKind::Ep => 1,
    }
}

fn run_load(card: &mut Card, ledger: &mut Ledger, kind: PurseKind, amount: u32, f: Fate) {
    let req = InitializeData {
        key_index: 1,
        amount,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(kind));
    let Ok(rsp) = pboc::InitLoadResponse::parse(&r.view()) else {
        return;
    };
    let mut auth = authority()
        .begin_load(&danger::TEST_ASN, kind, &req, &rsp)
        .unwrap();
    match card.send_with(&auth.command(&WHEN), f) {
        Some(r) => {
            if auth.verify_tac(&r.view()).is_ok() {
                ledger.loaded[idx(kind)] += i64::from(amount);
                ledger.completed.push((auth.tx_type(), auth.online_atc()));
            } else {
                assert_ne!(
                    r.status(),
                    StatusWord::SUCCESS,
                    "a 9000 CREDIT with a bad TAC"
                );
            }
        }
        None => {
            // The issuer asks the card whether the load completed.
            card.select();
            let r = card.send(&pboc::get_transaction_prove(
                auth.tx_type(),
                auth.online_atc(),
            ));
            if auth.verify_prove(&r.view()).is_ok() {
                ledger.loaded[idx(kind)] += i64::from(amount);
                ledger.completed.push((auth.tx_type(), auth.online_atc()));
            } else {
                assert_eq!(r.status(), StatusWord::MAC_UNAVAILABLE);
            }
        }
    }
}

fn run_purchase(
    card: &mut Card,
    sam: &mut TestSam,
    ledger: &mut Ledger,
    kind: PurseKind,
    amount: u32,
    f: Fate,
) {
    let req = InitializeData {
        key_index: 1,
        amount,
        terminal_id: POS_TERMINAL,
    };
    let r = card.send(&req.initialize_for_purchase(kind));
    let Ok(rsp) = pboc::InitPurchaseResponse::parse(&r.view()) else {
        return;
    };
    let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, amount, kind.purchase_type(), &WHEN);
    match card.send_with(&pboc::debit_for_purchase(&serial, &WHEN, &mac1), f) {
        Some(r) => {
            let (_, mac2) = pboc::parse_pair(&r.view()).unwrap();
            assert!(sam.check_mac2(&mac2));
            ledger.spent[idx(kind)] += i64::from(amount);
            ledger
                .completed
                .push((kind.purchase_type(), rsp.offline_atc));
        }
        None => {
            // Terminal tear recovery (PROTOCOLS.md): re-tap, compare the balance it remembered,
            // and if it changed take MAC2 from GET TRANSACTION PROVE; never debit again.
            card.select();
            if kind == PurseKind::Ed {
                card.verify_pin(&danger::TEST_PIN);
            }
            let r = card.send(&pboc::get_balance(kind));
            let now = pboc::parse_balance(&r.view()).unwrap();
            if now == rsp.balance {
                let r = card.send(&pboc::get_transaction_prove(
                    kind.purchase_type(),
                    rsp.offline_atc,
                ));
                assert_eq!(
                    r.status(),
                    StatusWord::MAC_UNAVAILABLE,
                    "unchanged balance but provable"
                );
            } else {
                assert_eq!(i64::from(rsp.balance) - i64::from(now), i64::from(amount));
                let r = card.send(&pboc::get_transaction_prove(
                    kind.purchase_type(),
                    rsp.offline_atc,
                ));
                let (mac2, _) = pboc::parse_pair(&r.view()).unwrap();
                assert!(sam.check_mac2(&mac2), "proved MAC2 not accepted by the SAM");
                ledger.spent[idx(kind)] += i64::from(amount);
                ledger
                    .completed
                    .push((kind.purchase_type(), rsp.offline_atc));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn money_is_conserved_under_tears(ops in proptest::collection::vec(op(), 1..80)) {
        let mut card = Card::personalized();
        let mut sam = TestSam::new();
        let mut ledger = Ledger::default();
        for op in ops {
            match op {
                Op::Load { ed, amount, fate: f } => {
                    let kind = if ed { PurseKind::Ed } else { PurseKind::Ep };
                    run_load(&mut card, &mut ledger, kind, amount, fate(f));
                }
                Op::Purchase { ed, amount, fate: f } => {
                    let kind = if ed { PurseKind::Ed } else { PurseKind::Ep };
                    run_purchase(&mut card, &mut sam, &mut ledger, kind, amount, fate(f));
                }
                Op::PowerCut => {
                    card.power_cut();
                    card.select();
                }
                Op::VerifyPin => {
                    prop_assert_eq!(card.verify_pin(&danger::TEST_PIN).status(), StatusWord::SUCCESS);
                }
            }
            for kind in [PurseKind::Ed, PurseKind::Ep] {
                let i = idx(kind);
                prop_assert_eq!(
                    i64::from(card.balance(kind)),
                    ledger.loaded[i] - ledger.spent[i],
                    "money not conserved in {:?}", kind
                );
            }
        }
        // Every completed transaction still in the proof ring is provable; no ATC completed twice.
        let mut seen = std::collections::HashSet::new();
        for (t, atc) in &ledger.completed {
            prop_assert!(seen.insert((*t, *atc)), "transaction {:02X}/{} completed twice", t, atc);
        }
        for (t, atc) in ledger.completed.iter().rev().take(epurse::card::PROVE_RECORDS) {
            prop_assert!(card.state.prove(*t, *atc).is_some(), "{:02X}/{} not provable", t, atc);
        }
    }

    #[test]
    fn arbitrary_apdus_never_panic_nor_move_money(
        apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 1..64)
    ) {
        let state = danger::test_purse_state().unwrap();
        let mut state_now = state.clone();
        let mut session = Session::new();
        for (i, apdu) in apdus.iter().enumerate() {
            let Ok(view) = parse_command(apdu) else { continue };
            let out = process(&state_now, &mut session, &view, &Entropy([i as u8; 16]));
            if let Some(next) = out.new_state {
                state_now = next;
            }
        }
        // Without a key, no sequence of bytes changes a balance.
        prop_assert_eq!(state_now.account(PurseKind::Ep), state.account(PurseKind::Ep));
        prop_assert_eq!(state_now.account(PurseKind::Ed), state.account(PurseKind::Ed));
        prop_assert_eq!(PurseState::from_bytes(&state_now.to_bytes()).unwrap(), state_now);
    }

    #[test]
    fn fuzz_check_never_fails_on_random_scripts(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = epurse::fuzzing::check_purse(&data);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = PurseState::from_bytes(&bytes);
        let _ = epurse::tag::TagState::from_bytes(&bytes);
        let _ = epurse::ticket::TicketState::from_bytes(&bytes);
        let _ = epurse::card::LogRecord::parse(&bytes);
    }

    /// Random bytes stop at the format tag; this walks past it by corrupting a valid encoding.
    #[test]
    fn purse_state_decoder_survives_corrupted_valid_encodings(
        at in any::<usize>(), mask in 1u8..=255, cut in any::<usize>()
    ) {
        let good = danger::test_purse_state().unwrap().to_bytes();
        prop_assert_eq!(PurseState::from_bytes(&good).unwrap().to_bytes(), good.clone());
        let mut bad = good.clone();
        let i = at % bad.len();
        bad[i] ^= mask;
        bad.truncate(cut % (bad.len() + 1));
        if let Ok(decoded) = PurseState::from_bytes(&bad) {
            // Whatever is accepted re-encodes to something that decodes to the same state.
            let again = decoded.to_bytes();
            prop_assert_eq!(PurseState::from_bytes(&again).unwrap(), decoded);
        }
    }
}
