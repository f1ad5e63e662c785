//! Card-management commands and responses from published traces (tests/data/cmd_vectors.toml,
//! each case with its source): the card-side parser reads each command, and the host-side
//! builder rebuilds the same bytes from what was parsed.
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::CommandView;
use gp_scp::cmd::{delete, get_data, get_status};

fn vectors() -> toml::Table {
    toml::from_str(include_str!("data/cmd_vectors.toml")).unwrap()
}

fn hex(v: &toml::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().replace(' ', "")).unwrap()
}

#[test]
fn commands_parse_and_rebuild_byte_for_byte() {
    let table = vectors();
    let cases = table["command"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let source = case["source"].as_str().unwrap();
        let bytes = hex(&case["plain"]);
        let view = CommandView::try_from(&bytes[..]).unwrap();
        let rebuilt = match case["kind"].as_str().unwrap() {
            "get_status" => {
                let parsed = get_status::parse_get_status(&view).unwrap();
                let command = parsed.to_command().unwrap();
                if view.le().is_none() {
                    command.without_le()
                } else {
                    command
                }
            }
            "get_data" => {
                let parsed = get_data::parse_get_data(&view).unwrap();
                assert_eq!(parsed.key, None, "{source}");
                get_data::get_data(parsed.tag)
            }
            "delete" => delete::parse_delete(&view).unwrap().to_command().unwrap(),
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(rebuilt.to_vec().unwrap(), bytes, "{source}");
    }
}

#[test]
fn malformed_published_commands_are_rejected() {
    let table = vectors();
    for case in table["malformed"].as_array().unwrap() {
        let source = case["source"].as_str().unwrap();
        let bytes = hex(&case["plain"]);
        let view = CommandView::try_from(&bytes[..]).unwrap();
        let err = match case["kind"].as_str().unwrap() {
            "get_status" => get_status::parse_get_status(&view).unwrap_err(),
            other => panic!("unknown kind {other}"),
        };
        let sw = hex(&case["status"]);
        assert_eq!(
            err.status_word().to_bytes(),
            [sw[0], sw[1]],
            "{source}: {err}"
        );
    }
    // The same search criteria with a well-formed tag list parse.
    let bytes = hex::decode("80F220020a4f0212345c044f9f70c5").unwrap();
    let parsed = get_status::parse_get_status(&CommandView::try_from(&bytes[..]).unwrap()).unwrap();
    assert_eq!(parsed.subset, get_status::StatusSubset::LoadFiles);
    assert_eq!(parsed.format, get_status::ResponseFormat::Tagged);
    assert!(!parsed.next);
    assert_eq!(parsed.aid_prefix, [0x12, 0x34]);
    assert_eq!(
        parsed.tag_list.as_deref(),
        Some(&[0x4F, 0x9F, 0x70, 0xC5][..])
    );
    assert_eq!(
        parsed.to_command().unwrap().without_le().to_vec().unwrap(),
        bytes
    );
}

#[test]
fn card_data_sample() {
    let table = vectors();
    for case in table["card_data"].as_array().unwrap() {
        let source = case["source"].as_str().unwrap();
        let bytes = hex(&case["hex"]);
        let crd = get_data::parse_card_recognition_data(&bytes).unwrap();
        assert_eq!(
            crd.gp_version.as_deref(),
            Some(&hex(&case["gp_version"])[..]),
            "{source}"
        );
        assert_eq!(crd.card_id_scheme.as_deref(), Some(&[][..]), "{source}");
        assert_eq!(
            crd.secure_channels,
            [get_data::ScpInfo {
                scp: hex(&case["scp"])[0],
                i: hex(&case["i"])[0]
            }],
            "{source}"
        );
        assert_eq!(
            crd.secure_channels[0].option_names(),
            [
                "3 secure channel keys",
                "explicit initiation",
                "C-MAC on modified APDU",
                "ICV set to zero",
                "ICV encryption for C-MAC session",
                "no R-MAC",
                "unpredictable card challenge"
            ]
        );
        // The card-side encoder writes the same bytes back.
        assert_eq!(crd.to_card_data(), bytes, "{source}");
    }
}

#[test]
fn key_information_samples() {
    let table = vectors();
    for case in table["key_information"].as_array().unwrap() {
        let source = case["source"].as_str().unwrap();
        let bytes = hex(&case["hex"]);
        let expected = get_data::KeyInformation::basic(
            u8::try_from(case["id"].as_integer().unwrap()).unwrap(),
            u8::try_from(case["version"].as_integer().unwrap()).unwrap(),
            u8::try_from(case["key_type"].as_integer().unwrap()).unwrap(),
            u8::try_from(case["length"].as_integer().unwrap()).unwrap(),
        );
        // Bare C0 (yubikit style) and wrapped in E0 (GlobalPlatform tools).
        assert_eq!(
            get_data::parse_key_information(&bytes).unwrap(),
            std::slice::from_ref(&expected),
            "{source}"
        );
        let mut wrapped = vec![0xE0, u8::try_from(bytes.len()).unwrap()];
        wrapped.extend_from_slice(&bytes);
        assert_eq!(
            get_data::parse_key_information(&wrapped).unwrap(),
            std::slice::from_ref(&expected),
            "{source}"
        );
        let keys = [expected];
        assert_eq!(
            get_data::encode_key_information(&keys, false).unwrap(),
            bytes,
            "{source}"
        );
        assert_eq!(
            get_data::encode_key_information(&keys, true).unwrap(),
            wrapped,
            "{source}"
        );
    }
}
