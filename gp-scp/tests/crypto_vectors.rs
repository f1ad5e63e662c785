//! ISO/IEC 9797-1 MACs (tests/data/iso9797.toml), key diversification and key check values
//! (tests/data/diversification.toml); sources cited per case in the data files.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;
use common::*;

use gp_scp::crypto::pad::pad_method2;
use gp_scp::crypto::{Des3Cipher, DesCipher};
use gp_scp::diversify::{Diversification, diversify};
use gp_scp::keys::{KeySet, KeyType};

fn message(case: &toml::Value) -> Vec<u8> {
    match case.get("data_ascii") {
        Some(v) => v.as_str().unwrap().as_bytes().to_vec(),
        None => hx(case, "data"),
    }
}

fn pad(mut data: Vec<u8>, method: &str) -> Vec<u8> {
    match method {
        "pad1" => {
            let rem = data.len() % 8;
            if rem != 0 || data.is_empty() {
                data.resize(data.len() + (8 - rem), 0);
            }
        }
        "pad2" => pad_method2(&mut data, 8),
        "none" => {}
        other => panic!("unknown padding {other}"),
    }
    data
}

fn mac(algorithm: &str, key: &[u8], padded: &[u8]) -> [u8; 8] {
    match algorithm {
        "alg3" => Des3Cipher::new(key).unwrap().mac_alg3(&[0; 8], padded),
        "alg1-3des" => Des3Cipher::new(key).unwrap().mac_alg1(&[0; 8], padded),
        "alg1-des" => DesCipher::new(key).unwrap().mac_alg1(&[0; 8], padded),
        other => panic!("unknown algorithm {other}"),
    }
}

#[test]
fn iso9797_macs() {
    let t = data("iso9797.toml");
    let mut checked = 0;
    for case in cases(&t, "mac") {
        let src = s(case, "source");
        let alg = s(case, "algorithm");
        let key = hx(case, "key");
        let msg = message(case);
        let mut variants = Vec::new();
        if let Some(p) = case.get("padding") {
            variants.push((p.as_str().unwrap().to_string(), hx(case, "mac")));
        }
        for (k, p) in [("mac_pad1", "pad1"), ("mac_pad2", "pad2")] {
            if case.get(k).is_some() {
                variants.push((p.to_string(), hx(case, k)));
            }
        }
        for (padding, want) in variants {
            let got = mac(alg, &key, &pad(msg.clone(), &padding));
            assert_eq!(got[..want.len()].to_vec(), want, "{src}: {alg} {padding}");
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

#[test]
fn emv_diversification() {
    let t = data("diversification.toml");
    for case in cases(&t, "emv") {
        let master = KeySet::single(1, KeyType::Des, &hx(case, "master")).unwrap();
        let kdd: [u8; 10] = hx(case, "kdd").try_into().unwrap();
        let k = diversify(&master, Diversification::EmvCps11, &kdd).unwrap();
        let src = s(case, "source");
        assert_eq!(k.enc().as_bytes(), hx(case, "enc"), "{src}");
        assert_eq!(k.mac().as_bytes(), hx(case, "mac"), "{src}");
        assert_eq!(k.dek().as_bytes(), hx(case, "dek"), "{src}");
    }
}

#[test]
fn kcvs_of_diversified_keys() {
    let t = data("diversification.toml");
    let mut checked = 0;
    for case in cases(&t, "kcv") {
        let src = s(case, "source");
        let master = hx(case, "master");
        let kdd: [u8; 10] = hx(case, "kdd").try_into().unwrap();
        for (field, method, key_type) in [
            ("emv_kcv", Diversification::EmvCps11, KeyType::Des),
            ("visa2_kcv", Diversification::Visa2, KeyType::Des),
            ("kdf3_aes128_kcv", Diversification::Kdf3, KeyType::Aes),
            ("kdf3_aes192_kcv", Diversification::Kdf3, KeyType::Aes),
            ("kdf3_aes256_kcv", Diversification::Kdf3, KeyType::Aes),
        ] {
            let Some(want) = case.get(field) else {
                continue;
            };
            let want: Vec<String> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_uppercase())
                .collect();
            let set = KeySet::single(1, key_type, &master).unwrap();
            let got: Vec<String> = diversify(&set, method, &kdd)
                .unwrap()
                .kcvs()
                .iter()
                .map(|k| k.to_string())
                .collect();
            assert_eq!(got, want, "{src}: {field}");
            checked += 1;
        }
    }
    assert_eq!(checked, 5);
}

#[test]
fn kdf3_external_vector() {
    let t = data("diversification.toml");
    for case in cases(&t, "kdf3") {
        let master = KeySet::single(1, KeyType::Aes, &hx(case, "master")).unwrap();
        let kdd: [u8; 10] = hx(case, "kdd").try_into().unwrap();
        let k = diversify(&master, Diversification::Kdf3, &kdd).unwrap();
        assert_eq!(k.enc().as_bytes(), hx(case, "enc"), "{}", s(case, "source"));
    }
}

#[test]
fn diversification_rejects_wrong_key_type() {
    let aes = KeySet::single(1, KeyType::Aes, &[0x40; 16]).unwrap();
    assert!(diversify(&aes, Diversification::EmvCps11, &[0; 10]).is_err());
    let des = KeySet::single(1, KeyType::Des, &[0x40; 16]).unwrap();
    assert!(diversify(&des, Diversification::Kdf3, &[0; 10]).is_err());
}
