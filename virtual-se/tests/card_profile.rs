//! Card profiles: every shipped profile loads and opens a card; invalid fields are precise
//! errors.
#![allow(clippy::unwrap_used, missing_docs)]

mod card_support;

use card_support::*;
use virtual_se::profile::{Profile, ProfileError};
use virtual_se::store::MemoryStore;

#[test]
fn every_shipped_profile_opens_a_card() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let p = Profile::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut card = card_with(p, MemoryStore::new());
            card.check_invariants().unwrap();
            ok(sw(&mut card, "80CA9F7F00"));
            n += 1;
        }
    }
    assert!(n >= 8);
}

#[test]
fn default_profile_is_the_developer_card() {
    let p = Profile::default_profile().unwrap();
    assert_eq!(p.isd.aid, "A000000151000000");
    assert_eq!(p.isd.privileges, "9AFE80");
    assert_eq!(p.isd.scp, "03");
    assert_eq!(p.isd.i.as_deref(), Some("70"));
    assert_eq!(
        p.isd.enc.as_deref(),
        Some("404142434445464748494A4B4C4D4E4F")
    );
}

fn field_error(toml: &str) -> String {
    let p = Profile::from_toml(toml);
    let p = match p {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    match virtual_se::card::Card::open(
        MemoryStore::new(),
        &p,
        virtual_se::applet::Packages::builtin(),
        [0; 32],
    ) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_profiles_are_precise_errors() {
    let cplc = "00".repeat(42);
    let isd = r#"[isd]
aid = "A000000151000000"
privileges = "9AFE80"
scp = "03"
enc = "404142434445464748494A4B4C4D4E4F"
mac = "404142434445464748494A4B4C4D4E4F"
dek = "404142434445464748494A4B4C4D4E4F"
"#;
    assert_eq!(field_error(&format!("cplc = \"{cplc}\"\n{isd}")), "");
    for (toml, needle) in [
        (format!("cplc = \"0011\"\n{isd}"), "cplc"),
        (
            format!("cplc = \"{cplc}\"\nlifecycle = \"BROKEN\"\n{isd}"),
            "lifecycle",
        ),
        (
            format!("cplc = \"{cplc}\"\nkey_info_format = \"xml\"\n{isd}"),
            "key_info_format",
        ),
        (
            format!("cplc = \"{cplc}\"\ncolour = \"blue\"\n{isd}"),
            "colour",
        ),
        (
            format!(
                "cplc = \"{cplc}\"\n{}",
                isd.replace("A000000151000000", "A0000001")
            ),
            "isd.aid",
        ),
        (
            format!(
                "cplc = \"{cplc}\"\n{}",
                isd.replace("scp = \"03\"", "scp = \"04\"")
            ),
            "isd.scp",
        ),
        (
            // SCP03 i=70 (S8) takes an 8-byte card challenge.
            format!(
                "cplc = \"{cplc}\"\n{}",
                isd.replace(
                    "scp = \"03\"",
                    "scp = \"03\"\ncard_challenge = \"0102030405\""
                )
            ),
            "isd.card_challenge",
        ),
        (
            format!(
                "cplc = \"{cplc}\"\n{}",
                isd.replace("scp = \"03\"", "scp = \"11b\"")
            ),
            "isd.scp11_key",
        ),
        (
            format!("cplc = \"{cplc}\"\n{}", isd.replace("9AFE80", "9AFE")),
            "isd.privileges",
        ),
        (
            format!(
                "cplc = \"{cplc}\"\n{}",
                isd.replace(
                    "dek = \"404142434445464748494A4B4C4D4E4F\"",
                    "dek = \"4041\""
                )
            ),
            "isd.enc",
        ),
        (
            format!("cplc = \"{cplc}\"\n{isd}kdd = \"0102\"\n"),
            "isd.kdd",
        ),
        (format!("cplc = \"{cplc}\"\n{isd}i = \"ZZ\"\n"), "isd.i"),
        (
            format!(
                "cplc = \"{cplc}\"\n{isd}\n[[ssd]]\naid = \"A000000151535031\"\nprivileges = \"00\"\nscp = \"03\"\n"
            ),
            "ssd[0].privileges",
        ),
    ] {
        let e = field_error(&toml);
        assert!(
            e.contains(needle),
            "expected an error about {needle}, got `{e}`"
        );
    }
    let missing =
        Profile::from_file(std::path::Path::new("/nonexistent/profile.toml")).unwrap_err();
    assert!(matches!(missing, ProfileError::Io { .. }));
}

/// `extended_length`, `max_command_length`, `max_response_length`: the ATRs of the shipped
/// profiles, GET DATA 7F66, and 6700 for what the card does not take.
#[test]
fn extended_length_fields() {
    // extended-length.toml: card capabilities 73 80 21 F3 (b7 extended Lc/Le) in the ATR.
    let p = Profile::from_file(&profile_path("extended-length.toml")).unwrap();
    let mut card = card_with(p, MemoryStore::new());
    assert!(
        h("80738021F3")
            .windows(5)
            .any(|w| card.atr().windows(5).any(|a| a == w))
    );
    ok(sw(&mut card, "00A4040000"));
    // ISO/IEC 7816-4 §12.7.1 extended length information: 2048 / 2048.
    let (data, status) = send(&mut card, &h("00CA7F6600"));
    assert_eq!((data, status), (h("7F66080202080002020800"), 0x9000));
    // An extended case 4 command of 2048 bytes is taken; one byte more is refused.
    let select = h("00A40400");
    let fits = |n: usize| {
        let mut c = select.clone();
        let len = u16::try_from(n - 9).unwrap();
        c.push(0);
        c.extend_from_slice(&len.to_be_bytes());
        c.extend(std::iter::repeat_n(0xA0, n - 9));
        c.extend_from_slice(&[0x01, 0x00]);
        c
    };
    assert_ne!(send(&mut card, &fits(2048)).1, 0x6700);
    assert_eq!(send(&mut card, &fits(2049)).1, 0x6700);

    // short-only.toml: every extended APDU is refused with 6700, short ones are answered.
    let p = Profile::from_file(&profile_path("short-only.toml")).unwrap();
    let mut card = card_with(p, MemoryStore::new());
    ok(sw(&mut card, "00A4040000"));
    assert_eq!(sw(&mut card, "80CA9F7F000000"), 0x6700);
    ok(sw(&mut card, "80CA9F7F00"));
    assert_eq!(sw(&mut card, "00CA7F6600"), 0x6A88);

    // Without the fields (default): extended APDUs are taken, 7F66 is not there.
    let mut card = default_card();
    ok(sw(&mut card, "00A4040000"));
    ok(sw(&mut card, "80CA9F7F000000"));
    assert_eq!(sw(&mut card, "00CA7F6600"), 0x6A88);

    let cplc = "00".repeat(42);
    let isd = r#"[isd]
aid = "A000000151000000"
privileges = "9AFE80"
scp = "03"
enc = "404142434445464748494A4B4C4D4E4F"
mac = "404142434445464748494A4B4C4D4E4F"
dek = "404142434445464748494A4B4C4D4E4F"
"#;
    for (fields, needle) in [
        (
            "extended_length = true\nmax_command_length = 200",
            "max_command_length",
        ),
        (
            "extended_length = true\nmax_command_length = 70000",
            "max_command_length",
        ),
        (
            "extended_length = false\nmax_command_length = 4096",
            "max_command_length",
        ),
        ("max_response_length = 4096", "max_response_length"),
        (
            "extended_length = true\nmax_response_length = 4096",
            "max_response_length",
        ),
        (
            "extended_length = true\nmax_command_length = 4096\nmax_response_length = 100",
            "max_response_length",
        ),
    ] {
        let e = field_error(&format!("cplc = \"{cplc}\"\n{fields}\n{isd}"));
        assert!(e.contains(needle), "{fields}: {e}");
    }
    assert_eq!(
        field_error(&format!(
            "cplc = \"{cplc}\"\nextended_length = true\nmax_command_length = 65544\n{isd}"
        )),
        ""
    );
}
