//! The e-purse applet fed arbitrary scripts of APDUs, valid loads and purchases, power cuts
//! and lost responses; `epurse::fuzzing::check_purse` panics when an invariant breaks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = epurse::fuzzing::check_purse(data);
});
