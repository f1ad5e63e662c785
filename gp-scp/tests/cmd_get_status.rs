//! GET STATUS: command builder and parser, both response formats, paging with 6310 and the
//! card-side encoder that splits a long answer.
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::tlv::Tag;
use apdu_codec::{CommandView, StatusWord};
use gp_scp::cmd::get_status::{
    self, GetStatus, RegistryEntry, ResponseFormat, StatusSubset, encode_get_status_response,
    parse_get_status_page, parse_get_status_response,
};
use gp_scp::cmd::{Aid, CommandError, LifeCycle, Privileges, SecurityDomainLifeCycle};

fn aid(s: &str) -> Aid {
    s.parse().unwrap()
}

#[test]
fn command_builder_p1_p2() {
    for (subset, p1) in [
        (StatusSubset::IssuerSecurityDomain, 0x80),
        (StatusSubset::Applications, 0x40),
        (StatusSubset::LoadFiles, 0x20),
        (StatusSubset::LoadFilesAndModules, 0x10),
    ] {
        for (format, next, p2) in [
            (ResponseFormat::Legacy, false, 0x00),
            (ResponseFormat::Legacy, true, 0x01),
            (ResponseFormat::Tagged, false, 0x02),
            (ResponseFormat::Tagged, true, 0x03),
        ] {
            let mut cmd = GetStatus::new(subset).with_format(format);
            if next {
                cmd = cmd.next_occurrence();
            }
            let bytes = cmd.to_command().unwrap().to_vec().unwrap();
            assert_eq!(bytes, [0x80, 0xF2, p1, p2, 0x02, 0x4F, 0x00, 0x00]);
            let parsed =
                get_status::parse_get_status(&CommandView::try_from(&bytes[..]).unwrap()).unwrap();
            assert_eq!(parsed, cmd);
        }
    }
    let with_prefix =
        GetStatus::new(StatusSubset::Applications).with_aid_prefix(&[0xA0, 0x00, 0x00, 0x01, 0x51]);
    assert_eq!(
        with_prefix.to_command().unwrap().to_vec().unwrap(),
        hex::decode("80F24002074F05A00000015100").unwrap()
    );
    assert!(with_prefix.matches(&Aid::GP_ISD));
    assert!(!with_prefix.matches(&Aid::OP_ISD));
    assert!(matches!(
        GetStatus::new(StatusSubset::Applications)
            .with_aid_prefix(&[0; 17])
            .to_command(),
        Err(CommandError::FieldLength { .. })
    ));
    assert!(matches!(
        GetStatus::new(StatusSubset::Applications)
            .with_tag_list(&[0; 128])
            .to_command(),
        Err(CommandError::TooLong { .. })
    ));
}

#[test]
fn command_parser_errors() {
    for (bytes, expected) in [
        ("80F20002024F0000", 0x6A86),     // P1 00
        ("80F24004024F0000", 0x6A86),     // P2 reserved bit
        ("80F2C002024F0000", 0x6A86),     // P1 C0 (two subsets)
        ("80F2400200", 0x6700),           // no search criteria
        ("80F22002", 0x6700), // case 1 (pysim sends this; GPC 2.3 §11.4.2.3 requires 4F)
        ("80F24002025C0000", 0x6A80), // no 4F
        ("80F24002044F004F0000", 0x6A80), // 4F twice
        ("80F24002024E0000", 0x6A80), // unknown tag
        ("80F24002024F0500", 0x6A80), // truncated TLV
        ("80E44002024F0000", 0x6D00), // not GET STATUS
    ] {
        let b = hex::decode(bytes).unwrap();
        let err =
            get_status::parse_get_status(&CommandView::try_from(&b[..]).unwrap()).unwrap_err();
        assert_eq!(err.status_word().to_u16(), expected, "{bytes}: {err}");
    }
    let mut long = hex::decode("80F2400213 4F11".replace(' ', "")).unwrap();
    long.extend_from_slice(&[0xA0; 17]);
    let err = get_status::parse_get_status(&CommandView::try_from(&long[..]).unwrap()).unwrap_err();
    assert!(matches!(err, CommandError::FieldLength { len: 17, .. }));
}

