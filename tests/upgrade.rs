//! Stores written in the previous on-disk format upgrade and answer as before: the
//! fixtures under `tests/fixtures/format3-*` were written by `scenario::write_fixture`, run
//! by a format-3 build (commit e0b615c's tree with this scenario), with the answers the
//! store gave then.

#![cfg(feature = "format3-upgrade")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;
#[path = "common/raw.rs"]
mod raw;
#[path = "upgrade/scenario.rs"]
mod scenario;

use std::path::PathBuf;

use permdb::{Db, Query, StorageEngine};
use scenario::{Secrets, answers, fixture_dir};
use serde_json::{Value, json};

/// A copy of the fixture of `engine` in a temporary directory: (its parent, the store).
fn fixture_copy(engine: StorageEngine) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    raw::copy_dir(&fixture_dir(engine).join("store"), &store);
    (tmp, store)
}

fn recorded(engine: StorageEngine, file: &str) -> String {
    std::fs::read_to_string(fixture_dir(engine).join(file)).unwrap()
}

/// Asserts `got` equals `want`, naming the first answer that differs.
fn assert_same_answers(got: &Value, want: &Value) {
    let (Value::Object(got), Value::Object(want)) = (got, want) else {
        panic!("answers are objects");
    };
    for (name, w) in want {
        assert_eq!(got.get(name), Some(w), "answer {name} changed");
    }
    assert_eq!(got.len(), want.len(), "answers were added or lost");
}

/// Both fixtures: refused as they are, upgraded, then every answer is the one the store
/// gave before, the integrity check is clean, and the store takes writes.
#[test]
fn format3_stores_upgrade_and_answer_as_before() {
    for engine in [StorageEngine::Sled, StorageEngine::Redb] {
        let (tmp, store) = fixture_copy(engine);
        let (options, _clock) = common::test_options();
        match Db::open_with(&store, options.clone()) {
            Err(permdb::Error::UpgradeRequired { found, expected }) => {
                assert_eq!((found, expected), (3, 4));
            }
            other => panic!("{engine:?}: a format-3 store must be refused, got {other:?}"),
        }
        let before = raw::records(&store);
        let mut seen = Vec::new();
        let report = Db::upgrade_with_progress(&store, &options, |p| seen.push(p.records)).unwrap();
        assert_eq!((report.from, report.to), (3, 4));
        assert_eq!(
            report.records,
            before.len() as u64 - 1,
            "every record but the version"
        );
        assert!(
            report.recoded > 0 && report.recoded < report.records,
            "{report:?}"
        );
        assert!(seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() == Some(&report.records));
        let kept = tmp.path().join("store.format3");
        assert_eq!(report.kept.as_deref(), Some(kept.as_path()));
        assert_eq!(
            raw::records(&kept),
            before,
            "the old store is kept untouched"
        );

        let db = Db::open_with(&store, options.clone()).unwrap();
        let integrity = db.verify().unwrap();
        assert_eq!(integrity.problems, 0, "{engine:?}: {:?}", integrity.details);
        let secrets: Secrets = serde_json::from_str(&recorded(engine, "secrets.json")).unwrap();
        let want: Value = serde_json::from_str(&recorded(engine, "answers.json")).unwrap();
        assert_same_answers(&answers(&db, &secrets), &want);

        let notes = db.root().schema("app").collection("notes");
        notes
            .create(
                "after",
                json!({"title": "after the upgrade", "n": 99}),
                None,
            )
            .unwrap();
        assert_eq!(
            notes
                .find(&[Query::search("title", "upgrade")])
                .unwrap()
                .total,
            1
        );
        drop((notes, db));
        let again = Db::upgrade(&store, &options).unwrap();
        assert_eq!((again.from, again.to, again.kept), (4, 4, None));
    }
}

/// `Options::upgrade` upgrades on open; without it nothing is written.
#[test]
fn opening_with_upgrade_upgrades() {
    let (tmp, store) = fixture_copy(common::engine());
    let (options, _clock) = common::test_options();
    let before = raw::records(&store);
    assert!(Db::open_with(&store, options.clone()).is_err());
    assert_eq!(
        raw::records(&store),
        before,
        "a refused open writes nothing"
    );
    let db = Db::open_with(&store, options.upgrade(true)).unwrap();
    assert_eq!(
        db.root()
            .schema("db")
            .collection("birthdays")
            .count(&[])
            .unwrap(),
        3
    );
    assert!(tmp.path().join("store.format3").is_dir());
}

