//! Replays the committed fuzz corpus and every crash file through the same checking functions
//! the fuzz targets use (`apdu_codec::fuzzing`), so CI covers them without a nightly toolchain.
//! Files: `fuzz/corpus/<target>/*` and, when present, `fuzz/artifacts/<target>/*`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs `check` over every file of the target's corpus and artifacts; returns how many.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let mut count = 0;
    for kind in ["corpus", "artifacts"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            let data = fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn command_apdu_corpus() {
    assert!(replay("command_apdu", apdu_codec::fuzzing::command_apdu) >= 7);
}

#[test]
fn response_apdu_corpus() {
    assert!(replay("response_apdu", apdu_codec::fuzzing::response_apdu) >= 4);
}

#[test]
fn ber_tlv_corpus() {
    assert!(replay("ber_tlv", apdu_codec::fuzzing::ber_tlv) >= 6);
}

#[test]
fn apdu_round_trip_corpus() {
    assert!(replay("apdu_round_trip", apdu_codec::fuzzing::apdu_round_trip) >= 3);
}