fn sample_entries() -> Vec<RegistryEntry> {
    let mut isd = RegistryEntry::new(Aid::GP_ISD, 0x0F);
    isd.privileges = Some(Privileges::from_bytes([0x9A, 0xFE, 0x80]));
    let mut ssd = RegistryEntry::new(aid("A000000151535344"), 0x0F);
    ssd.privileges = Some(Privileges::from_bytes([0x80, 0, 0]));
    ssd.load_file = Some(aid("A0000001515350"));
    ssd.security_domain = Some(Aid::GP_ISD);
    let mut app = RegistryEntry::new(aid("A0000000041010AA"), 0x07);
    app.privileges = Some(Privileges::NONE);
    app.load_file = Some(aid("A00000000410"));
    app.security_domain = Some(aid("A000000151535344"));
    app.implicit_selection = vec![0x80, 0x41];
    app.other = vec![(Tag::new(0xEA), vec![0x80, 0x00])];
    vec![isd, ssd, app]
}

#[test]
fn tagged_response_round_trip() {
    let entries = sample_entries();
    let answer = encode_get_status_response(
        &entries,
        StatusSubset::Applications,
        ResponseFormat::Tagged,
        0,
        255,
    )
    .unwrap();
    assert_eq!(answer.status, StatusWord::SUCCESS);
    assert_eq!(answer.next, None);
    let parsed = parse_get_status_response(
        StatusSubset::Applications,
        ResponseFormat::Tagged,
        &answer.data,
    )
    .unwrap();
    assert_eq!(parsed, entries);
    assert_eq!(
        parsed[1]
            .life_cycle_state(StatusSubset::Applications)
            .unwrap(),
        LifeCycle::SecurityDomain(SecurityDomainLifeCycle::PERSONALIZED)
    );
    assert_eq!(
        parsed[2]
            .life_cycle_state(StatusSubset::Applications)
            .unwrap()
            .name(),
        "SELECTABLE"
    );
    assert_eq!(
        parsed[0]
            .life_cycle_state(StatusSubset::IssuerSecurityDomain)
            .unwrap()
            .name(),
        "SECURED"
    );
    assert!(parsed[0].life_cycle_state(StatusSubset::LoadFiles).is_err());
    // The example from apdu-codec's docs (GPC 2.3 §11.4.3.1 layout).
    let one = [
        0xE3, 0x10, 0x4F, 0x05, 0xA0, 0, 0, 0, 0x03, 0x9F, 0x70, 0x01, 0x07, 0xC5, 0x03, 0, 0, 0,
    ];
    let parsed =
        parse_get_status_response(StatusSubset::Applications, ResponseFormat::Tagged, &one)
            .unwrap();
    assert_eq!(parsed[0].aid.to_string(), "A000000003");
    assert_eq!(parsed[0].to_tagged(), one);
}

#[test]
fn legacy_response_round_trip() {
    // Legacy format (GPC 2.3 §11.4.3.2): len AID lcs privileges(1).
    let bytes =
        hex::decode("08A000000151000000 0F 9A 07A0000000620001 01 00".replace(' ', "")).unwrap();
    let parsed =
        parse_get_status_response(StatusSubset::Applications, ResponseFormat::Legacy, &bytes)
            .unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].aid, Aid::GP_ISD);
    assert_eq!(
        parsed[0].privileges,
        Some(Privileges::from_bytes([0x9A, 0, 0]))
    );
    let re: Vec<u8> = parsed
        .iter()
        .flat_map(|e| e.to_legacy(StatusSubset::Applications).unwrap())
        .collect();
    assert_eq!(re, bytes);
    // Load files and modules: ... count (len AID)*.
    let lfm = hex::decode(
        "07A0000000620001 01 00 02 08A000000062000101 08A000000062000102".replace(' ', ""),
    )
    .unwrap();
    let parsed = parse_get_status_response(
        StatusSubset::LoadFilesAndModules,
        ResponseFormat::Legacy,
        &lfm,
    )
    .unwrap();
    assert_eq!(parsed[0].modules.len(), 2);
    assert_eq!(
        parsed[0]
            .to_legacy(StatusSubset::LoadFilesAndModules)
            .unwrap(),
        lfm
    );
    for (hex_in, subset) in [
        ("08A0000001510000", StatusSubset::Applications),
        ("08A0000001510000000F", StatusSubset::Applications),
        (
            "07A0000000620001 01 00".replace(' ', "").leak(),
            StatusSubset::LoadFilesAndModules,
        ),
        (
            "07A0000000620001 01 00 01 08A0000000"
                .replace(' ', "")
                .leak(),
            StatusSubset::LoadFilesAndModules,
        ),
    ] {
        let b = hex::decode(hex_in).unwrap();
        assert!(
            matches!(
                parse_get_status_response(subset, ResponseFormat::Legacy, &b),
                Err(CommandError::Truncated { .. })
            ),
            "{hex_in}"
        );
    }
    let b = hex::decode("03A00000 0F 00".replace(' ', "")).unwrap();
    assert_eq!(
        parse_get_status_response(StatusSubset::Applications, ResponseFormat::Legacy, &b),
        Err(CommandError::AidLength(3))
    );
}

