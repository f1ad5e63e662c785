//! INSTALL (every variant, parameters) and LOAD (block splitting, reassembly).
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::tlv::Tag;
use apdu_codec::{Command, CommandView};
use gp_scp::cmd::install::{
    self, CombinedSequence, Install, InstallCommand, InstallParameters, SystemParameters,
};
use gp_scp::cmd::load::{self, DapBlock, LoadFile, LoadReassembler};
use gp_scp::cmd::{Aid, CommandError, Privileges};

fn aid(s: &str) -> Aid {
    s.parse().unwrap()
}

fn parse_install_bytes(bytes: &[u8]) -> Result<InstallCommand, CommandError> {
    install::parse_install(&CommandView::try_from(bytes).unwrap())
}

fn all_variants() -> Vec<Install> {
    let params = InstallParameters {
        application_specific: Some(vec![0x01, 0x02]),
        system: Some(SystemParameters {
            volatile_reserved: Some(0x0400),
            non_volatile_reserved: Some(0x0001_0000),
            implicit_selection: vec![0x80],
            ..SystemParameters::default()
        }),
        ..InstallParameters::default()
    }
    .to_vec();
    vec![
        Install::ForLoad {
            load_file: aid("A0000000620001"),
            security_domain: Some(Aid::GP_ISD),
            hash: vec![0xAA; 32],
            parameters: SystemParameters {
                non_volatile_code: Some(0x1000),
                ..Default::default()
            }
            .to_tlv(),
            token: vec![],
        },
        Install::ForLoad {
            load_file: aid("A0000000620001"),
            security_domain: None,
            hash: vec![],
            parameters: vec![],
            token: vec![],
        },
        Install::ForInstall {
            load_file: aid("A0000000620001"),
            module: aid("A000000062000101"),
            application: aid("A000000062000101"),
            privileges: Privileges::NONE,
            parameters: params.clone(),
            token: vec![],
            make_selectable: true,
        },
        Install::ForInstall {
            load_file: aid("A0000000620001"),
            module: aid("A000000062000101"),
            application: aid("A00000006200010101"),
            privileges: Privileges::from_bytes([0x80, 0x00, 0x00]),
            parameters: vec![0xC9, 0x00],
            token: vec![0x55; 200],
            make_selectable: false,
        },
        Install::MakeSelectable {
            application: aid("A00000006200010101"),
            privileges: Some(Privileges::NONE),
            parameters: vec![],
            token: vec![],
        },
        Install::MakeSelectable {
            application: aid("A00000006200010101"),
            privileges: None,
            parameters: vec![],
            token: vec![],
        },
        Install::Extradition {
            security_domain: aid("A000000151535344"),
            application: aid("A00000006200010101"),
            parameters: vec![],
            token: vec![],
        },
        Install::Personalization {
            application: aid("A00000006200010101"),
        },
        Install::RegistryUpdate {
            security_domain: None,
            application: Some(aid("A00000006200010101")),
            privileges: Some(Privileges::from_bytes([0x00, 0x02, 0x00])),
            parameters: vec![],
            token: vec![],
        },
        Install::RegistryUpdate {
            security_domain: Some(aid("A000000151535344")),
            application: None,
            privileges: None,
            parameters: vec![],
            token: vec![],
        },
    ]
}

#[test]
fn every_variant_round_trips() {
    for variant in all_variants() {
        for (more, sequence) in [
            (false, CombinedSequence::None),
            (true, CombinedSequence::Beginning),
            (false, CombinedSequence::End),
        ] {
            let cmd = InstallCommand {
                install: variant.clone(),
                more,
                sequence,
            };
            let bytes = cmd.to_command().unwrap().to_vec().unwrap();
            assert_eq!(&bytes[..2], &[0x80, 0xE6]);
            assert_eq!(bytes[2] & 0x7F, variant.p1());
            assert_eq!(parse_install_bytes(&bytes).unwrap(), cmd, "{variant:?}");
        }
    }
}

