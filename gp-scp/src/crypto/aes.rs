//! AES-128/192/256: CBC and AES-CMAC (NIST SP 800-38B) through the `cbc` encryptor.

use aes::cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit, consts::U16,
};
use aes::{Aes128, Aes192, Aes256};
use alloc::vec::Vec;
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

type Block = Array<u8, U16>;

/// The AES block length in bytes.
pub const AES_BLOCK: usize = 16;

/// The CMAC subkey constant R_128 (NIST SP 800-38B §5.3).
const RB: u8 = 0x87;

enum Inner {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

/// An AES key schedule with its CMAC subkeys, built once and reused for every operation.
///
/// All bulk operations go through `cbc` so that the round keys stay loaded for the whole
/// buffer (`aes` 0.9's one-block API is much slower per block). CMAC is the CBC-MAC of the
/// buffer with the last block masked by K1 or K2, exactly as NIST SP 800-38B §6.2 defines it.
pub struct AesCipher {
    inner: Inner,
    k1: [u8; AES_BLOCK],
    k2: [u8; AES_BLOCK],
}

impl fmt::Debug for AesCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesCipher")
            .field("key_len", &self.key_len())
            .finish_non_exhaustive()
    }
}

impl Drop for AesCipher {
    fn drop(&mut self) {
        self.k1.zeroize();
        self.k2.zeroize();
        // The `aes` key schedules zeroize themselves on drop (feature "zeroize").
    }
}

impl ZeroizeOnDrop for AesCipher {}

fn cbc_enc<C: BlockCipherEncrypt<BlockSize = U16>>(c: &C, iv: &[u8; 16], buf: &mut [u8]) {
    let (blocks, _) = Block::slice_as_chunks_mut(buf);
    let mut mode = cbc::Encryptor::<&C>::inner_iv_init(c, iv.into());
    mode.encrypt_blocks(blocks);
}

fn cbc_dec<C: BlockCipherDecrypt<BlockSize = U16>>(c: &C, iv: &[u8; 16], buf: &mut [u8]) {
    let (blocks, _) = Block::slice_as_chunks_mut(buf);
    let mut mode = cbc::Decryptor::<&C>::inner_iv_init(c, iv.into());
    mode.decrypt_blocks(blocks);
}

/// Doubling in GF(2^128) (NIST SP 800-38B §6.1).
fn dbl(block: &[u8; AES_BLOCK]) -> [u8; AES_BLOCK] {
    let carry = block[0] >> 7; // 0 or 1
    let shifted = u128::from_be_bytes(*block) << 1;
    let mut out = shifted.to_be_bytes();
    // Constant-time conditional xor of Rb.
    out[AES_BLOCK - 1] ^= RB & carry.wrapping_neg();
    out
}

