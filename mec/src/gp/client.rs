//! The card-management logic of `mec gp`, independent of the command line: a [`GpClient`]
//! over any [`Transport`] selects the security domain, reads its data objects, opens a
//! secure channel (SCP02, SCP03 S8/S16, SCP11b) and runs the GlobalPlatform commands through
//! it. Every APDU goes through the apdu-codec exchange helper (61xx, 6Cxx) and the tracer.

use apdu_codec::exchange::{Exchange, ExchangeConfig};
use apdu_codec::tlv::Tag;
use apdu_codec::{Command, Response, StatusWord, parse_response};
use chacha20::ChaCha20Rng;
use gp_scp::cmd::get_data::{self, KeyReference};
use gp_scp::cmd::get_status::{
    GetStatus, RegistryEntry, ResponseFormat, StatusSubset, parse_get_status_page,
};
use gp_scp::cmd::{Aid, CommandError, select};
use gp_scp::diversify::Diversification;
use gp_scp::keys::{KeySet, KeyType, SecretKey};
use gp_scp::scp02::Scp02Option;
use gp_scp::scp02::host::{Scp02Host, Scp02HostConfig, Scp02HostSession};
use gp_scp::scp03::host::{Scp03Host, Scp03HostConfig, Scp03HostSession};
use gp_scp::scp11::host::{Scp11HostConfig, Scp11HostSession, Scp11bHost};
use gp_scp::scp11::{TrustAnchor, UnixTime, verify_chain};
use gp_scp::{AuthFailure, SecurityLevel};
use rand_core::{Rng, SeedableRng};
use std::io::Write as _;

use super::length::{self, ApduMode, LengthPlan, Wrapping};
use crate::transport::{Tracer, Transport, TransportError};

/// INITIALIZE UPDATE (GPC 2.3 §11.11.2).
const INS_INITIALIZE_UPDATE: u8 = 0x50;
/// Key id of the SCP11b key (Amd F §7.1.1).
const SCP11B_KEY_ID: u8 = 0x13;
/// SCP identifiers in the INITIALIZE UPDATE response (GPC 2.3 §E.5.1.6, Amd D §7.1.1.6).
const SCP02: u8 = 0x02;
const SCP03: u8 = 0x03;
/// GET DATA of the extended length information (ISO/IEC 7816-4 §12.7.1): `00 CA 7F 66 00`.
const GET_EXTENDED_LENGTH_INFO: [u8; 4] = [0x00, 0xCA, 0x7F, 0x66];

/// Which secure channel protocol to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScpChoice {
    /// SCP02 (GPC 2.3 Appendix E).
    Scp02,
    /// SCP03 (Amendment D).
    Scp03,
    /// SCP11b (Amendment F).
    Scp11b,
}

/// How to authenticate: keys, key version, diversification, protocol, level, challenge.
pub(crate) struct AuthOptions {
    /// ENC, MAC, DEK static (or master) keys.
    pub(crate) enc: SecretKey,
    /// MAC key.
    pub(crate) mac: SecretKey,
    /// DEK key.
    pub(crate) dek: SecretKey,
    /// Whether the keys are the default test keys (nothing given on the command line).
    pub(crate) default_keys: bool,
    /// Key version (INITIALIZE UPDATE P1; `00` = the card's default).
    pub(crate) kvn: u8,
    /// Diversification of the card's keys from the given ones.
    pub(crate) kdf: Diversification,
    /// Protocol; `None`: from the card's INITIALIZE UPDATE answer.
    pub(crate) scp: Option<ScpChoice>,
    /// Security level (SCP02/SCP03; SCP11b always runs at 33).
    pub(crate) level: SecurityLevel,
    /// Fixed host challenge (8 bytes, or 16 for SCP03 S16).
    pub(crate) host_challenge: Option<Vec<u8>>,
    /// SCP11b: how the card's key PK.SD is authenticated.
    pub(crate) scp11: Scp11Trust,
}

/// How `mec gp` authenticates the security domain's SCP11b key (PK.SD) before it sends INTERNAL
/// AUTHENTICATE: with the certificate chain (`--ca`), a pinned key (`--sd-key`), both, or
/// neither (then with a warning: the session is encrypted, but with whoever holds the key the
/// card presented).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scp11Trust {
    /// Trust anchors (`--ca`): the chain must verify against one of them.
    pub(crate) anchors: Vec<TrustAnchor>,
    /// Pinned PK.SD (`--sd-key`).
    pub(crate) pinned: Option<p256::PublicKey>,
    /// The time the certificates' validity is checked at (the caller's clock).
    pub(crate) now: Option<UnixTime>,
}

