//! BER-TLV (ISO/IEC 7816-4 §5.2, ISO/IEC 8825-1 as profiled by ISO/IEC 7816-4 and
//! GlobalPlatform Card Specification 2.3 §11.1.9): a zero-copy parser with depth and length
//! limits, and a builder that encodes into any [`bytes::BufMut`].
//!
//! ```
//! use apdu_codec::tlv::{self, Tag};
//! // A GET STATUS (E3 format) entry: E3 { 4F AID, 9F70 life cycle, C5 privileges }.
//! let bytes = [0xE3, 0x10, 0x4F, 0x05, 0xA0, 0, 0, 0, 0x03, 0x9F, 0x70, 0x01, 0x07,
//!              0xC5, 0x03, 0x00, 0x00, 0x00];
//! let entry = tlv::parse_single(&bytes)?;
//! assert_eq!(entry.tag(), Tag::new(0xE3));
//! let life_cycle = entry.find(Tag::new(0x9F70))?.expect("present");
//! assert_eq!(life_cycle.value(), &[0x07]);
//! assert_eq!(entry.children().count(), 3);
//! # Ok::<(), apdu_codec::tlv::TlvError>(())
//! ```

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

use nom::IResult;
use nom::number::complete::be_u8;

/// Default maximum nesting depth of constructed objects.
pub const MAX_DEPTH: u8 = 16;
/// Default maximum length of one value (an extended response carries at most 65536 bytes).
pub const MAX_LENGTH: usize = 65_536;
/// Longest tag this parser accepts (ISO/IEC 7816-4 §5.2.2.1: up to three bytes).
pub const MAX_TAG_BYTES: usize = 3;

/// What can be wrong with a BER-TLV encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// Input ended inside a tag.
    #[error("input ends inside a tag")]
    TruncatedTag,
    /// A tag longer than [`MAX_TAG_BYTES`].
    #[error("tag longer than {MAX_TAG_BYTES} bytes")]
    TagTooLong,
    /// Input ended inside a length field.
    #[error("input ends inside a length field")]
    TruncatedLength,
    /// Length byte `80` (indefinite) or `85`-`FF` (not allowed in ISO/IEC 7816-4 BER-TLV).
    #[error("invalid length byte {0:02X}")]
    InvalidLength(u8),
    /// A value longer than the limit.
    #[error("value of {len} bytes exceeds the limit of {max}")]
    LengthTooLarge {
        /// Announced length.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// A value shorter than its length field announces.
    #[error("length announces {expected} value bytes but only {available} follow")]
    TruncatedValue {
        /// Announced length.
        expected: usize,
        /// Bytes present.
        available: usize,
    },
    /// Constructed objects nested deeper than the limit.
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// Limit in force.
        max: u8,
    },
    /// Bytes after the single object that was expected.
    #[error("{count} trailing bytes after the object")]
    TrailingBytes {
        /// Bytes left over.
        count: usize,
    },
    /// No object where one was required.
    #[error("no TLV object where one was expected")]
    Empty,
}

/// A BER-TLV tag of one to three bytes, held as its big-endian value (`9F7F`, `BF21`, `E3`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

/// The class of a tag (bits 8-7 of its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagClass {
    /// `00`.
    Universal,
    /// `40`.
    Application,
    /// `80`.
    ContextSpecific,
    /// `C0`.
    Private,
}

impl Tag {
    /// A tag from its big-endian value; `Tag::new(0x9F7F)`.
    ///
    /// The value is taken as written; use [`Tag::from_bytes`] to validate an encoding.
    #[must_use]
    pub const fn new(value: u32) -> Self {
        Tag(value)
    }

