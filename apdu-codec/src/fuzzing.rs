//! The checking functions behind the fuzz targets in `fuzz/fuzz_targets/`, kept in the library
//! so that an ordinary `cargo test` replays the committed corpus and every crash file through
//! exactly the same code (`tests/fuzz_corpus.rs`). Each function panics when an invariant
//! breaks; any other outcome (including a parse error) is a pass.
//!
//! Not part of the public API.

use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::exchange::{Exchange, ExchangeConfig};
use crate::tlv::{self, Limits, Tag, Tlv, TlvBuilder, TlvIter};
use crate::{
    Cla, Command, Error, LengthForm, MAX_EXTENDED_DATA, MAX_SHORT_LE, Response, StatusWord,
    parse_command, parse_response,
};

/// Everything formatted goes here, so that `Display`/`Debug` code runs without I/O.
struct Sink(usize);

impl core::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 = self.0.wrapping_add(s.len());
        Ok(())
    }
}

fn format_all(items: &[&dyn core::fmt::Display]) {
    let mut sink = Sink(0);
    for item in items {
        let _ = write!(sink, "{item}");
    }
}

/// Target `command_apdu`: parse arbitrary bytes as a command APDU. An accepted APDU must
/// re-encode to exactly the input (the parser accepts canonical encodings only), and an
/// error must map to a status word.
pub fn command_apdu(data: &[u8]) {
    match parse_command(data) {
        Ok(view) => {
            let command = view.to_command();
            let encoded = command.to_vec();
            assert_eq!(encoded.as_deref(), Ok(data), "re-encoding differs");
            assert_eq!(view.data().len(), command.data.len());
            let has_length_field = view.le().is_some() || !view.data().is_empty();
            assert_eq!(
                view.case().is_extended(),
                view.is_extended() && has_length_field
            );
            format_all(&[&view.cla(), &view.cla().logical_channel()]);
            let _ = crate::ins::name(view.cla().0, view.ins());
        }
        Err(error) => {
            let status = StatusWord::from(&error);
            assert!(status.is_error(), "{error} maps to {status}");
            format_all(&[&error, &status]);
        }
    }
}

/// Target `response_apdu`: parse arbitrary bytes as a response APDU; it must re-encode to the
/// input and every status word must have a meaning.
pub fn response_apdu(data: &[u8]) {
    match parse_response(data) {
        Ok(view) => {
            assert_eq!(view.to_response().to_vec(), data);
            let status = view.status();
            assert!(!status.meaning().is_empty());
            assert_eq!(StatusWord::from_bytes(status.to_bytes()), status);
            let _ = (
                status.bytes_available(),
                status.exact_length(),
                status.retries_left(),
            );
            format_all(&[&status]);
        }
        Err(error) => {
            assert!(data.len() < 2);
            format_all(&[&error]);
        }
    }
}

/// Target `ber_tlv`: parse arbitrary bytes as BER-TLV with and without padding and with tight
/// limits; whatever parses and validates must survive a rebuild with the builder (minimal
/// lengths) and parse back to the same tree.
pub fn ber_tlv(data: &[u8]) {
    let tight = Limits {
        max_depth: 2,
        max_length: 64,
    };
    let loose = Limits {
        max_depth: u8::MAX,
        max_length: tlv::MAX_LENGTH,
    };
    let default_count = tlv::validate(data, Limits::default());
    let tight_count = tlv::validate(data, tight);
    let _ = tlv::validate(data, loose);
    // Tighter limits can only turn successes into errors.
    if let Ok(count) = tight_count {
        assert_eq!(default_count, Ok(count));
    }
    let mut rest = data;
    while let Ok((tlv, after)) = tlv::parse_tlv(rest) {
        // Differential check: the hot-path tag decoder agrees with the nom reference.
        let (encoded, len) = tlv.tag().to_bytes();
        let tag_bytes = encoded.get(4 - len..).unwrap_or(&[]);
        assert_eq!(rest.get(..len), Some(tag_bytes), "tag bytes");
        assert_eq!(Tag::from_bytes(tag_bytes), Ok(tlv.tag()), "nom reference");
        rest = after;
    }
    for item in TlvIter::new(data).allow_padding() {
        match item {
            Ok(tlv) => {
                let _ = tlv.validate();
                format_all(&[&tlv.tag()]);
            }
            Err(error) => format_all(&[&error, &Error::from(error)]),
        }
    }
    let _ = tlv::find(data, Tag::new(0x9F7F));
    match tlv::parse_single(data) {
        Ok(single) => {
            let _ = single.find_path(&[Tag::new(0xE0), Tag::new(0xC0)]);
        }
        Err(error) => format_all(&[&error]),
    }
    if default_count.is_ok() {
        let mut builder = TlvBuilder::new();
        let mut nodes = 0;
        for item in TlvIter::new(data) {
            let Ok(item) = item else {
                panic!("validated input failed to iterate")
            };
            rebuild(&mut builder, item, &mut nodes);
        }
        let rebuilt = builder.into_vec();
        assert_eq!(tlv::validate(&rebuilt, Limits::default()), default_count);
        assert!(same_sequence(data, &rebuilt), "rebuilt tree differs");
    }
}

