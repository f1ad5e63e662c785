//! GlobalPlatform SCP03 (Card Specification 2.3 Amendment D): AES session keys from the
//! SP 800-108 KDF, 8-byte (S8) or 16-byte (S16) cryptograms and MACs, all security levels.
//!
//! - [`host`]: the off-card entity's side (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, wrap,
//!   unwrap);
//! - [`card`]: the security domain's side (answers INITIALIZE UPDATE, checks EXTERNAL
//!   AUTHENTICATE, unwraps commands, wraps responses).
//!
//! Secure messaging itself is shared with SCP11 in [`crate::sm`].

pub mod card;
pub mod host;

use zeroize::Zeroize;

use crate::Error;
use crate::crypto::AesCipher;
use crate::crypto::kdf::{
    DERIVE_CARD_CHALLENGE, DERIVE_CARD_CRYPTOGRAM, DERIVE_HOST_CRYPTOGRAM, DERIVE_S_ENC,
    DERIVE_S_MAC, DERIVE_S_RMAC, sp800_108,
};
use crate::keys::{KeySet, KeyType};
use crate::level::SecurityLevel;
use crate::sm::AesMessaging;

/// The SCP identifier of SCP03 (Amd D §7.1.1.1).
pub const SCP03: u8 = 0x03;

/// `i` bit: S16 mode, 16-byte challenges, cryptograms and MACs (Amd D §5.1, b1).
pub const I_S16: u8 = 0x01;
/// `i` bit: pseudo-random card challenge (b5).
pub const I_PSEUDO_RANDOM_CHALLENGE: u8 = 0x10;
/// `i` bit: R-MAC supported (b6).
pub const I_R_MAC: u8 = 0x20;
/// `i` bit: R-ENCRYPTION supported (b7).
pub const I_R_ENC: u8 = 0x40;

/// INITIALIZE UPDATE instruction (GPC 2.3 §11.11).
pub const INS_INITIALIZE_UPDATE: u8 = 0x50;
/// EXTERNAL AUTHENTICATE instruction (GPC 2.3 §11.8).
pub const INS_EXTERNAL_AUTHENTICATE: u8 = 0x82;

/// The SCP03 `i` parameter, checked against what this implementation supports
/// (00/10/30/70 and their S16 variants 01/11/31/71).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scp03Option(u8);

impl Scp03Option {
    /// `i = 70`: pseudo-random challenge, R-MAC and R-ENC, S8 (the common card setting).
    pub const I70: Scp03Option = Scp03Option(0x70);

    /// Check an `i` byte.
    ///
    /// # Errors
    /// [`Error::ImplementationOption`] for reserved bits or R-ENC without R-MAC.
    pub const fn new(i: u8) -> Result<Self, Error> {
        let known = I_S16 | I_PSEUDO_RANDOM_CHALLENGE | I_R_MAC | I_R_ENC;
        if i & !known != 0 || (i & I_R_ENC != 0 && i & I_R_MAC == 0) {
            return Err(Error::ImplementationOption(i));
        }
        Ok(Self(i))
    }

    /// The `i` byte.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// S16 mode.
    #[must_use]
    pub const fn s16(self) -> bool {
        self.0 & I_S16 != 0
    }

    /// Pseudo-random card challenge.
    #[must_use]
    pub const fn pseudo_random(self) -> bool {
        self.0 & I_PSEUDO_RANDOM_CHALLENGE != 0
    }

    /// Challenge, cryptogram and MAC length in bytes.
    #[must_use]
    pub const fn block_len(self) -> usize {
        if self.s16() { 16 } else { 8 }
    }

    /// Whether `level` is allowed with this option (R-MAC and R-ENC need their `i` bits).
    #[must_use]
    pub const fn allows(self, level: SecurityLevel) -> bool {
        (!level.r_mac() || self.0 & I_R_MAC != 0)
            && (!level.r_encryption() || self.0 & I_R_ENC != 0)
    }
}

