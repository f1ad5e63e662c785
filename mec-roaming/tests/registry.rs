//! Partner registry: configuration, home location order, serial-numbered updates.
#![allow(clippy::unwrap_used, missing_docs)]

use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::registry::{parse_update_json, parse_update_toml};
use mec_roaming::{
    CountryCode, E164, PartnerConfig, Registry, RegistryConfig, RegistryError, RegistryUpdate,
    SeededRng, UpdateOperation,
};

fn pem(seed: u64) -> String {
    PrivateKey::generate(&mut SeededRng::from_u64(seed))
        .public_key_pem()
        .unwrap()
}

fn partner(name: &str, cc: &str, prefixes: &[&str], priority: u32) -> PartnerConfig {
    PartnerConfig {
        name: name.into(),
        url: format!("https://{name}.invalid/roam"),
        country: "GB".into(),
        country_code: CountryCode::parse(cc).unwrap(),
        local_prefixes: prefixes.iter().map(|s| (*s).to_owned()).collect(),
        priority,
        verifying_key: pem(name.len() as u64),
        encryption_key: None,
        user_url: None,
    }
}

fn names(r: &Registry, n: &str) -> Vec<String> {
    r.candidates(&E164::parse(n).unwrap())
        .iter()
        .map(|p| p.name().to_owned())
        .collect()
}

fn base() -> Registry {
    Registry::from_config(RegistryConfig {
        serial: 7,
        partners: vec![
            partner("uk-a", "44", &["77", "7700"], 100),
            partner("uk-b", "44", &["770"], 100),
            partner("uk-c", "44", &[], 5),
            partner("us", "1", &["212"], 100),
        ],
    })
    .unwrap()
}

#[test]
fn longest_prefix_then_country_in_priority_order() {
    let r = base();
    assert_eq!(r.serial(), 7);
    assert_eq!(r.prefix_count(), 4);
    assert_eq!(names(&r, "+447700123456"), ["uk-a", "uk-b", "uk-c"]);
    assert_eq!(names(&r, "+447709123456"), ["uk-b", "uk-a", "uk-c"]);
    assert_eq!(names(&r, "+447912345678"), ["uk-c", "uk-a", "uk-b"]);
    assert_eq!(names(&r, "+12125550100"), ["us"]);
    assert!(
        names(&r, "+33612345678").is_empty(),
        "no partner, no broadcast"
    );
    assert_eq!(
        r.longest_match(&E164::parse("+447700123").unwrap())
            .unwrap()
            .name(),
        "uk-a"
    );
}

#[test]
fn toml_and_json_configuration() {
    let r = base();
    let cfg = r.to_config();
    let toml_text = toml::to_string(&cfg).unwrap();
    assert!(toml_text.contains("[[partner]]"));
    let r2 = Registry::from_toml(&toml_text).unwrap();
    assert_eq!(r2.to_config(), cfg);
    let json = serde_json::to_vec(&cfg).unwrap();
    assert_eq!(Registry::from_json(&json).unwrap().to_config(), cfg);
    assert!(matches!(
        Registry::from_toml("serial = \"x\""),
        Err(RegistryError::Parse(_))
    ));
    assert!(matches!(
        Registry::from_toml("[[partner]]\nname = \"a\""),
        Err(RegistryError::Parse(_))
    ));
}

#[test]
fn bad_partners_are_refused() {
    let mut p = partner("x", "44", &["12a"], 1);
    assert!(matches!(
        Registry::from_config(RegistryConfig {
            serial: 0,
            partners: vec![p.clone()]
        }),
        Err(RegistryError::BadPrefix { .. })
    ));
    p.local_prefixes = vec!["1234567890123".into(), "12345678901234".into()];
    assert!(matches!(
        Registry::from_config(RegistryConfig {
            serial: 0,
            partners: vec![p.clone()]
        }),
        Err(RegistryError::BadPrefix { .. })
    ));
    p.local_prefixes = vec![];
    p.verifying_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into();
    assert!(matches!(
        Registry::from_config(RegistryConfig {
            serial: 0,
            partners: vec![p.clone()]
        }),
        Err(RegistryError::BadPartner { .. })
    ));
    let a = partner("a", "44", &["1"], 1);
    let b = partner("b", "44", &["1"], 1);
    assert!(matches!(
        Registry::from_config(RegistryConfig {
            serial: 0,
            partners: vec![a.clone(), b]
        }),
        Err(RegistryError::PrefixConflict { .. })
    ));
    assert!(matches!(
        Registry::from_config(RegistryConfig {
            serial: 0,
            partners: vec![a.clone(), a]
        }),
        Err(RegistryError::AlreadyExists(_))
    ));
}

