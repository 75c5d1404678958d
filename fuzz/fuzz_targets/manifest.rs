//! Fuzz target `manifest`: the body and its properties are `ovhform::fuzzing::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ovhform::fuzzing::manifest(data));
