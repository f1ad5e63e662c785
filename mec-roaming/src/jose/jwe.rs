//! JWE compact serialization, `alg` = `ECDH-ES` (direct key agreement) with `enc` = `A256GCM`
//! (RFC 7516 §7.1, RFC 7518 §4.6 and §5.3).
//!
//! `BASE64URL(UTF8(header)) || '.' || '' || '.' || BASE64URL(IV) || '.' || BASE64URL(ciphertext)
//! || '.' || BASE64URL(tag)`; the encrypted key is empty for direct key agreement (RFC 7518
//! §4.6), and the additional authenticated data is the ASCII of the encoded header (RFC 7516
//! §5.1 step 14).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use p256::PublicKey;
use p256::ecdh::{EphemeralSecret, diffie_hellman};
use p256::elliptic_curve::Generate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::jose::b64;
use crate::jose::keys::PrivateKey;
use crate::{Error, ErrorCode};

/// Largest compact JWE accepted (bytes).
pub const MAX_JWE_LEN: usize = 64 * 1024;

/// An elliptic-curve public JWK as carried in `epk` (RFC 7518 §6.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcJwk {
    /// Key type: `EC`.
    pub kty: String,
    /// Curve: `P-256`.
    pub crv: String,
    /// base64url of the 32-byte X coordinate.
    pub x: String,
    /// base64url of the 32-byte Y coordinate.
    pub y: String,
}

impl EcJwk {
    /// The JWK of a P-256 public key.
    #[must_use]
    pub fn from_public_key(key: &PublicKey) -> Self {
        let sec1 = key.to_sec1_bytes();
        let (x, y) = match sec1.get(1..33).zip(sec1.get(33..65)) {
            Some((x, y)) => (b64::encode(x), b64::encode(y)),
            None => (String::new(), String::new()),
        };
        Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            x,
            y,
        }
    }

    /// The P-256 public key this JWK describes.
    ///
    /// # Errors
    /// [`Error::Key`] for another key type or curve, bad base64url or a point not on P-256.
    pub fn to_public_key(&self) -> Result<PublicKey, Error> {
        if self.kty != "EC" || self.crv != "P-256" {
            return Err(Error::Key("JWK is not an EC P-256 key"));
        }
        let x = b64::decode(&self.x).map_err(|_| Error::Key("JWK x"))?;
        let y = b64::decode(&self.y).map_err(|_| Error::Key("JWK y"))?;
        if x.len() != 32 || y.len() != 32 {
            return Err(Error::Key("JWK coordinate length"));
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 0x04; // SEC 1 v2 §2.3.3: uncompressed point
        sec1[1..33].copy_from_slice(&x);
        sec1[33..].copy_from_slice(&y);
        crate::jose::keys::parse_public_key_sec1(&sec1)
    }
}

/// JWE protected header for ECDH-ES + A256GCM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JweHeader {
    /// `ECDH-ES`.
    pub alg: String,
    /// `A256GCM`.
    pub enc: String,
    /// Ephemeral public key of the sender.
    pub epk: EcJwk,
    /// Recipient key id (partner name), informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Agreement PartyUInfo, base64url (RFC 7518 §4.6.1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apu: Option<String>,
    /// Agreement PartyVInfo, base64url (RFC 7518 §4.6.1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apv: Option<String>,
}