/// Everything `mec gp` reports as a failure, each with what the user can do about it.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum GpError {
    /// The reader or PC/SC failed.
    Transport(TransportError),
    /// The card answered a status word the operation cannot go on with.
    Status {
        /// What was being done.
        what: String,
        /// The status word.
        sw: StatusWord,
        /// An extra hint.
        hint: Option<String>,
    },
    /// The card cryptogram did not verify: wrong keys, KDF or key version.
    Authentication {
        /// What the host tried.
        failure: AuthFailure,
        /// Whether the keys were the default test keys.
        default_keys: bool,
    },
    /// The card refused the host cryptogram (EXTERNAL AUTHENTICATE).
    HostCryptogram(StatusWord),
    /// INITIALIZE UPDATE answered 6983: the domain blocked authentication.
    Blocked {
        /// The security domain.
        sd: String,
    },
    /// A secure channel error (R-MAC, protocol mismatch, ...).
    Scp(gp_scp::Error),
    /// A malformed response or request.
    Command(CommandError),
    /// SCP11b: the card's key could not be authenticated (certificate chain refused, not
    /// the pinned key, or no certificate to read it from); nothing was sent after GET DATA
    /// BF21.
    Untrusted(String),
    /// A PUT KEY answer whose key check values do not match the keys sent.
    KcvMismatch {
        /// KCVs computed by the host.
        expected: Vec<String>,
        /// KCVs the card answered.
        card: Vec<String>,
    },
    /// Bad input (a file, an option combination).
    Usage(String),
    /// Writing the report to standard output failed.
    Output(std::io::Error),
}

impl std::fmt::Display for GpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpError::Transport(e) => write!(f, "reader: {e}"),
            GpError::Status { what, sw, hint } => {
                write!(f, "{what}: the card answered {sw}")?;
                if let Some(h) = hint {
                    write!(f, "; {h}")?;
                }
                Ok(())
            }
            GpError::Authentication {
                failure,
                default_keys,
            } => write_auth_failure(f, failure, *default_keys),
            GpError::HostCryptogram(sw) => write!(
                f,
                "EXTERNAL AUTHENTICATE: the card refused the host cryptogram ({sw}) although its \
                 own cryptogram verified; the card counted a failed authentication and nothing \
                 was retried. Likely causes: 1. a wrong MAC key (SCP02 checks the card \
                 cryptogram with the ENC key only; give the right --key-mac); 2. a security \
                 level the domain does not accept (try --security mac). Check before trying \
                 again: each failure brings the domain closer to blocking (6983)"
            ),
            GpError::Blocked { sd } => write!(
                f,
                "INITIALIZE UPDATE: the card answered 6983 (authentication method blocked): \
                 security domain {sd} has reached its limit of failed authentications and \
                 refuses new sessions. Nothing was retried. Its content can no longer be \
                 managed with these keys; on a real card this is usually permanent"
            ),
            GpError::Scp(e) => write!(f, "secure channel: {e}"),
            GpError::Output(e) => write!(f, "writing the output: {e}"),
            GpError::Command(e) => write!(f, "malformed card data: {e}"),
            GpError::Untrusted(m) => write!(
                f,
                "SCP11b: {m}; the card's key is not authenticated, so no INTERNAL AUTHENTICATE \
                 was sent"
            ),
            GpError::KcvMismatch { expected, card } => write!(
                f,
                "PUT KEY: the card answered key check values {} but the keys sent have {}; \
                 the card holds other keys than intended: do not rely on the new key set",
                card.join("/"),
                expected.join("/")
            ),
            GpError::Usage(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GpError {}

fn write_auth_failure(
    f: &mut std::fmt::Formatter<'_>,
    a: &AuthFailure,
    default_keys: bool,
) -> std::fmt::Result {
    writeln!(
        f,
        "authentication failed: the card cryptogram did not verify (SCP{:02X}); nothing was \
         sent to the card after INITIALIZE UPDATE and nothing was retried",
        a.scp
    )?;
    writeln!(
        f,
        "  key version : card used {:02X}, requested {:02X}{}",
        a.key_version,
        a.requested_key_version,
        if a.requested_key_version == 0 {
            " (any)"
        } else {
            ""
        }
    )?;
    writeln!(
        f,
        "  keys tried  : ENC KCV {}, MAC KCV {}, DEK KCV {}{}",
        a.kcvs[0],
        a.kcvs[1],
        a.kcvs[2],
        if default_keys {
            " (default test keys 404142..4F: no --key given)"
        } else {
            ""
        }
    )?;
    writeln!(f, "  diversified : {}", a.diversification)?;
    writeln!(f, "  card KDD    : {}", hex::encode_upper(a.kdd))?;
    writeln!(f, "likely causes, most likely first:")?;
    let mut causes: Vec<String> = Vec::new();
    if a.requested_key_version != 0 && a.requested_key_version != a.key_version {
        causes.push(format!(
            "the card answered with key version {:02X}, not the requested {:02X}: use --kvn {:02X} with that key set's keys",
            a.key_version, a.requested_key_version, a.key_version
        ));
    }
    if a.diversification == Diversification::None && a.kdd.iter().any(|&b| b != 0) {
        causes.push(
            "the card's keys are diversified from the master keys you gave: try --kdf emv or \
             --kdf visa2 (SCP02, DES keys) or --kdf kdf3 (SCP03, AES keys)"
                .into(),
        );
    } else if a.diversification != Diversification::None {
        causes.push(format!(
            "the card's keys are not diversified with {} (try another --kdf, or none)",
            a.diversification
        ));
    }
    causes.push(if default_keys {
        "the card does not use the default test keys: give its keys with --key (or --key-enc/--key-mac/--key-dek)".into()
    } else {
        "wrong keys for this key version (compare the KCVs above with the ones you expect)".into()
    });
    causes.push(format!(
        "another key set: list the card's key versions with `mec gp info` (key information) and pick one with --kvn (this one was {:02X})",
        a.key_version
    ));
    for (n, c) in causes.iter().enumerate() {
        writeln!(f, "  {}. {c}", n + 1)?;
    }
    write!(
        f,
        "each failed authentication brings a real card closer to blocking the domain (6983): check before retrying"
    )
}

impl From<TransportError> for GpError {
    fn from(e: TransportError) -> Self {
        GpError::Transport(e)
    }
}

impl From<CommandError> for GpError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Status(sw) => GpError::Status {
                what: "card".into(),
                sw,
                hint: None,
            },
            other => GpError::Command(other),
        }
    }
}

