//! SCP03 card (security domain) side: answers INITIALIZE UPDATE, checks EXTERNAL
//! AUTHENTICATE, then unwraps commands and wraps responses.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, Response, StatusWord};
use subtle::ConstantTimeEq;

use super::{
    INS_EXTERNAL_AUTHENTICATE, INS_INITIALIZE_UPDATE, InitUpdateResponse, SCP03, Scp03Option,
    derive, pseudo_random_challenge,
};
use crate::Error;
use crate::keys::{KeySet, KeyType};
use crate::level::SecurityLevel;
use crate::sm::AesMessaging;

/// The largest SCP03 sequence counter (3 bytes, Amd D §6.2.2.1).
pub const MAX_SEQUENCE_COUNTER: u32 = 0x00FF_FFFF;

/// How the security domain runs SCP03.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scp03CardConfig {
    /// The `i` parameter the card announces.
    pub option: Scp03Option,
    /// The AID of the security domain (context of the pseudo-random card challenge).
    pub sd_aid: Vec<u8>,
}

/// Select the key set INITIALIZE UPDATE P1 asks for: `00` = the first one, else the exact
/// version (GPC 2.3 §11.11.2.1).
pub(crate) fn select_key_set(
    key_sets: &[KeySet],
    p1: u8,
    key_type: KeyType,
) -> Result<&KeySet, Error> {
    key_sets
        .iter()
        .filter(|k| k.key_type() == key_type)
        .find(|k| p1 == 0 || k.version() == p1)
        .ok_or(Error::KeyVersionNotFound(p1))
}

/// Check the INITIALIZE UPDATE header: `80 50 kvn 00` (any Le: none, 00 or 28 are all seen).
pub(crate) fn check_initialize_update(
    cmd: &CommandView<'_>,
    challenge_len: usize,
) -> Result<(), Error> {
    if cmd.ins() != INS_INITIALIZE_UPDATE || cmd.cla().has_secure_messaging() {
        return Err(Error::UnexpectedCommand("INITIALIZE UPDATE expected"));
    }
    if cmd.p2() != 0x00 {
        return Err(Error::SecurityLevel(cmd.p2()));
    }
    if cmd.data().len() != challenge_len {
        return Err(Error::Malformed("host challenge length"));
    }
    Ok(())
}

/// Answer INITIALIZE UPDATE (GPC 2.3 §11.11, Amd D §7.1.1).
///
/// `counter` is the security domain's current sequence counter; with a pseudo-random card
/// challenge the card uses it and the caller must persist `counter + 1` after a successful
/// answer ([`Scp03CardPending::counter_used`]). Otherwise the card challenge comes from `rng`.
///
/// # Errors
/// [`Error::KeyVersionNotFound`] (6A88), [`Error::Malformed`] (6700) for a wrong challenge
/// length, [`Error::CounterExhausted`] when the counter has reached its maximum.
pub fn initialize_update(
    cmd: &CommandView<'_>,
    key_sets: &[KeySet],
    config: &Scp03CardConfig,
    counter: u32,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(Response, Scp03CardPending), Error> {
    let n = config.option.block_len();
    check_initialize_update(cmd, n)?;
    let keys = select_key_set(key_sets, cmd.p1(), KeyType::Aes)?;
    let mut card_challenge = [0u8; 16];
    let mut sequence_counter = None;
    if config.option.pseudo_random() {
        if counter >= MAX_SEQUENCE_COUNTER {
            return Err(Error::CounterExhausted);
        }
        let [_, a, b, c] = counter.to_be_bytes();
        pseudo_random_challenge(
            keys.enc().as_bytes(),
            [a, b, c],
            &config.sd_aid,
            &mut card_challenge[..n],
        )?;
        sequence_counter = Some([a, b, c]);
    } else {
        rng.fill_bytes(&mut card_challenge[..n]);
    }
    answer_initialize_update(
        cmd,
        keys,
        config.option,
        &card_challenge[..n],
        sequence_counter,
        [0; 10],
    )
    .map(|(r, mut p)| {
        p.counter_used = sequence_counter.map(|_| counter);
        (r, p)
    })
}

/// Answer INITIALIZE UPDATE with a given card challenge, sequence counter and KDD (what
/// [`initialize_update`] does after choosing the challenge; also for replaying recorded
/// traces in tests).
///
/// # Errors
/// [`Error::Malformed`] when the challenge length does not fit the option.
pub fn answer_initialize_update(
    cmd: &CommandView<'_>,
    keys: &KeySet,
    option: Scp03Option,
    card_challenge: &[u8],
    sequence_counter: Option<[u8; 3]>,
    kdd: [u8; 10],
) -> Result<(Response, Scp03CardPending), Error> {
    let n = option.block_len();
    check_initialize_update(cmd, n)?;
    if card_challenge.len() != n {
        return Err(Error::Malformed("card challenge length"));
    }
    let mut challenge = [0u8; 16];
    challenge[..n].copy_from_slice(card_challenge);
    let mut context = Vec::with_capacity(2 * n);
    context.extend_from_slice(cmd.data());
    context.extend_from_slice(card_challenge);
    let derived = derive(keys, &context, n)?;
    let answer = InitUpdateResponse {
        kdd,
        key_version: keys.version(),
        scp: SCP03,
        option,
        card_challenge: challenge,
        card_cryptogram: derived.card_cryptogram,
        sequence_counter,
    };
    let response = Response::success(answer.to_vec());
    let host_cryptogram = derived.host_cryptogram;
    let messaging = derived.into_messaging(SecurityLevel::NONE, n);
    Ok((
        response,
        Scp03CardPending {
            messaging,
            host_cryptogram,
            option,
            counter_used: None,
        },
    ))
}

/// The card after INITIALIZE UPDATE, waiting for EXTERNAL AUTHENTICATE.
pub struct Scp03CardPending {
    messaging: AesMessaging,
    host_cryptogram: [u8; 16],
    option: Scp03Option,
    counter_used: Option<u32>,
}

impl fmt::Debug for Scp03CardPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp03CardPending")
            .field("option", &self.option)
            .finish_non_exhaustive()
    }
}

