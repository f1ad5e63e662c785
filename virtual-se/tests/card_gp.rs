//! GlobalPlatform card manager: every command's happy path and its error status words, with
//! "state unchanged" assertions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod card_support;

use apdu_codec::tlv::{Tag, find};
use card_support::*;
use gp_scp::SecurityLevel;
use gp_scp::keys::{KeyType, SecretKey, danger_test_keys::K40, kcv_aes};
use virtual_se::card::{EntryKind, app_lifecycle, card_lifecycle};

/// Assert that a command answers `expected` and leaves the committed state untouched.
fn refused<S: virtual_se::store::Store>(
    card: &mut virtual_se::card::Card<S>,
    host: Option<&mut Host>,
    apdu: &str,
    expected: u16,
) {
    let before = card.persistent_snapshot().unwrap();
    let got = match host {
        Some(h) => h.sw(card, apdu),
        None => sw(card, apdu),
    };
    assert_eq!(
        got, expected,
        "{apdu}: expected {expected:04X}, got {got:04X}"
    );
    assert_eq!(
        card.persistent_snapshot().unwrap(),
        before,
        "{apdu} changed the state"
    );
    card.check_invariants().unwrap();
}

#[test]
fn select_isd_fci_and_partial_aid() {
    let mut card = default_card();
    let (fci, s) = send(&mut card, &h("00A4040000"));
    ok(s);
    let t = find(&fci, Tag::new(0x6F)).unwrap().unwrap();
    assert_eq!(t.find(Tag::new(0x84)).unwrap().unwrap().value(), ISD);
    let a5 = t.find(Tag::new(0xA5)).unwrap().unwrap();
    let crd = a5.find(Tag::new(0x73)).unwrap().unwrap();
    // SCP03 i=70 in the card recognition data (GPC 2.3 §H.2).
    assert!(crd.value().windows(3).any(|w| w == [0x04, 0x03, 0x70]));
    ok(sw(&mut card, "00A4040008A000000151000000"));
    // Partial AID.
    ok(sw(&mut card, "00A4040005A000000151"));
    // Next occurrence: only one match.
    assert_eq!(sw(&mut card, "00A4040205A000000151"), 0x6A82);
    // Not found, wrong P1, wrong P2, too long.
    refused(&mut card, None, "00A4040005A000000999", 0x6A82);
    refused(&mut card, None, "00A4000002 3F00", 0x6A86);
    refused(&mut card, None, "00A4041005A000000151", 0x6A86);
    refused(
        &mut card,
        None,
        "00A4040011A000000151000000000000000000000000",
        0x6A80,
    );
    // P2 0C: no FCI.
    let (d, s) = send(&mut card, &h("00A4040C08A000000151000000"));
    ok(s);
    assert!(d.is_empty());
}

#[test]
fn bad_class_instruction_and_length() {
    let mut card = default_card();
    refused(&mut card, None, "FFCA9F7F00", 0x6E00);
    refused(&mut card, None, "80FE000000", 0x6D00);
}

#[test]
fn get_data_objects() {
    let mut card = default_card();
    let (d, s) = send(&mut card, &h("80CA9F7F00"));
    ok(s);
    assert_eq!(&d[..3], &[0x9F, 0x7F, 0x2A]);
    assert_eq!(d.len(), 45);
    let (d, s) = send(&mut card, &h("80CA00CF00"));
    ok(s);
    assert_eq!(d, h("CF0A479051670A1B2C3D0001"));
    let (d, s) = send(&mut card, &h("80CA00C100"));
    ok(s);
    assert_eq!(d, h("C103000000"));
    let (d, s) = send(&mut card, &h("80CA00E000"));
    ok(s);
    // E0 { C0 04 01 FF 88 10, C0 04 02 FF 88 10, C0 04 03 FF 88 10 } (GPC 2.3 §11.3.3.1).
    assert_eq!(d, h("E012C00401FF8810C00402FF8810C00403FF8810"));
    let (d, s) = send(&mut card, &h("80CA006600"));
    ok(s);
    assert_eq!(d[0], 0x66);
    assert_eq!(send(&mut card, &h("80CA004200")).0, h("420442034552"));
    assert_eq!(
        send(&mut card, &h("80CA004500")).0,
        h("450A450801020304050607 08")
    );
    refused(&mut card, None, "80CA00FE00", 0x6A88);
    // No certificate store on this card.
    refused(&mut card, None, "80CABF2100", 0x6A88);
}

#[test]
fn e0_bare_format_is_a_profile_option() {
    let mut p = virtual_se::profile::Profile::default_profile().unwrap();
    p.key_info_format = "bare".into();
    let mut card = card_with(p, virtual_se::store::MemoryStore::new());
    let (d, s) = send(&mut card, &h("80CA00E000"));
    ok(s);
    assert_eq!(d, h("C00401FF8810C00402FF8810C00403FF8810"));
}

#[test]
fn commands_need_authentication() {
    let mut card = default_card();
    for apdu in [
        "80F28002024F00",
        "80E60C0000",
        "80E8800003C40100",
        "80E400000A4F08F06D656341505031",
        "80D8000000",
        "80E2800000",
        "80F080070100",
        // Secure messaging without a session.
        "84F28002024F00",
    ] {
        refused(&mut card, None, apdu, 0x6982);
    }
}

#[test]
fn scp03_all_levels_get_status() {
    for level in [0x01, 0x03, 0x11, 0x13, 0x31, 0x33] {
        let mut card = default_card();
        let mut host = open_scp03(&mut card, SecurityLevel::scp03(level).unwrap());
        let (d, s) = host.hex(&mut card, "80F28002024F00");
        ok(s);
        let e3 = find(&d, Tag::new(0xE3)).unwrap().unwrap();
        assert_eq!(e3.find(Tag::new(0x4F)).unwrap().unwrap().value(), ISD);
        assert_eq!(
            e3.find(Tag::new(0x9F70)).unwrap().unwrap().value(),
            &[card_lifecycle::SECURED]
        );
        assert_eq!(
            e3.find(Tag::new(0xC5)).unwrap().unwrap().value(),
            &h("9AFE80")[..]
        );
        // The counter advanced by one (pseudo-random challenge, i=70).
        assert_eq!(card.counters(ISD), Some((1, 0)));
    }
}

