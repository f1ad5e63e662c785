//! Protocol-agnostic facades: [`CardChannel`] for a security domain (the virtual SE) and
//! [`HostSession`] for host tools (`mec gp`, the TSM).
//!
//! Both are Sans-IO: the caller moves bytes, supplies randomness and persists the sequence
//! counter the card reports.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, Response, ResponseView, StatusWord};

use crate::Error;
use crate::keys::{KeySet, SecretKey};
use crate::level::SecurityLevel;
use crate::scp02::card::{Scp02CardConfig, Scp02CardPending, Scp02CardSession};
use crate::scp02::host::{Scp02Host, Scp02HostConfig, Scp02HostPending, Scp02HostSession};
use crate::scp03::card::{Scp03CardConfig, Scp03CardPending, Scp03CardSession};
use crate::scp03::host::{Scp03Host, Scp03HostConfig, Scp03HostPending, Scp03HostSession};
use crate::scp03::{INS_EXTERNAL_AUTHENTICATE, INS_INITIALIZE_UPDATE};
use crate::scp11::INS_INTERNAL_AUTHENTICATE;
use crate::scp11::card::{Scp11CardKeys, Scp11CardSession};
use crate::scp11::host::{Scp11HostConfig, Scp11HostSession, Scp11bHost};

/// Which secure channel protocol a security domain answers, with its options.
#[derive(Debug)]
#[non_exhaustive]
pub enum CardProtocol {
    /// SCP02 with its `i` parameter.
    Scp02(Scp02CardConfig),
    /// SCP03 with its `i` parameter.
    Scp03(Scp03CardConfig),
    /// SCP03 for INITIALIZE UPDATE and SCP11b for INTERNAL AUTHENTICATE.
    Scp03AndScp11b(Scp03CardConfig, Scp11CardKeys),
    /// SCP11b only.
    Scp11b(Scp11CardKeys),
}

/// What the security domain's state gives the channel for one command.
pub struct CardInput<'a, R: rand_core::CryptoRng> {
    /// The domain's secure channel key sets (SCP02: DES, SCP03: AES).
    pub key_sets: &'a [KeySet],
    /// The current sequence counter (SCP02: 16 bits, SCP03: 24 bits).
    pub counter: u32,
    /// Key diversification data to report in INITIALIZE UPDATE.
    pub kdd: [u8; 10],
    /// Randomness for card challenges and ephemeral keys.
    pub rng: &'a mut R,
}

/// What the channel made of one command.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum CardStep {
    /// The channel answered the command itself (authentication commands, or a secure
    /// messaging failure): send `response` as it is. When `counter_used` is set, persist
    /// `counter_used + 1` as the new sequence counter before answering.
    Respond {
        /// The response to send (already final, no wrapping needed).
        response: Response,
        /// The sequence counter value this answer consumed.
        counter_used: Option<u32>,
    },
    /// A command for the security domain (or application) to process, unwrapped when a
    /// session is open; answer it through [`CardChannel::wrap`].
    Process(Command),
}

enum CardState {
    Idle,
    Scp02Pending(Scp02CardPending),
    Scp03Pending(Scp03CardPending),
    Scp02(Scp02CardSession),
    Scp03(Scp03CardSession),
    Scp11(Scp11CardSession),
}

/// The card side of a secure channel, whatever the protocol.
///
/// Answers INITIALIZE UPDATE / EXTERNAL AUTHENTICATE / INTERNAL AUTHENTICATE from the
/// domain's keys, then unwraps commands and wraps responses. It accepts what real hosts send:
/// INITIALIZE UPDATE without Le, with Le 00 or Le 28; EXTERNAL AUTHENTICATE with Le 00; an
/// empty C-DECRYPTION body sent as nothing or as one encrypted padding block. Every unwrap
/// failure closes the session and answers the error's status word ([`Error::status_word`]).
pub struct CardChannel {
    protocol: CardProtocol,
    state: CardState,
}

impl fmt::Debug for CardChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardChannel")
            .field("protocol", &self.protocol)
            .field("open", &self.is_open())
            .field("level", &self.level())
            .finish()
    }
}

fn respond_err(e: &Error) -> CardStep {
    CardStep::Respond {
        response: Response::status_only(e.status_word()),
        counter_used: None,
    }
}

