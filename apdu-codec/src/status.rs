//! Status words SW1 SW2 (ISO/IEC 7816-4 §5.6, GlobalPlatform Card Specification 2.3 §11,
//! PBOC 2.0 electronic purse).

use core::fmt;

/// A status word (SW1 SW2).
///
/// ```
/// use apdu_codec::StatusWord;
/// let sw = StatusWord::from_bytes([0x63, 0xC2]);
/// assert_eq!(sw.retries_left(), Some(2));
/// assert!(sw.is_warning());
/// assert_eq!(StatusWord::new(0x61, 0x10).bytes_available(), Some(16));
/// assert_eq!(StatusWord::new(0x6C, 0x00).exact_length(), Some(256));
/// assert_eq!(StatusWord::SECURITY_STATUS_NOT_SATISFIED.meaning(), "security status not satisfied");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(u16);

macro_rules! status_words {
    ($($(#[doc = $doc:literal])* $name:ident = $value:literal, $meaning:literal;)*) => {
        impl StatusWord {
            $(
                $(#[doc = $doc])*
                #[doc = concat!("`", stringify!($value), "`: ", $meaning, ".")]
                pub const $name: StatusWord = StatusWord($value);
            )*

            fn known_meaning(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($meaning),)*
                    _ => None,
                }
            }
        }
    };
}

status_words! {
    /// ISO/IEC 7816-4 §5.6.
    SUCCESS = 0x9000, "success";
    /// ISO/IEC 7816-4: warning, state of non-volatile memory unchanged.
    WARNING_UNCHANGED = 0x6200, "warning: no information given, non-volatile memory unchanged";
    /// ISO/IEC 7816-4.
    PART_OF_DATA_CORRUPTED = 0x6281, "warning: part of returned data may be corrupted";
    /// ISO/IEC 7816-4.
    END_OF_DATA = 0x6282, "warning: end of file or record reached before reading Le bytes";
    /// ISO/IEC 7816-4; GlobalPlatform: card or application locked (on SELECT).
    SELECTED_FILE_INVALIDATED = 0x6283, "warning: selected file or application invalidated (locked)";
    /// ISO/IEC 7816-4: warning, non-volatile memory changed.
    WARNING_CHANGED = 0x6300, "warning: verification failed or no information given, non-volatile memory changed";
    /// GlobalPlatform GET STATUS / GET DATA: more data available with the next occurrence.
    MORE_DATA = 0x6310, "warning: more data available (send the command again for the next occurrence)";
    /// ISO/IEC 7816-4: execution error, memory unchanged.
    EXECUTION_ERROR = 0x6400, "execution error, non-volatile memory unchanged";
    /// ISO/IEC 7816-4.
    MEMORY_FAILURE = 0x6581, "memory failure";
    /// ISO/IEC 7816-4.
    WRONG_LENGTH = 0x6700, "wrong length (Lc or Le)";
    /// ISO/IEC 7816-4.
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881, "logical channel not supported or not open";
    /// ISO/IEC 7816-4.
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882, "secure messaging not supported";
    /// ISO/IEC 7816-4.
    LAST_COMMAND_EXPECTED = 0x6883, "last command of the chain expected";
    /// ISO/IEC 7816-4.
    CHAINING_NOT_SUPPORTED = 0x6884, "command chaining not supported";
    /// ISO/IEC 7816-4.
    COMMAND_INCOMPATIBLE = 0x6981, "command incompatible with file structure";
    /// ISO/IEC 7816-4; GlobalPlatform: authentication or secure messaging failed.
    SECURITY_STATUS_NOT_SATISFIED = 0x6982, "security status not satisfied";
    /// ISO/IEC 7816-4; PBOC: PIN blocked.
    AUTHENTICATION_METHOD_BLOCKED = 0x6983, "authentication method blocked";
    /// ISO/IEC 7816-4.
    REFERENCE_DATA_NOT_USABLE = 0x6984, "reference data not usable";
    /// ISO/IEC 7816-4.
    CONDITIONS_NOT_SATISFIED = 0x6985, "conditions of use not satisfied";
    /// ISO/IEC 7816-4.
    COMMAND_NOT_ALLOWED = 0x6986, "command not allowed (no current EF)";
    /// ISO/IEC 7816-4.
    SM_DATA_OBJECTS_MISSING = 0x6987, "expected secure messaging data objects missing";
    /// ISO/IEC 7816-4.
    SM_DATA_OBJECTS_INCORRECT = 0x6988, "incorrect secure messaging data objects";
    /// Java Card: applet selection failed.
    APPLET_SELECT_FAILED = 0x6999, "applet selection failed";
    /// ISO/IEC 7816-4.
    INCORRECT_DATA = 0x6A80, "incorrect parameters in the command data field";
    /// ISO/IEC 7816-4.
    FUNCTION_NOT_SUPPORTED = 0x6A81, "function not supported";
    /// ISO/IEC 7816-4; GlobalPlatform: application not found.
    NOT_FOUND = 0x6A82, "file or application not found";
    /// ISO/IEC 7816-4.
    RECORD_NOT_FOUND = 0x6A83, "record not found";
    /// ISO/IEC 7816-4.
    NOT_ENOUGH_MEMORY = 0x6A84, "not enough memory space";
    /// ISO/IEC 7816-4.
    LC_INCONSISTENT_WITH_P1_P2 = 0x6A85, "Lc inconsistent with TLV structure";
    /// ISO/IEC 7816-4.
    INCORRECT_P1_P2 = 0x6A86, "incorrect parameters P1-P2";
    /// ISO/IEC 7816-4.
    LC_INCONSISTENT = 0x6A87, "Lc inconsistent with P1-P2";
    /// ISO/IEC 7816-4; GlobalPlatform: referenced data (key, object) not found.
    REFERENCED_DATA_NOT_FOUND = 0x6A88, "referenced data not found";
    /// ISO/IEC 7816-4.
    WRONG_P1_P2 = 0x6B00, "wrong parameters P1-P2";
    /// ISO/IEC 7816-4.
    INS_NOT_SUPPORTED = 0x6D00, "instruction not supported or invalid";
    /// ISO/IEC 7816-4.
    CLA_NOT_SUPPORTED = 0x6E00, "class not supported";
    /// ISO/IEC 7816-4.
    UNKNOWN_ERROR = 0x6F00, "no precise diagnosis";
    /// PBOC 2.0 electronic purse: MAC invalid.
    MAC_INVALID = 0x9302, "MAC invalid";
    /// PBOC 2.0 electronic purse: application permanently locked.
    APPLICATION_PERMANENTLY_LOCKED = 0x9303, "application permanently locked";
    /// PBOC 2.0 electronic purse: insufficient balance.
    INSUFFICIENT_BALANCE = 0x9401, "insufficient balance";
    /// PBOC 2.0 electronic purse: transaction counter reached its limit.
    COUNTER_LIMIT_REACHED = 0x9402, "transaction counter reached its limit";
    /// PBOC 2.0 electronic purse: key index not supported.
    KEY_INDEX_NOT_SUPPORTED = 0x9403, "key index not supported";
    /// PBOC 2.0 electronic purse: the required MAC is unavailable.
    MAC_UNAVAILABLE = 0x9406, "required MAC unavailable";
    /// PBOC 2.0 electronic purse: the load would exceed the maximum balance.
    MAXIMUM_BALANCE_EXCEEDED = 0x9501, "maximum balance exceeded";
}

impl StatusWord {
    /// A status word from SW1 and SW2.
    #[must_use]
    pub const fn new(sw1: u8, sw2: u8) -> Self {
        StatusWord(u16::from_be_bytes([sw1, sw2]))
    }

    /// A status word from its two bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 2]) -> Self {
        StatusWord(u16::from_be_bytes(bytes))
    }

    /// A status word from its 16-bit value (`0x9000`).
    #[must_use]
    pub const fn from_u16(value: u16) -> Self {
        StatusWord(value)
    }

    /// The 16-bit value.
    #[must_use]
    pub const fn to_u16(self) -> u16 {
        self.0
    }

    /// SW1 SW2 as bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// SW1.
    #[must_use]
    pub const fn sw1(self) -> u8 {
        self.to_bytes()[0]
    }

    /// SW2.
    #[must_use]
    pub const fn sw2(self) -> u8 {
        self.to_bytes()[1]
    }

    /// `9000`, or `61xx` (success with more bytes to fetch).
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000 || self.sw1() == 0x61
    }

    /// `62xx` or `63xx` (processing completed with a warning).
    #[must_use]
    pub const fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }

    /// Anything that is neither success nor warning.
    #[must_use]
    pub const fn is_error(self) -> bool {
        !self.is_success() && !self.is_warning()
    }

    /// For `61xx`: how many bytes GET RESPONSE can fetch (`6100` = 256).
    #[must_use]
    pub const fn bytes_available(self) -> Option<usize> {
        if self.sw1() == 0x61 {
            Some(if self.sw2() == 0 {
                256
            } else {
                self.sw2() as usize
            })
        } else {
            None
        }
    }

    /// For `6Cxx`: the exact Le to resend the command with (`6C00` = 256).
    #[must_use]
    pub const fn exact_length(self) -> Option<usize> {
        if self.sw1() == 0x6C {
            Some(if self.sw2() == 0 {
                256
            } else {
                self.sw2() as usize
            })
        } else {
            None
        }
    }

    /// For `63Cx`: the number of tries left (a counter, ISO/IEC 7816-4 §5.6 table 6).
    #[must_use]
    pub const fn retries_left(self) -> Option<u8> {
        if self.sw1() == 0x63 && self.sw2() & 0xF0 == 0xC0 {
            Some(self.sw2() & 0x0F)
        } else {
            None
        }
    }

    /// `63Cx` for `x` tries left (values above 15 saturate).
    #[must_use]
    pub const fn with_retries_left(tries: u8) -> Self {
        let tries = if tries > 0x0F { 0x0F } else { tries };
        StatusWord::new(0x63, 0xC0 | tries)
    }

    /// A human-readable meaning, for status words this crate knows and the parametrised
    /// families (61xx, 6Cxx, 63Cx, 62xx, 63xx, 64xx-66xx, 68xx, 69xx, 6Axx).
    #[must_use]
    pub fn meaning(self) -> &'static str {
        if let Some(meaning) = self.known_meaning() {
            return meaning;
        }
        match self.sw1() {
            0x61 => "success, more response bytes available (GET RESPONSE)",
            0x6C => "wrong Le, resend with the exact length in SW2",
            0x63 if self.retries_left().is_some() => {
                "verification failed, counter gives tries left"
            }
            0x62 => "warning, non-volatile memory unchanged",
            0x63 => "warning, non-volatile memory changed",
            0x64 => "execution error, non-volatile memory unchanged",
            0x65 => "execution error, non-volatile memory changed",
            0x66 => "security-related issue",
            0x68 => "functions in CLA not supported",
            0x69 => "command not allowed",
            0x6A => "wrong parameters P1-P2",
            0x93..=0x95 => "electronic purse error",
            _ => "unknown status word",
        }
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

impl fmt::Display for StatusWord {
    /// `6982 (security status not satisfied)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}

impl From<u16> for StatusWord {
    fn from(value: u16) -> Self {
        StatusWord(value)
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        sw.0
    }
}

impl From<[u8; 2]> for StatusWord {
    fn from(bytes: [u8; 2]) -> Self {
        StatusWord::from_bytes(bytes)
    }
}
