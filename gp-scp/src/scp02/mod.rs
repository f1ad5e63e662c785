//! GlobalPlatform SCP02 (Card Specification 2.3 Appendix E): two-key 3DES session keys from
//! the sequence counter, full-3DES cryptograms, retail-MAC C-MAC with ICV chaining (and ICV
//! encryption for i = 15/55), C-DECRYPTION, R-MAC and the session DEK for PUT KEY.
//!
//! Supported `i`: 05, 15, 45, 55 and their R-MAC variants (25, 35, 65, 75): three secure
//! channel keys, explicit initiation, C-MAC on the modified APDU. [`host`] and [`card`]
//! hold the two sides; the messaging both share lives here.

pub mod card;
pub mod host;

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, Response, ResponseView, StatusWord};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::Error;
use crate::apdu::{
    PlainRef, push_lc, sm_cla, unwrapped_command, wrapped_command, wrapped_is_extended,
};
use crate::crypto::Des3Cipher;
use crate::crypto::pad::{pad_method2, unpadded_len_method2};
use crate::keys::{KeySet, KeyType, SecretKey};
use crate::level::SecurityLevel;

/// The SCP identifier of SCP02 (GPC 2.3 §E.1).
pub const SCP02: u8 = 0x02;

/// `i` bit: three secure channel keys (GPC 2.3 §E.1.1, b1).
pub const I_THREE_KEYS: u8 = 0x01;
/// `i` bit: C-MAC on the unmodified APDU (b2; not supported).
pub const I_CMAC_UNMODIFIED: u8 = 0x02;
/// `i` bit: explicit initiation (b3).
pub const I_EXPLICIT: u8 = 0x04;
/// `i` bit: ICV = MAC over AID (b4; not supported).
pub const I_ICV_AID: u8 = 0x08;
/// `i` bit: ICV encryption for C-MAC session (b5).
pub const I_ICV_ENCRYPTION: u8 = 0x10;
/// `i` bit: R-MAC supported (b6).
pub const I_R_MAC: u8 = 0x20;
/// `i` bit: well-known pseudo-random card challenge (b7).
pub const I_PSEUDO_RANDOM: u8 = 0x40;

/// Session key derivation constants (GPC 2.3 §E.4.1).
pub const DERIVE_C_MAC: [u8; 2] = [0x01, 0x01];
/// R-MAC session key constant.
pub const DERIVE_R_MAC: [u8; 2] = [0x01, 0x02];
/// DEK session key constant.
pub const DERIVE_DEK: [u8; 2] = [0x01, 0x81];
/// S-ENC session key constant.
pub const DERIVE_S_ENC: [u8; 2] = [0x01, 0x82];

/// The SCP02 `i` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scp02Option(u8);

impl Scp02Option {
    /// `i = 15`.
    pub const I15: Scp02Option = Scp02Option(0x15);
    /// `i = 55`.
    pub const I55: Scp02Option = Scp02Option(0x55);

    /// Check an `i` byte.
    ///
    /// # Errors
    /// [`Error::ImplementationOption`] for the one-key, implicit, unmodified-APDU and
    /// AID-ICV variants.
    pub const fn new(i: u8) -> Result<Self, Error> {
        if i & !(I_ICV_ENCRYPTION | I_R_MAC | I_PSEUDO_RANDOM) != (I_THREE_KEYS | I_EXPLICIT) {
            return Err(Error::ImplementationOption(i));
        }
        Ok(Self(i))
    }

    /// The `i` byte.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// ICV encryption.
    #[must_use]
    pub const fn icv_encryption(self) -> bool {
        self.0 & I_ICV_ENCRYPTION != 0
    }

    /// Pseudo-random card challenge.
    #[must_use]
    pub const fn pseudo_random(self) -> bool {
        self.0 & I_PSEUDO_RANDOM != 0
    }
}

/// The INITIALIZE UPDATE response of an SCP02 card (GPC 2.3 §E.5.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitUpdateResponse {
    /// Key diversification data.
    pub kdd: [u8; 10],
    /// Key version number.
    pub key_version: u8,
    /// SCP identifier (02).
    pub scp: u8,
    /// Sequence counter.
    pub sequence_counter: [u8; 2],
    /// Card challenge.
    pub card_challenge: [u8; 6],
    /// Card cryptogram.
    pub card_cryptogram: [u8; 8],
}

