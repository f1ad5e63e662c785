//! A cursor over a data field that turns every short read into a typed error.

use alloc::vec::Vec;

use apdu_codec::CommandView;
use apdu_codec::tlv::{self, Tag};

use super::CommandError;

/// Reads fields front to back; every failure names the field.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub(crate) fn byte(&mut self, field: &'static str) -> Result<u8, CommandError> {
        match self.rest.split_first() {
            Some((b, rest)) => {
                self.rest = rest;
                Ok(*b)
            }
            None => Err(CommandError::Truncated {
                field,
                needed: 1,
                available: 0,
            }),
        }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CommandError> {
        if n > self.rest.len() {
            return Err(CommandError::Truncated {
                field,
                needed: n,
                available: self.rest.len(),
            });
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, CommandError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    }

    /// A field preceded by a one-byte length.
    pub(crate) fn lv(&mut self, field: &'static str) -> Result<&'a [u8], CommandError> {
        let len = self.byte(field)?;
        self.take(usize::from(len), field)
    }

    /// A field preceded by a BER length of one to three bytes (`00`-`7F`, `81 xx`,
    /// `82 xx xx`), as GPC 2.3 §11.5.2.3 codes the parameters, hash and token fields.
    pub(crate) fn ber_lv(&mut self, field: &'static str) -> Result<&'a [u8], CommandError> {
        let first = self.byte(field)?;
        let len = match first {
            0x00..=0x7F => usize::from(first),
            0x81 => usize::from(self.byte(field)?),
            0x82 => usize::from(self.u16(field)?),
            _ => {
                return Err(CommandError::Value {
                    field,
                    value: u32::from(first),
                });
            }
        };
        self.take(len, field)
    }

    pub(crate) fn finish(&self, field: &'static str) -> Result<(), CommandError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CommandError::TrailingBytes {
                field,
                count: self.rest.len(),
            })
        }
    }
}

/// Append a one-byte length and the value; fails for values over 255 bytes.
pub(crate) fn put_lv(
    out: &mut Vec<u8>,
    value: &[u8],
    field: &'static str,
) -> Result<(), CommandError> {
    let len = u8::try_from(value.len()).map_err(|_| CommandError::TooLong {
        field,
        len: value.len(),
        max: 255,
    })?;
    out.push(len);
    out.extend_from_slice(value);
    Ok(())
}

/// Append a BER length (one to three bytes, GPC 2.3 §11.5.2.3) and the value.
pub(crate) fn put_ber_lv(
    out: &mut Vec<u8>,
    value: &[u8],
    field: &'static str,
) -> Result<(), CommandError> {
    if value.len() > 0xFFFF {
        return Err(CommandError::TooLong {
            field,
            len: value.len(),
            max: 0xFFFF,
        });
    }
    tlv::encode_length(out, value.len());
    out.extend_from_slice(value);
    Ok(())
}

/// Check the instruction byte of a command.
pub(crate) fn expect_ins(view: &CommandView<'_>, ins: u8) -> Result<(), CommandError> {
    if view.ins() == ins {
        Ok(())
    } else {
        Err(CommandError::Instruction {
            expected: ins,
            found: view.ins(),
        })
    }
}

/// The value of a single TLV object with the given tag (no trailing bytes).
pub(crate) fn unwrap_tag(data: &[u8], tag: Tag) -> Result<&[u8], CommandError> {
    let object = tlv::parse_single(data)?;
    if object.tag() != tag {
        return Err(CommandError::UnexpectedTag {
            context: "response",
            found: object.tag(),
        });
    }
    Ok(object.value())
}

/// An unsigned big-endian integer of one to four bytes.
pub(crate) fn be_uint(bytes: &[u8], field: &'static str) -> Result<u32, CommandError> {
    if bytes.is_empty() || bytes.len() > 4 {
        return Err(CommandError::FieldLength {
            field,
            len: bytes.len(),
            min: 1,
            max: 4,
        });
    }
    Ok(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// The shortest big-endian encoding of `value` (at least one byte).
pub(crate) fn be_uint_bytes(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    bytes.get(skip..).unwrap_or(&bytes).to_vec()
}