impl From<gp_scp::Error> for GpError {
    fn from(e: gp_scp::Error) -> Self {
        match e {
            gp_scp::Error::Command(c) => c.into(),
            other => GpError::Scp(other),
        }
    }
}

impl From<apdu_codec::Error> for GpError {
    fn from(e: apdu_codec::Error) -> Self {
        GpError::Scp(gp_scp::Error::Codec(e))
    }
}

/// An open secure channel.
enum Channel {
    Scp02(Scp02HostSession),
    Scp03(Scp03HostSession),
    Scp11(Scp11HostSession),
}

impl Channel {
    fn wrap(&mut self, c: &Command) -> Result<Command, gp_scp::Error> {
        match self {
            Channel::Scp02(s) => s.wrap(c),
            Channel::Scp03(s) => s.wrap(c),
            Channel::Scp11(s) => s.wrap(c),
        }
    }

    fn unwrap(&mut self, r: &Response) -> Result<Response, gp_scp::Error> {
        let view = r.view();
        match self {
            Channel::Scp02(s) => s.unwrap(&view),
            Channel::Scp03(s) => s.unwrap(&view),
            Channel::Scp11(s) => s.unwrap(&view),
        }
    }

    fn dek(&self) -> (&SecretKey, KeyType) {
        match self {
            Channel::Scp02(s) => (s.dek(), KeyType::Des),
            Channel::Scp03(s) => (s.dek(), KeyType::Aes),
            Channel::Scp11(s) => (s.dek(), KeyType::Aes),
        }
    }
}

/// What an opened session is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct SessionInfo {
    /// `02`, `03` or `11b`.
    pub(crate) scp: String,
    /// The `i` parameter (SCP03 from the card; SCP02 as assumed).
    pub(crate) i: Option<u8>,
    /// Key version the card used.
    pub(crate) key_version: u8,
    /// Security level.
    pub(crate) level: u8,
    /// KDD from the INITIALIZE UPDATE answer.
    pub(crate) kdd: Option<[u8; 10]>,
    /// Sequence counter from the answer.
    pub(crate) sequence_counter: Option<u32>,
}

/// A GlobalPlatform host over a transport.
pub(crate) struct GpClient<T: Transport> {
    transport: T,
    tracer: Tracer,
    rng: ChaCha20Rng,
    channel: Option<Channel>,
    sd: Option<Aid>,
    /// The secure channels the selected domain announces in its FCI (GPC 2.3 §H.3).
    sd_channels: Vec<get_data::ScpInfo>,
    session: Option<SessionInfo>,
    /// Number of INITIALIZE UPDATE / INTERNAL AUTHENTICATE commands sent (tests check that
    /// nothing is retried).
    pub(crate) auth_attempts: usize,
    /// Where warnings go (stderr).
    warnings: Box<dyn std::io::Write>,
    /// Short or extended APDUs, and the card's limits.
    length: LengthPlan,
    /// Whether the last APDU on the wire was extended (to explain a 6700).
    last_extended: bool,
}

impl<T: Transport> GpClient<T> {
    /// A client; `seed` drives the host challenge and SCP11 ephemeral keys when no fixed
    /// challenge is given.
    pub(crate) fn new(transport: T, tracer: Tracer, seed: [u8; 32]) -> Self {
        Self {
            transport,
            tracer,
            rng: ChaCha20Rng::from_seed(seed),
            channel: None,
            sd: None,
            sd_channels: Vec::new(),
            session: None,
            auth_attempts: 0,
            warnings: Box::new(std::io::stderr()),
            length: LengthPlan::default(),
            last_extended: false,
        }
    }

    /// Send warnings (one line each) to `sink` instead of stderr.
    #[cfg(test)]
    pub(crate) fn set_warnings(&mut self, sink: Box<dyn std::io::Write>) {
        self.warnings = sink;
    }

    /// The transport (tests inspect the virtual card through it).
    #[cfg(test)]
    pub(crate) fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutable (tests drive the virtual card directly through it).
    #[cfg(test)]
    pub(crate) fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The selected security domain.
    pub(crate) fn sd(&self) -> Option<&Aid> {
        self.sd.as_ref()
    }

    /// The open session's description.
    pub(crate) fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// Forget the session and the selection (the card side is reset by a new connection).
    pub(crate) fn close(&mut self) {
        self.channel = None;
        self.session = None;
        self.sd = None;
        self.sd_channels.clear();
        self.length = LengthPlan::default();
        self.last_extended = false;
    }

    /// The APDU lengths in use.
    pub(crate) fn length(&self) -> &LengthPlan {
        &self.length
    }

    /// What the open session adds to a command's data field.
    pub(crate) fn wrapping(&self) -> Wrapping {
        match (&self.channel, &self.session) {
            (Some(_), Some(s)) => Wrapping::of(&s.scp, s.i, s.level),
            _ => Wrapping::PLAIN,
        }
    }

