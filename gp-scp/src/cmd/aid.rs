//! Application identifiers.

use core::fmt;
use core::str::FromStr;

use super::CommandError;

/// Shortest AID: RID of 5 bytes (ISO/IEC 7816-5 §5.2, GPC 2.3 §11.1.3).
pub const AID_MIN_LEN: usize = 5;
/// Longest AID: RID of 5 bytes plus a PIX of up to 11 bytes (ISO/IEC 7816-5 §5.2).
pub const AID_MAX_LEN: usize = 16;

/// An application identifier of 5 to 16 bytes, held inline (no allocation).
///
/// ```
/// use gp_scp::cmd::Aid;
/// let isd: Aid = "A000000151000000".parse()?;
/// assert_eq!(isd.as_bytes(), &[0xA0, 0, 0, 0x01, 0x51, 0, 0, 0]);
/// assert_eq!(isd.to_string(), "A000000151000000");
/// assert!(Aid::new(&[0xA0, 0, 0]).is_err());
/// # Ok::<(), gp_scp::cmd::CommandError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aid {
    len: u8,
    bytes: [u8; AID_MAX_LEN],
}

impl Aid {
    /// The GlobalPlatform ISD AID `A000000151000000`: the GlobalPlatform RID `A000000151` with PIX `000000`.
    pub const GP_ISD: Aid = Aid::from_array([0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00]);
    /// The Open Platform / Visa ISD AID `A000000003000000` (OP 2.0.1 / VGP), still used by
    /// many cards.
    pub const OP_ISD: Aid = Aid::from_array([0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00]);

    /// An AID from its bytes.
    ///
    /// # Errors
    /// [`CommandError::AidLength`] outside 5..=16 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, CommandError> {
        if !(AID_MIN_LEN..=AID_MAX_LEN).contains(&bytes.len()) {
            return Err(CommandError::AidLength(bytes.len()));
        }
        let mut out = [0u8; AID_MAX_LEN];
        let Some(dst) = out.get_mut(..bytes.len()) else {
            return Err(CommandError::AidLength(bytes.len()));
        };
        dst.copy_from_slice(bytes);
        Ok(Aid {
            len: u8::try_from(bytes.len()).map_err(|_| CommandError::AidLength(bytes.len()))?,
            bytes: out,
        })
    }

    /// An AID from a fixed array (5..=16 bytes checked at compile time in const contexts).
    ///
    /// # Panics
    /// In a const context, compilation fails when `N` is outside 5..=16; at run time the
    /// function panics in that case. Use [`Aid::new`] for input-derived bytes.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)]
    pub const fn from_array<const N: usize>(bytes: [u8; N]) -> Self {
        assert!(N >= AID_MIN_LEN && N <= AID_MAX_LEN, "AID length 5..=16");
        let mut out = [0u8; AID_MAX_LEN];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        // N <= 16 was asserted above.
        Aid {
            len: N as u8,
            bytes: out,
        }
    }

    /// The AID bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    /// Length in bytes (5..=16).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Always `false`: an AID has at least 5 bytes.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The registered application provider identifier (first 5 bytes).
    #[must_use]
    pub fn rid(&self) -> &[u8] {
        self.as_bytes().get(..AID_MIN_LEN).unwrap_or(&[])
    }

    /// `true` when this AID starts with `prefix` (partial selection, GET STATUS search).
    #[must_use]
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.as_bytes().starts_with(prefix)
    }
}

impl AsRef<[u8]> for Aid {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl TryFrom<&[u8]> for Aid {
    type Error = CommandError;

    fn try_from(bytes: &[u8]) -> Result<Self, CommandError> {
        Aid::new(bytes)
    }
}

impl fmt::Display for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Aid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aid({self})")
    }
}

impl FromStr for Aid {
    type Err = CommandError;

    /// Hex digits, upper or lower case, no separators.
    fn from_str(s: &str) -> Result<Self, CommandError> {
        let digits = s.as_bytes();
        if !digits.len().is_multiple_of(2) {
            return Err(CommandError::AidHex);
        }
        let len = digits.len() / 2;
        if !(AID_MIN_LEN..=AID_MAX_LEN).contains(&len) {
            return Err(CommandError::AidLength(len));
        }
        let mut out = [0u8; AID_MAX_LEN];
        for (dst, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (
                pair.first().and_then(|c| hex_digit(*c)),
                pair.get(1).and_then(|c| hex_digit(*c)),
            ) else {
                return Err(CommandError::AidHex);
            };
            *dst = (hi << 4) | lo;
        }
        Aid::new(out.get(..len).unwrap_or(&[]))
    }
}

const fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
