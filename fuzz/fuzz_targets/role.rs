//! Role strings: parsing never panics, and whatever parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permdb::Role;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(role) = s.parse::<Role>() {
            assert_eq!(role.to_string(), s);
            assert!(role.validate().is_ok());
        }
    }
});
