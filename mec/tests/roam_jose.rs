//! Cross-language JOSE check: the roaming messages our code signs (JWS ES256) and the payment
//! data it encrypts (JWE ECDH-ES + A256GCM) are verified and decrypted by joserfc, a standard
//! Python JOSE library, and what joserfc produces is accepted by our code.
//!
//! Needs the project venv: `python3 -m venv .venv && .venv/bin/pip install "joserfc==1.8.0"`.
//! Without it the tests fail when `CI` is set, and print a notice and pass otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mec_roaming::jose::jwe::{self, EcJwk};
use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::jose::{b64, jws};
use mec_roaming::message::{
    Body, Envelope, MessageId, PROTOCOL_VERSION, RequestType, TransactionId,
};
use mec_roaming::registry::Registry;
use mec_roaming::security::{Admitted, Endpoint, Validity};
use mec_roaming::seeded_rng::SeededRng;
use mec_roaming::{E164, Timestamp};
use serde_json::Value;

const INSTALL: &str = r#"python3 -m venv .venv && .venv/bin/pip install "joserfc==1.8.0""#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The venv's Python with joserfc, or `None` (outside CI) when it is missing.
fn python() -> Option<PathBuf> {
    let py = root().join(".venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import joserfc"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let msg = format!(
        "the cross-language JOSE check needs joserfc in the project venv ({}); install it with: {INSTALL}",
        py.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("notice: {msg}; skipping");
    None
}

/// Runs `scripts/jose_check.py ARGS`; returns (exit code, JSON answer).
fn check(py: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(py)
        .arg(root().join("scripts/jose_check.py"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "jose_check.py printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_owned()
}

fn envelope(iss: &str, aud: &str, iat: u64) -> Envelope {
    Envelope {
        ver: PROTOCOL_VERSION.into(),
        mid: MessageId::parse("a1b2c3d4e5f60718293a4b5c6d7e8f90").unwrap(),
        tid: TransactionId::parse("0f1e2d3c4b5a69788796a5b4c3d2e1f0").unwrap(),
        iss: iss.into(),
        aud: aud.into(),
        iat,
        body: Body::RoamUserRequest {
            subscriber: E164::parse("+447700900123").unwrap(),
            request_type: RequestType::Payment,
        },
    }
}

fn registry(visited: &PrivateKey, home: &PrivateKey) -> Registry {
    Registry::from_toml(&format!(
        r#"serial = 1
[[partner]]
name = "visited-fi"
url = "http://127.0.0.1:1/roam/v1/s2s/messages"
country = "FI"
country_code = "358"
verifying_key = """
{}"""
[[partner]]
name = "home-uk"
url = "http://127.0.0.1:2/roam/v1/s2s/messages"
country = "GB"
country_code = "44"
local_prefixes = ["7700"]
verifying_key = """
{}"""
"#,
        visited.public_key_pem().unwrap(),
        home.public_key_pem().unwrap()
    ))
    .unwrap()
}

const IAT: u64 = 1_790_000_000;

#[test]
fn a_roaming_message_signed_by_our_endpoint_verifies_with_joserfc() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SeededRng::from_u64(0x4a4f_5345);
    let visited = PrivateKey::generate(&mut rng);
    let other = PrivateKey::generate(&mut rng);
    let env = envelope("visited-fi", "home-uk", IAT);
    let signer = PrivateKey::from_pkcs8_der(&visited.to_pkcs8_der().unwrap()).unwrap();
    let token = Endpoint::new("visited-fi", signer, Validity::default())
        .seal(&env)
        .unwrap();

    let pem = write(
        dir.path(),
        "visited.pub.pem",
        visited.public_key_pem().unwrap(),
    );
    let jwk = write(
        dir.path(),
        "visited.jwk.json",
        serde_json::to_vec(&EcJwk::from_public_key(&visited.public_key())).unwrap(),
    );
    let tok = write(dir.path(), "message.jws", &token);
    for key in [&pem, &jwk] {
        let (code, v) = check(&py, &["verify", "--key", key, "--token", &tok]);
        assert_eq!(
            (code, &v["ok"]),
            (0, &Value::Bool(true)),
            "joserfc refused our JWS with {key}: {v}"
        );
        assert_eq!(v["header"]["alg"], "ES256");
        assert_eq!(v["header"]["kid"], "visited-fi");
        assert_eq!(v["header"]["typ"], "mec-roam+jws");
        let payload = b64::decode(v["payload_b64"].as_str().unwrap()).unwrap();
        assert_eq!(mec_roaming::message::parse_envelope(&payload).unwrap(), env);
    }

    // The same check fails for a tampered token and for another key.
    let parts: Vec<&str> = token.split('.').collect();
    let mut other_env = env.clone();
    other_env.aud = "someone-else".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64::encode(&serde_json::to_vec(&other_env).unwrap()),
        parts[2]
    );
    let bad = write(dir.path(), "tampered.jws", &tampered);
    let (code, v) = check(&py, &["verify", "--key", &pem, "--token", &bad]);
    assert_eq!((code, &v["ok"]), (1, &Value::Bool(false)), "{v}");
    let other_pem = write(dir.path(), "other.pub.pem", other.public_key_pem().unwrap());
    let (code, v) = check(&py, &["verify", "--key", &other_pem, "--token", &tok]);
    assert_eq!((code, &v["ok"]), (1, &Value::Bool(false)), "{v}");
}

#[test]
fn a_message_signed_by_joserfc_is_admitted_by_our_endpoint() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SeededRng::from_u64(7);
    let visited = PrivateKey::generate(&mut rng);
    let home = PrivateKey::generate(&mut rng);
    let env = envelope("visited-fi", "home-uk", IAT);
    let key = write(
        dir.path(),
        "visited.key.pem",
        visited.to_pkcs8_pem().unwrap().as_bytes(),
    );
    let payload = write(
        dir.path(),
        "payload.json",
        serde_json::to_vec(&env).unwrap(),
    );
    let (code, v) = check(
        &py,
        &[
            "sign",
            "--key",
            &key,
            "--kid",
            "visited-fi",
            "--payload",
            &payload,
        ],
    );
    assert_eq!(code, 0, "{v}");
    let token = v["token"].as_str().unwrap();

    let (header, body) = jws::verify_compact(token, &visited.verifying_key()).unwrap();
    assert_eq!(header.kid.as_deref(), Some("visited-fi"));
    assert_eq!(mec_roaming::message::parse_envelope(&body).unwrap(), env);
    // The home server's admission (signature, sender, audience, window, replay cache) takes it.
    let reg = registry(&visited, &home);
    let mut endpoint = Endpoint::new("home-uk", home, Validity::default());
    match endpoint
        .admit(Timestamp::from_unix_secs(IAT + 1), token, &reg)
        .unwrap()
    {
        Admitted::Fresh(e) => assert_eq!(e, env),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        endpoint
            .admit(Timestamp::from_unix_secs(IAT + 2), token, &reg)
            .unwrap(),
        Admitted::Duplicate(_)
    ));
}

