//! DELETE (object, object + related, key) and PUT KEY framing.
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::CommandView;
use apdu_codec::tlv::Tag;
use gp_scp::cmd::delete::{self, Delete, Target};

use gp_scp::cmd::put_key::{self, KeyBlock, PutKey, PutKeyResponse};
use gp_scp::cmd::{Aid, CommandError};

fn parse_delete_hex(h: &str) -> Result<Delete, CommandError> {
    let b = hex::decode(h).unwrap();
    delete::parse_delete(&CommandView::try_from(&b[..]).unwrap())
}

#[test]
fn delete_round_trips() {
    let aid: Aid = "A00100015141434C".parse().unwrap();
    let cases = [
        (Delete::object(aid), "80E400000A4F08A00100015141434C"),
        // Source: kaoh/globalplatform scp03Test.c delete_application (../shared/vectors/scp03.toml).
        (
            Delete::object(aid).with_related(true),
            "80E400800A4F08A00100015141434C",
        ),
        (Delete::key(Some(0x01), None), "80E4000003D00101"),
        (Delete::key(None, Some(0x30)), "80E4000003D20130"),
        (
            Delete::key(Some(0x02), Some(0x30)),
            "80E4000006D00102D20130",
        ),
        (
            Delete::object(aid).with_token(Some(vec![]), vec![0xAA, 0xBB]),
            "80E4000010 4F08A00100015141434C B600 9E02AABB",
        ),
        (
            Delete {
                more: true,
                ..Delete::object(aid)
            },
            "80E480000A4F08A00100015141434C",
        ),
    ];
    for (delete, bytes) in cases {
        let bytes = bytes.replace(' ', "");
        assert_eq!(
            delete.to_command().unwrap().to_vec().unwrap(),
            hex::decode(&bytes).unwrap(),
            "{bytes}"
        );
        assert_eq!(parse_delete_hex(&bytes).unwrap(), delete, "{bytes}");
    }
    assert!(matches!(
        Delete::object(aid).target,
        Target::Object { related: false, .. }
    ));
    // with_related / with_token are no-ops for keys.
    let key = Delete::key(Some(1), None);
    assert_eq!(
        key.clone().with_related(true).with_token(None, vec![1]),
        key
    );
    assert_eq!(
        Delete::key(None, None).to_command().unwrap_err(),
        CommandError::MissingTag(Tag::new(0xD0))
    );
}

#[test]
fn delete_errors() {
    for (bytes, expected) in [
        (
            "80E401000A4F08A00100015141434C",
            CommandError::P1P2 {
                command: "DELETE",
                p1: 0x01,
                p2: 0x00,
            },
        ),
        (
            "80E400010A4F08A00100015141434C",
            CommandError::P1P2 {
                command: "DELETE",
                p1: 0x00,
                p2: 0x01,
            },
        ),
        (
            "80E4008003D00101",
            CommandError::P1P2 {
                command: "DELETE",
                p1: 0x00,
                p2: 0x80,
            },
        ),
        (
            "80E40000",
            CommandError::DataLength {
                command: "DELETE",
                len: 0,
            },
        ),
        ("80E40000054F03A00001", CommandError::AidLength(3)),
        (
            "80E4000002D000",
            CommandError::FieldLength {
                field: "key identifier",
                len: 0,
                min: 1,
                max: 1,
            },
        ),
        (
            "80E4000004D2020101",
            CommandError::FieldLength {
                field: "key version number",
                len: 2,
                min: 1,
                max: 1,
            },
        ),
        (
            "80E4000006D00101D00102",
            CommandError::DuplicateTag(Tag::new(0xD0)),
        ),
        (
            "80E400000A4F05A000000001D00101",
            CommandError::UnexpectedTag {
                context: "DELETE object",
                found: Tag::new(0xD0),
            },
        ),
        (
            "80E4000005D001019E00",
            CommandError::UnexpectedTag {
                context: "DELETE key",
                found: Tag::new(0x9E),
            },
        ),
        (
            "80E4000002C100",
            CommandError::UnexpectedTag {
                context: "DELETE",
                found: Tag::new(0xC1),
            },
        ),
        ("80E4000002B600", CommandError::MissingTag(Tag::new(0x4F))),
        (
            "80E40000024F05",
            CommandError::Tlv(apdu_codec::tlv::TlvError::TruncatedValue {
                expected: 5,
                available: 0,
            }),
        ),
        (
            "80E60000024F00",
            CommandError::Instruction {
                expected: 0xE4,
                found: 0xE6,
            },
        ),
    ] {
        assert_eq!(parse_delete_hex(bytes), Err(expected), "{bytes}");
    }
}

fn block(key_type: u8, data: &[u8], kcv: &[u8]) -> KeyBlock {
    KeyBlock {
        key_type,
        data: data.to_vec(),
        kcv: kcv.to_vec(),
    }
}