#[test]
fn initialize_update_host_quirks() {
    let mut card = default_card();
    // No Le, Le 00 and Le 28 are all accepted (PROTOCOLS.md "What real hosts send").
    for apdu in [
        "8050000008 0102030405060708",
        "8050000008 0102030405060708 00",
        "8050000008 0102030405060708 28",
    ] {
        let (d, s) = send(&mut card, &h(apdu));
        ok(s);
        assert_eq!(d.len(), 32);
        assert_eq!(&d[..10], &h("479051670A1B2C3D0001")[..]);
        assert_eq!(&d[10..13], &[0xFF, 0x03, 0x70]);
    }
    // Unknown key version: 6A88. Wrong challenge length: 6700.
    assert_eq!(sw(&mut card, "8050200008 0102030405060708"), 0x6A88);
    assert_eq!(sw(&mut card, "8050000004 01020304"), 0x6700);
    // EXTERNAL AUTHENTICATE without INITIALIZE UPDATE.
    assert_eq!(
        sw(&mut card, "8482330010 00000000000000000000000000000000"),
        0x6985
    );
}

#[test]
fn scp02_i55_session_and_levels() {
    for level in [0x01, 0x03] {
        let p = virtual_se::profile::Profile::from_file(&profile_path("scp02-i55.toml")).unwrap();
        let mut card = card_with(p, virtual_se::store::MemoryStore::new());
        let mut host = open_scp02(
            &mut card,
            SecurityLevel::scp02(level).unwrap(),
            gp_scp::scp02::Scp02Option::I55,
        );
        let (d, s) = host.hex(&mut card, "80F28000024F00");
        ok(s);
        assert_eq!(d[1..9], h("A000000003000000"));
        // SCP02 counter is 2 bytes and advances per INITIALIZE UPDATE.
        let isd = h("A000000003000000");
        assert_eq!(card.counters(&isd), Some((0x11, 0)));
        let (d, s) = host.hex(&mut card, "80CA00C100");
        ok(s);
        assert_eq!(d, h("C1020011"));
    }
}

#[test]
fn scp03_s16_session() {
    let p = virtual_se::profile::Profile::from_file(&profile_path("scp03-s16.toml")).unwrap();
    let mut card = card_with(p, virtual_se::store::MemoryStore::new());
    let keys = gp_scp::keys::KeySet::single(
        0x01,
        KeyType::Aes,
        &h("404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"),
    )
    .unwrap();
    let cfg = gp_scp::scp03::host::Scp03HostConfig {
        s16: true,
        ..Default::default()
    };
    let mut host = open(&mut card, keys, gp_scp::HostProtocol::Scp03(cfg)).unwrap();
    ok(host.hex(&mut card, "80F28002024F00").1);
}

#[test]
fn diversified_profiles_open_with_master_keys() {
    use gp_scp::diversify::Diversification;
    for (file, method) in [
        ("diversified-emv.toml", Diversification::EmvCps11),
        ("diversified-visa2.toml", Diversification::Visa2),
        ("diversified-kdf3.toml", Diversification::Kdf3),
    ] {
        let p = virtual_se::profile::Profile::from_file(&profile_path(file)).unwrap();
        let scp02 = p.isd.scp == "02";
        let mut card = card_with(p, virtual_se::store::MemoryStore::new());
        let host = if scp02 {
            let cfg = gp_scp::scp02::host::Scp02HostConfig {
                diversification: method,
                ..Default::default()
            };
            open(&mut card, k40_des(), gp_scp::HostProtocol::Scp02(cfg))
        } else {
            let cfg = gp_scp::scp03::host::Scp03HostConfig {
                diversification: method,
                ..Default::default()
            };
            open(&mut card, k40_aes(), gp_scp::HostProtocol::Scp03(cfg))
        };
        let mut host = host.unwrap_or_else(|e| panic!("{file}: {e}"));
        ok(host.hex(&mut card, "80F28002024F00").1);
        // The undiversified master keys do not open the card.
        let wrong = if scp02 {
            open(
                &mut card,
                k40_des(),
                gp_scp::HostProtocol::Scp02(Default::default()),
            )
        } else {
            open(
                &mut card,
                k40_aes(),
                gp_scp::HostProtocol::Scp03(Default::default()),
            )
        };
        assert!(wrong.is_err(), "{file}");
    }
}

#[test]
fn failed_authentications_are_counted_and_limited() {
    let mut p = virtual_se::profile::Profile::default_profile().unwrap();
    p.failure_limit = 3;
    let mut card = card_with(p, virtual_se::store::MemoryStore::new());
    let wrong = gp_scp::keys::KeySet::single(0xFF, KeyType::Aes, &[0x11; 16]).unwrap();
    for n in 1..=3u16 {
        // The host notices the wrong card cryptogram; send a forged EXTERNAL AUTHENTICATE.
        let (_, s) = send(&mut card, &h("8050000008 0102030405060708"));
        ok(s);
        assert_eq!(
            sw(&mut card, "8482330010 00000000000000000000000000000000"),
            0x6982
        );
        assert_eq!(card.counters(ISD).unwrap().1, n);
    }
    let _ = wrong;
    // Limit reached: INITIALIZE UPDATE answers 6983, and nothing else changes.
    refused(&mut card, None, "8050000008 0102030405060708", 0x6983);
    // GET DATA still works: no silent lock of the card.
    ok(sw(&mut card, "80CA9F7F00"));
}

#[test]
fn an_abandoned_authentication_counts_exactly_once() {
    // A careful host sees the wrong card cryptogram and never sends EXTERNAL AUTHENTICATE
    // (GlobalPlatformPro, mec gp): the attempt still counts, once, from INITIALIZE UPDATE on.
    let mut p = virtual_se::profile::Profile::default_profile().unwrap();
    p.failure_limit = 2;
    let mut card = card_with(p, virtual_se::store::MemoryStore::new());
    ok(sw(&mut card, "8050000008 0102030405060708"));
    assert_eq!(card.counters(ISD).unwrap().1, 1);
    // A failing EXTERNAL AUTHENTICATE after it does not count the same attempt twice.
    ok(sw(&mut card, "8050000008 0102030405060708"));
    assert_eq!(
        sw(&mut card, "8482330010 00000000000000000000000000000000"),
        0x6982
    );
    assert_eq!(card.counters(ISD).unwrap().1, 2);
    refused(&mut card, None, "8050000008 0102030405060708", 0x6983);
    assert_eq!(card.counters(ISD).unwrap().1, 2);
}