    /// Decide on short or extended APDUs for this connection: `--apdu short` never sends
    /// extended ones; `auto` only when the ATR's card capabilities announce extended Lc/Le;
    /// `extended` always, unless the card capabilities say it has none (a usage error), with
    /// a warning when the ATR says nothing. When extended APDUs are used and the card
    /// capabilities announce extended length information, GET DATA 7F66 reads the card's
    /// maximum command length (a card that does not answer it is used without a limit).
    ///
    /// # Errors
    /// [`GpError::Usage`] for `--apdu extended` on a card that announces no extended Lc/Le;
    /// transport errors.
    pub(crate) fn configure_length(&mut self, mode: ApduMode) -> Result<(), GpError> {
        let atr = self.transport.atr();
        let caps = length::parse_card_capabilities(&atr);
        let (extended, reason) = match (mode, caps) {
            (ApduMode::Short, _) => (false, "short APDUs (--apdu short)".to_owned()),
            (ApduMode::Auto, Some(c)) if c.extended() => (
                true,
                "extended APDUs (the ATR's card capabilities announce extended Lc/Le)".to_owned(),
            ),
            (ApduMode::Auto, Some(_)) => (
                false,
                "short APDUs (the ATR's card capabilities announce no extended Lc/Le)".to_owned(),
            ),
            (ApduMode::Auto, None) => (
                false,
                "short APDUs (the ATR has no card capabilities announcing extended Lc/Le)"
                    .to_owned(),
            ),
            (ApduMode::Extended, Some(c)) if !c.extended() => {
                return Err(GpError::Usage(format!(
                    "--apdu extended: the card takes short APDUs only: its ATR's card \
                     capabilities (ISO/IEC 7816-4 §8.1.1.2.7, third byte {}) do not announce \
                     extended Lc and Le fields; drop --apdu extended (auto sends short APDUs \
                     to this card)",
                    c.third
                        .map_or_else(|| "absent".to_owned(), |b| format!("{b:02X}"))
                )));
            }
            (ApduMode::Extended, Some(_)) => (true, "extended APDUs (--apdu extended)".to_owned()),
            (ApduMode::Extended, None) => {
                let _ = writeln!(
                    self.warnings,
                    "mec gp: warning: --apdu extended: the card's ATR does not announce \
                     extended-length APDUs; if the card answers 6700 (wrong length), it takes \
                     short ones only"
                );
                (
                    true,
                    "extended APDUs (--apdu extended; the ATR does not announce them)".to_owned(),
                )
            }
        };
        let reason = match caps {
            Some(c) => format!(
                "{reason}; command chaining {}announced",
                if c.chaining() { "" } else { "not " }
            ),
            None => reason,
        };
        self.length = LengthPlan {
            extended,
            info: None,
            reason,
        };
        if extended && caps.is_some_and(length::CardCapabilities::extended_info) {
            let [cla, ins, p1, p2] = GET_EXTENDED_LENGTH_INFO;
            let r = self.transmit_plain(&Command::new(cla, ins, p1, p2).with_le(256))?;
            if r.status == StatusWord::SUCCESS {
                match length::parse_extended_length_info(&r.data) {
                    Ok(info) => self.length.info = Some(info),
                    Err(e) => {
                        let _ = writeln!(
                            self.warnings,
                            "mec gp: warning: GET DATA 7F66: {e}; no maximum length assumed"
                        );
                    }
                }
            }
        }
        let limits = self.length.info.map_or_else(String::new, |i| {
            format!(
                "; the card takes command APDUs of up to {} bytes and answers up to {} (7F66)",
                i.max_command, i.max_response
            )
        });
        self.tracer
            .comment(&format!("APDU length: {}{limits}", self.length.reason));
        Ok(())
    }

    /// The LOAD / STORE DATA block size for the open session (see
    /// [`LengthPlan::block_size`]).
    ///
    /// # Errors
    /// [`GpError::Usage`] when `requested` does not fit once wrapped.
    pub(crate) fn block_size(&mut self, requested: Option<usize>) -> Result<usize, GpError> {
        let wrapping = self.wrapping();
        let size = self
            .length
            .block_size(requested, wrapping)
            .map_err(GpError::Usage)?;
        self.tracer.comment(&format!(
            "block size {size} bytes ({}, {wrapping})",
            if self.length.extended {
                "extended APDUs"
            } else {
                "short APDUs"
            }
        ));
        Ok(size)
    }

    /// The hint for a 6700 (wrong length) answer to an extended APDU.
    pub(crate) fn wrong_length_hint(&self, sw: StatusWord) -> Option<String> {
        (sw == StatusWord::WRONG_LENGTH && self.last_extended).then(|| {
            format!(
                "the card refused an extended-length APDU ({}): it takes short APDUs only, or \
                 shorter ones; use --apdu short (or auto, which sends extended APDUs only to a \
                 card that announces them) or a smaller --block-size",
                self.length.reason
            )
        })
    }

    /// Write a comment line to the trace.
    pub(crate) fn trace_comment(&mut self, text: &str) {
        self.tracer.comment(text);
    }

