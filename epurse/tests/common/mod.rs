//! Shared test harness: a purse in a simulated runtime, the issuer's load authority and a
//! simple in-test SAM.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    missing_docs,
    unreachable_pub
)]

use apdu_codec::{Command, StatusWord, parse_command};
use epurse::card::{Entropy, Outcome, PurseState, Reply, Session, key_function, process};
use epurse::crypto::TdesKey;
use epurse::danger;
use epurse::host::{InMemoryMasterKeys, LoadAuthority};
use epurse::pboc::{self, DateTime, InitPurchaseResponse, InitializeData, PurseKind};

/// What the runtime does with a command's new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Commit and answer.
    Normal,
    /// Power cut before the commit: the new state is dropped, the session reset.
    TearBeforeCommit,
    /// Commit, then the answer is lost (power cut after the commit).
    LoseResponse,
}

/// A purse in a runtime that persists through the stable encoding, like the virtual SE.
pub struct Card {
    pub stored: Vec<u8>,
    pub state: PurseState,
    pub session: Session,
    pub counter: u64,
}

impl Card {
    pub fn personalized() -> Self {
        let state = danger::test_purse_state().unwrap();
        let mut card = Card {
            stored: state.to_bytes(),
            state,
            session: Session::new(),
            counter: 0,
        };
        card.select();
        card
    }

    pub fn entropy(&mut self) -> Entropy {
        self.counter += 1;
        let mut e = [0u8; 16];
        e[..8].copy_from_slice(&self.counter.to_be_bytes());
        e[8..].copy_from_slice(&(self.counter.wrapping_mul(0x2545_F491_4F6C_DD1D)).to_be_bytes());
        Entropy(e)
    }

    /// Send a command; `None` when the answer was lost.
    pub fn send_with(&mut self, cmd: &Command, fate: Fate) -> Option<Reply> {
        let bytes = cmd.to_vec().unwrap();
        let view = parse_command(&bytes).unwrap();
        let entropy = self.entropy();
        let Outcome { reply, new_state } = process(&self.state, &mut self.session, &view, &entropy);
        match (new_state, fate) {
            (Some(next), Fate::TearBeforeCommit) => {
                drop(next);
                self.power_cut();
                None
            }
            (Some(next), f) => {
                // Persist atomically through the encoding, then replace.
                self.stored = next.to_bytes();
                self.state = PurseState::from_bytes(&self.stored).unwrap();
                assert_eq!(self.state, next);
                if f == Fate::LoseResponse {
                    self.power_cut();
                    None
                } else {
                    Some(reply)
                }
            }
            (None, Fate::Normal) => Some(reply),
            (None, _) => {
                // A tear during a command that writes nothing changes nothing either.
                self.power_cut();
                None
            }
        }
    }

    pub fn send(&mut self, cmd: &Command) -> Reply {
        self.send_with(cmd, Fate::Normal).unwrap()
    }

    pub fn power_cut(&mut self) {
        self.session.reset();
        // After power-on the runtime reloads the committed bytes.
        self.state = PurseState::from_bytes(&self.stored).unwrap();
    }

    pub fn select(&mut self) -> Reply {
        self.send(&Command::new(0x00, 0xA4, 0x04, 0x00).with_data(danger::TEST_AID.to_vec()))
    }

    pub fn verify_pin(&mut self, pin: &[u8]) -> Reply {
        self.send(&Command::new(0x00, 0x20, 0x00, 0x00).with_data(pin.to_vec()))
    }

    pub fn balance(&self, kind: PurseKind) -> i32 {
        self.state.account(kind).balance
    }
}

/// The issuer's load authority over the test master keys.
pub fn authority() -> LoadAuthority<InMemoryMasterKeys> {
    LoadAuthority::new(danger::test_master_keys(), danger::TEST_TAC_KEY)
}

pub const WHEN: DateTime = DateTime {
    date: [0x20, 0x25, 0x06, 0x15],
    time: [0x10, 0x20, 0x30],
};

pub const LOAD_TERMINAL: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x42];
pub const POS_TERMINAL: [u8; 6] = [0x00, 0x00, 0x00, 0x00, 0x07, 0x77];

/// The simple in-test SAM: holds the purchase master key, diversifies per card, computes
/// MAC1, checks MAC2, keeps a terminal transaction serial.
pub struct TestSam {
    master: TdesKey,
    pub serial: u32,
    pending: Option<(epurse::crypto::DesKey, u32)>,
}

impl TestSam {
    pub fn new() -> Self {
        TestSam {
            master: TdesKey::new(&danger::test_master_key(key_function::PURCHASE, 1)),
            serial: 0,
            pending: None,
        }
    }

    /// INIT SAM FOR PURCHASE: serial and MAC1.
    pub fn mac1(
        &mut self,
        asn: &[u8; 8],
        rsp: &InitPurchaseResponse,
        amount: u32,
        tx_type: u8,
        when: &DateTime,
    ) -> ([u8; 4], [u8; 4]) {
        self.serial += 1;
        let serial = self.serial.to_be_bytes();
        let dpk = TdesKey::new(&pboc::diversify(&self.master, asn));
        let ses = pboc::purchase_session_key(&dpk, &rsp.random, rsp.offline_atc, &serial);
        let mac1 = pboc::purchase_mac1(&ses, amount, tx_type, &POS_TERMINAL, when);
        self.pending = Some((ses, amount));
        (serial, mac1)
    }

    /// CREDIT SAM FOR PURCHASE: check MAC2.
    pub fn check_mac2(&mut self, mac2: &[u8; 4]) -> bool {
        let Some((ses, amount)) = self.pending.take() else {
            return false;
        };
        pboc::purchase_mac2(&ses, amount) == *mac2
    }
}

/// A complete load through the authority; returns the final reply (TAC or error).
pub fn load(card: &mut Card, kind: PurseKind, amount: u32) -> Result<[u8; 4], StatusWord> {
    let auth = authority();
    let req = InitializeData {
        key_index: 1,
        amount,
        terminal_id: LOAD_TERMINAL,
    };
    let r = card.send(&req.initialize_for_load(kind));
    let rsp = pboc::InitLoadResponse::parse(&r.view()).map_err(|_| r.status())?;
    let mut ok = auth
        .begin_load(&danger::TEST_ASN, kind, &req, &rsp)
        .unwrap();
    let r = card.send(&ok.command(&WHEN));
    ok.verify_tac(&r.view()).map_err(|_| r.status())
}

/// A complete purchase through the SAM; returns `(TAC, MAC2)`.
pub fn purchase(
    card: &mut Card,
    sam: &mut TestSam,
    kind: PurseKind,
    amount: u32,
) -> Result<([u8; 4], [u8; 4]), StatusWord> {
    let req = InitializeData {
        key_index: 1,
        amount,
        terminal_id: POS_TERMINAL,
    };
    let r = card.send(&req.initialize_for_purchase(kind));
    let rsp = InitPurchaseResponse::parse(&r.view()).map_err(|_| r.status())?;
    let (serial, mac1) = sam.mac1(&danger::TEST_ASN, &rsp, amount, kind.purchase_type(), &WHEN);
    let r = card.send(&pboc::debit_for_purchase(&serial, &WHEN, &mac1));
    let (tac, mac2) = pboc::parse_pair(&r.view()).map_err(|_| r.status())?;
    assert!(sam.check_mac2(&mac2), "SAM rejects MAC2");
    Ok((tac, mac2))
}
