//! Dumps read by `permdb import`: arbitrary bytes as a dump, into a temporary store. An
//! error naming a line, never a panic, an abort or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    permdb::fuzzing::import_dump(data);
});