#[test]
fn install_byte_layouts() {
    // INSTALL [for load] A0000000620001 to the ISD, no hash, params, token (GPC 2.3 §11.5.2.3.1).
    let cmd = Install::ForLoad {
        load_file: aid("A0000000620001"),
        security_domain: Some(Aid::GP_ISD),
        hash: vec![],
        parameters: vec![],
        token: vec![],
    }
    .to_command()
    .unwrap();
    assert_eq!(
        cmd.to_vec().unwrap(),
        hex::decode("80E60200 14 07A0000000620001 08A000000151000000 000000 00".replace(' ', ""))
            .unwrap()
    );
    // INSTALL [for install and make selectable] with C9 00 (GPC 2.3 §11.5.2.3.2).
    let cmd = Install::ForInstall {
        load_file: aid("A0000000620001"),
        module: aid("A000000062000101"),
        application: aid("A000000062000101"),
        privileges: Privileges::NONE,
        parameters: vec![0xC9, 0x00],
        token: vec![],
        make_selectable: true,
    }
    .to_command()
    .unwrap();
    assert_eq!(
        cmd.to_vec().unwrap(),
        hex::decode("80E60C00 22 07A0000000620001 08A000000062000101 08A000000062000101 03000000 02C900 00 00".replace(' ', "")).unwrap()
    );
    // Long parameters use a BER length (81 xx).
    let big = Install::ForLoad {
        load_file: aid("A0000000620001"),
        security_domain: None,
        hash: vec![],
        parameters: vec![],
        token: vec![0x11; 0x90],
    }
    .data()
    .unwrap();
    assert_eq!(&big[8..13], &[0x00, 0x00, 0x00, 0x81, 0x90]);
}

