//! Fuzz target `roaming_machines`: the checks live in `mec_roaming::fuzzing::machines`, which
//! `mec-roaming/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mec_roaming::fuzzing::machines(data));
