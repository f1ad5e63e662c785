//! Host-side command exchange, Sans-IO: one logical command in, the APDUs to send out, the
//! card's answers in, one reassembled [`Response`] out.
//!
//! The helper takes care of three transport rules of ISO/IEC 7816-4 so that callers deal with
//! whole commands and whole responses:
//!
//! - **Command chaining** (§5.3.3): a data field longer than one APDU may carry is cut into
//!   pieces; every piece but the last goes out with CLA bit `10` set and no Le, and the card
//!   must answer each of them with `9000` (any other status word ends the exchange with it).
//! - **`61xx`** (§5.6, table 5): more response bytes are waiting; the helper sends
//!   GET RESPONSE `00 C0 00 00 xx` on the command's logical channel and concatenates the data.
//! - **`6Cxx`**: wrong Le; the helper sends the same APDU again with Le = `xx`.
//!
//! It performs no I/O: [`Exchange::poll_transmit`] hands out the next APDU, the caller sends it
//! however it likes and feeds the answer to [`Exchange::handle_response`], which returns the
//! final response once there is one. [`transceive`] runs that loop over a closure.
//!
//! ```
//! use apdu_codec::exchange::{Exchange, ExchangeConfig};
//! use apdu_codec::{Command, StatusWord};
//!
//! // A fake card: accepts chained STORE DATA pieces, then answers the last one with
//! // 40 bytes it hands out 16 at a time through 61xx / GET RESPONSE.
//! let mut received = Vec::new();
//! let mut pending: Vec<u8> = Vec::new();
//! let mut card = |apdu: &[u8]| -> Vec<u8> {
//!     let cmd = apdu_codec::parse_command(apdu).expect("well-formed APDU");
//!     if cmd.ins() == 0xC0 {
//!         let n = pending.len().min(16);
//!         let mut out: Vec<u8> = pending.drain(..n).collect();
//!         match pending.len() {
//!             0 => out.extend([0x90, 0x00]),
//!             left => out.extend([0x61, left.min(16) as u8]),
//!         }
//!         return out;
//!     }
//!     received.extend_from_slice(cmd.data());
//!     if cmd.cla().is_chained() {
//!         return vec![0x90, 0x00];
//!     }
//!     pending = (0..40).collect();
//!     vec![0x61, 16]
//! };
//!
//! let store = Command::new(0x80, 0xE2, 0x80, 0x00).with_data(vec![0xA5; 600]).with_le(256);
//! let mut exchange = Exchange::new(store, ExchangeConfig::default())?;
//! let response = loop {
//!     let apdu = exchange.poll_transmit().expect("an APDU to send").to_vec();
//!     let answer = card(&apdu);
//!     if let Some(response) = exchange.handle_response(&answer)? {
//!         break response;
//!     }
//! };
//! assert_eq!(response.status, StatusWord::SUCCESS);
//! assert_eq!(response.data, (0..40).collect::<Vec<u8>>());
//! assert_eq!(received, vec![0xA5; 600]);
//! // 3 chained pieces (255 + 255 + 90 bytes) and 3 GET RESPONSE.
//! assert_eq!(exchange.apdus_sent(), 6);
//! # Ok::<(), apdu_codec::Error>(())
//! ```

use alloc::vec::Vec;
use core::fmt;

use crate::command::encode_parts;
use crate::ins::GET_RESPONSE;
use crate::{
    Cla, Command, Error, LengthForm, MAX_EXTENDED_DATA, MAX_EXTENDED_LE, MAX_SHORT_DATA,
    MAX_SHORT_LE, Response, StatusWord, parse_response,
};

/// Default limit on GET RESPONSE and resend rounds of one exchange (64 rounds of 256 bytes
/// fetch 16 KiB, far more than any GlobalPlatform response).
pub const DEFAULT_MAX_ROUNDS: usize = 64;