#[test]
fn install_parser_errors() {
    let ok = Install::ForInstall {
        load_file: aid("A0000000620001"),
        module: aid("A000000062000101"),
        application: aid("A000000062000101"),
        privileges: Privileges::NONE,
        parameters: vec![0xC9, 0x00],
        token: vec![],
        make_selectable: false,
    }
    .to_command()
    .unwrap();
    let with = |p1: u8, p2: u8, data: &[u8]| {
        Command::new(0x80, 0xE6, p1, p2)
            .with_data(data.to_vec())
            .with_le(256)
            .to_vec()
            .unwrap()
    };
    let d = ok.data.clone();
    let table: Vec<(Vec<u8>, CommandError)> = vec![
        (
            with(0x01, 0, &d),
            CommandError::P1P2 {
                command: "INSTALL",
                p1: 0x01,
                p2: 0,
            },
        ),
        (
            with(0x06, 0, &d),
            CommandError::P1P2 {
                command: "INSTALL",
                p1: 0x06,
                p2: 0,
            },
        ),
        (
            with(0x04, 0x02, &d),
            CommandError::P1P2 {
                command: "INSTALL",
                p1: 0x04,
                p2: 0x02,
            },
        ),
        (
            // An undefined P1 is reported before the missing data field.
            Command::new(0x80, 0xE6, 0xFF, 0).to_vec().unwrap(),
            CommandError::P1P2 {
                command: "INSTALL",
                p1: 0xFF,
                p2: 0,
            },
        ),
        (
            Command::new(0x80, 0xE6, 0x04, 0).to_vec().unwrap(),
            CommandError::DataLength {
                command: "INSTALL",
                len: 0,
            },
        ),
        (
            with(0x04, 0, &d[..d.len() - 1]),
            CommandError::Truncated {
                field: "install token",
                needed: 1,
                available: 0,
            },
        ),
        (
            with(0x04, 0, &[&d[..], &[0x00]].concat()),
            CommandError::TrailingBytes {
                field: "INSTALL data",
                count: 1,
            },
        ),
        (
            with(0x04, 0, &[&[0x03, 0xA0, 0, 0][..], &d[8..]].concat()),
            CommandError::AidLength(3),
        ),
        // privileges of 2 bytes
        (
            with(
                0x04,
                0,
                &hex::decode(
                    "07A0000000620001 08A000000062000101 08A000000062000101 020000 02C900 00"
                        .replace(' ', ""),
                )
                .unwrap(),
            ),
            CommandError::FieldLength {
                field: "privileges",
                len: 2,
                min: 1,
                max: 3,
            },
        ),
        // install parameters without C9
        (
            with(
                0x04,
                0,
                &hex::decode(
                    "07A0000000620001 08A000000062000101 08A000000062000101 0100 02EF00 00"
                        .replace(' ', ""),
                )
                .unwrap(),
            ),
            CommandError::MissingTag(Tag::new(0xC9)),
        ),
        // malformed install parameters
        (
            with(
                0x04,
                0,
                &hex::decode(
                    "07A0000000620001 08A000000062000101 08A000000062000101 0100 02C905 00"
                        .replace(' ', ""),
                )
                .unwrap(),
            ),
            CommandError::Tlv(apdu_codec::tlv::TlvError::TruncatedValue {
                expected: 5,
                available: 0,
            }),
        ),
        // make selectable with a load file AID
        (
            with(
                0x08,
                0,
                &hex::decode("07A0000000620001 00 08A000000062000101 0100 00 00".replace(' ', ""))
                    .unwrap(),
            ),
            CommandError::FieldLength {
                field: "executable load file AID",
                len: 7,
                min: 0,
                max: 0,
            },
        ),
        // personalization with a token
        (
            with(
                0x20,
                0,
                &hex::decode("00 00 08A000000062000101 00 00 0155".replace(' ', "")).unwrap(),
            ),
            CommandError::FieldLength {
                field: "token",
                len: 1,
                min: 0,
                max: 0,
            },
        ),
        // for load with an 80 length byte (indefinite / legacy)
        (
            with(
                0x02,
                0,
                &hex::decode("07A0000000620001 00 80 00 00".replace(' ', "")).unwrap(),
            ),
            CommandError::Value {
                field: "load file data block hash",
                value: 0x80,
            },
        ),
        // extradition without its security domain
        (
            with(
                0x10,
                0,
                &hex::decode("00 00 08A000000062000101 00 00 00".replace(' ', "")).unwrap(),
            ),
            CommandError::AidLength(0),
        ),
        // registry update with a module AID
        (
            with(
                0x40,
                0,
                &hex::decode("00 05A000000001 00 00 00 00".replace(' ', "")).unwrap(),
            ),
            CommandError::FieldLength {
                field: "executable module AID",
                len: 5,
                min: 0,
                max: 0,
            },
        ),
        (
            Command::new(0x80, 0xE8, 0x04, 0)
                .with_data(d.clone())
                .to_vec()
                .unwrap(),
            CommandError::Instruction {
                expected: 0xE6,
                found: 0xE8,
            },
        ),
    ];
    for (bytes, expected) in table {
        assert_eq!(parse_install_bytes(&bytes), Err(expected), "{bytes:02X?}");
    }
}

