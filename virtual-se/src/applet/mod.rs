//! The applet runtime: the [`Applet`] trait built-in applets implement, the context they
//! run in, and the package map that INSTALL uses to instantiate them.
//!
//! # Model
//! - An applet *instance* is an object created by an [`AppletFactory`] when its registry
//!   entry is first selected (or installed) after power on. Its fields are its **transient**
//!   state: dropped on power off and reset, as Java Card clears `CLEAR_ON_RESET` arrays.
//! - Its **persistent** state lives in the card's store under a namespace of its own AID, read
//!   and written only through [`AppletContext`], i.e. through the transaction of the current
//!   command. An applet cannot name another applet's keys, so one applet can never corrupt
//!   another.
//! - Every APDU is one transaction. `Ok(response)` from [`Applet::process`] commits the
//!   applet's writes (whatever the status word, so that for example a decremented PIN try
//!   counter answered with `63Cx` is kept); `Err(status)` discards them. Applets may open
//!   nested transactions ([`AppletContext::begin_nested`]) for multi-step updates.
//! - Applets from other crates (the e-purse, the POS SAM) expose a plain
//!   `process(command, state) -> response` over a byte-serializable state; an adapter keeps
//!   that state under one key of the applet's namespace ([`AppletContext::read`] /
//!   [`AppletContext::write`]), keeps their transient session in the instance's fields, and
//!   draws their randomness from [`AppletContext::fill_random`]; a command whose outcome
//!   carries a new state writes it, one without writes nothing. That is all this trait needs.

mod epurse;
mod store_applet;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use apdu_codec::{CommandView, Response, StatusWord};

use crate::store::StoreError;

pub use self::epurse::{
    EPURSE_LOAD_FILE, EPURSE_MODULE, EPURSE_TAG_MODULE, EPURSE_TICKET_MODULE, EpurseApplet,
    STATE_KEY as EPURSE_STATE_KEY, TagApplet, TicketApplet,
};
pub use store_applet::{STORE_APPLET_LOAD_FILE, STORE_APPLET_MODULE, StoreApplet};

/// Key-value records, sorted by key.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// The persistent storage an applet sees: its own namespace of the current command's
/// transaction.
pub trait AppletStorage {
    /// Read a value of this applet.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// All keys of this applet (without the namespace), sorted, with their values.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    fn scan(&self) -> Result<Records, StoreError>;
    /// Write a value (effective when the command commits).
    fn write(&mut self, key: &[u8], value: &[u8]);
    /// Remove a value.
    fn remove(&mut self, key: &[u8]);
    /// Open a nested transaction level.
    ///
    /// # Errors
    /// [`StoreError::NestingTooDeep`].
    fn begin_nested(&mut self) -> Result<(), StoreError>;
    /// Fold the innermost nested level into its parent.
    ///
    /// # Errors
    /// [`StoreError::NoNestedTransaction`].
    fn commit_nested(&mut self) -> Result<(), StoreError>;
    /// Discard the innermost nested level.
    ///
    /// # Errors
    /// [`StoreError::NoNestedTransaction`].
    fn abort_nested(&mut self) -> Result<(), StoreError>;
}

/// What an applet sees while it handles a command.
pub struct AppletContext<'a> {
    aid: &'a [u8],
    channel: u8,
    secure_level: u8,
    storage: &'a mut dyn AppletStorage,
    random: &'a mut dyn FnMut(&mut [u8]),
}

impl fmt::Debug for AppletContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppletContext")
            .field("aid", &hex::encode_upper(self.aid))
            .field("channel", &self.channel)
            .field("secure_level", &self.secure_level)
            .finish_non_exhaustive()
    }
}

impl<'a> AppletContext<'a> {
    /// A context over an applet's storage and the card's random source (used by the card
    /// runtime and by applet tests).
    pub fn new(
        aid: &'a [u8],
        channel: u8,
        secure_level: u8,
        storage: &'a mut dyn AppletStorage,
        random: &'a mut dyn FnMut(&mut [u8]),
    ) -> Self {
        Self {
            aid,
            channel,
            secure_level,
            storage,
            random,
        }
    }

    /// Fill `buf` from the card's random source (seeded by the card's owner, so a simulation
    /// is reproducible): challenges, e-purse random numbers.
    pub fn fill_random(&mut self, buf: &mut [u8]) {
        (self.random)(buf);
    }

    /// The AID of the running instance.
    #[must_use]
    pub fn aid(&self) -> &[u8] {
        self.aid
    }

    /// The logical channel the command came on.
    #[must_use]
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// The security level of the secure channel open on this logical channel (00 = none).
    /// For STORE DATA routed through a security domain this is the SD's session level.
    #[must_use]
    pub fn secure_level(&self) -> u8 {
        self.secure_level
    }

    /// Read one of this applet's persistent values.
    ///
    /// # Errors
    /// `6581` (memory failure) when the store cannot be read.
    pub fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StatusWord> {
        self.storage
            .read(key)
            .map_err(|_| StatusWord::MEMORY_FAILURE)
    }

    /// All of this applet's persistent values, sorted by key.
    ///
    /// # Errors
    /// `6581` when the store cannot be read.
    pub fn scan(&self) -> Result<Records, StatusWord> {
        self.storage.scan().map_err(|_| StatusWord::MEMORY_FAILURE)
    }

    /// Write one persistent value (committed with the command).
    pub fn write(&mut self, key: &[u8], value: &[u8]) {
        self.storage.write(key, value);
    }

    /// Remove one persistent value.
    pub fn remove(&mut self, key: &[u8]) {
        self.storage.remove(key);
    }

