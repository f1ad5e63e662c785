//! Full load and purchase flows between the applet, the issuer's load authority and the
//! in-test SAM, with every refusal the issue lists; issuer commands; personalization; tear
//! recovery; the value-block tag and the e-ticket store.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod common;

use apdu_codec::{Command, StatusWord};
use common::*;
use epurse::card::{
    Account, Lifecycle, LogRecord, PurseState, SFI_LOG, issuer_mac, key_function, pin_block,
};
use epurse::crypto::TdesKey;
use epurse::danger;
use epurse::host::{LoadRecord, PurchaseRecord, SettlementVerifier};
use epurse::pboc::{self, DateTime, InitializeData, PurseKind};

const SW_OK: StatusWord = StatusWord::SUCCESS;

#[test]
fn load_then_purchase_and_settle() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    let load_tac = load(&mut card, PurseKind::Ep, 10_000).unwrap();
    assert_eq!(card.balance(PurseKind::Ep), 10_000);
    let (tac, mac2) = purchase(&mut card, &mut sam, PurseKind::Ep, 2_500).unwrap();
    assert_eq!(card.balance(PurseKind::Ep), 7_500);

    // GET BALANCE.
    let r = card.send(&pboc::get_balance(PurseKind::Ep));
    assert_eq!(pboc::parse_balance(&r.view()).unwrap(), 7_500);

    // The log: most recent first.
    let r = card.send(&Command::new(0x00, 0xB2, 0x01, (SFI_LOG << 3) | 4).with_le(23));
    assert_eq!(r.status(), SW_OK);
    let rec = LogRecord::parse(r.data()).unwrap();
    assert_eq!(
        (rec.tx_type, rec.amount, rec.atc),
        (pboc::TYPE_EP_PURCHASE, 2_500, 0)
    );
    assert_eq!(rec.terminal_id, POS_TERMINAL);
    assert_eq!((rec.date, rec.time), (WHEN.date, WHEN.time));
    let r = card.send(&Command::new(0x00, 0xB2, 0x02, (SFI_LOG << 3) | 4));
    let rec2 = LogRecord::parse(r.data()).unwrap();
    assert_eq!((rec2.tx_type, rec2.amount), (pboc::TYPE_EP_LOAD, 10_000));
    let r = card.send(&Command::new(0x00, 0xB2, 0x03, (SFI_LOG << 3) | 4));
    assert_eq!(r.status(), StatusWord::RECORD_NOT_FOUND);

    // GET TRANSACTION PROVE for both.
    let r = card.send(&pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, 0));
    assert_eq!(pboc::parse_pair(&r.view()).unwrap(), (mac2, tac));
    let r = card.send(&pboc::get_transaction_prove(pboc::TYPE_EP_LOAD, 0));
    assert_eq!(pboc::parse_pair(&r.view()).unwrap().1, load_tac);
    let r = card.send(&pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, 1));
    assert_eq!(r.status(), StatusWord::MAC_UNAVAILABLE);

    // Settlement: TACs recomputed from the issuer's DTK.
    let verifier = SettlementVerifier::new(danger::test_master_keys(), danger::TEST_TAC_KEY);
    let mut record = PurchaseRecord {
        asn: danger::TEST_ASN,
        amount: 2_500,
        tx_type: pboc::TYPE_EP_PURCHASE,
        terminal_id: POS_TERMINAL,
        terminal_serial: sam.serial.to_be_bytes(),
        when: WHEN,
        tac,
    };
    verifier.verify_purchase(&record).unwrap();
    record.amount = 2_501;
    assert!(verifier.verify_purchase(&record).is_err());
    let load_record = LoadRecord {
        asn: danger::TEST_ASN,
        new_balance: 10_000,
        online_atc: 0,
        amount: 10_000,
        tx_type: pboc::TYPE_EP_LOAD,
        terminal_id: LOAD_TERMINAL,
        when: WHEN,
        tac: load_tac,
    };
    verifier.verify_load(&load_record).unwrap();
    assert!(
        verifier
            .verify_load(&LoadRecord {
                online_atc: 1,
                ..load_record
            })
            .is_err()
    );
}

