#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_tests::fuzz_checks::key_file(data));
