//! SCP11b sessions against the virtual SE: the shipped test profile (X.509 test certificate)
//! and a profile whose key and GlobalPlatform-style certificate are generated at test time.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod card_support;

use card_support::*;
use gp_scp::HostProtocol;
use gp_scp::scp11::host::Scp11HostConfig;
use gp_scp::scp11::public_key_from_certificate;
use virtual_se::profile::Profile;
use virtual_se::store::MemoryStore;

fn scp11b_session<S: virtual_se::store::Store>(
    card: &mut virtual_se::card::Card<S>,
    cert: &[u8],
) -> Host {
    // The SD certificate is the last one of the store (BF21 is root-most first).
    let certs = gp_scp::cmd::get_data::parse_certificate_store(cert).unwrap();
    let card_key = public_key_from_certificate(certs.last().unwrap()).unwrap();
    let cfg = Scp11HostConfig {
        key_version: 0x01,
        key_id: 0x13,
        card_key,
    };
    open(card, k40_aes(), HostProtocol::Scp11b(cfg, vec![card_key])).unwrap()
}

#[test]
fn shipped_scp11b_profile_serves_bare_certificates_and_opens_sessions() {
    let p = Profile::from_file(&profile_path("scp11b.toml")).unwrap();
    let mut card = card_with(p, MemoryStore::new());
    // yubikit format: BF21 answers the bare DER certificates (test CA, then the SD's own),
    // E0 the C0 entries.
    let (certs, s) = send(&mut card, &h("80CABF21 000000"));
    ok(s);
    let mut shipped = std::fs::read(profile_path("danger-test-scp11b-ca-cert.der")).unwrap();
    shipped.extend(std::fs::read(profile_path("danger-test-scp11b-cert.der")).unwrap());
    assert_eq!(certs, shipped);
    let (info, s) = send(&mut card, &h("80CA00E000"));
    ok(s);
    assert_eq!(info[0], 0xC0);
    let mut host = scp11b_session(&mut card, &certs);
    let (d, s) = host.hex(&mut card, "80F28002024F00");
    ok(s);
    assert!(!d.is_empty());
    // GPC 2.3 §11.4.3: the tagged answer is one E3 entry carrying the ISD's AID in 4F.
    let e3 = apdu_codec::tlv::find(&d, apdu_codec::tlv::Tag::new(0xE3))
        .unwrap()
        .unwrap();
    assert_eq!(
        e3.find(apdu_codec::tlv::Tag::new(0x4F))
            .unwrap()
            .unwrap()
            .value(),
        ISD
    );
    ok(host.sw(&mut card, "80CA9F7F00"));
    // The same card also runs SCP03 with its key set.
    let mut host = open_scp03(&mut card, gp_scp::SecurityLevel::ALL);
    ok(host.sw(&mut card, "80F28002024F00"));
    // A wrong key reference: 6A88.
    assert_eq!(sw(&mut card, "8088020000"), 0x6A88);
}

#[test]
fn generated_key_and_gp_certificate() {
    use p256::pkcs8::EncodePrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let sk = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let der = sk.to_pkcs8_der().unwrap();
    let b64 = <base64ct::Base64 as base64ct::Encoding>::encode_string(der.as_bytes());
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    std::fs::write(dir.path().join("sk.pem"), pem).unwrap();
    // A minimal GlobalPlatform certificate: 7F21 { 93 serial, 7F49 { B0 Q, F0 00 } }.
    use p256::elliptic_curve::sec1::ToSec1Point;
    let q = sk.public_key().to_sec1_point(false);
    let mut pk = vec![0xB0, 0x41];
    pk.extend_from_slice(q.as_bytes());
    pk.extend_from_slice(&[0xF0, 0x01, 0x00]);
    let mut body = vec![0x93, 0x01, 0x01, 0x7F, 0x49, pk.len() as u8];
    body.extend(pk);
    let mut cert = vec![0x7F, 0x21, 0x81, body.len() as u8];
    cert.extend(body);
    std::fs::write(dir.path().join("cert.der"), &cert).unwrap();
    let toml = format!(
        r#"cplc = "{cplc}"
[isd]
aid = "A000000151000000"
privileges = "9AFE80"
scp = "11b"
scp11_key = "sk.pem"
scp11_certificates = ["cert.der"]
"#,
        cplc = "00".repeat(42)
    );
    let path = dir.path().join("p.toml");
    std::fs::write(&path, toml).unwrap();
    let p = Profile::from_file(&path).unwrap();
    let mut card = card_with(p, MemoryStore::new());
    // GlobalPlatform format: BF21 template.
    let (store, s) = send(&mut card, &h("80CABF2100"));
    ok(s);
    assert_eq!(&store[..2], &[0xBF, 0x21]);
    let mut host = scp11b_session(&mut card, &cert);
    ok(host.sw(&mut card, "80F28002024F00"));
    // An SCP11b-only domain has no INITIALIZE UPDATE.
    assert_eq!(sw(&mut card, "8050000008 0102030405060708"), 0x6D00);
}

#[test]
fn put_key_ec_private_key_under_scp11b() {
    let p = Profile::from_file(&profile_path("scp11b.toml")).unwrap();
    let mut card = card_with(p, MemoryStore::new());
    let certs = send(&mut card, &h("80CABF21 000000")).0;
    let mut host = scp11b_session(&mut card, &certs);
    // New SCP11b key (version 02, id 13): B1 len AES-CBC(S-DEK, d) F0 01 00, KCV length 00.
    let d = [0x17u8; 32];
    let dek = host.session.dek().unwrap().as_bytes().to_vec();
    let mut enc = d.to_vec();
    gp_scp::crypto::AesCipher::new(&dek)
        .unwrap()
        .cbc_encrypt(&[0; 16], &mut enc);
    let mut data = vec![0x02, 0xB1, 0x20];
    data.extend(&enc);
    data.extend([0xF0, 0x01, 0x00, 0x00]);
    let (resp, s) = host.hex(
        &mut card,
        &format!("80D80013{:02X}{}", data.len(), hex::encode(&data)),
    );
    ok(s);
    assert_eq!(resp, vec![0x02]);
    let isd = h("A000000151000000");
    let k = card
        .keys(&isd)
        .into_iter()
        .find(|k| k.kvn == 2 && k.id == 0x13)
        .unwrap();
    assert_eq!(k.key_type, 0xB1);
    assert_eq!(k.value, d.to_vec());
    // An invalid scalar (zero) is refused and changes nothing.
    let mut enc = vec![0u8; 32];
    gp_scp::crypto::AesCipher::new(&dek)
        .unwrap()
        .cbc_encrypt(&[0; 16], &mut enc);
    let mut bad = vec![0x03, 0xB1, 0x20];
    bad.extend(&enc);
    let before = card.persistent_snapshot().unwrap();
    assert_eq!(
        host.sw(
            &mut card,
            &format!("80D80013{:02X}{}", bad.len(), hex::encode(&bad))
        ),
        0x6A80
    );
    assert_eq!(card.persistent_snapshot().unwrap(), before);
}
