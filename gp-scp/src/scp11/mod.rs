//! GlobalPlatform SCP11b (Card Specification 2.3 Amendment F): ECDH on P-256 with an
//! ephemeral host key and the security domain's static key, ANSI X9.63 key derivation, a
//! receipt that seeds the MAC chaining value, then AES secure messaging at level 33.
//!
//! - [`host`]: builds INTERNAL AUTHENTICATE, verifies the receipt;
//! - [`card`]: holds SK.SD (from PKCS#8) and its certificate chain, answers INTERNAL
//!   AUTHENTICATE;
//! - [`chain`]: verifies the SD's certificate chain (GET DATA BF21, X.509 or GlobalPlatform
//!   format) against the host's trust anchors ([`verify_chain`]).

pub mod card;
pub mod chain;
pub mod host;

pub use chain::{CertificateError, CertificateFault, TrustAnchor, UnixTime, verify_chain};

use alloc::vec::Vec;

use apdu_codec::tlv::{Tag, TlvIter};
use p256::PublicKey;
use p256::elliptic_curve::sec1::ToSec1Point;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::Error;
use crate::crypto::AesCipher;
use crate::crypto::kdf::x963_sha256;
use crate::keys::SecretKey;
use crate::level::SecurityLevel;
use crate::sm::AesMessaging;

/// The SCP identifier of SCP11 (Amd F §7.1).
pub const SCP11: u8 = 0x11;
/// The `i` parameter of SCP11b (Amd F §7.1.1: variant b = 00).
pub const I_SCP11B: u8 = 0x00;
/// INTERNAL AUTHENTICATE instruction (Amd F §7.6).
pub const INS_INTERNAL_AUTHENTICATE: u8 = 0x88;
/// Key usage qualifier: C-MAC, R-MAC, C-ENC, R-ENC (Amd F §7.6.2.3, tag 95).
pub const KEY_USAGE: u8 = 0x3C;
/// Key type of the session keys: AES (tag 80).
pub const KEY_TYPE_AES: u8 = 0x88;
/// Session key length: 16 bytes (tag 81).
pub const KEY_LENGTH: u8 = 0x10;
/// Tag of the control reference template for key agreement (Amd F §7.6.2.3).
pub const TAG_CRT: u32 = 0xA6;
/// Tag of an ephemeral public key (ECC public key, GPC 2.3 Table 11-19).
pub const TAG_EPK: u32 = 0x5F49;
/// Tag of the receipt.
pub const TAG_RECEIPT: u32 = 0x86;
/// The uncompressed P-256 point length.
pub const POINT_LEN: usize = 65;

/// The data of INTERNAL AUTHENTICATE: `A6 { 90 02 11 00, 95 01 3C, 80 01 88, 81 01 10 }
/// 5F49 41 ePK.OCE`.
pub(crate) fn command_data(epk_oce: &[u8; POINT_LEN]) -> Vec<u8> {
    let mut v = Vec::with_capacity(17 + 3 + POINT_LEN);
    v.extend_from_slice(&[
        0xA6,
        0x0D,
        0x90,
        0x02,
        SCP11,
        I_SCP11B,
        0x95,
        0x01,
        KEY_USAGE,
        0x80,
        0x01,
        KEY_TYPE_AES,
        0x81,
        0x01,
        KEY_LENGTH,
    ]);
    v.extend_from_slice(&[0x5F, 0x49, 0x41]);
    v.extend_from_slice(epk_oce);
    v
}

/// The uncompressed encoding of a public key.
pub(crate) fn encode_point(pk: &PublicKey) -> [u8; POINT_LEN] {
    let p = pk.to_sec1_point(false);
    let mut out = [0u8; POINT_LEN];
    if let Some(b) = p.as_bytes().get(..POINT_LEN) {
        out.copy_from_slice(b);
    }
    out
}

/// Decode an uncompressed point, rejecting anything not on the curve.
///
/// # Errors
/// [`Error::Ecc`] for an invalid point.
pub fn decode_point(bytes: &[u8]) -> Result<PublicKey, Error> {
    if bytes.len() != POINT_LEN || bytes.first() != Some(&0x04) {
        return Err(Error::Ecc("public key is not an uncompressed P-256 point"));
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::Ecc("public key is not on P-256"))
}

/// What the card's INTERNAL AUTHENTICATE data says.
pub(crate) struct ParsedRequest<'a> {
    pub(crate) epk_oce: PublicKey,
    pub(crate) raw: &'a [u8],
}

