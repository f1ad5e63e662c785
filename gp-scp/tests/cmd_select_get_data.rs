//! SELECT and FCI; GET DATA and its objects (CPLC, card data, key information, certificate
//! store, sequence counter).
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::CommandView;
use apdu_codec::tlv::Tag;
use gp_scp::cmd::get_data::{
    self, Cplc, KeyComponent, KeyInformation, KeyReference, KeyUsageAccess,
};
use gp_scp::cmd::select::{self, Fci, Occurrence, SelectResponse};
use gp_scp::cmd::{Aid, CommandError};

fn view(bytes: &[u8]) -> CommandView<'_> {
    CommandView::try_from(bytes).unwrap()
}

fn sw(r: Result<impl core::fmt::Debug, CommandError>) -> u16 {
    r.unwrap_err().status_word().to_u16()
}

#[test]
fn select_builders() {
    assert_eq!(
        select::select(&Aid::GP_ISD).to_vec().unwrap(),
        hex::decode("00A4040008A00000015100000000").unwrap()
    );
    assert_eq!(
        select::select_isd().to_vec().unwrap(),
        [0x00, 0xA4, 0x04, 0x00, 0x00]
    );
    assert_eq!(
        select::select_partial(&[0xA0, 0x00], Occurrence::Next)
            .unwrap()
            .to_vec()
            .unwrap(),
        [0x00, 0xA4, 0x04, 0x02, 0x02, 0xA0, 0x00, 0x00]
    );
    assert!(matches!(
        select::select_partial(&[0; 17], Occurrence::First),
        Err(CommandError::FieldLength { len: 17, .. })
    ));
}

#[test]
fn select_parser() {
    let bytes = hex::decode("00A4040008A00000015100000000").unwrap();
    let s = select::parse_select(&view(&bytes)).unwrap();
    assert_eq!(s.name, Aid::GP_ISD.as_bytes());
    assert_eq!(s.occurrence, Occurrence::First);
    assert_eq!(s.to_command().unwrap().to_vec().unwrap(), bytes);
    let empty = select::parse_select(&view(&[0x00, 0xA4, 0x04, 0x00, 0x00])).unwrap();
    assert!(empty.name.is_empty());
    assert_eq!(empty.response, SelectResponse::Fci);
    // ISO/IEC 7816-4 §11.1.1 response options (P2 b4-b3) on either occurrence.
    for (p2, occurrence, response) in [
        (0x04, Occurrence::First, SelectResponse::Fcp),
        (0x0C, Occurrence::First, SelectResponse::NoData),
        (0x06, Occurrence::Next, SelectResponse::Fcp),
        (0x0E, Occurrence::Next, SelectResponse::NoData),
    ] {
        let bytes = [0x00, 0xA4, 0x04, p2, 0x05, 0xA0, 0x00, 0x00, 0x01, 0x51];
        let s = select::parse_select(&view(&bytes)).unwrap();
        assert_eq!(
            (s.occurrence, s.response),
            (occurrence, response),
            "{p2:02X}"
        );
        let rebuilt = s.to_command().unwrap().to_vec().unwrap();
        assert_eq!(select::parse_select(&view(&rebuilt)).unwrap(), s);
    }
    // Error table: (command, status word).
    let mut long = hex::decode("00A4040011").unwrap();
    long.extend_from_slice(&[0xA0; 17]);
    for (bytes, expected) in [
        (hex::decode("00A4000C023F00").unwrap(), 0x6A86), // select by FID
        (hex::decode("00A4040102A000").unwrap(), 0x6A86), // P2 last occurrence
        (hex::decode("00A4040802A000").unwrap(), 0x6A86), // P2 FMD
        (hex::decode("00A4040A02A000").unwrap(), 0x6A86), // P2 FMD, next
        (hex::decode("00B0000000").unwrap(), 0x6D00),     // not SELECT
        (long, 0x6700),
    ] {
        assert_eq!(
            sw(select::parse_select(&view(&bytes))),
            expected,
            "{bytes:02X?}"
        );
    }
}

