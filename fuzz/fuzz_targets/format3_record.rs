//! Records of a format-3 store, as `permdb upgrade` reads them: arbitrary bytes as a
//! record of the kind the first byte names. An error, never a panic or an abort on a
//! huge length claim; a record accepted is re-encoded to bytes that read back as written.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((kind, record)) = data.split_first() {
        permdb::fuzzing::recode_format3(*kind, record);
    }
});
