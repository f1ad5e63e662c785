//! JOSE known-answer vectors (tests/data/jose_vectors.toml) and round trips.
#![allow(clippy::unwrap_used, missing_docs)]

use mec_roaming::jose::jwe::{EcJwk, concat_kdf, decrypt_compact, encrypt_compact};
use mec_roaming::jose::jws::{parse_compact, sign_compact, verify_compact};
use mec_roaming::jose::{b64, keys::PrivateKey};
use mec_roaming::{ErrorCode, SeededRng};
use p256::ecdsa::VerifyingKey;
use p256::elliptic_curve::ecdh::diffie_hellman;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    es256: Vec<Es256>,
    concat_kdf: Vec<Kdf>,
}

#[derive(Deserialize)]
struct Es256 {
    source: String,
    x: String,
    y: String,
    d: String,
    jws: String,
    payload: String,
}

#[derive(Deserialize)]
struct Kdf {
    source: String,
    alice_d: String,
    alice_x: String,
    alice_y: String,
    bob_d: String,
    bob_x: String,
    bob_y: String,
    enc: String,
    apu: String,
    apv: String,
    key_bytes: usize,
    derived_key: String,
}

fn vectors() -> Vectors {
    toml::from_str(include_str!("data/jose_vectors.toml")).unwrap()
}

fn jwk(x: &str, y: &str) -> p256::PublicKey {
    EcJwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: x.into(),
        y: y.into(),
    }
    .to_public_key()
    .unwrap()
}

#[test]
fn rfc7515_a3_es256_verifies() {
    for v in vectors().es256 {
        let pk = jwk(&v.x, &v.y);
        // The private scalar d belongs to this public key.
        let sk = p256::SecretKey::from_slice(&b64::decode(&v.d).unwrap()).unwrap();
        assert_eq!(sk.public_key(), pk, "{}", v.source);
        let (header, payload) = verify_compact(&v.jws, &VerifyingKey::from(&pk)).unwrap();
        assert_eq!(header.alg, "ES256");
        assert_eq!(payload, v.payload.as_bytes(), "{}", v.source);
        // One changed signature character is refused.
        let mut bad = v.jws.clone();
        bad.pop();
        bad.push('A');
        let e = verify_compact(&bad, &VerifyingKey::from(&pk)).unwrap_err();
        assert_eq!(ErrorCode::from(&e), ErrorCode::AccessDenied);
    }
}

#[test]
fn rfc7518_appendix_c_concat_kdf() {
    for v in vectors().concat_kdf {
        let alice = p256::SecretKey::from_slice(&b64::decode(&v.alice_d).unwrap()).unwrap();
        let bob = p256::SecretKey::from_slice(&b64::decode(&v.bob_d).unwrap()).unwrap();
        assert_eq!(alice.public_key(), jwk(&v.alice_x, &v.alice_y));
        assert_eq!(bob.public_key(), jwk(&v.bob_x, &v.bob_y));
        let z = diffie_hellman(alice.to_nonzero_scalar(), bob.public_key().as_affine());
        let z2 = diffie_hellman(bob.to_nonzero_scalar(), alice.public_key().as_affine());
        assert_eq!(z.raw_secret_bytes(), z2.raw_secret_bytes());
        let apu = b64::decode(&v.apu).unwrap();
        let apv = b64::decode(&v.apv).unwrap();
        let k = concat_kdf(
            z.raw_secret_bytes(),
            v.enc.as_bytes(),
            &apu,
            &apv,
            v.key_bytes,
        );
        assert_eq!(b64::encode(&k), v.derived_key, "{}", v.source);
    }
}

#[test]
fn jws_round_trip_and_refusals() {
    let mut rng = SeededRng::from_u64(1);
    let k = PrivateKey::generate(&mut rng);
    let other = PrivateKey::generate(&mut rng);
    let t = sign_compact(&k, "home-uk", b"{\"a\":1}").unwrap();
    let (h, p) = verify_compact(&t, &k.verifying_key()).unwrap();
    assert_eq!(h.kid.as_deref(), Some("home-uk"));
    assert_eq!(p, b"{\"a\":1}");
    assert_eq!(
        ErrorCode::from(&verify_compact(&t, &other.verifying_key()).unwrap_err()),
        ErrorCode::AccessDenied
    );
    // alg "none" and HS256 are refused before any key is used (RFC 8725 §3.1).
    for alg in ["none", "HS256", "ES384"] {
        let h = b64::encode(format!("{{\"alg\":\"{alg}\",\"kid\":\"x\"}}").as_bytes());
        let forged = format!("{h}.{}.", b64::encode(b"{}"));
        assert_eq!(
            ErrorCode::from(&parse_compact(&forged).unwrap_err()),
            ErrorCode::AccessDenied,
            "{alg}"
        );
    }
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.e30.AAAA",
        &format!("{}.e30.AAAA", b64::encode(b"{\"alg\":\"ES256\"}")),
    ] {
        assert!(parse_compact(bad).is_err(), "{bad}");
    }
    // Keys survive PKCS#8 PEM and DER.
    let pem = k.to_pkcs8_pem().unwrap();
    assert_eq!(
        PrivateKey::from_pkcs8_pem(&pem).unwrap().verifying_key(),
        k.verifying_key()
    );
    let der = k.to_pkcs8_der().unwrap();
    assert_eq!(
        PrivateKey::from_pkcs8_der(&der).unwrap().verifying_key(),
        k.verifying_key()
    );
    assert!(PrivateKey::from_pkcs8_der(&der[1..]).is_err());
    assert!(format!("{k:?}").starts_with("PrivateKey { public: "));
}

#[test]
fn jwe_round_trip_and_tamper() {
    let mut rng = SeededRng::from_u64(2);
    let k = PrivateKey::generate(&mut rng);
    let other = PrivateKey::generate(&mut rng);
    let t = encrypt_compact(&k.public_key(), Some("visited-fi"), b"token data", &mut rng).unwrap();
    assert_eq!(t.split('.').count(), 5);
    assert_eq!(&*decrypt_compact(&t, &k).unwrap(), b"token data");
    assert_eq!(
        ErrorCode::from(&decrypt_compact(&t, &other).unwrap_err()),
        ErrorCode::DecryptionFailure
    );
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    parts[3] = b64::encode(b"token dat@");
    assert_eq!(
        ErrorCode::from(&decrypt_compact(&parts.join("."), &k).unwrap_err()),
        ErrorCode::DecryptionFailure
    );
    assert!(decrypt_compact("a.b.c.d.e", &k).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn parsers_never_panic(s in "\\PC{0,200}") {
        let _ = parse_compact(&s);
        let mut rng = SeededRng::from_u64(3);
        let k = PrivateKey::generate(&mut rng);
        let _ = decrypt_compact(&s, &k);
    }

    #[test]
    fn jws_payload_round_trip(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut rng = SeededRng::from_u64(4);
        let k = PrivateKey::generate(&mut rng);
        let t = sign_compact(&k, "p", &payload).unwrap();
        proptest::prop_assert_eq!(verify_compact(&t, &k.verifying_key()).unwrap().1, payload);
    }
}
