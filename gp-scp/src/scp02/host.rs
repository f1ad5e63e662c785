//! SCP02 host (off-card entity) side: [`Scp02Host`] → [`Scp02HostPending`] →
//! [`Scp02HostSession`].

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, LengthForm, Response, ResponseView, StatusWord};
use subtle::ConstantTimeEq;

use super::{
    InitUpdateResponse, SCP02, Scp02Messaging, Scp02Option, derive,
    parse_initialize_update_response,
};
use crate::Error;
use crate::apdu::PlainRef;
use crate::diversify::{Diversification, diversify};
use crate::error::AuthFailure;
use crate::keys::{KeySet, SecretKey};
use crate::level::SecurityLevel;
use crate::scp03::{INS_EXTERNAL_AUTHENTICATE, INS_INITIALIZE_UPDATE};

/// What the host asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scp02HostConfig {
    /// Key version for INITIALIZE UPDATE P1 (`00` = the card's default).
    pub key_version: u8,
    /// Security level for EXTERNAL AUTHENTICATE P1 (00, 01, 03, 11, 13).
    pub level: SecurityLevel,
    /// The `i` parameter the host expects (the SCP02 response does not carry it).
    pub option: Scp02Option,
    /// How the card's static keys derive from the keys the host holds.
    pub diversification: Diversification,
}

impl Default for Scp02HostConfig {
    fn default() -> Self {
        Self {
            key_version: 0,
            level: SecurityLevel::C_DEC_C_MAC,
            option: Scp02Option::I55,
            diversification: Diversification::None,
        }
    }
}

/// The host before INITIALIZE UPDATE.
pub struct Scp02Host {
    keys: KeySet,
    config: Scp02HostConfig,
    host_challenge: [u8; 8],
}

impl fmt::Debug for Scp02Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp02Host")
            .field("keys", &self.keys)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scp02Host {
    /// A host with its (master) keys, configuration and 8-byte host challenge.
    ///
    /// # Errors
    /// [`Error::SecurityLevel`] for a level SCP02 does not define.
    pub fn new(
        keys: KeySet,
        config: Scp02HostConfig,
        host_challenge: [u8; 8],
    ) -> Result<Self, Error> {
        SecurityLevel::scp02(config.level.to_byte())?;
        Ok(Self {
            keys,
            config,
            host_challenge,
        })
    }

    /// Draw the host challenge from `rng`.
    ///
    /// # Errors
    /// As [`Scp02Host::new`].
    pub fn with_rng(
        keys: KeySet,
        config: Scp02HostConfig,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, Error> {
        let mut hc = [0u8; 8];
        rng.fill_bytes(&mut hc);
        Self::new(keys, config, hc)
    }

    /// The INITIALIZE UPDATE command `80 50 kvn 00 08 host-challenge 00`.
    #[must_use]
    pub fn initialize_update(&self) -> Command {
        Command::new(0x80, INS_INITIALIZE_UPDATE, self.config.key_version, 0x00)
            .with_data(self.host_challenge.to_vec())
            .with_le(256)
    }

    /// Check the card's answer to INITIALIZE UPDATE and build EXTERNAL AUTHENTICATE.
    ///
    /// # Errors
    /// [`Error::Status`], [`Error::Malformed`], [`Error::ProtocolMismatch`], or
    /// [`Error::CardCryptogram`] carrying the key version, KCVs and diversification tried.
    pub fn process_initialize_update(
        self,
        response: &ResponseView<'_>,
    ) -> Result<Scp02HostPending, Error> {
        if response.status() != StatusWord::SUCCESS {
            return Err(Error::Status(response.status()));
        }
        let parsed = parse_initialize_update_response(response.data())?;
        let kv = self.config.key_version;
        // A card may answer with another key version than asked for (seen in the wild);
        // the cryptogram check decides, and its error names both versions.
        let keys = diversify(&self.keys, self.config.diversification, &parsed.kdd)?;
        let derived = derive(&keys, parsed.sequence_counter)?;
        let expected = derived.card_cryptogram(
            &self.host_challenge,
            parsed.sequence_counter,
            &parsed.card_challenge,
        );
        if !bool::from(expected.ct_eq(&parsed.card_cryptogram)) {
            return Err(Error::CardCryptogram(AuthFailure {
                scp: SCP02,
                key_version: parsed.key_version,
                requested_key_version: kv,
                kcvs: keys.kcvs(),
                diversification: self.config.diversification,
                kdd: parsed.kdd,
            }));
        }
        let host_cryptogram = derived.host_cryptogram(
            &self.host_challenge,
            parsed.sequence_counter,
            &parsed.card_challenge,
        );
        let mut messaging = derived.into_messaging(self.config.option);
        let header = [
            0x84,
            INS_EXTERNAL_AUTHENTICATE,
            self.config.level.to_byte(),
            0x00,
        ];
        let mac = messaging.mac_first(header, &host_cryptogram, false);
        let mut data = Vec::with_capacity(16);
        data.extend_from_slice(&host_cryptogram);
        data.extend_from_slice(&mac);
        let command = Command {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data,
            le: None,
            form: LengthForm::Short,
        };
        Ok(Scp02HostPending {
            messaging,
            command,
            level: self.config.level,
            card: parsed,
        })
    }
}

/// The host waiting for the answer to EXTERNAL AUTHENTICATE.
pub struct Scp02HostPending {
    messaging: Scp02Messaging,
    command: Command,
    level: SecurityLevel,
    card: InitUpdateResponse,
}

impl fmt::Debug for Scp02HostPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp02HostPending")
            .field("card", &self.card)
            .finish_non_exhaustive()
    }
}