#[test]
fn insufficient_and_maximum_balance() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    load(&mut card, PurseKind::Ep, 100).unwrap();
    let before = card.stored.clone();
    assert_eq!(
        purchase(&mut card, &mut sam, PurseKind::Ep, 101),
        Err(StatusWord::INSUFFICIENT_BALANCE)
    );
    assert_eq!(
        load(&mut card, PurseKind::Ep, 999_901),
        Err(StatusWord::MAXIMUM_BALANCE_EXCEEDED)
    );
    assert_eq!(card.stored, before, "refusals changed state");
    load(&mut card, PurseKind::Ep, 999_900).unwrap();
    assert_eq!(card.balance(PurseKind::Ep), 1_000_000);
}

#[test]
fn ed_needs_pin_and_has_an_overdraft() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    assert_eq!(
        load(&mut card, PurseKind::Ed, 100),
        Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
    let r = card.send(&pboc::get_balance(PurseKind::Ed));
    assert_eq!(r.status(), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    assert_eq!(card.verify_pin(&danger::TEST_PIN).status(), SW_OK);
    load(&mut card, PurseKind::Ed, 1_000).unwrap();
    // Overdraft limit 5000: 6000 may be spent from a balance of 1000.
    let r = card.send(
        &InitializeData {
            key_index: 1,
            amount: 6_001,
            terminal_id: POS_TERMINAL,
        }
        .initialize_for_purchase(PurseKind::Ed),
    );
    assert_eq!(r.status(), StatusWord::INSUFFICIENT_BALANCE);
    purchase(&mut card, &mut sam, PurseKind::Ed, 6_000).unwrap();
    assert_eq!(card.balance(PurseKind::Ed), -5_000);
    let r = card.send(&pboc::get_balance(PurseKind::Ed));
    assert_eq!(pboc::parse_balance(&r.view()).unwrap(), -5_000);
    // A load repays the overdraft.
    load(&mut card, PurseKind::Ed, 7_000).unwrap();
    assert_eq!(card.balance(PurseKind::Ed), 2_000);
    // The ED purchase log record carries the overdraft limit.
    let r = card.send(&Command::new(0x00, 0xB2, 0x02, (SFI_LOG << 3) | 4));
    let rec = LogRecord::parse(r.data()).unwrap();
    assert_eq!(
        (rec.tx_type, rec.overdraft_limit),
        (pboc::TYPE_ED_PURCHASE, 5_000)
    );
    // A power cut forgets the PIN verification.
    card.power_cut();
    card.select();
    assert_eq!(
        load(&mut card, PurseKind::Ed, 1),
        Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
}

#[test]
fn unload_through_the_authority() {
    let mut card = Card::personalized();
    card.verify_pin(&danger::TEST_PIN);
    load(&mut card, PurseKind::Ed, 3_000).unwrap();
    let auth = authority();
    let req = InitializeData {
        key_index: 1,
        amount: 1_200,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_unload());
    let rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
    let mut ok = auth.begin_unload(&danger::TEST_ASN, &req, &rsp).unwrap();
    let r = card.send(&ok.command(&WHEN));
    ok.verify_tac(&r.view()).unwrap();
    assert_eq!(card.balance(PurseKind::Ed), 1_800);
    let big = InitializeData {
        amount: 1_801,
        ..req
    };
    assert_eq!(
        card.send(&big.initialize_for_unload()).status(),
        StatusWord::INSUFFICIENT_BALANCE
    );
}

#[test]
fn wrong_macs_change_nothing() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    load(&mut card, PurseKind::Ep, 5_000).unwrap();
    let before = card.stored.clone();

    // Wrong MAC2 on CREDIT FOR LOAD.
    let req = InitializeData {
        key_index: 1,
        amount: 10,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(PurseKind::Ep));
    let rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
    let mut ok = authority()
        .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
        .unwrap();
    let mut mac2 = ok.mac2(&WHEN);
    mac2[3] ^= 1;
    let r = card.send(&pboc::credit_for_load(&WHEN, &mac2));
    assert_eq!(r.status(), StatusWord::MAC_INVALID);
    assert_eq!(card.stored, before);

    // Wrong MAC1 on DEBIT FOR PURCHASE.
    let req = InitializeData {
        key_index: 1,
        amount: 10,
        terminal_id: POS_TERMINAL,
    };
    let r = card.send(&req.initialize_for_purchase(PurseKind::Ep));
    let rsp = pboc::InitPurchaseResponse::parse(&r.view()).unwrap();
    let (serial, mut mac1) = sam.mac1(&danger::TEST_ASN, &rsp, 10, pboc::TYPE_EP_PURCHASE, &WHEN);
    mac1[0] ^= 0x80;
    let r = card.send(&pboc::debit_for_purchase(&serial, &WHEN, &mac1));
    assert_eq!(r.status(), StatusWord::MAC_INVALID);
    assert_eq!(card.stored, before);

    // A forged INITIALIZE FOR LOAD answer fails MAC1 at the authority.
    let req = InitializeData {
        key_index: 1,
        amount: 10,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(PurseKind::Ep));
    let mut rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
    rsp.balance += 1;
    assert_eq!(
        authority()
            .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
            .unwrap_err(),
        epurse::Error::MacInvalid
    );
}

#[test]
fn replayed_credit_and_debit_are_refused() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    let auth = authority();
    let req = InitializeData {
        key_index: 1,
        amount: 700,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(PurseKind::Ep));
    let rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
    let mut ok = auth
        .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
        .unwrap();
    let credit = ok.command(&WHEN);
    assert_eq!(card.send(&credit).status(), SW_OK);
    assert_eq!(
        card.send(&credit).status(),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
    // Even after a fresh INITIALIZE the old MAC2 is bound to the old random and ATC.
    card.send(&req.initialize_for_load(PurseKind::Ep));
    assert_eq!(card.send(&credit).status(), StatusWord::MAC_INVALID);
    assert_eq!(card.balance(PurseKind::Ep), 700);

    let preq = InitializeData {
        key_index: 1,
        amount: 100,
        terminal_id: POS_TERMINAL,
    };
    let r = card.send(&preq.initialize_for_purchase(PurseKind::Ep));
    let rsp = pboc::InitPurchaseResponse::parse(&r.view()).unwrap();
    let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, 100, pboc::TYPE_EP_PURCHASE, &WHEN);
    let debit = pboc::debit_for_purchase(&serial, &WHEN, &mac1);
    assert_eq!(card.send(&debit).status(), SW_OK);
    assert_eq!(
        card.send(&debit).status(),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
    card.send(&preq.initialize_for_purchase(PurseKind::Ep));
    assert_eq!(card.send(&debit).status(), StatusWord::MAC_INVALID);
    assert_eq!(card.balance(PurseKind::Ep), 600);
}

#[test]
fn key_index_and_version() {
    let mut card = Card::personalized();
    load(&mut card, PurseKind::Ep, 500).unwrap();
    let req = InitializeData {
        key_index: 9,
        amount: 10,
        terminal_id: POS_TERMINAL,
    };
    assert_eq!(
        card.send(&req.initialize_for_purchase(PurseKind::Ep))
            .status(),
        StatusWord::KEY_INDEX_NOT_SUPPORTED
    );
    assert_eq!(
        card.send(&req.initialize_for_load(PurseKind::Ep)).status(),
        StatusWord::KEY_INDEX_NOT_SUPPORTED
    );
    // Index 2 is the second purchase key, version 2.
    let req = InitializeData {
        key_index: 2,
        amount: 10,
        terminal_id: POS_TERMINAL,
    };
    let r = card.send(&req.initialize_for_purchase(PurseKind::Ep));
    let rsp = pboc::InitPurchaseResponse::parse(&r.view()).unwrap();
    assert_eq!(rsp.key_version, 2);
    // A SAM using the index-1 key (wrong version) gets 9302.
    let mut sam = TestSam::new();
    let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, 10, pboc::TYPE_EP_PURCHASE, &WHEN);
    let r = card.send(&pboc::debit_for_purchase(&serial, &WHEN, &mac1));
    assert_eq!(r.status(), StatusWord::MAC_INVALID);
    // The authority refuses a key version it has no master for.
    let req = InitializeData {
        key_index: 1,
        amount: 10,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(PurseKind::Ep));
    let mut rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
    rsp.key_version = 7;
    assert_eq!(
        authority()
            .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
            .unwrap_err(),
        epurse::Error::UnknownMasterKey
    );
}

