//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

pub fn data(name: &str) -> toml::Table {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    fs::read_to_string(&path).unwrap().parse::<toml::Table>().unwrap()
}

pub fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

pub fn s<'a>(t: &'a toml::Value, k: &str) -> &'a str {
    t.get(k).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("missing {k}"))
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
    (kind.trim().chars().next().unwrap(), h(rest.split('#').next().unwrap()))
}

/// A deterministic CryptoRng for tests (SplitMix64; not cryptographic).
pub struct TestRng(pub u64);

impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for TestRng {}
