//! The per-APDU transaction overlay with nested levels.

use std::collections::BTreeMap;

use super::{BatchEntry, Entry, Store, StoreError};

/// Maximum number of nested levels open at once inside one [`Transaction`].
///
/// Java Card allows one applet transaction at a time (JCRE 3.0.5 §7.6); we allow a few
/// levels so a runtime can nest an applet transaction inside a card-manager step.
pub const MAX_NESTING_DEPTH: usize = 8;

/// Pending writes of one level: `Some` = put, `None` = delete.
type Level = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A transaction overlay over a [`Store`]: reads see pending writes; [`commit`](Self::commit)
/// applies them as one batch; dropping without commit discards.
///
/// Nested levels ([`begin_nested`](Self::begin_nested), [`commit_nested`](Self::commit_nested),
/// [`abort_nested`](Self::abort_nested)) give applet-level Java Card style transactions inside
/// one APDU: aborting a nested level discards only the writes made since it began; committing
/// it folds them into the enclosing level (they become durable only when the outer transaction
/// commits).
pub struct Transaction<'s, S: Store + ?Sized> {
    store: &'s mut S,
    /// `levels[0]` is the outer transaction; one more entry per open nested level.
    levels: Vec<Level>,
}

impl<S: Store + ?Sized> core::fmt::Debug for Transaction<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Values may be key material: show only the shape.
        f.debug_struct("Transaction")
            .field("nesting_depth", &self.nesting_depth())
            .field(
                "pending_keys",
                &self.levels.iter().map(BTreeMap::len).sum::<usize>(),
            )
            .finish()
    }
}

impl<'s, S: Store + ?Sized> Transaction<'s, S> {
    /// Start a transaction over `store`.
    pub fn new(store: &'s mut S) -> Self {
        Self {
            store,
            levels: vec![Level::new()],
        }
    }

    /// The value of `key` as this transaction sees it (pending writes first, then the store).
    ///
    /// # Errors
    /// [`StoreError`] from the underlying store.
    pub fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        for level in self.levels.iter().rev() {
            if let Some(pending) = level.get(key) {
                return Ok(pending.clone());
            }
        }
        self.store.read(key)
    }

    /// All keys starting with `prefix` as this transaction sees them, sorted, with values.
    ///
    /// # Errors
    /// [`StoreError`] from the underlying store.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.store.scan_prefix(prefix)?.into_iter().collect();
        for level in &self.levels {
            for (key, value) in level
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                match value {
                    Some(v) => {
                        merged.insert(key.clone(), v.clone());
                    }
                    None => {
                        merged.remove(key);
                    }
                }
            }
        }
        Ok(merged.into_iter().collect())
    }

    /// Put `value` under `key` (pending until commit).
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.top().insert(key.into(), Some(value.into()));
    }

    /// Delete `key` (pending until commit).
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.top().insert(key.into(), None);
    }

    /// Delete every key starting with `prefix` as this transaction sees them.
    ///
    /// # Errors
    /// [`StoreError`] from the underlying store.
    pub fn delete_prefix(&mut self, prefix: &[u8]) -> Result<(), StoreError> {
        for (key, _) in self.scan_prefix(prefix)? {
            self.delete(key);
        }
        Ok(())
    }

    /// Open a nested level.
    ///
    /// # Errors
    /// [`StoreError::NestingTooDeep`] when [`MAX_NESTING_DEPTH`] levels are already open.
    pub fn begin_nested(&mut self) -> Result<(), StoreError> {
        if self.nesting_depth() >= MAX_NESTING_DEPTH {
            return Err(StoreError::NestingTooDeep);
        }
        self.levels.push(Level::new());
        Ok(())
    }

    /// Fold the innermost nested level into its enclosing level.
    ///
    /// # Errors
    /// [`StoreError::NoNestedTransaction`] when no nested level is open.
    pub fn commit_nested(&mut self) -> Result<(), StoreError> {
        if self.levels.len() < 2 {
            return Err(StoreError::NoNestedTransaction);
        }
        let inner = self.levels.pop().unwrap_or_default();
        let outer = self.top();
        for (key, value) in inner {
            outer.insert(key, value);
        }
        Ok(())
    }

    /// Discard the writes of the innermost nested level.
    ///
    /// # Errors
    /// [`StoreError::NoNestedTransaction`] when no nested level is open.
    pub fn abort_nested(&mut self) -> Result<(), StoreError> {
        if self.levels.len() < 2 {
            return Err(StoreError::NoNestedTransaction);
        }
        self.levels.pop();
        Ok(())
    }

    /// Number of nested levels currently open (0 = only the outer transaction).
    #[must_use]
    pub fn nesting_depth(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// Whether nothing is pending at any level.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.levels.iter().all(BTreeMap::is_empty)
    }

    /// The store under this transaction (committed state only).
    #[must_use]
    pub fn store(&self) -> &S {
        self.store
    }

    /// Commit the outer transaction as one atomic batch.
    ///
    /// Nested levels still open are aborted first, as the Java Card runtime aborts an applet
    /// transaction left open when the applet returns (JCRE 3.0.5 §7.6.2). An empty transaction
    /// does not touch the store.
    ///
    /// # Errors
    /// [`StoreError`] from [`Store::commit`]; nothing of this transaction is then visible in
    /// the store's current view (a later recovery shows all or none of it).
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.levels.truncate(1);
        let outer = self.levels.pop().unwrap_or_default();
        if outer.is_empty() {
            return Ok(());
        }
        let batch: Vec<BatchEntry> = outer.into_iter().collect();
        self.store.commit(&batch)
    }

    /// Discard everything (same as dropping).
    pub fn abort(self) {}

    fn top(&mut self) -> &mut Level {
        if self.levels.is_empty() {
            self.levels.push(Level::new());
        }
        let last = self.levels.len() - 1;
        &mut self.levels[last]
    }
}
