//! Fuzz target `sim_request`: the body and its properties are `ovhform::fuzzing::sim_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ovhform::fuzzing::sim_request(data));