    /// Parse a complete tag encoding (no trailing bytes).
    ///
    /// # Errors
    /// [`TlvError::TruncatedTag`], [`TlvError::TagTooLong`], [`TlvError::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TlvError> {
        let (rest, tag) = tag_parser(bytes).map_err(|_| classify_tag_error(bytes))?;
        if rest.is_empty() {
            Ok(tag)
        } else {
            Err(TlvError::TrailingBytes { count: rest.len() })
        }
    }

    /// The big-endian value.
    #[must_use]
    #[inline]
    pub const fn value(self) -> u32 {
        self.0
    }

    /// Number of bytes of the encoding (1-3; a value above `FFFFFF` counts 4).
    #[must_use]
    #[inline]
    pub const fn len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }

    /// Always `false`: a tag has at least one byte. (Present for API symmetry with `len`.)
    #[must_use]
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The encoding, right-aligned: `(bytes, len)`; the tag is `bytes[4 - len..]`.
    #[must_use]
    #[inline]
    pub const fn to_bytes(self) -> ([u8; 4], usize) {
        (self.0.to_be_bytes(), self.len())
    }

    #[inline]
    const fn first_byte(self) -> u8 {
        let (bytes, len) = self.to_bytes();
        bytes[4 - len]
    }

    /// `true` when bit 6 (`20`) of the first byte is set.
    #[must_use]
    #[inline]
    pub const fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The tag's class.
    #[must_use]
    pub const fn class(self) -> TagClass {
        match self.first_byte() >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::ContextSpecific,
            _ => TagClass::Private,
        }
    }

    /// Write the encoding into a buffer.
    pub fn encode_into(self, buf: &mut impl bytes::BufMut) {
        let (bytes, len) = self.to_bytes();
        buf.put_slice(&bytes[4 - len..]);
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.len() {
            1 => write!(f, "{:02X}", self.0),
            2 => write!(f, "{:04X}", self.0),
            3 => write!(f, "{:06X}", self.0),
            _ => write!(f, "{:08X}", self.0),
        }
    }
}

impl From<u32> for Tag {
    fn from(value: u32) -> Self {
        Tag(value)
    }
}

/// Parse limits: maximum nesting depth and maximum value length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of constructed objects accepted (the top level is depth 0).
    pub max_depth: u8,
    /// Longest value accepted.
    pub max_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_DEPTH,
            max_length: MAX_LENGTH,
        }
    }
}

type NomResult<'a, T> = IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>;

#[inline]
fn tag_parser(input: &[u8]) -> NomResult<'_, Tag> {
    let (mut input, first) = be_u8(input)?;
    let mut value = u32::from(first);
    if first & 0x1F != 0x1F {
        return Ok((input, Tag(value)));
    }
    for _ in 1..MAX_TAG_BYTES {
        let (rest, next) = be_u8(input)?;
        input = rest;
        value = (value << 8) | u32::from(next);
        if next & 0x80 == 0 {
            return Ok((input, Tag(value)));
        }
    }
    Err(nom::Err::Failure(nom::error::Error::new(
        input,
        nom::error::ErrorKind::TooLarge,
    )))
}

fn classify_tag_error(bytes: &[u8]) -> TlvError {
    // The tag parser fails only by running out of input or by exceeding three bytes.
    let continuation = bytes
        .iter()
        .skip(1)
        .take(MAX_TAG_BYTES - 1)
        .all(|b| b & 0x80 != 0);
    if bytes.len() >= MAX_TAG_BYTES && continuation {
        TlvError::TagTooLong
    } else {
        TlvError::TruncatedTag
    }
}

