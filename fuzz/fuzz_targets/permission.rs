//! Permission strings: parsing never panics, and whatever parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permdb::Permission;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = s.parse::<Permission>() {
            assert_eq!(p.to_string(), s);
        }
    }
});