/// The INITIALIZE UPDATE response of an SCP03 card (GPC 2.3 Amd D §7.1.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitUpdateResponse {
    /// Key diversification data.
    pub kdd: [u8; 10],
    /// Key version number of the key set the card used.
    pub key_version: u8,
    /// SCP identifier (03).
    pub scp: u8,
    /// Implementation option `i`.
    pub option: Scp03Option,
    /// Card challenge (8 or 16 bytes).
    pub card_challenge: [u8; 16],
    /// Card cryptogram (8 or 16 bytes).
    pub card_cryptogram: [u8; 16],
    /// Sequence counter (present when `i` has the pseudo-random bit).
    pub sequence_counter: Option<[u8; 3]>,
}

impl InitUpdateResponse {
    /// The meaningful part of the card challenge.
    #[must_use]
    pub fn card_challenge(&self) -> &[u8] {
        self.card_challenge
            .get(..self.option.block_len())
            .unwrap_or(&[])
    }

    /// The meaningful part of the card cryptogram.
    #[must_use]
    pub fn card_cryptogram(&self) -> &[u8] {
        self.card_cryptogram
            .get(..self.option.block_len())
            .unwrap_or(&[])
    }

    /// Encode as the card sends it (without status word).
    #[must_use]
    pub fn to_vec(&self) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::with_capacity(48);
        v.extend_from_slice(&self.kdd);
        v.extend_from_slice(&[self.key_version, self.scp, self.option.to_byte()]);
        v.extend_from_slice(self.card_challenge());
        v.extend_from_slice(self.card_cryptogram());
        if let Some(c) = self.sequence_counter {
            v.extend_from_slice(&c);
        }
        v
    }
}

/// Parse the data of an SCP03 INITIALIZE UPDATE response: `KDD(10) | kvn | 03 | i |
/// card challenge (8/16) | card cryptogram (8/16) | [sequence counter (3)]`.
///
/// # Errors
/// [`Error::Malformed`] for a length that does not fit the `i` parameter,
/// [`Error::ImplementationOption`] for an unknown `i`, [`Error::ProtocolMismatch`] when the
/// SCP identifier is not 03.
pub fn parse_initialize_update_response(data: &[u8]) -> Result<InitUpdateResponse, Error> {
    let head = data
        .get(..13)
        .ok_or(Error::Malformed("INITIALIZE UPDATE response (too short)"))?;
    let mut kdd = [0u8; 10];
    kdd.copy_from_slice(&head[..10]);
    let (key_version, scp, i) = (head[10], head[11], head[12]);
    if scp != SCP03 {
        return Err(Error::ProtocolMismatch {
            scp,
            key_version,
            expected_scp: SCP03,
            expected_key_version: key_version,
        });
    }
    let option = Scp03Option::new(i)?;
    let n = option.block_len();
    let counter_len = if option.pseudo_random() { 3 } else { 0 };
    if data.len() != 13 + 2 * n + counter_len {
        return Err(Error::Malformed(
            "INITIALIZE UPDATE response (length does not fit i)",
        ));
    }
    let mut card_challenge = [0u8; 16];
    let mut card_cryptogram = [0u8; 16];
    card_challenge[..n].copy_from_slice(&data[13..13 + n]);
    card_cryptogram[..n].copy_from_slice(&data[13 + n..13 + 2 * n]);
    let sequence_counter = data
        .get(13 + 2 * n..)
        .and_then(|c| <[u8; 3]>::try_from(c).ok());
    Ok(InitUpdateResponse {
        kdd,
        key_version,
        scp,
        option,
        card_challenge,
        card_cryptogram,
        sequence_counter,
    })
}

/// Session keys and cryptograms of one SCP03 session.
pub(crate) struct Derived {
    pub(crate) s_enc: AesCipher,
    pub(crate) s_mac: AesCipher,
    pub(crate) s_rmac: AesCipher,
    pub(crate) card_cryptogram: [u8; 16],
    pub(crate) host_cryptogram: [u8; 16],
}