impl CardChannel {
    /// A channel for a security domain running `protocol`.
    #[must_use]
    pub fn new(protocol: CardProtocol) -> Self {
        Self {
            protocol,
            state: CardState::Idle,
        }
    }

    /// The protocol configuration.
    #[must_use]
    pub fn protocol(&self) -> &CardProtocol {
        &self.protocol
    }

    /// Whether a session is open (authenticated).
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            CardState::Scp02(_) | CardState::Scp03(_) | CardState::Scp11(_)
        )
    }

    /// The open session's level (`None` without a session).
    #[must_use]
    pub fn level(&self) -> Option<SecurityLevel> {
        match &self.state {
            CardState::Scp02(s) => Some(s.level()),
            CardState::Scp03(s) => Some(s.level()),
            CardState::Scp11(s) => Some(s.level()),
            _ => None,
        }
    }

    /// The key that decrypts PUT KEY key data in the open session (SCP02: session DEK;
    /// SCP03: the static DEK of the key set, which the caller holds; SCP11: S-DEK).
    #[must_use]
    pub fn session_dek(&self) -> Option<&SecretKey> {
        match &self.state {
            CardState::Scp02(s) => Some(s.dek()),
            CardState::Scp11(s) => Some(s.dek()),
            _ => None,
        }
    }

    /// Close the session (for example on deselection or card reset).
    pub fn close(&mut self) {
        self.state = CardState::Idle;
    }

    fn scp03_config(&self) -> Option<&Scp03CardConfig> {
        match &self.protocol {
            CardProtocol::Scp03(c) | CardProtocol::Scp03AndScp11b(c, _) => Some(c),
            _ => None,
        }
    }

    fn scp11_keys(&self) -> Option<&Scp11CardKeys> {
        match &self.protocol {
            CardProtocol::Scp11b(k) | CardProtocol::Scp03AndScp11b(_, k) => Some(k),
            _ => None,
        }
    }

    /// Handle one command addressed to the security domain.
    pub fn process<R: rand_core::CryptoRng>(
        &mut self,
        cmd: &CommandView<'_>,
        input: CardInput<'_, R>,
    ) -> CardStep {
        let proprietary = cmd.cla().is_proprietary();
        match cmd.ins() {
            INS_INITIALIZE_UPDATE if proprietary => return self.initialize_update(cmd, input),
            INS_EXTERNAL_AUTHENTICATE if proprietary => {
                match core::mem::replace(&mut self.state, CardState::Idle) {
                    CardState::Scp02Pending(p) => {
                        return self.finish(
                            p.external_authenticate(cmd)
                                .map(|(r, s)| (r, CardState::Scp02(s))),
                        );
                    }
                    CardState::Scp03Pending(p) => {
                        return self.finish(
                            p.external_authenticate(cmd)
                                .map(|(r, s)| (r, CardState::Scp03(s))),
                        );
                    }
                    // EXTERNAL AUTHENTICATE outside the handshake: 6985 and no session.
                    _ => {
                        return respond_err(&Error::UnexpectedCommand(
                            "EXTERNAL AUTHENTICATE without INITIALIZE UPDATE",
                        ));
                    }
                }
            }
            INS_INTERNAL_AUTHENTICATE
                if proprietary
                    && !cmd.cla().has_secure_messaging()
                    && self.scp11_keys().is_some() =>
            {
                self.state = CardState::Idle;
                let result = match self.scp11_keys() {
                    Some(keys) => crate::scp11::card::internal_authenticate(cmd, keys, input.rng),
                    None => Err(Error::UnexpectedCommand("SCP11 not configured")),
                };
                return self.finish(result.map(|(r, s)| (r, CardState::Scp11(s))));
            }
            _ => {}
        }
        // Any other command during the handshake aborts it (GPC 2.3 §10.3.4).
        if matches!(
            self.state,
            CardState::Scp02Pending(_) | CardState::Scp03Pending(_)
        ) {
            self.state = CardState::Idle;
        }
        let result = match &mut self.state {
            CardState::Scp02(s) => s.unwrap(cmd),
            CardState::Scp03(s) => s.unwrap(cmd),
            CardState::Scp11(s) => s.unwrap(cmd),
            _ if cmd.cla().has_secure_messaging() => Err(Error::NoSession),
            _ => Ok(cmd.to_command()),
        };
        match result {
            Ok(plain) => CardStep::Process(plain),
            Err(e) => {
                self.state = CardState::Idle;
                respond_err(&e)
            }
        }
    }

    fn finish(&mut self, result: Result<(Response, CardState), Error>) -> CardStep {
        match result {
            Ok((response, state)) => {
                self.state = state;
                CardStep::Respond {
                    response,
                    counter_used: None,
                }
            }
            Err(e) => {
                self.state = CardState::Idle;
                respond_err(&e)
            }
        }
    }

    fn initialize_update<R: rand_core::CryptoRng>(
        &mut self,
        cmd: &CommandView<'_>,
        input: CardInput<'_, R>,
    ) -> CardStep {
        // INITIALIZE UPDATE aborts any session (GPC 2.3 §11.11.1).
        self.state = CardState::Idle;
        let result = match &self.protocol {
            CardProtocol::Scp02(config) => match u16::try_from(input.counter) {
                Ok(counter) => crate::scp02::card::initialize_update(
                    cmd,
                    input.key_sets,
                    config,
                    counter,
                    input.kdd,
                    input.rng,
                )
                .map(|(r, p)| (r, CardState::Scp02Pending(p), Some(input.counter))),
                Err(_) => Err(Error::CounterExhausted),
            },
            _ => match self.scp03_config() {
                Some(config) => crate::scp03::card::initialize_update(
                    cmd,
                    input.key_sets,
                    config,
                    input.counter,
                    input.rng,
                )
                .map(|(mut r, p)| {
                    if let Some(slot) = r.data.get_mut(..10) {
                        slot.copy_from_slice(&input.kdd);
                    }
                    let used = p.counter_used();
                    (r, CardState::Scp03Pending(p), used)
                }),
                None => Err(Error::UnexpectedCommand(
                    "INITIALIZE UPDATE: no SCP02/SCP03 configured",
                )),
            },
        };
        match result {
            Ok((response, state, counter_used)) => {
                self.state = state;
                CardStep::Respond {
                    response,
                    counter_used,
                }
            }
            Err(e) => respond_err(&e),
        }
    }

    /// Protect the response to a command that [`CardChannel::process`] returned as
    /// [`CardStep::Process`] (a no-op without a session).
    #[must_use]
    pub fn wrap(&mut self, data: &[u8], status: StatusWord) -> Response {
        match &mut self.state {
            CardState::Scp02(s) => s.wrap(data, status),
            CardState::Scp03(s) => s.wrap(data, status),
            CardState::Scp11(s) => s.wrap(data, status),
            _ => Response::new(data.to_vec(), status),
        }
    }
}