impl InitUpdateResponse {
    /// Encode as the card sends it (without status word).
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(28);
        v.extend_from_slice(&self.kdd);
        v.extend_from_slice(&[self.key_version, self.scp]);
        v.extend_from_slice(&self.sequence_counter);
        v.extend_from_slice(&self.card_challenge);
        v.extend_from_slice(&self.card_cryptogram);
        v
    }
}

/// Parse the data of an SCP02 INITIALIZE UPDATE response: `KDD(10) | kvn | 02 | counter(2) |
/// card challenge(6) | card cryptogram(8)`.
///
/// # Errors
/// [`Error::Malformed`] when it is not 28 bytes, [`Error::ProtocolMismatch`] when the SCP
/// identifier is not 02.
pub fn parse_initialize_update_response(data: &[u8]) -> Result<InitUpdateResponse, Error> {
    let d: &[u8; 28] = data
        .try_into()
        .map_err(|_| Error::Malformed("SCP02 INITIALIZE UPDATE response length"))?;
    let mut r = InitUpdateResponse {
        kdd: [0; 10],
        key_version: d[10],
        scp: d[11],
        sequence_counter: [d[12], d[13]],
        card_challenge: [0; 6],
        card_cryptogram: [0; 8],
    };
    if r.scp != SCP02 {
        return Err(Error::ProtocolMismatch {
            scp: r.scp,
            key_version: r.key_version,
            expected_scp: SCP02,
            expected_key_version: r.key_version,
        });
    }
    r.kdd.copy_from_slice(&d[..10]);
    r.card_challenge.copy_from_slice(&d[14..20]);
    r.card_cryptogram.copy_from_slice(&d[20..28]);
    Ok(r)
}

/// Derive one SCP02 session key: 3DES-CBC(static key, IV 0, constant || counter || 00*12)
/// (GPC 2.3 §E.4.1).
///
/// # Errors
/// [`Error::KeyLength`] when the static key is not a 16-byte DES key.
pub fn derive_session_key(
    static_key: &[u8],
    constant: [u8; 2],
    counter: [u8; 2],
) -> Result<[u8; 16], Error> {
    let c = Des3Cipher::new(static_key)?;
    let mut block = [0u8; 16];
    block[..2].copy_from_slice(&constant);
    block[2..4].copy_from_slice(&counter);
    c.cbc_encrypt(&[0; 8], &mut block);
    Ok(block)
}

/// The four session key schedules and the cryptograms of one SCP02 session.
pub(crate) struct Derived {
    pub(crate) s_enc: Des3Cipher,
    pub(crate) s_mac: Des3Cipher,
    pub(crate) s_rmac: Des3Cipher,
    pub(crate) dek: SecretKey,
}

pub(crate) fn derive(keys: &KeySet, counter: [u8; 2]) -> Result<Derived, Error> {
    if keys.key_type() != KeyType::Des {
        return Err(Error::KeyType("SCP02 needs DES keys"));
    }
    let mut enc = derive_session_key(keys.enc().as_bytes(), DERIVE_S_ENC, counter)?;
    let mut mac = derive_session_key(keys.mac().as_bytes(), DERIVE_C_MAC, counter)?;
    let mut rmac = derive_session_key(keys.mac().as_bytes(), DERIVE_R_MAC, counter)?;
    let mut dek = derive_session_key(keys.dek().as_bytes(), DERIVE_DEK, counter)?;
    let d = Derived {
        s_enc: Des3Cipher::new(&enc)?,
        s_mac: Des3Cipher::new(&mac)?,
        s_rmac: Des3Cipher::new(&rmac)?,
        dek: SecretKey::new(&dek),
    };
    enc.zeroize();
    mac.zeroize();
    rmac.zeroize();
    dek.zeroize();
    Ok(d)
}

impl Derived {
    /// Card cryptogram: full 3DES MAC under S-ENC over host challenge || counter || card
    /// challenge (GPC 2.3 §E.4.2.1).
    pub(crate) fn card_cryptogram(
        &self,
        host_challenge: &[u8],
        counter: [u8; 2],
        card_challenge: &[u8; 6],
    ) -> [u8; 8] {
        self.s_enc
            .mac_alg1_padded(&[host_challenge, &counter, card_challenge])
    }

    /// Host cryptogram: over counter || card challenge || host challenge (§E.4.2.2).
    pub(crate) fn host_cryptogram(
        &self,
        host_challenge: &[u8],
        counter: [u8; 2],
        card_challenge: &[u8; 6],
    ) -> [u8; 8] {
        self.s_enc
            .mac_alg1_padded(&[&counter, card_challenge, host_challenge])
    }

