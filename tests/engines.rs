//! The two storage engines side by side, whatever `PERMDB_TEST_BACKEND` says: a store
//! keeps the engine it was made with, a directory holding both is refused, and redb's
//! `Periodic` durability closes cleanly (the file can be opened again at once, with
//! every write in it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::Path;

use permdb::{CollectionSpec, Db, Durability, Error, Options, StorageEngine};
use serde_json::json;

fn open(dir: &Path, engine: StorageEngine) -> permdb::Result<Db> {
    Db::open_with(dir, Options::new().backend(engine))
}

fn write_notes(db: &Db, from: u32, to: u32) {
    let root = db.root();
    if root.schemas().get("s").is_err() {
        root.schemas().create("s", "S").unwrap();
        root.schema("s")
            .collections()
            .create(CollectionSpec::new("c", "C"))
            .unwrap();
    }
    let c = root.schema("s").collection("c");
    for i in from..to {
        c.create(&format!("n{i}"), json!({"i": i}), None).unwrap();
    }
}

fn count(db: &Db) -> u64 {
    db.root().schema("s").collection("c").count(&[]).unwrap()
}

#[test]
fn a_store_keeps_the_engine_it_was_made_with() {
    let tmp = tempfile::tempdir().unwrap();
    for (made, asked) in [
        (StorageEngine::Sled, StorageEngine::Redb),
        (StorageEngine::Redb, StorageEngine::Sled),
    ] {
        let dir = tmp.path().join(format!("{made:?}"));
        write_notes(&open(&dir, made).unwrap(), 0, 3);
        // Opened asking for the other engine: the store's own, with its documents (a
        // wrong guess would show a new, empty store).
        let db = common::when_unlocked(|| open(&dir, asked)).unwrap();
        assert_eq!(count(&db), 3, "{made:?} opened as {asked:?}");
        drop(db);
        let redb_file = dir.join("permdb.redb").exists();
        assert_eq!(redb_file, made == StorageEngine::Redb);
    }
}

#[test]
fn a_directory_holding_both_engines_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("both");
    write_notes(&open(&dir, StorageEngine::Sled).unwrap(), 0, 1);
    std::fs::write(dir.join("permdb.redb"), b"").unwrap();
    for engine in [StorageEngine::Sled, StorageEngine::Redb] {
        match common::when_unlocked(|| open(&dir, engine)) {
            Err(Error::Storage { message, .. }) => {
                assert!(
                    message.contains("both a redb and a sled store"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn redb_periodic_durability_closes_cleanly_and_reopens_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("periodic");
    let options = || {
        Options::new()
            .backend(StorageEngine::Redb)
            .durability(Durability::Periodic { every_ms: 5 })
    };
    for round in 0..20u32 {
        // The flusher commits every 5 ms, so a close often meets one in flight.
        let db = Db::open_with(&dir, options()).unwrap();
        write_notes(&db, round * 10, round * 10 + 10);
        db.flush().unwrap();
        drop(db);
    }
    let db = Db::open_with(&dir, options()).unwrap();
    assert_eq!(count(&db), 200);
}

/// `Db::compact` shrinks a redb store written by many commits and then thinned out by
/// deletes, keeps every document, refuses a store that is open, and does nothing to a
/// sled store (which compacts as it goes).
#[test]
fn compact_shrinks_a_redb_store_and_keeps_every_document() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("redb");
    let db = open(&dir, StorageEngine::Redb).unwrap();
    write_notes(&db, 0, 3000);
    let c = db.root().schema("s").collection("c");
    for i in (0..3000).filter(|i| i % 3 != 0) {
        c.delete(&format!("n{i}")).unwrap();
    }
    match Db::compact(&dir) {
        Err(Error::Storage { message, .. }) => {
            assert!(message.contains("open elsewhere"), "{message}")
        }
        other => panic!("compacting an open store: {other:?}"),
    }
    drop((c, db));
    // An upgrade cut short beside it: the store in `dir` is not the one to compact.
    let beside = |suffix: &str| tmp.path().join(format!("redb{suffix}"));
    std::fs::create_dir(beside(".upgrading")).unwrap();
    std::fs::create_dir(beside(".format3")).unwrap();
    assert!(matches!(
        common::when_unlocked(|| Db::compact(&dir)),
        Err(Error::UpgradeRequired { .. })
    ));
    std::fs::remove_dir(beside(".upgrading")).unwrap();
    std::fs::remove_dir(beside(".format3")).unwrap();
    let report = common::when_unlocked(|| Db::compact(&dir)).unwrap();
    assert_eq!(report.engine, StorageEngine::Redb);
    let (before, after) = report.bytes.unwrap();
    let on_disk = std::fs::metadata(dir.join("permdb.redb")).unwrap().len();
    assert_eq!(after, on_disk);
    eprintln!("compact: {before} -> {after}");
    assert!(after * 2 < before, "{before} -> {after}");
    let db = open(&dir, StorageEngine::Redb).unwrap();
    assert_eq!(count(&db), 1000);
    let c = db.root().schema("s").collection("c");
    assert_eq!(c.get("n2997").unwrap().data()["i"], 2997);
    assert!(c.get("n2998").is_err());
    assert_eq!(db.verify().unwrap().problems, 0);
    // Writes go on after a compaction.
    write_notes(&db, 3000, 3010);
    assert_eq!(count(&db), 1010);
    drop(db);

    let sled = tmp.path().join("sled");
    write_notes(&open(&sled, StorageEngine::Sled).unwrap(), 0, 10);
    let report = common::when_unlocked(|| Db::compact(&sled)).unwrap();
    assert_eq!((report.engine, report.bytes), (StorageEngine::Sled, None));
    assert!(matches!(
        Db::compact(tmp.path().join("nothing")),
        Err(Error::InvalidArgument(_))
    ));
}
