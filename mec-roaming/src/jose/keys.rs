//! P-256 keys loaded from PKCS#8 (private, RFC 5208/5958) and SubjectPublicKeyInfo (public,
//! RFC 5280 §4.1.2.7), PEM or DER.

use core::fmt;
use p256::PublicKey;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::Error;

/// A P-256 private key used for ES256 signatures and ECDH-ES decryption.
///
/// `Debug` prints only the public half; the scalar is zeroized on drop (by `p256`), in every
/// clone as well.
#[derive(Clone)]
pub struct PrivateKey {
    key: SigningKey,
}

impl ZeroizeOnDrop for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public_key_sec1_hex())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Loads a PKCS#8 `PRIVATE KEY` in PEM form.
    ///
    /// # Errors
    /// [`Error::Key`] when the text is not a P-256 PKCS#8 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|key| Self { key })
            .map_err(|_| Error::Key("PKCS#8 PEM"))
    }

    /// Loads a PKCS#8 `PrivateKeyInfo` in DER form.
    ///
    /// # Errors
    /// [`Error::Key`] when the bytes are not a P-256 PKCS#8 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        SigningKey::from_pkcs8_der(der)
            .map(|key| Self { key })
            .map_err(|_| Error::Key("PKCS#8 DER"))
    }

    /// Generates a fresh key from the caller's random generator.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self {
            key: <SigningKey as Generate>::generate_from_rng(rng),
        }
    }

    /// The key as PKCS#8 PEM (zeroized when dropped).
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| Error::Key("PKCS#8 encode"))
    }

    /// The key as PKCS#8 DER (zeroized when dropped).
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.key
            .to_pkcs8_der()
            .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            .map_err(|_| Error::Key("PKCS#8 encode"))
    }

    /// The ECDSA signing key.
    #[must_use]
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The matching verifying (public) key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.key.verifying_key())
    }

    /// The public key as SubjectPublicKeyInfo PEM, for a partner configuration file.
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails.
    pub fn public_key_pem(&self) -> Result<String, Error> {
        self.public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| Error::Key("SPKI encode"))
    }

    fn public_key_sec1_hex(&self) -> String {
        let p = self.key.verifying_key().to_sec1_point(true);
        p.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Parses a SubjectPublicKeyInfo P-256 public key from PEM (`-----BEGIN PUBLIC KEY-----`) or,
/// when the text is not PEM, from base64 DER.
///
/// # Errors
/// [`Error::Key`] when the input is neither.
pub fn parse_public_key(text: &str) -> Result<PublicKey, Error> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        return PublicKey::from_public_key_pem(t).map_err(|_| Error::Key("SPKI PEM"));
    }
    let der = crate::jose::b64::decode_std(t).map_err(|_| Error::Key("SPKI base64"))?;
    parse_public_key_der(&der)
}

/// Parses a SubjectPublicKeyInfo P-256 public key in DER.
///
/// # Errors
/// [`Error::Key`] when the bytes are not a P-256 SPKI.
pub fn parse_public_key_der(der: &[u8]) -> Result<PublicKey, Error> {
    PublicKey::from_public_key_der(der).map_err(|_| Error::Key("SPKI DER"))
}

/// Parses a SEC1 encoded P-256 point (compressed or uncompressed, SEC 1 v2 §2.3.3).
///
/// # Errors
/// [`Error::Key`] when the bytes are not a point on P-256.
pub fn parse_public_key_sec1(bytes: &[u8]) -> Result<PublicKey, Error> {
    PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::Key("SEC1 point"))
}

/// SEC1 uncompressed encoding (`04 || X || Y`) of a public key.
#[must_use]
pub fn public_key_sec1(key: &PublicKey) -> Vec<u8> {
    key.to_sec1_bytes().to_vec()
}