#[test]
fn payment_data_jwe_round_trips_with_joserfc_both_ways() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SeededRng::from_u64(99);
    let visited = PrivateKey::generate(&mut rng);
    let card = br#"{"token":"q2v1Yk9fZ3Jm","maskedPan":"411111******1111","expires":1790000600}"#;

    // Ours → joserfc.
    let token =
        jwe::encrypt_compact(&visited.public_key(), Some("visited-fi"), card, &mut rng).unwrap();
    let key = write(
        dir.path(),
        "visited.key.pem",
        visited.to_pkcs8_pem().unwrap().as_bytes(),
    );
    let tok = write(dir.path(), "card.jwe", &token);
    let (code, v) = check(&py, &["decrypt", "--key", &key, "--token", &tok]);
    assert_eq!(code, 0, "joserfc could not decrypt our JWE: {v}");
    assert_eq!(v["header"]["alg"], "ECDH-ES");
    assert_eq!(v["header"]["enc"], "A256GCM");
    assert_eq!(
        b64::decode(v["plaintext_b64"].as_str().unwrap()).unwrap(),
        card
    );

    // joserfc → ours.
    let pem = write(
        dir.path(),
        "visited.pub.pem",
        visited.public_key_pem().unwrap(),
    );
    let plain = write(dir.path(), "card.json", card);
    let (code, v) = check(&py, &["encrypt", "--key", &pem, "--payload", &plain]);
    assert_eq!(code, 0, "{v}");
    let back = jwe::decrypt_compact(v["token"].as_str().unwrap(), &visited).unwrap();
    assert_eq!(back.as_slice(), card);
}
