//! SCP03 vectors from tests/data/scp03.toml (sources cited per case in the data file).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;
use common::*;

use apdu_codec::{Command, ResponseView, StatusWord, parse_command, parse_response};
use gp_scp::SecurityLevel;
use gp_scp::keys::{KeySet, KeyType};
use gp_scp::scp03::card::answer_initialize_update;
use gp_scp::scp03::host::{Scp03Host, Scp03HostConfig};
use gp_scp::scp03::{self, Scp03Option, parse_initialize_update_response};

fn keys_of(case: &toml::Value) -> KeySet {
    if case.get("static_key").is_some() {
        KeySet::single(0x30, KeyType::Aes, &hx(case, "static_key")).unwrap()
    } else {
        KeySet::new(
            0x30,
            KeyType::Aes,
            &hx(case, "static_enc"),
            &hx(case, "static_mac"),
            &hx(case, "static_dek"),
        )
        .unwrap()
    }
}

#[test]
fn kdf_session_keys_and_cryptograms() {
    let t = data("scp03.toml");
    for case in cases(&t, "kdf") {
        let keys = keys_of(case);
        let [enc, mac, rmac, card, host] =
            scp03::derive_raw(&keys, &hx(case, "context"), 8).unwrap();
        let src = s(case, "source");
        assert_eq!(enc, hx(case, "s_enc"), "{src}");
        assert_eq!(mac, hx(case, "s_mac"), "{src}");
        assert_eq!(rmac, hx(case, "s_rmac"), "{src}");
        assert_eq!(card, hx(case, "card_cryptogram"), "{src}");
        assert_eq!(host, hx(case, "host_cryptogram"), "{src}");
    }
}

#[test]
fn pseudo_random_card_challenge() {
    let t = data("scp03.toml");
    for case in cases(&t, "pseudo_random_challenge") {
        let counter: [u8; 3] = hx(case, "sequence_counter").try_into().unwrap();
        let mut out = [0u8; 8];
        scp03::pseudo_random_challenge(
            &hx(case, "static_enc"),
            counter,
            &hx(case, "sd_aid"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.to_vec(),
            hx(case, "card_challenge"),
            "{}",
            s(case, "source")
        );
    }
}

/// Replay each recorded session on the host side (and on the card side with the recorded
/// card challenge): INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and every wrapped command
/// must come out byte for byte.
#[test]
fn recorded_sessions() {
    let t = data("scp03.toml");
    for case in cases(&t, "session") {
        let src = s(case, "source");
        let keys = keys_of(case);
        let trace: Vec<(char, Vec<u8>)> = case
            .get("trace")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|l| trace_line(l.as_str().unwrap()))
            .collect();
        let init = parse_command(&trace[0].1).unwrap();
        let resp_bytes = &trace[1].1;
        let resp = parse_response(resp_bytes).unwrap();
        let ea = parse_command(&trace[2].1).unwrap();
        let level = SecurityLevel::scp03(ea.p1()).unwrap();
        let config = Scp03HostConfig {
            key_version: init.p1(),
            level,
            ..Scp03HostConfig::default()
        };
        let host = Scp03Host::new(
            keys.clone().with_version(resp.data()[10]),
            config,
            &hx(case, "host_challenge"),
        )
        .unwrap();
        assert_eq!(
            host.initialize_update().to_vec().unwrap(),
            trace[0].1,
            "{src}: INITIALIZE UPDATE"
        );
        let pending = host.process_initialize_update(&resp).unwrap();
        assert_eq!(
            pending.external_authenticate().to_vec().unwrap(),
            trace[2].1,
            "{src}: EXTERNAL AUTHENTICATE"
        );
        let mut session = pending
            .process_external_authenticate(&ResponseView::new(&[], StatusWord::SUCCESS))
            .unwrap();

        // Card side with the recorded challenge.
        let parsed = parse_initialize_update_response(resp.data()).unwrap();
        let card_keys = keys.clone().with_version(parsed.key_version);
        let (card_resp, card_pending) = answer_initialize_update(
            &init,
            &card_keys,
            Scp03Option::new(parsed.option.to_byte()).unwrap(),
            parsed.card_challenge(),
            parsed.sequence_counter,
            parsed.kdd,
        )
        .unwrap();
        assert_eq!(
            card_resp.data,
            resp.data(),
            "{src}: card's INITIALIZE UPDATE answer"
        );
        let (_, mut card) = card_pending.external_authenticate(&ea).unwrap();

        let mut wraps: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(w) = case.get("wrap") {
            for pair in w.as_array().unwrap() {
                let p = pair.as_array().unwrap();
                wraps.push((h(p[0].as_str().unwrap()), h(p[1].as_str().unwrap())));
            }
        }
        for (_, c) in trace.iter().skip(3) {
            // Later trace commands are wrapped commands; the card must accept them.
            let cmd = parse_command(c).unwrap();
            let plain = card.unwrap(&cmd).unwrap();
            let rewrapped = session.wrap(&plain).unwrap();
            assert_eq!(rewrapped.to_vec().unwrap(), *c, "{src}: host re-wrap");
        }
        for (plain, wrapped) in wraps {
            let cmd: Command = parse_command(&plain).unwrap().to_command();
            let mut cmd = cmd;
            cmd.form = apdu_codec::LengthForm::Auto;
            let out = session.wrap(&cmd).unwrap().to_vec().unwrap();
            assert_eq!(out, wrapped, "{src}: wrap");
            let back = card.unwrap(&parse_command(&wrapped).unwrap()).unwrap();
            assert_eq!(back.data, cmd.data, "{src}: card unwrap");
        }
    }
}
