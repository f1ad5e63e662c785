//! The crate's one error type.

use crate::StatusWord;
use crate::tlv::TlvError;

/// Everything that can go wrong when parsing or encoding APDUs and TLV.
///
/// Card-side code answers a malformed command with [`StatusWord::from(&Error)`](StatusWord).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer than the four header bytes CLA INS P1 P2.
    #[error("a command APDU needs at least 4 header bytes, got {len}")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// CLA `FF` is reserved (ISO/IEC 7816-4 §5.4.1: invalid class).
    #[error("CLA FF is invalid (reserved for protocol parameter selection)")]
    InvalidClass,
    /// An Lc field of zero (short `Lc=00` means "extended", extended `Lc=0000` is invalid).
    #[error("Lc of zero is not allowed")]
    ZeroLc,
    /// The body is shorter than Lc announces.
    #[error("Lc announces {expected} data bytes but only {available} follow")]
    Truncated {
        /// Data bytes Lc announces.
        expected: usize,
        /// Data bytes present.
        available: usize,
    },
    /// Bytes left over after the Le field.
    #[error("{count} unexpected bytes after the end of the APDU")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A short Lc with an extended Le, or an extended Lc with a short Le (ISO/IEC 7816-4 §5.1
    /// forbids mixing the two forms in one command).
    #[error("short and extended length fields mixed in one command")]
    MixedLengthForms,
    /// An extended-length marker (`00`) without a complete two-byte field after it.
    #[error("incomplete extended length field")]
    IncompleteExtendedLength,
    /// A response APDU without its two status bytes.
    #[error("a response APDU needs at least the 2 status bytes, got {len}")]
    ResponseTooShort {
        /// Bytes received.
        len: usize,
    },
    /// Data field too long for the requested or any length form.
    #[error("data field of {len} bytes exceeds the maximum of {max}")]
    DataTooLong {
        /// Data length.
        len: usize,
        /// Limit of the chosen form.
        max: usize,
    },
    /// Le outside 1..=65536 (or 1..=256 in short form).
    #[error("Le of {le} is outside 1..={max}")]
    LeOutOfRange {
        /// Requested Le.
        le: usize,
        /// Limit of the chosen form.
        max: usize,
    },
    /// A malformed BER-TLV structure.
    #[error("BER-TLV: {0}")]
    Tlv(#[from] TlvError),
    /// The exchange helper was fed a response when it expected none, or after it finished.
    #[error("exchange: unexpected response ({0})")]
    UnexpectedResponse(&'static str),
    /// The card kept answering 61xx/6Cxx beyond the exchange helper's round limit.
    #[error("exchange: more than {0} GET RESPONSE / resend rounds")]
    TooManyRounds(usize),
}

impl From<&Error> for StatusWord {
    /// The status word a card answers for a command it could not parse.
    fn from(error: &Error) -> Self {
        match error {
            Error::InvalidClass => StatusWord::CLA_NOT_SUPPORTED,
            Error::Tlv(_) => StatusWord::INCORRECT_DATA,
            _ => StatusWord::WRONG_LENGTH,
        }
    }
}

impl From<Error> for StatusWord {
    fn from(error: Error) -> Self {
        StatusWord::from(&error)
    }
}
