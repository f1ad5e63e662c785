//! Cryptographic building blocks composed from RustCrypto primitives.
//!
//! Everything here works on caller-owned buffers with key schedules that the caller keeps
//! (a session builds its ciphers once and reuses them for every command):
//!
//! - [`AesCipher`]: AES-128/192/256 with CBC encryption/decryption and AES-CMAC
//!   (NIST SP 800-38B) computed by feeding whole buffers through the `cbc` encryptor;
//! - [`Des3Cipher`]/[`DesCipher`]: two-key 3DES and single DES, ISO/IEC 9797-1 MAC algorithm 1
//!   (full 3DES CBC-MAC) and algorithm 3 (retail MAC) with an ICV;
//! - [`kdf`]: the NIST SP 800-108 counter-mode KDF in the GlobalPlatform SCP03 layout and the
//!   ANSI X9.63 KDF with SHA-256 used by SCP11;
//! - [`pad`]: ISO/IEC 9797-1 padding method 2 (`80 00 ..`).
//!
//! The `des` crate uses table-based S-boxes and is not constant-time; a card port should use
//! the chip's DES engine instead.

mod aes;
mod des;
pub mod kdf;
pub mod pad;

pub use self::aes::{AES_BLOCK, AesCipher};
pub use self::des::{DES_BLOCK, Des3Cipher, DesCipher};