/// Derive S-ENC, S-MAC, S-RMAC and both cryptograms (Amd D §6.2.1-§6.2.2.3) from the static
/// keys and `host challenge || card challenge`.
pub(crate) fn derive(keys: &KeySet, context: &[u8], crypto_len: usize) -> Result<Derived, Error> {
    if keys.key_type() != KeyType::Aes {
        return Err(Error::KeyType("SCP03 needs AES keys"));
    }
    let len = keys.key_len();
    let static_enc = AesCipher::new(keys.enc().as_bytes())?;
    let static_mac = AesCipher::new(keys.mac().as_bytes())?;
    let mut buf = [0u8; 32];
    let out = buf.get_mut(..len).ok_or(Error::KeyLength)?;
    sp800_108(&static_enc, DERIVE_S_ENC, context, out)?;
    let s_enc = AesCipher::new(out)?;
    sp800_108(&static_mac, DERIVE_S_MAC, context, out)?;
    let s_mac = AesCipher::new(out)?;
    sp800_108(&static_mac, DERIVE_S_RMAC, context, out)?;
    let s_rmac = AesCipher::new(out)?;
    buf.zeroize();
    let mut card_cryptogram = [0u8; 16];
    let mut host_cryptogram = [0u8; 16];
    let n = crypto_len.min(16);
    sp800_108(
        &s_mac,
        DERIVE_CARD_CRYPTOGRAM,
        context,
        &mut card_cryptogram[..n],
    )?;
    sp800_108(
        &s_mac,
        DERIVE_HOST_CRYPTOGRAM,
        context,
        &mut host_cryptogram[..n],
    )?;
    Ok(Derived {
        s_enc,
        s_mac,
        s_rmac,
        card_cryptogram,
        host_cryptogram,
    })
}

impl Derived {
    pub(crate) fn into_messaging(self, level: SecurityLevel, mac_len: usize) -> AesMessaging {
        AesMessaging::new(self.s_enc, self.s_mac, self.s_rmac, [0; 16], level, mac_len)
    }
}

/// The pseudo-random card challenge (Amd D §6.2.2.1): KDF(static ENC, 02,
/// sequence counter (3) || SD AID), 8 or 16 bytes into `out`.
///
/// # Errors
/// [`Error::KeyLength`] when the key is not an AES key.
pub fn pseudo_random_challenge(
    static_enc: &[u8],
    counter: [u8; 3],
    sd_aid: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let c = AesCipher::new(static_enc)?;
    let mut context = alloc::vec::Vec::with_capacity(3 + sd_aid.len());
    context.extend_from_slice(&counter);
    context.extend_from_slice(sd_aid);
    sp800_108(&c, DERIVE_CARD_CHALLENGE, &context, out)
}

/// Derive the session keys and cryptograms for the test vectors and tools that want to show
/// them: returns `(S-ENC, S-MAC, S-RMAC, card cryptogram, host cryptogram)` as raw bytes.
///
/// # Errors
/// As the KDF: [`Error::KeyType`]/[`Error::KeyLength`] for unusable keys.
#[doc(hidden)]
pub fn derive_raw(
    keys: &KeySet,
    context: &[u8],
    crypto_len: usize,
) -> Result<[alloc::vec::Vec<u8>; 5], Error> {
    let len = keys.key_len();
    let static_enc = AesCipher::new(keys.enc().as_bytes())?;
    let static_mac = AesCipher::new(keys.mac().as_bytes())?;
    let mut enc = alloc::vec![0u8; len];
    let mut mac = alloc::vec![0u8; len];
    let mut rmac = alloc::vec![0u8; len];
    sp800_108(&static_enc, DERIVE_S_ENC, context, &mut enc)?;
    sp800_108(&static_mac, DERIVE_S_MAC, context, &mut mac)?;
    sp800_108(&static_mac, DERIVE_S_RMAC, context, &mut rmac)?;
    let d = derive(keys, context, crypto_len)?;
    let n = crypto_len.min(16);
    Ok([
        enc,
        mac,
        rmac,
        d.card_cryptogram[..n].to_vec(),
        d.host_cryptogram[..n].to_vec(),
    ])
}
