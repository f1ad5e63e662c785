//! A simulated disk with power-cut (tearing) injection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Medium, StoreError};

/// Where to cut power: at the `write`-th write point after [`SimDisk::arm_cut`] (0-based),
/// keeping the first `keep` bytes of that write.
///
/// For operations without data (truncate, rename, remove) `keep == 0` means "not done" and any
/// other value means "done"; they are atomic, as on POSIX file systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutPoint {
    /// Index of the torn write point, counted from the arming.
    pub write: u64,
    /// Bytes of the torn write that reach the medium.
    pub keep: usize,
}

/// What survives a power cut in [`SimDisk::power_cycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashModel {
    /// Everything written so far survives (including the kept prefix of the torn write), as
    /// if the drive had written its cache out.
    KeepWritten,
    /// Only what was made durable survives: file data synced by [`Medium::sync`] and names
    /// synced by [`Medium::sync_dir`] (the harshest behaviour POSIX allows).
    LoseUnsynced,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct SimState {
    next_inode: u64,
    dir: BTreeMap<String, u64>,
    durable_dir: BTreeMap<String, u64>,
    inodes: BTreeMap<u64, Inode>,
    /// Write points since creation or the last [`SimDisk::reset_count`].
    writes: u64,
    /// Write points since the cut was armed.
    since_arm: u64,
    cut: Option<CutPoint>,
    dead: bool,
    /// The lengths of the data of each write point since the last reset (for enumerating
    /// byte-level cuts).
    write_sizes: Vec<usize>,
}

/// An in-memory disk for [`DiskStore`](super::DiskStore) that counts write points and can cut
/// power at any of them.
///
/// Cloning gives another handle on the *same* disk (so a test keeps a handle while the store
/// owns one); [`fork`](Self::fork) gives an independent copy.
///
/// ```
/// use virtual_se::store::{CrashModel, CutPoint, DiskOptions, DiskStore, SimDisk, Store};
///
/// let disk = SimDisk::new();
/// let mut store = DiskStore::open_on(disk.clone(), DiskOptions::default())?;
/// store.commit(&[(b"k".to_vec(), Some(b"old".to_vec()))])?;
///
/// // Cut power in the middle of the next commit's first write, keeping 3 bytes of it.
/// disk.arm_cut(CutPoint { write: 0, keep: 3 });
/// assert!(store.commit(&[(b"k".to_vec(), Some(b"new".to_vec()))]).unwrap_err().is_power_cut());
///
/// // Power comes back: recovery shows the old state, never a half-written one.
/// let store = DiskStore::open_on(disk.power_cycle(CrashModel::LoseUnsynced), DiskOptions::default())?;
/// assert_eq!(store.read(b"k")?, Some(b"old".to_vec()));
/// # Ok::<(), virtual_se::store::StoreError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