#[test]
fn put_key_framing_round_trips() {
    // A new SCP03 key set (version 30) of three AES-128 keys, ids 01-03 (GPC 2.3 §11.8.2,
    // Amd D §7.2: each AES block is length 11 = key length byte 10 + 16 encrypted bytes).
    let mut aes = vec![0x10];
    aes.extend_from_slice(&[0x5A; 16]);
    let put = PutKey {
        old_version: 0x00,
        more: false,
        first_key_id: 0x01,
        new_version: 0x30,
        keys: vec![
            block(0x88, &aes, &[1, 2, 3]),
            block(0x88, &aes, &[4, 5, 6]),
            block(0x88, &aes, &[7, 8, 9]),
        ],
    };
    let bytes = put.to_command().unwrap().to_vec().unwrap();
    assert_eq!(
        &bytes[..5],
        &[0x80, 0xD8, 0x00, 0x81, 1 + 3 * (1 + 1 + 17 + 1 + 3)]
    );
    assert_eq!(&bytes[5..9], &[0x30, 0x88, 0x11, 0x10]);
    assert_eq!(*bytes.last().unwrap(), 0x00);
    let parsed = put_key::parse_put_key(&CommandView::try_from(&bytes[..]).unwrap()).unwrap();
    assert_eq!(parsed, put);
    assert_eq!(
        PutKey::from_data(0x00, 0x01, &put.data().unwrap()).unwrap(),
        put
    );
    // Replace key set 01 with one DES key without KCV, more commands follow.
    let single = PutKey {
        old_version: 0x01,
        more: true,
        first_key_id: 0x02,
        new_version: 0x02,
        keys: vec![block(0x80, &[0x11; 16], &[])],
    };
    let bytes = single.to_command().unwrap().to_vec().unwrap();
    assert_eq!(&bytes[..4], &[0x80, 0xD8, 0x81, 0x02]);
    assert_eq!(
        put_key::parse_put_key(&CommandView::try_from(&bytes[..]).unwrap()).unwrap(),
        single
    );
    // A long EC key uses a BER length (81 xx).
    let ec = PutKey {
        keys: vec![block(0xB0, &[0x04; 0x81], &[])],
        ..single.clone()
    };
    let data = ec.data().unwrap();
    assert_eq!(&data[..4], &[0x02, 0xB0, 0x81, 0x81]);
    // Redacted Debug.
    let shown = format!("{:?}", block(0x88, &[0xAB; 16], &[1, 2, 3]));
    assert!(
        shown.contains("16 bytes (redacted)")
            && !shown.contains("AB, AB")
            && shown.contains("010203")
    );
}

#[test]
fn put_key_errors() {
    let good = PutKey {
        old_version: 0,
        more: false,
        first_key_id: 1,
        new_version: 1,
        keys: vec![block(0x80, &[0; 16], &[0, 0, 0])],
    };
    for (bad, field) in [
        (
            PutKey {
                old_version: 0x80,
                ..good.clone()
            },
            "old key version",
        ),
        (
            PutKey {
                first_key_id: 0x80,
                ..good.clone()
            },
            "key identifier",
        ),
        (
            PutKey {
                new_version: 0x00,
                ..good.clone()
            },
            "new key version",
        ),
        (
            PutKey {
                new_version: 0x80,
                ..good.clone()
            },
            "new key version",
        ),
        (
            PutKey {
                keys: vec![block(0xFF, &[0; 16], &[])],
                ..good.clone()
            },
            "key type",
        ),
    ] {
        assert!(
            matches!(bad.to_command(), Err(CommandError::Value { field: f, .. }) if f == field),
            "{field}"
        );
    }
    assert!(matches!(
        PutKey {
            keys: vec![],
            ..good.clone()
        }
        .to_command(),
        Err(CommandError::FieldLength { .. })
    ));
    for (bytes, expected) in [
        (
            "80D80001",
            CommandError::DataLength {
                command: "PUT KEY",
                len: 0,
            },
        ),
        (
            "80D800010101",
            CommandError::Truncated {
                field: "key type",
                needed: 1,
                available: 0,
            },
        ),
        (
            "80D800010100",
            CommandError::Value {
                field: "new key version",
                value: 0,
            },
        ),
        (
            "80D80001020180",
            CommandError::Truncated {
                field: "key data",
                needed: 1,
                available: 0,
            },
        ),
        (
            "80D8000104018002AA",
            CommandError::Truncated {
                field: "key data",
                needed: 2,
                available: 1,
            },
        ),
        (
            "80D8000104018001AA",
            CommandError::Truncated {
                field: "key check value",
                needed: 1,
                available: 0,
            },
        ),
        (
            "80D8000103018080",
            CommandError::Value {
                field: "key data",
                value: 0x80,
            },
        ),
        (
            "80D8000105018001AA03",
            CommandError::Truncated {
                field: "key check value",
                needed: 3,
                available: 0,
            },
        ),
        (
            "80D800010301FF00",
            CommandError::Value {
                field: "key type",
                value: 0xFF,
            },
        ),
        // P2 b8 set for one key, clear for two.
        (
            "80D80081050180010000",
            CommandError::P1P2 {
                command: "PUT KEY",
                p1: 0,
                p2: 0x81,
            },
        ),
        (
            "80D8000109018001000080010000",
            CommandError::P1P2 {
                command: "PUT KEY",
                p1: 0,
                p2: 0x01,
            },
        ),
        (
            "80D6000105018001AA00",
            CommandError::Instruction {
                expected: 0xD8,
                found: 0xD6,
            },
        ),
    ] {
        let b = hex::decode(bytes).unwrap();
        let view = CommandView::try_from(&b[..]).unwrap();
        assert_eq!(put_key::parse_put_key(&view), Err(expected), "{bytes}");
    }
}

#[test]
fn put_key_response() {
    let r = PutKeyResponse {
        version: 0x30,
        kcvs: vec![[1, 2, 3], [4, 5, 6]],
    };
    assert_eq!(r.to_vec(), [0x30, 1, 2, 3, 4, 5, 6]);
    assert_eq!(put_key::parse_put_key_response(&r.to_vec()).unwrap(), r);
    assert_eq!(
        put_key::parse_put_key_response(&[0x30]).unwrap().kcvs,
        Vec::<[u8; 3]>::new()
    );
    assert!(matches!(
        put_key::parse_put_key_response(&[]),
        Err(CommandError::Truncated { .. })
    ));
    assert!(matches!(
        put_key::parse_put_key_response(&[0x30, 1, 2]),
        Err(CommandError::FieldLength { .. })
    ));
}