    /// One command without secure messaging, through the exchange helper (61xx, 6Cxx,
    /// chaining), every APDU traced.
    ///
    /// # Errors
    /// Transport and codec errors; the status word is returned, not checked.
    pub(crate) fn transmit_plain(&mut self, command: &Command) -> Result<Response, GpError> {
        let config = if self.length.extended {
            ExchangeConfig::extended().with_max_data(self.length.data_limit())
        } else {
            ExchangeConfig::short()
        };
        let mut exchange = Exchange::new(command.clone(), config)?;
        loop {
            let Some(apdu) = exchange.poll_transmit().map(<[u8]>::to_vec) else {
                return Err(GpError::Usage("exchange ended without a response".into()));
            };
            self.tracer.command(&apdu);
            self.last_extended = apdu_codec::parse_command(&apdu).is_ok_and(|c| c.is_extended());
            let answer = self.transport.transmit(&apdu)?;
            self.tracer.response(&answer);
            if let Some(response) = exchange.handle_response(&answer)? {
                return Ok(response);
            }
        }
    }

    /// One command, inside the secure channel when one is open.
    ///
    /// # Errors
    /// Transport, codec and secure messaging errors (an R-MAC that does not verify).
    pub(crate) fn transmit(&mut self, command: &Command) -> Result<Response, GpError> {
        let Some(mut channel) = self.channel.take() else {
            return self.transmit_plain(command);
        };
        self.tracer.plain_command(&command.to_vec()?);
        let result = (|| {
            let wrapped = channel.wrap(command)?;
            let response = self.transmit_plain(&wrapped)?;
            let plain = channel.unwrap(&response)?;
            Ok::<Response, GpError>(plain)
        })();
        match result {
            Ok(plain) => {
                self.tracer.plain_response(&plain.to_vec());
                self.channel = Some(channel);
                Ok(plain)
            }
            // A secure messaging failure closes the channel (the card closes its side too).
            Err(e) => {
                self.session = None;
                Err(e)
            }
        }
    }

    /// A command that must answer 9000.
    ///
    /// # Errors
    /// [`GpError::Status`] naming `what` for any other status word.
    pub(crate) fn expect_ok(&mut self, what: &str, command: &Command) -> Result<Vec<u8>, GpError> {
        let r = self.transmit(command)?;
        if r.status == StatusWord::SUCCESS {
            Ok(r.data)
        } else if let Some(hint) = self.wrong_length_hint(r.status) {
            Err(GpError::Status {
                what: what.into(),
                sw: r.status,
                hint: Some(hint),
            })
        } else {
            Err(status_error(what, r.status))
        }
    }

    /// SELECT the security domain: `aid`, or the ISD by an empty SELECT. Returns the FCI.
    ///
    /// # Errors
    /// [`GpError::Status`] when the card refuses, [`GpError::Command`] for a bad FCI.
    pub(crate) fn select_sd(&mut self, aid: Option<&Aid>) -> Result<Option<select::Fci>, GpError> {
        let command = match aid {
            Some(a) => select::select(a),
            None => select::select_isd(),
        };
        self.channel = None;
        self.session = None;
        let r = self.transmit_plain(&command)?;
        if r.status.to_u16() == 0x6283 {
            // GPC 2.3 §11.9.3: the ISD of a locked card is selected with a warning.
            self.tracer
                .comment("6283: selected, but the card or domain is locked");
        } else if r.status != StatusWord::SUCCESS {
            return Err(status_error(
                &match aid {
                    Some(a) => format!("SELECT {a}"),
                    None => "SELECT (issuer security domain)".into(),
                },
                r.status,
            ));
        }
        let fci = select::parse_fci(&r.data).ok();
        self.sd_channels = fci
            .as_ref()
            .and_then(|f| f.management().ok())
            .map(|m| m.secure_channels)
            .unwrap_or_default();
        self.sd = match (&fci, aid) {
            (Some(f), _) => Some(f.aid),
            (None, Some(a)) => Some(*a),
            (None, None) => None,
        };
        Ok(fci)
    }

    /// GET DATA: `Ok(None)` when the card does not have the object (6A88, 6A82, 6A86, 6D00).
    ///
    /// # Errors
    /// Transport errors and other status words.
    pub(crate) fn get_data(&mut self, tag: u16) -> Result<Option<Vec<u8>>, GpError> {
        self.get_data_command(&get_data::get_data(Tag::new(u32::from(tag))), tag)
    }

    fn get_data_command(
        &mut self,
        command: &Command,
        tag: u16,
    ) -> Result<Option<Vec<u8>>, GpError> {
        let r = self.transmit(command)?;
        match r.status {
            StatusWord::SUCCESS => Ok(Some(r.data)),
            sw if matches!(sw.to_u16(), 0x6A88 | 0x6A82 | 0x6A86 | 0x6D00 | 0x6A81) => Ok(None),
            sw => Err(status_error(&format!("GET DATA {tag:04X}"), sw)),
        }
    }

    /// Open a secure channel to the selected security domain. Never retries an
    /// authentication: one INITIALIZE UPDATE (or INTERNAL AUTHENTICATE) per call, except
    /// for an S16 card that refused an 8-byte challenge with 6700 before counting anything.
    ///
    /// # Errors
    /// [`GpError::Blocked`] on 6983, [`GpError::Authentication`] on a card cryptogram
    /// mismatch, [`GpError::HostCryptogram`] when the card refuses the host cryptogram,
    /// [`GpError::Status`] for other refusals.
    pub(crate) fn open(&mut self, keys: &AuthOptions) -> Result<SessionInfo, GpError> {
        self.channel = None;
        self.session = None;
        let info = match keys.scp {
            Some(ScpChoice::Scp11b) => self.open_scp11b(keys)?,
            other => self.open_symmetric(keys, other)?,
        };
        self.session = Some(info.clone());
        Ok(info)
    }