/// An upgrade cut short is taken up again: a leftover copy is replaced, and a copy that
/// was complete when only the last rename was missing is put in place.
#[test]
fn an_upgrade_cut_short_resumes() {
    let (tmp, store) = fixture_copy(common::engine());
    let (options, _clock) = common::test_options();
    let fresh = tmp.path().join("store.upgrading");
    std::fs::create_dir_all(fresh.join("junk")).unwrap();
    std::fs::write(fresh.join("junk/file"), b"left by a crash").unwrap();
    Db::upgrade(&store, &options).unwrap();
    assert!(!fresh.exists());
    let upgraded = raw::records(&store);

    // As if the process died between the two renames: opening makes no new store in
    // the data's place, but asks for the upgrade (or finishes it, when told to).
    std::fs::rename(&store, &fresh).unwrap();
    match Db::open_with(&store, options.clone()) {
        Err(permdb::Error::UpgradeRequired { .. }) => {}
        other => panic!("expected UpgradeRequired, got {other:?}"),
    }
    assert!(!store.exists(), "opening made a store in the data's place");
    // Something that made a store in the data's place meanwhile is refused by name.
    std::fs::create_dir_all(&store).unwrap();
    drop(Db::open_with(&store, common::options()).err());
    std::fs::remove_dir_all(&store).unwrap();
    let placeholder = tmp.path().join("placeholder");
    drop(Db::open_with(&placeholder, common::options()).unwrap());
    std::fs::rename(&placeholder, &store).unwrap();
    let refused = Db::open_with(&store, options.clone().upgrade(true)).unwrap_err();
    assert!(
        refused.to_string().contains("an upgrade was cut short"),
        "{refused}"
    );
    std::fs::remove_dir_all(&store).unwrap();
    drop(Db::open_with(&store, options.clone().upgrade(true)).unwrap());
    assert_eq!(raw::records(&store).len(), upgraded.len());
    std::fs::rename(&store, &fresh).unwrap();
    let report = Db::upgrade(&store, &options).unwrap();
    assert_eq!((report.from, report.to), (3, 4));
    assert_eq!(raw::records(&store), upgraded);
    let db = Db::open_with(&store, options).unwrap();
    assert_eq!(
        db.root()
            .schema("db")
            .collection("birthdays")
            .count(&[])
            .unwrap(),
        3
    );
}

/// A damaged record stops the upgrade with `Corrupt`, naming it, and leaves the store as
/// it was; a second upgrade with the earlier backup still present is refused.
#[test]
fn a_damaged_record_stops_the_upgrade_and_changes_nothing() {
    let (tmp, store) = fixture_copy(common::engine());
    let (options, _clock) = common::test_options();
    let before = raw::records(&store);
    let (tree, key, value) = before
        .iter()
        .find(|(tree, key, _)| tree == "auth" && key.first() == Some(&b'u'))
        .unwrap()
        .clone();
    let mut bad = value.clone();
    bad[0] ^= 0x40;
    raw::write_raw(&store, &tree, &key, &bad);
    let damaged = raw::records(&store);
    let err = Db::upgrade(&store, &options).unwrap_err();
    assert!(
        matches!(err, permdb::Error::Corrupt { .. }) && err.to_string().contains("auth record"),
        "{err}"
    );
    assert_eq!(raw::records(&store), damaged);
    assert!(!tmp.path().join("store.format3").exists());
    assert!(
        !tmp.path().join("store.upgrading").exists() || {
            // The partial copy may stay; it is replaced by the next attempt.
            true
        }
    );

    raw::write_raw(&store, &tree, &key, &value);
    Db::upgrade(&store, &options).unwrap();
    let (_tmp2, other) = fixture_copy(common::engine());
    let target = tmp.path().join("store");
    std::fs::remove_dir_all(&target).unwrap();
    std::fs::rename(&other, &target).unwrap();
    let err = Db::upgrade(&target, &options).unwrap_err();
    assert!(err.to_string().contains("store.format3 exists"), "{err}");
}