/// Which protocol a host session runs, with its configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HostProtocol {
    /// SCP02.
    Scp02(Scp02HostConfig),
    /// SCP03.
    Scp03(Scp03HostConfig),
    /// SCP11b, with the keys the caller trusts.
    Scp11b(Scp11HostConfig, Vec<p256::PublicKey>),
}

enum HostState {
    Scp02Init(Scp02Host),
    Scp02Pending(Scp02HostPending),
    Scp02(Scp02HostSession),
    Scp03Init(Scp03Host),
    Scp03Pending(Scp03HostPending),
    Scp03(Scp03HostSession),
    Scp11Init(Scp11bHost),
    Scp11(Scp11HostSession),
    Closed,
}

/// What the host does next during the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum HostStep {
    /// Send this command and feed its response to [`HostSession::process`].
    Send(Command),
    /// The session is open: use [`HostSession::wrap`] and [`HostSession::unwrap`].
    Open,
}

/// The host side of a secure channel, whatever the protocol.
///
/// ```text
/// let mut step = HostStep::Send(host.begin()?);
/// while let HostStep::Send(cmd) = step { step = host.process(&transmit(cmd))?; }
/// ```
pub struct HostSession {
    state: HostState,
}

impl fmt::Debug for HostSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSession")
            .field("open", &self.is_open())
            .field("level", &self.level())
            .finish()
    }
}

