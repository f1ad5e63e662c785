//! Command APDUs (ISO/IEC 7816-4 §5.1): a zero-copy view for parsing and an owned builder.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

use crate::{Cla, Error, MAX_EXTENDED_LE, MAX_SHORT_LE};
#[cfg(feature = "alloc")]
use crate::{MAX_EXTENDED_DATA, MAX_SHORT_DATA};

/// The seven command cases of ISO/IEC 7816-4 §5.1 (Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// Header only.
    Case1,
    /// Short Le, no data.
    Case2Short,
    /// Short Lc and data, no Le.
    Case3Short,
    /// Short Lc, data and short Le.
    Case4Short,
    /// Extended Le, no data (`00 Le1 Le2`).
    Case2Extended,
    /// Extended Lc and data, no Le (`00 Lc1 Lc2 data`).
    Case3Extended,
    /// Extended Lc, data and extended Le (`00 Lc1 Lc2 data Le1 Le2`).
    Case4Extended,
}

impl Case {
    /// `true` for the extended-length cases.
    #[must_use]
    pub const fn is_extended(self) -> bool {
        matches!(
            self,
            Case::Case2Extended | Case::Case3Extended | Case::Case4Extended
        )
    }

    /// The case's usual name: `1`, `2S`, `3S`, `4S`, `2E`, `3E`, `4E`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Case::Case1 => "1",
            Case::Case2Short => "2S",
            Case::Case3Short => "3S",
            Case::Case4Short => "4S",
            Case::Case2Extended => "2E",
            Case::Case3Extended => "3E",
            Case::Case4Extended => "4E",
        }
    }
}

/// Which length form an encoder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LengthForm {
    /// Short when the data (≤ 255) and Le (≤ 256) fit, extended otherwise.
    #[default]
    Auto,
    /// Always short; encoding fails when the command does not fit.
    Short,
    /// Always extended (even for a case 1 command, which has no length fields).
    Extended,
}

/// A parsed command APDU borrowing its data field from the input.
///
/// Parsing never allocates and never panics; every malformed input is a typed [`Error`].
///
/// ```
/// use apdu_codec::{Case, CommandView};
/// // SELECT the ISD by AID, case 4S with Le = 256.
/// let bytes = [0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0, 0, 0x01, 0x51, 0, 0, 0, 0x00];
/// let cmd = CommandView::try_from(&bytes[..])?;
/// assert_eq!(cmd.ins(), 0xA4);
/// assert_eq!(cmd.data(), &[0xA0, 0, 0, 0x01, 0x51, 0, 0, 0]);
/// assert_eq!(cmd.le(), Some(256));
/// assert_eq!(cmd.case(), Case::Case4Short);
/// # Ok::<(), apdu_codec::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandView<'a> {
    header: [u8; 4],
    data: &'a [u8],
    le: Option<usize>,
    extended: bool,
}

/// Parse one command APDU (the whole slice) into a zero-copy view.
///
/// # Errors
/// [`Error::TooShort`], [`Error::InvalidClass`], [`Error::ZeroLc`], [`Error::Truncated`],
/// [`Error::TrailingBytes`], [`Error::MixedLengthForms`], [`Error::IncompleteExtendedLength`].
pub fn parse_command(bytes: &[u8]) -> Result<CommandView<'_>, Error> {
    let (header, body) = match bytes.split_first_chunk::<4>() {
        Some((header, body)) => (*header, body),
        None => return Err(Error::TooShort { len: bytes.len() }),
    };
    if header[0] == 0xFF {
        return Err(Error::InvalidClass);
    }
    let view = |data, le, extended| CommandView {
        header,
        data,
        le,
        extended,
    };
    match body {
        // Case 1.
        [] => Ok(view(&[], None, false)),
        // Case 2S: Le = 00 means 256.
        [le] => Ok(view(&[], Some(short_le(*le)), false)),
        // Extended forms start with a 00 byte.
        [0x00, rest @ ..] => parse_extended(header, rest),
        // Short Lc: case 3S or 4S.
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            match rest.len().checked_sub(lc) {
                None => Err(Error::Truncated {
                    expected: lc,
                    available: rest.len(),
                }),
                Some(0) => Ok(view(rest, None, false)),
                Some(1) => {
                    let (data, le) = rest.split_at(lc);
                    Ok(view(data, le.first().map(|le| short_le(*le)), false))
                }
                Some(2) => Err(Error::MixedLengthForms),
                Some(extra) => Err(Error::TrailingBytes { count: extra - 1 }),
            }
        }
    }
}