#[test]
fn pin_try_exhaustion_change_reload_unblock() {
    let mut card = Card::personalized();
    // VERIFY without data reports tries left.
    let r = card.send(&Command::new(0x00, 0x20, 0x00, 0x00));
    assert_eq!(r.status(), StatusWord::with_retries_left(3));
    assert_eq!(
        card.verify_pin(&[0x11, 0x11]).status(),
        StatusWord::with_retries_left(2)
    );
    // A correct PIN resets the counter.
    assert_eq!(card.verify_pin(&danger::TEST_PIN).status(), SW_OK);
    assert_eq!(card.state.pin_tries_left(), Some(3));
    for left in [2, 1, 0] {
        assert_eq!(
            card.verify_pin(&[0x99, 0x99]).status(),
            StatusWord::with_retries_left(left)
        );
    }
    assert_eq!(
        card.verify_pin(&danger::TEST_PIN).status(),
        StatusWord::AUTHENTICATION_METHOD_BLOCKED
    );
    assert_eq!(card.state.pin_tries_left(), Some(0));

    // PIN UNBLOCK with the issuer's DPUK: encrypted PIN block and MAC over the challenge.
    let dpuk = danger::test_master_keys();
    let dpuk = epurse::host::MasterKeyStore::card_key(
        &dpuk,
        key_function::PIN_UNBLOCK,
        1,
        1,
        &danger::TEST_ASN,
    )
    .unwrap();
    let r = card.send(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(4));
    let mut challenge = [0u8; 8];
    challenge[..4].copy_from_slice(r.data());
    let mut block = pin_block(&[0x24, 0x68]).unwrap();
    TdesKey::new(&dpuk).encrypt(&mut block);
    let header = [0x84, 0x24, 0x00, 0x00];
    let mac = issuer_mac(&dpuk, challenge, header, 12, &block).unwrap();
    let mut data = block.to_vec();
    data.extend_from_slice(&mac);
    let cmd = Command::new(0x84, 0x24, 0x00, 0x00).with_data(data);
    assert_eq!(card.send(&cmd).status(), SW_OK);
    // The challenge is single use.
    assert_eq!(
        card.send(&cmd).status(),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
    assert_eq!(card.verify_pin(&[0x24, 0x68]).status(), SW_OK);

    // CHANGE PIN: old FF new.
    let cmd =
        Command::new(0x80, 0x5E, 0x01, 0x00).with_data(vec![0x24, 0x68, 0xFF, 0x13, 0x57, 0x9F]);
    assert_eq!(card.send(&cmd).status(), SW_OK);
    assert_eq!(card.verify_pin(&[0x13, 0x57, 0x9F]).status(), SW_OK);
    let cmd = Command::new(0x80, 0x5E, 0x01, 0x00).with_data(vec![0x24, 0x68, 0xFF, 0x11, 0x11]);
    assert_eq!(card.send(&cmd).status(), StatusWord::with_retries_left(2));

    // RELOAD PIN with the DRPK and a wrong, then a right MAC.
    let drpk = epurse::host::MasterKeyStore::card_key(
        &danger::test_master_keys(),
        key_function::PIN_RELOAD,
        1,
        1,
        &danger::TEST_ASN,
    )
    .unwrap();
    let r = card.send(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8));
    let challenge: [u8; 8] = r.data().try_into().unwrap();
    let new_pin = [0x55, 0x55, 0x55];
    let mac = issuer_mac(&drpk, challenge, [0x80, 0x5E, 0x00, 0x00], 7, &new_pin).unwrap();
    card.send(&pboc::get_balance(PurseKind::Ep));
    let mut bad = new_pin.to_vec();
    bad.extend_from_slice(&mac);
    // A MACed command without a fresh challenge is refused.
    assert_eq!(
        card.send(&Command::new(0x80, 0x5E, 0x00, 0x00).with_data(bad))
            .status(),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
    let r = card.send(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8));
    let challenge: [u8; 8] = r.data().try_into().unwrap();
    let mac = issuer_mac(&drpk, challenge, [0x80, 0x5E, 0x00, 0x00], 7, &new_pin).unwrap();
    let mut bad = new_pin.to_vec();
    bad.extend_from_slice(&[mac[0] ^ 1, mac[1], mac[2], mac[3]]);
    assert_eq!(
        card.send(&Command::new(0x80, 0x5E, 0x00, 0x00).with_data(bad))
            .status(),
        StatusWord::MAC_INVALID
    );
    let r = card.send(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8));
    let challenge: [u8; 8] = r.data().try_into().unwrap();
    let mac = issuer_mac(&drpk, challenge, [0x80, 0x5E, 0x00, 0x00], 7, &new_pin).unwrap();
    let mut good = new_pin.to_vec();
    good.extend_from_slice(&mac);
    assert_eq!(
        card.send(&Command::new(0x80, 0x5E, 0x00, 0x00).with_data(good))
            .status(),
        SW_OK
    );
    assert_eq!(card.state.pin_tries_left(), Some(3));
    assert_eq!(card.verify_pin(&new_pin).status(), SW_OK);
}

