//! The fuzz target's check function, kept in the library so that an ordinary `cargo test`
//! replays the committed corpus (`fuzz/corpus/epurse_applet/`) through the same code the
//! fuzzer runs.
//!
//! The input is read as a script of operations on a personalized test purse: raw APDUs
//! (arbitrary bytes), well-formed loads and purchases computed with the test keys, power cuts
//! before a commit, lost responses after a commit, and PIN presentations. After every step the
//! invariants are checked; a violation panics (which is what the fuzzer looks for).

use alloc::vec::Vec;

use apdu_codec::{Command, StatusWord, parse_command};

use crate::card::{Entropy, Outcome, PurseState, Session, key_function, process};
use crate::crypto::TdesKey;
use crate::danger;
use crate::pboc::{
    self, DateTime, InitLoadResponse, InitPurchaseResponse, InitializeData, PurseKind,
};

struct Harness {
    state: PurseState,
    session: Session,
    counter: u64,
    loaded: i64,
    spent: i64,
    moved: i64,
    dlk: TdesKey,
    dpk: TdesKey,
}

impl Harness {
    fn entropy(&mut self) -> Entropy {
        self.counter = self.counter.wrapping_add(1);
        let mut e = [0u8; 16];
        e[..8].copy_from_slice(&self.counter.to_be_bytes());
        e[8..].copy_from_slice(
            &self
                .counter
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_be_bytes(),
        );
        Entropy(e)
    }

    /// Run a command; `commit` decides whether the new state survives (false = power cut
    /// before the commit).
    fn run(&mut self, cmd: &Command, commit: bool) -> Outcome {
        let bytes = cmd.to_vec().unwrap_or_default();
        let entropy = self.entropy();
        match parse_command(&bytes) {
            Ok(view) => {
                let out = process(&self.state, &mut self.session, &view, &entropy);
                self.apply(out, commit)
            }
            Err(_) => Outcome {
                reply: crate::card::Reply::status_only(StatusWord::WRONG_LENGTH),
                new_state: None,
            },
        }
    }

    fn apply(&mut self, mut out: Outcome, commit: bool) -> Outcome {
        if let Some(next) = out.new_state.take() {
            if commit {
                check_transition(&self.state, &next);
                let moved = next.account(PurseKind::Ep).offline_atc
                    != self.state.account(PurseKind::Ep).offline_atc;
                if let Some(rec) = next
                    .log()
                    .next()
                    .filter(|r| moved && r.tx_type == pboc::TYPE_EP_TO_TAG)
                {
                    self.moved += i64::from(rec.amount);
                }
                self.state = next;
            } else {
                self.session.reset();
            }
        }
        out
    }

    fn select(&mut self) {
        let select = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(danger::TEST_AID.to_vec());
        let _ = self.run(&select, true);
    }

    fn load(&mut self, amount: u32, commit: bool) {
        let init = InitializeData {
            key_index: 1,
            amount,
            terminal_id: [0, 0, 0, 0, 0, 1],
        };
        let out = self.run(&init.initialize_for_load(PurseKind::Ep), true);
        let Ok(rsp) = InitLoadResponse::parse(&out.reply.view()) else {
            return;
        };
        let ses = pboc::load_session_key(&self.dlk, &rsp.random, rsp.online_atc);
        let when = DateTime {
            date: [0x20, 0x25, 0x06, 0x01],
            time: [0x12, 0x00, 0x00],
        };
        let mac2 = pboc::load_mac2(&ses, amount, pboc::TYPE_EP_LOAD, &init.terminal_id, &when);
        let before = self.state.account(PurseKind::Ep).balance;
        let out = self.run(&pboc::credit_for_load(&when, &mac2), commit);
        let after = self.state.account(PurseKind::Ep).balance;
        if commit && out.reply.status() == StatusWord::SUCCESS {
            self.loaded += i64::from(amount);
            assert_eq!(i64::from(after) - i64::from(before), i64::from(amount));
        } else {
            assert_eq!(before, after, "refused or torn load changed the balance");
        }
    }

    fn purchase(&mut self, amount: u32, commit: bool, lose_response: bool) {
        let init = InitializeData {
            key_index: 1,
            amount,
            terminal_id: [0, 0, 0, 0, 0, 2],
        };
        let out = self.run(&init.initialize_for_purchase(PurseKind::Ep), true);
        let Ok(rsp) = InitPurchaseResponse::parse(&out.reply.view()) else {
            return;
        };
        let serial = u32::try_from(self.counter & 0xFFFF_FFFF)
            .unwrap_or(0)
            .to_be_bytes();
        let ses = pboc::purchase_session_key(&self.dpk, &rsp.random, rsp.offline_atc, &serial);
        let when = DateTime {
            date: [0x20, 0x25, 0x06, 0x02],
            time: [0x08, 0x30, 0x00],
        };
        let mac1 = pboc::purchase_mac1(
            &ses,
            amount,
            pboc::TYPE_EP_PURCHASE,
            &init.terminal_id,
            &when,
        );
        let before = self.state.account(PurseKind::Ep).balance;
        let out = self.run(&pboc::debit_for_purchase(&serial, &when, &mac1), commit);
        let after = self.state.account(PurseKind::Ep).balance;
        let expected_mac2 = pboc::purchase_mac2(&ses, amount);
        if commit && out.reply.status() == StatusWord::SUCCESS {
            self.spent += i64::from(amount);
            assert_eq!(i64::from(before) - i64::from(after), i64::from(amount));
            if lose_response {
                // The terminal never saw TAC/MAC2: recover with GET TRANSACTION PROVE.
                self.session.reset();
                self.select();
                let prove = self.run(
                    &pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, rsp.offline_atc),
                    true,
                );
                let (mac2, _) = pboc::parse_pair(&prove.reply.view())
                    .unwrap_or_else(|_| panic!("completed purchase not provable"));
                assert_eq!(mac2, expected_mac2, "proved MAC2 differs");
            } else {
                let (_, mac2) = pboc::parse_pair(&out.reply.view())
                    .unwrap_or_else(|_| panic!("malformed DEBIT answer"));
                assert_eq!(mac2, expected_mac2);
            }
        } else {
            assert_eq!(
                before, after,
                "refused or torn purchase changed the balance"
            );
            if !commit {
                // A torn purchase must not be provable.
                self.select();
                let prove = self.run(
                    &pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, rsp.offline_atc),
                    true,
                );
                assert_ne!(
                    prove.reply.status(),
                    StatusWord::SUCCESS,
                    "torn purchase provable"
                );
            }
        }
    }

    fn check_ledger(&self) {
        let ep = i64::from(self.state.account(PurseKind::Ep).balance);
        assert_eq!(
            ep,
            self.loaded - self.spent - self.moved,
            "money not conserved"
        );
        let decoded = PurseState::from_bytes(&self.state.to_bytes())
            .unwrap_or_else(|e| panic!("state does not round-trip: {e}"));
        assert_eq!(decoded, self.state, "state encoding not stable");
    }
}

