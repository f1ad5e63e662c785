//! A response APDU in a fixed buffer, so that the applet's hot path does not allocate.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Response, ResponseView, StatusWord};

use crate::Error;

/// Largest response data field an applet in this crate produces.
pub const REPLY_MAX: usize = 256;

/// A response: up to [`REPLY_MAX`] data bytes and a status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    data: [u8; REPLY_MAX],
    len: usize,
    status: StatusWord,
}

impl Reply {
    /// An empty `9000` reply.
    #[must_use]
    pub const fn new() -> Self {
        Reply {
            data: [0; REPLY_MAX],
            len: 0,
            status: StatusWord::SUCCESS,
        }
    }

    /// A reply carrying only a status word.
    #[must_use]
    pub const fn status_only(status: StatusWord) -> Self {
        Reply {
            data: [0; REPLY_MAX],
            len: 0,
            status,
        }
    }

    /// Append data.
    ///
    /// # Errors
    /// [`Error::WrongLength`] when the reply would exceed [`REPLY_MAX`] bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(Error::WrongLength)?;
        self.data
            .get_mut(self.len..end)
            .ok_or(Error::WrongLength)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Drop the data and set an error status word.
    pub fn fail(&mut self, status: StatusWord) {
        self.len = 0;
        self.status = status;
    }

    /// Set the status word, keeping the data.
    pub fn set_status(&mut self, status: StatusWord) {
        self.status = status;
    }

    /// The data field.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        self.data.get(..self.len).unwrap_or(&[])
    }

    /// The status word.
    #[must_use]
    pub const fn status(&self) -> StatusWord {
        self.status
    }

    /// A borrowed response view.
    #[must_use]
    pub fn view(&self) -> ResponseView<'_> {
        ResponseView::new(self.data(), self.status)
    }

    /// An owned `apdu_codec::Response`.
    #[must_use]
    pub fn to_response(&self) -> Response {
        Response::new(self.data().to_vec(), self.status)
    }

    /// `data || SW1 SW2`.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.to_response().to_vec()
    }
}

impl Default for Reply {
    fn default() -> Self {
        Reply::new()
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply {{ data: ")?;
        for b in self.data() {
            write!(f, "{b:02X}")?;
        }
        write!(f, ", status: {:?} }}", self.status)
    }
}

/// Fresh randomness for one command, supplied by the host runtime (the applet draws none
/// itself). INITIALIZE uses the first 4 bytes as the card random, GET CHALLENGE the first 4
/// or 8, the value-block tag all 16.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Entropy(pub [u8; 16]);

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(<redacted>)")
    }
}

impl Entropy {
    /// The first `N` bytes.
    #[must_use]
    pub fn take<const N: usize>(&self) -> [u8; N] {
        core::array::from_fn(|i| self.0.get(i).copied().unwrap_or(0))
    }
}
