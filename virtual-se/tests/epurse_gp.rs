//! The e-purse applet on the virtual SE: installed and personalized through the GP card
//! manager over SCP03, then used by a terminal: load (issuer load authority), purchase
//! (software SAM), balance, log, transaction prove, session rules, persistence.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod card_support;
mod epurse_support;

use apdu_codec::Command;
use card_support::*;
use epurse::card::LogRecord;
use epurse::host::{LoadRecord, PurchaseRecord, SettlementVerifier};
use epurse::pboc::{self, PurseKind};
use epurse_support::*;
use gp_scp::SecurityLevel;
use virtual_se::applet::{EPURSE_LOAD_FILE, EPURSE_MODULE};
use virtual_se::store::MemoryStore;

fn installed() -> virtual_se::card::Card<MemoryStore> {
    let mut card = default_card();
    install_and_personalize(&mut card);
    card
}

#[test]
fn registry_lists_the_purse_load_file_and_instance() {
    let card = installed();
    let reg = card.registry();
    assert!(reg.iter().any(|e| e.aid == EPURSE_LOAD_FILE));
    let app = reg.iter().find(|e| e.aid == PURSE).unwrap();
    assert_eq!(app.module.as_deref(), Some(EPURSE_MODULE));
}

#[test]
fn load_purchase_balance_log_prove() {
    let mut card = installed();
    let (fci, sw) = select_purse(&mut card);
    ok(sw);
    assert_eq!(fci.first(), Some(&0x6F));
    assert_eq!(balance(&mut card), 0);

    let load_tac = load(&mut card, 10_000);
    assert_eq!(balance(&mut card), 10_000);
    let mut sam = SoftSam::new();
    let (tac, _mac2) = purchase(&mut card, &mut sam, 1_250);
    assert_eq!(balance(&mut card), 8_750);

    // The log: record 1 is the purchase, record 2 the load.
    let r = tx(&mut card, &apdu(0x00, 0xB2, 0x01, 0xC4, &[]).with_le(0x17));
    ok(r.1);
    let purchase_log = LogRecord::parse(&r.0).unwrap();
    assert_eq!(purchase_log.amount, 1_250);
    assert_eq!(purchase_log.tx_type, pboc::TYPE_EP_PURCHASE);
    assert_eq!(purchase_log.terminal_id, POS_TERMINAL);
    let r = tx(&mut card, &apdu(0x00, 0xB2, 0x02, 0xC4, &[]).with_le(0x17));
    let load_log = LogRecord::parse(&r.0).unwrap();
    assert_eq!(load_log.amount, 10_000);
    assert_eq!(load_log.tx_type, pboc::TYPE_EP_LOAD);
    let r = tx(&mut card, &apdu(0x00, 0xB2, 0x03, 0xC4, &[]).with_le(0x17));
    assert_eq!(r.1, 0x6A83);

    // GET TRANSACTION PROVE for both, and settlement of both TACs.
    let r = tx(
        &mut card,
        &pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, purchase_log.atc),
    );
    let (_, prove_tac) = pboc::parse_pair(&view(&r)).unwrap();
    assert_eq!(prove_tac, tac);
    let r = tx(
        &mut card,
        &pboc::get_transaction_prove(pboc::TYPE_EP_LOAD, load_log.atc),
    );
    let (_, prove_tac) = pboc::parse_pair(&view(&r)).unwrap();
    assert_eq!(prove_tac, load_tac);
    let verifier = SettlementVerifier::new(
        epurse::danger::test_master_keys(),
        epurse::danger::TEST_TAC_KEY,
    );
    verifier
        .verify_purchase(&PurchaseRecord {
            asn: epurse::danger::TEST_ASN,
            amount: 1_250,
            tx_type: pboc::TYPE_EP_PURCHASE,
            terminal_id: POS_TERMINAL,
            terminal_serial: 1u32.to_be_bytes(),
            when: WHEN,
            tac,
        })
        .unwrap();
    verifier
        .verify_load(&LoadRecord {
            asn: epurse::danger::TEST_ASN,
            new_balance: 10_000,
            online_atc: load_log.atc,
            amount: 10_000,
            tx_type: pboc::TYPE_EP_LOAD,
            terminal_id: LOAD_TERMINAL,
            when: WHEN,
            tac: load_tac,
        })
        .unwrap();
    let r = tx(
        &mut card,
        &pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, 0x0100),
    );
    assert_eq!(r.1, 0x9406);
}

#[test]
fn refusals_change_nothing() {
    let mut card = installed();
    ok(select_purse(&mut card).1);
    load(&mut card, 500);
    let before = card.persistent_snapshot().unwrap();
    let mut sam = SoftSam::new();
    // Insufficient balance.
    let req = pboc::InitializeData {
        key_index: 1,
        amount: 501,
        terminal_id: POS_TERMINAL,
    };
    assert_eq!(
        tx(&mut card, &req.initialize_for_purchase(PurseKind::Ep)).1,
        0x9401
    );
    // Wrong MAC1: 9302, and the replayed DEBIT then 6985.
    let (_, debit) = begin_purchase(&mut card, &mut sam, 100);
    let mut forged = debit.clone();
    let last = forged.data.len() - 1;
    forged.data[last] ^= 1;
    assert_eq!(tx(&mut card, &forged).1, 0x9302);
    assert_eq!(tx(&mut card, &debit).1, 0x6985);
    // Maximum balance.
    let req = pboc::InitializeData {
        key_index: 1,
        amount: 1_000_000,
        terminal_id: LOAD_TERMINAL,
    };
    assert_eq!(
        tx(&mut card, &req.initialize_for_load(PurseKind::Ep)).1,
        0x9501
    );
    assert_eq!(card.persistent_snapshot().unwrap(), before);
    assert_eq!(balance(&mut card), 500);
}