fn rebuild(builder: &mut TlvBuilder, tlv: Tlv<'_>, nodes: &mut usize) {
    *nodes += 1;
    if tlv.is_constructed() {
        builder.constructed(tlv.tag(), |inner| {
            for child in tlv.children().flatten() {
                rebuild(inner, child, nodes);
            }
        });
    } else {
        builder.primitive(tlv.tag(), tlv.value());
    }
}

/// `true` when both encodings hold the same tree (tags, structure, primitive values).
fn same_sequence(a: &[u8], b: &[u8]) -> bool {
    let mut left = TlvIter::new(a);
    let mut right = TlvIter::new(b);
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (Some(Ok(l)), Some(Ok(r))) => {
                if !same_tree(l, r) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn same_tree(a: Tlv<'_>, b: Tlv<'_>) -> bool {
    if a.tag() != b.tag() || a.is_constructed() != b.is_constructed() {
        return false;
    }
    if !a.is_constructed() {
        return a.value() == b.value();
    }
    same_sequence(a.value(), b.value())
}

/// Reads fields out of fuzzer bytes; runs dry as zeros.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.0)
    }
}

/// Target `apdu_round_trip`, structured: fuzzer bytes choose a command (header, data, Le,
/// length form), an exchange configuration and a card behaviour. The command must encode and
/// parse back to the same fields, and a full [`Exchange`] against a simulated card (which
/// checks every APDU it receives, reassembles chained pieces, asks for the exact Le with
/// `6Cxx` and hands its answer out through `61xx`) must deliver the command intact and return
/// the card's whole answer.
pub fn apdu_round_trip(data: &[u8]) {
    let mut fields = Fields(data);
    let header = [fields.byte(), fields.byte(), fields.byte(), fields.byte()];
    let flags = fields.byte();
    let le_raw = fields.u16();
    let max_data = usize::from(fields.u16());
    let piece = usize::from(fields.byte()).max(1);
    let answer_len = usize::from(fields.u16() % 1024);
    let six_c = usize::from(fields.byte());
    let body = fields.rest();
    let form = match flags & 0x03 {
        0 | 3 => LengthForm::Auto,
        1 => LengthForm::Short,
        _ => LengthForm::Extended,
    };
    let le = match (flags >> 2) & 0x03 {
        0 => None,
        1 => Some(usize::from(le_raw % 257)),
        2 => Some(usize::from(le_raw) + 1),
        _ => Some(usize::from(le_raw)),
    };
    let command = Command {
        cla: header[0],
        ins: header[1],
        p1: header[2],
        p2: header[3],
        data: body.to_vec(),
        le,
        form,
    };

    // 1. encode, parse back, compare.
    match command.to_vec() {
        Ok(bytes) => {
            assert_eq!(command.encoded_len(), Ok(bytes.len()));
            match parse_command(&bytes) {
                Ok(view) => {
                    assert_eq!(view.header(), header);
                    assert_eq!(view.data(), body);
                    assert_eq!(view.le(), le);
                    let extended = command.uses_extended() == Ok(true);
                    // A case 1 command has no length field to show its form.
                    if !body.is_empty() || le.is_some() {
                        assert_eq!(view.is_extended(), extended);
                    }
                }
                Err(error) => assert!(header[0] == 0xFF && error == Error::InvalidClass, "{error}"),
            }
        }
        Err(error) => assert!(
            matches!(
                error,
                Error::DataTooLong { .. } | Error::LeOutOfRange { .. }
            ),
            "{error}"
        ),
    }

    // 2. the exchange against a simulated card.
    let config = ExchangeConfig {
        max_data,
        extended: flags & 0x10 != 0,
        max_rounds: usize::from(flags >> 5) * 40,
    };
    let mut exchange = match Exchange::new(command.clone(), config) {
        Ok(exchange) => exchange,
        Err(error) => {
            let limit = if config.extended && form != LengthForm::Short {
                MAX_EXTENDED_DATA
            } else {
                crate::MAX_SHORT_DATA
            };
            let chained = body.len() > max_data.clamp(1, limit);
            let expected_error = header[0] == 0xFF
                || (header[0] == 0xEF && chained && error == Error::InvalidClass)
                || le.is_some_and(|le| le == 0 || le > crate::MAX_EXTENDED_LE);
            assert!(expected_error, "{error}");
            return;
        }
    };
    let extended = config.extended && form != LengthForm::Short;
    let expected_le = if extended {
        le
    } else {
        le.map(|le| le.min(MAX_SHORT_LE))
    };
    let answer: Vec<u8> = (0..answer_len)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    let six_c = (six_c % 3 == 0).then(|| u8::try_from(six_c % 256).unwrap_or(0));
    let mut card = SimulatedCard {
        command: &command,
        expected_le,
        received: Vec::new(),
        answer: &answer,
        sent: 0,
        piece,
        six_c,
        last_piece: None,
        announced: 0,
        phase: Phase::Receiving,
    };
    // Rounds the card will need: one 6Cxx, then one 61xx per further piece of the answer.
    let per_answer = piece.min(256);
    let needed = usize::from(six_c.is_some()) + answer_len.div_ceil(per_answer).saturating_sub(1);
    let mut steps = 0usize;
    let outcome = loop {
        let Some(apdu) = exchange.poll_transmit() else {
            panic!("exchange stalled");
        };
        let apdu = apdu.to_vec();
        steps += 1;
        assert!(steps < 100_000, "exchange does not end");
        match exchange.handle_response(&card.answer(&apdu)) {
            Ok(None) => {}
            Ok(Some(response)) => break Ok(response),
            Err(error) => break Err(error),
        }
    };
    match outcome {
        Ok(response) => {
            assert!(needed <= config.max_rounds);
            assert_eq!(exchange.rounds(), needed);
            assert_eq!(card.received, command.data, "card got other data");
            assert_eq!(response, Response::success(answer));
        }
        Err(Error::TooManyRounds(max)) => {
            assert_eq!(max, config.max_rounds);
            assert!(needed > max, "gave up after {max} rounds, {needed} needed");
        }
        Err(error) => panic!("exchange failed: {error}"),
    }
    assert!(exchange.is_finished());
}