    /// The pseudo-random card challenge (i bit 40): the first 6 bytes of the C-MAC (retail
    /// MAC under the C-MAC session key, zero ICV) over the security domain AID.
    pub(crate) fn pseudo_random_challenge(&self, sd_aid: &[u8]) -> [u8; 6] {
        let m = self.s_mac.mac_alg3_padded(&[0; 8], &[sd_aid]);
        [m[0], m[1], m[2], m[3], m[4], m[5]]
    }

    pub(crate) fn into_messaging(self, option: Scp02Option) -> Scp02Messaging {
        Scp02Messaging {
            s_enc: self.s_enc,
            s_mac: self.s_mac,
            s_rmac: self.s_rmac,
            dek: self.dek,
            option,
            level: SecurityLevel::NONE,
            last_mac: None,
            rmac_icv: [0; 8],
            rmac_command: Vec::new(),
        }
    }
}

/// Session keys of SCP02 as raw bytes (S-ENC, C-MAC, R-MAC, DEK), for vector tests and tools.
///
/// # Errors
/// [`Error::KeyLength`] when a static key is not 16 bytes.
#[doc(hidden)]
pub fn derive_raw(keys: &KeySet, counter: [u8; 2]) -> Result<[[u8; 16]; 4], Error> {
    Ok([
        derive_session_key(keys.enc().as_bytes(), DERIVE_S_ENC, counter)?,
        derive_session_key(keys.mac().as_bytes(), DERIVE_C_MAC, counter)?,
        derive_session_key(keys.mac().as_bytes(), DERIVE_R_MAC, counter)?,
        derive_session_key(keys.dek().as_bytes(), DERIVE_DEK, counter)?,
    ])
}

/// SCP02 secure messaging state shared by host and card.
pub struct Scp02Messaging {
    s_enc: Des3Cipher,
    s_mac: Des3Cipher,
    s_rmac: Des3Cipher,
    dek: SecretKey,
    option: Scp02Option,
    level: SecurityLevel,
    /// The previous C-MAC (`None` before EXTERNAL AUTHENTICATE: zero ICV).
    last_mac: Option<[u8; 8]>,
    rmac_icv: [u8; 8],
    /// The command part of the next R-MAC input.
    rmac_command: Vec<u8>,
}

impl fmt::Debug for Scp02Messaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp02Messaging")
            .field("option", &self.option)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Drop for Scp02Messaging {
    fn drop(&mut self) {
        self.rmac_icv.zeroize();
        self.rmac_command.zeroize();
        if let Some(m) = self.last_mac.as_mut() {
            m.zeroize();
        }
    }
}