fn maintenance(card: &mut Card, ins: u8, p2: u8, corrupt: bool) -> StatusWord {
    let damk = epurse::host::MasterKeyStore::card_key(
        &danger::test_master_keys(),
        key_function::MAINTENANCE,
        1,
        1,
        &danger::TEST_ASN,
    )
    .unwrap();
    let r = card.send(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(4));
    let mut challenge = [0u8; 8];
    challenge[..4].copy_from_slice(r.data());
    let mut mac = issuer_mac(&damk, challenge, [0x84, ins, 0x00, p2], 4, &[]).unwrap();
    if corrupt {
        mac[2] ^= 0x10;
    }
    card.send(&Command::new(0x84, ins, 0x00, p2).with_data(mac.to_vec()))
        .status()
}

#[test]
fn application_block_unblock_and_permanent_lock() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    load(&mut card, PurseKind::Ep, 1_000).unwrap();
    assert_eq!(
        maintenance(&mut card, 0x1E, 0x00, true),
        StatusWord::MAC_INVALID
    );
    assert_eq!(card.state.lifecycle(), Lifecycle::Active);
    assert_eq!(maintenance(&mut card, 0x1E, 0x00, false), SW_OK);
    assert_eq!(card.state.lifecycle(), Lifecycle::Blocked);
    assert_eq!(
        card.select().status(),
        StatusWord::SELECTED_FILE_INVALIDATED
    );
    assert_eq!(
        purchase(&mut card, &mut sam, PurseKind::Ep, 1),
        Err(StatusWord::CONDITIONS_NOT_SATISFIED)
    );
    assert_eq!(maintenance(&mut card, 0x18, 0x00, false), SW_OK);
    assert_eq!(card.select().status(), SW_OK);
    purchase(&mut card, &mut sam, PurseKind::Ep, 1).unwrap();
    assert_eq!(maintenance(&mut card, 0x1E, 0x01, false), SW_OK);
    assert_eq!(card.state.lifecycle(), Lifecycle::PermanentlyLocked);
    assert_eq!(
        card.select().status(),
        StatusWord::APPLICATION_PERMANENTLY_LOCKED
    );
    assert_eq!(
        card.send(&pboc::get_balance(PurseKind::Ep)).status(),
        StatusWord::APPLICATION_PERMANENTLY_LOCKED
    );
}

