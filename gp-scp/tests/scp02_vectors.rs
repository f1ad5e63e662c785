//! SCP02 vectors from tests/data/scp02.toml (sources cited per case in the data file).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;
use common::*;

use apdu_codec::{LengthForm, ResponseView, StatusWord, parse_command, parse_response};
use gp_scp::SecurityLevel;
use gp_scp::keys::{KeySet, KeyType};
use gp_scp::scp02::card::answer_initialize_update;
use gp_scp::scp02::host::{Scp02Host, Scp02HostConfig};
use gp_scp::scp02::{self, Scp02Option, parse_initialize_update_response};

fn keys_of(case: &toml::Value) -> KeySet {
    if case.get("static_key").is_some() {
        KeySet::single(0x20, KeyType::Des, &hx(case, "static_key")).unwrap()
    } else {
        KeySet::new(
            0x20,
            KeyType::Des,
            &hx(case, "static_enc"),
            &hx(case, "static_mac"),
            &hx(case, "static_dek"),
        )
        .unwrap()
    }
}

#[test]
fn session_keys() {
    let t = data("scp02.toml");
    for case in cases(&t, "session_keys") {
        let src = s(case, "source");
        let counter: [u8; 2] = hx(case, "sequence_counter").try_into().unwrap();
        let [enc, mac, rmac, dek] = scp02::derive_raw(&keys_of(case), counter).unwrap();
        for (name, got) in [
            ("s_enc", enc),
            ("s_mac", mac),
            ("s_rmac", rmac),
            ("s_dek", dek),
        ] {
            if case.get(name).is_some() {
                assert_eq!(got.to_vec(), hx(case, name), "{src}: {name}");
            }
        }
    }
}

#[test]
fn recorded_sessions() {
    let t = data("scp02.toml");
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
        let mut resp_bytes = trace[1].1.clone();
        if resp_bytes.len() == 28 {
            resp_bytes.extend_from_slice(&[0x90, 0x00]); // status word not recorded
        }
        let resp = parse_response(&resp_bytes).unwrap();
        let parsed = parse_initialize_update_response(resp.data()).unwrap();
        let counter = parsed.sequence_counter;
        if case.get("s_enc").is_some() {
            let [enc, mac, rmac, dek] = scp02::derive_raw(&keys, counter).unwrap();
            assert_eq!(enc.to_vec(), hx(case, "s_enc"), "{src}");
            assert_eq!(mac.to_vec(), hx(case, "s_mac"), "{src}");
            assert_eq!(rmac.to_vec(), hx(case, "s_rmac"), "{src}");
            assert_eq!(dek.to_vec(), hx(case, "s_dek"), "{src}");
        }
        let ea = parse_command(&trace[2].1).unwrap();
        let option = Scp02Option::new(u8::from_str_radix(s(case, "i"), 16).unwrap()).unwrap();
        let config = Scp02HostConfig {
            key_version: init.p1(),
            level: SecurityLevel::scp02(ea.p1()).unwrap(),
            option,
            ..Scp02HostConfig::default()
        };
        let host_challenge: [u8; 8] = init.data().try_into().unwrap();
        let host = Scp02Host::new(keys.clone(), config, host_challenge).unwrap();
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

        let card_keys = keys.clone().with_version(parsed.key_version);
        let (card_resp, card_pending) = answer_initialize_update(
            &init,
            &card_keys,
            option,
            counter,
            parsed.card_challenge,
            parsed.kdd,
        )
        .unwrap();
        assert_eq!(
            card_resp.data,
            resp.data(),
            "{src}: card's INITIALIZE UPDATE answer"
        );
        let (_, mut card) = card_pending.external_authenticate(&ea).unwrap();

        for (_, c) in trace.iter().skip(3) {
            let cmd = parse_command(c).unwrap();
            let plain = card.unwrap(&cmd).unwrap();
            let mut plain = plain;
            plain.form = LengthForm::Auto;
            assert_eq!(
                session.wrap(&plain).unwrap().to_vec().unwrap(),
                *c,
                "{src}: host re-wrap"
            );
        }
        if let Some(w) = case.get("wrap") {
            for pair in w.as_array().unwrap() {
                let p = pair.as_array().unwrap();
                let (plain, wrapped) = (h(p[0].as_str().unwrap()), h(p[1].as_str().unwrap()));
                let mut cmd = parse_command(&plain).unwrap().to_command();
                cmd.form = LengthForm::Auto;
                assert_eq!(
                    session.wrap(&cmd).unwrap().to_vec().unwrap(),
                    wrapped,
                    "{src}: wrap"
                );
                let back = card.unwrap(&parse_command(&wrapped).unwrap()).unwrap();
                assert_eq!(back.data, cmd.data, "{src}: card unwrap");
                assert_eq!(back.le, cmd.le, "{src}: card unwrap Le");
            }
        }
    }
}