    fn key_set(&self, keys: &AuthOptions, key_type: KeyType) -> Result<KeySet, GpError> {
        KeySet::new(
            keys.kvn,
            key_type,
            keys.enc.as_bytes(),
            keys.mac.as_bytes(),
            keys.dek.as_bytes(),
        )
        .map_err(|e| {
            GpError::Usage(format!(
                "the keys do not fit {}: {e} (SCP02 takes 16-byte DES keys, SCP03 16/24/32-byte AES keys)",
                if key_type == KeyType::Des {
                    "SCP02"
                } else {
                    "SCP03"
                }
            ))
        })
    }

    fn sd_name(&self) -> String {
        self.sd
            .map_or_else(|| "(selected domain)".into(), |a| a.to_string())
    }

    fn challenge(&mut self, keys: &AuthOptions, len: usize) -> Vec<u8> {
        match &keys.host_challenge {
            Some(c) => c.clone(),
            None => {
                let mut c = vec![0u8; len];
                self.rng.fill_bytes(&mut c);
                c
            }
        }
    }

    fn initialize_update(&mut self, kvn: u8, challenge: &[u8]) -> Result<Response, GpError> {
        let iu = Command::new(0x80, INS_INITIALIZE_UPDATE, kvn, 0x00)
            .with_data(challenge.to_vec())
            .with_le(256);
        self.auth_attempts += 1;
        self.transmit_plain(&iu)
    }

