//! SCP03 host (off-card entity) side: a typed state machine.
//!
//! [`Scp03Host`] → `initialize_update()` → [`Scp03Host::process_initialize_update`] →
//! [`Scp03HostPending`] (holds the EXTERNAL AUTHENTICATE command) →
//! [`Scp03HostPending::process_external_authenticate`] → [`Scp03HostSession`].

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, LengthForm, Response, ResponseView, StatusWord};
use subtle::ConstantTimeEq;

use super::{
    INS_EXTERNAL_AUTHENTICATE, INS_INITIALIZE_UPDATE, InitUpdateResponse, SCP03, derive,
    parse_initialize_update_response,
};
use crate::Error;
use crate::apdu::PlainRef;
use crate::diversify::{Diversification, diversify};
use crate::error::AuthFailure;
use crate::keys::{KeySet, SecretKey};
use crate::level::SecurityLevel;
use crate::sm::AesMessaging;

/// What the host asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scp03HostConfig {
    /// Key version to ask for in INITIALIZE UPDATE P1 (`00` = the card's default).
    pub key_version: u8,
    /// Security level for EXTERNAL AUTHENTICATE P1.
    pub level: SecurityLevel,
    /// Use S16 mode (16-byte host challenge).
    pub s16: bool,
    /// How the card's static keys derive from the keys the host holds.
    pub diversification: Diversification,
}

impl Default for Scp03HostConfig {
    fn default() -> Self {
        Self {
            key_version: 0,
            level: SecurityLevel::ALL,
            s16: false,
            diversification: Diversification::None,
        }
    }
}

/// The host before INITIALIZE UPDATE.
pub struct Scp03Host {
    keys: KeySet,
    config: Scp03HostConfig,
    host_challenge: [u8; 16],
}

impl fmt::Debug for Scp03Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp03Host")
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scp03Host {
    /// A host with its (master) keys, configuration and host challenge (8 bytes, or 16 in
    /// S16 mode; the caller draws it from its random source).
    ///
    /// # Errors
    /// [`Error::Malformed`] when the challenge length does not fit the mode,
    /// [`Error::SecurityLevel`] for a level SCP03 does not define.
    pub fn new(
        keys: KeySet,
        config: Scp03HostConfig,
        host_challenge: &[u8],
    ) -> Result<Self, Error> {
        let n = if config.s16 { 16 } else { 8 };
        if host_challenge.len() != n {
            return Err(Error::Malformed("host challenge length"));
        }
        SecurityLevel::scp03(config.level.to_byte())?;
        let mut hc = [0u8; 16];
        hc[..n].copy_from_slice(host_challenge);
        Ok(Self {
            keys,
            config,
            host_challenge: hc,
        })
    }

    /// Draw the host challenge from `rng`.
    ///
    /// # Errors
    /// As [`Scp03Host::new`].
    pub fn with_rng(
        keys: KeySet,
        config: Scp03HostConfig,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, Error> {
        let mut hc = [0u8; 16];
        let n = if config.s16 { 16 } else { 8 };
        rng.fill_bytes(&mut hc[..n]);
        Self::new(keys, config, &hc[..n])
    }

    fn challenge(&self) -> &[u8] {
        self.host_challenge
            .get(..if self.config.s16 { 16 } else { 8 })
            .unwrap_or(&[])
    }

    /// The INITIALIZE UPDATE command: `80 50 kvn 00 Lc host-challenge 00` (GPC 2.3 §11.11.2).
    #[must_use]
    pub fn initialize_update(&self) -> Command {
        Command::new(0x80, INS_INITIALIZE_UPDATE, self.config.key_version, 0x00)
            .with_data(self.challenge().to_vec())
            .with_le(256)
    }

    /// Check the card's answer to INITIALIZE UPDATE: derive the session keys, verify the card
    /// cryptogram (constant time) and build EXTERNAL AUTHENTICATE.
    ///
    /// # Errors
    /// [`Error::Status`] for a non-9000 answer, [`Error::Malformed`]/[`Error::ProtocolMismatch`]
    /// for a response that is not SCP03 or does not fit the mode, [`Error::CardCryptogram`]
    /// (with the key version, KCVs and diversification tried) when the cryptogram is wrong.
    pub fn process_initialize_update(
        self,
        response: &ResponseView<'_>,
    ) -> Result<Scp03HostPending, Error> {
        if response.status() != StatusWord::SUCCESS {
            return Err(Error::Status(response.status()));
        }
        let parsed = parse_initialize_update_response(response.data())?;
        self.check_identity(&parsed)?;
        let keys = diversify(&self.keys, self.config.diversification, &parsed.kdd)?;
        let n = parsed.option.block_len();
        let mut context = Vec::with_capacity(32);
        context.extend_from_slice(self.challenge());
        context.extend_from_slice(parsed.card_challenge());
        let derived = derive(&keys, &context, n)?;
        let ok: bool = derived
            .card_cryptogram
            .get(..n)
            .unwrap_or(&[])
            .ct_eq(parsed.card_cryptogram())
            .into();
        if !ok {
            return Err(Error::CardCryptogram(AuthFailure {
                scp: SCP03,
                key_version: parsed.key_version,
                requested_key_version: self.config.key_version,
                kcvs: keys.kcvs(),
                diversification: self.config.diversification,
                kdd: parsed.kdd,
            }));
        }
        if !parsed.option.allows(self.config.level) {
            return Err(Error::SecurityLevel(self.config.level.to_byte()));
        }
        let host_cryptogram = derived.host_cryptogram;
        let mut messaging = derived.into_messaging(self.config.level, n);
        let header = [
            0x84,
            INS_EXTERNAL_AUTHENTICATE,
            self.config.level.to_byte(),
            0x00,
        ];
        let body = host_cryptogram.get(..n).unwrap_or(&[]);
        let mac = messaging.mac_first(header, body, false);
        let mut data = Vec::with_capacity(2 * n);
        data.extend_from_slice(body);
        data.extend_from_slice(mac.get(..n).unwrap_or(&[]));
        let command = Command {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data,
            le: None,
            form: LengthForm::Short,
        };
        Ok(Scp03HostPending {
            messaging,
            command,
            dek: keys.dek().clone(),
            card: parsed,
        })
    }

    fn check_identity(&self, parsed: &InitUpdateResponse) -> Result<(), Error> {
        let kv = self.config.key_version;
        if parsed.option.s16() != self.config.s16 {
            return Err(Error::ProtocolMismatch {
                scp: parsed.scp,
                key_version: parsed.key_version,
                expected_scp: SCP03,
                expected_key_version: kv,
            });
        }
        Ok(())
    }
}

/// The host after a verified card cryptogram, waiting for the answer to EXTERNAL AUTHENTICATE.
pub struct Scp03HostPending {
    messaging: AesMessaging,
    command: Command,
    dek: SecretKey,
    card: InitUpdateResponse,
}

impl fmt::Debug for Scp03HostPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp03HostPending")
            .field("card", &self.card)
            .finish_non_exhaustive()
    }
}