#[test]
fn reserved_and_non_gp_classes_are_refused() {
    let mut card = default_card();
    for cla in ["20", "30", "A0", "B0", "FF"] {
        assert_eq!(
            sw(&mut card, &format!("{cla}CA9F7F00")),
            0x6E00,
            "CLA {cla}"
        );
    }
    ok(sw(&mut card, "80CA9F7F00"));
    ok(sw(&mut card, "00A4040008A000000151000000"));
}

#[test]
fn successful_authentication_resets_failures() {
    let mut card = default_card();
    ok(sw(&mut card, "8050000008 0102030405060708"));
    assert_eq!(
        sw(&mut card, "8482330010 00000000000000000000000000000000"),
        0x6982
    );
    assert_eq!(card.counters(ISD).unwrap().1, 1);
    let _host = open_scp03(&mut card, SecurityLevel::ALL);
    assert_eq!(card.counters(ISD).unwrap().1, 0);
}

#[test]
fn secure_messaging_errors_close_the_session() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    // A tampered MAC: 6982, session closed, state unchanged.
    let cmd = apdu(0x80, 0xF2, 0x80, 0x02, &h("4F00"));
    let mut wrapped = host.session.wrap(&cmd).unwrap().to_vec().unwrap();
    let n = wrapped.len();
    wrapped[n - 2] ^= 1;
    let before = card.persistent_snapshot().unwrap();
    assert_eq!(send(&mut card, &wrapped).1, 0x6982);
    assert_eq!(card.persistent_snapshot().unwrap(), before);
    // The next correctly wrapped command is refused too (no session).
    let next = host.session.wrap(&cmd).unwrap().to_vec().unwrap();
    assert_eq!(send(&mut card, &next).1, 0x6982);
    // A plain command after a session closes it.
    let mut host = open_scp03(&mut card, SecurityLevel::C_MAC);
    ok(sw(&mut card, "80CA00E000"));
    let next = host.session.wrap(&cmd).unwrap().to_vec().unwrap();
    assert_eq!(send(&mut card, &next).1, 0x6982);
}

#[test]
fn get_status_formats_filters_and_paging() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    // Install many store applets so that GET STATUS needs several pages.
    for i in 0..12u8 {
        let mut aid = APP1.to_vec();
        aid.push(i);
        ok(install_store_applet(&mut card, &mut host, &aid));
    }
    let mut all = Vec::new();
    let (d, mut s) = host.hex(&mut card, "80F24002024F00");
    all.extend(d);
    let mut pages = 1;
    while s == 0x6310 {
        let (d, s2) = host.hex(&mut card, "80F24003024F00");
        all.extend(d);
        s = s2;
        pages += 1;
    }
    ok(s);
    assert!(pages > 1, "expected paging");
    let count = apdu_codec::tlv::TlvIter::new(&all).count();
    assert_eq!(count, 12);
    // Legacy format, filter by AID prefix.
    let (d, s) = host.hex(&mut card, "80F24000094F07F06D656341505031");
    ok(s);
    assert_eq!(d.len(), 12 * (1 + 9 + 2));
    // Load files and modules (P1 10), tagged.
    let (d, s) = host.hex(&mut card, "80F21002084F06F06D65635354");
    ok(s);
    let e3 = find(&d, Tag::new(0xE3)).unwrap().unwrap();
    assert_eq!(
        e3.find(Tag::new(0x84)).unwrap().unwrap().value(),
        STORE_MODULE
    );
    // Load files only (P1 20), legacy.
    let (d, s) = host.hex(&mut card, "80F22000024F00");
    ok(s);
    // The SD package first, then the built-in packages: len AID life cycle 00.
    let mut ssd_entry = vec![7];
    ssd_entry.extend(virtual_se::profile::SSD_LOAD_FILE);
    ssd_entry.extend([0x01, 0x00]);
    assert!(d.starts_with(&ssd_entry));
    let mut store_entry = vec![6];
    store_entry.extend(STORE_ELF);
    store_entry.extend([0x01, 0x00]);
    assert!(
        d.windows(store_entry.len())
            .any(|w| w == store_entry.as_slice())
    );
    // Errors.
    refused(&mut card, Some(&mut host), "80F20002024F00", 0x6A86);
    refused(&mut card, Some(&mut host), "80F28004024F00", 0x6A86);
    refused(&mut card, Some(&mut host), "80F2400203AABBCC", 0x6A80);
    refused(&mut card, Some(&mut host), "80F24002064F04AABBCCDD", 0x6A88);
    // Next occurrence without a previous GET STATUS.
    refused(&mut card, Some(&mut host), "80F22003024F00", 0x6985);
}

#[test]
fn install_store_applet_personalize_and_use() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(install_store_applet(&mut card, &mut host, APP1));
    let entry = card.registry().into_iter().find(|e| e.aid == APP1).unwrap();
    assert_eq!(entry.kind, EntryKind::Application);
    assert_eq!(entry.lifecycle, app_lifecycle::SELECTABLE);
    assert_eq!(entry.associated_sd, ISD);
    // INSTALL [for personalization] then STORE DATA routed to the applet (BER-TLV, 2 blocks).
    let perso = apdu(
        0x80,
        0xE6,
        0x20,
        0x00,
        &[&[0, 0, APP1.len() as u8][..], APP1, &[0, 0, 0]].concat(),
    );
    ok(host.send(&mut card, &perso).view().status().to_u16());
    ok(host.sw(&mut card, "80E2100007 DF0104CAFEBABE"));
    // Wrong block number.
    assert_eq!(host.sw(&mut card, "80E2900505 5A03010203"), 0x6A86);
    ok(host.sw(&mut card, "80E2900105 5A03010203"));
    // Select the applet on channel 0 and read the objects back.
    let (fci, s) = send(&mut card, &[&h("00A4040008")[..], APP1].concat());
    ok(s);
    assert_eq!(fci[0], 0x6F);
    assert_eq!(send(&mut card, &h("00CADF0100")).0, h("DF0104CAFEBABE"));
    assert_eq!(send(&mut card, &h("00CA005A00")).0, h("5A03010203"));
    refused(&mut card, None, "00CA005B00", 0x6A88);
    // PUT DATA, then read.
    ok(sw(&mut card, "00DA005B02ABCD"));
    assert_eq!(send(&mut card, &h("00CA005B00")).0, h("5B02ABCD"));
    refused(&mut card, None, "00EE000000", 0x6D00);
}

