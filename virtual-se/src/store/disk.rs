//! The journaled disk store.
//!
//! # Layout
//!
//! A directory (any [`Medium`]) with two files:
//!
//! - `data`: a checkpoint of the whole key space: magic `VSESTOR1`, entry count (u32 LE),
//!   entries (`key len` u32 LE, key, `value len` u32 LE, value), then a CRC-32 (IEEE) of
//!   everything before it. It is only ever replaced whole: written to `data.tmp`, synced, and
//!   renamed over `data` (the rename is atomic).
//! - `journal`: the write-ahead journal, a sequence of records `payload len` (u32 LE), CRC-32 of
//!   (length bytes || payload) (u32 LE), payload. A payload is one batch: entry count (u32 LE),
//!   then per entry a tag (`01` put, `00` delete), `key len` (u32 LE), key, and for a put
//!   `value len` (u32 LE) and value.
//!
//! # Commit
//!
//! Append the batch's record to `journal`, `fsync` the journal (the batch is now committed),
//! apply it in memory. When the journal has grown past
//! [`DiskOptions::checkpoint_bytes`], a checkpoint writes `data.tmp`, syncs it, renames it over
//! `data`, syncs the directory, then truncates the journal to zero and syncs it.
//!
//! # Recovery ([`DiskStore::open_on`])
//!
//! Load `data` (if present), then replay the journal's records in order up to the first record
//! that is incomplete or fails its checksum: a torn append can only damage the last record, and
//! a record is appended only after the previous one is durable. The damaged tail is truncated.
//! Replaying a record that the checkpoint already contains is harmless: batches are blind
//! puts and deletes, so applying them again in order gives the same state.

use std::collections::BTreeMap;
use std::path::Path;

use super::{BatchEntry, Entry, FsMedium, Medium, Store, StoreError, apply_batch, scan_map};

/// The checkpoint file.
pub(crate) const DATA: &str = "data";
/// The checkpoint being written.
pub(crate) const DATA_TMP: &str = "data.tmp";
/// The write-ahead journal.
pub(crate) const JOURNAL: &str = "journal";
/// Checkpoint magic (ours).
const MAGIC: &[u8; 8] = b"VSESTOR1";
/// Journal record header: payload length (4) + CRC-32 (4).
const RECORD_HEADER: usize = 8;
const TAG_DELETE: u8 = 0x00;
const TAG_PUT: u8 = 0x01;

/// Tuning of a [`DiskStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    /// Checkpoint when the journal reaches this many bytes (0 = after every commit).
    ///
    /// A commit costs one append and one `fsync`; a checkpoint rewrites the whole key space
    /// (two more `fsync`s and a rename), and bounds recovery time and journal size.
    pub checkpoint_bytes: u64,
}

impl Default for DiskOptions {
    fn default() -> Self {
        Self {
            checkpoint_bytes: 64 * 1024,
        }
    }
}

/// A [`Store`] in a directory, with a checksummed write-ahead journal and `fsync`: a crash at
/// any byte of any write recovers to the last committed state.
///
/// All committed data is also kept in memory (a card's state is small); reads never touch the
/// medium.
///
/// After any failed commit the store refuses further work ([`StoreError::Poisoned`]): its
/// memory may then disagree with what recovery will show, so it must be reopened.
pub struct DiskStore<M: Medium = FsMedium> {
    medium: M,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    journal_len: u64,
    options: DiskOptions,
    poisoned: bool,
}

impl<M: Medium> core::fmt::Debug for DiskStore<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Values may be key material: show only the shape.
        f.debug_struct("DiskStore")
            .field("entries", &self.map.len())
            .field("journal_len", &self.journal_len)
            .field("options", &self.options)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl DiskStore<FsMedium> {
    /// Open (creating if needed) the store in directory `dir`, recovering it.
    ///
    /// # Errors
    /// [`StoreError::Io`] on I/O failure, [`StoreError::Corrupt`] when the checkpoint file is
    /// damaged (which no crash can cause).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, DiskOptions::default())
    }

    /// [`open`](Self::open) with options.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, options: DiskOptions) -> Result<Self, StoreError> {
        Self::open_on(FsMedium::open(dir)?, options)
    }
}

