//! Fuzz target `records`: the body and its properties are `ovhform::fuzzing::records`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ovhform::fuzzing::records(data));
