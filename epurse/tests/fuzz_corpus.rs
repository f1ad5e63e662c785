//! Replays the committed fuzz corpus and every crash file of the `epurse_applet` target
//! through the library's check function.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use std::path::Path;

#[test]
fn replay_epurse_applet_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    let mut total = epurse::fuzzing::Summary::default();
    for dir in ["corpus/epurse_applet", "artifacts/epurse_applet"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let s = epurse::fuzzing::check_purse(&std::fs::read(&path).unwrap());
                total.loaded += s.loaded;
                total.spent += s.spent;
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 6, "corpus missing: replayed {replayed} files");
    // The seeds complete real loads and purchases, not only refusals.
    assert!(total.loaded > 0 && total.spent > 0, "{total:?}");
}
