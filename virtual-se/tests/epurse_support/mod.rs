//! E-purse on the virtual SE: install and personalize through the GP card manager (SCP03),
//! a terminal (issuer load authority, software SAM) talking plain APDUs to the purse.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    unreachable_pub,
    missing_docs
)]

use crate::card_support::*;
use apdu_codec::{Command, ResponseView, parse_response};
use epurse::card::key_function;
use epurse::crypto::{DesKey, TdesKey};
use epurse::danger;
use epurse::host::{InMemoryMasterKeys, LoadAuthority, OnlineAuthorization};
use epurse::pboc::{
    self, DateTime, InitLoadResponse, InitPurchaseResponse, InitializeData, PurseKind,
};
use gp_scp::SecurityLevel;
use virtual_se::applet::{EPURSE_LOAD_FILE, EPURSE_MODULE};
use virtual_se::card::Card;
use virtual_se::store::Store;

pub const PURSE: &[u8] = &danger::TEST_AID;
pub const LOAD_TERMINAL: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x42];
pub const POS_TERMINAL: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x07, 0x77];
pub const WHEN: DateTime = DateTime {
    date: [0x20, 0x26, 0x11, 0x21],
    time: [0x07, 0x15, 0x00],
};

/// INSTALL [for install and make selectable] of the purse module over SCP03 (level 33), then
/// INSTALL [for personalization] and STORE DATA (one DGI per block, P1 DGI structure, last
/// block 88), all through the ISD's secure channel.
pub fn install_and_personalize<S: Store>(card: &mut Card<S>) {
    let mut host = open_scp03(card, SecurityLevel::ALL);
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
    ok(host.send(card, &install).view().status().to_u16());
    personalize(card, &mut host);
}

pub fn personalize<S: Store>(card: &mut Card<S>, host: &mut Host) {
    let perso = apdu(
        0x80,
        0xE6,
        0x20,
        0x00,
        &[&[0, 0, PURSE.len() as u8][..], PURSE, &[0, 0, 0]].concat(),
    );
    ok(host.send(card, &perso).view().status().to_u16());
    let dgis = danger::test_personalization().unwrap().dgis().unwrap();
    let n = dgis.len();
    for (i, dgi) in dgis.iter().enumerate() {
        let p1 = if i + 1 == n { 0x88 } else { 0x08 };
        let cmd = apdu(0x80, 0xE2, p1, i as u8, dgi);
        ok(host.send(card, &cmd).view().status().to_u16());
    }
}

/// Send a plain command; `(data, SW)`.
pub fn tx<S: Store>(card: &mut Card<S>, cmd: &Command) -> (Vec<u8>, u16) {
    send(card, &cmd.to_vec().unwrap())
}

pub fn select_purse<S: Store>(card: &mut Card<S>) -> (Vec<u8>, u16) {
    tx(card, &apdu(0x00, 0xA4, 0x04, 0x00, PURSE))
}

pub fn view(r: &(Vec<u8>, u16)) -> ResponseView<'_> {
    ResponseView::new(&r.0, apdu_codec::StatusWord::from_u16(r.1))
}

pub fn balance<S: Store>(card: &mut Card<S>) -> i32 {
    let r = tx(card, &pboc::get_balance(PurseKind::Ep));
    pboc::parse_balance(&view(&r)).unwrap()
}

pub fn authority() -> LoadAuthority<InMemoryMasterKeys> {
    LoadAuthority::new(danger::test_master_keys(), danger::TEST_TAC_KEY)
}

/// INITIALIZE FOR LOAD, MAC1 checked by the issuer; returns the authorization (ready to
/// produce CREDIT FOR LOAD) and the card's answer.
pub fn begin_load<S: Store>(
    card: &mut Card<S>,
    amount: u32,
) -> (OnlineAuthorization, InitLoadResponse, InitializeData) {
    let req = InitializeData {
        key_index: 1,
        amount,
        terminal_id: LOAD_TERMINAL,
    };
    let r = tx(card, &req.initialize_for_load(PurseKind::Ep));
    let rsp = InitLoadResponse::parse(&view(&r)).unwrap();
    let auth = authority()
        .begin_load(&danger::TEST_ASN, PurseKind::Ep, &req, &rsp)
        .unwrap();
    (auth, rsp, req)
}

/// A complete load; returns the TAC.
pub fn load<S: Store>(card: &mut Card<S>, amount: u32) -> [u8; 4] {
    let (mut auth, _, _) = begin_load(card, amount);
    let r = tx(card, &auth.command(&WHEN));
    auth.verify_tac(&view(&r)).unwrap()
}

/// A software PSAM built from epurse's public primitives: holds the purchase master key,
/// diversifies it with the card's ASN, computes MAC1, checks MAC2.
pub struct SoftSam {
    master: TdesKey,
    pub serial: u32,
    pending: Option<(DesKey, u32)>,
}

impl SoftSam {
    pub fn new() -> Self {
        Self {
            master: TdesKey::new(&danger::test_master_key(key_function::PURCHASE, 1)),
            serial: 0,
            pending: None,
        }
    }

    pub fn mac1(&mut self, rsp: &InitPurchaseResponse, amount: u32) -> ([u8; 4], [u8; 4]) {
        self.serial += 1;
        let serial = self.serial.to_be_bytes();
        let dpk = TdesKey::new(&pboc::diversify(&self.master, &danger::TEST_ASN));
        let ses = pboc::purchase_session_key(&dpk, &rsp.random, rsp.offline_atc, &serial);
        let mac1 = pboc::purchase_mac1(&ses, amount, pboc::TYPE_EP_PURCHASE, &POS_TERMINAL, &WHEN);
        self.pending = Some((ses, amount));
        (serial, mac1)
    }

    pub fn check_mac2(&mut self, mac2: &[u8; 4]) -> bool {
        self.pending
            .take()
            .is_some_and(|(ses, amount)| pboc::purchase_mac2(&ses, amount) == *mac2)
    }
}

/// INITIALIZE FOR PURCHASE and the SAM's MAC1: the card's answer and DEBIT FOR PURCHASE.
pub fn begin_purchase<S: Store>(
    card: &mut Card<S>,
    sam: &mut SoftSam,
    amount: u32,
) -> (InitPurchaseResponse, Command) {
    let req = InitializeData {
        key_index: 1,
        amount,
        terminal_id: POS_TERMINAL,
    };
    let r = tx(card, &req.initialize_for_purchase(PurseKind::Ep));
    let rsp = InitPurchaseResponse::parse(&view(&r)).unwrap();
    let (serial, mac1) = sam.mac1(&rsp, amount);
    (rsp, pboc::debit_for_purchase(&serial, &WHEN, &mac1))
}

/// A complete purchase; returns `(TAC, MAC2)` (MAC2 checked by the SAM).
pub fn purchase<S: Store>(
    card: &mut Card<S>,
    sam: &mut SoftSam,
    amount: u32,
) -> ([u8; 4], [u8; 4]) {
    let (_, debit) = begin_purchase(card, sam, amount);
    let r = tx(card, &debit);
    let (tac, mac2) = pboc::parse_pair(&view(&r)).unwrap();
    assert!(sam.check_mac2(&mac2), "the SAM rejects MAC2");
    (tac, mac2)
}

pub fn raw_response(bytes: &[u8]) -> (Vec<u8>, u16) {
    let v = parse_response(bytes).unwrap();
    (v.data().to_vec(), v.status().to_u16())
}
