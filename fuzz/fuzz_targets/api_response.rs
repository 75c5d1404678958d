//! Fuzz target `api_response`: the body and its properties are `ovhform::fuzzing::api_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ovhform::fuzzing::api_response(data));
