//! Time as an input: a millisecond timestamp supplied by the caller (Sans-IO).

use core::time::Duration;
use serde::{Deserialize, Serialize};

/// A point in time, in milliseconds since the Unix epoch, supplied by the caller.
///
/// The crate never reads a clock: every function that needs the time takes a `Timestamp`.
/// A simulation passes a virtual clock; a server passes `SystemTime::now()`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp `secs` seconds after the Unix epoch (saturating).
    #[must_use]
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Whole seconds since the Unix epoch (the JWT/JWS `NumericDate`, RFC 7519 §2).
    #[must_use]
    pub const fn as_unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// `self - d`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_sub(ms))
    }
}
