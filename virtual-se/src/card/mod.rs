//! The card runtime: a GlobalPlatform card with an issuer security domain, supplementary
//! security domains, applets, logical channels 0-3 and per-domain secure channels, persisted
//! through a [`Store`].
//!
//! Every APDU is one [`Transaction`]: its persistent effects are committed at the end of the
//! command, all together, or not at all (a failing command commits nothing, except the
//! counters of INITIALIZE UPDATE and failed authentications, which GlobalPlatform requires to
//! persist).
//!
//! ```
//! use gp_scp::keys::{KeySet, KeyType, danger_test_keys::K40};
//! use gp_scp::{HostProtocol, HostSession, HostStep};
//! use rand_core::SeedableRng;
//! use virtual_se::applet::Packages;
//! use virtual_se::card::Card;
//! use virtual_se::profile::Profile;
//! use virtual_se::store::MemoryStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A developer card (SCP03 i=70, keys 404142..4F) in memory; the seed drives its randomness.
//! let profile = Profile::default_profile()?;
//! let mut card = Card::open(MemoryStore::new(), &profile, Packages::builtin(), [0; 32])?;
//! card.power_on();
//! let fci = card.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x00]); // SELECT the ISD
//! assert_eq!(&fci[fci.len() - 2..], &[0x90, 0x00]);
//!
//! // Open an SCP03 session (level 33) with gp-scp's host side and list the registry.
//! let keys = KeySet::single(0xFF, KeyType::Aes, &K40)?;
//! let mut rng = chacha20::ChaCha20Rng::from_seed([1; 32]);
//! let mut host = HostSession::new(keys, HostProtocol::Scp03(Default::default()), &mut rng)?;
//! let mut step = HostStep::Send(host.begin()?);
//! while let HostStep::Send(cmd) = step {
//!     let response = card.transmit(&cmd.to_vec()?);
//!     step = host.process(&apdu_codec::parse_response(&response)?)?;
//! }
//! let get_status = apdu_codec::Command::new(0x80, 0xF2, 0x20, 0x02).with_data(vec![0x4F, 0x00]);
//! let response = card.transmit(&host.wrap(&get_status)?.to_vec()?);
//! let registry = host.unwrap(&apdu_codec::parse_response(&response)?)?;
//! assert!(registry.view().status().is_success()); // the built-in packages' load files
//! # Ok(())
//! # }
//! ```

#[doc(hidden)]
pub mod fuzz;
mod gp;
pub(crate) mod model;
mod session;

use std::collections::BTreeMap;
use std::fmt;

use apdu_codec::{CommandView, Response, StatusWord, parse_command};
use chacha20::ChaCha20Rng;
use gp_scp::cmd::select::{self, Fci, Occurrence, SelectResponse};
use gp_scp::cmd::{Aid, CommandError};
use rand_core::{Rng, SeedableRng};

pub use model::{
    EntryKind, KeyRecord, ModelError, RegistryEntry, Scp, app_lifecycle, card_lifecycle,
};

use crate::applet::{Applet, AppletContext, AppletStorage, Packages};
use crate::store::{Store, StoreError, Transaction};
use gp::{Env, ManagementState};
use model::{CardState, EntryKind as Kind, app_prefix};
use session::{Pending, Session};

/// Largest command reassembled from a chain (the extended-length maximum).
const MAX_CHAINED: usize = apdu_codec::MAX_EXTENDED_DATA;

/// Logical channels the card supports (ISO 7816-4 §5.1.1.2: basic channel 0 and 1-3).
pub const LOGICAL_CHANNELS: usize = 4;

/// How GET DATA E0 (key information) and BF21 (certificate store) are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyInfoFormat {
    /// GlobalPlatform style: with the outer `E0` / `BF21` tag (GPShell, GlobalPlatformPro).
    #[default]
    GlobalPlatform,
    /// yubikit style: the `C0` entries / DER certificates without the outer tag.
    Bare,
}

/// Card options that are not persistent state (they come from the profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardOptions {
    /// Answer to reset.
    pub atr: Vec<u8>,
    /// E0 / BF21 response format.
    pub key_info_format: KeyInfoFormat,
    /// Failed authentications after which INITIALIZE UPDATE answers 6983 (0 = no limit).
    pub failure_limit: u16,
    /// Extended-length APDUs: accepted without announcing it (the default), refused, or
    /// accepted and announced (see [`ExtendedLength`]).
    pub extended_length: ExtendedLength,
}

/// Whether the card takes extended-length APDUs (ISO/IEC 7816-4 §5.1: Lc on 3 bytes, Le on
/// 2 or 3) and what it tells the host about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExtendedLength {
    /// Accepted, but nothing announces it (the ATR is the profile's; no GET DATA 7F66).
    #[default]
    Unannounced,
    /// Refused: any extended-length command APDU is answered 6700 (wrong length).
    Refused,
    /// Accepted and announced: the profile's ATR should carry the card capabilities (compact
    /// TLV 73, third byte b7 set); GET DATA 7F66 answers the extended length information when
    /// `max_command` / `max_response` are given, and a longer command APDU is answered 6700.
    Announced {
        /// Most bytes in a command APDU (header, Lc, data, Le), if limited.
        max_command: Option<u32>,
        /// Most bytes in a response APDU (data and SW1-SW2), if announced.
        max_response: Option<u32>,
    },
}