#[test]
fn card_recognition_template_value_is_the_73_value() {
    // GPC 2.3 §H.2 / §H.3: the FCI's security domain management data is the value of the
    // card recognition data template `73`.
    let crd = get_data::CardRecognitionData {
        gp_version: Some(vec![2, 3]),
        card_id_scheme: Some(vec![]),
        secure_channels: vec![get_data::ScpInfo { scp: 2, i: 0x55 }],
        ..Default::default()
    };
    let value = crd.to_template_value();
    let template = crd.to_template();
    assert_eq!(template[0], 0x73);
    assert_eq!(usize::from(template[1]), value.len());
    assert_eq!(&template[2..], &value[..]);
    let mut fci = Fci::new(Aid::GP_ISD);
    fci.management_data = Some(value);
    assert_eq!(
        select::parse_fci(&fci.to_vec())
            .unwrap()
            .management()
            .unwrap(),
        crd
    );
}

#[test]
fn fci_round_trip_and_errors() {
    let fci = Fci {
        aid: Aid::GP_ISD,
        management_data: Some(
            get_data::CardRecognitionData {
                gp_version: Some(vec![2, 3, 1]),
                secure_channels: vec![get_data::ScpInfo { scp: 3, i: 0x70 }],
                ..Default::default()
            }
            .to_template()[2..]
                .to_vec(),
        ),
        production_life_cycle: Some(vec![0x01, 0x02]),
        max_command_data: Some(0xFF),
    };
    let bytes = fci.to_vec();
    assert_eq!(bytes[0], 0x6F);
    let parsed = select::parse_fci(&bytes).unwrap();
    assert_eq!(parsed, fci);
    let m = parsed.management().unwrap();
    assert_eq!(m.gp_version.as_deref(), Some(&[2, 3, 1][..]));
    assert_eq!(
        m.secure_channels[0].option_names()[1],
        "pseudo-random card challenge"
    );
    // Minimal FCI as many cards send it: 6F 10 84 08 <ISD AID> A5 04 9F 65 01 FF.
    let minimal = hex::decode("6F108408A000000151000000A5049F6501FF").unwrap();
    let parsed = select::parse_fci(&minimal).unwrap();
    assert_eq!(parsed.aid, Aid::GP_ISD);
    assert_eq!(parsed.max_command_data, Some(0xFF));
    assert_eq!(
        parsed.management(),
        Err(CommandError::MissingTag(Tag::new(0x73)))
    );
    for (hex_in, expected) in [
        ("6F00", CommandError::MissingTag(Tag::new(0x84))),
        (
            "6E00",
            CommandError::UnexpectedTag {
                context: "FCI",
                found: Tag::new(0x6E),
            },
        ),
        ("6F038401A0", CommandError::AidLength(1)),
        (
            "6F138408A000000151000000A5079F65009F650101",
            CommandError::FieldLength {
                field: "maximum command data length",
                len: 0,
                min: 1,
                max: 4,
            },
        ),
        (
            "6F148408A0000001510000008408A000000151000000",
            CommandError::DuplicateTag(Tag::new(0x84)),
        ),
    ] {
        let bytes = hex::decode(hex_in).unwrap();
        assert_eq!(select::parse_fci(&bytes), Err(expected), "{hex_in}");
    }
    assert!(matches!(
        select::parse_fci(&[0x6F, 0x05, 0x84]),
        Err(CommandError::Tlv(_))
    ));
}

