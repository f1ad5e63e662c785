//! The crate's error type.

use crate::store::StoreError;
use crate::transport::TransportError;

/// Everything that can go wrong in the virtual secure element.
///
/// Card-visible failures never surface here: the card answers them with a status word.
/// This type is for the integrator-facing operations (opening storage, serving a transport,
/// loading a profile).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The persistent store failed (I/O, corruption, or an injected power cut).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The vpcd transport failed.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
}
