//! Static key diversification from the key diversification data (KDD, the first 10 bytes of
//! the INITIALIZE UPDATE response).

use core::fmt;
use zeroize::Zeroize;

use crate::Error;
use crate::crypto::{AesCipher, Des3Cipher};
use crate::keys::{KeySet, KeyType};

/// How static card keys derive from a master key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Diversification {
    /// The card uses the master keys as they are.
    #[default]
    None,
    /// EMV CPS 1.1 §5.4.2.1 (DES): 3DES-ECB over `KDD[4..10] || F0 || kt || KDD[4..10] || 0F || kt`.
    EmvCps11,
    /// VISA2 (DES): 3DES-ECB over `KDD[0..2] || KDD[4..8] || F0 || kt || KDD[0..2] ||
    /// KDD[4..8] || 0F || kt`.
    Visa2,
    /// KDF3 (AES, SCP03 cards): AES-CMAC counter KDF over `i || 00 00 00 || kt || 00 || KDD`
    /// (the layout GlobalPlatformPro documents as KDF3).
    Kdf3,
}

impl fmt::Display for Diversification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Diversification::None => "none",
            Diversification::EmvCps11 => "EMV CPS 1.1",
            Diversification::Visa2 => "VISA2",
            Diversification::Kdf3 => "KDF3",
        })
    }
}

/// Key usage constants of the derivation data (kt): 01 ENC, 02 MAC, 03 DEK.
const KT: [u8; 3] = [0x01, 0x02, 0x03];

fn emv_block(kdd: &[u8; 10], kt: u8) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&kdd[4..10]);
    b[6] = 0xF0;
    b[7] = kt;
    b[8..14].copy_from_slice(&kdd[4..10]);
    b[14] = 0x0F;
    b[15] = kt;
    b
}

fn visa2_block(kdd: &[u8; 10], kt: u8) -> [u8; 16] {
    let mut b = [0u8; 16];
    for half in [0usize, 8] {
        b[half..half + 2].copy_from_slice(&kdd[0..2]);
        b[half + 2..half + 6].copy_from_slice(&kdd[4..8]);
    }
    b[6] = 0xF0;
    b[7] = kt;
    b[14] = 0x0F;
    b[15] = kt;
    b
}

fn des_derive(master: &[u8], block: &mut [u8; 16]) -> Result<(), Error> {
    let c = Des3Cipher::new(master)?;
    let (a, b) = block.split_at_mut(8);
    let mut l = [0u8; 8];
    l.copy_from_slice(a);
    c.encrypt_block(&mut l);
    a.copy_from_slice(&l);
    l.copy_from_slice(b);
    c.encrypt_block(&mut l);
    b.copy_from_slice(&l);
    l.zeroize();
    Ok(())
}

fn kdf3_derive(master: &[u8], kt: u8, kdd: &[u8; 10], out: &mut [u8]) -> Result<(), Error> {
    let c = AesCipher::new(master)?;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let counter = u8::try_from(i + 1).map_err(|_| Error::KeyLength)?;
        let mut input = [0u8; 16];
        input[0] = counter;
        input[4] = kt;
        input[6..16].copy_from_slice(kdd);
        let mut block = c.cmac(&[&input]);
        chunk.copy_from_slice(block.get(..chunk.len()).unwrap_or(&[]));
        block.zeroize();
    }
    Ok(())
}

/// Diversify the three keys of `master` with `method` and the card's KDD. The result keeps
/// the master's key version and type.
///
/// # Errors
/// [`Error::KeyType`] when the method does not fit the key type (EMV and VISA2 need DES,
/// KDF3 needs AES).
pub fn diversify(
    master: &KeySet,
    method: Diversification,
    kdd: &[u8; 10],
) -> Result<KeySet, Error> {
    let masters = [master.enc(), master.mac(), master.dek()];
    match (method, master.key_type()) {
        (Diversification::None, _) => Ok(master.clone()),
        (Diversification::EmvCps11 | Diversification::Visa2, KeyType::Des) => {
            let mut keys = [[0u8; 16]; 3];
            for ((out, m), kt) in keys.iter_mut().zip(masters).zip(KT) {
                *out = if method == Diversification::EmvCps11 {
                    emv_block(kdd, kt)
                } else {
                    visa2_block(kdd, kt)
                };
                des_derive(m.as_bytes(), out)?;
            }
            let set = KeySet::new(master.version(), KeyType::Des, &keys[0], &keys[1], &keys[2]);
            keys.zeroize();
            set
        }
        (Diversification::Kdf3, KeyType::Aes) => {
            let len = master.key_len();
            let mut keys = [[0u8; 32]; 3];
            for ((out, m), kt) in keys.iter_mut().zip(masters).zip(KT) {
                kdf3_derive(
                    m.as_bytes(),
                    kt,
                    kdd,
                    out.get_mut(..len).ok_or(Error::KeyLength)?,
                )?;
            }
            let set = KeySet::new(
                master.version(),
                KeyType::Aes,
                &keys[0][..len],
                &keys[1][..len],
                &keys[2][..len],
            );
            keys.zeroize();
            set
        }
        _ => Err(Error::KeyType(
            "diversification method does not fit the key type",
        )),
    }
}
