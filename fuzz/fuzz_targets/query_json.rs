//! Query wire form: parsing never panics, and whatever parses prints to a form that
//! parses back to the same query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permdb::Query;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(q) = Query::from_json(text) {
            let again = Query::from_json(&q.to_json()).expect("printed form parses");
            assert_eq!(again, q);
        }
    }
});
