//! APDU plumbing shared by every protocol: the secure messaging class bit, the length form
//! of a wrapped command and the Lc bytes a MAC covers.

use alloc::vec::Vec;

use apdu_codec::{
    Cla, Command, CommandView, LengthForm, MAX_EXTENDED_DATA, MAX_SHORT_DATA, MAX_SHORT_LE,
};

use crate::Error;

/// A borrowed plain command, from either a [`Command`] or a [`CommandView`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainRef<'a> {
    pub(crate) header: [u8; 4],
    pub(crate) data: &'a [u8],
    pub(crate) le: Option<usize>,
    pub(crate) form: LengthForm,
}

impl<'a> From<&'a Command> for PlainRef<'a> {
    fn from(c: &'a Command) -> Self {
        Self {
            header: c.header(),
            data: &c.data,
            le: c.le,
            form: c.form,
        }
    }
}

impl<'a> From<&CommandView<'a>> for PlainRef<'a> {
    fn from(c: &CommandView<'a>) -> Self {
        Self {
            header: c.header(),
            data: c.data(),
            le: c.le(),
            form: if c.is_extended() {
                LengthForm::Extended
            } else {
                LengthForm::Auto
            },
        }
    }
}

/// The class byte with the secure messaging indication set (GPC 2.3 §11.1.4: `04` in the
/// first interindustry class, `20` in the further one).
pub(crate) const fn sm_cla(cla: u8) -> u8 {
    Cla(cla).with_secure_messaging().0
}

/// The class byte with the secure messaging indication cleared.
pub(crate) const fn plain_cla(cla: u8) -> u8 {
    if Cla(cla).is_further() {
        cla & !0x20
    } else {
        cla & !0x04
    }
}

/// Whether a wrapped command with `data_len` data bytes is sent in extended form.
pub(crate) fn wrapped_is_extended(
    form: LengthForm,
    data_len: usize,
    le: Option<usize>,
) -> Result<bool, Error> {
    if data_len > MAX_EXTENDED_DATA {
        return Err(Error::TooLong(data_len));
    }
    let fits_short = data_len <= MAX_SHORT_DATA && le.is_none_or(|l| l <= MAX_SHORT_LE);
    match form {
        LengthForm::Extended => Ok(true),
        LengthForm::Short if !fits_short => Err(Error::TooLong(data_len)),
        _ => Ok(!fits_short),
    }
}

/// Append the Lc field of a `len`-byte data field as it goes on the wire (ISO 7816-4 §5.1).
pub(crate) fn push_lc(buf: &mut Vec<u8>, len: usize, extended: bool) {
    let [hi, lo] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if extended {
        buf.extend_from_slice(&[0x00, hi, lo]);
    } else {
        buf.push(lo);
    }
}

/// Build the wrapped command.
pub(crate) fn wrapped_command(
    header: [u8; 4],
    data: Vec<u8>,
    le: Option<usize>,
    extended: bool,
) -> Command {
    Command {
        cla: header[0],
        ins: header[1],
        p1: header[2],
        p2: header[3],
        data,
        le,
        form: if extended {
            LengthForm::Extended
        } else {
            LengthForm::Short
        },
    }
}

/// The plain command a card recovers.
pub(crate) fn unwrapped_command(view: &CommandView<'_>, data: Vec<u8>) -> Command {
    let h = view.header();
    Command {
        cla: plain_cla(h[0]),
        ins: h[1],
        p1: h[2],
        p2: h[3],
        data,
        le: view.le(),
        form: if view.is_extended() {
            LengthForm::Extended
        } else {
            LengthForm::Auto
        },
    }
}
