//! Table-driven tests of the host-side exchange helper: every path as a script of
//! (APDU the helper must send, answer the card gives), ISO/IEC 7816-4 clause beside each case.
#![allow(clippy::unwrap_used)]

use apdu_codec::exchange::{Exchange, ExchangeConfig, transceive};
use apdu_codec::{Command, Error, LengthForm, Response, StatusWord};

fn h(hex: &str) -> Vec<u8> {
    let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

/// What the exchange must end in.
enum End {
    Response(&'static str, u16),
    Error(Error),
}

struct Case {
    name: &'static str,
    command: Command,
    config: ExchangeConfig,
    /// (expected APDU, card answer) in order; the answer may be any bytes.
    script: Vec<(String, &'static str)>,
    end: End,
}

fn run(case: &Case) {
    let mut exchange = Exchange::new(case.command.clone(), case.config).unwrap();
    let mut outcome = None;
    for (step, (expected, answer)) in case.script.iter().enumerate() {
        let apdu = exchange
            .poll_transmit()
            .unwrap_or_else(|| panic!("{}: step {step}: no APDU to send", case.name))
            .to_vec();
        assert_eq!(
            hex::encode_upper(&apdu),
            expected.replace(' ', ""),
            "{}: step {step}",
            case.name
        );
        assert!(
            exchange.poll_transmit().is_none(),
            "{}: APDU handed out twice",
            case.name
        );
        match exchange.handle_response(&h(answer)) {
            Ok(None) => {}
            Ok(Some(response)) => {
                assert_eq!(step + 1, case.script.len(), "{}: ended early", case.name);
                outcome = Some(Ok(response));
            }
            Err(error) => {
                assert_eq!(step + 1, case.script.len(), "{}: failed early", case.name);
                outcome = Some(Err(error));
            }
        }
    }
    assert!(exchange.is_finished(), "{}: not finished", case.name);
    assert!(exchange.poll_transmit().is_none(), "{}", case.name);
    assert_eq!(exchange.apdus_sent(), case.script.len(), "{}", case.name);
    let expected = match &case.end {
        End::Response(data, sw) => Ok(Response::new(h(data), StatusWord::from_u16(*sw))),
        End::Error(error) => Err(*error),
    };
    assert_eq!(outcome.unwrap(), expected, "{}", case.name);
    // Once finished, any further answer is unexpected.
    assert!(matches!(
        exchange.handle_response(&[0x90, 0x00]),
        Err(Error::UnexpectedResponse(_))
    ));
}

fn s(apdu: &str) -> String {
    apdu.replace(' ', "")
}

#[test]
#[allow(clippy::too_many_lines)]
fn every_path() {
    let get_cplc = Command::new(0x80, 0xCA, 0x9F, 0x7F).with_le(256);
    let chain_600 = Command::new(0x80, 0xE2, 0x80, 0x00)
        .with_data(vec![0xA5; 600])
        .with_le(256);
    let a5 = |n: usize| "A5".repeat(n);
    let cases = vec![
        Case {
            // ISO/IEC 7816-4 §5.1 case 1, plain 9000.
            name: "case 1",
            command: Command::new(0x00, 0x70, 0x80, 0x01),
            config: ExchangeConfig::default(),
            script: vec![(s("00708001"), "9000")],
            end: End::Response("", 0x9000),
        },
        Case {
            // §5.1 case 4S with data and 9000.
            name: "case 4S direct",
            command: Command::new(0x00, 0xA4, 0x04, 0x00)
                .with_data(h("A000000151000000"))
                .with_le(256),
            config: ExchangeConfig::default(),
            script: vec![(s("00A4040008 A000000151000000 00"), "6F10 9000")],
            end: End::Response("6F10", 0x9000),
        },
        Case {
            // §5.6 table 5 / §7.6.1: 61xx, GET RESPONSE twice, data concatenated.
            name: "61xx twice",
            command: get_cplc.clone(),
            config: ExchangeConfig::default(),
            script: vec![
                (s("80CA9F7F00"), "0102 6103"),
                (s("00C0000003"), "030405 6102"),
                (s("00C0000002"), "0607 9000"),
            ],
            end: End::Response("01020304050607", 0x9000),
        },
        Case {
            // 6100 means 256 bytes available: GET RESPONSE Le 00.
            name: "6100",
            command: get_cplc.clone(),
            config: ExchangeConfig::default(),
            script: vec![(s("80CA9F7F00"), "6100"), (s("00C0000000"), "AA 9000")],
            end: End::Response("AA", 0x9000),
        },
        Case {
            // GET RESPONSE goes on the command's logical channel (§5.4.1): 81 -> 01.
            name: "61xx on channel 1",
            command: Command::new(0x81, 0xCA, 0x00, 0x66).with_le(256),
            config: ExchangeConfig::default(),
            script: vec![(s("81CA006600"), "6101"), (s("01C0000001"), "42 9000")],
            end: End::Response("42", 0x9000),
        },
        Case {
            // Further interindustry class, channel 7 (C3) -> GET RESPONSE class 43.
            name: "61xx on channel 7",
            command: Command::new(0xE3, 0xCA, 0x00, 0x66).with_le(256),
            config: ExchangeConfig::default(),
            script: vec![(s("E3CA006600"), "6101"), (s("43C0000001"), "42 9000")],
            end: End::Response("42", 0x9000),
        },
        Case {
            // 6Cxx: resend the same APDU with Le = xx.
            name: "6Cxx",
            command: get_cplc.clone(),
            config: ExchangeConfig::default(),
            script: vec![(s("80CA9F7F00"), "6C02"), (s("80CA9F7F02"), "9F7F 9000")],
            end: End::Response("9F7F", 0x9000),
        },
        Case {
            // 6Cxx for a case 3 command: the card asks for an Le, which is added.
            name: "6Cxx on case 3",
            command: Command::new(0x80, 0x50, 0x00, 0x00).with_data(h("0102030405060708")),
            config: ExchangeConfig::default(),
            script: vec![
                (s("8050000008 0102030405060708"), "6C1C"),
                (s("8050000008 0102030405060708 1C"), "AABB 9000"),
            ],
            end: End::Response("AABB", 0x9000),
        },
        Case {
            // 6Cxx in answer to GET RESPONSE: GET RESPONSE again with the exact Le.
            name: "6Cxx after 61xx",
            command: get_cplc.clone(),
            config: ExchangeConfig::default(),
            script: vec![
                (s("80CA9F7F00"), "11 6110"),
                (s("00C0000010"), "6C02"),
                (s("00C0000002"), "2233 9000"),
            ],
            end: End::Response("112233", 0x9000),
        },
        Case {
            // §5.3.3 command chaining: 600 bytes -> 255 + 255 + 90, CLA 90 90 80, Le last.
            name: "chaining 600 bytes",
            command: chain_600.clone(),
            config: ExchangeConfig::default(),
            script: vec![
                (format!("90E28000FF{}", a5(255)), "9000"),
                (format!("90E28000FF{}", a5(255)), "9000"),
                (format!("80E280005A{}00", a5(90)), "CAFE 9000"),
            ],
            end: End::Response("CAFE", 0x9000),
        },
        Case {
            // Chaining with a smaller configured piece size, then 61xx on the last piece.
            name: "chaining 250 bytes by 100, then 61xx",
            command: Command::new(0x84, 0xE2, 0x00, 0x01).with_data(vec![0xA5; 250]),
            config: ExchangeConfig::default().with_max_data(100),
            script: vec![
                (format!("94E2000164{}", a5(100)), "9000"),
                (format!("94E2000164{}", a5(100)), "9000"),
                (format!("84E2000132{}", a5(50)), "6101"),
                (s("00C0000001"), "00 9000"),
            ],
            end: End::Response("00", 0x9000),
        },
        Case {
            // A card that refuses chaining (6884) on the first piece ends the exchange.
            name: "chaining refused",
            command: chain_600.clone(),
            config: ExchangeConfig::default(),
            script: vec![(format!("90E28000FF{}", a5(255)), "6884")],
            end: End::Response("", 0x6884),
        },
        Case {
            // An intermediate piece may only be answered with a bare 9000.
            name: "chained piece answered with data",
            command: chain_600.clone(),
            config: ExchangeConfig::default(),
            script: vec![(format!("90E28000FF{}", a5(255)), "01 9000")],
            end: End::Error(Error::UnexpectedResponse(
                "chained command piece answered with data",
            )),
        },
        Case {
            // Extended APDUs allowed: one 3E/4E APDU instead of a chain (§5.1).
            name: "extended instead of chaining",
            command: chain_600.clone(),
            config: ExchangeConfig::extended(),
            script: vec![(format!("80E2800000 0258{}0100", a5(600)), "9000")],
            end: End::Response("", 0x9000),
        },
        Case {
            // Extended allowed but the piece limit set to 300: chained extended APDUs.
            name: "extended chaining by 300",
            command: chain_600.clone(),
            config: ExchangeConfig::extended().with_max_data(300),
            script: vec![
                (format!("90E2800000012C{}", a5(300)), "9000"),
                (format!("80E2800000012C{}0100", a5(300)), "9000"),
            ],
            end: End::Response("", 0x9000),
        },
        Case {
            // A command forced short is never sent extended even if the transport allows it.
            name: "forced short in extended config",
            command: chain_600.clone().with_form(LengthForm::Short),
            config: ExchangeConfig::extended(),
            script: vec![
                (format!("90E28000FF{}", a5(255)), "9000"),
                (format!("90E28000FF{}", a5(255)), "9000"),
                (format!("80E280005A{}00", a5(90)), "9000"),
            ],
            end: End::Response("", 0x9000),
        },
        Case {
            // Short transport: Le 1000 is sent as 00 (256), the rest arrives through 61xx.
            name: "large Le on short transport",
            command: Command::new(0x80, 0xCA, 0xBF, 0x21).with_le(1000),
            config: ExchangeConfig::default(),
            script: vec![(s("80CABF2100"), "01 6101"), (s("00C0000001"), "02 9000")],
            end: End::Response("0102", 0x9000),
        },
        Case {
            // Extended transport: Le 1000 goes out as a 2E Le of 03E8.
            name: "large Le on extended transport",
            command: Command::new(0x80, 0xCA, 0xBF, 0x21).with_le(1000),
            config: ExchangeConfig::extended(),
            script: vec![(s("80CABF210003E8"), "01 9000")],
            end: End::Response("01", 0x9000),
        },
        Case {
            // A final error status word is the response, with no data.
            name: "error status",
            command: Command::new(0x80, 0xF2, 0x80, 0x02)
                .with_data(h("4F00"))
                .with_le(256),
            config: ExchangeConfig::default(),
            script: vec![(s("80F28002024F0000"), "6982")],
            end: End::Response("", 0x6982),
        },
        Case {
            // GET STATUS "more data" warning (GPC 2.3 §11.4.3): a final response, data kept.
            name: "6310 warning",
            command: Command::new(0x80, 0xF2, 0x40, 0x02)
                .with_data(h("4F00"))
                .with_le(256),
            config: ExchangeConfig::default(),
            script: vec![(s("80F24002024F0000"), "E300 6310")],
            end: End::Response("E300", 0x6310),
        },
        Case {
            // A card that keeps answering 61xx hits the round limit.
            name: "too many rounds",
            command: get_cplc.clone(),
            config: ExchangeConfig::default().with_max_rounds(2),
            script: vec![
                (s("80CA9F7F00"), "6101"),
                (s("00C0000001"), "01 6101"),
                (s("00C0000001"), "01 6101"),
            ],
            end: End::Error(Error::TooManyRounds(2)),
        },
        Case {
            // 6Cxx rounds count too.
            name: "6Cxx loop",
            command: get_cplc.clone(),
            config: ExchangeConfig::default().with_max_rounds(1),
            script: vec![(s("80CA9F7F00"), "6C01"), (s("80CA9F7F01"), "6C01")],
            end: End::Error(Error::TooManyRounds(1)),
        },
        Case {
            // max_data 0 is clamped to one byte per APDU.
            name: "max_data clamped to 1",
            command: Command::new(0x00, 0xD6, 0x00, 0x00).with_data(h("0102")),
            config: ExchangeConfig::default().with_max_data(0),
            script: vec![(s("10D600000101"), "9000"), (s("00D600000102"), "9000")],
            end: End::Response("", 0x9000),
        },
    ];
    for case in &cases {
        run(case);
    }
}

#[test]
fn answers_out_of_turn() {
    let mut exchange = Exchange::new(
        Command::new(0x80, 0xCA, 0x00, 0x66).with_le(256),
        ExchangeConfig::default(),
    )
    .unwrap();
    // Nothing handed out yet.
    assert_eq!(
        exchange.handle_response(&[0x90, 0x00]),
        Err(Error::UnexpectedResponse("APDU not yet transmitted"))
    );
    assert_eq!(
        exchange.poll_transmit(),
        Some(&[0x80, 0xCA, 0x00, 0x66, 0x00][..])
    );
    // A one-byte answer is rejected and changes nothing (§5.1: SW1 SW2 are mandatory).
    assert_eq!(
        exchange.handle_response(&[0x90]),
        Err(Error::ResponseTooShort { len: 1 })
    );
    assert_eq!(exchange.poll_transmit(), None);
    assert_eq!(
        exchange.handle_response(&[0x66, 0x90, 0x00]),
        Ok(Some(Response::success(vec![0x66])))
    );
}

#[test]
fn rejected_commands() {
    for (name, command, error) in [
        (
            // ISO/IEC 7816-4 §5.4.1: CLA FF is invalid.
            "CLA FF",
            Command::new(0xFF, 0xCA, 0, 0),
            Error::InvalidClass,
        ),
        (
            // Found by the apdu_round_trip fuzz target: EF | 10 = FF.
            "CLA EF needing chaining",
            Command::new(0xEF, 0xE2, 0, 0).with_data(vec![0; 256]),
            Error::InvalidClass,
        ),
        (
            "Le 0",
            Command::new(0x00, 0xCA, 0, 0).with_le(0),
            Error::LeOutOfRange { le: 0, max: 65_536 },
        ),
        (
            "Le 65537",
            Command::new(0x00, 0xCA, 0, 0).with_le(65_537),
            Error::LeOutOfRange {
                le: 65_537,
                max: 65_536,
            },
        ),
    ] {
        assert_eq!(
            Exchange::new(command, ExchangeConfig::default()).err(),
            Some(error),
            "{name}"
        );
    }
}

#[test]
fn transceive_reports_card_errors() {
    #[derive(Debug, PartialEq)]
    enum TransportError {
        Gone,
        Codec(Error),
    }
    impl From<Error> for TransportError {
        fn from(error: Error) -> Self {
            TransportError::Codec(error)
        }
    }
    let command = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(vec![0xA0; 8]);
    assert_eq!(
        transceive(command.clone(), ExchangeConfig::default(), |_| Err(
            TransportError::Gone
        )),
        Err(TransportError::Gone)
    );
    assert_eq!(
        transceive(command, ExchangeConfig::default(), |_| Ok(vec![0x61])),
        Err(TransportError::Codec(Error::ResponseTooShort { len: 1 }))
    );
}

#[test]
fn long_chain_against_simulated_card() {
    // 70,000 bytes (more than one extended APDU) chained through a card that echoes the data
    // back through 61xx: checks the pieces reassemble and the answer concatenates.
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    for config in [
        ExchangeConfig::extended().with_max_rounds(1000),
        ExchangeConfig::default().with_max_rounds(1000),
    ] {
        let mut received = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let command = Command::new(0x00, 0xDA, 0x01, 0x02)
            .with_data(data.clone())
            .with_le(256);
        let response = transceive(command, config, |apdu| -> Result<Vec<u8>, Error> {
            let cmd = apdu_codec::parse_command(apdu)?;
            if cmd.ins() == 0xC0 {
                let n = pending.len().min(cmd.le().unwrap_or(256));
                let mut out: Vec<u8> = pending.drain(..n).collect();
                match pending.len() {
                    0 => out.extend([0x90, 0x00]),
                    left => out.extend([0x61, u8::try_from(left.min(256) % 256).unwrap()]),
                }
                return Ok(out);
            }
            received.extend_from_slice(cmd.data());
            if cmd.cla().is_chained() {
                return Ok(vec![0x90, 0x00]);
            }
            pending = received.iter().rev().take(1000).copied().collect();
            Ok(vec![0x61, 0x00])
        })
        .unwrap();
        assert_eq!(received, data);
        let expected: Vec<u8> = data.iter().rev().take(1000).copied().collect();
        assert_eq!(response, Response::success(expected));
    }
}