#[test]
fn install_errors_change_nothing() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    let bad_module = hex::encode(install_data(
        STORE_ELF,
        &h("F06D656353FFFF"),
        APP1,
        &[0],
        &[],
    ));
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E60C00{:02X}{bad_module}", bad_module.len() / 2),
        0x6A88,
    );
    let unknown_elf = hex::encode(install_data(
        &h("F011223344"),
        STORE_MODULE,
        APP1,
        &[0],
        &[],
    ));
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E60C00{:02X}{unknown_elf}", unknown_elf.len() / 2),
        0x6A88,
    );
    refused(&mut card, Some(&mut host), "80E60C0003010203", 0x6A80);
    refused(&mut card, Some(&mut host), "80E6FF0000", 0x6A86);
    refused(&mut card, Some(&mut host), "80E60C0100", 0x6A86);
    ok(install_store_applet(&mut card, &mut host, APP1));
    // The AID is taken.
    let dup = hex::encode(install_data(STORE_ELF, STORE_MODULE, APP1, &[0], &[]));
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E60C00{:02X}{dup}", dup.len() / 2),
        0x6985,
    );
    // INSTALL [for personalization] of an unknown application.
    refused(
        &mut card,
        Some(&mut host),
        "80E620000C 0000 06F0AABBCCDDEE 000000",
        0x6A88,
    );
}

#[test]
fn install_ssd_from_the_sd_package_then_rotate_its_keys() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    // The security domain package (A0000001515350 / module A000000151535041).
    let cmd = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(
            virtual_se::profile::SSD_LOAD_FILE,
            virtual_se::profile::SSD_MODULE,
            SSD1,
            &h("80C000"),
            &[0xC9, 0x00],
        ),
    );
    ok(host.send(&mut card, &cmd).view().status().to_u16());
    let ssd = card.registry().into_iter().find(|e| e.aid == SSD1).unwrap();
    assert_eq!(ssd.kind, EntryKind::SecurityDomain);
    assert_eq!(ssd.privileges, [0x80, 0xC0, 0x00]);
    // Select the SSD on channel 1 and authenticate with its initial keys.
    let (d, s) = send(&mut card, &h("0070000001"));
    ok(s);
    assert_eq!(d, vec![1]);
    ok(sw(&mut card, &format!("01A4040008{}", hex::encode(SSD1))));
    let mut session = gp_scp::HostSession::new(
        k40_aes(),
        gp_scp::HostProtocol::Scp03(Default::default()),
        &mut rng(4),
    )
    .unwrap();
    let mut step = gp_scp::HostStep::Send(session.begin().unwrap());
    while let gp_scp::HostStep::Send(cmd) = step {
        let mut bytes = cmd.to_vec().unwrap();
        bytes[0] |= 0x01;
        step = session
            .process(&apdu_codec::parse_response(&card.transmit(&bytes)).unwrap())
            .unwrap();
    }
    // PUT KEY on the SSD (channel 1) replaces its keys; the ISD keeps its own.
    let dek = session.dek().unwrap().as_bytes().to_vec();
    let k = SecretKey::new(&[0x55; 16]);
    let data = gp_scp::put_key::encode_put_key_data(
        0x01,
        &[(KeyType::Aes, &k), (KeyType::Aes, &k), (KeyType::Aes, &k)],
        &dek,
        KeyType::Aes,
    )
    .unwrap();
    let mut bytes = session
        .wrap(&apdu(0x80, 0xD8, 0x00, 0x81, &data))
        .unwrap()
        .to_vec()
        .unwrap();
    bytes[0] |= 0x01;
    let raw = card.transmit(&bytes);
    let r = session
        .unwrap(&apdu_codec::parse_response(&raw).unwrap())
        .unwrap();
    ok(r.view().status().to_u16());
    assert!(
        card.keys(SSD1)
            .iter()
            .all(|k| k.kvn == 1 && k.value == vec![0x55; 16])
    );
    assert!(card.keys(ISD).iter().all(|k| k.kvn == 0xFF));
    ok(sw(&mut card, "0070800100"));
    card.check_invariants().unwrap();
}

#[test]
fn put_key_add_replace_and_errors() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    let dek = host.session.dek().unwrap().as_bytes().to_vec();
    let new_key = SecretKey::new(&[0x22; 16]);
    let data = gp_scp::put_key::encode_put_key_data(
        0x01,
        &[
            (KeyType::Aes, &new_key),
            (KeyType::Aes, &new_key),
            (KeyType::Aes, &new_key),
        ],
        &dek,
        KeyType::Aes,
    )
    .unwrap();
    // Bad KCV: 6A80, nothing changes.
    let mut bad = data.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;
    refused(
        &mut card,
        Some(&mut host),
        &format!("80D80081{:02X}{}", bad.len(), hex::encode(&bad)),
        0x6A80,
    );
    // Replace a version that does not exist: 6A88.
    refused(
        &mut card,
        Some(&mut host),
        &format!("80D83081{:02X}{}", data.len(), hex::encode(&data)),
        0x6A88,
    );
    // P2 00 without the several-keys bit: 6A86.
    refused(
        &mut card,
        Some(&mut host),
        &format!("80D80000{:02X}{}", data.len(), hex::encode(&data)),
        0x6A86,
    );
    // Add version 01 (three keys): the initial FF set goes away.
    let (resp, s) = host.hex(
        &mut card,
        &format!("80D80081{:02X}{}", data.len(), hex::encode(&data)),
    );
    ok(s);
    let kcv = kcv_aes(&[0x22; 16]).unwrap().0;
    assert_eq!(resp, [&[0x01][..], &kcv, &kcv, &kcv].concat());
    let keys = card.keys(ISD);
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k.kvn == 1 && k.value == vec![0x22; 16]));
    // The old keys no longer open a session; the new ones do.
    assert!(
        open(
            &mut card,
            k40_aes(),
            gp_scp::HostProtocol::Scp03(Default::default())
        )
        .is_err()
    );
    let ks = gp_scp::keys::KeySet::single(0x01, KeyType::Aes, &[0x22; 16]).unwrap();
    let mut host = open(
        &mut card,
        ks,
        gp_scp::HostProtocol::Scp03(Default::default()),
    )
    .unwrap();
    // Replace version 01 by version 02 with K40.
    let dek = host.session.dek().unwrap().as_bytes().to_vec();
    let k40 = SecretKey::new(&K40);
    let data = gp_scp::put_key::encode_put_key_data(
        0x02,
        &[
            (KeyType::Aes, &k40),
            (KeyType::Aes, &k40),
            (KeyType::Aes, &k40),
        ],
        &dek,
        KeyType::Aes,
    )
    .unwrap();
    ok(host
        .hex(
            &mut card,
            &format!("80D80181{:02X}{}", data.len(), hex::encode(&data)),
        )
        .1);
    assert!(card.keys(ISD).iter().all(|k| k.kvn == 2));
    // DELETE key version 02 id 03, then an unknown key.
    let mut host = open(
        &mut card,
        gp_scp::keys::KeySet::single(0x02, KeyType::Aes, &K40).unwrap(),
        gp_scp::HostProtocol::Scp03(Default::default()),
    )
    .unwrap();
    ok(host.sw(&mut card, "80E4000006D00103D20102"));
    assert_eq!(card.keys(ISD).len(), 2);
    refused(&mut card, Some(&mut host), "80E4000006D00103D20102", 0x6A88);
}