    /// Open a nested transaction (Java Card `beginTransaction`).
    ///
    /// # Errors
    /// `6581` when nesting is too deep.
    pub fn begin_nested(&mut self) -> Result<(), StatusWord> {
        self.storage
            .begin_nested()
            .map_err(|_| StatusWord::MEMORY_FAILURE)
    }

    /// Commit the innermost nested transaction into the command's transaction.
    ///
    /// # Errors
    /// `6985` without an open nested transaction.
    pub fn commit_nested(&mut self) -> Result<(), StatusWord> {
        self.storage
            .commit_nested()
            .map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)
    }

    /// Abort the innermost nested transaction.
    ///
    /// # Errors
    /// `6985` without an open nested transaction.
    pub fn abort_nested(&mut self) -> Result<(), StatusWord> {
        self.storage
            .abort_nested()
            .map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)
    }
}

/// One STORE DATA block routed to an applet (GPC 2.3 §11.11).
#[derive(Debug, Clone, Copy)]
pub struct StoreDataBlock<'a> {
    /// P1: bit 80 last block, bits 60 encryption, bits 18 data structure.
    pub p1: u8,
    /// Block number (P2).
    pub block: u8,
    /// The block's data (after secure messaging was removed).
    pub data: &'a [u8],
}

impl StoreDataBlock<'_> {
    /// Whether this is the last block (P1 bit 80).
    #[must_use]
    pub const fn is_last(&self) -> bool {
        self.p1 & 0x80 != 0
    }

    /// Data structure bits (GPC 2.3 Table 11-77): `00` none, `08` DGI, `10` BER-TLV.
    #[must_use]
    pub const fn structure(&self) -> u8 {
        self.p1 & 0x18
    }
}

/// A built-in applet.
///
/// Errors are answered with the returned status word and discard the command's writes.
pub trait Applet: Send {
    /// Called once when the instance is created by INSTALL [for install], with the
    /// application-specific install parameters (tag C9 contents, possibly empty).
    ///
    /// # Errors
    /// A status word that makes INSTALL fail (nothing is installed).
    fn install(&mut self, ctx: &mut AppletContext<'_>, params: &[u8]) -> Result<(), StatusWord> {
        let _ = (ctx, params);
        Ok(())
    }

    /// Called when the applet is selected; returns the data of the SELECT response (FCI).
    ///
    /// # Errors
    /// A status word that refuses selection.
    fn select(&mut self, ctx: &mut AppletContext<'_>) -> Result<Vec<u8>, StatusWord>;

    /// Like [`Applet::select`], but the selection may succeed with a warning status word
    /// (for example `6283` for a temporarily blocked application, ISO 7816-4). The runtime
    /// calls this one; the default answers [`Applet::select`]'s FCI with `9000`.
    ///
    /// # Errors
    /// A status word that refuses selection.
    fn select_with_status(
        &mut self,
        ctx: &mut AppletContext<'_>,
    ) -> Result<(Vec<u8>, StatusWord), StatusWord> {
        self.select(ctx).map(|fci| (fci, StatusWord::SUCCESS))
    }

    /// Called when another applet is selected on the channel (or the channel closes).
    fn deselect(&mut self, ctx: &mut AppletContext<'_>) {
        let _ = ctx;
    }

    /// Handle one command APDU (after secure messaging was removed by the runtime).
    ///
    /// # Errors
    /// A status word; the command's writes are discarded.
    fn process(
        &mut self,
        command: &CommandView<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Response, StatusWord>;

    /// Handle a STORE DATA block routed by a security domain after INSTALL [for
    /// personalization]; returns response data.
    ///
    /// # Errors
    /// A status word (the default refuses personalization with `6D00`).
    fn personalize(
        &mut self,
        block: StoreDataBlock<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Vec<u8>, StatusWord> {
        let _ = (block, ctx);
        Err(StatusWord::INS_NOT_SUPPORTED)
    }
}

/// Creates applet instances of one module.
pub type AppletFactory = Arc<dyn Fn() -> Box<dyn Applet> + Send + Sync>;

/// A built-in executable load file: its AID and its modules (module AID → factory).
#[derive(Clone)]
pub struct Package {
    /// Executable load file AID.
    pub load_file: Vec<u8>,
    /// Executable modules: AID and factory.
    pub modules: Vec<(Vec<u8>, AppletFactory)>,
}

impl fmt::Debug for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Package")
            .field("load_file", &hex::encode_upper(&self.load_file))
            .field(
                "modules",
                &self
                    .modules
                    .iter()
                    .map(|(m, _)| hex::encode_upper(m))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The built-in packages a card knows: INSTALL maps a module AID to its factory here.
#[derive(Clone, Debug, Default)]
pub struct Packages {
    packages: BTreeMap<Vec<u8>, Package>,
}

impl Packages {
    /// No packages.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The packages every virtual SE has: the generic store applet and the e-purse.
    #[must_use]
    pub fn builtin() -> Self {
        let mut p = Self::new();
        p.add(StoreApplet::package());
        p.add(EpurseApplet::package());
        p
    }

    /// Add (or replace) a package.
    pub fn add(&mut self, package: Package) {
        self.packages.insert(package.load_file.clone(), package);
    }

    /// The package with this load file AID.
    #[must_use]
    pub fn package(&self, load_file: &[u8]) -> Option<&Package> {
        self.packages.get(load_file)
    }

    /// All packages.
    pub fn iter(&self) -> impl Iterator<Item = &Package> {
        self.packages.values()
    }

    /// The factory of a module of a load file.
    #[must_use]
    pub fn factory(&self, load_file: &[u8], module: &[u8]) -> Option<&AppletFactory> {
        self.packages
            .get(load_file)?
            .modules
            .iter()
            .find(|(m, _)| m.as_slice() == module)
            .map(|(_, f)| f)
    }
}
