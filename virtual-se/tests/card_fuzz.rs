//! Replays the committed corpus (and any crash files) of the `card_apdus` fuzz target through
//! the same checking function, and runs it on random inputs.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

fn replay(target: &str) -> usize {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for kind in ["corpus", "artifacts"] {
        let Ok(entries) = fs::read_dir(base.join(kind).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| virtual_se::card::fuzz::card_apdus(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn card_apdus_corpus() {
    assert!(replay("card_apdus") >= 8);
}

mod never_panics {
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = Vec<u8>> {
        // A prefix byte, then an APDU that starts like a GP or ISO command often enough to
        // get past the parser.
        (
            any::<u8>(),
            prop::sample::select(vec![0x00u8, 0x80, 0x84, 0x01, 0x81]),
            prop::sample::select(vec![
                0xA4u8, 0xCA, 0xF2, 0xE6, 0xE8, 0xE4, 0xD8, 0xE2, 0xF0, 0x70, 0x50, 0x82, 0x88,
                0xC0,
            ]),
            any::<[u8; 2]>(),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(prefix, cla, ins, p, data)| {
                let mut apdu = vec![cla, ins, p[0], p[1]];
                if !data.is_empty() {
                    apdu.push(data.len() as u8);
                    apdu.extend(&data);
                }
                let mut r = vec![prefix, apdu.len() as u8];
                r.extend(apdu);
                r
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn card_apdus_structured(flags in any::<u8>(), records in proptest::collection::vec(record(), 0..12)) {
            let mut input = vec![flags];
            for r in records {
                input.extend(r);
            }
            virtual_se::card::fuzz::card_apdus(&input);
        }

        #[test]
        fn card_apdus_raw(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            virtual_se::card::fuzz::card_apdus(&data);
        }
    }
}
