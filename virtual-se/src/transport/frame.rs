//! vpcd framing, Sans-IO.
//!
//! Every message both ways is a 2-byte big-endian length followed by the payload. A 1-byte
//! payload from vpcd is a control code; anything longer is a command APDU, answered with
//! `data || SW1 SW2` (vsmartcard `vpcd.c`, `sendToVICC`/`recvFromVICC`; PROTOCOLS.md "vpcd").

/// Size of the length prefix (vsmartcard vpcd: `uint16_t` in network byte order).
pub const LENGTH_PREFIX: usize = 2;

/// Largest payload a frame can carry.
pub const MAX_PAYLOAD: usize = 0xFFFF;

/// vpcd control code: power off (vsmartcard `vpcd.h`, `VPCD_CTRL_OFF`).
pub const CTRL_POWER_OFF: u8 = 0x00;
/// vpcd control code: power on (`VPCD_CTRL_ON`).
pub const CTRL_POWER_ON: u8 = 0x01;
/// vpcd control code: reset, no reply (`VPCD_CTRL_RESET`).
pub const CTRL_RESET: u8 = 0x02;
/// vpcd control code: get ATR, reply with the ATR (`VPCD_CTRL_ATR`).
pub const CTRL_ATR: u8 = 0x04;

/// A control code from vpcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `00`: power off; no reply.
    PowerOff,
    /// `01`: power on; no reply.
    PowerOn,
    /// `02`: reset; no reply.
    Reset,
    /// `04`: get ATR; reply with the ATR.
    Atr,
}

impl Control {
    /// The wire byte of this control code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::PowerOff => CTRL_POWER_OFF,
            Self::PowerOn => CTRL_POWER_ON,
            Self::Reset => CTRL_RESET,
            Self::Atr => CTRL_ATR,
        }
    }

    /// Parse a control code byte.
    ///
    /// # Errors
    /// [`FrameError::UnknownControl`] for any other byte.
    pub fn parse_control(code: u8) -> Result<Self, FrameError> {
        match code {
            CTRL_POWER_OFF => Ok(Self::PowerOff),
            CTRL_POWER_ON => Ok(Self::PowerOn),
            CTRL_RESET => Ok(Self::Reset),
            CTRL_ATR => Ok(Self::Atr),
            other => Err(FrameError::UnknownControl(other)),
        }
    }
}

/// One decoded message from vpcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A 1-byte control message.
    Control(Control),
    /// A command APDU (2 bytes or more).
    Apdu(Vec<u8>),
}

/// Framing errors. None of them desynchronises the stream: the offending frame is consumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame with length 0.
    #[error("empty frame")]
    Empty,
    /// A 1-byte frame whose byte is not a known control code.
    #[error("unknown control code {0:#04x}")]
    UnknownControl(u8),
    /// A payload to send is longer than [`MAX_PAYLOAD`].
    #[error("payload of {0} bytes does not fit a vpcd frame")]
    TooLong(usize),
}

/// Encode one frame: 2-byte big-endian length, then `payload`.
///
/// # Errors
/// [`FrameError::TooLong`] when `payload` is longer than [`MAX_PAYLOAD`].
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = u16::try_from(payload.len()).map_err(|_| FrameError::TooLong(payload.len()))?;
    let mut out = Vec::with_capacity(LENGTH_PREFIX + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Incremental decoder: feed it whatever the socket returned, take out complete requests.
///
/// Memory is bounded by one frame (`2 + 65535` bytes) plus what was fed and not yet taken.
#[derive(Debug, Default, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Append received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > MAX_PAYLOAD {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Number of buffered bytes not yet decoded.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete request, if one is buffered.
    ///
    /// Returns `None` when more bytes are needed, `Some(Err(_))` for a complete but invalid
    /// frame (which is consumed, so decoding continues with the next frame).
    pub fn next_request(&mut self) -> Option<Result<Request, FrameError>> {
        let pending = self.buf.get(self.start..)?;
        let (&hi, &lo) = (pending.first()?, pending.get(1)?);
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let payload = pending.get(LENGTH_PREFIX..LENGTH_PREFIX + len)?;
        let request = match payload {
            [] => Err(FrameError::Empty),
            [code] => Control::parse_control(*code).map(Request::Control),
            apdu => Ok(Request::Apdu(apdu.to_vec())),
        };
        self.start += LENGTH_PREFIX + len;
        Some(request)
    }
}

/// Decode every complete request in `bytes` (convenience for tests and fuzzing).
#[must_use]
pub fn decode_all(bytes: &[u8]) -> (Vec<Result<Request, FrameError>>, usize) {
    let mut decoder = FrameDecoder::new();
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(request) = decoder.next_request() {
        out.push(request);
    }
    let rest = decoder.buffered();
    (out, rest)
}

#[cfg(test)]
#[cfg_attr(test, allow(clippy::unwrap_used))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_codes() {
        let (reqs, rest) = decode_all(&[0, 1, 0, 0, 1, 1, 0, 1, 2, 0, 1, 4, 0, 1, 3]);
        assert_eq!(rest, 0);
        assert_eq!(
            reqs,
            vec![
                Ok(Request::Control(Control::PowerOff)),
                Ok(Request::Control(Control::PowerOn)),
                Ok(Request::Control(Control::Reset)),
                Ok(Request::Control(Control::Atr)),
                Err(FrameError::UnknownControl(3)),
            ]
        );
    }

    #[test]
    fn apdu_and_partial() {
        let mut d = FrameDecoder::new();
        d.push(&[0x00]);
        assert_eq!(d.next_request(), None);
        d.push(&[0x05, 0x00, 0xA4, 0x04]);
        assert_eq!(d.next_request(), None);
        d.push(&[0x00, 0x00, 0x00]);
        assert_eq!(
            d.next_request(),
            Some(Ok(Request::Apdu(vec![0x00, 0xA4, 0x04, 0x00, 0x00])))
        );
        assert_eq!(d.buffered(), 1);
        assert_eq!(d.next_request(), None);
    }

    #[test]
    fn empty_frame_is_consumed() {
        let (reqs, rest) = decode_all(&[0, 0, 0, 1, 1]);
        assert_eq!(
            reqs,
            vec![
                Err(FrameError::Empty),
                Ok(Request::Control(Control::PowerOn))
            ]
        );
        assert_eq!(rest, 0);
    }

    #[test]
    fn too_long() {
        assert_eq!(
            encode_frame(&vec![0; 0x1_0000]),
            Err(FrameError::TooLong(0x1_0000))
        );
        assert_eq!(encode_frame(&vec![7; 0xFFFF]).unwrap().len(), 0x1_0001);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                        cuts in proptest::collection::vec(0usize..600, 0..8)) {
            // Whole at once and split at arbitrary points give the same requests.
            let (whole, rest) = decode_all(&bytes);
            let mut d = FrameDecoder::new();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            points.sort_unstable();
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain(core::iter::once(bytes.len())) {
                d.push(&bytes[last..p]);
                last = p;
                while let Some(r) = d.next_request() { got.push(r); }
            }
            prop_assert_eq!(got, whole);
            prop_assert_eq!(d.buffered(), rest);
        }

        #[test]
        fn round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 2..300), 0..6)) {
            let mut wire = Vec::new();
            for p in &payloads { wire.extend(encode_frame(p).unwrap()); }
            let (reqs, rest) = decode_all(&wire);
            prop_assert_eq!(rest, 0);
            let want: Vec<_> = payloads.into_iter().map(|p| Ok(Request::Apdu(p))).collect();
            prop_assert_eq!(reqs, want);
        }
    }
}
