//! The card-management command set's error type and its mapping to status words.

use apdu_codec::StatusWord;
use apdu_codec::tlv::{Tag, TlvError};

/// What is wrong with a card-management command or response.
///
/// Every malformed field has its own variant. A card answers
/// [`CommandError::status_word`] (the single place where these errors become status words,
/// following the status words GPC 2.3 chapter 11 lists per command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// An AID outside 5..=16 bytes (GPC 2.3 §11.1.3, ISO/IEC 7816-5 §5.2).
    #[error("AID of {0} bytes (5 to 16 bytes allowed)")]
    AidLength(usize),
    /// Text that is not an even number of hex digits where an AID was expected.
    #[error("AID text is not hex")]
    AidHex,
    /// The command carries another instruction than the parser handles.
    #[error("instruction {found:02X} where {expected:02X} was expected")]
    Instruction {
        /// The instruction the parser handles.
        expected: u8,
        /// The instruction received.
        found: u8,
    },
    /// A P1/P2 combination the command does not define.
    #[error("{command}: P1 {p1:02X} P2 {p2:02X} not defined")]
    P1P2 {
        /// Command name.
        command: &'static str,
        /// P1 received.
        p1: u8,
        /// P2 received.
        p2: u8,
    },
    /// The data field (Lc) has a length the command does not allow.
    #[error("{command}: data field of {len} bytes not allowed")]
    DataLength {
        /// Command name.
        command: &'static str,
        /// Length received.
        len: usize,
    },
    /// A field inside the data has a length outside its allowed range.
    #[error("{field}: length {len} outside {min}..={max}")]
    FieldLength {
        /// Field name.
        field: &'static str,
        /// Length found.
        len: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A field runs past the end of the data.
    #[error("{field}: needs {needed} bytes, {available} left")]
    Truncated {
        /// Field name.
        field: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes after the last field of a structure.
    #[error("{count} unexpected bytes after {field}")]
    TrailingBytes {
        /// The structure that ended.
        field: &'static str,
        /// Bytes left over.
        count: usize,
    },
    /// A mandatory TLV object is missing.
    #[error("mandatory tag {0} missing")]
    MissingTag(Tag),
    /// A TLV object that does not belong where it was found.
    #[error("tag {found} not allowed in {context}")]
    UnexpectedTag {
        /// The structure being parsed.
        context: &'static str,
        /// The tag found.
        found: Tag,
    },
    /// A TLV object that appears twice where it may appear once.
    #[error("tag {0} present more than once")]
    DuplicateTag(Tag),
    /// A field holds a value its definition does not allow.
    #[error("{field}: value {value:02X} not allowed")]
    Value {
        /// Field name.
        field: &'static str,
        /// The value found (first byte when the field is longer).
        value: u32,
    },
    /// A life cycle state coding GPC 2.3 §11.1.1 does not define for this kind of entity.
    #[error("{kind} life cycle state {value:02X} not defined")]
    LifeCycle {
        /// Card, application, security domain or load file.
        kind: &'static str,
        /// The coding found.
        value: u8,
    },
    /// A life cycle transition GPC 2.3 §5 does not allow.
    #[error("{kind} life cycle transition {from:02X} -> {to:02X} not allowed")]
    Transition {
        /// Card, application, security domain or load file.
        kind: &'static str,
        /// The current state.
        from: u8,
        /// The requested state.
        to: u8,
    },
    /// A block of a LOAD or STORE DATA sequence out of order.
    #[error("block number {found:02X} where {expected:02X} was expected")]
    BlockNumber {
        /// The next block number in sequence.
        expected: u8,
        /// The block number received.
        found: u8,
    },
    /// A block of a LOAD or STORE DATA sequence after its last block, or one whose P1
    /// flags differ from the first block's.
    #[error("{0}: block does not continue the current sequence")]
    Sequence(&'static str),
    /// More blocks than a one-byte block number can count (256).
    #[error("{0} bytes need more than 256 blocks")]
    TooManyBlocks(usize),
    /// A value too long for its field or for the card's buffer.
    #[error("{field}: {len} bytes exceed the maximum of {max}")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The requested object is not known (GET DATA tag, DELETE key, GET STATUS match).
    #[error("referenced data not found")]
    NotFound,
    /// A malformed BER-TLV structure.
    #[error("BER-TLV: {0}")]
    Tlv(#[from] TlvError),
    /// The APDU itself could not be encoded or parsed.
    #[error("APDU: {0}")]
    Apdu(#[from] apdu_codec::Error),
    /// The card answered a status word the response parser cannot continue with.
    #[error("card answered {0}")]
    Status(StatusWord),
}

impl CommandError {
    /// The status word a card answers for this error.
    ///
    /// GPC 2.3 chapter 11 (the "Response Message" status tables of every command):
    /// `6700` wrong length (Lc), `6A80` incorrect values in the command data, `6A86`
    /// incorrect P1 P2, `6A88` referenced data not found, `6A84` not enough memory,
    /// `6985` conditions of use not satisfied, `6D00` invalid instruction.
    #[must_use]
    pub fn status_word(&self) -> StatusWord {
        match self {
            CommandError::DataLength { .. } => StatusWord::WRONG_LENGTH,
            CommandError::P1P2 { .. } | CommandError::BlockNumber { .. } => {
                StatusWord::INCORRECT_P1_P2
            }
            CommandError::Instruction { .. } => StatusWord::INS_NOT_SUPPORTED,
            CommandError::NotFound => StatusWord::REFERENCED_DATA_NOT_FOUND,
            CommandError::Transition { .. } | CommandError::Sequence(_) => {
                StatusWord::CONDITIONS_NOT_SATISFIED
            }
            CommandError::TooManyBlocks(_) | CommandError::TooLong { .. } => {
                StatusWord::NOT_ENOUGH_MEMORY
            }
            CommandError::Apdu(e) => StatusWord::from(e),
            CommandError::Status(sw) => *sw,
            CommandError::AidLength(_)
            | CommandError::AidHex
            | CommandError::FieldLength { .. }
            | CommandError::Truncated { .. }
            | CommandError::TrailingBytes { .. }
            | CommandError::MissingTag(_)
            | CommandError::UnexpectedTag { .. }
            | CommandError::DuplicateTag(_)
            | CommandError::Value { .. }
            | CommandError::LifeCycle { .. }
            | CommandError::Tlv(_) => StatusWord::INCORRECT_DATA,
        }
    }
}

impl From<&CommandError> for StatusWord {
    fn from(e: &CommandError) -> Self {
        e.status_word()
    }
}