#[test]
fn load_opaque_file_then_delete() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    let elf = h("F0112233445566");
    // LOAD without INSTALL [for load]: 6985.
    refused(&mut card, Some(&mut host), "80E8800004C4020102", 0x6985);
    let data = [&[elf.len() as u8][..], &elf, &[0, 0, 0, 0]].concat();
    ok(host
        .send(&mut card, &apdu(0x80, 0xE6, 0x02, 0x00, &data))
        .view()
        .status()
        .to_u16());
    let blob: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let mut full = vec![0xC4, 0x82, 0x01, 0x2C];
    full.extend(&blob);
    let blocks: Vec<&[u8]> = full.chunks(200).collect();
    // Wrong block number.
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E80001{:02X}{}", blocks[0].len(), hex::encode(blocks[0])),
        0x6A86,
    );
    ok(host
        .send(&mut card, &apdu(0x80, 0xE8, 0x00, 0x00, blocks[0]))
        .view()
        .status()
        .to_u16());
    ok(host
        .send(&mut card, &apdu(0x80, 0xE8, 0x80, 0x01, blocks[1]))
        .view()
        .status()
        .to_u16());
    let e = card.registry().into_iter().find(|e| e.aid == elf).unwrap();
    assert_eq!(e.kind, EntryKind::LoadFile);
    // The blob is stored as it came.
    let stored = card
        .persistent_snapshot()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == &[b"elf/".as_slice(), &elf].concat())
        .unwrap()
        .1;
    assert_eq!(stored, blob);
    // Install from it: no built-in module: 6A88.
    let inst = hex::encode(install_data(&elf, &h("F011223344556601"), APP1, &[0], &[]));
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E60C00{:02X}{inst}", inst.len() / 2),
        0x6A88,
    );
    ok(host.sw(
        &mut card,
        &format!("80E400000 9 4F07{}", hex::encode(&elf)).replace(' ', ""),
    ));
    assert!(!card.registry().iter().any(|e| e.aid == elf));
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E40000094F07{}", hex::encode(&elf)),
        0x6A88,
    );
}

#[test]
fn delete_with_and_without_related_objects() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(install_store_applet(&mut card, &mut host, APP1));
    // The load file has an instance: plain DELETE refuses.
    let del_elf = format!("80E40000084F06{}", hex::encode(STORE_ELF));
    refused(&mut card, Some(&mut host), &del_elf, 0x6985);
    // The ISD cannot be deleted.
    refused(
        &mut card,
        Some(&mut host),
        "80E400000A4F08A000000151000000",
        0x6985,
    );
    refused(&mut card, Some(&mut host), "80E4000003AABBCC", 0x6A80);
    refused(&mut card, Some(&mut host), "80E40000044F02AABB", 0x6A80);
    // With related objects: the load file and its instance go.
    ok(host.sw(
        &mut card,
        &format!("80E40080084F06{}", hex::encode(STORE_ELF)),
    ));
    assert!(
        !card
            .registry()
            .iter()
            .any(|e| e.aid == APP1 || e.aid == STORE_ELF)
    );
    // And the applet's data is gone with it.
    assert!(
        !card
            .persistent_snapshot()
            .unwrap()
            .iter()
            .any(|(k, _)| k.starts_with(b"app/"))
    );
}

#[test]
fn set_status_card_and_application_lifecycle() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(install_store_applet(&mut card, &mut host, APP1));
    let app = hex::encode(APP1);
    // Lock the application: not selectable any more.
    ok(host.sw(&mut card, &format!("80F0408008{app}")));
    assert_eq!(
        card.registry()
            .iter()
            .find(|e| e.aid == APP1)
            .unwrap()
            .lifecycle,
        0x87
    );
    refused(
        &mut card,
        Some(&mut host),
        &format!("80F0408008{app}"),
        0x6985,
    );
    // Unlock.
    ok(host.sw(&mut card, &format!("80F0400008{app}")));
    assert_eq!(
        card.registry()
            .iter()
            .find(|e| e.aid == APP1)
            .unwrap()
            .lifecycle,
        0x07
    );
    // Invalid application state, unknown AID, wrong P1.
    refused(
        &mut card,
        Some(&mut host),
        &format!("80F0400308{app}"),
        0x6A80,
    );
    refused(
        &mut card,
        Some(&mut host),
        "80F0408008F0AABBCCDDEEFF00",
        0x6A88,
    );
    refused(&mut card, Some(&mut host), "80F0208000", 0x6A86);
    // Card: SECURED -> INITIALIZED is not allowed; -> CARD_LOCKED is.
    refused(&mut card, Some(&mut host), "80F0800700", 0x6985);
    refused(&mut card, Some(&mut host), "80F0801200", 0x6A80);
    ok(host.sw(&mut card, "80F0807F00"));
    assert_eq!(card.lifecycle(), card_lifecycle::CARD_LOCKED);
    // A locked card: applications cannot be selected; the ISD answers 6283.
    let mut card2 = card;
    assert_eq!(sw(&mut card2, &format!("00A4040008{app}")), 0x6A82);
    assert_eq!(sw(&mut card2, "00A4040000"), 0x6283);
    let mut host = open_scp03(&mut card2, SecurityLevel::ALL);
    ok(host.sw(&mut card2, "80F0800F00"));
    assert_eq!(card2.lifecycle(), card_lifecycle::SECURED);
    // Terminate: only GET DATA answers afterwards.
    ok(host.sw(&mut card2, "80F080FF00"));
    assert_eq!(sw(&mut card2, "8050000008 0102030405060708"), 0x6985);
    ok(sw(&mut card2, "80CA9F7F00"));
    card2.check_invariants().unwrap();
}