#[inline]
fn length_parser(input: &[u8]) -> Result<(&[u8], usize), TlvError> {
    // ISO/IEC 7816-4 §5.2.2.2: 00-7F short form; 81-84 followed by 1-4 length bytes.
    let Some((&first, input)) = input.split_first() else {
        return Err(TlvError::TruncatedLength);
    };
    let count = match first {
        0x00..=0x7F => return Ok((input, usize::from(first))),
        0x81..=0x84 => usize::from(first & 0x0F),
        _ => return Err(TlvError::InvalidLength(first)),
    };
    let Some((bytes, input)) = input.split_at_checked(count) else {
        return Err(TlvError::TruncatedLength);
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok((input, len))
}

/// The tag at the start of `input`, hand-inlined for the hot path. [`tag_parser`] (nom) is
/// the reference that [`Tag::from_bytes`] uses; the `ber_tlv` fuzz target checks that both
/// agree on every tag this one accepts.
#[inline]
fn fast_tag(input: &[u8]) -> Result<(Tag, &[u8]), TlvError> {
    let Some((&first, mut rest)) = input.split_first() else {
        return Err(TlvError::Empty);
    };
    let mut value = u32::from(first);
    // ISO/IEC 7816-4 §5.2.2.1: low five bits all ones = more tag bytes follow.
    if first & 0x1F != 0x1F {
        return Ok((Tag(value), rest));
    }
    for _ in 1..MAX_TAG_BYTES {
        let Some((&next, after)) = rest.split_first() else {
            return Err(TlvError::TruncatedTag);
        };
        rest = after;
        value = (value << 8) | u32::from(next);
        if next & 0x80 == 0 {
            return Ok((Tag(value), rest));
        }
    }
    Err(TlvError::TagTooLong)
}

/// Parse the header and value of the first object; returns the object and what follows it.
#[inline]
fn parse_object(input: &[u8], depth: u8, limits: Limits) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let Some(first) = input.first() else {
        return Err(TlvError::Empty);
    };
    let (tag, rest) = fast_tag(input)?;
    let (rest, len) = length_parser(rest)?;
    if len > limits.max_length {
        return Err(TlvError::LengthTooLarge {
            len,
            max: limits.max_length,
        });
    }
    let Some((value, rest)) = rest.split_at_checked(len) else {
        return Err(TlvError::TruncatedValue {
            expected: len,
            available: rest.len(),
        });
    };
    Ok((
        Tlv {
            tag,
            value,
            // ISO/IEC 7816-4 §5.2.2.1: bit 6 of the first tag byte.
            constructed: first & 0x20 != 0,
            depth,
            limits,
        },
        rest,
    ))
}

/// One BER-TLV object borrowing its value from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    tag: Tag,
    value: &'a [u8],
    /// Cached `tag.is_constructed()`.
    constructed: bool,
    depth: u8,
    limits: Limits,
}

impl<'a> Tlv<'a> {
    /// The tag.
    #[must_use]
    #[inline]
    pub const fn tag(&self) -> Tag {
        self.tag
    }

    /// The value bytes.
    #[must_use]
    #[inline]
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// `true` when the tag marks a constructed object.
    #[must_use]
    #[inline]
    pub const fn is_constructed(&self) -> bool {
        self.constructed
    }

    /// Nesting depth of this object (0 at the top level).
    #[must_use]
    #[inline]
    pub const fn depth(&self) -> u8 {
        self.depth
    }

    /// The objects inside a constructed object's value (an empty iterator for a primitive
    /// one). Yields [`TlvError::TooDeep`] when the children would exceed the depth limit.
    #[must_use]
    #[inline]
    pub fn children(&self) -> TlvIter<'a> {
        if !self.is_constructed() {
            return TlvIter::with_limits(&[], self.limits).at_depth(u16::from(self.depth));
        }
        // u16 so that a limit of 255 still stops at depth 256 (no unbounded recursion).
        TlvIter::with_limits(self.value, self.limits).at_depth(u16::from(self.depth) + 1)
    }

    /// The first direct child with the given tag.
    ///
    /// # Errors
    /// Any [`TlvError`] met before the tag was found.
    pub fn find(&self, tag: Tag) -> Result<Option<Tlv<'a>>, TlvError> {
        for child in self.children() {
            let child = child?;
            if child.tag == tag {
                return Ok(Some(child));
            }
        }
        Ok(None)
    }

    /// Follow a path of tags through nested constructed objects (`[E0, C0]`).
    ///
    /// # Errors
    /// Any [`TlvError`] met on the way.
    pub fn find_path(&self, path: &[Tag]) -> Result<Option<Tlv<'a>>, TlvError> {
        let mut current = *self;
        for tag in path {
            match current.find(*tag)? {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// Check the whole subtree against the limits; returns the number of objects in it.
    ///
    /// # Errors
    /// The first [`TlvError`] found anywhere below.
    pub fn validate(&self) -> Result<usize, TlvError> {
        let mut count = 1;
        if self.is_constructed() {
            for child in self.children() {
                count += child?.validate()?;
            }
        }
        Ok(count)
    }
}

impl fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tlv {{ tag: {}, len: {} }}", self.tag, self.value.len())
    }
}