#[test]
fn get_data_builders_and_parser() {
    for (tag, bytes) in [
        (get_data::TAG_CPLC, "80CA9F7F00"),
        (get_data::TAG_CARD_DATA, "80CA006600"),
        (get_data::TAG_KDD, "80CA00CF00"),
        (get_data::TAG_SEQUENCE_COUNTER, "80CA00C100"),
        (get_data::TAG_KEY_INFORMATION, "80CA00E000"),
        (get_data::TAG_IIN, "80CA004200"),
        (get_data::TAG_CIN, "80CA004500"),
        (get_data::TAG_CERTIFICATE_STORE, "80CABF2100"),
    ] {
        let encoded = get_data::get_data(tag).to_vec().unwrap();
        assert_eq!(encoded, hex::decode(bytes).unwrap());
        let parsed = get_data::parse_get_data(&view(&encoded)).unwrap();
        assert_eq!(parsed.tag, tag);
        assert_eq!(parsed.key, None);
    }
    // SCP11 certificate store of key 10/01: BF21 with A6 { 83 02 10 01 } (Amendment F GET DATA; as yubikit sends it).
    let key = KeyReference {
        id: 0x10,
        version: 0x01,
    };
    let cmd = get_data::get_certificate_store(Some(key)).to_vec().unwrap();
    assert_eq!(cmd, hex::decode("80CABF2106A6048302100100").unwrap());
    assert_eq!(
        get_data::parse_get_data(&view(&cmd)).unwrap().key,
        Some(key)
    );
    for (bytes, expected) in [
        ("80CA000000", 0x6A86),
        ("80CB9F7F00", 0x6D00),
        ("80CA9F7F0101", 0x6700),
        ("80CABF2104A6028300", 0x6A80),
        ("80CABF2102A600", 0x6A80),
        ("80CABF2104A5028300", 0x6A80),
        ("80CABF2104A6028400", 0x6A80),
        ("80CABF210AA608830210018302100100", 0x6A80),
        ("80CABF2102A60500", 0x6A80),
    ] {
        let b = hex::decode(bytes).unwrap();
        assert_eq!(sw(get_data::parse_get_data(&view(&b))), expected, "{bytes}");
    }
}

fn sample_cplc() -> Cplc {
    Cplc {
        ic_fabricator: 0x4790,
        ic_type: 0x5167,
        os_id: 0x4791,
        os_release_date: 0x2050,
        os_release_level: 0x3800,
        ic_fabrication_date: 0x1203,
        ic_serial_number: 0x1234_5678,
        ic_batch_id: 0x9ABC,
        ic_module_fabricator: 0x4812,
        ic_module_packaging_date: 0x1204,
        icc_manufacturer: 0x0000,
        ic_embedding_date: 0x1205,
        pre_personalizer: 0x1111,
        pre_personalization_date: 0x2222,
        pre_personalization_equipment: 0x3333_4444,
        personalizer: 0x5555,
        personalization_date: 0x6666,
        personalization_equipment: 0x7777_8888,
    }
}

#[test]
fn cplc_layout() {
    let cplc = sample_cplc();
    let bytes = cplc.to_bytes();
    // The 42-byte layout (Visa GP Card Implementation Requirements, as GlobalPlatformPro
    // CPLC.java reads it): offsets of a few fields.
    assert_eq!(&bytes[0..2], &[0x47, 0x90]);
    assert_eq!(&bytes[12..16], &[0x12, 0x34, 0x56, 0x78]);
    assert_eq!(&bytes[30..34], &[0x33, 0x33, 0x44, 0x44]);
    assert_eq!(&bytes[38..42], &[0x77, 0x77, 0x88, 0x88]);
    let tlv = cplc.to_tlv();
    assert_eq!(&tlv[..3], &[0x9F, 0x7F, 0x2A]);
    assert_eq!(get_data::parse_cplc(&tlv).unwrap(), cplc);
    assert_eq!(get_data::parse_cplc(&bytes).unwrap(), cplc);
    let short = CommandError::FieldLength {
        field: "CPLC",
        len: 41,
        min: 42,
        max: 42,
    };
    assert_eq!(Cplc::from_bytes(&bytes[..41]), Err(short));
    let mut short_tlv = vec![0x9F, 0x7F, 41];
    short_tlv.extend_from_slice(&bytes[..41]);
    assert_eq!(get_data::parse_cplc(&short_tlv), Err(short));
    let mut wrong = tlv.clone();
    wrong[1] = 0x7E;
    assert!(matches!(
        get_data::parse_cplc(&wrong),
        Err(CommandError::UnexpectedTag { .. })
    ));
    assert_eq!(get_data::parse_cplc_date(0x2050), Some((2, 50)));
    // Source: andreas-mausch/docker-javacard docs/globalplatformpro.md (`gp --info` on a
    // JCOP card): "ICFabricationDate=2345 (2012-12-10)", "Invalid CPLC date: 9738".
    assert_eq!(get_data::parse_cplc_date(0x2345), Some((2, 345)));
    assert_eq!(get_data::parse_cplc_date(0x9738), None);
    assert_eq!(get_data::parse_cplc_date(0x1366), Some((1, 366)));
    assert_eq!(get_data::parse_cplc_date(0x0000), None);
    assert_eq!(get_data::parse_cplc_date(0x1367), None);
    assert_eq!(get_data::parse_cplc_date(0x1A01), None);
}

