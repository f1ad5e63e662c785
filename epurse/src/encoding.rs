//! The frame shared by the stable state encodings ([`PurseState`](crate::card::PurseState),
//! [`TicketState`](crate::ticket::TicketState), [`TagState`](crate::tag::TagState)):
//! `magic(4) || fields || CRC-32(4)`, all integers big-endian, where CRC-32 is CRC-32/ISO-HDLC
//! (the zlib CRC) over the magic and the fields; and the bounds-checked [`Reader`] the fields
//! are decoded with. Every failure is an [`Error::StateEncoding`]; nothing here panics.

use alloc::vec::Vec;

use crate::Error;
use crate::card::state::MAX_AID;

/// A new encoding buffer of `capacity` bytes holding the `magic`.
pub(crate) fn begin(magic: &[u8; 4], capacity: usize) -> Vec<u8> {
    let mut w = Vec::with_capacity(capacity);
    w.extend_from_slice(magic);
    w
}

/// Close an encoding begun with [`begin`]: append the CRC-32 of everything so far.
pub(crate) fn seal(mut w: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&w);
    w.extend_from_slice(&crc.to_be_bytes());
    w
}

/// Check the frame of a sealed encoding (length, `magic`, CRC-32) and return a reader over
/// its fields, positioned after the magic.
///
/// # Errors
/// [`Error::StateEncoding`] `"too short"`, `"magic or version"` or `"checksum"`.
pub(crate) fn open<'a>(bytes: &'a [u8], magic: &[u8; 4]) -> Result<Reader<'a>, Error> {
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or(Error::StateEncoding("too short"))?;
    if !body.starts_with(magic) {
        return Err(Error::StateEncoding("magic or version"));
    }
    if crc32(body) != u32::from_be_bytes(*crc) {
        return Err(Error::StateEncoding("checksum"));
    }
    Ok(Reader {
        buf: body,
        pos: magic.len(),
    })
}

/// A bounds-checked reader over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// `true` when every byte has been read.
    pub(crate) fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The end of an encoding's fields: every byte must have been read.
    ///
    /// # Errors
    /// [`Error::StateEncoding`] `"trailing bytes"`.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(Error::StateEncoding("trailing bytes"))
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let end = self
            .pos
            .checked_add(N)
            .ok_or(Error::StateEncoding("truncated"))?;
        let out = self
            .buf
            .get(self.pos..end)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or(Error::StateEncoding("truncated"))?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn flag(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::StateEncoding("presence flag")),
        }
    }

    /// An AID field `length(1) || AID padded to MAX_AID(16)`, the length checked (5 to 16,
    /// ISO/IEC 7816-5) before the AID bytes are read.
    ///
    /// # Errors
    /// [`Error::StateEncoding`] `"AID length"` or `"truncated"`.
    pub(crate) fn aid(&mut self) -> Result<(u8, [u8; MAX_AID]), Error> {
        let aid_len = self.u8()?;
        if !(5..=MAX_AID).contains(&usize::from(aid_len)) {
            return Err(Error::StateEncoding("AID length"));
        }
        Ok((aid_len, self.array()?))
    }
}

/// CRC-32/ISO-HDLC (reflected polynomial `EDB88320`, init and xorout `FFFFFFFF`), the zlib CRC.
#[must_use]
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // CRC catalogue check value for "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