/// An iterator over consecutive BER-TLV objects at one level.
///
/// After the first error it yields that error once and then ends.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    depth: u16,
    limits: Limits,
    padding: bool,
}

impl<'a> TlvIter<'a> {
    /// Objects in `input` with the default [`Limits`], no padding allowed.
    #[must_use]
    #[inline]
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_limits(input, Limits::default())
    }

    /// Objects in `input` with the given limits.
    #[must_use]
    #[inline]
    pub const fn with_limits(input: &'a [u8], limits: Limits) -> Self {
        TlvIter {
            rest: input,
            depth: 0,
            limits,
            padding: false,
        }
    }

    /// Skip `00` and `FF` bytes between objects, as GlobalPlatform allows in data returned by
    /// the card and in STORE DATA (GPC 2.3 §11.1.9 / ISO/IEC 7816-4 §5.2.2.1).
    #[must_use]
    pub const fn allow_padding(mut self) -> Self {
        self.padding = true;
        self
    }

    #[inline]
    const fn at_depth(mut self, depth: u16) -> Self {
        self.depth = depth;
        self
    }

    /// The bytes not yet consumed.
    #[must_use]
    pub const fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.padding {
            let skip = self
                .rest
                .iter()
                .take_while(|b| **b == 0x00 || **b == 0xFF)
                .count();
            self.rest = self.rest.get(skip..).unwrap_or(&[]);
        }
        if self.rest.is_empty() {
            return None;
        }
        let Some(depth) = u8::try_from(self.depth)
            .ok()
            .filter(|depth| *depth <= self.limits.max_depth)
        else {
            self.rest = &[];
            return Some(Err(TlvError::TooDeep {
                max: self.limits.max_depth,
            }));
        };
        match parse_object(self.rest, depth, self.limits) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// Parse the first object of `input`; returns it with the bytes that follow.
///
/// # Errors
/// [`TlvError`] for a malformed header, a value over [`MAX_LENGTH`] or a short value.
pub fn parse_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    parse_object(input, 0, Limits::default())
}

/// Parse exactly one object; trailing bytes are an error. The object's subtree is not
/// validated here (call [`Tlv::validate`]), so the cost is that of the header.
///
/// # Errors
/// As [`parse_tlv`], plus [`TlvError::TrailingBytes`].
pub fn parse_single(input: &[u8]) -> Result<Tlv<'_>, TlvError> {
    parse_single_with_limits(input, Limits::default())
}

/// [`parse_single`] with explicit limits.
///
/// # Errors
/// As [`parse_single`].
pub fn parse_single_with_limits(input: &[u8], limits: Limits) -> Result<Tlv<'_>, TlvError> {
    let (tlv, rest) = parse_object(input, 0, limits)?;
    if rest.is_empty() {
        Ok(tlv)
    } else {
        Err(TlvError::TrailingBytes { count: rest.len() })
    }
}

/// Check a whole sequence of objects and all their subtrees; returns the object count.
///
/// # Errors
/// The first [`TlvError`] found.
pub fn validate(input: &[u8], limits: Limits) -> Result<usize, TlvError> {
    let mut count = 0;
    for tlv in TlvIter::with_limits(input, limits) {
        count += tlv?.validate()?;
    }
    Ok(count)
}

/// The first top-level object of `input` with the given tag.
///
/// # Errors
/// Any [`TlvError`] met before the tag was found.
pub fn find(input: &[u8], tag: Tag) -> Result<Option<Tlv<'_>>, TlvError> {
    for tlv in TlvIter::new(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv));
        }
    }
    Ok(None)
}

/// Number of bytes a BER length field for `len` takes.
#[must_use]
pub const fn length_field_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 5,
    }
}