/// How an [`Exchange`] may use the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExchangeConfig {
    /// Largest data field per APDU; longer data is chained. Clamped to 1..=255, or to
    /// 1..=65535 when `extended` is set.
    pub max_data: usize,
    /// Whether extended-length APDUs may be sent (the reader and card support them). Without
    /// it every APDU is short and an Le above 256 is sent as `00` (256); the rest of the data
    /// then arrives through `61xx`.
    pub extended: bool,
    /// Most GET RESPONSE plus resend rounds before [`Error::TooManyRounds`].
    pub max_rounds: usize,
}

impl Default for ExchangeConfig {
    /// Short APDUs, 255 data bytes each, [`DEFAULT_MAX_ROUNDS`].
    fn default() -> Self {
        ExchangeConfig::short()
    }
}

impl ExchangeConfig {
    /// Short APDUs only, 255 data bytes each.
    #[must_use]
    pub const fn short() -> Self {
        ExchangeConfig {
            max_data: MAX_SHORT_DATA,
            extended: false,
            max_rounds: DEFAULT_MAX_ROUNDS,
        }
    }

    /// Extended APDUs allowed, up to 65535 data bytes each.
    #[must_use]
    pub const fn extended() -> Self {
        ExchangeConfig {
            max_data: MAX_EXTENDED_DATA,
            extended: true,
            max_rounds: DEFAULT_MAX_ROUNDS,
        }
    }

    /// The same configuration with another data limit per APDU.
    #[must_use]
    pub const fn with_max_data(mut self, max_data: usize) -> Self {
        self.max_data = max_data;
        self
    }

    /// The same configuration with another round limit.
    #[must_use]
    pub const fn with_max_rounds(mut self, max_rounds: usize) -> Self {
        self.max_rounds = max_rounds;
        self
    }
}

/// What the outstanding APDU is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The piece of the command's data ending at `end`, with this Le.
    Piece { end: usize, le: Option<usize> },
    /// GET RESPONSE with this Le.
    GetResponse { le: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `apdu` holds the next APDU; nobody has taken it yet.
    Ready,
    /// `apdu` was handed out; waiting for the card's answer.
    Awaiting,
    /// The response was returned, or the exchange failed.
    Finished,
}

/// One command's exchange with a card (see the [module documentation](self)).
pub struct Exchange {
    header: [u8; 4],
    data: Vec<u8>,
    le: Option<usize>,
    form: LengthForm,
    max_data: usize,
    max_rounds: usize,
    rounds: usize,
    apdus_sent: usize,
    /// Start of the data piece most recently sent.
    offset: usize,
    sent: Sent,
    state: State,
    apdu: Vec<u8>,
    collected: Vec<u8>,
}

impl Exchange {
    /// Prepare the exchange of `command`; the first APDU is ready for
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    /// [`Error::InvalidClass`] for CLA `FF`, and for CLA `EF` when the data needs chaining
    /// (its chaining bit would make it `FF`); [`Error::LeOutOfRange`] for an Le of 0 or above
    /// 65536.
    ///
    /// The command's [`LengthForm`] is honoured where the configuration allows it: a command
    /// forced to [`LengthForm::Short`] is never sent extended, and one forced to
    /// [`LengthForm::Extended`] is sent short when the configuration forbids extended APDUs.
    pub fn new(command: Command, config: ExchangeConfig) -> Result<Self, Error> {
        if Cla(command.cla).is_invalid() {
            return Err(Error::InvalidClass);
        }
        if let Some(le) = command.le
            && (le == 0 || le > MAX_EXTENDED_LE)
        {
            return Err(Error::LeOutOfRange {
                le,
                max: MAX_EXTENDED_LE,
            });
        }
        let extended = config.extended && command.form != LengthForm::Short;
        let (form, limit, le) = if extended {
            (command.form, MAX_EXTENDED_DATA, command.le)
        } else {
            (
                LengthForm::Short,
                MAX_SHORT_DATA,
                command.le.map(|le| le.min(MAX_SHORT_LE)),
            )
        };
        let max_data = config.max_data.clamp(1, limit);
        // CLA EF with its chaining bit would be FF, which ISO/IEC 7816-4 §5.4.1 reserves.
        if command.data.len() > max_data && Cla(command.cla).with_chaining(true).is_invalid() {
            return Err(Error::InvalidClass);
        }
        let mut exchange = Exchange {
            header: command.header(),
            data: command.data,
            le,
            form,
            max_data,
            max_rounds: config.max_rounds,
            rounds: 0,
            apdus_sent: 0,
            offset: 0,
            sent: Sent::Piece { end: 0, le: None },
            state: State::Ready,
            apdu: Vec::new(),
            collected: Vec::new(),
        };
        exchange.prepare_piece(0, le)?;
        Ok(exchange)
    }