/// The invariant of every committed transition: a balance changes only together with exactly
/// one new log record of the matching amount, one ATC step, and a proof record.
fn check_transition(old: &PurseState, new: &PurseState) {
    for kind in [PurseKind::Ed, PurseKind::Ep] {
        let (a, b) = (old.account(kind), new.account(kind));
        let limit = i64::from(new.overdraft_limit(kind));
        assert!(i64::from(b.balance) >= -limit, "balance below overdraft");
        assert!(
            i64::from(b.balance) <= i64::from(new.max_balance()),
            "balance above maximum"
        );
        if a.balance == b.balance {
            continue;
        }
        let rec = new.log().next().copied().unwrap_or_default();
        let delta = (i64::from(b.balance) - i64::from(a.balance)).abs();
        assert_eq!(
            delta,
            i64::from(rec.amount),
            "balance change without matching log record"
        );
        let atc_steps = u32::from(b.online_atc.wrapping_sub(a.online_atc))
            + u32::from(b.offline_atc.wrapping_sub(a.offline_atc));
        assert_eq!(
            atc_steps, 1,
            "a transaction must advance exactly one ATC by one"
        );
        assert!(
            new.prove(rec.tx_type, rec.atc).is_some(),
            "completed transaction not provable"
        );
    }
}

/// What one fuzz input did (so that corpus replays can show they exercise something).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Money loaded by completed loads.
    pub loaded: i64,
    /// Money spent by completed purchases.
    pub spent: i64,
    /// Money moved to the tag by raw MOVE TO TAG commands.
    pub moved: i64,
    /// Steps executed.
    pub steps: usize,
}

/// Run one fuzz input. Panics when an invariant breaks; returns what it did otherwise.
pub fn check_purse(data: &[u8]) -> Summary {
    let Ok(state) = danger::test_purse_state() else {
        return Summary::default();
    };
    let keys = || -> Option<(TdesKey, TdesKey)> {
        let dlk = state.key(key_function::LOAD, 1)?;
        let dpk = state.key(key_function::PURCHASE, 1)?;
        Some((TdesKey::new(&dlk.key), TdesKey::new(&dpk.key)))
    };
    let Some((dlk, dpk)) = keys() else {
        return Summary::default();
    };
    let mut h = Harness {
        state,
        session: Session::new(),
        counter: 0,
        loaded: 0,
        spent: 0,
        moved: 0,
        dlk,
        dpk,
    };
    h.select();
    let mut rest = data;
    let mut steps = 0;
    while let Some((&op, tail)) = rest.split_first() {
        steps += 1;
        if steps > 256 {
            break;
        }
        rest = tail;
        let arg = |r: &mut &[u8]| -> u32 {
            let (a, t) = r.split_at(r.len().min(2));
            *r = t;
            a.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
        };
        match op % 8 {
            0 => {
                let len = usize::from(op >> 3).min(rest.len());
                let (apdu, t) = rest.split_at(len);
                rest = t;
                if let Ok(view) = parse_command(apdu) {
                    let entropy = h.entropy();
                    let out = process(&h.state, &mut h.session, &view, &entropy);
                    let _ = h.apply(out, true);
                }
            }
            1 => {
                let a = arg(&mut rest);
                h.load(a.max(1), true);
            }
            2 => {
                let a = arg(&mut rest);
                h.purchase(a.max(1), true, false);
            }
            3 => {
                let a = arg(&mut rest);
                h.purchase(a.max(1), false, false);
            }
            4 => {
                let a = arg(&mut rest);
                h.purchase(a.max(1), true, true);
            }
            5 => {
                let a = arg(&mut rest);
                h.load(a.max(1), false);
            }
            6 => {
                h.session.reset();
                h.select();
            }
            _ => {
                let len = usize::from(op >> 3).min(rest.len()).min(8);
                let (pin, t) = rest.split_at(len);
                rest = t;
                let cmd = Command::new(0x00, 0x20, 0x00, 0x00).with_data(pin.to_vec());
                if !pin.is_empty() {
                    let _ = h.run(&cmd, true);
                }
            }
        }
        h.check_ledger();
    }
    Summary {
        loaded: h.loaded,
        spent: h.spent,
        moved: h.moved,
        steps,
    }
}

/// Decode a corpus file, for tools that want to show what a fuzz input does: the list of
/// operation bytes (one per step).
#[must_use]
pub fn operations(data: &[u8]) -> Vec<u8> {
    data.iter().map(|b| b % 8).collect()
}
