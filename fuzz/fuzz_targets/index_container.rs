//! Stored index containers read back from arbitrary bytes: an error, or a non-empty set
//! of 16-bit values that the format's rules also read from the bytes, that `len()` counts
//! right, and that re-encodes in the smallest form to bytes decoding to the same set.
//! The checks are `DocumentTarget::check_container` (src/fuzz_document.rs), which the
//! corpus replay (src/corpus_replay.rs) runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permdb::fuzzing::DocumentTarget;

fuzz_target!(|data: &[u8]| {
    DocumentTarget::check_container(data);
});
