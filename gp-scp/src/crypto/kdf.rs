//! Key derivation functions: NIST SP 800-108 (GlobalPlatform SCP03 layout) and ANSI X9.63.

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::AesCipher;
use crate::Error;

/// SCP03 derivation constant: card cryptogram (GPC Amd D §6.2.2.2 Table 6-1).
pub const DERIVE_CARD_CRYPTOGRAM: u8 = 0x00;
/// SCP03 derivation constant: host cryptogram (Amd D Table 6-1).
pub const DERIVE_HOST_CRYPTOGRAM: u8 = 0x01;
/// SCP03 derivation constant: pseudo-random card challenge (Amd D Table 6-1).
pub const DERIVE_CARD_CHALLENGE: u8 = 0x02;
/// SCP03 derivation constant: S-ENC (Amd D Table 6-1).
pub const DERIVE_S_ENC: u8 = 0x04;
/// SCP03 derivation constant: S-MAC (Amd D Table 6-1).
pub const DERIVE_S_MAC: u8 = 0x06;
/// SCP03 derivation constant: S-RMAC (Amd D Table 6-1).
pub const DERIVE_S_RMAC: u8 = 0x07;

/// NIST SP 800-108 KDF in counter mode with AES-CMAC as PRF, in the data layout of
/// GPC Amd D §6.2.2.2: `label (11 x 00 || constant) || 00 || L (16 bits) || i (8 bits) ||
/// context`, filling `out` (L = `out.len() * 8`).
///
/// # Errors
/// [`Error::KeyLength`] when `out` is longer than 255 blocks or L does not fit 16 bits.
pub fn sp800_108(
    key: &AesCipher,
    constant: u8,
    context: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let bits = u16::try_from(out.len() * 8).map_err(|_| Error::KeyLength)?;
    let mut input = alloc::vec::Vec::with_capacity(16 + context.len() + 16);
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let counter = u8::try_from(i + 1).map_err(|_| Error::KeyLength)?;
        input.clear();
        input.extend_from_slice(&[0u8; 11]);
        input.push(constant);
        input.push(0x00);
        input.extend_from_slice(&bits.to_be_bytes());
        input.push(counter);
        input.extend_from_slice(context);
        let mut block = key.cmac_in_place(&mut input);
        chunk.copy_from_slice(block.get(..chunk.len()).unwrap_or(&[]));
        block.zeroize();
    }
    input.zeroize();
    Ok(())
}

/// ANSI X9.63 KDF with SHA-256 (SEC 1 §3.6.1): `SHA-256(Z || counter (32 bits) || shared_info)`
/// for counter = 1, 2, ..., concatenated and truncated to `out.len()`.
pub fn x963_sha256(z: &[u8], shared_info: &[u8], out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let counter = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut h = Sha256::new();
        h.update(z);
        h.update(counter.to_be_bytes());
        h.update(shared_info);
        let mut digest = h.finalize();
        chunk.copy_from_slice(digest.get(..chunk.len()).unwrap_or(&[]));
        digest.as_mut_slice().zeroize();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// ANSI X9.63 KDF SHA-256 vector from NIST CAVS 12.0 (SP 800-135 `ansx963_2001.rsp`,
    /// [SHA-256] [shared secret length = 192] [SharedInfo length = 0] [key data length = 128], COUNT = 0).
    #[test]
    fn x963_cavs_vector() {
        let z = hex::decode("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08").unwrap();
        let mut out = [0u8; 16];
        x963_sha256(&z, &[], &mut out);
        assert_eq!(hex::encode(out), "443024c3dae66b95e6f5670601558f71");
    }
}