impl AesCipher {
    /// Build the key schedule and CMAC subkeys for a 16, 24 or 32-byte key.
    ///
    /// # Errors
    /// [`Error::KeyLength`] for any other key length.
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        let inner = match key.len() {
            16 => Inner::A128(Aes128::new_from_slice(key).map_err(|_| Error::KeyLength)?),
            24 => Inner::A192(Aes192::new_from_slice(key).map_err(|_| Error::KeyLength)?),
            32 => Inner::A256(Aes256::new_from_slice(key).map_err(|_| Error::KeyLength)?),
            _ => return Err(Error::KeyLength),
        };
        let mut this = Self {
            inner,
            k1: [0; AES_BLOCK],
            k2: [0; AES_BLOCK],
        };
        let mut l = [0u8; AES_BLOCK];
        this.encrypt_block(&mut l);
        this.k1 = dbl(&l);
        this.k2 = dbl(&this.k1);
        l.zeroize();
        Ok(this)
    }

    /// The key length in bytes (16, 24 or 32).
    #[must_use]
    pub fn key_len(&self) -> usize {
        match self.inner {
            Inner::A128(_) => 16,
            Inner::A192(_) => 24,
            Inner::A256(_) => 32,
        }
    }

    /// Encrypt one block in place (ECB).
    pub fn encrypt_block(&self, block: &mut [u8; AES_BLOCK]) {
        let iv = [0u8; AES_BLOCK];
        self.cbc_encrypt(&iv, block);
    }

    /// CBC-encrypt `buf` in place with `iv`. Only whole blocks are processed; callers pad first.
    pub fn cbc_encrypt(&self, iv: &[u8; AES_BLOCK], buf: &mut [u8]) {
        match &self.inner {
            Inner::A128(c) => cbc_enc(c, iv, buf),
            Inner::A192(c) => cbc_enc(c, iv, buf),
            Inner::A256(c) => cbc_enc(c, iv, buf),
        }
    }

    /// CBC-decrypt `buf` in place with `iv`. Only whole blocks are processed.
    pub fn cbc_decrypt(&self, iv: &[u8; AES_BLOCK], buf: &mut [u8]) {
        match &self.inner {
            Inner::A128(c) => cbc_dec(c, iv, buf),
            Inner::A192(c) => cbc_dec(c, iv, buf),
            Inner::A256(c) => cbc_dec(c, iv, buf),
        }
    }

    /// AES-CMAC of the message in `buf`, which is used as scratch space: on return it holds
    /// the padded, encrypted message and its content is meaningless.
    pub fn cmac_in_place(&self, buf: &mut Vec<u8>) -> [u8; AES_BLOCK] {
        let complete = !buf.is_empty() && buf.len().is_multiple_of(AES_BLOCK);
        if !complete {
            super::pad::pad_method2(buf, AES_BLOCK);
        }
        let subkey = if complete { &self.k1 } else { &self.k2 };
        let start = buf.len() - AES_BLOCK;
        if let Some(last) = buf.get_mut(start..) {
            for (b, k) in last.iter_mut().zip(subkey) {
                *b ^= k;
            }
        }
        self.cbc_encrypt(&[0; AES_BLOCK], buf);
        let mut tag = [0u8; AES_BLOCK];
        if let Some(last) = buf.get(start..) {
            tag.copy_from_slice(last);
        }
        tag
    }

    /// AES-CMAC of the concatenation of `parts`.
    #[must_use]
    pub fn cmac(&self, parts: &[&[u8]]) -> [u8; AES_BLOCK] {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut buf = Vec::with_capacity(total + AES_BLOCK);
        for p in parts {
            buf.extend_from_slice(p);
        }
        let tag = self.cmac_in_place(&mut buf);
        buf.zeroize();
        tag
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// NIST SP 800-38B Appendix D.1-D.3 (AES-128/192/256 CMAC examples 1-4).
    #[test]
    fn nist_sp800_38b_vectors() {
        let msg = h(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        );
        let cases: [(&str, [&str; 4]); 3] = [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                [
                    "bb1d6929e95937287fa37d129b756746",
                    "070a16b46b4d4144f79bdd9dd04a287c",
                    "dfa66747de9ae63030ca32611497c827",
                    "51f0bebf7e3b9d92fc49741779363cfe",
                ],
            ),
            (
                "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
                [
                    "d17ddf46adaacde531cac483de7a9367",
                    "9e99a7bf31e710900662f65e617c5184",
                    "8a1de5be2eb31aad089a82e6ee908b0e",
                    "a1d5df0eed790f794d77589659f39a11",
                ],
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                [
                    "028962f61b7bf89efc6b551f4667d983",
                    "28a7023f452e8f82bd4bf28d8c37c35c",
                    "aaf3d8f1de5640c232f5b169b9c911e6",
                    "e1992190549f6ed5696a2c056c315410",
                ],
            ),
        ];
        for (key, tags) in cases {
            let c = AesCipher::new(&h(key)).unwrap();
            for (len, tag) in [0usize, 16, 40, 64].into_iter().zip(tags) {
                assert_eq!(
                    c.cmac(&[&msg[..len]]).to_vec(),
                    h(tag),
                    "key {key} len {len}"
                );
            }
        }
    }

    #[test]
    fn matches_cmac_crate_on_all_lengths() {
        use cmac::Mac;
        let key = [0x42u8; 16];
        let c = AesCipher::new(&key).unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        for len in 0..data.len() {
            let mut m = <cmac::Cmac<Aes128> as cmac::KeyInit>::new_from_slice(&key).unwrap();
            m.update(&data[..len]);
            let want = m.finalize().into_bytes();
            let split = len / 3;
            assert_eq!(c.cmac(&[&data[..split], &data[split..len]])[..], want[..]);
        }
    }

    #[test]
    fn cbc_round_trip() {
        let c = AesCipher::new(&[7u8; 32]).unwrap();
        let iv = [9u8; 16];
        let plain: Vec<u8> = (0..64u8).collect();
        let mut buf = plain.clone();
        c.cbc_encrypt(&iv, &mut buf);
        assert_ne!(buf, plain);
        c.cbc_decrypt(&iv, &mut buf);
        assert_eq!(buf, plain);
        assert!(AesCipher::new(&[0u8; 15]).is_err());
    }
}
