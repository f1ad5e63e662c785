//! Fuzz target `card_apdus`: the whole virtual card driven by arbitrary APDU sequences, with
//! and without an open SCP03 session. The checks live in `virtual_se::card::fuzz::card_apdus`,
//! which `virtual-se/tests/card_fuzz.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtual_se::card::fuzz::card_apdus(data));