impl Scp02Messaging {
    /// The security level.
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.level
    }

    /// The DEK session key (encrypts PUT KEY key data, GPC 2.3 §E.4.1).
    #[must_use]
    pub fn dek(&self) -> &SecretKey {
        &self.dek
    }

    pub(crate) fn set_level(&mut self, level: SecurityLevel) {
        self.level = level;
    }

    /// The ICV of the next C-MAC (GPC 2.3 §E.4.4): zero for EXTERNAL AUTHENTICATE, then the
    /// previous C-MAC, single-DES encrypted under the left half of S-MAC with ICV encryption.
    fn next_icv(&self) -> [u8; 8] {
        match self.last_mac {
            None => [0; 8],
            Some(mut m) => {
                if self.option.icv_encryption() {
                    self.s_mac.encrypt_block_left(&mut m);
                }
                m
            }
        }
    }

    fn c_mac(&self, header: [u8; 4], plain: &[u8], extended: bool) -> [u8; 8] {
        let mut lc = Vec::with_capacity(3);
        push_lc(&mut lc, plain.len() + 8, extended);
        self.s_mac
            .mac_alg3_padded(&self.next_icv(), &[&header, &lc, plain])
    }

    fn record_rmac_command(&mut self, header: [u8; 4], plain: &[u8]) {
        if !self.level.r_mac() {
            return;
        }
        // R-MAC input, command part (GPC 2.3 §E.4.5): CLA (channel and SM bits cleared) INS
        // P1 P2, then Lc and the plain data when there is data.
        self.rmac_command.clear();
        self.rmac_command.push(header[0] & !0x07);
        self.rmac_command.extend_from_slice(&header[1..]);
        if !plain.is_empty() {
            push_lc(&mut self.rmac_command, plain.len(), plain.len() > 255);
            self.rmac_command.extend_from_slice(plain);
        }
    }

    /// The EXTERNAL AUTHENTICATE C-MAC (zero ICV), which starts the chain.
    pub(crate) fn mac_first(&mut self, header: [u8; 4], body: &[u8], extended: bool) -> [u8; 8] {
        self.last_mac = None;
        let mac = self.c_mac(header, body, extended);
        self.last_mac = Some(mac);
        mac
    }

    /// Host side: protect a command.
    pub(crate) fn wrap(&mut self, cmd: PlainRef<'_>) -> Result<Command, Error> {
        if !self.level.c_mac() {
            return Ok(wrapped_command(
                cmd.header,
                cmd.data.to_vec(),
                cmd.le,
                wrapped_is_extended(cmd.form, cmd.data.len(), cmd.le)?,
            ));
        }
        let encrypt = self.level.c_decryption() && !cmd.data.is_empty();
        let body_len = if encrypt {
            (cmd.data.len() / 8 + 1) * 8
        } else {
            cmd.data.len()
        };
        let extended = wrapped_is_extended(cmd.form, body_len + 8, cmd.le)?;
        let mut header = cmd.header;
        header[0] = sm_cla(header[0]);
        let mac = self.c_mac(header, cmd.data, extended);
        let mut data = Vec::with_capacity(body_len + 8);
        data.extend_from_slice(cmd.data);
        if encrypt {
            pad_method2(&mut data, 8);
            self.s_enc.cbc_encrypt(&[0; 8], &mut data);
        }
        data.extend_from_slice(&mac);
        self.last_mac = Some(mac);
        self.record_rmac_command(cmd.header, cmd.data);
        Ok(wrapped_command(header, data, cmd.le, extended))
    }

    /// Card side: decrypt and verify a command. Nothing changes on error.
    pub(crate) fn unwrap(&mut self, cmd: &CommandView<'_>) -> Result<Command, Error> {
        if !self.level.c_mac() {
            return Ok(unwrapped_command(cmd, cmd.data().to_vec()));
        }
        if !cmd.cla().has_secure_messaging() {
            return Err(Error::SecureMessagingMissing);
        }
        let data = cmd.data();
        let split = data.len().checked_sub(8).ok_or(Error::CommandMac)?;
        let (body, mac) = data.split_at(split);
        let mut plain = body.to_vec();
        if self.level.c_decryption() && !plain.is_empty() {
            if plain.len() % 8 != 0 {
                return Err(Error::Padding);
            }
            self.s_enc.cbc_decrypt(&[0; 8], &mut plain);
            let len = unpadded_len_method2(&plain).ok_or(Error::Padding)?;
            plain.truncate(len);
        }
        let calc = self.c_mac(cmd.header(), &plain, cmd.is_extended());
        if !bool::from(calc.ct_eq(mac)) {
            return Err(Error::CommandMac);
        }
        self.last_mac = Some(calc);
        let out = unwrapped_command(cmd, plain);
        self.record_rmac_command(out.header(), &out.data);
        Ok(out)
    }

    fn r_mac(&self, data: &[u8], sw: StatusWord) -> [u8; 8] {
        let mut la = Vec::with_capacity(3);
        push_lc(&mut la, data.len(), data.len() > 255);
        self.s_rmac.mac_alg3_padded(
            &self.rmac_icv,
            &[&self.rmac_command, &la, data, &sw.to_bytes()],
        )
    }

    /// Card side: append the R-MAC (level 11/13).
    pub(crate) fn wrap_response(&mut self, data: &[u8], sw: StatusWord) -> Response {
        if !self.level.r_mac() {
            return Response::new(data.to_vec(), sw);
        }
        let mac = self.r_mac(data, sw);
        self.rmac_icv = mac;
        let mut out = Vec::with_capacity(data.len() + 8);
        out.extend_from_slice(data);
        out.extend_from_slice(&mac);
        Response::new(out, sw)
    }

    /// Host side: verify and strip the R-MAC.
    pub(crate) fn unwrap_response(&mut self, resp: &ResponseView<'_>) -> Result<Response, Error> {
        if !self.level.r_mac() {
            return Ok(resp.to_response());
        }
        let data = resp.data();
        let split = data.len().checked_sub(8).ok_or(Error::ResponseMac)?;
        let (body, mac) = data.split_at(split);
        let calc = self.r_mac(body, resp.status());
        if !bool::from(calc.ct_eq(mac)) {
            return Err(Error::ResponseMac);
        }
        self.rmac_icv = calc;
        Ok(Response::new(body.to_vec(), resp.status()))
    }
}
