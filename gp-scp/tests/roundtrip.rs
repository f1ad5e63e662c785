//! Host ↔ card round trips over every protocol variant and security level, in memory.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use apdu_codec::{Command, LengthForm, StatusWord};
use gp_scp::SecurityLevel;
use gp_scp::fuzzing::{Pair, Variant};
use proptest::prelude::*;

fn variants() -> Vec<(Variant, Vec<SecurityLevel>)> {
    let scp02 = SecurityLevel::SCP02_LEVELS.to_vec();
    let scp03 = SecurityLevel::SCP03_LEVELS.to_vec();
    let mut v = Vec::new();
    for i in [0x05, 0x15, 0x45, 0x55, 0x35, 0x75] {
        v.push((Variant::Scp02(i), scp02.clone()));
    }
    for i in [0x70, 0x71, 0x60, 0x61] {
        for key_len in [16, 24, 32] {
            v.push((Variant::Scp03 { i, key_len }, scp03.clone()));
        }
    }
    for i in [0x00, 0x10, 0x01, 0x11] {
        v.push((
            Variant::Scp03 { i, key_len: 16 },
            vec![SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC],
        ));
    }
    v.push((Variant::Scp11b, vec![SecurityLevel::ALL]));
    v
}

fn check_exchange(pair: &mut Pair, cmd: &Command, resp: &[u8], sw: StatusWord) {
    let (plain, response) = pair.exchange(cmd, resp, sw).unwrap();
    assert_eq!(plain.cla, cmd.cla);
    assert_eq!((plain.ins, plain.p1, plain.p2), (cmd.ins, cmd.p1, cmd.p2));
    assert_eq!(plain.data, cmd.data);
    assert_eq!(plain.le, cmd.le);
    assert_eq!(response.status, sw);
    if sw.is_success() || sw.is_warning() || pair.host.level().is_some_and(|l| !l.r_mac()) {
        assert_eq!(response.data, resp);
    }
}

/// Every variant and level, a fixed set of lengths including the block boundaries.
#[test]
fn every_variant_and_level() {
    let mut count = 0;
    for (variant, levels) in variants() {
        for level in levels {
            let mut pair = Pair::open(variant, level, 7).unwrap();
            assert_eq!(pair.host.level(), Some(level), "{variant:?} {level}");
            assert!(pair.card.is_open());
            for len in [0usize, 1, 7, 8, 15, 16, 17, 31, 32, 200, 239, 247, 255] {
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let cmd = Command::new(0x80, 0xE2, 0x80, 0x00)
                    .with_data(data.clone())
                    .with_le(256);
                check_exchange(&mut pair, &cmd, &data, StatusWord::SUCCESS);
                let no_le = Command::new(0x80, 0xF0, 0x40, 0x07).with_data(data.clone());
                check_exchange(&mut pair, &no_le, &[], StatusWord::from_u16(0x6310));
            }
            count += 1;
        }
    }
    assert!(count > 40);
}

/// Extended-length secure messaging: data up to 65535 bytes minus what wrapping adds.
#[test]
fn extended_length() {
    for (variant, level) in [
        (
            Variant::Scp03 {
                i: 0x70,
                key_len: 16,
            },
            SecurityLevel::ALL,
        ),
        (
            Variant::Scp03 {
                i: 0x71,
                key_len: 32,
            },
            SecurityLevel::ALL,
        ),
        (Variant::Scp02(0x55), SecurityLevel::C_DEC_C_MAC),
        (Variant::Scp11b, SecurityLevel::ALL),
    ] {
        let mut pair = Pair::open(variant, level, 11).unwrap();
        for len in [256usize, 1000, 4096, 65_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let cmd = Command::new(0x80, 0xE8, 0x00, 0x01)
                .with_data(data.clone())
                .with_le(65_536);
            check_exchange(&mut pair, &cmd, &data[..len.min(4096)], StatusWord::SUCCESS);
        }
        // Too long once wrapped: refused on the host, session intact.
        let cmd = Command::new(0x80, 0xE8, 0x00, 0x01).with_data(vec![0u8; 65_535]);
        assert!(pair.host.wrap(&cmd).is_err());
        let cmd = Command::new(0x80, 0xCA, 0x00, 0x66).with_le(256);
        check_exchange(&mut pair, &cmd, &[1, 2, 3], StatusWord::SUCCESS);
    }
}

/// A short form request that no longer fits once wrapped is refused rather than sent.
#[test]
fn short_form_overflow_is_refused() {
    let mut pair = Pair::open(
        Variant::Scp03 {
            i: 0x70,
            key_len: 16,
        },
        SecurityLevel::ALL,
        3,
    )
    .unwrap();
    let cmd = Command::new(0x80, 0xE2, 0x00, 0x00)
        .with_data(vec![0u8; 250])
        .with_form(LengthForm::Short);
    assert!(pair.host.wrap(&cmd).is_err());
}

fn arb_variant() -> impl Strategy<Value = (Variant, SecurityLevel)> {
    let all: Vec<(Variant, SecurityLevel)> = variants()
        .into_iter()
        .flat_map(|(v, ls)| ls.into_iter().map(move |l| (v, l)))
        .collect();
    proptest::sample::select(all)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random commands, lengths 0..=255 and random responses: the card recovers the exact
    /// plain command and the host the exact plain response, over several commands.
    #[test]
    fn random_sessions(
        (variant, level) in arb_variant(),
        seed in any::<u64>(),
        commands in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=255), proptest::option::of(1usize..=256), proptest::collection::vec(any::<u8>(), 0..=256)),
            1..4,
        ),
    ) {
        let mut pair = Pair::open(variant, level, seed).unwrap();
        for (ins, p1, p2, data, le, resp) in commands {
            // Keep INS away from the authentication commands the channel handles itself.
            let ins = if matches!(ins, 0x50 | 0x82 | 0x88) { 0xCA } else { ins };
            let mut cmd = Command::new(0x80, ins, p1, p2).with_data(data);
            if let Some(le) = le { cmd = cmd.with_le(le); }
            let (plain, response) = pair.exchange(&cmd, &resp, StatusWord::SUCCESS).unwrap();
            prop_assert_eq!(&plain.data, &cmd.data);
            prop_assert_eq!(plain.le, cmd.le);
            prop_assert_eq!((plain.cla, plain.ins, plain.p1, plain.p2), (cmd.cla, cmd.ins, cmd.p1, cmd.p2));
            prop_assert_eq!(&response.data, &resp);
        }
    }

    /// Arbitrary bytes fed to an open card session never panic; failures close it.
    #[test]
    fn card_never_panics(sel in any::<u8>(), apdu in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut data = vec![sel];
        data.extend_from_slice(&apdu);
        gp_scp::fuzzing::card_unwrap(Variant::Scp03 { i: 0x70, key_len: 16 }, &data);
        gp_scp::fuzzing::card_unwrap(Variant::Scp02(0x55), &data);
    }

    /// The INITIALIZE UPDATE response parsers and the PUT KEY parser never panic.
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        gp_scp::fuzzing::initialize_update_response(&data);
        gp_scp::fuzzing::put_key_data(&data);
    }
}
