//! The low-level medium under [`DiskStore`](super::DiskStore): a flat directory of files.
//!
//! Every mutating call is one *write point*. [`FsMedium`] is a real directory; a
//! [`SimDisk`](super::SimDisk) is an in-memory simulation that can cut power at any write
//! point, keeping any prefix of the torn write.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The advisory lock file of an [`FsMedium`] directory.
const LOCK: &str = "LOCK";

/// A flat directory of named files with the operations a journaled store needs.
///
/// Durability contract (POSIX-like): data written to a file is durable after
/// [`sync`](Self::sync) of that file; creating, renaming and removing names is durable after
/// [`sync_dir`](Self::sync_dir).
pub trait Medium: Send {
    /// The whole content of a file, or `None` if it does not exist.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure.
    fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Create or truncate `name` and write `data` to it (one write point).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn write_file(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError>;

    /// Append `data` to `name`, creating it if needed (one write point).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn append(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError>;

    /// Truncate `name` to `len` bytes (one write point).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StoreError>;

    /// Atomically replace `to` with `from` (one write point).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StoreError>;

    /// Remove `name` if it exists (one write point).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn remove(&mut self, name: &str) -> Result<(), StoreError>;

    /// Make the data of `name` durable (`fsync`).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn sync(&mut self, name: &str) -> Result<(), StoreError>;

    /// Make the directory entries durable (`fsync` of the directory).
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or power cut.
    fn sync_dir(&mut self) -> Result<(), StoreError>;
}

/// A real directory on disk.
#[derive(Debug)]
pub struct FsMedium {
    dir: PathBuf,
    /// Held for the lifetime of the medium: an advisory lock on `LOCK` so that two stores
    /// never share a directory.
    _lock: File,
}

fn io_err(name: &str) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        file: name.to_owned(),
        source,
    }
}

impl FsMedium {
    /// Use `dir` (created if missing) as the medium, taking an exclusive advisory lock on
    /// its `LOCK` file.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created, [`StoreError::Locked`] when
    /// another medium holds the lock.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(io_err("."))?;
            // Make the new directory's own name durable, so a crash right after the first
            // commit cannot lose the whole store.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(".."))?;
            }
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .map_err(io_err(LOCK))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(LOCK)(e)),
        }
        Ok(Self { dir, _lock: lock })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Medium for FsMedium {
    fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match File::open(self.path(name)) {
            Ok(mut f) => {
                let mut data = Vec::new();
                f.read_to_end(&mut data).map_err(io_err(name))?;
                Ok(Some(data))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(name)(e)),
        }
    }

    fn write_file(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let mut f = File::create(self.path(name)).map_err(io_err(name))?;
        f.write_all(data).map_err(io_err(name))
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .map_err(io_err(name))?;
        f.write_all(data).map_err(io_err(name))
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StoreError> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.path(name))
            .map_err(io_err(name))?;
        f.set_len(len).map_err(io_err(name))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        fs::rename(self.path(from), self.path(to)).map_err(io_err(to))
    }

    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(name)(e)),
        }
    }

    fn sync(&mut self, name: &str) -> Result<(), StoreError> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.path(name))
            .map_err(io_err(name))?;
        f.sync_all().map_err(io_err(name))
    }

    fn sync_dir(&mut self) -> Result<(), StoreError> {
        // On Unix a directory is fsynced through a read-only handle.
        let d = File::open(&self.dir).map_err(io_err("."))?;
        d.sync_all().map_err(io_err("."))
    }
}