impl Default for CardOptions {
    fn default() -> Self {
        Self {
            atr: DEFAULT_ATR.to_vec(),
            key_info_format: KeyInfoFormat::GlobalPlatform,
            failure_limit: 10,
            extended_length: ExtendedLength::Unannounced,
        }
    }
}

/// A T=1 ATR (ISO 7816-3 §8.2): T0 = F8 (TA1..TD1 present, 8 historical bytes "mecvSE01"),
/// TA1 = 13, TD1/TD2 = T=1, TA3 = FE (IFSC 254), TB3 = 45, TCK = EA. `ATR[1] & F0 == F0`
/// makes yubikit use extended APDUs.
pub const DEFAULT_ATR: &[u8] = &[
    0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x6D, 0x65, 0x63, 0x76, 0x53, 0x45, 0x30,
    0x31, 0xEA,
];

/// A view of an applet's namespace in the current command's transaction.
pub(crate) struct TxStorage<'t, 's, S: Store> {
    tx: &'t mut Transaction<'s, S>,
    prefix: Vec<u8>,
}

impl<'t, 's, S: Store> TxStorage<'t, 's, S> {
    pub(crate) fn new(tx: &'t mut Transaction<'s, S>, prefix: Vec<u8>) -> Self {
        Self { tx, prefix }
    }

    fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        k
    }
}

impl<S: Store> AppletStorage for TxStorage<'_, '_, S> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tx.read(&self.key(key))
    }
    fn scan(&self) -> Result<crate::applet::Records, StoreError> {
        let n = self.prefix.len();
        Ok(self
            .tx
            .scan_prefix(&self.prefix)?
            .into_iter()
            .map(|(k, v)| (k.get(n..).unwrap_or_default().to_vec(), v))
            .collect())
    }
    fn write(&mut self, key: &[u8], value: &[u8]) {
        let k = self.key(key);
        self.tx.put(k, value.to_vec());
    }
    fn remove(&mut self, key: &[u8]) {
        let k = self.key(key);
        self.tx.delete(k);
    }
    fn begin_nested(&mut self) -> Result<(), StoreError> {
        self.tx.begin_nested()
    }
    fn commit_nested(&mut self) -> Result<(), StoreError> {
        self.tx.commit_nested()
    }
    fn abort_nested(&mut self) -> Result<(), StoreError> {
        self.tx.abort_nested()
    }
}

/// Transient state of one open logical channel.
#[derive(Debug, Default)]
struct Channel {
    /// AID of the selected application or security domain.
    selected: Option<Vec<u8>>,
    /// Open secure channel session (bound to the selected SD).
    session: Option<Session>,
    /// Handshake in progress.
    pending: Option<Pending>,
    /// Card-management state (personalization target, LOAD, GET STATUS paging).
    mgmt: ManagementState,
    /// Rest of a response for GET RESPONSE (61xx).
    pending_response: Vec<u8>,
    /// Command chaining in progress (ISO 7816-4 §5.1.1.1): header (CLA without the chaining
    /// bit, INS, P1, P2) and the data so far.
    chain: Option<([u8; 4], Vec<u8>)>,
}

impl Channel {
    fn close_session(&mut self) {
        self.session = None;
        self.pending = None;
        self.mgmt = ManagementState::default();
    }
}

/// Errors of opening a card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored card state does not decode.
    #[error("card state: {0}")]
    Model(#[from] ModelError),
    /// The profile is invalid.
    #[error("profile: {0}")]
    Profile(#[from] crate::profile::ProfileError),
}

/// A virtual GlobalPlatform card over a store.
pub struct Card<S: Store> {
    store: S,
    state: CardState,
    options: CardOptions,
    packages: Packages,
    channels: [Option<Channel>; LOGICAL_CHANNELS],
    instances: BTreeMap<Vec<u8>, Box<dyn Applet>>,
    rng: ChaCha20Rng,
    powered: bool,
    /// Whether the last APDU committed persistent changes.
    last_committed: bool,
}

impl<S: Store> fmt::Debug for Card<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field(
                "lifecycle",
                &format_args!("{:02X}", self.state.card.lifecycle),
            )
            .field("entries", &self.state.entries.len())
            .field("powered", &self.powered)
            .finish_non_exhaustive()
    }
}

fn empty_channels() -> [Option<Channel>; LOGICAL_CHANNELS] {
    [None, None, None, None]
}

impl<S: Store> Card<S> {
    /// Open a card on a store: if the store holds a card, load it (the profile's static
    /// options still apply: ATR, response formats, failure limit); otherwise personalize the
    /// store from the profile in one committed batch.
    ///
    /// `seed` drives the card's random numbers (card challenges, SCP11 ephemeral keys), so the
    /// same seed gives the same transcript.
    ///
    /// # Errors
    /// [`CardError`] when the store cannot be read or written, its records do not decode, or
    /// the profile is invalid.
    pub fn open(
        mut store: S,
        profile: &crate::profile::Profile,
        packages: Packages,
        seed: [u8; 32],
    ) -> Result<Self, CardError> {
        let state = match CardState::load(&store) {
            Ok(s) => s,
            Err(ModelError::Missing) => {
                let state = profile.card_state(&packages)?;
                let mut tx = Transaction::new(&mut store);
                state.write_all(&mut tx);
                tx.commit()?;
                state
            }
            Err(e) => return Err(e.into()),
        };
        let options = profile.options()?;
        Ok(Self {
            store,
            state,
            options,
            packages,
            channels: empty_channels(),
            instances: BTreeMap::new(),
            rng: ChaCha20Rng::from_seed(seed),
            powered: false,
            last_committed: false,
        })
    }

