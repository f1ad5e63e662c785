//! Helpers shared by the integration tests.
#![allow(missing_docs)]
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

pub fn data(name: &str) -> toml::Table {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    fs::read_to_string(&path)
        .unwrap()
        .parse::<toml::Table>()
        .unwrap()
}

pub fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

pub fn s<'a>(t: &'a toml::Value, k: &str) -> &'a str {
    t.get(k)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("missing {k}"))
}

pub fn hx(t: &toml::Value, k: &str) -> Vec<u8> {
    h(s(t, k))
}

pub fn cases<'a>(t: &'a toml::Table, k: &str) -> &'a Vec<toml::Value> {
    t.get(k).and_then(|v| v.as_array()).unwrap()
}

/// Split a trace line "C: ..." / "R: ..." into its bytes (comments after '#' removed).
pub fn trace_line(line: &str) -> (char, Vec<u8>) {
    let (kind, rest) = line.split_once(':').unwrap();
    (
        kind.trim().chars().next().unwrap(),
        h(rest.split('#').next().unwrap()),
    )
}