impl Scp03HostPending {
    /// The EXTERNAL AUTHENTICATE command to send.
    #[must_use]
    pub fn external_authenticate(&self) -> &Command {
        &self.command
    }

    /// What the card said in INITIALIZE UPDATE.
    #[must_use]
    pub fn card_info(&self) -> &InitUpdateResponse {
        &self.card
    }

    /// Accept the card's answer to EXTERNAL AUTHENTICATE.
    ///
    /// # Errors
    /// [`Error::Status`] when the card did not answer 9000 (6300: it rejected the host
    /// cryptogram).
    pub fn process_external_authenticate(
        self,
        response: &ResponseView<'_>,
    ) -> Result<Scp03HostSession, Error> {
        if response.status() != StatusWord::SUCCESS {
            return Err(Error::Status(response.status()));
        }
        Ok(Scp03HostSession {
            messaging: self.messaging,
            dek: self.dek,
            card: self.card,
        })
    }
}

/// An open SCP03 session on the host side.
pub struct Scp03HostSession {
    messaging: AesMessaging,
    dek: SecretKey,
    card: InitUpdateResponse,
}

impl fmt::Debug for Scp03HostSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp03HostSession")
            .field("messaging", &self.messaging)
            .finish_non_exhaustive()
    }
}

impl Scp03HostSession {
    /// The session's security level.
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.messaging.level()
    }

    /// The key that encrypts PUT KEY data in SCP03: the static DEK.
    #[must_use]
    pub fn dek(&self) -> &SecretKey {
        &self.dek
    }

    /// What the card said in INITIALIZE UPDATE.
    #[must_use]
    pub fn card_info(&self) -> &InitUpdateResponse {
        &self.card
    }

    /// Protect a command (C-MAC, and C-DECRYPTION at levels 03/13/33).
    ///
    /// # Errors
    /// [`Error::TooLong`] when the wrapped data exceeds 65535 bytes (or 255 with
    /// [`LengthForm::Short`]); [`Error::CounterExhausted`].
    pub fn wrap(&mut self, command: &Command) -> Result<Command, Error> {
        self.messaging.wrap(PlainRef::from(command))
    }

    /// As [`Scp03HostSession::wrap`], from a borrowed command.
    ///
    /// # Errors
    /// As [`Scp03HostSession::wrap`].
    pub fn wrap_view(&mut self, command: &CommandView<'_>) -> Result<Command, Error> {
        self.messaging.wrap(PlainRef::from(command))
    }

    /// Verify and decrypt a response (R-MAC, R-ENCRYPTION).
    ///
    /// # Errors
    /// [`Error::ResponseMac`] for a wrong or missing R-MAC, [`Error::Padding`] for bad
    /// decrypted padding.
    pub fn unwrap(&mut self, response: &ResponseView<'_>) -> Result<Response, Error> {
        self.messaging.unwrap_response(response)
    }
}
