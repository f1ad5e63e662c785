//! Fuzz target `disk_recovery`: the checks live in `virtual_se::fuzzing::disk_recovery`, which
//! `virtual-se/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtual_se::fuzzing::disk_recovery(data));