#[test]
fn set_status_sd_and_its_applications() {
    let p = virtual_se::profile::Profile::from_file(&profile_path("two-domains.toml")).unwrap();
    let mut card = card_with(p, virtual_se::store::MemoryStore::new());
    // Open a session with the SSD (channel 0) and install an applet there (authorized management).
    ok(sw(&mut card, &format!("00A4040008{}", hex::encode(SSD1))));
    let keys =
        gp_scp::keys::KeySet::single(0x01, KeyType::Aes, &h("505152535455565758595A5B5C5D5E5F"))
            .unwrap();
    let mut ssd_host = open(
        &mut card,
        keys,
        gp_scp::HostProtocol::Scp03(Default::default()),
    )
    .unwrap();
    ok(install_store_applet(&mut card, &mut ssd_host, APP1));
    assert_eq!(
        card.registry()
            .iter()
            .find(|e| e.aid == APP1)
            .unwrap()
            .associated_sd,
        SSD1
    );
    // The SSD cannot change the card life cycle.
    refused(&mut card, Some(&mut ssd_host), "80F0807F00", 0x6982);
    // The SSD sees only its own content.
    let (d, s) = ssd_host.hex(&mut card, "80F24002024F00");
    ok(s);
    assert_eq!(apdu_codec::tlv::TlvIter::new(&d).count(), 1);
    // From the ISD: lock the SSD and its applications, then unlock them.
    ok(sw(&mut card, "00A4040000"));
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(host.sw(&mut card, &format!("80F0608008{}", hex::encode(SSD1))));
    let reg = card.registry();
    assert_eq!(
        reg.iter().find(|e| e.aid == APP1).unwrap().lifecycle & 0x80,
        0x80
    );
    assert_eq!(reg.iter().find(|e| e.aid == SSD1).unwrap().lifecycle, 0x8F);
    ok(host.sw(&mut card, &format!("80F0600008{}", hex::encode(SSD1))));
    let reg = card.registry();
    assert_eq!(reg.iter().find(|e| e.aid == APP1).unwrap().lifecycle, 0x07);
    assert_eq!(reg.iter().find(|e| e.aid == SSD1).unwrap().lifecycle, 0x0F);
    // DELETE the SSD needs "related objects".
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E400000A4F08{}", hex::encode(SSD1)),
        0x6985,
    );
    ok(host.sw(&mut card, &format!("80E400800A4F08{}", hex::encode(SSD1))));
    assert!(
        !card
            .registry()
            .iter()
            .any(|e| e.aid == APP1 || e.aid == SSD1)
    );
    card.check_invariants().unwrap();
}

#[test]
fn store_data_to_the_security_domain() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(host.sw(&mut card, "80E280000A 4203112233 4503445566"));
    assert_eq!(host.hex(&mut card, "80CA004200").0, h("4203112233"));
    // CPLC cannot be overwritten; encrypted data is refused at the SD.
    refused(&mut card, Some(&mut host), "80E2800003 CF0100", 0x6A80);
    refused(&mut card, Some(&mut host), "80E2E00003 420100", 0x6A86);
}

#[test]
fn manage_channel_and_channel_isolation() {
    let mut card = default_card();
    for n in 1..=3u8 {
        let (d, s) = send(&mut card, &h("0070000001"));
        ok(s);
        assert_eq!(d, vec![n]);
    }
    // No free channel.
    assert_eq!(sw(&mut card, "0070000001"), 0x6A81);
    // Close 2, then open 2 explicitly.
    ok(sw(&mut card, "0070800200"));
    assert_eq!(sw(&mut card, "02CA9F7F00"), 0x6881);
    ok(sw(&mut card, "0070000200"));
    ok(sw(&mut card, "82CA9F7F00"));
    // Errors: close channel 0, bad P1, data present.
    assert_eq!(sw(&mut card, "0070800000"), 0x6A86);
    assert_eq!(sw(&mut card, "0070400000"), 0x6A86);
    assert_eq!(sw(&mut card, "007000000101"), 0x6700);
    // A secure channel on channel 1 is not visible on channel 2.
    let cfg = gp_scp::scp03::host::Scp03HostConfig::default();
    let mut session =
        gp_scp::HostSession::new(k40_aes(), gp_scp::HostProtocol::Scp03(cfg), &mut rng(9)).unwrap();
    let mut step = gp_scp::HostStep::Send(session.begin().unwrap());
    while let gp_scp::HostStep::Send(cmd) = step {
        let mut bytes = cmd.to_vec().unwrap();
        bytes[0] |= 0x01;
        let r = card.transmit(&bytes);
        step = session
            .process(&apdu_codec::parse_response(&r).unwrap())
            .unwrap();
    }
    let mut cmd = session
        .wrap(&apdu(0x80, 0xF2, 0x80, 0x02, &h("4F00")))
        .unwrap()
        .to_vec()
        .unwrap();
    cmd[0] |= 0x01;
    assert_eq!(send(&mut card, &cmd).1, 0x9000);
    let mut cmd = session
        .wrap(&apdu(0x80, 0xF2, 0x80, 0x02, &h("4F00")))
        .unwrap()
        .to_vec()
        .unwrap();
    cmd[0] |= 0x02;
    assert_eq!(send(&mut card, &cmd).1, 0x6982);
}

#[test]
fn reset_clears_transient_state() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(host.sw(&mut card, "80F28002024F00"));
    ok(sw(&mut card, "0070000001"));
    card.reset();
    // Session gone, channel 1 closed.
    let cmd = host
        .session
        .wrap(&apdu(0x80, 0xF2, 0x80, 0x02, &h("4F00")))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(send(&mut card, &cmd).1, 0x6982);
    assert_eq!(sw(&mut card, "01CA9F7F00"), 0x6881);
    card.power_off();
    card.power_on();
    ok(sw(&mut card, "80CA9F7F00"));
}

