//! The document cache's memory estimate against the heap it really holds: the same
//! documents read through a store with the cache and through one without, the live heap
//! counted by a global allocator; the difference is what the cache holds. Its estimate
//! (`Db::cache_stats`) must not be below it (the bound would not hold) nor far above it
//! (the cache would hold much less than it is given). One test in this binary, so no
//! other test allocates while it counts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::alloc::System;

use cap::Cap;
use permdb::{CollectionSpec, Db, Durability, Options, Permission, Role, StorageEngine};
use serde_json::{Value, json};

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// Heap bytes a store with `cache_bytes` of document cache holds more after reading
/// `docs` twice than before, and what its cache stats say of its documents.
fn held(docs: &[Value], cache_bytes: usize) -> (isize, u64) {
    // redb in memory, no flushing thread: nothing allocates behind the test's back.
    let db = Db::temporary_with(
        Options::new()
            .backend(StorageEngine::Redb)
            .durability(Durability::Immediate)
            .document_cache_bytes(cache_bytes),
    )
    .unwrap();
    let c = common::create_collection(&db, "s", CollectionSpec::new("c", "C"));
    let perms = vec![
        Permission::read(Role::user("someone-with-a-long-user-id")),
        Permission::read(Role::team_role("t1", "admin")),
    ];
    let created = c
        .create_many(
            docs.iter()
                .enumerate()
                .map(|(i, d)| (format!("doc-{i:05}"), d.clone(), Some(perms.clone()))),
        )
        .unwrap();
    let seqs: Vec<u64> = created.iter().map(permdb::Document::sequence).collect();
    drop(created);
    // What else the reads leave on the heap (the engine's page cache) is the same with
    // and without the document cache: the difference between the two is the cache.
    let before = HEAP.allocated();
    drop(c.get_by_sequences(&seqs).unwrap());
    drop(c.get_by_sequences(&seqs).unwrap());
    let after = HEAP.allocated();
    let stats = db.cache_stats();
    drop(db);
    (after as isize - before as isize, stats.document_bytes)
}

#[test]
fn the_cache_estimates_its_memory_within_bounds() {
    let shapes: [(&str, Vec<Value>); 3] = [
        (
            "typical records",
            (0..2000)
                .map(|i| json!({"name": format!("name {i}"), "category": "c7", "n": i, "tags": ["a", "b"]}))
                .collect(),
        ),
        (
            "many tiny objects",
            (0..200)
                .map(|i| json!({"items": (0..200).map(|j| json!({"a": j + i})).collect::<Vec<_>>()}))
                .collect(),
        ),
        (
            "long strings",
            (0..500)
                .map(|i| json!({"text": "x".repeat(2000 + i)}))
                .collect(),
        ),
    ];
    for (shape, docs) in shapes {
        let (with, estimated) = held(&docs, 1 << 30);
        let (without, none) = held(&docs, 0);
        assert_eq!(none, 0);
        let real = (with - without).max(1) as f64;
        let ratio = estimated as f64 / real;
        eprintln!("{shape}: held {real} bytes, estimated {estimated} ({ratio:.2}x)");
        assert!(
            (1.0..=2.0).contains(&ratio),
            "{shape}: the cache holds {real} bytes, its estimate says {estimated}"
        );
    }
}
