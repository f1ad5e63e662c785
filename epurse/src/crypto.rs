//! Block-cipher MACs used by the purse: ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC over single
//! DES or two-key 3DES) and MAC algorithm 3 (the retail MAC), with padding methods 1 and 2.
//!
//! The block ciphers are RustCrypto's `des` crate; this module only chains blocks (CBC with a
//! zero IV) and keeps key schedules so that a caller can key a cipher once and MAC many times.
//! The MAC functions take the message as a list of parts so that callers never need to
//! allocate a buffer to concatenate fields.
//!
//! The `des` crate uses table-based S-boxes and is not constant-time; a port to a real card
//! should use the chip's DES engine.

use core::fmt;

use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// DES / 3DES block length (FIPS 46-3).
pub const BLOCK: usize = 8;

/// ISO/IEC 9797-1 §6.3 padding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// No padding: the message must be a whole number of blocks (and not empty).
    None,
    /// Method 1: zero bytes up to a whole block (an empty message becomes one zero block).
    Method1,
    /// Method 2: one `80` byte, then zero bytes up to a whole block (always appended).
    Method2,
}

/// A 16-byte secret: a two-key 3DES key (`K1 || K2`) or an AES-128 key.
///
/// Redacting `Debug`, zeroized on drop, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key16([u8; 16]);

impl Key16 {
    /// Wrap raw key bytes.
    #[must_use]
    pub const fn new(bytes: [u8; 16]) -> Self {
        Key16(bytes)
    }

    /// From a slice of exactly 16 bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] when the slice is not 16 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 16]>::try_from(bytes)
            .map(Key16)
            .map_err(|_| Error::BadLength {
                expected: 16,
                actual: bytes.len(),
            })
    }

    /// The raw bytes (for persisting; handle with care).
    #[must_use]
    pub const fn expose(&self) -> &[u8; 16] {
        &self.0
    }

    /// The left half `K1`.
    #[must_use]
    pub fn left(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.0[..8]);
        out
    }

    /// The right half `K2`.
    #[must_use]
    pub fn right(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out.copy_from_slice(&self.0[8..]);
        out
    }
}

impl PartialEq for Key16 {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key16 {}

impl fmt::Debug for Key16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key16(<redacted>)")
    }
}

/// A single-DES key with its key schedule (PBOC session keys, the TAC key).
#[derive(Clone)]
pub struct DesKey(Des);

impl DesKey {
    /// Key schedule of an 8-byte key (parity bits are ignored, as in FIPS 46-3).
    #[must_use]
    pub fn new(key: &[u8; 8]) -> Self {
        DesKey(Des::new(&Array::from(*key)))
    }

    /// Encrypt one block in place.
    pub fn encrypt(&self, block: &mut [u8; 8]) {
        let mut b = Array::from(*block);
        self.0.encrypt_block(&mut b);
        *block = b.into();
    }

    /// Decrypt one block in place.
    pub fn decrypt(&self, block: &mut [u8; 8]) {
        let mut b = Array::from(*block);
        self.0.decrypt_block(&mut b);
        *block = b.into();
    }
}

impl fmt::Debug for DesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DesKey(<redacted>)")
    }
}

/// A two-key 3DES (EDE, `K1 || K2`) key with its key schedule.
#[derive(Clone)]
pub struct TdesKey(TdesEde2);

impl TdesKey {
    /// Key schedule of a 16-byte key.
    #[must_use]
    pub fn new(key: &Key16) -> Self {
        TdesKey(TdesEde2::new(&Array::from(*key.expose())))
    }

    /// Encrypt one block in place.
    pub fn encrypt(&self, block: &mut [u8; 8]) {
        let mut b = Array::from(*block);
        self.0.encrypt_block(&mut b);
        *block = b.into();
    }

    /// Decrypt one block in place.
    pub fn decrypt(&self, block: &mut [u8; 8]) {
        let mut b = Array::from(*block);
        self.0.decrypt_block(&mut b);
        *block = b.into();
    }
}

impl fmt::Debug for TdesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TdesKey(<redacted>)")
    }
}

/// CBC chaining over a message given in parts, with zero IV and the given padding; `step`
/// enciphers one block. Returns the final chaining value.
fn cbc_chain(
    icv: [u8; 8],
    parts: &[&[u8]],
    padding: Padding,
    mut step: impl FnMut(&mut [u8; 8]),
) -> Result<[u8; 8], Error> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    match padding {
        Padding::None if total == 0 || !total.is_multiple_of(BLOCK) => {
            return Err(Error::BadLength {
                expected: total.div_ceil(BLOCK).max(1) * BLOCK,
                actual: total,
            });
        }
        _ => {}
    }
    let mut state = icv;
    let mut fill = 0usize;
    let mut blocks_done = 0usize;
    for part in parts {
        for &byte in *part {
            if let Some(slot) = state.get_mut(fill) {
                *slot ^= byte;
            }
            fill += 1;
            if fill == BLOCK {
                step(&mut state);
                fill = 0;
                blocks_done += 1;
            }
        }
    }
    match padding {
        Padding::None => {}
        Padding::Method1 => {
            // Zero bytes are xor-neutral: encipher a partial block, or the single zero block
            // of an empty message.
            if fill != 0 || blocks_done == 0 {
                step(&mut state);
            }
        }
        Padding::Method2 => {
            if let Some(slot) = state.get_mut(fill) {
                *slot ^= 0x80;
            }
            step(&mut state);
        }
    }
    Ok(state)
}