#[test]
fn deselect_and_power_off_reset_the_session_and_keep_the_balance() {
    let mut card = installed();
    ok(select_purse(&mut card).1);
    load(&mut card, 2_000);
    // A pending INITIALIZE does not survive deselection.
    let (mut auth, _, _) = begin_load(&mut card, 300);
    ok(sw(&mut card, "00A4040000"));
    ok(select_purse(&mut card).1);
    assert_eq!(tx(&mut card, &auth.command(&WHEN)).1, 0x6985);
    // Nor a power cycle; the balance does.
    let (mut auth, _, _) = begin_load(&mut card, 300);
    card.power_off();
    card.power_on();
    // After power on the ISD is selected again: it does not know GET BALANCE.
    assert_eq!(tx(&mut card, &pboc::get_balance(PurseKind::Ep)).1, 0x6D00);
    ok(select_purse(&mut card).1);
    assert_eq!(tx(&mut card, &auth.command(&WHEN)).1, 0x6985);
    assert_eq!(balance(&mut card), 2_000);
}

#[test]
fn personalization_rules_through_the_card_manager() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    // Install parameters are refused (everything comes by STORE DATA): INSTALL fails.
    let bad = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(
            EPURSE_LOAD_FILE,
            EPURSE_MODULE,
            PURSE,
            &[0x00],
            &[0xC9, 0x01, 0x00],
        ),
    );
    assert_eq!(host.send(&mut card, &bad).view().status().to_u16(), 0x6A80);
    assert!(!card.registry().iter().any(|e| e.aid == PURSE));
    let install = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(
            EPURSE_LOAD_FILE,
            EPURSE_MODULE,
            PURSE,
            &[0x00],
            &[0xC9, 0x00],
        ),
    );
    ok(host.send(&mut card, &install).view().status().to_u16());
    // Not yet personalized: selectable, but no transaction (6985).
    let mut card2 = card;
    ok(select_purse(&mut card2).1);
    assert_eq!(tx(&mut card2, &pboc::get_balance(PurseKind::Ep)).1, 0x6985);
    // An incomplete last block (limits missing) is refused: 6A88.
    ok(sw(&mut card2, "00A4040000"));
    let mut host = open_scp03(&mut card2, SecurityLevel::ALL);
    let perso = apdu(
        0x80,
        0xE6,
        0x20,
        0x00,
        &[&[0, 0, PURSE.len() as u8][..], PURSE, &[0, 0, 0]].concat(),
    );
    ok(host.send(&mut card2, &perso).view().status().to_u16());
    let dgis = epurse::danger::test_personalization()
        .unwrap()
        .dgis()
        .unwrap();
    let first = apdu(0x80, 0xE2, 0x88, 0x00, &dgis[0]);
    assert_eq!(
        host.send(&mut card2, &first).view().status().to_u16(),
        0x6A88
    );
    // BER-TLV structure is refused (6A86).
    let perso_again = perso.clone();
    ok(host.send(&mut card2, &perso_again).view().status().to_u16());
    let tlv = apdu(0x80, 0xE2, 0x90, 0x00, &dgis[0]);
    assert_eq!(host.send(&mut card2, &tlv).view().status().to_u16(), 0x6A86);
    // The complete personalization then works.
    personalize(&mut card2, &mut host);
    ok(select_purse(&mut card2).1);
    assert_eq!(balance(&mut card2), 0);
    // A second personalization of an active purse: 6985.
    ok(sw(&mut card2, "00A4040000"));
    let mut host = open_scp03(&mut card2, SecurityLevel::ALL);
    ok(host.send(&mut card2, &perso).view().status().to_u16());
    let again = apdu(0x80, 0xE2, 0x88, 0x00, &dgis[0]);
    assert_eq!(
        host.send(&mut card2, &again).view().status().to_u16(),
        0x6985
    );
    let _ = Command::new(0, 0, 0, 0);
}

/// APPLICATION BLOCK (temporary) by the issuer, MACed over a GET CHALLENGE (docs/epurse.md).
fn block_purse(card: &mut virtual_se::card::Card<MemoryStore>) {
    let damk = epurse::host::MasterKeyStore::card_key(
        &epurse::danger::test_master_keys(),
        epurse::card::key_function::MAINTENANCE,
        1,
        1,
        &epurse::danger::TEST_ASN,
    )
    .unwrap();
    let (random, sw) = tx(card, &Command::new(0x00, 0x84, 0x00, 0x00).with_le(4));
    assert_eq!(sw, 0x9000);
    let mut challenge = [0u8; 8];
    challenge[..4].copy_from_slice(&random);
    let mac = epurse::card::issuer_mac(&damk, challenge, [0x84, 0x1E, 0x00, 0x00], 4, &[]).unwrap();
    let (_, sw) = tx(
        card,
        &Command::new(0x84, 0x1E, 0x00, 0x00).with_data(mac.to_vec()),
    );
    assert_eq!(sw, 0x9000);
}

#[test]
fn blocked_purse_selects_with_6283_and_its_fci_and_refuses_transactions() {
    let mut card = installed();
    let (fci, sw) = select_purse(&mut card);
    assert_eq!(sw, 0x9000);
    block_purse(&mut card);
    let (blocked_fci, sw) = select_purse(&mut card);
    assert_eq!(sw, 0x6283, "selectable with a warning while blocked");
    assert_eq!(blocked_fci, fci, "the same FCI");
    let (_, sw) = tx(&mut card, &pboc::get_balance(PurseKind::Ep));
    assert_eq!(sw, 0x6985);
}
