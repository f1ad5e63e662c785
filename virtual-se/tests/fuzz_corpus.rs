//! Replays the committed fuzz corpus and every crash file through the same checking functions
//! the fuzz targets use (`virtual_se::fuzzing`), so CI covers them without a nightly toolchain.
//! Files: `fuzz/corpus/<target>/*` and, when present, `fuzz/artifacts/<target>/*`.
#![allow(clippy::unwrap_used, missing_docs)]

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
fn vpcd_frames_corpus() {
    assert!(replay("vpcd_frames", virtual_se::fuzzing::vpcd_frames) >= 7);
}

#[test]
fn disk_recovery_corpus() {
    assert!(replay("disk_recovery", virtual_se::fuzzing::disk_recovery) >= 4);
}

mod never_panics {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn vpcd_frames(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            virtual_se::fuzzing::vpcd_frames(&data);
        }

        #[test]
        fn disk_recovery(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            virtual_se::fuzzing::disk_recovery(&data);
        }
    }
}