#[test]
fn tagged_response_errors() {
    for (hex_in, expected) in [
        (
            "E1024F00",
            CommandError::UnexpectedTag {
                context: "GET STATUS response",
                found: Tag::new(0xE1),
            },
        ),
        (
            "E3039F7001",
            CommandError::Tlv(apdu_codec::tlv::TlvError::TruncatedValue {
                expected: 1,
                available: 0,
            }),
        ),
        ("E3049F700107", CommandError::MissingTag(Tag::new(0x4F))),
        (
            "E3084F05A0000000039F",
            CommandError::Tlv(apdu_codec::tlv::TlvError::TruncatedTag),
        ),
        (
            "E3074F05A000000003",
            CommandError::MissingTag(Tag::new(0x9F70)),
        ),
    ] {
        let b = hex::decode(hex_in).unwrap();
        assert_eq!(
            parse_get_status_response(StatusSubset::Applications, ResponseFormat::Tagged, &b),
            Err(expected),
            "{hex_in}"
        );
    }
    let entry = |extra: &str| {
        hex::decode(format!(
            "E3{:02X}4F05A000000003{extra}",
            7 + extra.len() / 2
        ))
        .unwrap()
    };
    for (extra, expected) in [
        (
            "9F7000",
            CommandError::FieldLength {
                field: "life cycle state",
                len: 0,
                min: 1,
                max: 2,
            },
        ),
        (
            "9F7003070000",
            CommandError::FieldLength {
                field: "life cycle state",
                len: 3,
                min: 1,
                max: 2,
            },
        ),
        (
            "9F70010F9F70010F",
            CommandError::DuplicateTag(Tag::new(0x9F70)),
        ),
        (
            "9F70010FC5020000",
            CommandError::FieldLength {
                field: "privileges",
                len: 2,
                min: 1,
                max: 3,
            },
        ),
        ("9F70010FC403A00000", CommandError::AidLength(3)),
        ("9F70010F8403A00000", CommandError::AidLength(3)),
        ("9F70010FCC03A00000", CommandError::AidLength(3)),
        (
            "9F70010FCF028000",
            CommandError::FieldLength {
                field: "implicit selection parameter",
                len: 2,
                min: 1,
                max: 1,
            },
        ),
        (
            "9F70010FCE0101CE0101",
            CommandError::DuplicateTag(Tag::new(0xCE)),
        ),
    ] {
        let b = entry(extra);
        assert_eq!(
            parse_get_status_response(StatusSubset::Applications, ResponseFormat::Tagged, &b),
            Err(expected),
            "{extra}"
        );
    }
    // Two-byte 9F70 (seen on some cards): the first byte is the state.
    let b = entry("9F7002070F");
    assert_eq!(
        parse_get_status_response(StatusSubset::Applications, ResponseFormat::Tagged, &b).unwrap()
            [0]
        .life_cycle,
        0x07
    );
}

#[test]
fn paging_6310() {
    let entries = sample_entries();
    let subset = StatusSubset::Applications;
    for format in [ResponseFormat::Tagged, ResponseFormat::Legacy] {
        let sizes: Vec<usize> = entries
            .iter()
            .map(|e| e.encode(subset, format).unwrap().len())
            .collect();
        // Room for exactly the first entry: three pages.
        let max = sizes.iter().copied().max().unwrap();
        let mut start = 0;
        let mut collected = Vec::new();
        let mut pages = 0;
        loop {
            let answer = encode_get_status_response(&entries, subset, format, start, max).unwrap();
            let page = parse_get_status_page(subset, format, &answer.data, answer.status).unwrap();
            collected.extend(page.entries);
            pages += 1;
            match answer.next {
                Some(next) => {
                    assert!(page.more);
                    assert_eq!(answer.status, StatusWord::MORE_DATA);
                    start = next;
                }
                None => {
                    assert!(!page.more);
                    break;
                }
            }
        }
        assert!(pages >= 2);
        // Any two entries together exceed the largest one: one entry per page.
        assert_eq!(pages, entries.len(), "{format:?} sizes {sizes:?}");
        if format == ResponseFormat::Tagged {
            assert_eq!(collected, entries);
        } else {
            let aids: Vec<_> = collected.iter().map(|e| e.aid).collect();
            assert_eq!(aids, entries.iter().map(|e| e.aid).collect::<Vec<_>>());
        }
        // An entry larger than the limit, and nothing left.
        assert!(matches!(
            encode_get_status_response(&entries, subset, format, 0, sizes[0] - 1),
            Err(CommandError::TooLong { .. })
        ));
        assert_eq!(
            encode_get_status_response(&entries, subset, format, 3, 255),
            Err(CommandError::NotFound)
        );
        assert_eq!(
            encode_get_status_response(&[], subset, format, 0, 255)
                .unwrap_err()
                .status_word(),
            StatusWord::REFERENCED_DATA_NOT_FOUND
        );
    }
    assert_eq!(
        parse_get_status_page(
            subset,
            ResponseFormat::Tagged,
            &[],
            StatusWord::REFERENCED_DATA_NOT_FOUND
        ),
        Err(CommandError::Status(StatusWord::REFERENCED_DATA_NOT_FOUND))
    );
}