#[test]
fn expired_and_not_yet_valid_application() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    load(&mut card, PurseKind::Ep, 1_000).unwrap();
    let before = card.stored.clone();
    for date in [[0x20, 0x31, 0x01, 0x01], [0x20, 0x19, 0x12, 0x31]] {
        let when = DateTime {
            date,
            time: [0x12, 0, 0],
        };
        let req = InitializeData {
            key_index: 1,
            amount: 10,
            terminal_id: POS_TERMINAL,
        };
        let r = card.send(&req.initialize_for_purchase(PurseKind::Ep));
        let rsp = pboc::InitPurchaseResponse::parse(&r.view()).unwrap();
        let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, 10, pboc::TYPE_EP_PURCHASE, &when);
        let r = card.send(&pboc::debit_for_purchase(&serial, &when, &mac1));
        assert_eq!(r.status(), StatusWord::CONDITIONS_NOT_SATISFIED);
        let req = InitializeData {
            key_index: 1,
            amount: 10,
            terminal_id: LOAD_TERMINAL,
        };
        let r = card.send(&req.initialize_for_load(PurseKind::Ep));
        let rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
        let mut ok = authority()
            .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
            .unwrap();
        let r = card.send(&ok.command(&when));
        assert_eq!(r.status(), StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    // The last valid day still works.
    assert_eq!(card.stored, before);
}