/// Parse and check INTERNAL AUTHENTICATE data (card side).
pub(crate) fn parse_request(data: &[u8]) -> Result<ParsedRequest<'_>, Error> {
    let mut crt_ok = false;
    let mut epk = None;
    for item in TlvIter::new(data) {
        let tlv = item.map_err(|_| Error::Malformed("INTERNAL AUTHENTICATE data (TLV)"))?;
        match tlv.tag().value() {
            TAG_CRT => {
                let (mut scp, mut usage, mut ktype, mut klen) = (None, None, None, None);
                for c in tlv.children() {
                    let c = c.map_err(|_| Error::Malformed("control reference template"))?;
                    match c.tag().value() {
                        0x90 => scp = Some(c.value()),
                        0x95 => usage = Some(c.value()),
                        0x80 => ktype = Some(c.value()),
                        0x81 => klen = Some(c.value()),
                        _ => {}
                    }
                }
                if scp != Some(&[SCP11, I_SCP11B][..]) {
                    return Err(Error::ImplementationOption(
                        scp.and_then(|s| s.get(1).copied()).unwrap_or(0xFF),
                    ));
                }
                if usage != Some(&[KEY_USAGE][..])
                    || ktype != Some(&[KEY_TYPE_AES][..])
                    || klen != Some(&[KEY_LENGTH][..])
                {
                    return Err(Error::Malformed(
                        "control reference template (key usage, type or length)",
                    ));
                }
                crt_ok = true;
            }
            TAG_EPK => epk = Some(decode_point(tlv.value())?),
            _ => {
                return Err(Error::Malformed(
                    "INTERNAL AUTHENTICATE data (unexpected tag)",
                ));
            }
        }
    }
    match (crt_ok, epk) {
        (true, Some(epk_oce)) => Ok(ParsedRequest { epk_oce, raw: data }),
        _ => Err(Error::Malformed(
            "INTERNAL AUTHENTICATE data (missing A6 or 5F49)",
        )),
    }
}

/// The five keys of an SCP11 session (Amd F §6.5.2.3).
pub(crate) struct SessionKeys {
    pub(crate) receipt: AesCipher,
    pub(crate) s_enc: AesCipher,
    pub(crate) s_mac: AesCipher,
    pub(crate) s_rmac: AesCipher,
    pub(crate) s_dek: SecretKey,
}

/// X9.63 KDF (SHA-256) over `ShSee || ShSes` with shared info `key usage || key type || key
/// length`, cut into receipt key, S-ENC, S-MAC, S-RMAC and S-DEK.
pub(crate) fn derive_session(sh_see: &[u8], sh_ses: &[u8]) -> Result<SessionKeys, Error> {
    let mut z = Vec::with_capacity(64);
    z.extend_from_slice(sh_see);
    z.extend_from_slice(sh_ses);
    let mut out = [0u8; 80];
    x963_sha256(&z, &[KEY_USAGE, KEY_TYPE_AES, KEY_LENGTH], &mut out);
    z.zeroize();
    let k = SessionKeys {
        receipt: AesCipher::new(&out[0..16])?,
        s_enc: AesCipher::new(&out[16..32])?,
        s_mac: AesCipher::new(&out[32..48])?,
        s_rmac: AesCipher::new(&out[48..64])?,
        s_dek: SecretKey::new(&out[64..80]),
    };
    out.zeroize();
    Ok(k)
}

/// The receipt: AES-CMAC(receipt key, command data || 5F49 41 ePK.SD) (Amd F §6.5.2.3).
pub(crate) fn receipt(
    keys: &SessionKeys,
    command_data: &[u8],
    epk_sd: &[u8; POINT_LEN],
) -> [u8; 16] {
    keys.receipt
        .cmac(&[command_data, &[0x5F, 0x49, 0x41], epk_sd])
}

/// Start the messaging with the receipt as chaining value, at level 33.
pub(crate) fn into_messaging(keys: SessionKeys, receipt: [u8; 16]) -> (AesMessaging, SecretKey) {
    let SessionKeys {
        s_enc,
        s_mac,
        s_rmac,
        s_dek,
        ..
    } = keys;
    (
        AesMessaging::new(s_enc, s_mac, s_rmac, receipt, SecurityLevel::ALL, 8),
        s_dek,
    )
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Find the P-256 public key in a certificate from the security domain's certificate store
/// (GET DATA BF21): a GlobalPlatform certificate (`7F21 { .. 7F49 { B0 point } .. }`) or an
/// X.509 certificate (the `id-ecPublicKey`/`prime256v1` SubjectPublicKeyInfo).
///
/// This only locates the key and authenticates nothing: to trust the key, verify the chain
/// with [`verify_chain`] (which also returns the key) or compare it with a pinned key.
///
/// # Errors
/// [`Error::Malformed`] when no P-256 key is found, [`Error::Ecc`] when it is invalid.
pub fn public_key_from_certificate(cert: &[u8]) -> Result<PublicKey, Error> {
    // GlobalPlatform certificate: 7F21 template holding 7F49 { B0 Q }.
    if let Ok(Some(outer)) = apdu_codec::tlv::find(cert, Tag::from(0x7F21))
        && let Ok(Some(pk)) = outer.find(Tag::from(0x7F49))
        && let Ok(Some(q)) = pk.find(Tag::from(0xB0))
    {
        return decode_point(q.value());
    }
    // X.509: OID prime256v1 followed by BIT STRING 03 42 00 04 X Y.
    const SPKI_TAIL: [u8; 13] = [
        0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let pos = cert
        .windows(SPKI_TAIL.len())
        .position(|w| w == SPKI_TAIL)
        .ok_or(Error::Malformed("certificate without a P-256 public key"))?;
    let start = pos + SPKI_TAIL.len();
    decode_point(
        cert.get(start..start + POINT_LEN)
            .ok_or(Error::Malformed("truncated certificate"))?,
    )
}