impl Scp02HostPending {
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

    /// Accept the answer to EXTERNAL AUTHENTICATE.
    ///
    /// # Errors
    /// [`Error::Status`] when it is not 9000.
    pub fn process_external_authenticate(
        mut self,
        response: &ResponseView<'_>,
    ) -> Result<Scp02HostSession, Error> {
        if response.status() != StatusWord::SUCCESS {
            return Err(Error::Status(response.status()));
        }
        self.messaging.set_level(self.level);
        Ok(Scp02HostSession {
            messaging: self.messaging,
            card: self.card,
        })
    }
}

/// An open SCP02 session on the host side.
pub struct Scp02HostSession {
    messaging: Scp02Messaging,
    card: InitUpdateResponse,
}

impl fmt::Debug for Scp02HostSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp02HostSession")
            .field("messaging", &self.messaging)
            .finish_non_exhaustive()
    }
}

impl Scp02HostSession {
    /// The security level.
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.messaging.level()
    }

    /// The DEK session key that encrypts PUT KEY data.
    #[must_use]
    pub fn dek(&self) -> &SecretKey {
        self.messaging.dek()
    }

    /// What the card said in INITIALIZE UPDATE.
    #[must_use]
    pub fn card_info(&self) -> &InitUpdateResponse {
        &self.card
    }

    /// Protect a command.
    ///
    /// # Errors
    /// [`Error::TooLong`] when the wrapped data does not fit.
    pub fn wrap(&mut self, command: &Command) -> Result<Command, Error> {
        self.messaging.wrap(PlainRef::from(command))
    }

    /// As [`Scp02HostSession::wrap`], from a borrowed command.
    ///
    /// # Errors
    /// As [`Scp02HostSession::wrap`].
    pub fn wrap_view(&mut self, command: &CommandView<'_>) -> Result<Command, Error> {
        self.messaging.wrap(PlainRef::from(command))
    }

    /// Verify a response (R-MAC at levels 11/13).
    ///
    /// # Errors
    /// [`Error::ResponseMac`].
    pub fn unwrap(&mut self, response: &ResponseView<'_>) -> Result<Response, Error> {
        self.messaging.unwrap_response(response)
    }
}
