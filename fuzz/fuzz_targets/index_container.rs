//! Stored index containers read back from arbitrary bytes: an error or a valid container.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = permdb::fuzzing::decode_container(data) {
        assert!(n >= 1 && n <= 65_536);
    }
});