/// Write a BER length field (short form below 128, then `81`-`84`).
/// Lengths above `FFFFFFFF` are not representable and are written as `84 FFFFFFFF`.
pub fn encode_length(buf: &mut impl bytes::BufMut, len: usize) {
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    let bytes = len32.to_be_bytes();
    match length_field_len(len) {
        1 => buf.put_u8(bytes[3]),
        2 => buf.put_slice(&[0x81, bytes[3]]),
        3 => buf.put_slice(&[0x82, bytes[2], bytes[3]]),
        4 => buf.put_slice(&[0x83, bytes[1], bytes[2], bytes[3]]),
        _ => buf.put_slice(&[0x84, bytes[0], bytes[1], bytes[2], bytes[3]]),
    }
}

/// Write one object: tag, length, value.
///
/// ```
/// use apdu_codec::tlv::{write_tlv, Tag};
/// let mut out = Vec::new();
/// write_tlv(&mut out, Tag::new(0x4F), &[0xA0, 0x00, 0x00, 0x01, 0x51]);
/// assert_eq!(out, [0x4F, 0x05, 0xA0, 0x00, 0x00, 0x01, 0x51]);
/// ```
pub fn write_tlv(buf: &mut impl bytes::BufMut, tag: Tag, value: &[u8]) {
    tag.encode_into(buf);
    encode_length(buf, value.len());
    buf.put_slice(value);
}

/// A builder for nested BER-TLV structures.
///
/// ```
/// use apdu_codec::tlv::{Tag, TlvBuilder};
/// let mut b = TlvBuilder::new();
/// b.constructed(Tag::new(0xE3), |e3| {
///     e3.primitive(Tag::new(0x4F), &[0xA0, 0, 0, 0, 0x03]);
///     e3.primitive(Tag::new(0x9F70), &[0x07]);
/// });
/// assert_eq!(b.into_vec(), [0xE3, 0x0B, 0x4F, 0x05, 0xA0, 0, 0, 0, 0x03, 0x9F, 0x70, 0x01, 0x07]);
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlvBuilder {
    buf: Vec<u8>,
}

#[cfg(feature = "alloc")]
impl TlvBuilder {
    /// An empty builder.
    #[must_use]
    pub const fn new() -> Self {
        TlvBuilder { buf: Vec::new() }
    }

    /// Append a primitive object.
    pub fn primitive(&mut self, tag: Tag, value: &[u8]) -> &mut Self {
        write_tlv(&mut self.buf, tag, value);
        self
    }

    /// Append a constructed object whose value the closure builds.
    pub fn constructed(&mut self, tag: Tag, build: impl FnOnce(&mut TlvBuilder)) -> &mut Self {
        let mut inner = TlvBuilder::new();
        build(&mut inner);
        write_tlv(&mut self.buf, tag, &inner.buf);
        self
    }