    /// The next APDU to send, once: `None` while an answer is awaited and after the end.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        if self.state == State::Ready {
            self.state = State::Awaiting;
            self.apdus_sent = self.apdus_sent.saturating_add(1);
            Some(&self.apdu)
        } else {
            None
        }
    }

    /// Feed the card's answer (`data || SW1 SW2`) to the APDU last handed out.
    ///
    /// Returns `Ok(None)` when another APDU is ready to send, `Ok(Some(response))` with the
    /// reassembled response when the exchange is complete. A non-`9000` answer to a chained
    /// piece ends the exchange with that answer.
    ///
    /// # Errors
    /// - [`Error::ResponseTooShort`] for fewer than two bytes; nothing changes, the answer may
    ///   be fed again.
    /// - [`Error::UnexpectedResponse`] when no APDU is outstanding (not yet polled, or the
    ///   exchange is over), or when the card answered a chained piece with data; the latter
    ///   ends the exchange.
    /// - [`Error::TooManyRounds`] when `61xx`/`6Cxx` rounds exceed the limit; ends the
    ///   exchange.
    pub fn handle_response(&mut self, answer: &[u8]) -> Result<Option<Response>, Error> {
        match self.state {
            State::Ready => return Err(Error::UnexpectedResponse("APDU not yet transmitted")),
            State::Finished => return Err(Error::UnexpectedResponse("exchange finished")),
            State::Awaiting => {}
        }
        let answer = parse_response(answer)?;
        let status = answer.status();
        if let Sent::Piece { end, .. } = self.sent
            && end < self.data.len()
        {
            // An intermediate piece of a chain (ISO/IEC 7816-4 §5.3.3).
            if status != StatusWord::SUCCESS {
                return Ok(Some(self.finish(answer.data(), status)));
            }
            if !answer.data().is_empty() {
                self.state = State::Finished;
                return Err(Error::UnexpectedResponse(
                    "chained command piece answered with data",
                ));
            }
            self.prepare_piece(end, self.le)?;
            return Ok(None);
        }
        if let Some(available) = status.bytes_available() {
            // 61xx: fetch the rest with GET RESPONSE (ISO/IEC 7816-4 §7.6.1).
            self.count_round()?;
            self.collected.extend_from_slice(answer.data());
            self.prepare_get_response(available)?;
            return Ok(None);
        }
        if let Some(exact) = status.exact_length() {
            // 6Cxx: the same APDU again with Le = xx; whatever data came with it is dropped.
            self.count_round()?;
            match self.sent {
                Sent::Piece { .. } => self.prepare_piece(self.offset, Some(exact))?,
                Sent::GetResponse { .. } => self.prepare_get_response(exact)?,
            }
            return Ok(None);
        }
        Ok(Some(self.finish(answer.data(), status)))
    }

    /// `true` once the response was returned or the exchange failed.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// APDUs handed out so far.
    #[must_use]
    pub const fn apdus_sent(&self) -> usize {
        self.apdus_sent
    }

    /// GET RESPONSE and resend rounds so far.
    #[must_use]
    pub const fn rounds(&self) -> usize {
        self.rounds
    }

    fn count_round(&mut self) -> Result<(), Error> {
        if self.rounds >= self.max_rounds {
            self.state = State::Finished;
            return Err(Error::TooManyRounds(self.max_rounds));
        }
        self.rounds += 1;
        Ok(())
    }

    fn finish(&mut self, data: &[u8], status: StatusWord) -> Response {
        self.state = State::Finished;
        let mut collected = core::mem::take(&mut self.collected);
        collected.extend_from_slice(data);
        Response::new(collected, status)
    }

    /// Encode the piece of data starting at `offset`, with `le` if it is the last one.
    fn prepare_piece(&mut self, offset: usize, le: Option<usize>) -> Result<(), Error> {
        let end = offset.saturating_add(self.max_data).min(self.data.len());
        let piece = self.data.get(offset..end).unwrap_or(&[]);
        let last = end >= self.data.len();
        let mut header = self.header;
        // The last (or only) piece goes out with the caller's class byte as given.
        let le = if last {
            le
        } else {
            header[0] = Cla(header[0]).with_chaining(true).0;
            None
        };
        self.apdu.clear();
        encode_parts(&mut self.apdu, header, piece, le, self.form)?;
        self.offset = offset;
        self.sent = Sent::Piece { end, le };
        self.state = State::Ready;
        Ok(())
    }

    /// Encode GET RESPONSE `00 C0 00 00 Le` on the command's logical channel
    /// (ISO/IEC 7816-4 §7.6.1).
    fn prepare_get_response(&mut self, le: usize) -> Result<(), Error> {
        let channel = Cla(self.header[0]).logical_channel();
        let cla = Cla(0x00).with_logical_channel(channel).unwrap_or(Cla(0x00));
        self.apdu.clear();
        encode_parts(
            &mut self.apdu,
            [cla.0, GET_RESPONSE, 0x00, 0x00],
            &[],
            Some(le),
            LengthForm::Short,
        )?;
        self.sent = Sent::GetResponse { le };
        self.state = State::Ready;
        Ok(())
    }
}