fn parse_extended(header: [u8; 4], rest: &[u8]) -> Result<CommandView<'_>, Error> {
    let Some((length, rest)) = rest.split_first_chunk::<2>() else {
        // `00` alone after the header followed by one byte: not a valid form.
        return Err(Error::IncompleteExtendedLength);
    };
    let length = usize::from(u16::from_be_bytes(*length));
    if rest.is_empty() {
        // Case 2E: 00 Le1 Le2, 0000 means 65536.
        let le = if length == 0 { MAX_EXTENDED_LE } else { length };
        return Ok(CommandView {
            header,
            data: &[],
            le: Some(le),
            extended: true,
        });
    }
    if length == 0 {
        return Err(Error::ZeroLc);
    }
    match rest.len().checked_sub(length) {
        None => Err(Error::Truncated {
            expected: length,
            available: rest.len(),
        }),
        Some(0) => Ok(CommandView {
            header,
            data: rest,
            le: None,
            extended: true,
        }),
        Some(1) => Err(Error::MixedLengthForms),
        Some(2) => {
            let (data, le) = rest.split_at(length);
            let le = match le {
                [0, 0] => MAX_EXTENDED_LE,
                [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => return Err(Error::IncompleteExtendedLength),
            };
            Ok(CommandView {
                header,
                data,
                le: Some(le),
                extended: true,
            })
        }
        Some(extra) => Err(Error::TrailingBytes { count: extra - 2 }),
    }
}

const fn short_le(byte: u8) -> usize {
    if byte == 0 {
        MAX_SHORT_LE
    } else {
        byte as usize
    }
}

impl<'a> TryFrom<&'a [u8]> for CommandView<'a> {
    type Error = Error;

    fn try_from(bytes: &'a [u8]) -> Result<Self, Error> {
        parse_command(bytes)
    }
}

impl<'a> CommandView<'a> {
    /// The class byte, decoded.
    #[must_use]
    pub const fn cla(&self) -> Cla {
        Cla(self.header[0])
    }

    /// The instruction byte.
    #[must_use]
    pub const fn ins(&self) -> u8 {
        self.header[1]
    }

    /// Parameter 1.
    #[must_use]
    pub const fn p1(&self) -> u8 {
        self.header[2]
    }

    /// Parameter 2.
    #[must_use]
    pub const fn p2(&self) -> u8 {
        self.header[3]
    }

    /// The four header bytes.
    #[must_use]
    pub const fn header(&self) -> [u8; 4] {
        self.header
    }

    /// The data field (empty for cases 1 and 2).
    #[must_use]
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The expected response length Ne in bytes (short `00` = 256, extended `0000` = 65536),
    /// `None` when the command has no Le field.
    #[must_use]
    pub const fn le(&self) -> Option<usize> {
        self.le
    }

    /// `true` when the command was encoded with extended length fields.
    #[must_use]
    pub const fn is_extended(&self) -> bool {
        self.extended
    }

    /// The ISO/IEC 7816-4 case.
    #[must_use]
    pub const fn case(&self) -> Case {
        match (self.data.is_empty(), self.le.is_some(), self.extended) {
            (true, false, _) => Case::Case1,
            (true, true, false) => Case::Case2Short,
            (true, true, true) => Case::Case2Extended,
            (false, false, false) => Case::Case3Short,
            (false, false, true) => Case::Case3Extended,
            (false, true, false) => Case::Case4Short,
            (false, true, true) => Case::Case4Extended,
        }
    }

