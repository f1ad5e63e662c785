//! Fuzz target `scp02_card_unwrap`: the checks live in `gp_scp::fuzzing`, which
//! `gp-scp/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gp_scp::fuzzing::card_unwrap(
    gp_scp::fuzzing::Variant::Scp02(0x55),
    data
));