impl fmt::Debug for Exchange {
    /// Lengths and progress only: the data may be secret (PUT KEY, STORE DATA).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Exchange {{ {:02X} {:02X} {:02X} {:02X}, data: {} bytes, sent: {:?}, state: {:?}, \
             rounds: {}, collected: {} bytes }}",
            self.header[0],
            self.header[1],
            self.header[2],
            self.header[3],
            self.data.len(),
            self.sent,
            self.state,
            self.rounds,
            self.collected.len()
        )
    }
}

/// Run a whole [`Exchange`] over `card`, a function that sends one APDU and returns the
/// card's answer.
///
/// ```
/// use apdu_codec::exchange::{transceive, ExchangeConfig};
/// use apdu_codec::{Command, Error, StatusWord};
/// // A card that wants Le = 4 (6C04) before answering.
/// let card = |apdu: &[u8]| -> Result<Vec<u8>, Error> {
///     Ok(match apdu.last() {
///         Some(0x04) => vec![1, 2, 3, 4, 0x90, 0x00],
///         _ => vec![0x6C, 0x04],
///     })
/// };
/// let get_data = Command::new(0x80, 0xCA, 0x00, 0x66).with_le(256);
/// let response = transceive(get_data, ExchangeConfig::default(), card)?;
/// assert_eq!(response.data, [1, 2, 3, 4]);
/// assert_eq!(response.status, StatusWord::SUCCESS);
/// # Ok::<(), Error>(())
/// ```
///
/// # Errors
/// Whatever `card` returns, and the [`Error`]s of [`Exchange::new`] and
/// [`Exchange::handle_response`] converted into `E`.
pub fn transceive<E: From<Error>>(
    command: Command,
    config: ExchangeConfig,
    mut card: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Response, E> {
    let mut exchange = Exchange::new(command, config)?;
    loop {
        let Some(apdu) = exchange.poll_transmit() else {
            return Err(Error::UnexpectedResponse("no APDU to send").into());
        };
        let answer = card(apdu)?;
        if let Some(response) = exchange.handle_response(&answer)? {
            return Ok(response);
        }
    }
}