impl Scp03CardPending {
    /// The sequence counter value the answer used (persist `value + 1`), when `i` has the
    /// pseudo-random challenge bit.
    #[must_use]
    pub fn counter_used(&self) -> Option<u32> {
        self.counter_used
    }

    /// Check EXTERNAL AUTHENTICATE `84 82 level 00 Lc host-cryptogram C-MAC [Le]`
    /// (GPC 2.3 §11.8, Amd D §7.1.2).
    ///
    /// # Errors
    /// [`Error::UnexpectedCommand`] (6985) for another command, [`Error::SecurityLevel`]
    /// (6A86), [`Error::Malformed`] (6700), [`Error::CommandMac`] (6982),
    /// [`Error::HostCryptogram`] (6300).
    pub fn external_authenticate(
        mut self,
        cmd: &CommandView<'_>,
    ) -> Result<(Response, Scp03CardSession), Error> {
        if cmd.ins() != INS_EXTERNAL_AUTHENTICATE {
            return Err(Error::UnexpectedCommand("EXTERNAL AUTHENTICATE expected"));
        }
        if !cmd.cla().has_secure_messaging() {
            return Err(Error::SecureMessagingMissing);
        }
        let level = SecurityLevel::scp03(cmd.p1())?;
        if !self.option.allows(level) || cmd.p2() != 0x00 {
            return Err(Error::SecurityLevel(cmd.p1()));
        }
        let n = self.option.block_len();
        let data = cmd.data();
        if data.len() != 2 * n {
            return Err(Error::Malformed("EXTERNAL AUTHENTICATE data length"));
        }
        let (cryptogram, mac) = data.split_at(n);
        let calc = self
            .messaging
            .mac_first(cmd.header(), cryptogram, cmd.is_extended());
        let mac_ok: bool = calc.get(..n).unwrap_or(&[]).ct_eq(mac).into();
        if !mac_ok {
            return Err(Error::CommandMac);
        }
        let ok: bool = self
            .host_cryptogram
            .get(..n)
            .unwrap_or(&[])
            .ct_eq(cryptogram)
            .into();
        if !ok {
            return Err(Error::HostCryptogram);
        }
        self.messaging.set_level(level);
        Ok((
            Response::status_only(StatusWord::SUCCESS),
            Scp03CardSession {
                messaging: self.messaging,
            },
        ))
    }
}

/// An open SCP03 session on the card side.
pub struct Scp03CardSession {
    messaging: AesMessaging,
}

impl fmt::Debug for Scp03CardSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp03CardSession")
            .field("messaging", &self.messaging)
            .finish()
    }
}

impl Scp03CardSession {
    /// The session's security level.
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.messaging.level()
    }

    /// Verify and decrypt a command. On error the caller must close the session (the
    /// [`crate::CardChannel`] facade does) and answer [`Error::status_word`].
    ///
    /// # Errors
    /// [`Error::SecureMessagingMissing`], [`Error::CommandMac`] (tampered, replayed or
    /// out-of-order), [`Error::Padding`]; all map to 6982.
    pub fn unwrap(&mut self, cmd: &CommandView<'_>) -> Result<Command, Error> {
        self.messaging.unwrap(cmd)
    }

    /// Protect a response (R-MAC, R-ENCRYPTION) at the session's level.
    #[must_use]
    pub fn wrap(&mut self, data: &[u8], status: StatusWord) -> Response {
        self.messaging.wrap_response(data, status)
    }
}