impl SimDisk {
    /// An empty, powered disk.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock can only come from a test; keep going with the data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An independent copy of this disk (same files, same durability, counters reset, no cut
    /// armed, powered).
    #[must_use]
    pub fn fork(&self) -> Self {
        let mut copy = self.lock().clone();
        copy.writes = 0;
        copy.since_arm = 0;
        copy.cut = None;
        copy.dead = false;
        copy.write_sizes.clear();
        Self {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// Number of write points since creation or the last [`reset_count`](Self::reset_count).
    #[must_use]
    pub fn write_points(&self) -> u64 {
        self.lock().writes
    }

    /// The data length of every write point since the last reset, in order (0 for
    /// operations without data).
    #[must_use]
    pub fn write_sizes(&self) -> Vec<usize> {
        self.lock().write_sizes.clone()
    }

    /// Restart counting write points.
    pub fn reset_count(&self) {
        let mut s = self.lock();
        s.writes = 0;
        s.write_sizes.clear();
    }

    /// Cut power at `cut` (counting write points from now). Every operation after the cut
    /// fails with [`StoreError::PowerCut`].
    pub fn arm_cut(&self, cut: CutPoint) {
        let mut s = self.lock();
        s.cut = Some(cut);
        s.since_arm = 0;
    }

    /// Remove an armed cut that has not fired yet.
    pub fn disarm(&self) {
        self.lock().cut = None;
    }

    /// Whether power has been cut.
    #[must_use]
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Cut power now (as if a cut fired before the next write).
    pub fn cut_now(&self) {
        self.lock().dead = true;
    }

    /// Restore power: a new, independent disk holding what survives under `model`.
    #[must_use]
    pub fn power_cycle(&self, model: CrashModel) -> Self {
        let s = self.lock();
        let mut next = SimState {
            next_inode: s.next_inode,
            ..SimState::default()
        };
        let dir = match model {
            CrashModel::KeepWritten => &s.dir,
            CrashModel::LoseUnsynced => &s.durable_dir,
        };
        for (name, inode) in dir {
            let data = s
                .inodes
                .get(inode)
                .map(|i| match model {
                    CrashModel::KeepWritten => i.data.clone(),
                    CrashModel::LoseUnsynced => i.durable.clone(),
                })
                .unwrap_or_default();
            next.dir.insert(name.clone(), *inode);
            next.inodes.insert(
                *inode,
                Inode {
                    durable: data.clone(),
                    data,
                },
            );
        }
        next.durable_dir = next.dir.clone();
        Self {
            state: Arc::new(Mutex::new(next)),
        }
    }

    /// The current content of a file (for tests), ignoring power state.
    #[must_use]
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.lock();
        s.dir
            .get(name)
            .and_then(|i| s.inodes.get(i))
            .map(|i| i.data.clone())
    }

    /// Replace a file's content, durably, without counting a write point (for corruption
    /// tests).
    pub fn set_file(&self, name: &str, data: &[u8]) {
        let mut s = self.lock();
        let inode = match s.dir.get(name) {
            Some(i) => *i,
            None => {
                let i = s.next_inode;
                s.next_inode += 1;
                s.dir.insert(name.to_owned(), i);
                s.durable_dir.insert(name.to_owned(), i);
                i
            }
        };
        s.inodes.insert(
            inode,
            Inode {
                data: data.to_vec(),
                durable: data.to_vec(),
            },
        );
    }

    /// Names of the files present (current view).
    #[must_use]
    pub fn files(&self) -> Vec<String> {
        self.lock().dir.keys().cloned().collect()
    }
}

/// What a write point does, applied whole or torn.
enum Op<'a> {
    Write(&'a str, &'a [u8]),
    Append(&'a str, &'a [u8]),
    Truncate(&'a str, u64),
    Rename(&'a str, &'a str),
    Remove(&'a str),
}

impl SimState {
    fn check_power(&self) -> Result<(), StoreError> {
        if self.dead {
            Err(StoreError::PowerCut)
        } else {
            Ok(())
        }
    }

    fn inode_for_write(&mut self, name: &str) -> u64 {
        if let Some(i) = self.dir.get(name) {
            return *i;
        }
        let i = self.next_inode;
        self.next_inode += 1;
        self.dir.insert(name.to_owned(), i);
        self.inodes.insert(i, Inode::default());
        i
    }

    fn missing(name: &str) -> StoreError {
        StoreError::Io {
            file: name.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
    }

    /// Run one write point, honouring an armed cut.
    fn write_point(&mut self, op: Op<'_>) -> Result<(), StoreError> {
        self.check_power()?;
        let size = match &op {
            Op::Write(_, d) | Op::Append(_, d) => d.len(),
            _ => 0,
        };
        self.writes += 1;
        self.write_sizes.push(size);
        let index = self.since_arm;
        self.since_arm += 1;
        let keep = match self.cut {
            Some(cut) if cut.write == index => Some(cut.keep),
            _ => None,
        };
        // Validate before doing anything, so a failing op changes nothing.
        match &op {
            Op::Truncate(name, _) | Op::Rename(name, _) if !self.dir.contains_key(*name) => {
                return Err(Self::missing(name));
            }
            _ => {}
        }
        match op {
            Op::Write(name, data) => {
                let i = self.inode_for_write(name);
                let kept = data
                    .get(..keep.unwrap_or(data.len()).min(data.len()))
                    .unwrap_or(data);
                if let Some(inode) = self.inodes.get_mut(&i) {
                    inode.data = kept.to_vec();
                }
            }
            Op::Append(name, data) => {
                let i = self.inode_for_write(name);
                let kept = data
                    .get(..keep.unwrap_or(data.len()).min(data.len()))
                    .unwrap_or(data);
                if let Some(inode) = self.inodes.get_mut(&i) {
                    inode.data.extend_from_slice(kept);
                }
            }
            Op::Truncate(name, len) => {
                if keep != Some(0) {
                    let i = self.dir.get(name).copied().unwrap_or_default();
                    if let Some(inode) = self.inodes.get_mut(&i) {
                        let len = usize::try_from(len).unwrap_or(usize::MAX);
                        inode.data.resize(len, 0);
                    }
                }
            }
            Op::Rename(from, to) => {
                if keep != Some(0)
                    && let Some(i) = self.dir.remove(from)
                {
                    self.dir.insert(to.to_owned(), i);
                }
            }
            Op::Remove(name) => {
                if keep != Some(0) {
                    self.dir.remove(name);
                }
            }
        }
        if keep.is_some() {
            self.dead = true;
            return Err(StoreError::PowerCut);
        }
        Ok(())
    }
}

impl Medium for SimDisk {
    fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let s = self.lock();
        s.check_power()?;
        Ok(s.dir
            .get(name)
            .and_then(|i| s.inodes.get(i))
            .map(|i| i.data.clone()))
    }

    fn write_file(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.lock().write_point(Op::Write(name, data))
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        self.lock().write_point(Op::Append(name, data))
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StoreError> {
        self.lock().write_point(Op::Truncate(name, len))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        self.lock().write_point(Op::Rename(from, to))
    }

    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        self.lock().write_point(Op::Remove(name))
    }

    fn sync(&mut self, name: &str) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_power()?;
        let i = s
            .dir
            .get(name)
            .copied()
            .ok_or_else(|| SimState::missing(name))?;
        if let Some(inode) = s.inodes.get_mut(&i) {
            inode.durable = inode.data.clone();
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_power()?;
        s.durable_dir = s.dir.clone();
        Ok(())
    }
}
