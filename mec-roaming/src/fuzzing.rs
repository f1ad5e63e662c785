//! Checking functions for the fuzz targets in `fuzz/fuzz_targets/roaming_*.rs`. The committed
//! corpus under `fuzz/corpus/<target>/` is replayed through these same functions by
//! `tests/fuzz_corpus.rs`, so every crash file becomes an ordinary test.
//!
//! Each function panics only when an invariant is broken (that is the finding).

use core::time::Duration;
use std::sync::OnceLock;

use crate::jose::jws::{parse_compact, sign_compact};
use crate::jose::keys::PrivateKey;
use crate::message::{PaymentMethod, RequestType, parse_envelope};
use crate::registry::{Registry, parse_update_json, parse_update_toml};
use crate::seeded_rng::SeededRng;
use crate::server::{HomeInput, Transmit, Undeliverable, UserRequest, VisitedInput};
use crate::sim::{ALICE, BOB, CAROL, Fault, HOME, NOBODY, Sim, SimKeys, UserScript, VISITED};
use crate::store::Pin;

fn fixed_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate(&mut SeededRng::from_u64(0xF022)))
}

/// `roaming_jws`: parsing any text as a compact JWS never panics; a parsed token verifies (or
/// not) without panicking; signing the input as a payload round-trips.
pub fn jws(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = parse_compact(&text) {
        let _ = t.verify(&fixed_key().verifying_key());
    }
    let Ok(token) = sign_compact(fixed_key(), "fuzz", data) else {
        panic!("signing failed");
    };
    let Ok(parsed) = parse_compact(&token) else {
        panic!("own token does not parse");
    };
    let Ok(payload) = parsed.verify(&fixed_key().verifying_key()) else {
        panic!("own token does not verify");
    };
    assert_eq!(payload, data);
}

/// `roaming_message`: any bytes as an envelope: never panics; an accepted envelope
/// re-serializes to an equal envelope.
pub fn message(data: &[u8]) {
    if let Ok(env) = parse_envelope(data) {
        let Ok(again) = serde_json::to_vec(&env) else {
            panic!("accepted envelope does not serialize");
        };
        let Ok(back) = parse_envelope(&again) else {
            panic!("re-serialized envelope does not parse");
        };
        assert_eq!(back, env);
    }
}

/// A fresh copy of the fixture registry; its three keys are generated once, not per input
/// (three P-256 key generations dominated every execution).
fn small_registry() -> Option<Registry> {
    static REGISTRY: OnceLock<Option<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut rng = SeededRng::from_u64(0xF023);
            let a = PrivateKey::generate(&mut rng);
            let b = PrivateKey::generate(&mut rng);
            let c = PrivateKey::generate(&mut rng);
            crate::sim::registry(&a, &b, &c, None).ok()
        })
        .clone()
}

/// `roaming_registry_update`: any bytes as a JSON or TOML update applied to a small registry:
/// never panics, and a refused update leaves the registry exactly as it was.
pub fn registry_update(data: &[u8]) {
    let Some(mut reg) = small_registry() else {
        panic!("fixture registry");
    };
    let mut updates = Vec::new();
    if let Ok(u) = parse_update_json(data) {
        updates.push(u);
    }
    if let Ok(u) = parse_update_toml(&String::from_utf8_lossy(data)) {
        updates.push(u);
    }
    for u in updates {
        let before = reg.to_config();
        let serial = reg.serial();
        match reg.apply_update(&u) {
            Ok(()) => assert_eq!(reg.serial(), u.serial),
            Err(_) => {
                assert_eq!(reg.serial(), serial);
                assert_eq!(
                    reg.to_config(),
                    before,
                    "refused update changed the registry"
                );
            }
        }
        // Lookups still work on whatever is there.
        for n in [ALICE, BOB, CAROL, NOBODY] {
            if let Ok(num) = crate::E164::parse(n) {
                let _ = reg.candidates(&num);
            }
        }
    }
}

