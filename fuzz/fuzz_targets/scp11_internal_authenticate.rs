//! Fuzz target `scp11_internal_authenticate`: the checks live in `gp_scp::fuzzing`, which
//! `gp-scp/tests/fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gp_scp::fuzzing::internal_authenticate_request(data));