    /// Append raw, already encoded bytes.
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }

    /// The bytes built so far.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished encoding.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn tags() {
        assert_eq!(Tag::from_bytes(&[0x9F, 0x7F]), Ok(Tag::new(0x9F7F)));
        assert_eq!(Tag::from_bytes(&[0x5F, 0x49]), Ok(Tag::new(0x5F49)));
        assert_eq!(Tag::from_bytes(&[0xBF, 0x81, 0x01]), Ok(Tag::new(0xBF8101)));
        assert_eq!(
            Tag::from_bytes(&[0xBF, 0x81, 0x81, 0x01]),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(Tag::from_bytes(&[0x9F]), Err(TlvError::TruncatedTag));
        assert_eq!(Tag::from_bytes(&[0x9F, 0x81]), Err(TlvError::TruncatedTag));
        assert_eq!(Tag::from_bytes(&[]), Err(TlvError::TruncatedTag));
        assert!(Tag::new(0xBF21).is_constructed());
        assert!(!Tag::new(0x9F7F).is_constructed());
        assert_eq!(Tag::new(0xE3).class(), TagClass::Private);
        assert_eq!(Tag::new(0x4F).class(), TagClass::Application);
    }

    #[test]
    fn fast_tag_agrees_with_nom_reference() {
        let compare = |input: &[u8]| {
            let fast = fast_tag(input).map(|(tag, rest)| (tag, rest.len()));
            let reference = if input.is_empty() {
                Err(TlvError::Empty)
            } else {
                tag_parser(input)
                    .map(|(rest, tag)| (tag, rest.len()))
                    .map_err(|_| classify_tag_error(input))
            };
            assert_eq!(fast, reference, "{input:02X?}");
        };
        for a in 0..=0xFFu8 {
            for b in 0..=0xFFu8 {
                for c in [0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF] {
                    let input = [a, b, c, 0x00];
                    for n in 0..=input.len() {
                        compare(&input[..n]);
                    }
                }
            }
        }
    }

    #[test]
    fn lengths() {
        for (bytes, expected) in [
            (&[0x00][..], Ok(0)),
            (&[0x7F], Ok(0x7F)),
            (&[0x81, 0x80], Ok(0x80)),
            (&[0x82, 0x01, 0x00], Ok(0x100)),
            (&[0x83, 0x01, 0x00, 0x00], Ok(0x1_0000)),
            (&[0x84, 0, 0x01, 0x00, 0x00], Ok(0x1_0000)),
            (&[0x80], Err(TlvError::InvalidLength(0x80))),
            (&[0x85, 0, 0, 0, 0, 0], Err(TlvError::InvalidLength(0x85))),
            (&[0x82, 0x01], Err(TlvError::TruncatedLength)),
            (&[], Err(TlvError::TruncatedLength)),
        ] {
            assert_eq!(
                length_parser(bytes).map(|(_, len)| len),
                expected,
                "{bytes:02X?}"
            );
        }
        for len in [
            0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000,
        ] {
            let mut out = vec![];
            encode_length(&mut out, len);
            assert_eq!(out.len(), length_field_len(len));
            assert_eq!(length_parser(&out), Ok((&[][..], len)));
        }
    }

    #[test]
    fn errors() {
        assert_eq!(parse_single(&[]).err(), Some(TlvError::Empty));
        assert_eq!(
            parse_single(&[0x4F, 0x03, 0x01]).err(),
            Some(TlvError::TruncatedValue {
                expected: 3,
                available: 1
            })
        );
        assert_eq!(
            parse_single(&[0x4F, 0x01, 0x01, 0x00]).err(),
            Some(TlvError::TrailingBytes { count: 1 })
        );
        let limits = Limits {
            max_depth: 1,
            max_length: 4,
        };
        assert_eq!(
            parse_single_with_limits(&[0x4F, 0x05, 1, 2, 3, 4, 5], limits).err(),
            Some(TlvError::LengthTooLarge { len: 5, max: 4 })
        );
        // Three levels of nesting with a limit of one.
        let deep = [0xE1, 0x04, 0xE2, 0x02, 0xE3, 0x00];
        let tlv = parse_single_with_limits(&deep, limits).unwrap();
        assert_eq!(tlv.validate(), Err(TlvError::TooDeep { max: 1 }));
        assert_eq!(parse_single(&deep).unwrap().validate(), Ok(3));
        // A limit of 255 still bounds the recursion: 300 nested empty-ish objects fail.
        let limits = Limits {
            max_depth: u8::MAX,
            max_length: MAX_LENGTH,
        };
        let mut nested = vec![0x04];
        for _ in 0..300 {
            let len = nested.len();
            let mut outer = vec![0xE1];
            encode_length(&mut outer, len);
            outer.extend_from_slice(&nested);
            nested = outer;
        }
        let tlv = parse_single_with_limits(&nested, limits).unwrap();
        assert_eq!(tlv.validate(), Err(TlvError::TooDeep { max: u8::MAX }));
    }

    #[test]
    fn padding_only_where_allowed() {
        let bytes = [
            0x00, 0x4F, 0x01, 0xAA, 0xFF, 0xFF, 0x9F, 0x70, 0x01, 0x07, 0x00,
        ];
        let tags: Vec<Tag> = TlvIter::new(&bytes)
            .allow_padding()
            .map(|t| t.unwrap().tag())
            .collect();
        assert_eq!(tags, [Tag::new(0x4F), Tag::new(0x9F70)]);
        // Without padding, 00 parses as a (universal, empty-length) tag 00 followed by 4F as
        // a length byte, which runs past the input.
        assert!(TlvIter::new(&bytes).any(|t| t.is_err()));
    }
}