/// `roaming_machines`: both servers driven by a byte-coded script of content-provider
/// requests, garbage and replayed or bit-flipped messages, user actions, clock jumps, partners
/// going down, refusing or silent, and transport failure reports (also late and repeated
/// ones). Never panics; never more than one payment per transaction.
pub fn machines(data: &[u8]) {
    // The world's keys depend only on the first byte and one flag: generate each of the 512
    // key sets once instead of per input (key generation was a third of every execution).
    static WORLDS: [[OnceLock<SimKeys>; 2]; 256] = [const { [const { OnceLock::new() }; 2] }; 256];
    let seed = data.first().copied().unwrap_or(0);
    let encrypt = data.get(1).is_some_and(|b| b & 1 == 1);
    let world = &WORLDS[usize::from(seed)][usize::from(encrypt)];
    let keys = world.get_or_init(|| {
        let Ok(keys) = SimKeys::generate(u64::from(seed), encrypt) else {
            panic!("fixture keys");
        };
        keys
    });
    let Ok(mut sim) = Sim::with_keys(keys) else {
        panic!("fixture world");
    };
    let subscribers = [ALICE, BOB, CAROL, NOBODY, "+44 7700 900123", "not a number"];
    let kinds = [
        RequestType::Payment,
        RequestType::Authentication,
        RequestType::DigitalSignature,
        RequestType::EndToEndSignature,
    ];
    let methods = [PaymentMethod::Card, PaymentMethod::Wallet];
    let mut i = 2usize;
    let mut next = || {
        let b = data.get(i).copied();
        i += 1;
        b
    };
    let mut sessions: Vec<String> = Vec::new();
    while let Some(op) = next() {
        let arg = next().unwrap_or(0);
        match op % 8 {
            0 => {
                let kind = kinds[usize::from(arg) % kinds.len()];
                let sub = subscribers[usize::from(arg >> 2) % subscribers.len()];
                let amount = (kind == RequestType::Payment).then_some(u64::from(arg) * 10);
                let m = [methods[usize::from(arg >> 5) % 2]];
                let script = if arg & 0x80 == 0 {
                    UserScript::Pins(vec!["1234".into(), "0000".into()], None)
                } else {
                    UserScript::Ignore
                };
                let _ = sim.start(Sim::request(sub, kind, amount, &m), script);
            }
            1 => sim.run_for(Duration::from_millis(u64::from(arg) * 250)),
            2 => {
                // Replay a captured message to either side.
                if !sim.wire.is_empty() {
                    let w = sim.wire[usize::from(arg) % sim.wire.len()].3.clone();
                    let _ = if arg & 1 == 0 {
                        sim.inject_to_visited(w)
                    } else {
                        sim.inject_to_home(w)
                    };
                }
            }
            3 => {
                // Flip one byte of a captured message.
                if !sim.wire.is_empty() {
                    let mut w = sim.wire[usize::from(arg) % sim.wire.len()]
                        .3
                        .clone()
                        .into_bytes();
                    let pos = usize::from(next().unwrap_or(0)) * 7 % w.len().max(1);
                    if let Some(b) = w.get_mut(pos) {
                        *b ^= 1 << (arg % 7);
                    }
                    let w = String::from_utf8_lossy(&w).into_owned();
                    let _ = if arg & 0x80 == 0 {
                        sim.inject_to_visited(w)
                    } else {
                        sim.inject_to_home(w)
                    };
                }
            }
            4 => {
                let len = usize::from(arg) % 64;
                let junk: Vec<u8> = (0..len).filter_map(|_| next()).collect();
                let text = String::from_utf8_lossy(&junk).into_owned();
                let _ = sim
                    .visited
                    .handle_input(sim.now, VisitedInput::Receive { jws: text.clone() });
                let _ = sim
                    .home
                    .handle_input(sim.now, HomeInput::Receive { jws: text });
                sim.drain();
            }
            5 => {
                let session = sessions
                    .get(usize::from(arg) % sessions.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| "nope".into());
                let req = match arg % 4 {
                    0 => UserRequest::FetchContract,
                    1 => UserRequest::Status,
                    2 => UserRequest::SubmitDeviceSignature {
                        signature: "AAAA".into(),
                    },
                    _ => match Pin::parse(if arg & 4 == 0 { "1234" } else { "9999" }) {
                        Ok(pin) => UserRequest::SubmitPin { pin, method: None },
                        Err(_) => UserRequest::Status,
                    },
                };
                let _ = sim.home.handle_input(
                    sim.now,
                    HomeInput::User {
                        session,
                        request: req,
                    },
                );
                sim.drain();
            }
            6 => {
                sim.now = sim
                    .now
                    .saturating_add(Duration::from_secs(u64::from(arg) * 4))
            }
            _ if arg >= 0xC0 => {
                // A server's endpoint goes down, refuses, falls silent or recovers.
                let name = if arg & 1 == 0 { VISITED } else { HOME };
                match (arg >> 1) & 3 {
                    0 => sim.faults.remove(name),
                    1 => sim.faults.insert(name.to_owned(), Fault::Down),
                    2 => sim.faults.insert(name.to_owned(), Fault::Refuses),
                    _ => sim.faults.insert(name.to_owned(), Fault::Silent),
                };
            }
            _ if arg >= 0x80 => {
                // A transport failure report for any captured message, to its sender.
                if let Some((from, to, kind, jws)) = sim
                    .wire
                    .get(usize::from(arg) % sim.wire.len().max(1))
                    .cloned()
                    && let Some(u) = report_for(&to, &kind, &jws, arg & 1 == 1)
                {
                    let _ = if from == VISITED {
                        sim.visited
                            .handle_input(sim.now, VisitedInput::Undeliverable(u))
                    } else {
                        sim.home.handle_input(sim.now, HomeInput::Undeliverable(u))
                    };
                    sim.drain();
                }
            }
            _ => {
                let _ = sim.visited.handle_input(sim.now, VisitedInput::Timeout);
                let _ = sim.home.handle_input(sim.now, HomeInput::Timeout);
                sim.drain();
            }
        }
        sessions = sim
            .user_replies
            .iter()
            .map(|(s, _)| s.clone())
            .chain(core::iter::once("nope".to_owned()))
            .collect();
        sessions.dedup();
    }
    sim.run_for(Duration::from_secs(60));
    let pays = &sim.visited.acquirer().payments;
    let mut tids: Vec<_> = pays.iter().map(|p| p.tid.clone()).collect();
    tids.sort();
    let n = tids.len();
    tids.dedup();
    assert_eq!(n, tids.len(), "a transaction was paid twice");
}

/// The transport failure report for a captured message.
fn report_for(to: &str, kind: &str, jws: &str, permanent: bool) -> Option<Undeliverable> {
    let parsed = parse_compact(jws).ok()?;
    let env = parse_envelope(parsed.unverified_payload()).ok()?;
    let t = Transmit {
        to: to.to_owned(),
        url: String::new(),
        tid: env.tid,
        message_type: kind.to_owned(),
        mid: env.mid,
        jws: jws.to_owned(),
    };
    Some(Undeliverable::new(&t, permanent, "fuzz"))
}