#[test]
fn card_recognition_data_errors() {
    let crd = get_data::CardRecognitionData {
        gp_version: Some(vec![2, 3]),
        card_id_scheme: Some(vec![]),
        secure_channels: vec![
            get_data::ScpInfo { scp: 2, i: 0x55 },
            get_data::ScpInfo { scp: 3, i: 0x70 },
        ],
        card_configuration: Some(vec![0x06, 0x01, 0x00]),
        chip_details: Some(vec![0x06, 0x01, 0x01]),
        trust_point_info: Some(vec![]),
        certificate_info: Some(vec![1]),
    };
    let bytes = crd.to_card_data();
    assert_eq!(get_data::parse_card_recognition_data(&bytes).unwrap(), crd);
    // A bare 73 template parses too.
    assert_eq!(
        get_data::parse_card_recognition_data(&crd.to_template()).unwrap(),
        crd
    );
    let gp = |arc: u8, rest: &[u8]| {
        let mut v = vec![0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, arc];
        v.extend_from_slice(rest);
        v
    };
    let tlv = |tag: &[u8], value: &[u8]| {
        let mut v = tag.to_vec();
        v.push(u8::try_from(value.len()).unwrap());
        v.extend_from_slice(value);
        v
    };
    let card_data = |children: Vec<u8>| tlv(&[0x66], &tlv(&[0x73], &children));
    let cases = [
        (vec![0x66, 0x00], CommandError::MissingTag(Tag::new(0x73))),
        (
            vec![0x67, 0x00],
            CommandError::UnexpectedTag {
                context: "card data",
                found: Tag::new(0x67),
            },
        ),
        (
            card_data(tlv(&[0x06], &[0x2B, 0x06])),
            CommandError::Value {
                field: "card recognition OID",
                value: 0x2B,
            },
        ),
        (
            card_data(tlv(&[0x64], &tlv(&[0x06], &gp(4, &[])))),
            CommandError::FieldLength {
                field: "secure channel protocol OID",
                len: 0,
                min: 2,
                max: 2,
            },
        ),
        (
            card_data(tlv(&[0x64], &tlv(&[0x06], &gp(4, &[0x02])))),
            CommandError::FieldLength {
                field: "secure channel protocol OID",
                len: 1,
                min: 2,
                max: 2,
            },
        ),
        (
            card_data(tlv(&[0x64], &tlv(&[0x04], &gp(4, &[0x02, 0x15])))),
            CommandError::UnexpectedTag {
                context: "secure channel protocol OID",
                found: Tag::new(0x04),
            },
        ),
        (
            card_data(tlv(&[0x64], &tlv(&[0x06], &gp(5, &[0x02, 0x15])))),
            CommandError::Value {
                field: "secure channel protocol OID",
                value: 0x2A,
            },
        ),
        (
            card_data(tlv(&[0x60], &tlv(&[0x06], &[0x2A, 0x86]))),
            CommandError::Value {
                field: "card management version OID",
                value: 0x2A,
            },
        ),
        (
            card_data(tlv(&[0x63], &[])),
            CommandError::Tlv(apdu_codec::tlv::TlvError::Empty),
        ),
        (
            card_data(tlv(&[0x69], &[])),
            CommandError::UnexpectedTag {
                context: "card recognition data",
                found: Tag::new(0x69),
            },
        ),
        (
            card_data([tlv(&[0x65], &[]), tlv(&[0x65], &[])].concat()),
            CommandError::DuplicateTag(Tag::new(0x65)),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            get_data::parse_card_recognition_data(&bytes),
            Err(expected),
            "{bytes:02X?}"
        );
    }
}

