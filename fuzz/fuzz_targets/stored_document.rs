//! Stored document records read back from arbitrary bytes: an error, never a panic,
//! an abort on a huge length claim, or a stack overflow on deep nesting. A record that
//! decodes to a document must serialize, and re-encode (as a write would store it) to a
//! record that decodes back to the same record and document: the checks are
//! `DocumentTarget::check_stored_document` (src/fuzz_document.rs), which the corpus
//! replay (src/corpus_replay.rs) runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use permdb::fuzzing::DocumentTarget;

fuzz_target!(|data: &[u8]| {
    DocumentTarget::check_stored_document(data);
});