impl<M: Medium> DiskStore<M> {
    /// Open the store on `medium`, recovering it (see the module docs).
    ///
    /// # Errors
    /// [`StoreError::Io`] / [`StoreError::PowerCut`] from the medium, [`StoreError::Corrupt`]
    /// when the checkpoint file is damaged.
    pub fn open_on(mut medium: M, options: DiskOptions) -> Result<Self, StoreError> {
        let mut map = match medium.read_file(DATA)? {
            Some(bytes) => parse_checkpoint(&bytes)?,
            None => BTreeMap::new(),
        };
        if medium.read_file(DATA_TMP)?.is_some() {
            // An unfinished checkpoint: the journal still holds everything it had.
            medium.remove(DATA_TMP)?;
        }
        let journal_len = match medium.read_file(JOURNAL)? {
            Some(journal) => {
                let valid = replay_journal(&journal, &mut map);
                if valid < journal.len() {
                    let valid_u64 = u64::try_from(valid).map_err(|_| StoreError::TooLarge)?;
                    medium.truncate(JOURNAL, valid_u64)?;
                    medium.sync(JOURNAL)?;
                }
                u64::try_from(valid).map_err(|_| StoreError::TooLarge)?
            }
            None => {
                medium.write_file(JOURNAL, &[])?;
                medium.sync(JOURNAL)?;
                medium.sync_dir()?;
                0
            }
        };
        Ok(Self {
            medium,
            map,
            journal_len,
            options,
            poisoned: false,
        })
    }

    /// Write a checkpoint now and empty the journal.
    ///
    /// # Errors
    /// [`StoreError`] from the medium; the store is then poisoned (committed data is safe in
    /// the journal).
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.check_usable()?;
        let result = self.checkpoint_inner();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn checkpoint_inner(&mut self) -> Result<(), StoreError> {
        let image = encode_checkpoint(&self.map)?;
        self.medium.write_file(DATA_TMP, &image)?;
        self.medium.sync(DATA_TMP)?;
        self.medium.rename(DATA_TMP, DATA)?;
        self.medium.sync_dir()?;
        self.medium.truncate(JOURNAL, 0)?;
        self.medium.sync(JOURNAL)?;
        self.journal_len = 0;
        Ok(())
    }

    /// The medium (for tests: a [`SimDisk`](super::SimDisk) handle).
    #[must_use]
    pub fn medium(&self) -> &M {
        &self.medium
    }

    /// A copy of every committed entry, sorted.
    #[must_use]
    pub fn entries(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.map.clone()
    }