/// ISO/IEC 9797-1 MAC algorithm 1 with single DES (CBC-MAC, zero IV), all 8 bytes.
///
/// # Errors
/// [`Error::BadLength`] with [`Padding::None`] when the message is not whole blocks.
pub fn cbc_mac_des(key: &DesKey, parts: &[&[u8]], padding: Padding) -> Result<[u8; 8], Error> {
    cbc_chain([0; 8], parts, padding, |b| key.encrypt(b))
}

/// ISO/IEC 9797-1 MAC algorithm 1 with two-key 3DES (every block enciphered with 3DES).
///
/// # Errors
/// [`Error::BadLength`] with [`Padding::None`] when the message is not whole blocks.
pub fn cbc_mac_tdes(key: &TdesKey, parts: &[&[u8]], padding: Padding) -> Result<[u8; 8], Error> {
    cbc_chain([0; 8], parts, padding, |b| key.encrypt(b))
}

/// A keyed retail MAC (ISO/IEC 9797-1 MAC algorithm 3): single-DES CBC under `K1`, the last
/// block additionally deciphered under `K2` and enciphered under `K1`.
#[derive(Clone)]
pub struct RetailMacKey {
    k1: DesKey,
    k2: DesKey,
}

impl RetailMacKey {
    /// Key schedules of `K1` and `K2`.
    #[must_use]
    pub fn new(key: &Key16) -> Self {
        RetailMacKey {
            k1: DesKey::new(&key.left()),
            k2: DesKey::new(&key.right()),
        }
    }

    /// The 8-byte MAC.
    ///
    /// # Errors
    /// [`Error::BadLength`] with [`Padding::None`] when the message is not whole blocks.
    pub fn mac(&self, parts: &[&[u8]], padding: Padding) -> Result<[u8; 8], Error> {
        self.mac_with_icv([0; 8], parts, padding)
    }

    /// The 8-byte MAC with an initial chaining value (ISO/IEC 9797-1 allows an ICV; the purse's
    /// issuer commands use `challenge || 00000000`).
    ///
    /// # Errors
    /// [`Error::BadLength`] with [`Padding::None`] when the message is not whole blocks.
    pub fn mac_with_icv(
        &self,
        icv: [u8; 8],
        parts: &[&[u8]],
        padding: Padding,
    ) -> Result<[u8; 8], Error> {
        let mut out = cbc_chain(icv, parts, padding, |b| self.k1.encrypt(b))?;
        // ISO/IEC 9797-1 §7.3 output transformation 3.
        self.k2.decrypt(&mut out);
        self.k1.encrypt(&mut out);
        Ok(out)
    }
}

impl fmt::Debug for RetailMacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RetailMacKey(<redacted>)")
    }
}

/// Constant-time comparison of a received MAC with the expected one (lengths must match).
#[must_use]
pub fn mac_eq(expected: &[u8], received: &[u8]) -> bool {
    expected.len() == received.len() && bool::from(expected.ct_eq(received))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_none_rejects_partial_block() {
        let key = DesKey::new(&[1; 8]);
        assert!(matches!(
            cbc_mac_des(&key, &[&[1, 2, 3]], Padding::None),
            Err(Error::BadLength { .. })
        ));
        assert!(cbc_mac_des(&key, &[&[0; 16]], Padding::None).is_ok());
        // FIPS 81 / NBS SP 500-20 known answer: DES_0101010101010101(0) = 8CA64DE9C1B123A7.
        assert_eq!(
            cbc_mac_des(&key, &[&[0; 8]], Padding::None).unwrap(),
            [0x8C, 0xA6, 0x4D, 0xE9, 0xC1, 0xB1, 0x23, 0xA7]
        );
        // 0101010101010101 is a DES weak key (encryption is an involution), so the second
        // block's encryption undoes the first: the two-block MAC is all zero.
        assert_eq!(
            cbc_mac_des(&key, &[&[0; 16]], Padding::None).unwrap(),
            [0; 8]
        );
    }

    #[test]
    fn parts_split_anywhere_give_the_same_mac() {
        let key = DesKey::new(&[7; 8]);
        let data: [u8; 21] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        let whole = cbc_mac_des(&key, &[&data], Padding::Method2).unwrap();
        for cut in 0..data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(cbc_mac_des(&key, &[a, b], Padding::Method2).unwrap(), whole);
        }
    }
}
