//! The in-memory store.

use std::collections::BTreeMap;

use super::{BatchEntry, Entry, Store, StoreError, apply_batch, scan_map};

/// A [`Store`] kept in memory: the card forgets everything when dropped.
///
/// A batch is applied in one step, so it is trivially atomic.
#[derive(Default, Clone)]
pub struct MemoryStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl core::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Values may be key material: show only the number of entries.
        f.debug_struct("MemoryStore")
            .field("entries", &self.map.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of committed entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A copy of every committed entry, sorted (for tests and snapshots).
    #[must_use]
    pub fn entries(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.map.clone()
    }
}

impl Store for MemoryStore {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        Ok(scan_map(&self.map, prefix))
    }

    fn commit(&mut self, batch: &[BatchEntry]) -> Result<(), StoreError> {
        apply_batch(&mut self.map, batch);
        Ok(())
    }
}
