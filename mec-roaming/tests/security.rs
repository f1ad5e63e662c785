//! Admission of incoming messages: every refusal reason, duplicates versus replays.
#![allow(clippy::unwrap_used, missing_docs)]

use core::time::Duration;

use mec_roaming::jose::jws::sign_compact;
use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::message::{Body, Envelope, MessageId, RequestType, TransactionId};
use mec_roaming::security::{Admitted, Endpoint, Validity};
use mec_roaming::sim::registry;
use mec_roaming::{E164, ErrorCode, Registry, SeededRng, Timestamp};

struct World {
    visited: Endpoint,
    home: Endpoint,
    reg: Registry,
    now: Timestamp,
    rng: SeededRng,
}

fn world() -> World {
    let mut rng = SeededRng::from_u64(5);
    let v = PrivateKey::generate(&mut rng);
    let h = PrivateKey::generate(&mut rng);
    let s = PrivateKey::generate(&mut rng);
    let reg = registry(&v, &h, &s, None).unwrap();
    World {
        visited: Endpoint::new("visited-fi", v, Validity::default()),
        home: Endpoint::new("home-uk", h, Validity::default()),
        reg,
        now: Timestamp::from_unix_secs(1_760_000_000),
        rng,
    }
}

fn env(w: &mut World, iss: &str, aud: &str, iat: u64) -> Envelope {
    Envelope {
        ver: "1.0".into(),
        mid: MessageId::random(&mut w.rng),
        tid: TransactionId::random(&mut w.rng),
        iss: iss.into(),
        aud: aud.into(),
        iat,
        body: Body::RoamUserRequest {
            subscriber: E164::parse("+447700900123").unwrap(),
            request_type: RequestType::Payment,
        },
    }
}

fn code(r: Result<Admitted, mec_roaming::Error>) -> ErrorCode {
    ErrorCode::from(&r.unwrap_err())
}

#[test]
fn fresh_then_duplicate_then_replay() {
    let mut w = world();
    let now = w.now.as_unix_secs();
    let e = env(&mut w, "visited-fi", "home-uk", now);
    let t = w.visited.seal(&e).unwrap();
    assert_eq!(
        w.home.admit(w.now, &t, &w.reg).unwrap(),
        Admitted::Fresh(e.clone())
    );
    assert_eq!(
        w.home.admit(w.now, &t, &w.reg).unwrap(),
        Admitted::Duplicate(e.clone())
    );
    // Same mid, other content: a replay.
    let mut e2 = e.clone();
    e2.tid = TransactionId::parse("other").unwrap();
    let t2 = w.visited.seal(&e2).unwrap();
    assert_eq!(
        code(w.home.admit(w.now, &t2, &w.reg)),
        ErrorCode::AccessDenied
    );
    assert_eq!(w.home.remembered_ids(), 1);
    // After the window the id is forgotten and the message is stale.
    let later = w.now.saturating_add(Duration::from_secs(301));
    w.home.purge(later);
    assert_eq!(w.home.remembered_ids(), 0);
    assert_eq!(
        code(w.home.admit(later, &t, &w.reg)),
        ErrorCode::AccessDenied
    );
}

#[test]
fn every_refusal() {
    let mut w = world();
    let now = w.now.as_unix_secs();
    // future beyond the skew
    let e = env(&mut w, "visited-fi", "home-uk", now + 31);
    assert_eq!(
        code(w.home.admit(w.now, &w.visited.seal(&e).unwrap(), &w.reg)),
        ErrorCode::AccessDenied
    );
    // within the skew is fine
    let e = env(&mut w, "visited-fi", "home-uk", now + 29);
    assert!(
        w.home
            .admit(w.now, &w.visited.seal(&e).unwrap(), &w.reg)
            .is_ok()
    );
    // not for us
    let e = env(&mut w, "visited-fi", "silent-uk", now);
    assert_eq!(
        code(w.home.admit(w.now, &w.visited.seal(&e).unwrap(), &w.reg)),
        ErrorCode::AccessDenied
    );
    // iss differs from kid
    let e = env(&mut w, "silent-uk", "home-uk", now);
    assert_eq!(
        code(w.home.admit(w.now, &w.visited.seal(&e).unwrap(), &w.reg)),
        ErrorCode::AccessDenied
    );
    // signed by the wrong key for the kid
    let mut rng = SeededRng::from_u64(77);
    let mallory = PrivateKey::generate(&mut rng);
    let e = env(&mut w, "visited-fi", "home-uk", now);
    let t = sign_compact(&mallory, "visited-fi", &serde_json::to_vec(&e).unwrap()).unwrap();
    assert_eq!(
        code(w.home.admit(w.now, &t, &w.reg)),
        ErrorCode::AccessDenied
    );
    // unknown kid
    let t = sign_compact(&mallory, "mallory", &serde_json::to_vec(&e).unwrap()).unwrap();
    assert_eq!(
        code(w.home.admit(w.now, &t, &w.reg)),
        ErrorCode::AccessDenied
    );
    // valid signature, payload not an envelope / other version
    let t = sign_compact(w.visited_key(), "visited-fi", b"[1,2]").unwrap();
    assert_eq!(
        code(w.home.admit(w.now, &t, &w.reg)),
        ErrorCode::MessageInvalid
    );
    let mut v = serde_json::to_value(&e).unwrap();
    v["ver"] = "2.0".into();
    let t = sign_compact(w.visited_key(), "visited-fi", v.to_string().as_bytes()).unwrap();
    assert_eq!(
        code(w.home.admit(w.now, &t, &w.reg)),
        ErrorCode::VersionNotSupported
    );
    // not a JWS at all
    assert_eq!(
        code(w.home.admit(w.now, "hello", &w.reg)),
        ErrorCode::MessageInvalid
    );
    assert_eq!(
        w.home.remembered_ids(),
        1,
        "only the one admitted message is remembered"
    );
}

impl World {
    fn visited_key(&self) -> &PrivateKey {
        self.visited.decryption_key()
    }
}