impl HostSession {
    /// A host session with its (master) keys for SCP02/SCP03 (ignored for SCP11b), the
    /// protocol configuration and a random source for the challenge or ephemeral key.
    ///
    /// # Errors
    /// [`Error::SecurityLevel`], [`Error::UntrustedCardKey`].
    pub fn new(
        keys: KeySet,
        protocol: HostProtocol,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, Error> {
        let state = match protocol {
            HostProtocol::Scp02(c) => HostState::Scp02Init(Scp02Host::with_rng(keys, c, rng)?),
            HostProtocol::Scp03(c) => HostState::Scp03Init(Scp03Host::with_rng(keys, c, rng)?),
            HostProtocol::Scp11b(c, trusted) => {
                HostState::Scp11Init(Scp11bHost::new(c, &trusted, rng)?)
            }
        };
        Ok(Self { state })
    }

    /// The first command of the handshake (INITIALIZE UPDATE or INTERNAL AUTHENTICATE).
    ///
    /// # Errors
    /// [`Error::UnexpectedCommand`] after the handshake started.
    pub fn begin(&self) -> Result<Command, Error> {
        match &self.state {
            HostState::Scp02Init(h) => Ok(h.initialize_update()),
            HostState::Scp03Init(h) => Ok(h.initialize_update()),
            HostState::Scp11Init(h) => Ok(h.internal_authenticate()),
            _ => Err(Error::UnexpectedCommand("handshake already started")),
        }
    }

    /// Feed the response to the last handshake command.
    ///
    /// # Errors
    /// [`Error::CardCryptogram`] (with what was tried), [`Error::Receipt`], [`Error::Status`],
    /// [`Error::Malformed`], ...; the session is closed after any error.
    pub fn process(&mut self, response: &ResponseView<'_>) -> Result<HostStep, Error> {
        let (next, step) = match core::mem::replace(&mut self.state, HostState::Closed) {
            HostState::Scp02Init(h) => {
                let p = h.process_initialize_update(response)?;
                let c = p.external_authenticate().clone();
                (HostState::Scp02Pending(p), HostStep::Send(c))
            }
            HostState::Scp02Pending(p) => (
                HostState::Scp02(p.process_external_authenticate(response)?),
                HostStep::Open,
            ),
            HostState::Scp03Init(h) => {
                let p = h.process_initialize_update(response)?;
                let c = p.external_authenticate().clone();
                (HostState::Scp03Pending(p), HostStep::Send(c))
            }
            HostState::Scp03Pending(p) => (
                HostState::Scp03(p.process_external_authenticate(response)?),
                HostStep::Open,
            ),
            HostState::Scp11Init(h) => (
                HostState::Scp11(h.process_internal_authenticate(response)?),
                HostStep::Open,
            ),
            _ => return Err(Error::NoSession),
        };
        self.state = next;
        Ok(step)
    }

    /// Whether the session is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            HostState::Scp02(_) | HostState::Scp03(_) | HostState::Scp11(_)
        )
    }

    /// The open session's level.
    #[must_use]
    pub fn level(&self) -> Option<SecurityLevel> {
        match &self.state {
            HostState::Scp02(s) => Some(s.level()),
            HostState::Scp03(s) => Some(s.level()),
            HostState::Scp11(s) => Some(s.level()),
            _ => None,
        }
    }

    /// The key that encrypts PUT KEY key data in this session (SCP02 session DEK, SCP03
    /// static DEK, SCP11 S-DEK).
    #[must_use]
    pub fn dek(&self) -> Option<&SecretKey> {
        match &self.state {
            HostState::Scp02(s) => Some(s.dek()),
            HostState::Scp03(s) => Some(s.dek()),
            HostState::Scp11(s) => Some(s.dek()),
            _ => None,
        }
    }

    /// Protect a command.
    ///
    /// # Errors
    /// [`Error::NoSession`], [`Error::TooLong`].
    pub fn wrap(&mut self, command: &Command) -> Result<Command, Error> {
        match &mut self.state {
            HostState::Scp02(s) => s.wrap(command),
            HostState::Scp03(s) => s.wrap(command),
            HostState::Scp11(s) => s.wrap(command),
            _ => Err(Error::NoSession),
        }
    }

    /// Verify and decrypt a response. A forged or missing R-MAC closes the session.
    ///
    /// # Errors
    /// [`Error::NoSession`], [`Error::ResponseMac`], [`Error::Padding`].
    pub fn unwrap(&mut self, response: &ResponseView<'_>) -> Result<Response, Error> {
        let result = match &mut self.state {
            HostState::Scp02(s) => s.unwrap(response),
            HostState::Scp03(s) => s.unwrap(response),
            HostState::Scp11(s) => s.unwrap(response),
            _ => Err(Error::NoSession),
        };
        if result.is_err() {
            self.state = HostState::Closed;
        }
        result
    }
}