    /// The answer to reset.
    #[must_use]
    pub fn atr(&self) -> &[u8] {
        &self.options.atr
    }

    /// Power the card on (cold reset): clears all transient state, opens the basic channel
    /// with the ISD selected. Returns the ATR.
    pub fn power_on(&mut self) -> &[u8] {
        self.reset();
        &self.options.atr
    }

    /// Power off: transient state (selections, secure channels, applet transient data) is lost.
    pub fn power_off(&mut self) {
        self.channels = empty_channels();
        self.instances.clear();
        self.powered = false;
    }

    /// Warm reset: like power off then on.
    pub fn reset(&mut self) {
        self.power_off();
        let basic = Channel {
            selected: Some(self.state.card.isd.clone()),
            ..Channel::default()
        };
        self.channels[0] = Some(basic);
        self.powered = true;
    }

    /// The store (to inspect it in tests, or hand it to a new card after a simulated crash).
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Give the store back.
    #[must_use]
    pub fn into_store(self) -> S {
        self.store
    }

    /// The registry in GET STATUS order.
    #[must_use]
    pub fn registry(&self) -> Vec<RegistryEntry> {
        self.state.ordered().into_iter().cloned().collect()
    }

    /// The card life cycle state.
    #[must_use]
    pub fn lifecycle(&self) -> u8 {
        self.state.card.lifecycle
    }

    /// Keys held by a security domain (redacted `Debug`).
    #[must_use]
    pub fn keys(&self, sd: &[u8]) -> Vec<KeyRecord> {
        self.state
            .domains
            .get(sd)
            .map(|d| d.keys.clone())
            .unwrap_or_default()
    }

    /// Sequence counter and failed-authentication count of a security domain.
    #[must_use]
    pub fn counters(&self, sd: &[u8]) -> Option<(u32, u16)> {
        self.state
            .domains
            .get(sd)
            .map(|d| (d.sequence_counter, d.failures))
    }