#[test]
fn tag_lists_and_card_answers() {
    assert_eq!(
        get_status::parse_tag_list(&[0x4F, 0x9F, 0x70, 0xC5]).unwrap(),
        [Tag::new(0x4F), Tag::new(0x9F70), Tag::new(0xC5)]
    );
    assert_eq!(
        get_status::parse_tag_list(&[0xBF, 0x81, 0x01]).unwrap(),
        [Tag::new(0xBF8101)]
    );
    assert_eq!(get_status::parse_tag_list(&[]).unwrap(), []);
    for bad in [&[0x9F][..], &[0x4F, 0xBF, 0x81], &[0xBF, 0x81, 0x81, 0x01]] {
        assert!(
            matches!(get_status::parse_tag_list(bad), Err(CommandError::Tlv(_))),
            "{bad:02X?}"
        );
    }
    let entries = sample_entries();
    // The pysim request with a well-formed tag list: only 4F, 9F70 and C5 come back.
    let request = GetStatus::new(StatusSubset::Applications)
        .with_aid_prefix(&[0xA0, 0x00])
        .with_tag_list(&[0x4F, 0x9F, 0x70, 0xC5]);
    let answer = get_status::answer_get_status(&request, &entries, 0, 255).unwrap();
    let parsed = parse_get_status_response(
        StatusSubset::Applications,
        ResponseFormat::Tagged,
        &answer.data,
    )
    .unwrap();
    assert_eq!(parsed.len(), 3);
    for (got, full) in parsed.iter().zip(&entries) {
        assert_eq!(got.aid, full.aid);
        assert_eq!(got.life_cycle, full.life_cycle);
        assert_eq!(got.privileges, full.privileges);
        assert_eq!((got.load_file, got.security_domain), (None, None));
        assert!(got.implicit_selection.is_empty() && got.other.is_empty());
    }
    // The search criterion filters; nothing matching answers 6A88.
    let only_ssd =
        GetStatus::new(StatusSubset::Applications).with_aid_prefix(&[0xA0, 0, 0, 0x01, 0x51, 0x53]);
    let answer = get_status::answer_get_status(&only_ssd, &entries, 0, 255).unwrap();
    let parsed = parse_get_status_response(
        StatusSubset::Applications,
        ResponseFormat::Tagged,
        &answer.data,
    )
    .unwrap();
    assert_eq!(parsed, [entries[1].clone()]);
    let none = GetStatus::new(StatusSubset::Applications).with_aid_prefix(&[0xB0]);
    assert_eq!(
        get_status::answer_get_status(&none, &entries, 0, 255),
        Err(CommandError::NotFound)
    );
    // Legacy format ignores the tag list; a malformed tag list in the tagged format is 6A80.
    let legacy = request.clone().with_format(ResponseFormat::Legacy);
    let legacy_answer = get_status::answer_get_status(&legacy, &entries, 0, 255);
    assert!(legacy_answer.is_ok());
    let legacy_answer = legacy_answer.unwrap();
    let parsed = parse_get_status_response(
        StatusSubset::Applications,
        ResponseFormat::Legacy,
        &legacy_answer.data,
    )
    .unwrap();
    assert_eq!(parsed.len(), 3);
    for (got, full) in parsed.iter().zip(&entries) {
        assert_eq!(got.aid, full.aid);
        assert_eq!(got.life_cycle, full.life_cycle);
    }
    let bad = GetStatus::new(StatusSubset::Applications).with_tag_list(&[0x9F]);
    assert_eq!(
        get_status::answer_get_status(&bad, &entries, 0, 255)
            .unwrap_err()
            .status_word()
            .to_u16(),
        0x6A80
    );
}
