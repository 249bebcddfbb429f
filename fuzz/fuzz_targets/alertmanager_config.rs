#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sightline_fuzz::targets::alertmanager_config(data));
