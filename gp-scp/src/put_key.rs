//! PUT KEY key data (GPC 2.3 §11.8.2.3, Amd D §7.2): the new key version, then per key
//! `type || length || encrypted key || 03 || KCV`.
//!
//! - DES keys (`80`): 16 bytes, 3DES-ECB under the DEK (SCP02: the session DEK).
//! - AES keys (`88`): `length || AES-CBC(DEK, ICV 0, key || 00..)` — the key length byte,
//!   then the key zero-padded to a multiple of 16 (Amd D §7.2.1, as GlobalPlatformPro sends
//!   it); the DEK is the static DEK (SCP03) or S-DEK (SCP11). yubikit sends the encrypted key
//!   without the length byte (`88 10 ..`); decoding accepts both ([`AesKeyFormat`]).
//!
//! The key check value of each key is checked on decoding. EC keys (`B0`/`B1`) are not
//! handled here.

use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

use crate::Error;
use crate::crypto::{AesCipher, Des3Cipher};
use crate::keys::{Kcv, KeyType, SecretKey};

/// KCV length field (GPC 2.3 Table 11-68).
const KCV_LEN: u8 = 0x03;

/// One decoded key of PUT KEY data.
#[derive(Clone, PartialEq, Eq)]
pub struct PutKeyComponent {
    /// The key type.
    pub key_type: KeyType,
    /// The plain key.
    pub key: SecretKey,
    /// Its key check value (verified).
    pub kcv: Kcv,
}

impl fmt::Debug for PutKeyComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutKeyComponent")
            .field("key_type", &self.key_type)
            .field("key", &self.key)
            .field("kcv", &self.kcv)
            .finish()
    }
}

/// How an AES key component is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AesKeyFormat {
    /// `88 (n+1) len || encrypted key` (GPC Amd D §7.2.1, GlobalPlatformPro).
    #[default]
    LengthPrefixed,
    /// `88 n || encrypted key` (yubikit); only for 16 and 32-byte keys.
    Bare,
}

/// Decoded PUT KEY data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutKeyData {
    /// The new key version number.
    pub new_version: u8,
    /// The keys in order (key ids P2, P2+1, ...).
    pub keys: Vec<PutKeyComponent>,
    /// The layout the AES components used (the last one seen; `LengthPrefixed` without AES
    /// keys).
    pub aes_format: AesKeyFormat,
}

// Short-lived and built once per PUT KEY: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Dek {
    Des(Des3Cipher),
    Aes(AesCipher),
}

impl Dek {
    fn new(dek: &[u8], dek_type: KeyType) -> Result<Self, Error> {
        match dek_type {
            KeyType::Des => Ok(Dek::Des(Des3Cipher::new(dek)?)),
            KeyType::Aes => Ok(Dek::Aes(AesCipher::new(dek)?)),
            _ => Err(Error::KeyType("a DEK is DES or AES")),
        }
    }
}

fn encrypt_des(dek: &Des3Cipher, buf: &mut [u8]) {
    for block in buf.chunks_exact_mut(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(block);
        dek.encrypt_block(&mut b);
        block.copy_from_slice(&b);
    }
}

fn decrypt_des(dek: &Des3Cipher, buf: &mut [u8]) {
    // ECB = CBC with a zero IV, block by block.
    for block in buf.chunks_exact_mut(8) {
        dek.cbc_decrypt(&[0; 8], block);
    }
}

/// Encode PUT KEY data for `keys` under `dek` (of `dek_type`).
///
/// # Errors
/// [`Error::KeyType`] when a key's type does not match the DEK's or is EC;
/// [`Error::KeyLength`] for unusable keys.
pub fn encode_put_key_data(
    new_version: u8,
    keys: &[(KeyType, &SecretKey)],
    dek: &[u8],
    dek_type: KeyType,
) -> Result<Vec<u8>, Error> {
    encode_put_key_data_as(
        AesKeyFormat::LengthPrefixed,
        new_version,
        keys,
        dek,
        dek_type,
    )
}

/// As [`encode_put_key_data`] with an explicit AES component layout.
///
/// # Errors
/// As [`encode_put_key_data`]; [`Error::KeyLength`] for a 24-byte key in
/// [`AesKeyFormat::Bare`] (its length would be ambiguous).
pub fn encode_put_key_data_as(
    aes_format: AesKeyFormat,
    new_version: u8,
    keys: &[(KeyType, &SecretKey)],
    dek: &[u8],
    dek_type: KeyType,
) -> Result<Vec<u8>, Error> {
    let dek = Dek::new(dek, dek_type)?;
    let mut out = Vec::with_capacity(1 + keys.len() * 40);
    out.push(new_version);
    for (key_type, key) in keys {
        let kcv = key.kcv(*key_type)?;
        match (key_type, &dek) {
            (KeyType::Des, Dek::Des(d)) => {
                if key.len() != 16 {
                    return Err(Error::KeyLength);
                }
                let mut enc = key.as_bytes().to_vec();
                encrypt_des(d, &mut enc);
                out.extend_from_slice(&[0x80, 0x10]);
                out.extend_from_slice(&enc);
                enc.zeroize();
            }
            (KeyType::Aes, Dek::Aes(a)) => {
                let len = u8::try_from(key.len()).map_err(|_| Error::KeyLength)?;
                let mut enc = key.as_bytes().to_vec();
                enc.resize(key.len().div_ceil(16) * 16, 0);
                a.cbc_encrypt(&[0; 16], &mut enc);
                match aes_format {
                    AesKeyFormat::LengthPrefixed => {
                        let field = u8::try_from(enc.len() + 1).map_err(|_| Error::KeyLength)?;
                        out.extend_from_slice(&[0x88, field, len]);
                    }
                    AesKeyFormat::Bare => {
                        if enc.len() != key.len() {
                            return Err(Error::KeyLength);
                        }
                        out.extend_from_slice(&[0x88, len]);
                    }
                }
                out.extend_from_slice(&enc);
                enc.zeroize();
            }
            _ => return Err(Error::KeyType("key type does not match the DEK")),
        }
        out.push(KCV_LEN);
        out.extend_from_slice(&kcv.0);
    }
    Ok(out)
}

