//! SCP11 SD certificate chain verification (`gp_scp::scp11::chain`): X.509 chains made with
//! openssl (`data/scp11_chain/generate.sh`), the virtual SE's shipped test chain, a public
//! GlobalPlatform-format certificate (`data/scp11_gp_certificates.toml`), GlobalPlatform chains
//! signed at test time, every refusal reason, a "never panics" proptest and the replay of the
//! `scp11_cert_chain` fuzz corpus.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use std::fs;
use std::path::PathBuf;

use apdu_codec::tlv::{Tag, write_tlv};
use gp_scp::Error;
use gp_scp::scp11::{CertificateFault, TrustAnchor, UnixTime, verify_chain};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToSec1Point;
use proptest::prelude::*;

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/scp11_chain")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn profile_file(name: &str) -> Vec<u8> {
    fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../virtual-se/profiles")
            .join(name),
    )
    .unwrap()
}

fn anchor(name: &str) -> TrustAnchor {
    TrustAnchor::from_der(&data(name)).unwrap()
}

fn fault(r: Result<p256::PublicKey, Error>) -> (usize, CertificateFault) {
    match r {
        Err(Error::Certificate(e)) => (e.index, e.fault),
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

fn leaf_key(cert: &[u8]) -> p256::PublicKey {
    *TrustAnchor::from_certificate(cert).unwrap().public_key()
}

/// 2027-01-01 (inside every test certificate's validity: they were made on 2026-11-21).
const TODAY: UnixTime = UnixTime(1_798_761_600);

#[test]
fn x509_three_level_chain_verifies_from_root_or_intermediate() {
    let (root, inter, leaf) = (
        data("danger-test-root.der"),
        data("danger-test-intermediate.der"),
        data("danger-test-leaf.der"),
    );
    let chain = [&root[..], &inter[..], &leaf[..]];
    let want = leaf_key(&leaf);
    // Anchor = root certificate, root SPKI, or the root's bare key.
    for a in [
        anchor("danger-test-root.der"),
        anchor("danger-test-root-spki.der"),
        TrustAnchor::from_public_key(*anchor("danger-test-root.der").public_key()),
    ] {
        assert_eq!(
            verify_chain(&chain, std::slice::from_ref(&a), None).unwrap(),
            want
        );
        assert_eq!(
            verify_chain(&chain, std::slice::from_ref(&a), Some(TODAY)).unwrap(),
            want
        );
        // The card may leave the root out.
        assert_eq!(verify_chain(&chain[1..], &[a], None).unwrap(), want);
    }
    // Anchored at the intermediate: the root above it is ignored.
    let a = anchor("danger-test-intermediate.der");
    assert_eq!(
        verify_chain(&chain, std::slice::from_ref(&a), None).unwrap(),
        want
    );
    assert_eq!(verify_chain(&chain[2..], &[a], None).unwrap(), want);
    // Among several anchors, one that fits is enough.
    let anchors = [
        anchor("danger-test-other-root.der"),
        anchor("danger-test-root.der"),
    ];
    assert_eq!(verify_chain(&chain, &anchors, None).unwrap(), want);
}

#[test]
fn x509_refusals_name_the_certificate_and_reason() {
    let (root, inter, leaf) = (
        data("danger-test-root.der"),
        data("danger-test-intermediate.der"),
        data("danger-test-leaf.der"),
    );
    let root_anchor = [anchor("danger-test-root.der")];
    // Wrong CA.
    let (i, f) = fault(verify_chain(
        &[&root, &inter, &leaf],
        &[anchor("danger-test-other-root.der")],
        None,
    ));
    assert_eq!(i, 0);
    assert!(
        matches!(&f, CertificateFault::UnknownIssuer { issuer } if issuer.contains("mec TEST root CA")),
        "{f:?}"
    );
    // No anchor at all.
    assert!(matches!(
        fault(verify_chain(&[&leaf], &[], None)).1,
        CertificateFault::UnknownIssuer { .. }
    ));
    // Empty chain.
    assert_eq!(
        fault(verify_chain(&[], &root_anchor, None)).1,
        CertificateFault::EmptyChain
    );
    // A link missing: the leaf names the intermediate, the root comes before it.
    let (i, f) = fault(verify_chain(&[&root, &leaf], &root_anchor, None));
    assert_eq!(i, 1);
    assert!(
        matches!(f, CertificateFault::IssuerMismatch { .. }),
        "{f:?}"
    );
    // Leaf signature bytes flipped (the last byte of the DER signature).
    let mut bad = leaf.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    assert_eq!(
        fault(verify_chain(&[&root, &inter, &bad], &root_anchor, None)),
        (2, CertificateFault::BadSignature)
    );
    // A signed byte changed inside the intermediate's subject public key: the point is no
    // longer on P-256, so the certificate is refused as malformed before any signature check.
    let mut bad = inter.clone();
    let n = bad.len();
    bad[n / 2] ^= 0x20;
    assert_eq!(
        fault(verify_chain(&[&root, &bad, &leaf], &root_anchor, None)),
        (
            1,
            CertificateFault::Malformed("subject public key (not a P-256 point)")
        )
    );
    // Expired and not yet valid (validity is 100 years from the generation date).
    assert_eq!(
        fault(verify_chain(
            &[&root, &inter, &leaf],
            &root_anchor,
            Some(UnixTime::from_date(2200, 1, 1).unwrap())
        )),
        (0, CertificateFault::Expired)
    );
    assert_eq!(
        fault(verify_chain(
            &[&root, &inter, &leaf],
            &root_anchor,
            Some(UnixTime::from_date(2001, 1, 1).unwrap())
        )),
        (0, CertificateFault::NotYetValid)
    );
    // An issuer that is not a CA.
    let (not_ca, under) = (
        data("danger-test-not-ca.der"),
        data("danger-test-leaf-under-not-ca.der"),
    );
    assert_eq!(
        fault(verify_chain(&[&root, &not_ca, &under], &root_anchor, None)),
        (1, CertificateFault::NotCa)
    );
    // An SD key whose key usage lacks key agreement.
    let sign_only = data("danger-test-leaf-sign-only.der");
    assert!(matches!(
        fault(verify_chain(
            &[&root, &inter, &sign_only],
            &root_anchor,
            None
        )),
        (2, CertificateFault::KeyUsage(_))
    ));
    // An unknown critical extension.
    let unknown = data("danger-test-leaf-unknown-critical.der");
    assert!(matches!(
        fault(verify_chain(&[&root, &inter, &unknown], &root_anchor, None)),
        (2, CertificateFault::UnsupportedCriticalExtension(oid)) if oid == "1.3.6.1.4.1.99999.1"
    ));
    // Truncated and garbage.
    assert!(matches!(
        fault(verify_chain(
            &[&root, &inter, &leaf[..leaf.len() - 1]],
            &root_anchor,
            None
        )),
        (2, CertificateFault::Malformed(_))
    ));
    assert!(matches!(
        fault(verify_chain(&[&[0x04, 0x00]], &root_anchor, None)),
        (0, CertificateFault::Malformed(_))
    ));
    // The error text names the certificate, its subject and the reason.
    let msg = verify_chain(&[&root, &inter, &bad_sig(&leaf)], &root_anchor, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("certificate 3 of 3"), "{msg}");
    assert!(msg.contains("mec TEST SD key"), "{msg}");
    assert!(msg.contains("signature does not verify"), "{msg}");
}

fn bad_sig(cert: &[u8]) -> Vec<u8> {
    let mut c = cert.to_vec();
    *c.last_mut().unwrap() ^= 0x01;
    c
}

#[test]
fn virtual_se_shipped_chain_verifies_under_the_test_ca() {
    let ca = profile_file("danger-test-scp11b-ca-cert.der");
    let leaf = profile_file("danger-test-scp11b-cert.der");
    let sk = profile_file("danger-test-scp11b-sk.pk8.der");
    let card = gp_scp::scp11::card::Scp11CardKeys::from_pkcs8_der(1, 0x13, &sk, vec![]).unwrap();
    let anchors = [TrustAnchor::from_der(&ca).unwrap()];
    assert_eq!(
        verify_chain(&[&ca, &leaf], &anchors, Some(TODAY)).unwrap(),
        card.public_key()
    );
    assert_eq!(
        verify_chain(&[&leaf], &anchors, None).unwrap(),
        card.public_key()
    );
    // The PEM public key file holds the same key as the certificate.
    let pem = String::from_utf8(profile_file("danger-test-scp11b-ca-pk.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let spki = <base64ct::Base64 as base64ct::Encoding>::decode_vec(&b64).unwrap();
    assert_eq!(
        TrustAnchor::from_spki_der(&spki).unwrap().public_key(),
        anchors[0].public_key()
    );
    // The leaf does not sign itself.
    assert!(matches!(
        fault(verify_chain(
            &[&leaf],
            &[TrustAnchor::from_der(&leaf).unwrap()],
            None
        ))
        .1,
        CertificateFault::UnknownIssuer { .. }
    ));
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(
        s.chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>(),
    )
    .unwrap()
}

#[test]
fn public_globalplatform_certificate_vector() {
    let t = include_str!("data/scp11_gp_certificates.toml")
        .parse::<toml::Table>()
        .unwrap();
    let cases = t["certificate"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let cert = unhex(case["certificate"].as_str().unwrap());
        let ca = p256::PublicKey::from_sec1_bytes(&unhex(case["ca_public_key"].as_str().unwrap()))
            .unwrap();
        let want =
            p256::PublicKey::from_sec1_bytes(&unhex(case["public_key"].as_str().unwrap())).unwrap();
        let anchors = [TrustAnchor::from_public_key(ca)];
        assert_eq!(verify_chain(&[&cert], &anchors, None).unwrap(), want);
        let date = |k: &str| {
            let v = case[k].as_array().unwrap();
            let n = |i: usize| v[i].as_integer().unwrap();
            UnixTime::from_date(n(0) as u16, n(1) as u8, n(2) as u8).unwrap()
        };
        let (effective, expiration) = (date("effective"), date("expiration"));
        // Valid from the first second of the effective date to the last of the expiration date.
        for ok in [effective, UnixTime(expiration.0 + 86_399)] {
            assert_eq!(verify_chain(&[&cert], &anchors, Some(ok)).unwrap(), want);
        }
        assert_eq!(
            fault(verify_chain(
                &[&cert],
                &anchors,
                Some(UnixTime(effective.0 - 1))
            ))
            .1,
            CertificateFault::NotYetValid
        );
        assert_eq!(
            fault(verify_chain(
                &[&cert],
                &anchors,
                Some(UnixTime(expiration.0 + 86_400))
            ))
            .1,
            CertificateFault::Expired
        );
        // Any signed byte changed: refused.
        for i in [5, 30, 60, 120] {
            let mut bad = cert.clone();
            bad[i] ^= 0x01;
            assert!(verify_chain(&[&bad], &anchors, None).is_err(), "byte {i}");
        }
        let subject = case["subject"].as_str().unwrap();
        let msg = verify_chain(&[&bad_sig(&cert)], &anchors, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(subject), "{msg}");
    }
}

/// A GlobalPlatform certificate (Amd F certificate format), signed by `signer` over the data objects
/// before 5F37.
fn gp_cert(
    serial: u8,
    issuer: &[u8],
    subject: &[u8],
    usage: &[u8],
    key: &p256::PublicKey,
    signer: &SigningKey,
    raw_signature: bool,
) -> Vec<u8> {
    let mut body = Vec::new();
    write_tlv(&mut body, Tag::new(0x93), &[serial]);
    write_tlv(&mut body, Tag::new(0x42), issuer);
    write_tlv(&mut body, Tag::new(0x5F20), subject);
    write_tlv(&mut body, Tag::new(0x95), usage);
    write_tlv(&mut body, Tag::new(0x5F25), &[0x20, 0x24, 0x01, 0x01]);
    write_tlv(&mut body, Tag::new(0x5F24), &[0x20, 0x99, 0x12, 0x31]);
    write_tlv(&mut body, Tag::new(0x53), &[]);
    let mut pk = Vec::new();
    write_tlv(&mut pk, Tag::new(0xB0), key.to_sec1_point(false).as_bytes());
    write_tlv(&mut pk, Tag::new(0xF0), &[0x00]);
    write_tlv(&mut body, Tag::new(0x7F49), &pk);
    let sig: Signature = signer.sign(&body);
    if raw_signature {
        write_tlv(&mut body, Tag::new(0x5F37), &sig.to_bytes());
    } else {
        write_tlv(&mut body, Tag::new(0x5F37), sig.to_der().as_bytes());
    }
    let mut cert = Vec::new();
    write_tlv(&mut cert, Tag::new(0x7F21), &body);
    cert
}

#[test]
fn globalplatform_chain_signed_at_test_time() {
    let ca = SigningKey::from_slice(&[0x11; 32]).unwrap();
    let inter = SigningKey::from_slice(&[0x22; 32]).unwrap();
    let sd = p256::SecretKey::from_slice(&[0x33; 32])
        .unwrap()
        .public_key();
    let ca_pk = p256::PublicKey::from(*ca.verifying_key());
    let inter_pk = p256::PublicKey::from(*inter.verifying_key());
    for raw in [false, true] {
        let c1 = gp_cert(
            1,
            b"TEST-CA",
            b"TEST-KA",
            &[0x00, 0x82],
            &inter_pk,
            &ca,
            raw,
        );
        let c2 = gp_cert(2, b"TEST-KA", b"TEST-SD", &[0x00, 0x80], &sd, &inter, raw);
        let anchors = [TrustAnchor::from_public_key(ca_pk)];
        assert_eq!(
            verify_chain(&[&c1, &c2], &anchors, Some(TODAY)).unwrap(),
            sd
        );
        // A GP CA certificate as the anchor.
        let self_signed = gp_cert(9, b"TEST-CA", b"TEST-CA", &[0x00, 0x82], &ca_pk, &ca, raw);
        let a = TrustAnchor::from_certificate(&self_signed).unwrap();
        assert_eq!(a.public_key(), &ca_pk);
        assert_eq!(
            verify_chain(&[&self_signed, &c1, &c2], &[a], None).unwrap(),
            sd
        );
        // The leaf names another CA-KLOC than the intermediate's subject.
        let wrong = gp_cert(3, b"OTHER", b"TEST-SD", &[0x00, 0x80], &sd, &inter, raw);
        assert!(matches!(
            fault(verify_chain(&[&c1, &wrong], &anchors, None)),
            (1, CertificateFault::IssuerMismatch { .. })
        ));
        // Signed by the CA directly, not by the intermediate.
        let skip = gp_cert(4, b"TEST-KA", b"TEST-SD", &[0x00, 0x80], &sd, &ca, raw);
        assert_eq!(
            fault(verify_chain(&[&c1, &skip], &anchors, None)),
            (1, CertificateFault::BadSignature)
        );
        // Key usage without key agreement for the SD key.
        let usage = gp_cert(5, b"TEST-KA", b"TEST-SD", &[0x00, 0x02], &sd, &inter, raw);
        assert!(matches!(
            fault(verify_chain(&[&c1, &usage], &anchors, None)),
            (1, CertificateFault::KeyUsage(_))
        ));
        // Expired in 2100.
        assert_eq!(
            fault(verify_chain(
                &[&c1, &c2],
                &anchors,
                Some(UnixTime::from_date(2100, 1, 1).unwrap())
            )),
            (0, CertificateFault::Expired)
        );
    }
    // Another curve reference than P-256.
    let mut body = Vec::new();
    write_tlv(&mut body, Tag::new(0x93), &[1]);
    let mut pk = Vec::new();
    write_tlv(&mut pk, Tag::new(0xB0), sd.to_sec1_point(false).as_bytes());
    write_tlv(&mut pk, Tag::new(0xF0), &[0x03]);
    write_tlv(&mut body, Tag::new(0x7F49), &pk);
    write_tlv(&mut body, Tag::new(0x5F37), &[0; 64]);
    let mut cert = Vec::new();
    write_tlv(&mut cert, Tag::new(0x7F21), &body);
    assert!(matches!(
        fault(verify_chain(
            &[&cert],
            &[TrustAnchor::from_public_key(ca_pk)],
            None
        )),
        (0, CertificateFault::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn trust_anchor_inputs() {
    assert!(matches!(
        TrustAnchor::from_der(&[0x30, 0x00]),
        Err(Error::TrustAnchor(_))
    ));
    assert!(TrustAnchor::from_der(&[]).is_err());
    assert!(TrustAnchor::from_spki_der(&data("danger-test-root.der")).is_err());
    let a = anchor("danger-test-root.der");
    assert!(a.label().contains("mec TEST root CA"), "{}", a.label());
    assert!(format!("{a:?}").contains("TrustAnchor"));
}

/// Input for the `scp11_cert_chain` fuzz check: flags, optional time, then length-prefixed
/// segments (anchor first, then the chain).
fn fuzz_input(now: Option<u64>, segments: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![u8::from(now.is_some())];
    if let Some(t) = now {
        v.extend_from_slice(&t.to_be_bytes());
    }
    for s in segments {
        v.extend_from_slice(&(s.len() as u16).to_be_bytes());
        v.extend_from_slice(s);
    }
    v
}

fn corpus_dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join("scp11_cert_chain")
}

#[test]
fn replay_fuzz_corpus_and_artifacts() {
    let mut seeds = 0;
    for kind in ["corpus", "artifacts"] {
        let Ok(entries) = fs::read_dir(corpus_dir(kind)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                gp_scp::fuzzing::cert_chain(&fs::read(&path).unwrap());
                seeds += usize::from(kind == "corpus");
            }
        }
    }
    assert!(seeds >= 4, "no committed corpus for scp11_cert_chain");
}

#[test]
#[ignore = "writes the seed corpus"]
fn write_seeds() {
    let dir = corpus_dir("corpus");
    fs::create_dir_all(&dir).unwrap();
    let (root, inter, leaf) = (
        data("danger-test-root.der"),
        data("danger-test-intermediate.der"),
        data("danger-test-leaf.der"),
    );
    let ca = profile_file("danger-test-scp11b-ca-cert.der");
    let sd = profile_file("danger-test-scp11b-cert.der");
    let t = include_str!("data/scp11_gp_certificates.toml")
        .parse::<toml::Table>()
        .unwrap();
    let gp = unhex(t["certificate"][0]["certificate"].as_str().unwrap());
    let gp_ca = unhex(t["certificate"][0]["ca_public_key"].as_str().unwrap());
    // SubjectPublicKeyInfo of a P-256 key: fixed prefix (RFC 5480 §2) + uncompressed point.
    let mut gp_spki = unhex("3059301306072A8648CE3D020106082A8648CE3D030107034200");
    gp_spki.extend_from_slice(&gp_ca);
    let seeds: [(&str, Vec<u8>); 6] = [
        (
            "x509-3-level",
            fuzz_input(None, &[&root, &root, &inter, &leaf]),
        ),
        (
            "x509-dated",
            fuzz_input(Some(TODAY.0), &[&root, &inter, &leaf]),
        ),
        (
            "x509-wrong-ca",
            fuzz_input(None, &[&leaf, &root, &inter, &leaf]),
        ),
        ("virtual-se", fuzz_input(Some(TODAY.0), &[&ca, &ca, &sd])),
        ("gp-onekey", fuzz_input(None, &[&gp_spki, &gp])),
        (
            "gp-onekey-dated",
            fuzz_input(Some(1_700_000_000), &[&gp_spki, &gp]),
        ),
    ];
    for (name, bytes) in seeds {
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes, and real chains with random bytes changed, never panic and are never
    /// accepted for another key than the last certificate's.
    #[test]
    fn never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..600),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        which in 0usize..3,
        now in proptest::option::of(any::<u64>()),
    ) {
        gp_scp::fuzzing::cert_chain(&junk);
        let anchors = [anchor("danger-test-root.der")];
        let mut chain = [
            data("danger-test-root.der"),
            data("danger-test-intermediate.der"),
            data("danger-test-leaf.der"),
        ];
        for (i, x) in &flips {
            let c = &mut chain[which];
            let at = i.index(c.len());
            c[at] ^= x;
        }
        let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let r = verify_chain(&refs, &anchors, now.map(UnixTime));
        if let Ok(k) = r {
            prop_assert_eq!(k, leaf_key(&chain[2]));
        }
        let _ = TrustAnchor::from_der(&junk);
    }
}
