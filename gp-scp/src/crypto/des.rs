//! Two-key 3DES and single DES with the ISO/IEC 9797-1 MACs GlobalPlatform SCP02 uses.

use alloc::vec::Vec;
use core::fmt;
use des::cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit, consts::U8,
};
use des::{Des, TdesEde2};
use zeroize::ZeroizeOnDrop;

use crate::Error;

type Block = Array<u8, U8>;

/// The DES block length in bytes.
pub const DES_BLOCK: usize = 8;

fn cbc_enc<C: BlockCipherEncrypt<BlockSize = U8>>(c: &C, iv: &[u8; 8], buf: &mut [u8]) {
    let (blocks, _) = Block::slice_as_chunks_mut(buf);
    let mut mode = cbc::Encryptor::<&C>::inner_iv_init(c, iv.into());
    mode.encrypt_blocks(blocks);
}

fn cbc_dec<C: BlockCipherDecrypt<BlockSize = U8>>(c: &C, iv: &[u8; 8], buf: &mut [u8]) {
    let (blocks, _) = Block::slice_as_chunks_mut(buf);
    let mut mode = cbc::Decryptor::<&C>::inner_iv_init(c, iv.into());
    mode.decrypt_blocks(blocks);
}

/// CBC-MAC: the last block of the CBC encryption of whole blocks of `data` (no copy of the
/// caller's data beyond one scratch buffer).
fn cbc_mac<C: BlockCipherEncrypt<BlockSize = U8>>(c: &C, icv: &[u8; 8], data: &[u8]) -> [u8; 8] {
    let mut state = *icv;
    let (blocks, _) = data.as_chunks::<8>();
    // Process in chunks through the CBC encryptor so that the backend stays loaded.
    let mut scratch = [0u8; 256];
    for group in blocks.chunks(scratch.len() / 8) {
        let n = group.len() * 8;
        let Some(buf) = scratch.get_mut(..n) else {
            break;
        };
        for (dst, src) in buf.chunks_exact_mut(8).zip(group) {
            dst.copy_from_slice(src);
        }
        cbc_enc(c, &state, buf);
        if let Some(last) = buf.get(n - 8..) {
            state.copy_from_slice(last);
        }
    }
    state
}

/// A two-key 3DES (EDE) key schedule with the single-DES schedule of its left half, as
/// SCP02 needs both (retail MAC, ICV encryption).
pub struct Des3Cipher {
    tdes: TdesEde2,
    left: Des,
}

impl fmt::Debug for Des3Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Des3Cipher { .. }")
    }
}

// `des` key schedules zeroize themselves on drop (feature "zeroize").
impl ZeroizeOnDrop for Des3Cipher {}

impl Des3Cipher {
    /// Build the schedules for a 16-byte (two-key) 3DES key.
    ///
    /// # Errors
    /// [`Error::KeyLength`] when the key is not 16 bytes.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        let tdes = TdesEde2::new_from_slice(key).map_err(|_| Error::KeyLength)?;
        let left = Des::new_from_slice(key.get(..8).ok_or(Error::KeyLength)?)
            .map_err(|_| Error::KeyLength)?;
        Ok(Self { tdes, left })
    }

    /// Encrypt one block in place (3DES-ECB).
    pub fn encrypt_block(&self, block: &mut [u8; DES_BLOCK]) {
        self.tdes.encrypt_block(block.into());
    }

    /// Encrypt one block in place with single DES under the left half of the key.
    pub fn encrypt_block_left(&self, block: &mut [u8; DES_BLOCK]) {
        self.left.encrypt_block(block.into());
    }

    /// 3DES-CBC encrypt whole blocks of `buf` in place.
    pub fn cbc_encrypt(&self, iv: &[u8; DES_BLOCK], buf: &mut [u8]) {
        cbc_enc(&self.tdes, iv, buf);
    }

    /// 3DES-CBC decrypt whole blocks of `buf` in place.
    pub fn cbc_decrypt(&self, iv: &[u8; DES_BLOCK], buf: &mut [u8]) {
        cbc_dec(&self.tdes, iv, buf);
    }

    /// ISO/IEC 9797-1 MAC algorithm 1 with 3DES (full triple-DES CBC-MAC) over already padded
    /// `data` (whole blocks), starting from `icv`.
    #[must_use]
    pub fn mac_alg1(&self, icv: &[u8; DES_BLOCK], data: &[u8]) -> [u8; DES_BLOCK] {
        cbc_mac(&self.tdes, icv, data)
    }

    /// ISO/IEC 9797-1 MAC algorithm 3 (the "retail MAC") over already padded `data` (whole
    /// blocks), starting from `icv`: single-DES CBC under the left key, and the last block
    /// through the full 3DES (decrypt with the right key, encrypt with the left one).
    #[must_use]
    pub fn mac_alg3(&self, icv: &[u8; DES_BLOCK], data: &[u8]) -> [u8; DES_BLOCK] {
        let n = data.len() / DES_BLOCK;
        if n == 0 {
            return *icv;
        }
        let split = (n - 1) * DES_BLOCK;
        let (head, last) = data.split_at(split);
        let mut state = cbc_mac(&self.left, icv, head);
        for (s, b) in state.iter_mut().zip(last) {
            *s ^= b;
        }
        self.encrypt_block(&mut state);
        state
    }

    /// Retail MAC over `parts` with method-2 padding, starting from `icv`.
    #[must_use]
    pub fn mac_alg3_padded(&self, icv: &[u8; DES_BLOCK], parts: &[&[u8]]) -> [u8; DES_BLOCK] {
        let mut buf = concat_padded(parts);
        let mac = self.mac_alg3(icv, &buf);
        zeroize::Zeroize::zeroize(&mut buf);
        mac
    }

    /// Full 3DES MAC over `parts` with method-2 padding and a zero ICV (SCP02 cryptograms).
    #[must_use]
    pub fn mac_alg1_padded(&self, parts: &[&[u8]]) -> [u8; DES_BLOCK] {
        let mut buf = concat_padded(parts);
        let mac = self.mac_alg1(&[0; DES_BLOCK], &buf);
        zeroize::Zeroize::zeroize(&mut buf);
        mac
    }
}

fn concat_padded(parts: &[&[u8]]) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut buf = Vec::with_capacity(total + DES_BLOCK);
    for p in parts {
        buf.extend_from_slice(p);
    }
    super::pad::pad_method2(&mut buf, DES_BLOCK);
    buf
}

/// A single-DES key schedule (ISO/IEC 9797-1 algorithm 1 with DES, FIPS 113).
pub struct DesCipher {
    des: Des,
}

impl fmt::Debug for DesCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DesCipher { .. }")
    }
}

impl ZeroizeOnDrop for DesCipher {}

impl DesCipher {
    /// Build the schedule for an 8-byte DES key.
    ///
    /// # Errors
    /// [`Error::KeyLength`] when the key is not 8 bytes.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            des: Des::new_from_slice(key).map_err(|_| Error::KeyLength)?,
        })
    }

    /// Encrypt one block in place (DES-ECB).
    pub fn encrypt_block(&self, block: &mut [u8; DES_BLOCK]) {
        self.des.encrypt_block(block.into());
    }

    /// CBC-MAC (ISO/IEC 9797-1 algorithm 1) over already padded `data`, from `icv`.
    #[must_use]
    pub fn mac_alg1(&self, icv: &[u8; DES_BLOCK], data: &[u8]) -> [u8; DES_BLOCK] {
        cbc_mac(&self.des, icv, data)
    }
}