/// Decode PUT KEY data (card side): decrypt every key under `dek` and check its KCV.
///
/// # Errors
/// [`Error::Malformed`] (6A80 via the caller) for truncated or inconsistent fields,
/// [`Error::KeyType`] for key types other than DES/AES or not matching the DEK,
/// [`Error::KcvMismatch`] when a decrypted key does not have the KCV sent with it.
pub fn parse_put_key_data(data: &[u8], dek: &[u8], dek_type: KeyType) -> Result<PutKeyData, Error> {
    let dek = Dek::new(dek, dek_type)?;
    let (&new_version, mut rest) = data
        .split_first()
        .ok_or(Error::Malformed("PUT KEY data (empty)"))?;
    let mut keys = Vec::new();
    let mut aes_format = AesKeyFormat::LengthPrefixed;
    let mut aes_seen = false;
    while !rest.is_empty() {
        let [t, l, tail @ ..] = rest else {
            return Err(Error::Malformed("PUT KEY key header"));
        };
        let key_type = KeyType::from_byte(*t)?;
        let len = usize::from(*l);
        let field = tail
            .get(..len)
            .ok_or(Error::Malformed("PUT KEY key data (truncated)"))?;
        let after = tail.get(len..).unwrap_or(&[]);
        let [kcv_len, k0, k1, k2, next @ ..] = after else {
            return Err(Error::Malformed("PUT KEY KCV (truncated)"));
        };
        if *kcv_len != KCV_LEN {
            return Err(Error::Malformed("PUT KEY KCV length"));
        }
        let mut plain = match (key_type, &dek) {
            (KeyType::Des, Dek::Des(d)) => {
                if len != 16 {
                    return Err(Error::Malformed("PUT KEY DES key length"));
                }
                let mut k = field.to_vec();
                decrypt_des(d, &mut k);
                k
            }
            (KeyType::Aes, Dek::Aes(a)) => {
                // `len || encrypted` (odd field length) or bare `encrypted` (16 or 32 bytes).
                let format = if matches!(len, 16 | 32) {
                    AesKeyFormat::Bare
                } else {
                    AesKeyFormat::LengthPrefixed
                };
                if aes_seen && format != aes_format {
                    return Err(Error::Malformed("PUT KEY data mixes AES key layouts"));
                }
                aes_seen = true;
                aes_format = format;
                let (key_len, enc) = if format == AesKeyFormat::Bare {
                    (len, field)
                } else {
                    let (&l, enc) = field
                        .split_first()
                        .ok_or(Error::Malformed("PUT KEY AES key length"))?;
                    (usize::from(l), enc)
                };
                if !matches!(key_len, 16 | 24 | 32) || enc.len() != key_len.div_ceil(16) * 16 {
                    return Err(Error::Malformed("PUT KEY AES key length"));
                }
                let mut k = enc.to_vec();
                a.cbc_decrypt(&[0; 16], &mut k);
                if k.get(key_len..)
                    .is_some_and(|pad| pad.iter().any(|&b| b != 0))
                {
                    k.zeroize();
                    return Err(Error::Malformed("PUT KEY AES key padding"));
                }
                k.truncate(key_len);
                k
            }
            _ => return Err(Error::KeyType("key type does not match the DEK")),
        };
        let key = SecretKey::new(&plain);
        plain.zeroize();
        let kcv = key.kcv(key_type)?;
        if kcv.0 != [*k0, *k1, *k2] {
            return Err(Error::KcvMismatch);
        }
        keys.push(PutKeyComponent { key_type, key, kcv });
        rest = next;
    }
    if keys.is_empty() {
        return Err(Error::Malformed("PUT KEY data without keys"));
    }
    Ok(PutKeyData {
        new_version,
        keys,
        aes_format,
    })
}

/// Re-encode decoded data (used by the fuzz check).
///
/// # Errors
/// As [`encode_put_key_data`].
#[doc(hidden)]
pub fn encode_parsed(parsed: &PutKeyData, dek: &[u8], dek_type: KeyType) -> Result<Vec<u8>, Error> {
    let keys: Vec<(KeyType, &SecretKey)> =
        parsed.keys.iter().map(|k| (k.key_type, &k.key)).collect();
    encode_put_key_data_as(parsed.aes_format, parsed.new_version, &keys, dek, dek_type)
}