enum Phase {
    Receiving,
    Sending,
}

/// A card that checks what the exchange sends, byte for byte.
struct SimulatedCard<'a> {
    command: &'a Command,
    expected_le: Option<usize>,
    received: Vec<u8>,
    answer: &'a [u8],
    sent: usize,
    piece: usize,
    six_c: Option<u8>,
    /// The last command piece, remembered to recognise a 6Cxx resend.
    last_piece: Option<Vec<u8>>,
    /// The byte count announced in the last 61xx.
    announced: usize,
    phase: Phase,
}

impl SimulatedCard<'_> {
    fn answer(&mut self, apdu: &[u8]) -> Vec<u8> {
        let Ok(view) = parse_command(apdu) else {
            panic!("the exchange sent a malformed APDU {apdu:02X?}");
        };
        assert!(view.data().len() <= MAX_EXTENDED_DATA);
        match self.phase {
            Phase::Receiving => {
                let cla = view.cla();
                assert_eq!(&view.header()[1..], &self.command.header()[1..]);
                if cla.is_chained() && cla != Cla(self.command.cla) {
                    // An intermediate piece: the caller's class with the chaining bit.
                    assert_eq!(cla, Cla(self.command.cla).with_chaining(true));
                    assert_eq!(view.le(), None);
                    assert!(!view.data().is_empty());
                    self.received.extend_from_slice(view.data());
                    return [0x90, 0x00].into();
                }
                if let Some(previous) = self.last_piece.take() {
                    // The resend after 6Cxx: same piece, the Le the card asked for.
                    let Ok(previous) = parse_command(&previous) else {
                        panic!("remembered piece no longer parses");
                    };
                    assert_eq!(view.data(), previous.data());
                    assert_eq!(
                        view.le(),
                        self.six_c
                            .map(|xx| if xx == 0 { 256 } else { usize::from(xx) })
                    );
                    self.six_c = None;
                } else if cla.is_chained() && self.more_expected(view.data().len()) {
                    // The caller's own class has the chaining bit; still an intermediate piece.
                    assert_eq!(view.le(), None);
                    self.received.extend_from_slice(view.data());
                    return [0x90, 0x00].into();
                } else {
                    assert_eq!(cla, Cla(self.command.cla));
                    assert_eq!(view.le(), self.expected_le);
                    self.received.extend_from_slice(view.data());
                    if let Some(xx) = self.six_c {
                        self.last_piece = Some(apdu.to_vec());
                        return [0x6C, xx].into();
                    }
                }
                self.phase = Phase::Sending;
                self.send_next()
            }
            Phase::Sending => {
                let channel = Cla(self.command.cla).logical_channel();
                assert_eq!(
                    Some(view.cla()),
                    Cla(0x00).with_logical_channel(channel),
                    "GET RESPONSE class"
                );
                assert_eq!(&view.header()[1..], &[0xC0, 0x00, 0x00]);
                assert_eq!(view.le(), Some(self.announced), "GET RESPONSE Le");
                assert!(!view.is_extended());
                self.send_next()
            }
        }
    }

    fn more_expected(&self, piece_len: usize) -> bool {
        self.received.len() + piece_len < self.command.data.len()
    }

    /// The next part of the answer: up to `piece` bytes, then 61xx or 9000.
    fn send_next(&mut self) -> Vec<u8> {
        let left = self.answer.get(self.sent..).unwrap_or(&[]);
        let n = left.len().min(self.piece).min(256);
        let mut out: Vec<u8> = left.get(..n).unwrap_or(&[]).to_vec();
        self.sent += n;
        let remaining = self.answer.len().saturating_sub(self.sent);
        if remaining == 0 {
            out.extend_from_slice(&StatusWord::SUCCESS.to_bytes());
        } else {
            self.announced = remaining.min(self.piece).min(256);
            let xx = u8::try_from(self.announced % 256).unwrap_or(0);
            out.extend_from_slice(&[0x61, xx]);
        }
        out
    }
}
