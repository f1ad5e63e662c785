//! Fuzz target `initialize_update_response`: the checks live in `gp_scp::fuzzing`, which
//! `gp-scp/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gp_scp::fuzzing::initialize_update_response(data));
