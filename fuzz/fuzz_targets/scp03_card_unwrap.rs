//! Fuzz target `scp03_card_unwrap`: the checks live in `gp_scp::fuzzing`, which
//! `gp-scp/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gp_scp::fuzzing::card_unwrap(
    gp_scp::fuzzing::Variant::Scp03 {
        i: 0x70,
        key_len: 16
    },
    data
));
