//! SCP02 card (security domain) side.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, Response, StatusWord};
use subtle::ConstantTimeEq;

use super::{InitUpdateResponse, SCP02, Scp02Messaging, Scp02Option, derive};
use crate::Error;
use crate::keys::{KeySet, KeyType};
use crate::level::SecurityLevel;
use crate::scp03::INS_EXTERNAL_AUTHENTICATE;
use crate::scp03::card::{check_initialize_update, select_key_set};

/// How the security domain runs SCP02.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scp02CardConfig {
    /// The `i` parameter.
    pub option: Scp02Option,
    /// The AID of the security domain (input of the pseudo-random card challenge).
    pub sd_aid: Vec<u8>,
}

/// Answer INITIALIZE UPDATE (GPC 2.3 §E.5.1). The card uses `counter` as its sequence
/// counter; the caller persists `counter + 1` afterwards (every answered INITIALIZE UPDATE
/// advances the counter so that no session keys repeat). The card challenge is pseudo-random
/// with `i` bit 40, else drawn from `rng`.
///
/// # Errors
/// [`Error::KeyVersionNotFound`] (6A88), [`Error::Malformed`] (6700),
/// [`Error::CounterExhausted`] at `FFFF`.
pub fn initialize_update(
    cmd: &CommandView<'_>,
    key_sets: &[KeySet],
    config: &Scp02CardConfig,
    counter: u16,
    kdd: [u8; 10],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(Response, Scp02CardPending), Error> {
    check_initialize_update(cmd, 8)?;
    if counter == u16::MAX {
        return Err(Error::CounterExhausted);
    }
    let keys = select_key_set(key_sets, cmd.p1(), KeyType::Des)?;
    let derived = derive(keys, counter.to_be_bytes())?;
    let challenge = if config.option.pseudo_random() {
        derived.pseudo_random_challenge(&config.sd_aid)
    } else {
        let mut c = [0u8; 6];
        rng.fill_bytes(&mut c);
        c
    };
    answer_derived(
        cmd,
        keys,
        config.option,
        derived,
        counter.to_be_bytes(),
        challenge,
        kdd,
    )
}

/// Answer INITIALIZE UPDATE with a given counter and card challenge (for replaying recorded
/// traces).
///
/// # Errors
/// As [`initialize_update`].
pub fn answer_initialize_update(
    cmd: &CommandView<'_>,
    keys: &KeySet,
    option: Scp02Option,
    counter: [u8; 2],
    card_challenge: [u8; 6],
    kdd: [u8; 10],
) -> Result<(Response, Scp02CardPending), Error> {
    check_initialize_update(cmd, 8)?;
    let derived = derive(keys, counter)?;
    answer_derived(cmd, keys, option, derived, counter, card_challenge, kdd)
}

fn answer_derived(
    cmd: &CommandView<'_>,
    keys: &KeySet,
    option: Scp02Option,
    derived: super::Derived,
    counter: [u8; 2],
    card_challenge: [u8; 6],
    kdd: [u8; 10],
) -> Result<(Response, Scp02CardPending), Error> {
    let host_challenge = cmd.data();
    let answer = InitUpdateResponse {
        kdd,
        key_version: keys.version(),
        scp: SCP02,
        sequence_counter: counter,
        card_challenge,
        card_cryptogram: derived.card_cryptogram(host_challenge, counter, &card_challenge),
    };
    let host_cryptogram = derived.host_cryptogram(host_challenge, counter, &card_challenge);
    let messaging = derived.into_messaging(option);
    Ok((
        Response::success(answer.to_vec()),
        Scp02CardPending {
            messaging,
            host_cryptogram,
        },
    ))
}

/// The card waiting for EXTERNAL AUTHENTICATE.
pub struct Scp02CardPending {
    messaging: Scp02Messaging,
    host_cryptogram: [u8; 8],
}

impl fmt::Debug for Scp02CardPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scp02CardPending { .. }")
    }
}

impl Scp02CardPending {
    /// Check EXTERNAL AUTHENTICATE `84 82 level 00 10 host-cryptogram C-MAC [Le]`.
    ///
    /// # Errors
    /// [`Error::UnexpectedCommand`] (6985), [`Error::SecurityLevel`] (6A86),
    /// [`Error::Malformed`] (6700), [`Error::CommandMac`] (6982), [`Error::HostCryptogram`]
    /// (6300).
    pub fn external_authenticate(
        mut self,
        cmd: &CommandView<'_>,
    ) -> Result<(Response, Scp02CardSession), Error> {
        if cmd.ins() != INS_EXTERNAL_AUTHENTICATE {
            return Err(Error::UnexpectedCommand("EXTERNAL AUTHENTICATE expected"));
        }
        if !cmd.cla().has_secure_messaging() {
            return Err(Error::SecureMessagingMissing);
        }
        let level = SecurityLevel::scp02(cmd.p1())?;
        if cmd.p2() != 0x00 {
            return Err(Error::SecurityLevel(cmd.p2()));
        }
        let data = cmd.data();
        if data.len() != 16 {
            return Err(Error::Malformed("EXTERNAL AUTHENTICATE data length"));
        }
        let (cryptogram, mac) = data.split_at(8);
        let calc = self
            .messaging
            .mac_first(cmd.header(), cryptogram, cmd.is_extended());
        if !bool::from(calc.ct_eq(mac)) {
            return Err(Error::CommandMac);
        }
        if !bool::from(self.host_cryptogram.ct_eq(cryptogram)) {
            return Err(Error::HostCryptogram);
        }
        self.messaging.set_level(level);
        Ok((
            Response::status_only(StatusWord::SUCCESS),
            Scp02CardSession {
                messaging: self.messaging,
            },
        ))
    }
}

/// An open SCP02 session on the card side.
pub struct Scp02CardSession {
    messaging: Scp02Messaging,
}

impl fmt::Debug for Scp02CardSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp02CardSession")
            .field("messaging", &self.messaging)
            .finish()
    }
}

impl Scp02CardSession {
    /// The security level.
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.messaging.level()
    }

    /// The DEK session key (to decrypt PUT KEY key data).
    #[must_use]
    pub fn dek(&self) -> &crate::keys::SecretKey {
        self.messaging.dek()
    }

    /// Decrypt and verify a command; on error the caller closes the session.
    ///
    /// # Errors
    /// [`Error::SecureMessagingMissing`], [`Error::CommandMac`], [`Error::Padding`] (6982).
    pub fn unwrap(&mut self, cmd: &CommandView<'_>) -> Result<Command, Error> {
        self.messaging.unwrap(cmd)
    }

    /// Protect a response (R-MAC at levels 11/13).
    #[must_use]
    pub fn wrap(&mut self, data: &[u8], status: StatusWord) -> Response {
        self.messaging.wrap_response(data, status)
    }
}
