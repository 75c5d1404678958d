//! Fuzz target `saved_plan`: the body and its properties are `ovhform::fuzzing::saved_plan`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ovhform::fuzzing::saved_plan(data));
