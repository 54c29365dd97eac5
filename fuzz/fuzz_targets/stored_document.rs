//! Stored document records read back from arbitrary bytes: an error, never a panic,
//! an abort on a huge length claim, or a stack overflow on deep nesting.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = permdb::fuzzing::decode_document(data) {
        // A decoded document always serializes.
        let _ = serde_json::to_string(&doc);
    }
});