#[test]
fn applet_isolation_errors_never_touch_other_applets() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    let app2 = [APP1, &[0x02]].concat();
    ok(install_store_applet(&mut card, &mut host, APP1));
    ok(install_store_applet(&mut card, &mut host, &app2));
    ok(sw(&mut card, &format!("00A4040008{}", hex::encode(APP1))));
    ok(sw(&mut card, "00DA005A0101"));
    ok(sw(&mut card, &format!("00A4040009{}", hex::encode(&app2))));
    // The second applet does not see the first one's object.
    assert_eq!(sw(&mut card, "00CA005A00"), 0x6A88);
    // A failing command of the second applet changes nothing anywhere.
    let before = card.persistent_snapshot().unwrap();
    assert_eq!(sw(&mut card, "00DA000000"), 0x6A86);
    assert_eq!(card.persistent_snapshot().unwrap(), before);
    ok(sw(&mut card, &format!("00A4040008{}", hex::encode(APP1))));
    assert_eq!(send(&mut card, &h("00CA005A00")).0, h("5A0101"));
}

#[test]
fn long_responses_use_get_response() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(install_store_applet(&mut card, &mut host, APP1));
    ok(sw(&mut card, &format!("00A4040008{}", hex::encode(APP1))));
    let big = vec![0xAB; 300];
    let cmd = apdu_codec::Command::new(0x00, 0xDA, 0x00, 0x5A).with_data(big.clone());
    ok(send(&mut card, &cmd.to_vec().unwrap()).1);
    let (first, s) = send(&mut card, &h("00CA005A00"));
    assert_eq!(s >> 8, 0x61);
    assert_eq!(first.len(), 256);
    let (rest, s) = send(&mut card, &h(&format!("00C00000{:02X}", s & 0xFF)));
    ok(s);
    let all = [first, rest].concat();
    assert_eq!(&all[..4], &[0x5A, 0x82, 0x01, 0x2C]);
    assert_eq!(&all[4..], &big[..]);
}

#[test]
fn external_authenticate_with_le_00_is_accepted() {
    // PROTOCOLS.md: hosts send EXTERNAL AUTHENTICATE with Le 00; the MAC covers header and
    // data only.
    for level in [SecurityLevel::C_MAC, SecurityLevel::ALL] {
        let mut card = default_card();
        let cfg = gp_scp::scp03::host::Scp03HostConfig {
            level,
            ..Default::default()
        };
        let mut session =
            gp_scp::HostSession::new(k40_aes(), gp_scp::HostProtocol::Scp03(cfg), &mut rng(5))
                .unwrap();
        let mut step = gp_scp::HostStep::Send(session.begin().unwrap());
        while let gp_scp::HostStep::Send(cmd) = step {
            let mut bytes = cmd.to_vec().unwrap();
            if cmd.ins == 0x82 {
                assert_eq!(bytes.len(), 5 + 16);
                bytes.push(0x00);
            }
            step = session
                .process(&apdu_codec::parse_response(&card.transmit(&bytes)).unwrap())
                .unwrap();
        }
        let mut host = Host {
            session,
            channel: 0,
        };
        ok(host.sw(&mut card, "80F28002024F00"));
        // An empty command body under the session (GET DATA without data, C-DEC at level 33).
        ok(host.sw(&mut card, "80CA00CF00"));
    }
}

#[test]
fn install_then_make_selectable_extradition_and_registry_update() {
    let p = virtual_se::profile::Profile::from_file(&profile_path("two-domains.toml")).unwrap();
    let mut card = card_with(p, virtual_se::store::MemoryStore::new());
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    // INSTALL [for install] only: INSTALLED, not selectable.
    let cmd = apdu(
        0x80,
        0xE6,
        0x04,
        0x00,
        &install_data(STORE_ELF, STORE_MODULE, APP1, &[0x00], &[]),
    );
    ok(host.send(&mut card, &cmd).view().status().to_u16());
    assert_eq!(
        card.registry()
            .iter()
            .find(|e| e.aid == APP1)
            .unwrap()
            .lifecycle,
        app_lifecycle::INSTALLED
    );
    // INSTALL [for make selectable] (GPC 2.3 §11.5.2.3.3): 00 00 len AID 00 00 00.
    let ms = [&[0, 0, APP1.len() as u8][..], APP1, &[0, 0, 0]].concat();
    ok(host
        .send(&mut card, &apdu(0x80, 0xE6, 0x08, 0x00, &ms))
        .view()
        .status()
        .to_u16());
    assert_eq!(
        card.registry()
            .iter()
            .find(|e| e.aid == APP1)
            .unwrap()
            .lifecycle,
        app_lifecycle::SELECTABLE
    );
    // Again: not INSTALLED any more.
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E60800{:02X}{}", ms.len(), hex::encode(&ms)),
        0x6985,
    );
    // INSTALL [for extradition] to the SSD: len SD, SD, 00, len app, app, 00, 00, 00.
    let ex = [
        &[SSD1.len() as u8][..],
        SSD1,
        &[0, APP1.len() as u8],
        APP1,
        &[0, 0, 0],
    ]
    .concat();
    ok(host
        .send(&mut card, &apdu(0x80, 0xE6, 0x10, 0x00, &ex))
        .view()
        .status()
        .to_u16());
    assert_eq!(
        card.registry()
            .iter()
            .find(|e| e.aid == APP1)
            .unwrap()
            .associated_sd,
        SSD1
    );
    // The ISD cannot be extradited; an SD cannot be associated with itself.
    let bad = [
        &[SSD1.len() as u8][..],
        SSD1,
        &[0, ISD.len() as u8],
        ISD,
        &[0, 0, 0],
    ]
    .concat();
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E61000{:02X}{}", bad.len(), hex::encode(&bad)),
        0x6985,
    );
    // INSTALL [for registry update]: new privileges for the application and back to the ISD.
    let ru = [
        &[ISD.len() as u8][..],
        ISD,
        &[0, APP1.len() as u8],
        APP1,
        &[3, 0x00, 0x00, 0x01, 0, 0],
    ]
    .concat();
    ok(host
        .send(&mut card, &apdu(0x80, 0xE6, 0x40, 0x00, &ru))
        .view()
        .status()
        .to_u16());
    let e = card.registry().into_iter().find(|e| e.aid == APP1).unwrap();
    assert_eq!(e.privileges, [0x00, 0x00, 0x01]);
    assert_eq!(e.associated_sd, ISD);
    // Registry update cannot turn an application into a security domain.
    let ru = [&[0u8][..], &[0, APP1.len() as u8], APP1, &[1, 0x80, 0, 0]].concat();
    refused(
        &mut card,
        Some(&mut host),
        &format!("80E64000{:02X}{}", ru.len(), hex::encode(&ru)),
        0x6A80,
    );
    card.check_invariants().unwrap();
}

