//! Keys: secret key bytes, key types, key check values and static key sets.

use alloc::vec::Vec;
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;
use crate::crypto::{AesCipher, Des3Cipher};

/// GlobalPlatform key type coding (GPC 2.3 §11.1.8 Table 11-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// `80`: DES (two-key 3DES in CBC mode as SCP02 uses it).
    Des,
    /// `88`: AES (SCP03, SCP11 session keys).
    Aes,
    /// `B0`: ECC public key (GPC 2.3 Amd F/Table 11-16).
    EcPublic,
    /// `B1`: ECC private key.
    EcPrivate,
    /// `F0`: key parameter reference (ECC domain parameters).
    EcKeyParameters,
}

impl KeyType {
    /// The GP key type byte.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            KeyType::Des => 0x80,
            KeyType::Aes => 0x88,
            KeyType::EcPublic => 0xB0,
            KeyType::EcPrivate => 0xB1,
            KeyType::EcKeyParameters => 0xF0,
        }
    }

    /// Parse a GP key type byte.
    ///
    /// # Errors
    /// [`Error::KeyType`] for a coding this crate does not handle.
    pub const fn from_byte(b: u8) -> Result<Self, Error> {
        match b {
            0x80 => Ok(KeyType::Des),
            0x88 => Ok(KeyType::Aes),
            0xB0 => Ok(KeyType::EcPublic),
            0xB1 => Ok(KeyType::EcPrivate),
            0xF0 => Ok(KeyType::EcKeyParameters),
            _ => Err(Error::KeyType("unknown key type byte")),
        }
    }
}

/// A key check value (the first 3 bytes of the key encrypting a fixed block).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Kcv(pub [u8; 3]);

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}{:02X}{:02X}", self.0[0], self.0[1], self.0[2])
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kcv({self})")
    }
}

/// Key check value of a DES key: 3DES-encrypt eight `00` bytes, keep 3 bytes
/// (GPC 2.3 §11.8.2.3 / B.6).
///
/// # Errors
/// [`Error::KeyLength`] when the key is not 16 bytes.
pub fn kcv_des(key: &[u8]) -> Result<Kcv, Error> {
    let c = Des3Cipher::new(key)?;
    let mut block = [0u8; 8];
    c.encrypt_block(&mut block);
    Ok(Kcv([block[0], block[1], block[2]]))
}

/// Key check value of an AES key: AES-encrypt sixteen `01` bytes, keep 3 bytes
/// (GPC 2.3 Amd D §7.1.4).
///
/// # Errors
/// [`Error::KeyLength`] when the key is not 16, 24 or 32 bytes.
pub fn kcv_aes(key: &[u8]) -> Result<Kcv, Error> {
    let c = AesCipher::new(key)?;
    let mut block = [1u8; 16];
    c.encrypt_block(&mut block);
    Ok(Kcv([block[0], block[1], block[2]]))
}

/// Secret key bytes: zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    bytes: Vec<u8>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} bytes, redacted)", self.bytes.len())
    }
}

impl SecretKey {
    /// Copy key bytes into a new secret.
    #[must_use]
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
        }
    }

    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the key is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The key check value of this key as a `key_type` key.
    ///
    /// # Errors
    /// [`Error::KeyLength`] when the length does not fit the type; [`Error::KeyType`] for
    /// EC keys (no KCV convention).
    pub fn kcv(&self, key_type: KeyType) -> Result<Kcv, Error> {
        match key_type {
            KeyType::Des => kcv_des(&self.bytes),
            KeyType::Aes => kcv_aes(&self.bytes),
            _ => Err(Error::KeyType("no key check value for EC keys")),
        }
    }
}

impl From<&[u8]> for SecretKey {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes)
    }
}

/// A static secure channel key set: ENC, MAC and DEK keys of one key version (key ids 1, 2
/// and 3), all of one type.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySet {
    version: u8,
    key_type: KeyType,
    enc: SecretKey,
    mac: SecretKey,
    dek: SecretKey,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kcvs = self.kcvs();
        f.debug_struct("KeySet")
            .field("version", &format_args!("{:02X}", self.version))
            .field("key_type", &self.key_type)
            .field("key_len", &self.enc.len())
            .field("kcvs", &kcvs)
            .finish()
    }
}

impl KeySet {
    /// A key set from three keys of `key_type`.
    ///
    /// # Errors
    /// [`Error::KeyLength`] when a key length does not fit the type (DES: 16 bytes; AES: 16,
    /// 24 or 32, all three the same); [`Error::KeyType`] for EC types.
    pub fn new(
        version: u8,
        key_type: KeyType,
        enc: &[u8],
        mac: &[u8],
        dek: &[u8],
    ) -> Result<Self, Error> {
        let ok_len = |l: usize| match key_type {
            KeyType::Des => l == 16,
            KeyType::Aes => matches!(l, 16 | 24 | 32),
            _ => false,
        };
        if !matches!(key_type, KeyType::Des | KeyType::Aes) {
            return Err(Error::KeyType("a secure channel key set is DES or AES"));
        }
        if !ok_len(enc.len()) || mac.len() != enc.len() || dek.len() != enc.len() {
            return Err(Error::KeyLength);
        }
        Ok(Self {
            version,
            key_type,
            enc: SecretKey::new(enc),
            mac: SecretKey::new(mac),
            dek: SecretKey::new(dek),
        })
    }

    /// A key set with the same key for ENC, MAC and DEK (as factory test cards ship).
    ///
    /// # Errors
    /// As [`KeySet::new`].
    pub fn single(version: u8, key_type: KeyType, key: &[u8]) -> Result<Self, Error> {
        Self::new(version, key_type, key, key, key)
    }

    /// The key version number.
    #[must_use]
    pub const fn version(&self) -> u8 {
        self.version
    }

    /// The key type of all three keys.
    #[must_use]
    pub const fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The ENC key (key id 1).
    #[must_use]
    pub const fn enc(&self) -> &SecretKey {
        &self.enc
    }

    /// The MAC key (key id 2).
    #[must_use]
    pub const fn mac(&self) -> &SecretKey {
        &self.mac
    }

    /// The DEK key (key id 3).
    #[must_use]
    pub const fn dek(&self) -> &SecretKey {
        &self.dek
    }

    /// The key length in bytes.
    #[must_use]
    pub fn key_len(&self) -> usize {
        self.enc.len()
    }

    /// The same keys under another key version number.
    #[must_use]
    pub fn with_version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Key check values of ENC, MAC and DEK (all-zero KCVs if a key is unusable, which
    /// [`KeySet::new`] rules out).
    #[must_use]
    pub fn kcvs(&self) -> [Kcv; 3] {
        let k = |s: &SecretKey| s.kcv(self.key_type).unwrap_or_default();
        [k(&self.enc), k(&self.mac), k(&self.dek)]
    }
}

/// Well-known test keys. Never use them for anything but tests and demos: every tool in the
/// world knows them.
pub mod danger_test_keys {
    /// The GlobalPlatform default test key `404142...4F` ("K40").
    pub const K40: [u8; 16] = [
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E,
        0x4F,
    ];
}