    /// A digest of the whole persistent state as committed (for "state unchanged" checks):
    /// every record of the store, sorted.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub fn persistent_snapshot(&self) -> Result<crate::applet::Records, StoreError> {
        self.store.scan_prefix(b"")
    }

    /// Check the registry invariants (every entry's SD exists and is an SD, instances point to
    /// load files, SD records match SD entries, AID lengths, life cycle codes) and that the
    /// in-memory mirror equals the committed store.
    ///
    /// # Errors
    /// A description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.state.check_invariants()?;
        let committed = CardState::load(&self.store).map_err(|e| e.to_string())?;
        if committed != self.state {
            return Err("in-memory card state differs from the committed store".into());
        }
        Ok(())
    }

    /// Process one command APDU and return the response APDU (`data || SW1 SW2`).
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        if !self.powered {
            self.reset();
        }
        self.last_committed = false;
        self.process(apdu).to_vec()
    }

    fn process(&mut self, raw: &[u8]) -> Response {
        let cmd = match parse_command(raw) {
            Ok(c) => c,
            Err(e) => return Response::status_only(StatusWord::from(&e)),
        };
        // ISO/IEC 7816-4 §5.1: a card without extended Lc/Le (or a command longer than the
        // card's extended length information says) answers wrong length.
        match self.options.extended_length {
            ExtendedLength::Refused if cmd.is_extended() => {
                return StatusWord::WRONG_LENGTH.into();
            }
            ExtendedLength::Announced {
                max_command: Some(max),
                ..
            } if u32::try_from(raw.len()).map_or(true, |n| n > max) => {
                return StatusWord::WRONG_LENGTH.into();
            }
            _ => {}
        }
        let cla = cmd.cla();
        // ISO/IEC 7816-4 §5.4.1: FF is invalid and 2X/3X are reserved; GPC 2.3 §11.1.4 defines
        // no class in AX/BX (GSM's A0 is not a GlobalPlatform class). All answer 6E00.
        if cla.is_invalid() || cla.0 & 0x60 == 0x20 {
            return StatusWord::CLA_NOT_SUPPORTED.into();
        }
        let ch = usize::from(cla.logical_channel());
        if ch >= LOGICAL_CHANNELS || self.channels.get(ch).is_none_or(Option::is_none) {
            return StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED.into();
        }
        // ISO 7816-4 §5.1.1.1 command chaining: collect the pieces, then process the whole
        // command (secure messaging is removed from the reassembled command).
        let header = [cla.0 & !0x10, cmd.ins(), cmd.p1(), cmd.p2()];
        let Some(channel) = self.channel_mut(ch) else {
            return StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED.into();
        };
        if cla.is_chained() {
            let chain = channel.chain.get_or_insert_with(|| (header, Vec::new()));
            if chain.0 != header {
                channel.chain = None;
                return StatusWord::LAST_COMMAND_EXPECTED.into();
            }
            if chain.1.len().saturating_add(cmd.data().len()) > MAX_CHAINED {
                channel.chain = None;
                return StatusWord::WRONG_LENGTH.into();
            }
            chain.1.extend_from_slice(cmd.data());
            return StatusWord::SUCCESS.into();
        }
        let short_host = !cmd.is_extended();
        let whole;
        let cmd = match channel.chain.take() {
            None => cmd,
            Some((h, _)) if h != header => return StatusWord::LAST_COMMAND_EXPECTED.into(),
            Some((_, mut data)) => {
                data.extend_from_slice(cmd.data());
                if data.len() > MAX_CHAINED {
                    return StatusWord::WRONG_LENGTH.into();
                }
                let mut full = apdu_codec::Command::new(header[0], header[1], header[2], header[3]);
                if !data.is_empty() {
                    full = full.with_data(data);
                }
                if let Some(le) = cmd.le() {
                    full = full.with_le(le);
                }
                whole = match full.to_vec() {
                    Ok(b) => b,
                    Err(_) => return StatusWord::WRONG_LENGTH.into(),
                };
                match parse_command(&whole) {
                    Ok(v) => v,
                    Err(e) => return Response::status_only(StatusWord::from(&e)),
                }
            }
        };
        let response = self.dispatch(ch, &cmd);
        self.chunk(ch, short_host, cmd.ins(), response)
    }

    /// Split a response longer than a short Le allows into 61xx + GET RESPONSE.
    fn chunk(&mut self, ch: usize, short_host: bool, ins: u8, response: Response) -> Response {
        if ins == apdu_codec::ins::GET_RESPONSE {
            // GET RESPONSE manages the pending rest itself.
            return response;
        }
        let Some(Some(channel)) = self.channels.get_mut(ch) else {
            return response;
        };
        channel.pending_response.clear();
        let data = response.view().data();
        if !short_host || data.len() <= 256 || ins == apdu_codec::ins::GET_RESPONSE {
            return response;
        }
        let mut full = data.to_vec();
        full.extend_from_slice(&response.view().status().to_bytes());
        let rest = full.split_off(256);
        let remaining = rest.len().saturating_sub(2);
        channel.pending_response = rest;
        Response::new(
            full,
            StatusWord::new(0x61, u8::try_from(remaining.min(256)).unwrap_or(0)),
        )
    }

    fn dispatch(&mut self, ch: usize, cmd: &CommandView<'_>) -> Response {
        let ins = cmd.ins();
        let cla = cmd.cla();
        let lifecycle = self.state.card.lifecycle;
        if ins == apdu_codec::ins::GET_RESPONSE && !cla.is_proprietary() {
            return self.get_response(ch, cmd);
        }
        if ins == apdu_codec::ins::MANAGE_CHANNEL && !cla.is_proprietary() {
            return self.manage_channel(ch, cmd);
        }
        if ins == apdu_codec::ins::SELECT && !cla.is_proprietary() && !cla.has_secure_messaging() {
            return self.select(ch, cmd);
        }
        let Some(selected) = self.channel(ch).and_then(|c| c.selected.clone()) else {
            // No application selected on this channel.
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        let Some(entry) = self.state.entries.get(&selected) else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        if lifecycle == card_lifecycle::TERMINATED && ins != apdu_codec::ins::GET_DATA {
            // GPC 2.3 §5.1.1.5: a terminated card answers GET DATA only.
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        }
        if entry.kind.is_security_domain() {
            self.sd_command(ch, &selected, cmd)
        } else {
            self.applet_command(ch, &selected, cmd)
        }
    }

    fn channel(&self, ch: usize) -> Option<&Channel> {
        self.channels.get(ch).and_then(Option::as_ref)
    }

    fn channel_mut(&mut self, ch: usize) -> Option<&mut Channel> {
        self.channels.get_mut(ch).and_then(Option::as_mut)
    }

    fn get_response(&mut self, ch: usize, cmd: &CommandView<'_>) -> Response {
        if cmd.p1() != 0 || cmd.p2() != 0 || !cmd.data().is_empty() {
            return StatusWord::INCORRECT_P1_P2.into();
        }
        let Some(channel) = self.channel_mut(ch) else {
            return StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED.into();
        };
        if channel.pending_response.len() < 2 {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        }
        let le = cmd.le().unwrap_or(256).min(256);
        let available = channel.pending_response.len() - 2;
        let take = le.min(available);
        let mut rest = channel.pending_response.split_off(take);
        let data = std::mem::take(&mut channel.pending_response);
        if rest.len() > 2 {
            let remaining = rest.len() - 2;
            channel.pending_response = rest;
            Response::new(
                data,
                StatusWord::new(0x61, u8::try_from(remaining.min(256)).unwrap_or(0)),
            )
        } else {
            let sw = match rest.as_slice() {
                [a, b] => StatusWord::new(*a, *b),
                _ => StatusWord::SUCCESS,
            };
            rest.clear();
            Response::new(data, sw)
        }
    }

    fn manage_channel(&mut self, ch: usize, cmd: &CommandView<'_>) -> Response {
        if cmd.cla().has_secure_messaging() {
            return StatusWord::SECURE_MESSAGING_NOT_SUPPORTED.into();
        }
        if !cmd.data().is_empty() {
            return StatusWord::WRONG_LENGTH.into();
        }
        match (cmd.p1(), cmd.p2()) {
            // ISO 7816-4 §11.1.2: open, the card assigns the number.
            (0x00, 0x00) => {
                let Some(free) = (1..LOGICAL_CHANNELS)
                    .find(|&n| self.channels.get(n).is_some_and(Option::is_none))
                else {
                    return StatusWord::FUNCTION_NOT_SUPPORTED.into();
                };
                self.open_channel(free);
                Response::success(vec![u8::try_from(free).unwrap_or(0)])
            }
            (0x00, n) => {
                let n = usize::from(n);
                if n == 0 || n >= LOGICAL_CHANNELS || ch != 0 && n == ch {
                    return StatusWord::INCORRECT_P1_P2.into();
                }
                if self.channels.get(n).is_some_and(Option::is_some) {
                    return StatusWord::CONDITIONS_NOT_SATISFIED.into();
                }
                self.open_channel(n);
                StatusWord::SUCCESS.into()
            }
            // Close channel P2.
            (0x80, n) => {
                let n = usize::from(n);
                if n == 0 || n >= LOGICAL_CHANNELS {
                    return StatusWord::INCORRECT_P1_P2.into();
                }
                let Some(channel) = self.channels.get_mut(n).and_then(Option::take) else {
                    return StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED.into();
                };
                if let Some(aid) = channel.selected {
                    self.deselect_applet(n, &aid);
                }
                StatusWord::SUCCESS.into()
            }
            _ => StatusWord::INCORRECT_P1_P2.into(),
        }
    }

    fn open_channel(&mut self, n: usize) {
        // GPC 2.3 §11.1.3: the ISD (default selected) is selected on a new channel.
        let channel = Channel {
            selected: Some(self.state.card.isd.clone()),
            ..Channel::default()
        };
        if let Some(slot) = self.channels.get_mut(n) {
            *slot = Some(channel);
        }
    }

    fn deselect_applet(&mut self, ch: usize, aid: &[u8]) {
        let Some(instance) = self.instances.get_mut(aid) else {
            return;
        };
        let mut tx = Transaction::new(&mut self.store);
        let mut storage = TxStorage::new(&mut tx, app_prefix(aid));
        let rng = &mut self.rng;
        let mut random = |b: &mut [u8]| rng.fill_bytes(b);
        let mut ctx = AppletContext::new(
            aid,
            u8::try_from(ch).unwrap_or(0),
            0,
            &mut storage,
            &mut random,
        );
        instance.deselect(&mut ctx);
        // Deselect writes are part of no command's response; they commit on their own.
        if !tx.is_empty() && tx.commit().is_ok() {
            self.last_committed = true;
        }
    }

    fn is_selectable(&self, e: &RegistryEntry) -> bool {
        let card = self.state.card.lifecycle;
        match e.kind {
            Kind::IssuerSecurityDomain => true,
            Kind::LoadFile => false,
            _ if card >= card_lifecycle::CARD_LOCKED => false,
            Kind::SecurityDomain | Kind::Application => {
                e.lifecycle & app_lifecycle::LOCKED_BIT == 0
                    && e.lifecycle >= app_lifecycle::SELECTABLE
            }
        }
    }

    /// SELECT by DF name (ISO 7816-4 §11.1.1, GPC 2.3 §11.9).
    fn select(&mut self, ch: usize, cmd: &CommandView<'_>) -> Response {
        let request = match select::parse_select(cmd) {
            Ok(request) => request,
            // This card answers a name over 16 bytes as incorrect data (ISO/IEC 7816-4 §5.6).
            Err(CommandError::DataLength { .. }) => return StatusWord::INCORRECT_DATA.into(),
            Err(e) => return e.status_word().into(),
        };
        let next = request.occurrence == Occurrence::Next;
        let prefix = request.name;
        let current = self.channel(ch).and_then(|c| c.selected.clone());
        let candidates: Vec<Vec<u8>> = if prefix.is_empty() {
            vec![self.state.card.isd.clone()]
        } else {
            self.state
                .ordered()
                .into_iter()
                .filter(|e| e.aid.starts_with(prefix) && self.is_selectable(e))
                .map(|e| e.aid.clone())
                .collect()
        };
        let start = if next {
            current
                .as_ref()
                .and_then(|c| candidates.iter().position(|a| a == c))
                .map_or(0, |p| p + 1)
        } else {
            0
        };
        let Some(target) = candidates.get(start).cloned() else {
            return StatusWord::NOT_FOUND.into();
        };
        if self.state.card.lifecycle == card_lifecycle::TERMINATED {
            return StatusWord::NOT_FOUND.into();
        }
        // Deselect the current application and close the secure channel of this channel.
        if let Some(cur) = current {
            self.deselect_applet(ch, &cur);
        }
        if let Some(c) = self.channel_mut(ch) {
            c.close_session();
            c.selected = None;
        }
        let Some(entry) = self.state.entries.get(&target).cloned() else {
            return StatusWord::NOT_FOUND.into();
        };
        let fci = if entry.kind.is_security_domain() {
            Ok((self.sd_fci(&entry), StatusWord::SUCCESS))
        } else {
            self.select_applet(ch, &entry)
        };
        match fci {
            Ok((fci, applet_sw)) => {
                if let Some(c) = self.channel_mut(ch) {
                    c.selected = Some(target);
                }
                let sw = if self.state.card.lifecycle == card_lifecycle::CARD_LOCKED {
                    // GPC 2.3 §11.9.3: the card is locked.
                    StatusWord::SELECTED_FILE_INVALIDATED
                } else {
                    applet_sw
                };
                if request.response == SelectResponse::NoData {
                    Response::status_only(sw)
                } else {
                    Response::new(fci, sw)
                }
            }
            Err(sw) => sw.into(),
        }
    }

    /// The FCI of a security domain (GPC 2.3 §11.9.3.1): `6F { 84 AID, A5 { 73 card
    /// recognition data, 9F65 max command length } }`.
    fn sd_fci(&self, entry: &RegistryEntry) -> Vec<u8> {
        let (scp, i) = self
            .state
            .domains
            .get(&entry.aid)
            .map_or((0x03, 0x70), |d| (d.scp.id(), d.i));
        let Ok(aid) = Aid::new(&entry.aid) else {
            // Registry AIDs are 5-16 bytes (checked when they enter the registry).
            return Vec::new();
        };
        Fci {
            aid,
            management_data: Some(gp::card_recognition_data(scp, i).to_template_value()),
            production_life_cycle: None,
            max_command_data: Some(0xFF),
        }
        .to_vec()
    }

    fn instance_for(&mut self, entry: &RegistryEntry) -> Result<(), StatusWord> {
        if self.instances.contains_key(&entry.aid) {
            return Ok(());
        }
        let (Some(elf), Some(module)) = (&entry.load_file, &entry.module) else {
            return Err(StatusWord::APPLET_SELECT_FAILED);
        };
        let factory = self
            .packages
            .factory(elf, module)
            .ok_or(StatusWord::APPLET_SELECT_FAILED)?;
        self.instances.insert(entry.aid.clone(), factory());
        Ok(())
    }

    fn select_applet(
        &mut self,
        ch: usize,
        entry: &RegistryEntry,
    ) -> Result<(Vec<u8>, StatusWord), StatusWord> {
        self.instance_for(entry)?;
        let instance = self
            .instances
            .get_mut(&entry.aid)
            .ok_or(StatusWord::APPLET_SELECT_FAILED)?;
        let mut tx = Transaction::new(&mut self.store);
        let mut storage = TxStorage::new(&mut tx, app_prefix(&entry.aid));
        let rng = &mut self.rng;
        let mut random = |b: &mut [u8]| rng.fill_bytes(b);
        let mut ctx = AppletContext::new(
            &entry.aid,
            u8::try_from(ch).unwrap_or(0),
            0,
            &mut storage,
            &mut random,
        );
        let fci = instance.select_with_status(&mut ctx)?;
        if !tx.is_empty() {
            tx.commit().map_err(|_| StatusWord::MEMORY_FAILURE)?;
            self.last_committed = true;
        }
        Ok(fci)
    }

    fn applet_command(&mut self, ch: usize, aid: &[u8], cmd: &CommandView<'_>) -> Response {
        let Some(entry) = self.state.entries.get(aid).cloned() else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        if entry.lifecycle & app_lifecycle::LOCKED_BIT != 0
            || self.state.card.lifecycle >= card_lifecycle::CARD_LOCKED
        {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        }
        if let Err(sw) = self.instance_for(&entry) {
            return sw.into();
        }
        let Some(instance) = self.instances.get_mut(aid) else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        let mut tx = Transaction::new(&mut self.store);
        let mut storage = TxStorage::new(&mut tx, app_prefix(aid));
        let rng = &mut self.rng;
        let mut random = |b: &mut [u8]| rng.fill_bytes(b);
        let mut ctx = AppletContext::new(
            aid,
            u8::try_from(ch).unwrap_or(0),
            0,
            &mut storage,
            &mut random,
        );
        match instance.process(cmd, &mut ctx) {
            Ok(response) if tx.is_empty() => response,
            Ok(response) => match tx.commit() {
                Ok(()) => {
                    self.last_committed = true;
                    response
                }
                Err(_) => StatusWord::MEMORY_FAILURE.into(),
            },
            Err(sw) => sw.into(),
        }
    }

    /// A command to a security domain: secure channel handshake, secure messaging, then the
    /// card-management command.
    fn sd_command(&mut self, ch: usize, sd: &[u8], cmd: &CommandView<'_>) -> Response {
        // Secure messaging is computed over the command as sent on the basic channel: the
        // logical channel bits of CLA are not part of the MAC (hosts set them after wrapping).
        let basic;
        let cmd = if ch != 0 && cmd.cla().has_secure_messaging() {
            let mut c = cmd.to_command();
            c.cla = cmd.cla().with_logical_channel(0).map_or(c.cla, u8::from);
            basic = match c.to_vec() {
                Ok(b) => b,
                Err(_) => return StatusWord::WRONG_LENGTH.into(),
            };
            match parse_command(&basic) {
                Ok(v) => v,
                Err(e) => return StatusWord::from(&e).into(),
            }
        } else {
            *cmd
        };
        let cmd = &cmd;
        let cla = cmd.cla();
        match cmd.ins() {
            apdu_codec::ins::INITIALIZE_UPDATE
                if !cla.has_secure_messaging() && cla.is_proprietary() =>
            {
                return self.initialize_update(ch, sd, cmd);
            }
            apdu_codec::ins::EXTERNAL_AUTHENTICATE if cla.is_proprietary() => {
                return self.external_authenticate(ch, sd, cmd);
            }
            apdu_codec::ins::INTERNAL_AUTHENTICATE
                if cla.is_proprietary() && !cla.has_secure_messaging() =>
            {
                return self.internal_authenticate(ch, sd, cmd);
            }
            _ => {}
        }
        let Some(channel) = self.channel_mut(ch) else {
            return StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED.into();
        };
        channel.pending = None;
        let secured = cla.has_secure_messaging();
        let plain = if secured {
            let Some(session) = channel.session.as_mut() else {
                return StatusWord::SECURITY_STATUS_NOT_SATISFIED.into();
            };
            match session.unwrap(cmd) {
                Ok(p) => Some(p),
                Err(sw) => {
                    // GPC 2.3 §10.8 / Amd D §6.2.4: a secure messaging error closes the session.
                    channel.close_session();
                    return sw.into();
                }
            }
        } else {
            if channel.session.as_ref().is_some_and(|s| s.level().c_mac()) {
                // A command without secure messaging ends a session that requires it.
                channel.close_session();
            }
            None
        };
        let bytes;
        let view = match &plain {
            Some(p) => {
                bytes = match p.to_vec() {
                    Ok(b) => b,
                    Err(_) => return StatusWord::WRONG_LENGTH.into(),
                };
                match parse_command(&bytes) {
                    Ok(v) => v,
                    Err(e) => return StatusWord::from(&e).into(),
                }
            }
            None => *cmd,
        };
        let (data, sw) = match self.management(ch, sd, &view) {
            Ok(r) => r,
            Err(sw) => (Vec::new(), sw),
        };
        let Some(channel) = self.channel_mut(ch) else {
            return Response::new(data, sw);
        };
        match (secured, channel.session.as_mut()) {
            (true, Some(session)) => session.wrap(&data, sw),
            _ => Response::new(data, sw),
        }
    }

    /// Run a card-management command in a transaction; commit on success.
    fn management(
        &mut self,
        ch: usize,
        sd: &[u8],
        cmd: &CommandView<'_>,
    ) -> Result<(Vec<u8>, StatusWord), StatusWord> {
        let Self {
            store,
            state,
            options,
            packages,
            channels,
            instances,
            last_committed,
            rng,
            ..
        } = self;
        let mut random = |b: &mut [u8]| rng.fill_bytes(b);
        let channel = channels
            .get_mut(ch)
            .and_then(Option::as_mut)
            .ok_or(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED)?;
        let (level, dek) = match &channel.session {
            Some(s) => (Some(s.level()), Some(s.dek())),
            None => (None, None),
        };
        let mut working = state.clone();
        let mut mgmt = channel.mgmt.clone();
        let mut tx = Transaction::new(store);
        let result = {
            let mut env = Env {
                state: &mut working,
                sd: sd.to_vec(),
                level,
                dek,
                mgmt: &mut mgmt,
                options,
                packages,
                instances,
                channel: u8::try_from(ch).unwrap_or(0),
                random: &mut random,
            };
            let cla = cmd.cla();
            let ins = cmd.ins();
            let proprietary = cla.is_proprietary();
            match ins {
                apdu_codec::ins::GET_DATA => gp::get_data(cmd, &env),
                apdu_codec::ins::GET_STATUS if proprietary => gp::get_status(cmd, &mut env),
                apdu_codec::ins::INSTALL if proprietary => gp::install(cmd, &mut env, &mut tx),
                apdu_codec::ins::LOAD if proprietary => gp::load(cmd, &mut env, &mut tx),
                apdu_codec::ins::DELETE if proprietary => gp::delete(cmd, &mut env, &mut tx),
                apdu_codec::ins::PUT_KEY if proprietary => gp::put_key(cmd, &mut env),
                apdu_codec::ins::STORE_DATA if proprietary => {
                    gp::store_data(cmd, &mut env, &mut tx)
                }
                apdu_codec::ins::SET_STATUS if proprietary => gp::set_status(cmd, &mut env),
                apdu_codec::ins::GET_STATUS
                | apdu_codec::ins::INSTALL
                | apdu_codec::ins::LOAD
                | apdu_codec::ins::DELETE
                | apdu_codec::ins::PUT_KEY
                | apdu_codec::ins::STORE_DATA
                | apdu_codec::ins::SET_STATUS => Err(StatusWord::CLA_NOT_SUPPORTED),
                _ => Err(StatusWord::INS_NOT_SUPPORTED),
            }
        };
        match result {
            Ok(out) => {
                if working.write_changes(state, &mut tx).is_err() {
                    return Err(StatusWord::MEMORY_FAILURE);
                }
                let wrote = !tx.is_empty();
                if tx.commit().is_err() {
                    // Nothing (or everything, after recovery) was written: keep the old mirror,
                    // drop instances that a failed INSTALL created.
                    instances.retain(|aid, _| state.entries.contains_key(aid));
                    return Err(StatusWord::MEMORY_FAILURE);
                }
                *state = working;
                channel.mgmt = mgmt;
                *last_committed = wrote;
                Ok(out)
            }
            Err(sw) => {
                instances.retain(|aid, _| state.entries.contains_key(aid));
                // Transient LOAD/paging progress changes that must survive an error.
                if matches!(
                    cmd.ins(),
                    apdu_codec::ins::LOAD | apdu_codec::ins::GET_STATUS
                ) {
                    channel.mgmt.load = mgmt.load;
                    channel.mgmt.status_paging = mgmt.status_paging;
                }
                Err(sw)
            }
        }
    }

    /// Persist a changed domain record on its own (counters of the handshake).
    fn commit_domain(
        &mut self,
        sd: &[u8],
        update: impl FnOnce(&mut model::DomainRecord),
    ) -> Result<(), StatusWord> {
        let mut working = self.state.clone();
        let domain = working
            .domains
            .get_mut(sd)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        update(domain);
        let mut tx = Transaction::new(&mut self.store);
        working
            .write_changes(&self.state, &mut tx)
            .map_err(|_| StatusWord::MEMORY_FAILURE)?;
        tx.commit().map_err(|_| StatusWord::MEMORY_FAILURE)?;
        self.state = working;
        self.last_committed = true;
        Ok(())
    }

    fn initialize_update(&mut self, ch: usize, sd: &[u8], cmd: &CommandView<'_>) -> Response {
        if let Some(c) = self.channel_mut(ch) {
            c.close_session();
        }
        let Some(domain) = self.state.domains.get(sd).cloned() else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        if self.options.failure_limit != 0 && domain.failures >= self.options.failure_limit {
            // The limit of failed authentications is reached: refuse, do not lock silently.
            return StatusWord::AUTHENTICATION_METHOD_BLOCKED.into();
        }
        let answer = match session::initialize_update(cmd, &domain, sd, &mut self.rng) {
            Ok(a) => a,
            Err(sw) => return sw.into(),
        };
        // The authentication is counted as failed from INITIALIZE UPDATE on, in the same
        // commit as the sequence counter, and the count is cleared only by a successful
        // EXTERNAL AUTHENTICATE (as JCOP-class cards do). So a host that gives up after a
        // card-cryptogram mismatch, or loses power before EXTERNAL AUTHENTICATE, still moves
        // the domain one step closer to its limit: exactly one step per attempt.
        let counted = self.options.failure_limit != 0;
        if (answer.next_counter != domain.sequence_counter || counted)
            && let Err(sw) = self.commit_domain(sd, |d| {
                d.sequence_counter = answer.next_counter;
                if counted {
                    d.failures = d.failures.saturating_add(1);
                }
            })
        {
            return sw.into();
        }
        if let Some(c) = self.channel_mut(ch) {
            c.pending = Some(answer.pending);
        }
        answer.response
    }

    fn internal_authenticate(&mut self, ch: usize, sd: &[u8], cmd: &CommandView<'_>) -> Response {
        if let Some(c) = self.channel_mut(ch) {
            c.close_session();
        }
        let Some(domain) = self.state.domains.get(sd) else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        match session::internal_authenticate(cmd, domain, &mut self.rng) {
            Ok((response, session)) => {
                if let Some(c) = self.channel_mut(ch) {
                    c.session = Some(session);
                }
                response
            }
            Err(sw) => sw.into(),
        }
    }

    fn external_authenticate(&mut self, ch: usize, sd: &[u8], cmd: &CommandView<'_>) -> Response {
        let Some(pending) = self.channel_mut(ch).and_then(|c| c.pending.take()) else {
            return StatusWord::CONDITIONS_NOT_SATISFIED.into();
        };
        match session::external_authenticate(pending, cmd) {
            Ok((response, session)) => {
                if self.state.domains.get(sd).is_some_and(|d| d.failures != 0)
                    && let Err(sw) = self.commit_domain(sd, |d| d.failures = 0)
                {
                    return sw.into();
                }
                if let Some(c) = self.channel_mut(ch) {
                    c.session = Some(session);
                }
                response
            }
            // The attempt was already counted by INITIALIZE UPDATE; the count stays.
            Err(e) => e.status.into(),
        }
    }
}

impl<S: Store> crate::transport::VirtualCard for Card<S> {
    fn atr(&self) -> Vec<u8> {
        self.options.atr.clone()
    }

    fn power_on(&mut self) {
        Card::power_on(self);
    }

    fn power_off(&mut self) {
        Card::power_off(self);
    }

    fn reset(&mut self) {
        Card::reset(self);
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        Card::transmit(self, apdu)
    }

    fn last_apdu_committed(&self) -> bool {
        self.last_committed
    }
}
