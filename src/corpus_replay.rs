//! Replays the committed fuzz corpora (fuzz/corpus/*) through the same checks the
//! fuzz targets make, so `cargo test` catches a regression on any input fuzzing once found.

use std::path::PathBuf;

use crate::perm::{Permission, Role};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "empty corpus {}", dir.display());
    inputs
}

#[test]
fn role_corpus() {
    for input in corpus("role") {
        if let Ok(s) = std::str::from_utf8(&input) {
            if let Ok(role) = s.parse::<Role>() {
                assert_eq!(role.to_string(), s);
            }
        }
    }
}

#[test]
fn permission_corpus() {
    for input in corpus("permission") {
        if let Ok(s) = std::str::from_utf8(&input) {
            if let Ok(p) = s.parse::<Permission>() {
                assert_eq!(p.to_string(), s);
            }
        }
    }
}

#[test]
fn stored_document_corpus() {
    for input in corpus("stored_document") {
        let record: crate::Result<crate::document::DocRecord> =
            crate::store::codec::decode(&input, || "doc".into());
        if let Ok(record) = record {
            let _ = record.into_document(1, "s", "c", 32, || "doc".into());
        }
    }
}

#[test]
fn index_container_corpus() {
    for input in corpus("index_container") {
        if let Ok(values) = crate::index::decode_container_bytes(&input) {
            assert!(!values.is_empty());
        }
    }
}

#[test]
fn token_corpus() {
    use crate::token::{PublicKey, PublicKeys, TokenVerifier};
    // The keys of docs/TOKEN.md's test vectors, as the fuzz target uses them.
    let keys = PublicKeys {
        store_id: "oKGio6SlpqeoqaqrrK2urw".into(),
        project: "default".into(),
        keys: vec![PublicKey {
            key_id: 0x0123_4567_89ab_cdef,
            public_key: "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ".into(),
        }],
    };
    let verifier = TokenVerifier::new(&keys).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap();
    let mut verified = 0;
    for input in corpus("token") {
        if let Ok(text) = std::str::from_utf8(&input) {
            if verifier.verify(text, now).is_ok() {
                verified += 1;
            }
        }
    }
    assert!(verified >= 2, "the two vector tokens verify");
}

#[test]
fn query_json_corpus() {
    use crate::query::Query;
    for input in corpus("query_json") {
        if let Ok(text) = std::str::from_utf8(&input) {
            if let Ok(q) = Query::from_json(text) {
                assert_eq!(Query::from_json(&q.to_json()).unwrap(), q);
            }
        }
    }
}

#[test]
fn document_json_corpus() {
    let target = crate::fuzzing::DocumentTarget::new().unwrap();
    for input in corpus("document_json") {
        target.check(&input);
    }
}