#[test]
fn store_data_dgi_format_to_an_applet() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(install_store_applet(&mut card, &mut host, APP1));
    let perso = apdu(
        0x80,
        0xE6,
        0x20,
        0x00,
        &[&[0, 0, APP1.len() as u8][..], APP1, &[0, 0, 0]].concat(),
    );
    ok(host.send(&mut card, &perso).view().status().to_u16());
    // DGI 0101 (3 bytes) and DGI 8000 with the 3-byte length form.
    ok(host.sw(&mut card, "80E288000F 0101 03 AABBCC 8000 FF0004 11223344"));
    ok(sw(&mut card, &format!("00A4040008{}", hex::encode(APP1))));
    assert_eq!(send(&mut card, &h("00CA010100")).0, h("010103AABBCC"));
    assert_eq!(send(&mut card, &h("00CA800000")).0, h("80000411223344"));
}

#[test]
fn virtual_card_trait_for_transports() {
    use virtual_se::transport::VirtualCard;
    let mut card: Box<dyn VirtualCard> = Box::new(default_card());
    card.power_on();
    assert_eq!(card.atr(), virtual_se::card::DEFAULT_ATR);
    let r = card.transmit(&h("80CA9F7F00"));
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
    assert!(!card.last_apdu_committed());
    // INITIALIZE UPDATE with i=70 commits the new sequence counter.
    let r = card.transmit(&h("8050000008 0102030405060708"));
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
    assert!(card.last_apdu_committed());
    // Malformed APDUs answer a status word, never panic.
    for bad in [
        &[][..],
        &[0x00],
        &[0x00, 0xA4, 0x04],
        &[0x00, 0xA4, 0x04, 0x00, 0x05, 0x01],
    ] {
        assert_eq!(card.transmit(bad).len(), 2);
    }
    card.reset();
    card.power_off();
    card.shutdown().unwrap();
}

#[test]
fn put_key_accepts_the_yubikit_aes_layout() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    let dek = host.session.dek().unwrap().as_bytes().to_vec();
    let k = SecretKey::new(&[0x66; 16]);
    // `88 10 <encrypted key>` without the key length byte, as yubikit sends it.
    let data = gp_scp::put_key::encode_put_key_data_as(
        gp_scp::put_key::AesKeyFormat::Bare,
        0x01,
        &[(KeyType::Aes, &k), (KeyType::Aes, &k), (KeyType::Aes, &k)],
        &dek,
        KeyType::Aes,
    )
    .unwrap();
    let (resp, s) = host.hex(
        &mut card,
        &format!("80D80081{:02X}{}", data.len(), hex::encode(&data)),
    );
    ok(s);
    let kcv = kcv_aes(&[0x66; 16]).unwrap().0;
    assert_eq!(resp, [&[0x01][..], &kcv, &kcv, &kcv].concat());
    assert!(
        card.keys(ISD)
            .iter()
            .all(|k| k.kvn == 1 && k.value == vec![0x66; 16])
    );
}

#[test]
fn command_chaining_and_several_get_responses() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    ok(install_store_applet(&mut card, &mut host, APP1));
    ok(sw(&mut card, &format!("00A4040008{}", hex::encode(APP1))));
    // PUT DATA of 600 bytes in three chained short commands (CLA 10).
    let big: Vec<u8> = (0..600u32).map(|i| (i % 253) as u8).collect();
    let pieces: Vec<&[u8]> = big.chunks(250).collect();
    for (n, piece) in pieces.iter().enumerate() {
        let cla = if n + 1 < pieces.len() { 0x10 } else { 0x00 };
        let cmd = apdu_codec::Command::new(cla, 0xDA, 0x00, 0x5A).with_data(piece.to_vec());
        ok(send(&mut card, &cmd.to_vec().unwrap()).1);
    }
    // Read it back with a short GET DATA: 61xx, then two GET RESPONSEs.
    let (mut all, mut s) = send(&mut card, &h("00CA005A00"));
    while s >> 8 == 0x61 {
        let (more, s2) = send(&mut card, &h(&format!("00C00000{:02X}", s & 0xFF)));
        all.extend(more);
        s = s2;
    }
    ok(s);
    assert_eq!(&all[..4], &[0x5A, 0x82, 0x02, 0x58]);
    assert_eq!(&all[4..], &big[..]);
    // A chain interrupted by another command: 6883, and nothing was written.
    let before = card.persistent_snapshot().unwrap();
    ok(send(&mut card, &h("10DA005B0101")).1);
    assert_eq!(sw(&mut card, "00CA005A00"), 0x6883);
    assert_eq!(card.persistent_snapshot().unwrap(), before);
}

#[test]
fn chained_secure_messaging_command() {
    // A host limited to short APDUs wraps the whole command, then chains the wrapped bytes.
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    let value = vec![0x77; 300];
    let mut data = vec![0x5F, 0x20, 0x82, 0x01, 0x2C];
    data.extend(&value);
    let wrapped = host
        .session
        .wrap(&apdu(0x80, 0xE2, 0x80, 0x00, &data))
        .unwrap();
    let pieces: Vec<&[u8]> = wrapped.data.chunks(255).collect();
    let mut last = Vec::new();
    for (n, piece) in pieces.iter().enumerate() {
        let cla = if n + 1 < pieces.len() {
            wrapped.cla | 0x10
        } else {
            wrapped.cla
        };
        let cmd = apdu_codec::Command::new(cla, wrapped.ins, wrapped.p1, wrapped.p2)
            .with_data(piece.to_vec());
        last = card.transmit(&cmd.to_vec().unwrap());
    }
    let r = host
        .session
        .unwrap(&apdu_codec::parse_response(&last).unwrap())
        .unwrap();
    ok(r.view().status().to_u16());
    // Read back with an extended Le (the response is longer than 256 bytes).
    let r = host.send(&mut card, &apdu(0x80, 0xCA, 0x5F, 0x20, &[]).with_le(65536));
    ok(r.view().status().to_u16());
    assert_eq!(&r.view().data()[5..], &value[..]);
}