    fn open_symmetric(
        &mut self,
        keys: &AuthOptions,
        choice: Option<ScpChoice>,
    ) -> Result<SessionInfo, GpError> {
        if let Some(c) = &keys.host_challenge
            && c.len() != 8
            && c.len() != 16
        {
            return Err(GpError::Usage(
                "--host-challenge must be 8 bytes (16 for SCP03 S16)".into(),
            ));
        }
        // The FCI's security domain management data names the protocol and its `i`: an SCP03
        // domain in S16 mode (i bit 01, Amd D §5.1) gets a 16-byte challenge right away.
        let announced = |scp: u8| self.sd_channels.iter().find(|c| c.scp == scp).map(|c| c.i);
        let s16 = choice != Some(ScpChoice::Scp02)
            && announced(SCP03).is_some_and(|i| i & 0x01 != 0)
            && announced(SCP02).is_none();
        let scp02_i = announced(SCP02);
        let mut challenge = self.challenge(keys, if s16 { 16 } else { 8 });
        let mut r = self.initialize_update(keys.kvn, &challenge)?;
        // An SCP03 card in S16 mode refuses an 8-byte challenge by its length (6700) before
        // looking at keys or counters: send the 16-byte challenge S16 expects. Not a retry of
        // an authentication: the card has counted nothing.
        if r.status == StatusWord::WRONG_LENGTH
            && challenge.len() == 8
            && keys.host_challenge.is_none()
            && choice != Some(ScpChoice::Scp02)
        {
            self.tracer
                .comment("6700 to an 8-byte challenge: SCP03 S16 card, sending 16 bytes");
            challenge = self.challenge(keys, 16);
            r = self.initialize_update(keys.kvn, &challenge)?;
        }
        match r.status {
            StatusWord::SUCCESS => {}
            sw if sw.to_u16() == 0x6983 => {
                return Err(GpError::Blocked { sd: self.sd_name() });
            }
            sw if sw.to_u16() == 0x6A88 => {
                return Err(GpError::Status {
                    what: "INITIALIZE UPDATE".into(),
                    sw,
                    hint: Some(format!(
                        "the domain has no key set with version {:02X}: list the key versions with `mec gp info` and pick one with --kvn (00 = the card's default)",
                        keys.kvn
                    )),
                });
            }
            sw if sw.to_u16() == 0x6D00 => {
                return Err(GpError::Status {
                    what: "INITIALIZE UPDATE".into(),
                    sw,
                    hint: Some("the domain runs no SCP02/SCP03 (try --scp 11b)".into()),
                });
            }
            sw => return Err(status_error("INITIALIZE UPDATE", sw)),
        }
        let scp_id = r.data.get(11).copied().unwrap_or(0);
        let card_scp = match scp_id {
            SCP02 => ScpChoice::Scp02,
            SCP03 => ScpChoice::Scp03,
            other => {
                return Err(GpError::Usage(format!(
                    "INITIALIZE UPDATE: the card answered SCP identifier {other:02X}, which mec gp does not run (02 and 03)"
                )));
            }
        };
        if let Some(wanted) = choice
            && wanted != card_scp
        {
            return Err(GpError::Usage(format!(
                "--scp {} was given but the card answered INITIALIZE UPDATE for SCP{scp_id:02X}; drop --scp or use --scp {scp_id:02}",
                match wanted {
                    ScpChoice::Scp02 => "02",
                    ScpChoice::Scp03 => "03",
                    ScpChoice::Scp11b => "11b",
                },
            )));
        }
        let view = parse_response(&r.to_vec())?.to_response();
        let view = view.view();
        let mut kdd = [0u8; 10];
        if let Some(k) = r.data.get(..10) {
            kdd.copy_from_slice(k);
        }
        let auth_error = |e: gp_scp::Error| match e {
            gp_scp::Error::CardCryptogram(failure) => GpError::Authentication {
                failure,
                default_keys: keys.default_keys,
            },
            gp_scp::Error::KeyType(why) => GpError::Usage(format!(
                "--kdf {}: {why} (EMV and VISA2 diversify DES keys, KDF3 AES keys)",
                keys.kdf
            )),
            other => GpError::from(other),
        };
        match card_scp {
            ScpChoice::Scp02 => {
                let level = SecurityLevel::scp02(keys.level.to_byte()).map_err(|_| {
                    GpError::Usage(format!(
                        "SCP02 has no security level {:02X} (use mac, mac+enc or mac+enc+rmac)",
                        keys.level.to_byte()
                    ))
                })?;
                let mut hc = [0u8; 8];
                if challenge.len() != 8 {
                    return Err(GpError::Usage(
                        "SCP02 takes an 8-byte --host-challenge".into(),
                    ));
                }
                hc.copy_from_slice(&challenge);
                let config = Scp02HostConfig {
                    key_version: keys.kvn,
                    level,
                    option: scp02_i
                        .and_then(|i| Scp02Option::new(i).ok())
                        .unwrap_or(Scp02Option::I55),
                    diversification: keys.kdf,
                };
                let host = Scp02Host::new(self.key_set(keys, KeyType::Des)?, config, hc)?;
                let pending = host.process_initialize_update(&view).map_err(auth_error)?;
                let info = pending.card_info();
                let session_info = SessionInfo {
                    scp: "02".into(),
                    i: Some(
                        scp02_i
                            .filter(|i| Scp02Option::new(*i).is_ok())
                            .unwrap_or(0x55),
                    ),
                    key_version: info.key_version,
                    level: level.to_byte(),
                    kdd: Some(kdd),
                    sequence_counter: Some(u32::from(u16::from_be_bytes(info.sequence_counter))),
                };
                let ea = pending.external_authenticate().clone();
                let r = self.transmit_plain(&ea)?;
                if r.status != StatusWord::SUCCESS {
                    return Err(GpError::HostCryptogram(r.status));
                }
                let session = pending
                    .process_external_authenticate(&r.view())
                    .map_err(GpError::from)?;
                self.channel = Some(Channel::Scp02(session));
                Ok(session_info)
            }
            _ => {
                let config = Scp03HostConfig {
                    key_version: keys.kvn,
                    level: keys.level,
                    s16: challenge.len() == 16,
                    diversification: keys.kdf,
                };
                let host = Scp03Host::new(self.key_set(keys, KeyType::Aes)?, config, &challenge)?;
                let pending = host.process_initialize_update(&view).map_err(auth_error)?;
                let info = pending.card_info();
                let session_info = SessionInfo {
                    scp: "03".into(),
                    i: r.data.get(12).copied(),
                    key_version: r.data.get(10).copied().unwrap_or(0),
                    level: keys.level.to_byte(),
                    kdd: Some(kdd),
                    sequence_counter: info
                        .sequence_counter
                        .map(|c| u32::from_be_bytes([0, c[0], c[1], c[2]])),
                };
                let ea = pending.external_authenticate().clone();
                let r = self.transmit_plain(&ea)?;
                if r.status != StatusWord::SUCCESS {
                    return Err(GpError::HostCryptogram(r.status));
                }
                let session = pending
                    .process_external_authenticate(&r.view())
                    .map_err(GpError::from)?;
                self.channel = Some(Channel::Scp03(session));
                Ok(session_info)
            }
        }
    }

    fn open_scp11b(&mut self, keys: &AuthOptions) -> Result<SessionInfo, GpError> {
        let version = if keys.kvn == 0 { 0x01 } else { keys.kvn };
        let store = self
            .get_data_command(
                &get_data::get_certificate_store(Some(KeyReference {
                    id: SCP11B_KEY_ID,
                    version,
                })),
                0xBF21,
            )?
            .ok_or_else(|| GpError::Status {
                what: "GET DATA BF21 (certificate store)".into(),
                sw: StatusWord::REFERENCED_DATA_NOT_FOUND,
                hint: Some(format!(
                    "the domain has no SCP11b certificate for key 13 version {version:02X} (check --kvn, or use --scp 03)"
                )),
            })?;
        let certificates = get_data::parse_certificate_store(&store)?;
        let card_key = self.authenticate_sd_key(&certificates, &keys.scp11)?;
        let config = Scp11HostConfig {
            key_version: version,
            key_id: SCP11B_KEY_ID,
            card_key,
        };
        let host = Scp11bHost::new(config, &[card_key], &mut self.rng)?;
        let ia = host.internal_authenticate();
        self.auth_attempts += 1;
        let r = self.transmit_plain(&ia)?;
        match r.status {
            StatusWord::SUCCESS => {}
            sw if sw.to_u16() == 0x6983 => return Err(GpError::Blocked { sd: self.sd_name() }),
            sw => return Err(status_error("INTERNAL AUTHENTICATE (SCP11b)", sw)),
        }
        let session = host.process_internal_authenticate(&r.view())?;
        self.channel = Some(Channel::Scp11(session));
        Ok(SessionInfo {
            scp: "11b".into(),
            i: None,
            key_version: version,
            level: SecurityLevel::ALL.to_byte(),
            kdd: None,
            sequence_counter: None,
        })
    }