    /// An owned copy, keeping the length form the command arrived in.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn to_command(&self) -> Command {
        Command {
            cla: self.header[0],
            ins: self.header[1],
            p1: self.header[2],
            p2: self.header[3],
            data: self.data.to_vec(),
            le: self.le,
            form: if self.extended {
                LengthForm::Extended
            } else {
                LengthForm::Short
            },
        }
    }
}

impl fmt::Debug for CommandView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CommandView {{ {:02X} {:02X} {:02X} {:02X}, case {}, data: {} bytes, le: {:?} }}",
            self.header[0],
            self.header[1],
            self.header[2],
            self.header[3],
            self.case().name(),
            self.data.len(),
            self.le
        )
    }
}

/// An owned command APDU, built field by field and encoded on demand.
///
/// ```
/// use apdu_codec::{Command, LengthForm};
/// // GET DATA CPLC (GPC 2.3 §11.3), case 2S with Le = 256.
/// let get_cplc = Command::new(0x80, 0xCA, 0x9F, 0x7F).with_le(256);
/// assert_eq!(get_cplc.to_vec()?, [0x80, 0xCA, 0x9F, 0x7F, 0x00]);
///
/// // 300 data bytes do not fit a short APDU: Auto picks the extended form.
/// let store = Command::new(0x80, 0xE2, 0x80, 0x00).with_data(vec![0xAB; 300]);
/// let bytes = store.to_vec()?;
/// assert_eq!(&bytes[4..7], &[0x00, 0x01, 0x2C]);
/// assert!(Command::new(0x80, 0xE2, 0x80, 0x00)
///     .with_data(vec![0; 300])
///     .with_form(LengthForm::Short)
///     .to_vec()
///     .is_err());
/// # Ok::<(), apdu_codec::Error>(())
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Data field (at most 65535 bytes; at most 255 in short form).
    pub data: Vec<u8>,
    /// Expected response length Ne (1..=65536; at most 256 in short form), `None` for no Le.
    pub le: Option<usize>,
    /// Length form used by the encoder.
    pub form: LengthForm,
}