#[test]
fn key_information_formats() {
    let keys = vec![
        KeyInformation::basic(1, 0x30, 0x88, 16),
        KeyInformation::basic(2, 0x30, 0x88, 16),
        KeyInformation::basic(3, 0x30, 0x88, 16),
        // SCP11b: EC public key with two components (B0 key, F0 parameters).
        KeyInformation {
            id: 0x13,
            version: 0x01,
            components: vec![
                KeyComponent {
                    key_type: 0xB0,
                    length: 0x41,
                },
                KeyComponent {
                    key_type: 0xF0,
                    length: 0x01,
                },
            ],
            extended: None,
        },
        // Extended format (GPC 2.3 §11.3.3.1): FF-prefixed types, 2-byte lengths, usage, access.
        KeyInformation {
            id: 0x20,
            version: 0x02,
            components: vec![KeyComponent {
                key_type: 0xA1,
                length: 0x0100,
            }],
            extended: Some(KeyUsageAccess {
                usage: vec![0x82],
                access: vec![],
            }),
        },
    ];
    let with = get_data::encode_key_information(&keys, true).unwrap();
    let without = get_data::encode_key_information(&keys, false).unwrap();
    assert_eq!(&with[..2], &[0xE0, u8::try_from(without.len()).unwrap()]);
    assert_eq!(&with[2..], &without[..]);
    assert_eq!(&without[..6], &[0xC0, 0x04, 0x01, 0x30, 0x88, 0x10]);
    assert!(without.ends_with(&[
        0xC0, 0x09, 0x20, 0x02, 0xFF, 0xA1, 0x01, 0x00, 0x01, 0x82, 0x00
    ]));
    assert_eq!(get_data::parse_key_information(&with).unwrap(), keys);
    assert_eq!(get_data::parse_key_information(&without).unwrap(), keys);
    assert_eq!(get_data::parse_key_information(&[]).unwrap(), []);
    // A fresh SSD answers an empty C0 (GlobalPlatformPro GPKeyInfo.parseTemplate skips it).
    assert_eq!(
        get_data::parse_key_information(&[0xE0, 0x02, 0xC0, 0x00]).unwrap(),
        []
    );
    for (hex_in, expected) in [
        (
            "C0020101",
            Some(CommandError::Truncated {
                field: "key type",
                needed: 2,
                available: 0,
            }),
        ),
        (
            "C003010188",
            Some(CommandError::Truncated {
                field: "key length",
                needed: 1,
                available: 0,
            }),
        ),
        (
            "C0050101FF8800",
            Some(CommandError::Truncated {
                field: "extended key length",
                needed: 2,
                available: 1,
            }),
        ),
        (
            "C0070101FF88001001",
            Some(CommandError::Truncated {
                field: "key usage",
                needed: 1,
                available: 0,
            }),
        ),
        (
            "C0060101FF880010",
            Some(CommandError::Truncated {
                field: "key usage",
                needed: 1,
                available: 0,
            }),
        ),
        (
            "C0070101FF88001000",
            Some(CommandError::Truncated {
                field: "key access",
                needed: 1,
                available: 0,
            }),
        ),
        (
            "C0090101FF880010000000",
            Some(CommandError::TrailingBytes {
                field: "extended key information",
                count: 1,
            }),
        ),
        (
            "C101",
            Some(CommandError::Tlv(
                apdu_codec::tlv::TlvError::TruncatedValue {
                    expected: 1,
                    available: 0,
                },
            )),
        ),
        (
            "C100",
            Some(CommandError::UnexpectedTag {
                context: "key information template",
                found: Tag::new(0xC1),
            }),
        ),
        (
            "E002C100",
            Some(CommandError::UnexpectedTag {
                context: "key information template",
                found: Tag::new(0xC1),
            }),
        ),
        (
            "C0",
            Some(CommandError::Tlv(
                apdu_codec::tlv::TlvError::TruncatedLength,
            )),
        ),
    ] {
        let b = hex::decode(hex_in).unwrap();
        assert_eq!(
            get_data::parse_key_information(&b).err(),
            expected,
            "{hex_in}"
        );
    }
    // Encoder errors.
    let bad_len = KeyInformation {
        id: 1,
        version: 1,
        components: vec![KeyComponent {
            key_type: 0xA1,
            length: 256,
        }],
        extended: None,
    };
    assert!(matches!(
        get_data::encode_key_information(&[bad_len], true),
        Err(CommandError::Value { .. })
    ));
    let bad_type = KeyInformation::basic(1, 1, 0xFF, 16);
    assert!(matches!(
        get_data::encode_key_information(&[bad_type], true),
        Err(CommandError::Value { .. })
    ));
    let none = KeyInformation {
        id: 1,
        version: 1,
        components: vec![],
        extended: None,
    };
    assert!(matches!(
        none.to_value(),
        Err(CommandError::FieldLength { .. })
    ));
}

