//! Fuzz target `vpcd_frames`: the checks live in `virtual_se::fuzzing::vpcd_frames`, which
//! `virtual-se/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtual_se::fuzzing::vpcd_frames(data));