/// Concat KDF of NIST SP 800-56A §5.8.1 as profiled by RFC 7518 §4.6.2, with SHA-256.
///
/// `OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo`, each of the first three
/// a 32-bit big-endian length followed by the data, and `SuppPubInfo` the key length in bits as
/// a 32-bit big-endian integer. `key_len` is in bytes (at most 64 here).
#[must_use]
pub fn concat_kdf(
    z: &[u8],
    algorithm_id: &[u8],
    apu: &[u8],
    apv: &[u8],
    key_len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 32));
    let mut counter: u32 = 1;
    let bits = u32::try_from(key_len.saturating_mul(8)).unwrap_or(u32::MAX);
    while out.len() < key_len {
        let mut h = Sha256::new();
        h.update(counter.to_be_bytes());
        h.update(z);
        for part in [algorithm_id, apu, apv] {
            h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(part);
        }
        h.update(bits.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(key_len);
    out
}

/// Encrypts `plaintext` to `recipient` (ECDH-ES with a fresh ephemeral key, A256GCM).
///
/// # Errors
/// [`Error::Encode`] if the header cannot be serialized or the plaintext is too long for GCM.
pub fn encrypt_compact<R: rand_core::CryptoRng + ?Sized>(
    recipient: &PublicKey,
    kid: Option<&str>,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<String, Error> {
    let eph = <EphemeralSecret as Generate>::generate_from_rng(rng);
    let epk = EcJwk::from_public_key(&eph.public_key());
    let shared = eph.diffie_hellman(recipient);
    let header = JweHeader {
        alg: "ECDH-ES".into(),
        enc: "A256GCM".into(),
        epk,
        kid: kid.map(Into::into),
        apu: None,
        apv: None,
    };
    let h = b64::encode(&serde_json::to_vec(&header).map_err(|_| Error::Encode)?);
    // RFC 7518 §4.6.2: AlgorithmID is the "enc" value for direct key agreement.
    let cek = concat_kdf(shared.raw_secret_bytes(), b"A256GCM", &[], &[], 32);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| Error::Encode)?;
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let nonce = Nonce::from(iv);
    let mut buf = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(&nonce, h.as_bytes(), buf.as_mut_slice().into())
        .map_err(|_| Error::Encode)?;
    Ok(format!(
        "{h}..{}.{}.{}",
        b64::encode(&iv),
        b64::encode(&buf),
        b64::encode(&tag)
    ))
}

/// Decrypts a compact JWE addressed to `key`.
///
/// # Errors
/// [`Error::Message`] with [`ErrorCode::MessageInvalid`] for a malformed token or unsupported
/// algorithm, or [`ErrorCode::DecryptionFailure`] when the tag does not verify.
pub fn decrypt_compact(token: &str, key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bad = |why: &'static str| Error::Message(ErrorCode::MessageInvalid, why);
    if token.len() > MAX_JWE_LEN {
        return Err(bad("JWE too long"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [h, ek, iv, ct, tag] = parts.as_slice() else {
        return Err(bad("JWE must have five parts"));
    };
    if !ek.is_empty() {
        return Err(bad("ECDH-ES carries no encrypted key"));
    }
    let header: JweHeader =
        serde_json::from_slice(&b64::decode(h).map_err(|_| bad("JWE header base64url"))?)
            .map_err(|_| bad("JWE header JSON"))?;
    if header.alg != "ECDH-ES" || header.enc != "A256GCM" {
        return Err(bad("JWE algorithm is not ECDH-ES/A256GCM"));
    }
    let epk = header.epk.to_public_key().map_err(|_| bad("JWE epk"))?;
    let apu = header
        .apu
        .as_deref()
        .map(b64::decode)
        .transpose()
        .map_err(|_| bad("JWE apu"))?
        .unwrap_or_default();
    let apv = header
        .apv
        .as_deref()
        .map(b64::decode)
        .transpose()
        .map_err(|_| bad("JWE apv"))?
        .unwrap_or_default();
    let iv = b64::decode(iv).map_err(|_| bad("JWE iv"))?;
    let nonce = Nonce::try_from(iv.as_slice()).map_err(|_| bad("JWE iv must be 96 bits"))?;
    let tag = b64::decode(tag).map_err(|_| bad("JWE tag"))?;
    let tag = Tag::try_from(tag.as_slice()).map_err(|_| bad("JWE tag must be 128 bits"))?;
    let mut buf = Zeroizing::new(b64::decode(ct).map_err(|_| bad("JWE ciphertext"))?);
    let shared = diffie_hellman(key.signing_key().as_nonzero_scalar(), epk.as_affine());
    let cek = concat_kdf(shared.raw_secret_bytes(), b"A256GCM", &apu, &apv, 32);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| bad("JWE key"))?;
    cipher
        .decrypt_inout_detached(&nonce, h.as_bytes(), buf.as_mut_slice().into(), &tag)
        .map_err(|_| Error::Message(ErrorCode::DecryptionFailure, "JWE tag mismatch"))?;
    Ok(buf)
}
