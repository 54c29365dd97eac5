//! Messages a realtime client sends (crates/permdb-server/src/realtime): parsing a frame,
//! its subscription rows, channels and queries never panics, and what parses keeps the
//! bounds (ids of 1 to 36 characters, 1 to 64 channels, 42 event names a change).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        permdb_server::fuzzing::realtime_message(text);
    }
});
