//! Table-driven tests: every command case and every parse error from `tests/data/*.toml`
//! (with the ISO/IEC 7816-4 clause or source beside each case), plus encoder and response
//! errors.
#![allow(clippy::unwrap_used)]

use apdu_codec::tlv::{self, Limits, Tag, TlvError, TlvIter};
use apdu_codec::{Case, Command, Error, LengthForm, StatusWord, parse_command, parse_response};
use toml::{Table, Value};

fn bytes(hex: &str) -> Vec<u8> {
    let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

fn load(name: &str) -> Table {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

fn entries<'a>(table: &'a Table, key: &str) -> &'a [Value] {
    table[key].as_array().unwrap()
}

fn str_of<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry[key].as_str().unwrap()
}

fn num(entry: &Value, key: &str) -> usize {
    usize::try_from(entry[key].as_integer().unwrap()).unwrap()
}

fn case_named(name: &str) -> Case {
    match name {
        "1" => Case::Case1,
        "2S" => Case::Case2Short,
        "3S" => Case::Case3Short,
        "4S" => Case::Case4Short,
        "2E" => Case::Case2Extended,
        "3E" => Case::Case3Extended,
        "4E" => Case::Case4Extended,
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn command_cases() {
    let table = load("commands.toml");
    let mut seen = std::collections::HashSet::new();
    for entry in entries(&table, "command") {
        let source = str_of(entry, "source");
        let input = bytes(str_of(entry, "hex"));
        let view = parse_command(&input).unwrap_or_else(|e| panic!("{source}: {e}"));
        let case = case_named(str_of(entry, "case"));
        seen.insert(case);
        assert_eq!(view.case(), case, "{source}");
        assert_eq!(view.header(), input[..4], "{source}");
        assert_eq!(view.data(), bytes(str_of(entry, "data")), "{source}");
        let le = entry.get("le").map(|_| num(entry, "le"));
        assert_eq!(view.le(), le, "{source}");
        assert_eq!(view.is_extended(), case.is_extended(), "{source}");
        // Encoding the owned copy gives the same bytes back, in the same form.
        assert_eq!(view.to_command().to_vec().unwrap(), input, "{source}");
        // Auto form picks the same encoding whenever the command fits a short APDU.
        let auto = view.to_command().with_form(LengthForm::Auto);
        let fits_short = view.data().len() <= 255 && le.is_none_or(|le| le <= 256);
        assert_eq!(auto.uses_extended().unwrap(), !fits_short, "{source}");
    }
    assert_eq!(seen.len(), 7, "all seven cases covered");
}

#[test]
fn command_errors() {
    let table = load("commands.toml");
    let mut seen = std::collections::HashSet::new();
    for entry in entries(&table, "error") {
        let source = str_of(entry, "source");
        let name = str_of(entry, "error");
        let expected = match name {
            "TooShort" => Error::TooShort {
                len: num(entry, "len"),
            },
            "InvalidClass" => Error::InvalidClass,
            "ZeroLc" => Error::ZeroLc,
            "Truncated" => Error::Truncated {
                expected: num(entry, "expected"),
                available: num(entry, "available"),
            },
            "TrailingBytes" => Error::TrailingBytes {
                count: num(entry, "count"),
            },
            "MixedLengthForms" => Error::MixedLengthForms,
            "IncompleteExtendedLength" => Error::IncompleteExtendedLength,
            other => panic!("unknown error {other}"),
        };
        seen.insert(name);
        let input = bytes(str_of(entry, "hex"));
        assert_eq!(parse_command(&input), Err(expected), "{source}");
        // Every parse error maps to an error status word a card can send.
        assert!(StatusWord::from(&expected).is_error(), "{source}");
    }
    assert_eq!(seen.len(), 7, "every command parse error covered");
    assert_eq!(
        StatusWord::from(Error::InvalidClass),
        StatusWord::CLA_NOT_SUPPORTED
    );
    assert_eq!(StatusWord::from(Error::ZeroLc), StatusWord::WRONG_LENGTH);
}

#[test]
fn encoder_errors() {
    // ISO/IEC 7816-4 §5.1: short Lc 1..=255, short Le 1..=256, extended Lc 1..=65535,
    // extended Le 1..=65536.
    let cases = [
        (
            "300 bytes forced short",
            Command::new(0x80, 0xE2, 0, 0)
                .with_data(vec![0; 300])
                .with_form(LengthForm::Short),
            Error::DataTooLong { len: 300, max: 255 },
        ),
        (
            "Le 257 forced short",
            Command::new(0x80, 0xCA, 0, 0)
                .with_le(257)
                .with_form(LengthForm::Short),
            Error::LeOutOfRange { le: 257, max: 256 },
        ),
        (
            "65536 data bytes",
            Command::new(0x80, 0xE2, 0, 0).with_data(vec![0; 65_536]),
            Error::DataTooLong {
                len: 65_536,
                max: 65_535,
            },
        ),
        (
            "Le 0",
            Command::new(0x80, 0xCA, 0, 0).with_le(0),
            Error::LeOutOfRange { le: 0, max: 65_536 },
        ),
        (
            "Le 65537",
            Command::new(0x80, 0xCA, 0, 0).with_le(65_537),
            Error::LeOutOfRange {
                le: 65_537,
                max: 65_536,
            },
        ),
    ];
    for (name, command, error) in cases {
        assert_eq!(command.to_vec(), Err(error), "{name}");
        assert_eq!(command.encoded_len(), Err(error), "{name}");
        let mut out = Vec::new();
        assert_eq!(command.encode_into(&mut out), Err(error), "{name}");
        assert!(out.is_empty(), "{name}: nothing written on error");
    }
}

#[test]
fn encoder_forms() {
    // (command, form, expected bytes): the encoder's choices (ISO/IEC 7816-4 §5.1).
    let data3 = vec![1, 2, 3];
    let cases = [
        (
            Command::new(0, 0xB0, 0, 0),
            LengthForm::Extended,
            "00B00000",
        ),
        (
            Command::new(0, 0xB0, 0, 0).with_le(256),
            LengthForm::Auto,
            "00B0000000",
        ),
        (
            Command::new(0, 0xB0, 0, 0).with_le(257),
            LengthForm::Auto,
            "00B00000000101",
        ),
        (
            Command::new(0, 0xB0, 0, 0).with_le(65_536),
            LengthForm::Auto,
            "00B00000000000",
        ),
        (
            Command::new(0, 0xB0, 0, 0).with_le(1),
            LengthForm::Extended,
            "00B00000000001",
        ),
        (
            Command::new(0, 0xD6, 0, 0).with_data(data3.clone()),
            LengthForm::Extended,
            "00D6000000000 3010203",
        ),
        (
            Command::new(0, 0xD6, 0, 0)
                .with_data(data3.clone())
                .with_le(65_536),
            LengthForm::Auto,
            "00D6000000000 30102030000",
        ),
        (
            Command::new(0, 0xD6, 0, 0).with_data(data3).with_le(256),
            LengthForm::Short,
            "00D600000301020300",
        ),
    ];
    for (command, form, hex) in cases {
        let command = command.with_form(form);
        assert_eq!(command.to_vec().unwrap(), bytes(hex), "{command:?}");
        let encoded = bytes(hex);
        let parsed = parse_command(&encoded).unwrap();
        assert_eq!(parsed.le(), command.le);
        assert_eq!(parsed.data(), command.data);
    }
}

#[test]
fn response_errors_and_status_words() {
    // ISO/IEC 7816-4 §5.1: a response is data || SW1 SW2.
    assert_eq!(parse_response(&[]), Err(Error::ResponseTooShort { len: 0 }));
    assert_eq!(
        parse_response(&[0x90]),
        Err(Error::ResponseTooShort { len: 1 })
    );
    let rsp = parse_response(&[0x90, 0x00]).unwrap();
    assert!(rsp.data().is_empty());
    assert!(rsp.status().is_success());
    // The status words the issue lists, each with its own meaning (ISO/IEC 7816-4 §5.6,
    // GPC 2.3 §11.1.3, PBOC purse words).
    for (sw, meaning) in [
        (0x9000, "success"),
        (0x6700, "wrong length (Lc or Le)"),
        (0x6881, "logical channel not supported or not open"),
        (0x6882, "secure messaging not supported"),
        (0x6982, "security status not satisfied"),
        (0x6983, "authentication method blocked"),
        (0x6984, "reference data not usable"),
        (0x6985, "conditions of use not satisfied"),
        (0x6A80, "incorrect parameters in the command data field"),
        (0x6A82, "file or application not found"),
        (0x6A84, "not enough memory space"),
        (0x6A86, "incorrect parameters P1-P2"),
        (0x6A88, "referenced data not found"),
        (0x6D00, "instruction not supported or invalid"),
        (0x6E00, "class not supported"),
        (0x6F00, "no precise diagnosis"),
        (0x9302, "MAC invalid"),
        (0x9303, "application permanently locked"),
        (0x9401, "insufficient balance"),
        (0x9501, "maximum balance exceeded"),
        (
            0x6155,
            "success, more response bytes available (GET RESPONSE)",
        ),
        (0x6C10, "wrong Le, resend with the exact length in SW2"),
        (0x63C2, "verification failed, counter gives tries left"),
        (0x6281, "warning: part of returned data may be corrupted"),
        (
            0x6310,
            "warning: more data available (send the command again for the next occurrence)",
        ),
    ] {
        assert_eq!(StatusWord::from_u16(sw).meaning(), meaning, "{sw:04X}");
    }
    assert_eq!(StatusWord::new(0x61, 0x00).bytes_available(), Some(256));
    assert_eq!(StatusWord::new(0x6C, 0x1C).exact_length(), Some(0x1C));
    assert_eq!(StatusWord::new(0x63, 0xC0).retries_left(), Some(0));
    assert_eq!(StatusWord::new(0x63, 0x10).retries_left(), None);
    assert_eq!(
        StatusWord::new(0x69, 0x82).to_string(),
        "6982 (security status not satisfied)"
    );
}

fn tag_of(hex: &str) -> Tag {
    Tag::from_bytes(&bytes(hex)).unwrap()
}

#[test]
fn tlv_vectors() {
    let table = load("tlv.toml");
    for entry in entries(&table, "ok") {
        let source = str_of(entry, "source");
        let input = bytes(str_of(entry, "hex"));
        let padding = entry
            .get("padding")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let iter = || {
            let iter = TlvIter::new(&input);
            if padding { iter.allow_padding() } else { iter }
        };
        let tags: Vec<Tag> = iter().map(|t| t.unwrap().tag()).collect();
        let expected: Vec<Tag> = entry["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| tag_of(t.as_str().unwrap()))
            .collect();
        assert_eq!(tags, expected, "{source}");
        let nodes: usize = iter().map(|t| t.unwrap().validate().unwrap()).sum();
        assert_eq!(nodes, num(entry, "nodes"), "{source}");
        if !padding {
            assert_eq!(
                tlv::validate(&input, Limits::default()),
                Ok(nodes),
                "{source}"
            );
        }
    }
    for entry in entries(&table, "error") {
        let source = str_of(entry, "source");
        let input = bytes(str_of(entry, "hex"));
        let expected = match str_of(entry, "error") {
            "TruncatedTag" => TlvError::TruncatedTag,
            "TagTooLong" => TlvError::TagTooLong,
            "TruncatedLength" => TlvError::TruncatedLength,
            "InvalidLength" => TlvError::InvalidLength(u8::try_from(num(entry, "byte")).unwrap()),
            "LengthTooLarge" => TlvError::LengthTooLarge {
                len: num(entry, "len"),
                max: num(entry, "max"),
            },
            "TruncatedValue" => TlvError::TruncatedValue {
                expected: num(entry, "expected"),
                available: num(entry, "available"),
            },
            "TooDeep" => TlvError::TooDeep {
                max: u8::try_from(num(entry, "max")).unwrap(),
            },
            "TrailingBytes" => TlvError::TrailingBytes {
                count: num(entry, "count"),
            },
            "Empty" => TlvError::Empty,
            other => panic!("unknown error {other}"),
        };
        let got = tlv::parse_single(&input).and_then(|t| t.validate().map(|_| t));
        assert_eq!(got.err(), Some(expected), "{source}");
        // Mapped into the crate error and on to the card's status word (6A80).
        assert_eq!(
            StatusWord::from(Error::from(expected)),
            StatusWord::INCORRECT_DATA
        );
    }
}