#[test]
fn atc_exhaustion_is_refused_not_wrapped() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    let mut state = card.state.clone();
    danger::force_account(
        &mut state,
        PurseKind::Ep,
        Account {
            balance: 1_000,
            online_atc: 0xFFFE,
            offline_atc: 0xFFFE,
        },
    );
    card.stored = state.to_bytes();
    card.power_cut();
    card.select();
    purchase(&mut card, &mut sam, PurseKind::Ep, 1).unwrap();
    load(&mut card, PurseKind::Ep, 1).unwrap();
    let acc = *card.state.account(PurseKind::Ep);
    assert_eq!((acc.online_atc, acc.offline_atc), (0xFFFF, 0xFFFF));
    assert_eq!(
        purchase(&mut card, &mut sam, PurseKind::Ep, 1),
        Err(StatusWord::COUNTER_LIMIT_REACHED)
    );
    assert_eq!(
        load(&mut card, PurseKind::Ep, 1),
        Err(StatusWord::COUNTER_LIMIT_REACHED)
    );
    // The transaction at ATC FFFE is still provable.
    let r = card.send(&pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, 0xFFFE));
    assert_eq!(r.status(), SW_OK);
}

#[test]
fn lost_debit_response_recovered_with_transaction_prove() {
    let mut card = Card::personalized();
    let mut sam = TestSam::new();
    load(&mut card, PurseKind::Ep, 1_000).unwrap();
    let req = InitializeData {
        key_index: 1,
        amount: 300,
        terminal_id: POS_TERMINAL,
    };
    let r = card.send(&req.initialize_for_purchase(PurseKind::Ep));
    let rsp = pboc::InitPurchaseResponse::parse(&r.view()).unwrap();
    let remembered_balance = rsp.balance;
    let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, 300, pboc::TYPE_EP_PURCHASE, &WHEN);
    assert!(
        card.send_with(
            &pboc::debit_for_purchase(&serial, &WHEN, &mac1),
            Fate::LoseResponse
        )
        .is_none()
    );
    // Re-tap: the balance changed, so the terminal asks for the proof instead of debiting again.
    card.select();
    let r = card.send(&pboc::get_balance(PurseKind::Ep));
    let now = pboc::parse_balance(&r.view()).unwrap();
    assert_eq!(remembered_balance - now, 300);
    let r = card.send(&pboc::get_transaction_prove(
        pboc::TYPE_EP_PURCHASE,
        rsp.offline_atc,
    ));
    let (mac2, _tac) = pboc::parse_pair(&r.view()).unwrap();
    assert!(sam.check_mac2(&mac2));
    assert_eq!(card.balance(PurseKind::Ep), 700);

    // A tear before the commit: nothing happened, nothing is provable.
    let r = card.send(&req.initialize_for_purchase(PurseKind::Ep));
    let rsp = pboc::InitPurchaseResponse::parse(&r.view()).unwrap();
    let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, 300, pboc::TYPE_EP_PURCHASE, &WHEN);
    assert!(
        card.send_with(
            &pboc::debit_for_purchase(&serial, &WHEN, &mac1),
            Fate::TearBeforeCommit
        )
        .is_none()
    );
    card.select();
    assert_eq!(card.balance(PurseKind::Ep), 700);
    let r = card.send(&pboc::get_transaction_prove(
        pboc::TYPE_EP_PURCHASE,
        rsp.offline_atc,
    ));
    assert_eq!(r.status(), StatusWord::MAC_UNAVAILABLE);
}