#[test]
fn parameters_round_trip_and_errors() {
    let system = SystemParameters {
        non_volatile_code: Some(0x2000),
        volatile_memory: Some(0x0100),
        non_volatile_data: Some(0x0001_2000),
        global_service: Some(vec![0x01]),
        volatile_reserved: Some(0x10),
        non_volatile_reserved: Some(0x20),
        ts102226: Some(vec![0x01, 0x00]),
        lfdb_format: Some(vec![0x01]),
        implicit_selection: vec![0x80, 0x41],
        lfdb_parameters: Some(vec![0x02]),
        other: vec![(Tag::new(0x9F01), vec![0x01])],
    };
    let params = InstallParameters {
        application_specific: Some(vec![0xAB; 3]),
        system: Some(system.clone()),
        ts102226: Some(vec![0x80, 0x00]),
        other: vec![(Tag::new(0xB6), vec![])],
    };
    let bytes = params.to_vec();
    assert_eq!(install::parse_install_parameters(&bytes).unwrap(), params);
    let ef = system.to_tlv();
    assert_eq!(&ef[..1], &[0xEF]);
    // Memory quotas are 2 bytes up to FFFF, else 4 (GPC 2.3 Table 11-49).
    assert!(ef.windows(4).any(|w| w == [0xD7, 0x02, 0x00, 0x10]));
    assert!(
        ef.windows(6)
            .any(|w| w == [0xC8, 0x04, 0x00, 0x01, 0x20, 0x00])
    );
    assert_eq!(
        install::InstallParameters::application(&[]).to_vec(),
        [0xC9, 0x00]
    );
    for (hex_in, expected) in [
        (
            "C603001000",
            CommandError::FieldLength {
                field: "C6",
                len: 3,
                min: 2,
                max: 4,
            },
        ),
        (
            "D70101",
            CommandError::FieldLength {
                field: "D7",
                len: 1,
                min: 2,
                max: 4,
            },
        ),
        (
            "CF028041",
            CommandError::FieldLength {
                field: "implicit selection parameter",
                len: 2,
                min: 1,
                max: 1,
            },
        ),
        ("CB00CB00", CommandError::DuplicateTag(Tag::new(0xCB))),
    ] {
        let b = hex::decode(hex_in).unwrap();
        assert_eq!(
            install::parse_system_parameters(&b),
            Err(expected),
            "{hex_in}"
        );
    }
    assert_eq!(
        install::parse_install_parameters(&[0xC9, 0x00, 0xC9, 0x00]),
        Err(CommandError::DuplicateTag(Tag::new(0xC9)))
    );
    assert!(matches!(
        install::parse_install_parameters(&[0xEF, 0x02, 0xC6, 0x01]),
        Err(CommandError::Tlv(_))
    ));
}

#[test]
fn load_block_splitting() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let file = LoadFile::new(&data);
    let bytes = file.to_vec();
    assert_eq!(&bytes[..4], &[0xC4, 0x82, 0x03, 0xE8]); // C4 length prefix on the first block
    for block_size in [16usize, 200, 239, 255, 1004, 5000] {
        let commands = file.to_commands(block_size).unwrap();
        assert_eq!(commands.len(), bytes.len().div_ceil(block_size));
        let mut joined = Vec::new();
        for (i, cmd) in commands.iter().enumerate() {
            let last = i + 1 == commands.len();
            assert_eq!(
                cmd.header(),
                [
                    0x80,
                    0xE8,
                    if last { 0x80 } else { 0x00 },
                    u8::try_from(i).unwrap()
                ]
            );
            assert!(cmd.data.len() <= block_size);
            if !last {
                // Every block but the last is full.
                assert_eq!(cmd.data.len(), block_size, "block {i}");
            }
            joined.extend_from_slice(&cmd.data);
        }
        assert_eq!(joined, bytes);
    }
    assert_eq!(
        LoadFile::new(&[0; 300]).to_commands(1).unwrap_err(),
        CommandError::TooManyBlocks(304)
    );
    assert!(matches!(
        file.to_commands(0),
        Err(CommandError::FieldLength { .. })
    ));
    // DAP blocks precede the data block (GPC 2.3 §11.6.2.3).
    let with_dap = LoadFile {
        dap_blocks: vec![DapBlock {
            security_domain: Aid::GP_ISD,
            signature: vec![0x5A; 8],
        }],
        ciphered: false,
        data: vec![1, 2, 3],
    };
    assert_eq!(
        with_dap.to_vec(),
        hex::decode("E214 4F08A000000151000000 C3085A5A5A5A5A5A5A5A C403010203".replace(' ', ""))
            .unwrap()
    );
    assert_eq!(load::parse_load_file(&with_dap.to_vec()).unwrap(), with_dap);
    let ciphered = LoadFile {
        ciphered: true,
        ..LoadFile::new(&[9])
    };
    assert_eq!(ciphered.to_vec(), [0xD4, 0x01, 0x09]);
    assert_eq!(load::parse_load_file(&ciphered.to_vec()).unwrap(), ciphered);
}

fn views(commands: &[Command]) -> Vec<Vec<u8>> {
    commands.iter().map(|c| c.to_vec().unwrap()).collect()
}