    /// PK.SD from the certificate store (root-most first, the SD's certificate last),
    /// authenticated as `trust` says. Without `--ca` and `--sd-key` the key is taken as the
    /// card presents it (as GlobalPlatformPro does without a CA) and a warning is printed.
    pub(super) fn authenticate_sd_key(
        &mut self,
        certificates: &[&[u8]],
        trust: &Scp11Trust,
    ) -> Result<p256::PublicKey, GpError> {
        let Some(last) = certificates.last() else {
            // The card's doing, not the command line's: exit 3 like any untrusted SD key.
            return Err(GpError::Untrusted(
                "the card's certificate store (GET DATA BF21) holds no certificate: its key \
                 PK.SD cannot be read"
                    .into(),
            ));
        };
        let sd_key = if trust.anchors.is_empty() {
            gp_scp::scp11::public_key_from_certificate(last)?
        } else {
            let key = verify_chain(certificates, &trust.anchors, trust.now).map_err(|e| {
                GpError::Untrusted(match e {
                    gp_scp::Error::Certificate(c) => {
                        format!("the card's certificate chain does not verify against --ca: {c}")
                    }
                    other => other.to_string(),
                })
            })?;
            self.tracer.comment(&format!(
                "SCP11b: certificate chain ({} certificate(s)) verified against --ca",
                certificates.len()
            ));
            key
        };
        if let Some(pinned) = &trust.pinned {
            if *pinned != sd_key {
                return Err(GpError::Untrusted(format!(
                    "the card's key PK.SD {} is not the pinned --sd-key {}",
                    point_hex(&sd_key),
                    point_hex(pinned)
                )));
            }
            self.tracer.comment("SCP11b: PK.SD is the pinned --sd-key");
        }
        if trust.anchors.is_empty() && trust.pinned.is_none() {
            self.tracer
                .comment("SCP11b: PK.SD taken from the card's certificate (chain not verified)");
            let _ = writeln!(
                self.warnings,
                "mec gp: warning: SCP11b: the card's key was not authenticated (no --ca or \
                 --sd-key): the session is encrypted, but possibly with an impostor"
            );
        }
        Ok(sd_key)
    }

    /// The session DEK and its type (for PUT KEY).
    pub(crate) fn dek(&self) -> Option<(SecretKey, KeyType)> {
        self.channel.as_ref().map(|c| {
            let (k, t) = c.dek();
            (k.clone(), t)
        })
    }

    /// GET STATUS for one subset: tagged format first, falling back to the legacy format
    /// when the card refuses it (6A86 / 6A80 / 6D00), following 6310 pages.
    ///
    /// # Errors
    /// Status words other than 9000/6310/6A88 and malformed answers.
    pub(crate) fn get_status(
        &mut self,
        subset: StatusSubset,
    ) -> Result<Vec<RegistryEntry>, GpError> {
        let mut format = ResponseFormat::Tagged;
        let mut out = Vec::new();
        let mut request = GetStatus::new(subset).with_format(format);
        loop {
            let r = self.transmit(&request.to_command()?)?;
            if !request.next
                && format == ResponseFormat::Tagged
                && matches!(r.status.to_u16(), 0x6A86 | 0x6A80 | 0x6D00 | 0x6E00)
            {
                self.tracer
                    .comment("tagged GET STATUS refused: falling back to the legacy format");
                format = ResponseFormat::Legacy;
                request = GetStatus::new(subset).with_format(format);
                continue;
            }
            if r.status.to_u16() == 0x6A88 && !request.next {
                return Ok(out);
            }
            let page =
                parse_get_status_page(subset, format, &r.data, r.status).map_err(|e| match e {
                    CommandError::Status(sw) => {
                        status_error(&format!("GET STATUS P1={:02X}", subset.p1()), sw)
                    }
                    other => GpError::Command(other),
                })?;
            out.extend(page.entries);
            if !page.more {
                return Ok(out);
            }
            request = request.next_occurrence();
        }
    }
}

/// A P-256 public key as uncompressed hex (04 || X || Y).
pub(crate) fn point_hex(key: &p256::PublicKey) -> String {
    use p256::elliptic_curve::sec1::ToSec1Point;
    hex::encode_upper(key.to_sec1_point(false).as_bytes())
}

/// The error for a status word, with hints for the common ones.
pub(crate) fn status_error(what: &str, sw: StatusWord) -> GpError {
    let hint = match sw.to_u16() {
        0x6982 => Some(
            "security status not satisfied: this needs an authenticated session (or a higher --security level)",
        ),
        0x6985 => Some(
            "conditions of use not satisfied: the object's state or the card's life cycle does not allow it (AID already in use, locked, ...)",
        ),
        0x6A88 => Some("referenced data not found: no such AID, key or object on the card"),
        0x6A80 => Some("the card found the data field malformed"),
        0x6A84 => Some("not enough memory on the card"),
        0x6983 => Some("authentication blocked"),
        0x6D00 => Some("instruction not supported by the selected application"),
        _ => None,
    };
    GpError::Status {
        what: what.into(),
        sw,
        hint: hint.map(str::to_owned),
    }
}
