//! Fuzz target `command_apdu`: the checks live in `apdu_codec::fuzzing::command_apdu`, which
//! `apdu-codec/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apdu_codec::fuzzing::command_apdu(data));
