//! JWS compact serialization with ES256 (RFC 7515 §7.1, RFC 7518 §3.4).
//!
//! `BASE64URL(UTF8(header)) || '.' || BASE64URL(payload) || '.' || BASE64URL(R || S)` where the
//! signature is ECDSA P-256 over SHA-256 of the ASCII signing input, encoded as the 64-byte
//! concatenation of `R` and `S` (RFC 7518 §3.4), not DER.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::jose::b64;
use crate::jose::keys::PrivateKey;
use crate::{Error, ErrorCode};

/// Largest compact JWS accepted (bytes). Roaming messages are a few kilobytes.
pub const MAX_JWS_LEN: usize = 64 * 1024;

/// The only algorithm accepted (RFC 7518 §3.1 "ES256").
pub const ALG_ES256: &str = "ES256";

/// Media type of our signed roaming messages (RFC 7515 §4.1.9 `typ`).
pub const TYP_ROAMING: &str = "mec-roam+jws";

/// JWS protected header as we produce and accept it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwsHeader {
    /// Algorithm: always `ES256`.
    pub alg: String,
    /// Key id: the sender's partner name (required by our receivers, optional in JOSE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Type: `mec-roam+jws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// A compact JWS split into its parts, signature not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnverifiedJws<'a> {
    /// The decoded protected header.
    pub header: JwsHeader,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Signature,
}

/// Signs `payload` with `key`, producing a compact JWS with header
/// `{"alg":"ES256","kid":kid,"typ":"mec-roam+jws"}`.
///
/// Signatures are deterministic (RFC 6979), so no random input is needed.
///
/// # Errors
/// [`Error::Encode`] if the header cannot be serialized (does not happen for valid UTF-8).
pub fn sign_compact(key: &PrivateKey, kid: &str, payload: &[u8]) -> Result<String, Error> {
    let header = JwsHeader {
        alg: ALG_ES256.into(),
        kid: Some(kid.into()),
        typ: Some(TYP_ROAMING.into()),
    };
    let h = serde_json::to_vec(&header).map_err(|_| Error::Encode)?;
    let mut out = String::with_capacity((h.len() + payload.len()) * 4 / 3 + 100);
    out.push_str(&b64::encode(&h));
    out.push('.');
    out.push_str(&b64::encode(payload));
    let sig: Signature = key.signing_key().sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64::encode(&sig.to_bytes()));
    Ok(out)
}

/// Splits and decodes a compact JWS (RFC 7515 §5.2 steps 1-7), without verifying it.
///
/// # Errors
/// [`Error::Message`] with [`ErrorCode::MessageInvalid`] for a malformed token, or
/// [`ErrorCode::AccessDenied`] for an algorithm other than ES256 (including `none`).
pub fn parse_compact(token: &str) -> Result<UnverifiedJws<'_>, Error> {
    let bad = |why: &'static str| Error::Message(ErrorCode::MessageInvalid, why);
    if token.len() > MAX_JWS_LEN {
        return Err(bad("JWS too long"));
    }
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("JWS must have three parts"));
    };
    let header_bytes = b64::decode(h).map_err(|_| bad("JWS header is not base64url"))?;
    let header: JwsHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| bad("JWS header is not the expected JSON"))?;
    if header.alg != ALG_ES256 {
        return Err(Error::Message(
            ErrorCode::AccessDenied,
            "JWS algorithm is not ES256",
        ));
    }
    if header.typ.as_deref().is_some_and(|t| t != TYP_ROAMING) {
        return Err(bad("JWS typ is not mec-roam+jws"));
    }
    let payload = b64::decode(p).map_err(|_| bad("JWS payload is not base64url"))?;
    let sig_bytes = b64::decode(s).map_err(|_| bad("JWS signature is not base64url"))?;
    if sig_bytes.len() != 64 {
        return Err(bad("ES256 signature must be 64 bytes"));
    }
    let signature =
        Signature::from_slice(&sig_bytes).map_err(|_| bad("ES256 signature out of range"))?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or_else(|| bad("JWS split"))?;
    Ok(UnverifiedJws {
        header,
        signing_input,
        payload,
        signature,
    })
}

impl UnverifiedJws<'_> {
    /// Checks the signature with `key` and returns the payload.
    ///
    /// # Errors
    /// [`Error::Message`] with [`ErrorCode::AccessDenied`] when the signature does not verify.
    pub fn verify(self, key: &VerifyingKey) -> Result<Vec<u8>, Error> {
        key.verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| Error::Message(ErrorCode::AccessDenied, "bad JWS signature"))?;
        Ok(self.payload)
    }

    /// The payload, unverified (for diagnostics only).
    #[must_use]
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Verifies a compact JWS against one known key, returning header and payload.
///
/// # Errors
/// As [`parse_compact`] and [`UnverifiedJws::verify`].
pub fn verify_compact(token: &str, key: &VerifyingKey) -> Result<(JwsHeader, Vec<u8>), Error> {
    let jws = parse_compact(token)?;
    let header = jws.header.clone();
    Ok((header, jws.verify(key)?))
}