#[test]
fn updates_apply_in_order_and_refuse_gaps_and_duplicates() {
    let mut r = base();
    let u8_ = RegistryUpdate {
        serial: 8,
        operations: vec![UpdateOperation::Add {
            partner: partner("fr", "33", &["6"], 100),
        }],
    };
    let u9 = RegistryUpdate {
        serial: 9,
        operations: vec![
            UpdateOperation::Modify {
                partner: partner("uk-a", "44", &["78"], 100),
            },
            UpdateOperation::Delete { name: "us".into() },
        ],
    };
    assert_eq!(
        r.apply_update(&u9),
        Err(RegistryError::Gap { current: 7, got: 9 })
    );
    r.apply_update(&u8_).unwrap();
    assert_eq!(
        r.apply_update(&u8_),
        Err(RegistryError::Duplicate { current: 8, got: 8 })
    );
    assert_eq!(names(&r, "+33612345678"), ["fr"]);
    r.apply_update(&u9).unwrap();
    assert_eq!(r.serial(), 9);
    assert_eq!(names(&r, "+447700123456"), ["uk-b", "uk-c", "uk-a"]);
    assert_eq!(names(&r, "+447800123456"), ["uk-a", "uk-c", "uk-b"]);
    assert!(names(&r, "+12125550100").is_empty());
}

#[test]
fn a_failing_update_changes_nothing() {
    let mut r = base();
    let before = r.to_config();
    let bad = RegistryUpdate {
        serial: 8,
        operations: vec![
            UpdateOperation::Delete {
                name: "uk-b".into(),
            },
            UpdateOperation::Modify {
                partner: partner("uk-a", "44", &["79"], 1),
            },
            UpdateOperation::Add {
                partner: partner("new", "44", &["79"], 1),
            }, // conflicts with uk-a's new prefix
        ],
    };
    let e = r.apply_update(&bad).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Operation { index: 2, source } if matches!(**source, RegistryError::PrefixConflict { .. })),
        "{e:?}"
    );
    assert_eq!(r.to_config(), before);
    assert_eq!(r.serial(), 7);
    assert_eq!(names(&r, "+447700123456"), ["uk-a", "uk-b", "uk-c"]);
    let unknown = RegistryUpdate {
        serial: 8,
        operations: vec![UpdateOperation::Delete {
            name: "nope".into(),
        }],
    };
    assert!(matches!(
        r.apply_update(&unknown),
        Err(RegistryError::Operation { index: 0, .. })
    ));
    assert_eq!(r.to_config(), before);
}

#[test]
fn update_documents_parse() {
    let key = pem(3).replace('\n', "\\n");
    let json = format!(
        r#"{{"serial":8,"operation":[{{"op":"delete","name":"us"}},{{"op":"add","partner":{{"name":"de","url":"https://de.invalid","country":"DE","country_code":"49","local_prefixes":["151"],"verifying_key":"{key}"}}}}]}}"#
    );
    let u = parse_update_json(json.as_bytes()).unwrap();
    assert_eq!(u.serial, 8);
    let mut r = base();
    r.apply_update(&u).unwrap();
    assert_eq!(names(&r, "+4915112345678"), ["de"]);
    let t = "serial = 9\n[[operation]]\nop = \"delete\"\nname = \"de\"\n";
    r.apply_update(&parse_update_toml(t).unwrap()).unwrap();
    assert!(names(&r, "+4915112345678").is_empty());
    assert!(matches!(
        parse_update_json(b"{\"serial\":1,\"operation\":[{\"op\":\"rename\"}]}"),
        Err(RegistryError::Parse(_))
    ));
}

#[test]
fn large_registry_index_is_compact() {
    // 20 partners x 5,000 prefixes: the index stays well under 64 bytes per prefix.
    let mut partners = Vec::new();
    let mut n = 0u64;
    for p in 0..20 {
        let prefixes: Vec<String> = (0..5000)
            .map(|_| {
                n += 1;
                format!("{}", 1_000_000 + (n * 7919) % 9_000_000)
            })
            .collect();
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        partners.push(partner(&format!("p{p:02}"), "49", &refs, 100));
    }
    let r = Registry::from_config(RegistryConfig {
        serial: 1,
        partners,
    })
    .unwrap();
    assert_eq!(r.prefix_count(), 100_000);
    let per = r.index_memory_bytes() / r.prefix_count();
    assert!(per <= 64, "{per} bytes per prefix");
}
