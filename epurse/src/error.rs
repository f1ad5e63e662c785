//! The crate's one error type and its mapping to status words.

use apdu_codec::StatusWord;

/// Everything that can go wrong in the purse, the tag, the ticket store and their host sides.
///
/// Card-visible errors become a status word in one place: `StatusWord::from(&Error)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field, key or message of the wrong length.
    #[error("wrong length: expected {expected}, got {actual}")]
    BadLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// A malformed APDU.
    #[error("APDU: {0}")]
    Apdu(#[from] apdu_codec::Error),
    /// The card answered with a status word other than 9000.
    #[error("card answered {0}")]
    Card(StatusWord),
    /// CLA not supported by the applet (6E00) or secure messaging where none is expected.
    #[error("class byte not supported")]
    ClassNotSupported,
    /// Instruction not supported (6D00).
    #[error("instruction not supported")]
    InsNotSupported,
    /// Wrong P1-P2 (6A86).
    #[error("incorrect P1-P2")]
    WrongP1P2,
    /// Wrong Lc or Le (6700).
    #[error("wrong length of the command")]
    WrongLength,
    /// Data field content invalid (6A80).
    #[error("incorrect data in the command")]
    IncorrectData,
    /// Conditions of use not satisfied (6985): no pending INITIALIZE, wrong lifecycle state.
    #[error("conditions of use not satisfied")]
    ConditionsNotSatisfied,
    /// Security status not satisfied (6982): PIN not verified for an ED operation.
    #[error("security status not satisfied")]
    SecurityStatusNotSatisfied,
    /// A record or file that does not exist (6A83 / 6A82).
    #[error("record not found")]
    RecordNotFound,
    /// The AID does not match this applet (6A82).
    #[error("application not found")]
    NotFound,
    /// Referenced data (a key, a ticket) not found (6A88).
    #[error("referenced data not found")]
    ReferencedDataNotFound,
    /// PIN verification failed; tries left (63Cx).
    #[error("PIN wrong, {tries_left} tries left")]
    PinWrong {
        /// Tries left.
        tries_left: u8,
    },
    /// PIN blocked (6983).
    #[error("PIN blocked")]
    PinBlocked,
    /// MAC, MAC1, MAC2 or a cryptogram invalid (9302).
    #[error("MAC invalid")]
    MacInvalid,
    /// TAC does not verify (host side only).
    #[error("TAC invalid")]
    TacInvalid,
    /// The application is permanently locked (9303).
    #[error("application permanently locked")]
    PermanentlyLocked,
    /// The application is temporarily blocked by the issuer (6985 on transactions, 6283 on SELECT).
    #[error("application blocked")]
    ApplicationBlocked,
    /// Insufficient balance (9401).
    #[error("insufficient balance")]
    InsufficientBalance,
    /// Transaction counter at FFFF (9402).
    #[error("transaction counter exhausted")]
    CounterLimitReached,
    /// Key index not supported (9403).
    #[error("key index not supported")]
    KeyIndexNotSupported,
    /// GET TRANSACTION PROVE: no record for that ATC and type (9406).
    #[error("MAC unavailable")]
    MacUnavailable,
    /// The load would exceed the maximum balance (9501).
    #[error("maximum balance exceeded")]
    MaximumBalanceExceeded,
    /// The date in the command lies outside the application's validity period (6985, see
    /// `docs/epurse.md`).
    #[error("application expired or not yet valid")]
    ApplicationExpired,
    /// Not enough room (6A84): log of tickets or key table full.
    #[error("not enough memory")]
    NotEnoughMemory,
    /// A persisted state that does not decode: bad magic, unknown version, bad checksum or
    /// an impossible field.
    #[error("persistent state: {0}")]
    StateEncoding(&'static str),
    /// Host side: no master key for that function, index or version.
    #[error("no such master key")]
    UnknownMasterKey,
    /// Host side: the card's answer does not belong to the transaction in progress.
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
    /// Value-block tag: a value block failed its integrity check or an operation would
    /// overflow (ours, see `docs/value-tag.md`).
    #[error("value block invalid")]
    ValueBlockInvalid,
}

impl From<&Error> for StatusWord {
    /// The status word a card answers for this error.
    fn from(error: &Error) -> Self {
        match error {
            Error::BadLength { .. } | Error::WrongLength | Error::Apdu(_) => {
                StatusWord::WRONG_LENGTH
            }
            Error::Card(sw) => *sw,
            Error::ClassNotSupported => StatusWord::CLA_NOT_SUPPORTED,
            Error::InsNotSupported => StatusWord::INS_NOT_SUPPORTED,
            Error::WrongP1P2 => StatusWord::INCORRECT_P1_P2,
            Error::IncorrectData | Error::StateEncoding(_) => StatusWord::INCORRECT_DATA,
            Error::ConditionsNotSatisfied
            | Error::ApplicationBlocked
            | Error::ApplicationExpired
            | Error::Unexpected(_) => StatusWord::CONDITIONS_NOT_SATISFIED,
            Error::SecurityStatusNotSatisfied => StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            Error::RecordNotFound => StatusWord::RECORD_NOT_FOUND,
            Error::NotFound => StatusWord::NOT_FOUND,
            Error::ReferencedDataNotFound | Error::UnknownMasterKey => {
                StatusWord::REFERENCED_DATA_NOT_FOUND
            }
            Error::PinWrong { tries_left } => StatusWord::with_retries_left(*tries_left),
            Error::PinBlocked => StatusWord::AUTHENTICATION_METHOD_BLOCKED,
            Error::MacInvalid | Error::TacInvalid => StatusWord::MAC_INVALID,
            Error::PermanentlyLocked => StatusWord::APPLICATION_PERMANENTLY_LOCKED,
            Error::InsufficientBalance => StatusWord::INSUFFICIENT_BALANCE,
            Error::CounterLimitReached => StatusWord::COUNTER_LIMIT_REACHED,
            Error::KeyIndexNotSupported => StatusWord::KEY_INDEX_NOT_SUPPORTED,
            Error::MacUnavailable => StatusWord::MAC_UNAVAILABLE,
            Error::MaximumBalanceExceeded => StatusWord::MAXIMUM_BALANCE_EXCEEDED,
            Error::NotEnoughMemory => StatusWord::NOT_ENOUGH_MEMORY,
            Error::ValueBlockInvalid => StatusWord::EXECUTION_ERROR,
        }
    }
}

impl From<Error> for StatusWord {
    fn from(error: Error) -> Self {
        StatusWord::from(&error)
    }
}
