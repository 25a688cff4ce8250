#![no_main]

libfuzzer_sys::fuzz_target!(|input: gauntlet_fuzz::DecideInput| gauntlet_fuzz::decide(&input));