#[test]
fn load_reassembly() {
    let file = LoadFile::new(&[0x42; 700]);
    let encoded = views(&file.to_commands(200).unwrap());
    let mut card = LoadReassembler::with_default_limit();
    for (i, bytes) in encoded.iter().enumerate() {
        let out = card
            .push(&CommandView::try_from(&bytes[..]).unwrap())
            .unwrap();
        if i + 1 < encoded.len() {
            assert_eq!(out, None);
        } else {
            assert_eq!(out, Some(file.clone()));
        }
    }
    assert_eq!(card.received(), 704);
    // After the last block: refused.
    assert_eq!(
        card.push(&CommandView::try_from(&encoded[0][..]).unwrap()),
        Err(CommandError::Sequence("LOAD"))
    );

    // Out of order: block 1 first, then a repeated block 0; a refused block changes nothing.
    let mut card = LoadReassembler::with_default_limit();
    let err = card
        .push(&CommandView::try_from(&encoded[1][..]).unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::BlockNumber {
            expected: 0,
            found: 1
        }
    );
    assert_eq!(err.status_word().to_u16(), 0x6A86);
    card.push(&CommandView::try_from(&encoded[0][..]).unwrap())
        .unwrap();
    assert_eq!(
        card.push(&CommandView::try_from(&encoded[0][..]).unwrap()),
        Err(CommandError::BlockNumber {
            expected: 1,
            found: 0
        })
    );
    assert_eq!(card.received(), 200);
    for bytes in &encoded[1..] {
        card.push(&CommandView::try_from(&bytes[..]).unwrap())
            .unwrap();
    }

    // Limit.
    let mut small = LoadReassembler::new(300);
    small
        .push(&CommandView::try_from(&encoded[0][..]).unwrap())
        .unwrap();
    let err = small
        .push(&CommandView::try_from(&encoded[1][..]).unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::TooLong {
            field: "load file",
            len: 400,
            max: 300
        }
    );
    assert_eq!(err.status_word().to_u16(), 0x6A84);

    // Bad P1, no data, wrong instruction.
    for (bytes, expected) in [
        (hex::decode("80E8400001C4").unwrap(), 0x6A86),
        (hex::decode("80E88000").unwrap(), 0x6700),
        (hex::decode("80E6800001C4").unwrap(), 0x6D00),
    ] {
        let err = LoadReassembler::with_default_limit()
            .push(&CommandView::try_from(&bytes[..]).unwrap())
            .unwrap_err();
        assert_eq!(err.status_word().to_u16(), expected, "{bytes:02X?}");
    }
}

#[test]
fn load_file_errors() {
    for (hex_in, expected) in [
        ("", CommandError::MissingTag(Tag::new(0xC4))),
        ("E200", CommandError::MissingTag(Tag::new(0x4F))),
        (
            "E2074F05A000000001",
            CommandError::MissingTag(Tag::new(0xC3)),
        ),
        (
            "E20B4F05A000000001C3000100",
            CommandError::UnexpectedTag {
                context: "DAP block",
                found: Tag::new(0x01),
            },
        ),
        ("E2074F03A00000C300C400", CommandError::AidLength(3)),
        (
            "C402AA",
            CommandError::Tlv(apdu_codec::tlv::TlvError::TruncatedValue {
                expected: 2,
                available: 1,
            }),
        ),
        (
            "C401AA00",
            CommandError::TrailingBytes {
                field: "load file data block",
                count: 1,
            },
        ),
        (
            "C301AA",
            CommandError::UnexpectedTag {
                context: "load file",
                found: Tag::new(0xC3),
            },
        ),
    ] {
        let b = hex::decode(hex_in).unwrap();
        assert_eq!(load::parse_load_file(&b), Err(expected), "{hex_in}");
    }
    // The reassembler reports the same error on the last block.
    let bytes = hex::decode("80E8800003C401AA").unwrap();
    let mut card = LoadReassembler::with_default_limit();
    card.push(&CommandView::try_from(&bytes[..]).unwrap())
        .unwrap();
    let bytes = hex::decode("80E8800002C401").unwrap();
    let mut card = LoadReassembler::with_default_limit();
    assert!(matches!(
        card.push(&CommandView::try_from(&bytes[..]).unwrap()),
        Err(CommandError::Tlv(_))
    ));
}