#[test]
fn certificate_store_formats() {
    // A GP certificate (7F21) and an X.509 DER certificate (30) — structure only.
    let gp_cert = hex::decode("7F2106 93 01 01 5F20 00".replace(' ', "")).unwrap();
    let der_cert = hex::decode("3006020101020102").unwrap();
    let certs = [&gp_cert[..], &der_cert[..]];
    let with = get_data::encode_certificate_store(&certs, true).unwrap();
    let without = get_data::encode_certificate_store(&certs, false).unwrap();
    assert_eq!(
        &with[..3],
        &[0xBF, 0x21, u8::try_from(without.len()).unwrap()]
    );
    assert_eq!(get_data::parse_certificate_store(&with).unwrap(), certs);
    assert_eq!(get_data::parse_certificate_store(&without).unwrap(), certs);
    // One bare DER certificate (yubikit with a single certificate).
    assert_eq!(
        get_data::parse_certificate_store(&der_cert).unwrap(),
        [&der_cert[..]]
    );
    assert_eq!(
        get_data::parse_certificate_store(&[0xBF, 0x21, 0x00]).unwrap(),
        Vec::<&[u8]>::new()
    );
    assert_eq!(
        get_data::parse_certificate_store(&[0x04, 0x00]),
        Err(CommandError::UnexpectedTag {
            context: "certificate store",
            found: Tag::new(0x04)
        })
    );
    assert!(matches!(
        get_data::parse_certificate_store(&[0x30, 0x05, 0x00]),
        Err(CommandError::Tlv(_))
    ));
    assert!(matches!(
        get_data::encode_certificate_store(&[&[0x04, 0x00][..]], true),
        Err(CommandError::UnexpectedTag { .. })
    ));
    assert!(matches!(
        get_data::encode_certificate_store(&[&[0x30, 0x00, 0x00][..]], true),
        Err(CommandError::Tlv(_))
    ));
}

#[test]
fn small_objects() {
    assert_eq!(
        get_data::parse_sequence_counter(&[0xC1, 0x02, 0x00, 0x2A]).unwrap(),
        0x2A
    );
    assert_eq!(
        get_data::parse_sequence_counter(&[0xC1, 0x03, 0x00, 0x01, 0x2A]).unwrap(),
        0x12A
    );
    assert!(matches!(
        get_data::parse_sequence_counter(&[0xC1, 0x01, 0x2A]),
        Err(CommandError::FieldLength { .. })
    ));
    let kdd = hex::decode("CF0A00010203040506070809").unwrap();
    assert_eq!(
        get_data::parse_data_object(&kdd, get_data::TAG_KDD).unwrap(),
        &kdd[2..]
    );
    assert!(matches!(
        get_data::parse_data_object(&kdd, get_data::TAG_IIN),
        Err(CommandError::UnexpectedTag { .. })
    ));
    let iin = [0x42, 0x03, 0x12, 0x34, 0x56];
    assert_eq!(
        get_data::parse_data_object(&iin, get_data::TAG_IIN).unwrap(),
        &[0x12, 0x34, 0x56]
    );
}
