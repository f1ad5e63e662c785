//! Response APDUs: data field followed by SW1 SW2 (ISO/IEC 7816-4 §5.1).

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

use crate::{Error, StatusWord};

/// A parsed response APDU borrowing its data field.
///
/// ```
/// use apdu_codec::{ResponseView, StatusWord};
/// let rsp = ResponseView::try_from(&[0x01, 0x02, 0x90, 0x00][..])?;
/// assert_eq!(rsp.data(), &[0x01, 0x02]);
/// assert_eq!(rsp.status(), StatusWord::SUCCESS);
/// # Ok::<(), apdu_codec::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseView<'a> {
    data: &'a [u8],
    status: StatusWord,
}

/// Parse a response APDU (`data || SW1 SW2`).
///
/// # Errors
/// [`Error::ResponseTooShort`] when fewer than two bytes are given.
pub fn parse_response(bytes: &[u8]) -> Result<ResponseView<'_>, Error> {
    match bytes.split_last_chunk::<2>() {
        Some((data, sw)) => Ok(ResponseView {
            data,
            status: StatusWord::from_bytes(*sw),
        }),
        None => Err(Error::ResponseTooShort { len: bytes.len() }),
    }
}

impl<'a> TryFrom<&'a [u8]> for ResponseView<'a> {
    type Error = Error;

    fn try_from(bytes: &'a [u8]) -> Result<Self, Error> {
        parse_response(bytes)
    }
}

impl<'a> ResponseView<'a> {
    /// A view over separate data and status.
    #[must_use]
    pub const fn new(data: &'a [u8], status: StatusWord) -> Self {
        ResponseView { data, status }
    }

    /// The data field.
    #[must_use]
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The status word.
    #[must_use]
    pub const fn status(&self) -> StatusWord {
        self.status
    }

    /// An owned copy.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn to_response(&self) -> Response {
        Response {
            data: self.data.to_vec(),
            status: self.status,
        }
    }
}

impl fmt::Debug for ResponseView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResponseView {{ data: {} bytes, status: {:?} }}",
            self.data.len(),
            self.status
        )
    }
}

/// An owned response APDU.
///
/// ```
/// use apdu_codec::{Response, StatusWord};
/// let rsp = Response::new(vec![0xCA, 0xFE], StatusWord::SUCCESS);
/// assert_eq!(rsp.to_vec(), [0xCA, 0xFE, 0x90, 0x00]);
/// assert_eq!(Response::status_only(StatusWord::WRONG_LENGTH).to_vec(), [0x67, 0x00]);
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Response {
    /// Data field.
    pub data: Vec<u8>,
    /// Status word.
    pub status: StatusWord,
}

#[cfg(feature = "alloc")]
impl Response {
    /// A response with data and status.
    #[must_use]
    pub const fn new(data: Vec<u8>, status: StatusWord) -> Self {
        Response { data, status }
    }

    /// `data || 9000`.
    #[must_use]
    pub const fn success(data: Vec<u8>) -> Self {
        Response {
            data,
            status: StatusWord::SUCCESS,
        }
    }

    /// A status word without data.
    #[must_use]
    pub const fn status_only(status: StatusWord) -> Self {
        Response {
            data: Vec::new(),
            status,
        }
    }

    /// Append `data || SW1 SW2` to a buffer.
    pub fn encode_into(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.data);
        buf.put_slice(&self.status.to_bytes());
    }

    /// `data || SW1 SW2` as a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        self.encode_into(&mut out);
        out
    }

    /// A borrowed view.
    #[must_use]
    pub fn view(&self) -> ResponseView<'_> {
        ResponseView {
            data: &self.data,
            status: self.status,
        }
    }
}

#[cfg(feature = "alloc")]
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response {{ data: {} bytes, status: {:?} }}",
            self.data.len(),
            self.status
        )
    }
}

#[cfg(feature = "alloc")]
impl From<StatusWord> for Response {
    fn from(status: StatusWord) -> Self {
        Response::status_only(status)
    }
}
