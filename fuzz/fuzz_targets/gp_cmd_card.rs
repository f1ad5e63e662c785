//! Fuzz target `gp_cmd_card`: the checks live in `gp_scp::cmd::fuzzing::gp_cmd_card`, which
//! `gp-scp/tests/cmd_fuzz_corpus.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gp_scp::cmd::fuzzing::gp_cmd_card(data));
