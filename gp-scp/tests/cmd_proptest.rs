//! Property tests: every host-side builder round-trips through the card-side parser, every
//! card-side encoder through the host-side parser, and no parser panics on any input.
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::tlv::Tag;
use apdu_codec::{Command, CommandView, StatusWord};
use gp_scp::cmd::delete::{self, Delete, Target};
use gp_scp::cmd::get_data::{
    self, CardRecognitionData, Cplc, KeyComponent, KeyInformation, KeyUsageAccess, ScpInfo,
};
use gp_scp::cmd::get_status::{self, GetStatus, RegistryEntry, ResponseFormat, StatusSubset};
use gp_scp::cmd::install::{self, CombinedSequence, Install, InstallCommand};
use gp_scp::cmd::load::{self, LoadFile, LoadReassembler};
use gp_scp::cmd::put_key::{self, KeyBlock, PutKey};
use gp_scp::cmd::select::{self, Fci, Occurrence, Select, SelectResponse};
use gp_scp::cmd::set_status::{self, Scope, SetStatus};
use gp_scp::cmd::store_data::{
    self, Encryption, StoreDataOptions, StoreDataReassembler, Structure,
};
use gp_scp::cmd::{Aid, Privileges};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn aid() -> impl Strategy<Value = Aid> {
    prop::collection::vec(any::<u8>(), 5..=16).prop_map(|v| Aid::new(&v).unwrap())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn privileges() -> impl Strategy<Value = Privileges> {
    any::<[u8; 3]>().prop_map(Privileges::from_bytes)
}

fn view_of(command: &Command) -> Vec<u8> {
    command.to_vec().unwrap()
}

fn subset() -> impl Strategy<Value = StatusSubset> {
    prop_oneof![
        Just(StatusSubset::IssuerSecurityDomain),
        Just(StatusSubset::Applications),
        Just(StatusSubset::LoadFiles),
        Just(StatusSubset::LoadFilesAndModules),
    ]
}

fn format() -> impl Strategy<Value = ResponseFormat> {
    prop_oneof![Just(ResponseFormat::Legacy), Just(ResponseFormat::Tagged)]
}

fn registry_entry() -> impl Strategy<Value = RegistryEntry> {
    (
        aid(),
        any::<u8>(),
        prop::option::of(privileges()),
        prop::option::of(aid()),
        prop::option::of(bytes(3)),
        prop::collection::vec(aid(), 0..3),
        prop::option::of(aid()),
        bytes(2),
        prop::collection::vec(bytes(4).prop_map(|v| (Tag::new(0x9F71), v)), 0..2),
    )
        .prop_map(|(a, lcs, p, lf, v, m, sd, cf, other)| {
            let mut e = RegistryEntry::new(a, lcs);
            e.privileges = p;
            e.load_file = lf;
            e.load_file_version = v;
            e.modules = m;
            e.security_domain = sd;
            e.implicit_selection = cf;
            e.other = other;
            e
        })
}

fn install() -> impl Strategy<Value = Install> {
    let params = || {
        prop_oneof![
            Just(Vec::new()),
            bytes(40).prop_map(|v| install::InstallParameters::application(&v).to_vec()),
            (bytes(10), any::<u16>()).prop_map(|(v, q)| install::InstallParameters {
                application_specific: Some(v),
                system: Some(install::SystemParameters {
                    volatile_reserved: Some(u32::from(q)),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .to_vec()),
        ]
    };
    prop_oneof![
        (
            aid(),
            prop::option::of(aid()),
            bytes(64),
            params(),
            bytes(200)
        )
            .prop_map(|(l, s, h, p, t)| {
                Install::ForLoad {
                    load_file: l,
                    security_domain: s,
                    hash: h,
                    parameters: p,
                    token: t,
                }
            }),
        (
            aid(),
            aid(),
            aid(),
            privileges(),
            params(),
            bytes(80),
            any::<bool>()
        )
            .prop_map(|(l, m, a, pr, p, t, ms)| Install::ForInstall {
                load_file: l,
                module: m,
                application: a,
                privileges: pr,
                parameters: p,
                token: t,
                make_selectable: ms,
            }),
        (
            aid(),
            proptest::option::of(privileges()),
            params(),
            bytes(80)
        )
            .prop_map(|(a, pr, p, t)| {
                Install::MakeSelectable {
                    application: a,
                    privileges: pr,
                    parameters: p,
                    token: t,
                }
            }),
        (aid(), aid(), params(), bytes(80)).prop_map(|(s, a, p, t)| Install::Extradition {
            security_domain: s,
            application: a,
            parameters: p,
            token: t,
        }),
        aid().prop_map(|a| Install::Personalization { application: a }),
        (
            prop::option::of(aid()),
            prop::option::of(aid()),
            prop::option::of(privileges()),
            params(),
            bytes(80)
        )
            .prop_map(|(s, a, pr, p, t)| Install::RegistryUpdate {
                security_domain: s,
                application: a,
                privileges: pr,
                parameters: p,
                token: t,
            }),
    ]
}

fn key_information() -> impl Strategy<Value = KeyInformation> {
    let basic = (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec((0u8..0xFF, any::<u8>()), 1..4),
    )
        .prop_map(|(id, v, comps)| KeyInformation {
            id,
            version: v,
            components: comps
                .into_iter()
                .map(|(t, l)| KeyComponent {
                    key_type: t,
                    length: u16::from(l),
                })
                .collect(),
            extended: None,
        });
    let extended = (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec((any::<u8>(), any::<u16>()), 1..4),
        bytes(1),
        bytes(1),
    )
        .prop_map(|(id, v, comps, usage, access)| KeyInformation {
            id,
            version: v,
            components: comps
                .into_iter()
                .map(|(t, l)| KeyComponent {
                    key_type: t,
                    length: l,
                })
                .collect(),
            extended: Some(KeyUsageAccess { usage, access }),
        });
    prop_oneof![basic, extended]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn select_round_trip(name in bytes(16), next in any::<bool>(), response in 0u8..3) {
        let occurrence = if next { Occurrence::Next } else { Occurrence::First };
        let response = [SelectResponse::Fci, SelectResponse::Fcp, SelectResponse::NoData][usize::from(response)];
        let s = Select { name: &name, occurrence, response };
        let b = view_of(&s.to_command().unwrap());
        prop_assert_eq!(select::parse_select(&CommandView::try_from(&b[..]).unwrap()).unwrap(), s);
    }

    #[test]
    fn fci_round_trip(a in aid(), m in prop::option::of(bytes(20)), p in prop::option::of(bytes(20)), max in prop::option::of(any::<u32>())) {
        let fci = Fci { aid: a, management_data: m, production_life_cycle: p, max_command_data: max };
        prop_assert_eq!(select::parse_fci(&fci.to_vec()).unwrap(), fci);
    }

    #[test]
    fn get_data_round_trip(tag in 1u16.., key in prop::option::of(any::<(u8, u8)>())) {
        let tag = Tag::new(u32::from(tag));
        let b = view_of(&get_data::get_data(tag));
        prop_assert_eq!(get_data::parse_get_data(&CommandView::try_from(&b[..]).unwrap()).unwrap().tag, tag);
        let key = key.map(|(id, version)| get_data::KeyReference { id, version });
        let b = view_of(&get_data::get_certificate_store(key));
        prop_assert_eq!(get_data::parse_get_data(&CommandView::try_from(&b[..]).unwrap()).unwrap().key, key);
    }

    #[test]
    fn cplc_round_trip(raw in any::<[u8; 32]>(), tail in any::<[u8; 10]>()) {
        let mut b = raw.to_vec();
        b.extend_from_slice(&tail);
        let cplc = Cplc::from_bytes(&b).unwrap();
        prop_assert_eq!(&cplc.to_bytes()[..], &b[..]);
        prop_assert_eq!(get_data::parse_cplc(&cplc.to_tlv()).unwrap(), cplc);
    }

    #[test]
    fn card_recognition_round_trip(
        v in prop::option::of(bytes(4)),
        s in prop::option::of(bytes(2)),
        scps in prop::collection::vec(any::<(u8, u8)>(), 0..3),
        c in prop::option::of(bytes(8)),
        d in prop::option::of(bytes(8)),
    ) {
        let crd = CardRecognitionData {
            gp_version: v,
            card_id_scheme: s,
            secure_channels: scps.into_iter().map(|(scp, i)| ScpInfo { scp, i }).collect(),
            card_configuration: c,
            chip_details: d,
            trust_point_info: None,
            certificate_info: None,
        };
        prop_assert_eq!(get_data::parse_card_recognition_data(&crd.to_card_data()).unwrap(), crd);
    }

    #[test]
    fn key_information_round_trip(keys in prop::collection::vec(key_information(), 0..5), wrap in any::<bool>()) {
        let encoded = get_data::encode_key_information(&keys, wrap).unwrap();
        prop_assert_eq!(get_data::parse_key_information(&encoded).unwrap(), keys);
    }

    #[test]
    fn certificate_store_round_trip(certs in prop::collection::vec((any::<bool>(), bytes(300)), 0..4), wrap in any::<bool>()) {
        let certs: Vec<Vec<u8>> = certs
            .into_iter()
            .map(|(gp, v)| {
                let mut out = Vec::new();
                let tag = if gp { get_data::TAG_GP_CERTIFICATE } else { get_data::TAG_DER_SEQUENCE };
                apdu_codec::tlv::write_tlv(&mut out, tag, &v);
                out
            })
            .collect();
        let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
        let encoded = get_data::encode_certificate_store(&refs, wrap).unwrap();
        prop_assert_eq!(get_data::parse_certificate_store(&encoded).unwrap(), refs);
    }

    #[test]
    fn get_status_command_round_trip(
        s in subset(), f in format(), next in any::<bool>(), prefix in bytes(16), tags in prop::option::of(bytes(20)),
    ) {
        let mut cmd = GetStatus::new(s).with_format(f).with_aid_prefix(&prefix);
        cmd.next = next;
        cmd.tag_list = tags;
        let b = view_of(&cmd.to_command().unwrap());
        prop_assert_eq!(get_status::parse_get_status(&CommandView::try_from(&b[..]).unwrap()).unwrap(), cmd);
    }

    #[test]
    fn get_status_paging_round_trip(entries in prop::collection::vec(registry_entry(), 1..8), max in 120usize..600) {
        let subset = StatusSubset::Applications;
        let format = ResponseFormat::Tagged;
        let mut start = 0;
        let mut collected = Vec::new();
        loop {
            match get_status::encode_get_status_response(&entries, subset, format, start, max) {
                Ok(answer) => {
                    prop_assert!(answer.data.len() <= max);
                    let page = get_status::parse_get_status_page(subset, format, &answer.data, answer.status).unwrap();
                    collected.extend(page.entries);
                    match answer.next {
                        Some(n) => { prop_assert_eq!(answer.status, StatusWord::MORE_DATA); start = n; }
                        None => break,
                    }
                }
                Err(e) => {
                    // Only an entry too large for one response stops the paging.
                    let too_long = matches!(e, gp_scp::cmd::CommandError::TooLong { .. });
                    prop_assert!(too_long, "{}", e);
                    return Ok(());
                }
            }
        }
        prop_assert_eq!(collected, entries);
    }

    #[test]
    fn get_status_legacy_round_trip(entries in prop::collection::vec((aid(), any::<u8>(), any::<u8>(), prop::collection::vec(aid(), 0..3)), 0..6), modules in any::<bool>()) {
        let subset = if modules { StatusSubset::LoadFilesAndModules } else { StatusSubset::Applications };
        let entries: Vec<RegistryEntry> = entries
            .into_iter()
            .map(|(a, lcs, p, m)| {
                let mut e = RegistryEntry::new(a, lcs);
                e.privileges = Some(Privileges::from_bytes([p, 0, 0]));
                if modules { e.modules = m; }
                e
            })
            .collect();
        let data: Vec<u8> = entries.iter().flat_map(|e| e.to_legacy(subset).unwrap()).collect();
        prop_assert_eq!(get_status::parse_get_status_response(subset, ResponseFormat::Legacy, &data).unwrap(), entries);
    }

    #[test]
    fn install_round_trip(i in install(), more in any::<bool>(), seq in 0u8..3) {
        let sequence = [CombinedSequence::None, CombinedSequence::Beginning, CombinedSequence::End][usize::from(seq)];
        let cmd = InstallCommand { install: i, more, sequence };
        let b = view_of(&cmd.to_command().unwrap());
        prop_assert_eq!(install::parse_install(&CommandView::try_from(&b[..]).unwrap()).unwrap(), cmd);
    }

    #[test]
    fn load_round_trip(data in bytes(3000), block in 12usize..=255) {
        let file = LoadFile::new(&data);
        let commands = file.to_commands(block).unwrap();
        let mut card = LoadReassembler::with_default_limit();
        let mut result = None;
        for c in &commands {
            let b = view_of(c);
            result = card.push(&CommandView::try_from(&b[..]).unwrap()).unwrap();
        }
        prop_assert_eq!(result, Some(file));
    }

    #[test]
    fn delete_round_trip(a in aid(), related in any::<bool>(), more in any::<bool>(), id in prop::option::of(any::<u8>()), v in prop::option::of(any::<u8>()), key in any::<bool>()) {
        let d = if key && (id.is_some() || v.is_some()) {
            Delete { target: Target::Key { id, version: v }, more }
        } else {
            Delete { more, ..Delete::object(a).with_related(related) }
        };
        let b = view_of(&d.to_command().unwrap());
        prop_assert_eq!(delete::parse_delete(&CommandView::try_from(&b[..]).unwrap()).unwrap(), d);
    }

    #[test]
    fn put_key_round_trip(
        old in 0u8..0x80, more in any::<bool>(), id in 0u8..0x80, new in 1u8..0x80,
        keys in prop::collection::vec((0u8..0xFF, bytes(40), bytes(3)), 1..4),
    ) {
        let put = PutKey {
            old_version: old,
            more,
            first_key_id: id,
            new_version: new,
            keys: keys.into_iter().map(|(t, d, k)| KeyBlock { key_type: t, data: d, kcv: k }).collect(),
        };
        let b = view_of(&put.to_command().unwrap());
        prop_assert_eq!(put_key::parse_put_key(&CommandView::try_from(&b[..]).unwrap()).unwrap(), put);
    }

    #[test]
    fn store_data_round_trip(data in bytes(2000), block in 8usize..=255, s in 0u8..3, e in 0u8..3, r in any::<bool>()) {
        let options = StoreDataOptions {
            structure: [Structure::None, Structure::Dgi, Structure::BerTlv][usize::from(s)],
            encryption: [Encryption::None, Encryption::ApplicationDependent, Encryption::Encrypted][usize::from(e)],
            response: r,
        };
        prop_assume!(!data.is_empty());
        let commands = store_data::store_data(&data, options, block).unwrap();
        let mut card = StoreDataReassembler::new(1 << 16);
        let mut result = None;
        for c in &commands {
            let b = view_of(c);
            result = card.push(&CommandView::try_from(&b[..]).unwrap()).unwrap();
        }
        let done = result.unwrap();
        prop_assert_eq!(done.data, data);
        prop_assert_eq!(done.options, options);
    }

    #[test]
    fn dgi_round_trip(dgis in prop::collection::vec((any::<u16>(), bytes(400)), 0..5)) {
        let mut out = Vec::new();
        for (id, v) in &dgis {
            store_data::write_dgi(&mut out, *id, v).unwrap();
        }
        let parsed = store_data::parse_dgis(&out).unwrap();
        prop_assert_eq!(parsed.len(), dgis.len());
        for (p, (id, v)) in parsed.iter().zip(&dgis) {
            prop_assert_eq!(p.id, *id);
            prop_assert_eq!(p.value, &v[..]);
        }
    }

    #[test]
    fn set_status_round_trip(a in aid(), state in any::<u8>(), scope in 0u8..4) {
        let scope = match scope {
            0 => Scope::Card(None),
            1 => Scope::Card(Some(a)),
            2 => Scope::Application(a),
            _ => Scope::SecurityDomainAndApplications(a),
        };
        let cmd = SetStatus { scope, state };
        let b = view_of(&cmd.to_command());
        prop_assert_eq!(set_status::parse_set_status(&CommandView::try_from(&b[..]).unwrap()).unwrap(), cmd);
    }

    #[test]
    fn aid_text_round_trip(a in aid()) {
        prop_assert_eq!(a.to_string().parse::<Aid>().unwrap(), a);
    }

    /// Every card-side command parser and reassembler, fed any P1, P2 and data under its own
    /// instruction: an answer or a typed error whose status word is an error, never a panic.
    #[test]
    fn card_parsers_never_panic(ins_index in 0usize..9, p1 in any::<u8>(), p2 in any::<u8>(), data in bytes(300)) {
        let ins = [0xA4u8, 0xCA, 0xF2, 0xE6, 0xE8, 0xE4, 0xD8, 0xE2, 0xF0][ins_index];
        let b = Command::new(0x80, ins, p1, p2).with_data(data).to_vec().unwrap();
        let v = CommandView::try_from(&b[..]).unwrap();
        let errors = [
            select::parse_select(&v).err(),
            get_data::parse_get_data(&v).err(),
            get_status::parse_get_status(&v).err(),
            install::parse_install(&v).err(),
            load::parse_load(&v).err(),
            LoadReassembler::with_default_limit().push(&v).err(),
            delete::parse_delete(&v).err(),
            put_key::parse_put_key(&v).err(),
            store_data::parse_store_data(&v).err(),
            StoreDataReassembler::new(1024).push(&v).err(),
            set_status::parse_set_status(&v).err(),
        ];
        for e in errors.into_iter().flatten() {
            prop_assert!(e.status_word().is_error(), "{e}");
        }
    }

    /// Every host-side response parser on any bytes: never a panic.
    #[test]
    fn response_parsers_never_panic(data in bytes(400), s in subset(), f in format()) {
        let _ = select::parse_fci(&data);
        let _ = get_data::parse_cplc(&data);
        let _ = get_data::parse_card_recognition_data(&data);
        let _ = get_data::parse_key_information(&data);
        let _ = get_data::parse_certificate_store(&data);
        let _ = get_data::parse_sequence_counter(&data);
        let _ = get_status::parse_get_status_response(s, f, &data);
        let _ = get_status::parse_get_status_page(s, f, &data, StatusWord::MORE_DATA);
        let _ = install::parse_install_parameters(&data);
        let _ = install::parse_system_parameters(&data);
        let _ = load::parse_load_file(&data);
        let _ = store_data::parse_dgis(&data);
        let _ = put_key::parse_put_key_response(&data);
        let _ = put_key::parse_put_key_data_field(&data);
        let _ = std::str::from_utf8(&data).map(|t| t.parse::<Aid>());
    }

    /// Structured inputs that reach deep into the TLV parsers: valid outer tags with random
    /// contents.
    #[test]
    fn tlv_response_parsers_never_panic(tag in prop::sample::select(vec![0x6Fu32, 0x66, 0x73, 0xE0, 0xC0, 0xE3, 0xBF21, 0x9F7F, 0xEF, 0xE2, 0xC4]), inner in bytes(200)) {
        let mut data = Vec::new();
        apdu_codec::tlv::write_tlv(&mut data, Tag::new(tag), &inner);
        let _ = select::parse_fci(&data);
        let _ = get_data::parse_card_recognition_data(&data);
        let _ = get_data::parse_key_information(&data);
        let _ = get_data::parse_certificate_store(&data);
        let _ = get_data::parse_cplc(&data);
        let _ = get_status::parse_get_status_response(StatusSubset::Applications, ResponseFormat::Tagged, &data);
        let _ = install::parse_install_parameters(&data);
        let _ = load::parse_load_file(&data);
    }
}
