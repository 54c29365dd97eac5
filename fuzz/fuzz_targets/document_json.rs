//! Documents from clients: any JSON is stored and read back whole, or refused as bad
//! input (never a panic, a storage error, or a changed document).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use permdb::fuzzing::DocumentTarget;

static TARGET: OnceLock<DocumentTarget> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    TARGET
        .get_or_init(|| DocumentTarget::new().expect("temporary store"))
        .check(data);
});