    /// Current journal length in bytes.
    #[must_use]
    pub fn journal_len(&self) -> u64 {
        self.journal_len
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        if self.poisoned {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn commit_inner(&mut self, record: &[u8], batch: &[BatchEntry]) -> Result<(), StoreError> {
        self.medium.append(JOURNAL, record)?;
        self.medium.sync(JOURNAL)?;
        apply_batch(&mut self.map, batch);
        let record_len = u64::try_from(record.len()).map_err(|_| StoreError::TooLarge)?;
        self.journal_len = self.journal_len.saturating_add(record_len);
        if self.journal_len >= self.options.checkpoint_bytes {
            self.checkpoint_inner()?;
        }
        Ok(())
    }
}

impl<M: Medium> Store for DiskStore<M> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_usable()?;
        Ok(self.map.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        self.check_usable()?;
        Ok(scan_map(&self.map, prefix))
    }

    fn commit(&mut self, batch: &[BatchEntry]) -> Result<(), StoreError> {
        self.check_usable()?;
        if batch.is_empty() {
            return Ok(());
        }
        let record = encode_record(batch)?;
        let result = self.commit_inner(&record, batch);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), StoreError> {
    let len = u32::try_from(len).map_err(|_| StoreError::TooLarge)?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Encode one journal record for `batch`.
pub(crate) fn encode_record(batch: &[BatchEntry]) -> Result<Vec<u8>, StoreError> {
    let mut payload = Vec::new();
    put_len(&mut payload, batch.len())?;
    for (key, value) in batch {
        match value {
            Some(v) => {
                payload.push(TAG_PUT);
                put_len(&mut payload, key.len())?;
                payload.extend_from_slice(key);
                put_len(&mut payload, v.len())?;
                payload.extend_from_slice(v);
            }
            None => {
                payload.push(TAG_DELETE);
                put_len(&mut payload, key.len())?;
                payload.extend_from_slice(key);
            }
        }
    }
    let len = u32::try_from(payload.len())
        .map_err(|_| StoreError::TooLarge)?
        .to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&payload);
    let mut record = Vec::with_capacity(RECORD_HEADER + payload.len());
    record.extend_from_slice(&len);
    record.extend_from_slice(&crc.finalize().to_le_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

/// A bounds-checked little-endian reader over untrusted bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.bytes.get(..n)?;
        self.bytes = self.bytes.get(n..)?;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    }

    fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

/// Parse one record payload into a batch; `None` if malformed.
fn parse_batch(payload: &[u8]) -> Option<Vec<BatchEntry>> {
    let mut c = Cursor { bytes: payload };
    let count = c.u32()?;
    let mut batch = Vec::new();
    for _ in 0..count {
        let tag = c.u8()?;
        let key = c.len_prefixed()?.to_vec();
        let value = match tag {
            TAG_PUT => Some(c.len_prefixed()?.to_vec()),
            TAG_DELETE => None,
            _ => return None,
        };
        batch.push((key, value));
    }
    c.bytes.is_empty().then_some(batch)
}

/// Apply every valid record of `journal` to `map`; return the length of the valid prefix.
pub(crate) fn replay_journal(journal: &[u8], map: &mut BTreeMap<Vec<u8>, Vec<u8>>) -> usize {
    let mut offset = 0usize;
    loop {
        let Some(rest) = journal.get(offset..) else {
            return offset;
        };
        let mut c = Cursor { bytes: rest };
        let (Some(len), Some(crc)) = (c.u32(), c.u32()) else {
            return offset;
        };
        let Ok(len_usize) = usize::try_from(len) else {
            return offset;
        };
        let Some(payload) = c.take(len_usize) else {
            return offset;
        };
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len.to_le_bytes());
        hasher.update(payload);
        if hasher.finalize() != crc {
            return offset;
        }
        let Some(batch) = parse_batch(payload) else {
            return offset;
        };
        apply_batch(map, &batch);
        offset = offset
            .saturating_add(RECORD_HEADER)
            .saturating_add(len_usize);
    }
}

/// Encode a checkpoint image of `map`.
pub(crate) fn encode_checkpoint(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    put_len(&mut out, map.len())?;
    for (key, value) in map {
        put_len(&mut out, key.len())?;
        out.extend_from_slice(key);
        put_len(&mut out, value.len())?;
        out.extend_from_slice(value);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Parse a checkpoint image.
pub(crate) fn parse_checkpoint(bytes: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
    let corrupt = |reason| StoreError::Corrupt {
        file: DATA.to_owned(),
        reason,
    };
    let body_len = bytes
        .len()
        .checked_sub(4)
        .ok_or_else(|| corrupt("shorter than its checksum"))?;
    let (body, crc) = bytes.split_at(body_len);
    let mut crc_c = Cursor { bytes: crc };
    if crc_c.u32() != Some(crc32fast::hash(body)) {
        return Err(corrupt("checksum mismatch"));
    }
    let mut c = Cursor { bytes: body };
    if c.take(MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(corrupt("bad magic"));
    }
    let count = c.u32().ok_or_else(|| corrupt("truncated"))?;
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let key = c.len_prefixed().ok_or_else(|| corrupt("truncated"))?;
        let value = c.len_prefixed().ok_or_else(|| corrupt("truncated"))?;
        map.insert(key.to_vec(), value.to_vec());
    }
    if !c.bytes.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(map)
}

#[cfg(test)]
#[cfg_attr(test, allow(clippy::unwrap_used))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = BatchEntry> {
        (
            proptest::collection::vec(any::<u8>(), 0..6),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn record_round_trip(batch in proptest::collection::vec(entry(), 0..8)) {
            let record = encode_record(&batch).unwrap();
            let mut via_journal = BTreeMap::new();
            prop_assert_eq!(replay_journal(&record, &mut via_journal), record.len());
            let mut direct = BTreeMap::new();
            apply_batch(&mut direct, &batch);
            prop_assert_eq!(&via_journal, &direct);
            let image = encode_checkpoint(&direct).unwrap();
            prop_assert_eq!(parse_checkpoint(&image).unwrap(), direct);
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut map = BTreeMap::new();
            let valid = replay_journal(&bytes, &mut map);
            prop_assert!(valid <= bytes.len());
            let _ = parse_checkpoint(&bytes);
        }
    }
}
