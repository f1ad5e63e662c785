//! The checking functions of the card-management fuzz targets (`fuzz/fuzz_targets/gp_cmd_*`),
//! also run over the committed corpus by `tests/cmd_fuzz_corpus.rs`. Not part of the stable
//! API.
//!
//! Beyond "no panic", each check asserts the properties the parsers promise: a rejected
//! command maps to an error status word, and whatever a parser accepts re-encodes to
//! something that parses back to the same value.

use alloc::vec::Vec;

use apdu_codec::{CommandView, StatusWord, parse_command};

use super::get_status::{ResponseFormat, StatusSubset};
use super::store_data::StoreDataReassembler;
use super::{
    CommandError, delete, get_data, get_status, install, load, put_key, select, set_status,
    store_data,
};

fn check_error(e: &CommandError) {
    assert!(e.status_word().is_error(), "{e}: {:?}", e.status_word());
}

fn reparse<T: PartialEq + core::fmt::Debug>(
    command: Result<apdu_codec::Command, CommandError>,
    parse: impl Fn(&CommandView<'_>) -> Result<T, CommandError>,
    expected: &T,
) {
    let Ok(command) = command else { return };
    let Ok(bytes) = command.to_vec() else { return };
    let view = parse_command(&bytes).unwrap_or_else(|e| panic!("rebuilt APDU does not parse: {e}"));
    let again = parse(&view).unwrap_or_else(|e| panic!("rebuilt command rejected: {e}"));
    assert_eq!(&again, expected);
}

/// Fuzz target `gp_cmd_card`: the first byte picks the instruction, the rest is P1, P2 and
/// the data of a command the card-side parser for that instruction reads.
pub fn gp_cmd_card(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let ins = [0xA4u8, 0xCA, 0xF2, 0xE6, 0xE8, 0xE4, 0xD8, 0xE2, 0xF0];
    let Some(ins) = ins.get(usize::from(*selector) % ins.len()) else {
        return;
    };
    let (p1, p2, body) = match rest {
        [p1, p2, body @ ..] => (*p1, *p2, body),
        _ => return,
    };
    let Ok(bytes) = apdu_codec::Command::new(0x80, *ins, p1, p2)
        .with_data(body.to_vec())
        .to_vec()
    else {
        return;
    };
    let Ok(view) = parse_command(&bytes) else {
        return;
    };
    match *ins {
        0xA4 => match select::parse_select(&view) {
            Ok(s) => {
                let rebuilt = s
                    .to_command()
                    .and_then(|c| c.to_vec().map_err(CommandError::from))
                    .unwrap_or_else(|e| panic!("accepted SELECT does not rebuild: {e}"));
                let view = parse_command(&rebuilt)
                    .unwrap_or_else(|e| panic!("rebuilt APDU does not parse: {e}"));
                assert_eq!(select::parse_select(&view), Ok(s));
            }
            Err(e) => check_error(&e),
        },
        0xCA => match get_data::parse_get_data(&view) {
            Ok(g) => {
                let command = match g.key {
                    None => get_data::get_data(g.tag),
                    Some(_) => get_data::get_certificate_store(g.key),
                };
                reparse(Ok(command), get_data::parse_get_data, &g);
            }
            Err(e) => check_error(&e),
        },
        0xF2 => match get_status::parse_get_status(&view) {
            Ok(g) => {
                reparse(g.to_command(), get_status::parse_get_status, &g);
                let registry = [
                    get_status::RegistryEntry::new(super::Aid::GP_ISD, 0x0F),
                    get_status::RegistryEntry::new(super::Aid::OP_ISD, 0x07),
                ];
                match get_status::answer_get_status(&g, &registry, usize::from(p2 & 1), 64) {
                    Ok(answer) => assert!(answer.data.len() <= 64),
                    Err(e) => check_error(&e),
                }
            }
            Err(e) => check_error(&e),
        },
        0xE6 => match install::parse_install(&view) {
            Ok(i) => reparse(i.to_command(), install::parse_install, &i),
            Err(e) => check_error(&e),
        },
        0xE8 => match load::parse_load(&view) {
            Ok(b) => assert_eq!(b.data, body),
            Err(e) => check_error(&e),
        },
        0xE4 => match delete::parse_delete(&view) {
            Ok(d) => reparse(d.to_command(), delete::parse_delete, &d),
            Err(e) => check_error(&e),
        },
        0xD8 => match put_key::parse_put_key(&view) {
            Ok(p) => reparse(p.to_command(), put_key::parse_put_key, &p),
            Err(e) => check_error(&e),
        },
        0xE2 => match store_data::parse_store_data(&view) {
            Ok(b) => assert_eq!(b.data, body),
            Err(e) => check_error(&e),
        },
        _ => match set_status::parse_set_status(&view) {
            Ok(s) => reparse(Ok(s.to_command()), set_status::parse_set_status, &s),
            Err(e) => check_error(&e),
        },
    }
}

/// Fuzz target `gp_cmd_responses`: the first byte picks a host-side response parser, the
/// rest is the response data. Accepted responses re-encode with the card-side encoder and
/// parse back to the same value.
pub fn gp_cmd_responses(data: &[u8]) {
    let Some((selector, data)) = data.split_first() else {
        return;
    };
    match selector % 10 {
        0 => {
            if let Ok(fci) = select::parse_fci(data) {
                assert_eq!(select::parse_fci(&fci.to_vec()).as_ref(), Ok(&fci));
                let _ = fci.management();
            }
        }
        1 => {
            if let Ok(cplc) = get_data::parse_cplc(data) {
                assert_eq!(get_data::parse_cplc(&cplc.to_tlv()), Ok(cplc));
                let _ = get_data::parse_cplc_date(cplc.os_release_date);
            }
        }
        2 => {
            if let Ok(crd) = get_data::parse_card_recognition_data(data) {
                let again = get_data::parse_card_recognition_data(&crd.to_card_data());
                assert_eq!(again.as_ref(), Ok(&crd));
                for scp in &crd.secure_channels {
                    let _ = scp.option_names();
                }
            }
        }
        3 => {
            if let Ok(keys) = get_data::parse_key_information(data) {
                let encoded = get_data::encode_key_information(&keys, true)
                    .unwrap_or_else(|e| panic!("parsed keys do not encode: {e}"));
                assert_eq!(
                    get_data::parse_key_information(&encoded).as_ref(),
                    Ok(&keys)
                );
            }
        }
        4 => {
            if let Ok(certs) = get_data::parse_certificate_store(data) {
                let encoded = get_data::encode_certificate_store(&certs, true)
                    .unwrap_or_else(|e| panic!("parsed certificates do not encode: {e}"));
                assert_eq!(
                    get_data::parse_certificate_store(&encoded).as_ref(),
                    Ok(&certs)
                );
            }
        }
        5 | 6 => {
            let format = if selector % 10 == 5 {
                ResponseFormat::Tagged
            } else {
                ResponseFormat::Legacy
            };
            let subset = match selector / 10 % 4 {
                0 => StatusSubset::IssuerSecurityDomain,
                1 => StatusSubset::Applications,
                2 => StatusSubset::LoadFiles,
                _ => StatusSubset::LoadFilesAndModules,
            };
            if let Ok(entries) = get_status::parse_get_status_response(subset, format, data) {
                for e in &entries {
                    let _ = e.life_cycle_state(subset);
                }
                if let Ok(answer) =
                    get_status::encode_get_status_response(&entries, subset, format, 0, usize::MAX)
                {
                    assert_eq!(answer.status, StatusWord::SUCCESS);
                    let again = get_status::parse_get_status_response(subset, format, &answer.data);
                    assert_eq!(again.as_ref(), Ok(&entries));
                }
            }
        }
        7 => {
            if let Ok(p) = install::parse_install_parameters(data) {
                assert_eq!(
                    install::parse_install_parameters(&p.to_vec()).as_ref(),
                    Ok(&p)
                );
            }
        }
        8 => {
            if let Ok(file) = load::parse_load_file(data) {
                assert_eq!(load::parse_load_file(&file.to_vec()).as_ref(), Ok(&file));
            }
        }
        _ => {
            if let Ok(dgis) = store_data::parse_dgis(data) {
                let mut out = Vec::new();
                for d in &dgis {
                    store_data::write_dgi(&mut out, d.id, d.value)
                        .unwrap_or_else(|e| panic!("parsed DGI does not encode: {e}"));
                }
                assert_eq!(store_data::parse_dgis(&out).as_ref(), Ok(&dgis));
            }
            if let Ok(r) = put_key::parse_put_key_response(data) {
                assert_eq!(
                    put_key::parse_put_key_response(&r.to_vec()).as_ref(),
                    Ok(&r)
                );
            }
        }
    }
}

/// Fuzz target `gp_cmd_sequences`: the input is a series of `len || bytes` command APDUs
/// fed to a LOAD and a STORE DATA reassembler. Rejected blocks change nothing; the data of
/// a finished sequence is exactly the accepted blocks' data in order.
pub fn gp_cmd_sequences(data: &[u8]) {
    let mut load = load::LoadReassembler::new(4096);
    let mut store = StoreDataReassembler::new(4096);
    let mut accepted_store = Vec::new();
    let mut accepted_load = 0usize;
    let mut rest = data;
    while let Some((len, tail)) = rest.split_first() {
        let len = usize::from(*len).min(tail.len());
        let (apdu, tail) = tail.split_at(len);
        rest = tail;
        let Ok(view) = parse_command(apdu) else {
            continue;
        };
        // Both reassemblers see every command; each rejects the other's instruction.
        let before = load.received();
        match load.push(&view) {
            Ok(_) => {
                accepted_load += view.data().len();
                assert_eq!(load.received(), accepted_load);
            }
            Err(e) => {
                check_error(&e);
                // A rejected block adds nothing, except a last block whose content does
                // not parse (the sequence is finished either way).
                assert!(load.received() == before || view.p1() == load::P1_LAST_BLOCK);
                accepted_load = load.received();
            }
        }
        match store.push(&view) {
            Ok(Some(done)) => {
                accepted_store.extend_from_slice(view.data());
                assert_eq!(done.data, accepted_store);
            }
            Ok(None) => accepted_store.extend_from_slice(view.data()),
            Err(e) => check_error(&e),
        }
    }
}
