//! Datetime values (documents and queries): parsing never panics, what parses normalizes
//! to Appwrite's stored form, and the stored form is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permdb::fuzzing::normalize_datetime;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(stored) = normalize_datetime(s) {
            assert_eq!(stored.len(), "2012-02-03T00:00:00.000+00:00".len(), "{stored}");
            assert!(stored.ends_with("+00:00"), "{stored}");
            assert_eq!(normalize_datetime(&stored).as_deref(), Ok(stored.as_str()));
        }
    }
});
