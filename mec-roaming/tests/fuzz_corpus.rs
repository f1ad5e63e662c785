//! Replays the committed fuzz corpus (and any crash files) through the fuzz targets' checks.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() {
                check(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn roaming_jws() {
    replay("roaming_jws", mec_roaming::fuzzing::jws);
}

#[test]
fn roaming_message() {
    replay("roaming_message", mec_roaming::fuzzing::message);
}

#[test]
fn roaming_registry_update() {
    replay(
        "roaming_registry_update",
        mec_roaming::fuzzing::registry_update,
    );
}

#[test]
fn roaming_machines() {
    replay("roaming_machines", mec_roaming::fuzzing::machines);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn machines_never_panic_on_random_scripts(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        mec_roaming::fuzzing::machines(&data);
    }

    #[test]
    fn messages_and_updates_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        mec_roaming::fuzzing::message(&data);
        mec_roaming::fuzzing::registry_update(&data);
        mec_roaming::fuzzing::jws(&data);
    }
}