#[cfg(feature = "alloc")]
impl Command {
    /// A case 1 command with the given header.
    #[must_use]
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            form: LengthForm::Auto,
        }
    }

    /// Set the data field.
    #[must_use]
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Set Le (the expected response length Ne: 256 encodes as short `00`).
    #[must_use]
    pub const fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Remove the Le field.
    #[must_use]
    pub const fn without_le(mut self) -> Self {
        self.le = None;
        self
    }

    /// Choose the length form.
    #[must_use]
    pub const fn with_form(mut self, form: LengthForm) -> Self {
        self.form = form;
        self
    }

    /// The class byte, decoded.
    #[must_use]
    pub const fn class(&self) -> Cla {
        Cla(self.cla)
    }

    /// The four header bytes.
    #[must_use]
    pub const fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// Whether the encoder will use the extended form.
    ///
    /// # Errors
    /// [`Error::DataTooLong`] or [`Error::LeOutOfRange`] when the fields do not fit the form.
    pub fn uses_extended(&self) -> Result<bool, Error> {
        uses_extended(self.data.len(), self.le, self.form)
    }

    /// The number of bytes [`encode_into`](Self::encode_into) writes.
    ///
    /// # Errors
    /// As [`uses_extended`](Self::uses_extended).
    pub fn encoded_len(&self) -> Result<usize, Error> {
        encoded_len(self.data.len(), self.le, self.form)
    }

    /// Encode into a buffer.
    ///
    /// # Errors
    /// As [`uses_extended`](Self::uses_extended); nothing is written on error.
    pub fn encode_into(&self, buf: &mut impl bytes::BufMut) -> Result<(), Error> {
        encode_parts(buf, self.header(), &self.data, self.le, self.form)
    }

    /// Encode into a new vector.
    ///
    /// # Errors
    /// As [`uses_extended`](Self::uses_extended).
    pub fn to_vec(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(self.encoded_len()?);
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

#[cfg(feature = "alloc")]
/// Which form a command with `len` data bytes and the given Le takes (ISO/IEC 7816-4 §5.1).
pub(crate) fn uses_extended(
    len: usize,
    le: Option<usize>,
    form: LengthForm,
) -> Result<bool, Error> {
    if let Some(le) = le
        && (le == 0 || le > MAX_EXTENDED_LE)
    {
        return Err(Error::LeOutOfRange {
            le,
            max: MAX_EXTENDED_LE,
        });
    }
    if len > MAX_EXTENDED_DATA {
        return Err(Error::DataTooLong {
            len,
            max: MAX_EXTENDED_DATA,
        });
    }
    let fits_short = len <= MAX_SHORT_DATA && le.is_none_or(|le| le <= MAX_SHORT_LE);
    match form {
        LengthForm::Auto => Ok(!fits_short),
        LengthForm::Extended => Ok(true),
        LengthForm::Short if fits_short => Ok(false),
        LengthForm::Short if len > MAX_SHORT_DATA => Err(Error::DataTooLong {
            len,
            max: MAX_SHORT_DATA,
        }),
        LengthForm::Short => Err(Error::LeOutOfRange {
            le: le.unwrap_or(0),
            max: MAX_SHORT_LE,
        }),
    }
}

#[cfg(feature = "alloc")]
/// Encoded size of a command with these fields.
pub(crate) fn encoded_len(len: usize, le: Option<usize>, form: LengthForm) -> Result<usize, Error> {
    let extended = uses_extended(len, le, form)?;
    let lc = match (len == 0, extended) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 3,
    };
    let le = match (le, extended, len == 0) {
        (None, _, _) => 0,
        (Some(_), false, _) => 1,
        (Some(_), true, true) => 3,
        (Some(_), true, false) => 2,
    };
    Ok(4 + lc + len + le)
}

#[cfg(feature = "alloc")]
/// Encode a command from its parts; nothing is written on error.
pub(crate) fn encode_parts(
    buf: &mut impl bytes::BufMut,
    header: [u8; 4],
    data: &[u8],
    le: Option<usize>,
    form: LengthForm,
) -> Result<(), Error> {
    let len = data.len();
    let extended = uses_extended(len, le, form)?;
    // Checked conversions (validated above, so they cannot fail; no panic either way).
    let lc_field = if extended {
        u16::try_from(len).map_err(|_| Error::DataTooLong {
            len,
            max: MAX_EXTENDED_DATA,
        })?
    } else {
        u16::from(u8::try_from(len).map_err(|_| Error::DataTooLong {
            len,
            max: MAX_SHORT_DATA,
        })?)
    };
    buf.put_slice(&header);
    if len > 0 {
        if extended {
            buf.put_u8(0);
            buf.put_u16(lc_field);
        } else {
            buf.put_u8(u8::try_from(lc_field).unwrap_or(0));
        }
        buf.put_slice(data);
    }
    if let Some(le) = le {
        if extended {
            if len == 0 {
                buf.put_u8(0);
            }
            // 65536 (validated maximum) encodes as 0000.
            buf.put_u16(u16::try_from(le).unwrap_or(0));
        } else {
            // 256 (validated maximum) encodes as 00.
            buf.put_u8(u8::try_from(le).unwrap_or(0));
        }
    }
    Ok(())
}

#[cfg(feature = "alloc")]
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command {{ {:02X} {:02X} {:02X} {:02X}, data: {} bytes, le: {:?}, form: {:?} }}",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le,
            self.form
        )
    }
}

#[cfg(feature = "alloc")]
impl From<CommandView<'_>> for Command {
    fn from(view: CommandView<'_>) -> Self {
        view.to_command()
    }
}
