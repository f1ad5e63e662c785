//! Fuzz target `scp11_cert_chain`: SD certificate chain verification (X.509 and
//! GlobalPlatform formats). The check lives in `gp_scp::fuzzing::cert_chain`, which
//! `gp-scp/tests/cert_chain.rs` also runs over the committed corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gp_scp::fuzzing::cert_chain(data));