#[test]
fn lost_credit_response_recovered_by_the_authority() {
    let mut card = Card::personalized();
    let req = InitializeData {
        key_index: 1,
        amount: 4_000,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(PurseKind::Ep));
    let rsp = pboc::InitLoadResponse::parse(&r.view()).unwrap();
    let mut ok = authority()
        .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
        .unwrap();
    assert!(
        card.send_with(&ok.command(&WHEN), Fate::LoseResponse)
            .is_none()
    );
    card.select();
    let r = card.send(&pboc::get_transaction_prove(ok.tx_type(), ok.online_atc()));
    ok.verify_prove(&r.view()).unwrap();
    assert_eq!(card.balance(PurseKind::Ep), 4_000);
}

#[test]
fn issuer_file_and_select() {
    let mut card = Card::personalized();
    let r = card.select();
    assert_eq!(r.status(), SW_OK);
    assert_eq!(r.data()[0], 0x6F);
    let r = card.send(&Command::new(0x00, 0xB0, 0x95, 0x00).with_le(256));
    assert_eq!(r.data().len(), 30);
    assert_eq!(&r.data()[12..20], &danger::TEST_ASN);
    assert_eq!(&r.data()[24..28], &[0x20, 0x30, 0x12, 0x31]);
    let r = card.send(&Command::new(0x00, 0xB0, 0x95, 28).with_le(4));
    assert_eq!((r.data().len(), r.status()), (2, StatusWord::END_OF_DATA));
    let r = card.send(&Command::new(0x00, 0xB0, 0x96, 0x00).with_le(4));
    assert_eq!(r.status(), StatusWord::NOT_FOUND);
    let r = card.send(&Command::new(0x00, 0xA4, 0x04, 0x00).with_data(vec![0xA0, 0, 0, 0, 1]));
    assert_eq!(r.status(), StatusWord::NOT_FOUND);
    // Deselected now.
    assert_eq!(
        card.send(&pboc::get_balance(PurseKind::Ep)).status(),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
}

#[test]
fn personalization_rules() {
    let mut card = Card::personalized();
    // STORE DATA after activation.
    let cmd =
        Command::new(0x80, 0xE2, 0x80, 0x00).with_data(vec![0x03, 0x01, 0x03, 0x03, 0x12, 0x34]);
    assert_eq!(
        card.send(&cmd).status(),
        StatusWord::CONDITIONS_NOT_SATISFIED
    );
    // An incomplete personalization stays in Personalizing.
    let mut fresh = epurse::card::Purse::new(PurseState::new(&danger::TEST_AID).unwrap());
    let e = epurse::card::Entropy::default();
    let sel = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(danger::TEST_AID.to_vec());
    assert_eq!(
        fresh.process_apdu(&sel.to_vec().unwrap(), &e).status(),
        SW_OK
    );
    let r = fresh.process_apdu(&cmd.to_vec().unwrap(), &e);
    assert_eq!(r.status(), StatusWord::REFERENCED_DATA_NOT_FOUND);
    assert_eq!(fresh.state().lifecycle(), Lifecycle::Personalizing);
    // A malformed DGI.
    let bad = Command::new(0x80, 0xE2, 0x00, 0x00).with_data(vec![0x01, 0x01, 0x30, 0x00]);
    assert_eq!(
        fresh.process_apdu(&bad.to_vec().unwrap(), &e).status(),
        StatusWord::INCORRECT_DATA
    );
    // Transactions before personalization.
    let r = fresh.process_apdu(&pboc::get_balance(PurseKind::Ep).to_vec().unwrap(), &e);
    assert_eq!(r.status(), StatusWord::CONDITIONS_NOT_SATISFIED);
}

#[test]
fn state_encoding_detects_corruption() {
    let card = Card::personalized();
    let mut bytes = card.state.to_bytes();
    assert_eq!(PurseState::from_bytes(&bytes).unwrap(), card.state);
    bytes[40] ^= 1;
    assert_eq!(
        PurseState::from_bytes(&bytes).unwrap_err(),
        epurse::Error::StateEncoding("checksum")
    );
    assert!(PurseState::from_bytes(&[]).is_err());
    assert!(PurseState::from_bytes(b"EPS2\0\0\0\0").is_err());
}

/// The path a GP runtime takes: personalization blocks routed by a security domain without a
/// SELECT, then the runtime's own selection.
#[test]
fn runtime_personalization_and_selection() {
    let mut state = PurseState::new(&danger::TEST_AID).unwrap();
    let dgis = danger::test_personalization().unwrap().dgis().unwrap();
    let n = dgis.len();
    // BER-TLV structured data is refused.
    let out = epurse::card::personalize(&state, 0x90, &dgis[0]);
    assert_eq!(out.reply.status(), StatusWord::INCORRECT_P1_P2);
    assert!(out.new_state.is_none());
    for (i, dgi) in dgis.iter().enumerate() {
        let p1 = if i + 1 == n { 0x88 } else { 0x08 };
        let out = epurse::card::personalize(&state, p1, dgi);
        assert_eq!(out.reply.status(), SW_OK, "DGI {i}");
        state = PurseState::from_bytes(&out.new_state.unwrap().to_bytes()).unwrap();
    }
    assert_eq!(state.lifecycle(), Lifecycle::Active);
    // Already active.
    let out = epurse::card::personalize(&state, 0x88, &dgis[0]);
    assert_eq!(out.reply.status(), StatusWord::CONDITIONS_NOT_SATISFIED);

    let mut session = epurse::card::Session::new();
    let r = epurse::card::select(&state, &mut session);
    assert_eq!(r.status(), SW_OK);
    assert_eq!(r.data()[0], 0x6F);
    assert!(session.is_selected());
}

/// DGI `0401` (tag access): AN10922 master key, AID, then a system identifier that fills the
/// 31-byte diversification input `UID(7) || AID(3) || SI` at most, so 21 bytes and no more.
#[test]
fn tag_access_system_identifier_up_to_21_bytes() {
    let state = PurseState::new(&danger::TEST_AID).unwrap();
    for (si_len, ok) in [(0usize, true), (21, true), (22, false)] {
        let mut dgi = vec![0x04, 0x01, u8::try_from(19 + si_len).unwrap()];
        dgi.extend_from_slice(&[0x5A; 16]);
        dgi.extend_from_slice(&[0xF0, 0x6D, 0x65]);
        dgi.extend(std::iter::repeat_n(0x31, si_len));
        let out = epurse::card::personalize(&state, 0x08, &dgi);
        if ok {
            assert_eq!(out.reply.status(), SW_OK, "{si_len}-byte system identifier");
            let next = out.new_state.unwrap();
            assert_eq!(PurseState::from_bytes(&next.to_bytes()).unwrap(), next);
        } else {
            assert_eq!(out.reply.status(), StatusWord::INCORRECT_DATA);
            assert!(out.new_state.is_none());
        }
    }
}

#[test]
fn cyclic_log_keeps_the_last_ten() {
    let mut card = Card::personalized();
    for i in 1..=12u32 {
        load(&mut card, PurseKind::Ep, i).unwrap();
    }
    for n in 1..=10u8 {
        let r = card.send(&Command::new(0x00, 0xB2, n, (SFI_LOG << 3) | 4).with_le(23));
        let rec = LogRecord::parse(r.data()).unwrap();
        // Record 1 is the 12th load (ATC 11), record 10 the 3rd (ATC 2).
        assert_eq!(rec.atc, 12 - u16::from(n));
        assert_eq!(rec.amount, 13 - u32::from(n));
    }
    let r = card.send(&Command::new(0x00, 0xB2, 11, (SFI_LOG << 3) | 4));
    assert_eq!(r.status(), StatusWord::RECORD_NOT_FOUND);
    let r = card.send(&Command::new(0x00, 0xB2, 1, (SFI_LOG << 3) | 4).with_le(5));
    assert_eq!(r.status(), StatusWord::new(0x6C, 0x17));
    assert_eq!(card.balance(PurseKind::Ep), 78);
}
