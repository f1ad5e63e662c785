//! Persistent storage with atomic batches, transactions, and tearing injection.
//!
//! - [`Store`] is the integrator's plug point: a key-value store whose [`Store::commit`]
//!   applies a batch atomically, even across a power cut.
//! - [`MemoryStore`] keeps everything in memory; [`DiskStore`] keeps it in a directory with a
//!   checksummed write-ahead journal and `fsync`.
//! - [`Transaction`] is the overlay the card runtime wraps around every APDU (Java Card
//!   semantics: all persistent effects of a command commit together or not at all), with nested
//!   levels for applet-level transactions.
//! - [`SimDisk`] is a simulated disk for [`DiskStore`] that counts low-level write points and cuts
//!   power at any of them (keeping any prefix of the torn write), so tests can prove atomicity.

mod disk;
mod medium;
mod memory;
mod sim;
mod transaction;

pub use disk::{DiskOptions, DiskStore};
pub use medium::{FsMedium, Medium};
pub use memory::MemoryStore;
pub use sim::{CrashModel, CutPoint, SimDisk};
pub use transaction::{MAX_NESTING_DEPTH, Transaction};

/// One committed key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write of a batch: `Some(value)` puts, `None` deletes.
pub type BatchEntry = (Vec<u8>, Option<Vec<u8>>);

/// Key-value persistent storage with atomic batches: the integrator's plug point.
pub trait Store: Send {
    /// Current committed value of a key.
    ///
    /// # Errors
    /// [`StoreError`] when the medium cannot be read (or power was cut).
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// All committed keys starting with a prefix, sorted, with their values.
    ///
    /// # Errors
    /// [`StoreError`] when the medium cannot be read (or power was cut).
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError>;

    /// Atomically apply a batch (Some = put, None = delete): after a crash at any point,
    /// recovery shows either none or all of it.
    ///
    /// When a later entry names the same key as an earlier one, the later one wins.
    ///
    /// # Errors
    /// [`StoreError`] when the batch could not be made durable. The batch may or may not
    /// survive the next recovery (never partly); the store's in-memory view is unchanged.
    fn commit(&mut self, batch: &[BatchEntry]) -> Result<(), StoreError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).read(key)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        (**self).scan_prefix(prefix)
    }
    fn commit(&mut self, batch: &[BatchEntry]) -> Result<(), StoreError> {
        (**self).commit(batch)
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system I/O error on a store file.
    #[error("I/O error on {file}: {source}")]
    Io {
        /// The store file (relative to the store directory).
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Power was cut (tearing injection): the store is dead until the medium is power-cycled
    /// and the store reopened.
    #[error("power cut (injected tear)")]
    PowerCut,
    /// A store file fails its checksum or structure check in a way a torn write cannot explain.
    #[error("corrupt store file {file}: {reason}")]
    Corrupt {
        /// The store file.
        file: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An earlier commit of this store failed; its memory may disagree with the medium, so
    /// it refuses work until reopened (which recovers).
    #[error("an earlier commit failed; reopen the store to recover")]
    Poisoned,
    /// The store directory is already open (locked) by another store.
    #[error("store directory is locked by another user")]
    Locked,
    /// A key or value is larger than the on-disk format allows (`u32::MAX` bytes).
    #[error("key or value too large for the store format")]
    TooLarge,
    /// `commit_nested` or `abort_nested` without an open nested level.
    #[error("no nested transaction is open")]
    NoNestedTransaction,
    /// `begin_nested` beyond [`MAX_NESTING_DEPTH`].
    #[error("nested transactions deeper than {MAX_NESTING_DEPTH}")]
    NestingTooDeep,
}

impl StoreError {
    /// Whether this error is an injected power cut.
    #[must_use]
    pub fn is_power_cut(&self) -> bool {
        matches!(self, Self::PowerCut)
    }
}

/// Apply a batch to an ordered map (shared by the stores and recovery).
pub(crate) fn apply_batch(
    map: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    batch: &[BatchEntry],
) {
    for (key, value) in batch {
        match value {
            Some(v) => {
                map.insert(key.clone(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

/// Committed entries of an ordered map whose keys start with `prefix`, sorted.
pub(crate) fn scan_map(
    map: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    prefix: &[u8],
) -> Vec<Entry> {
    map.range(prefix.to_vec()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
