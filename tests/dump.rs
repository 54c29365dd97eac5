//! Export and import: a store goes through a dump to the other engine and back with
//! identical dumps and the same answers; the committed dump of the format-3 fixture is
//! what this build writes and reads; a damaged dump is refused, by line, leaving nothing.

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

use std::path::{Path, PathBuf};

use permdb::{Db, Error, Options, StorageEngine};
use scenario::{Secrets, lasting_answers, populate};

fn dump_of(db: &Db) -> Vec<u8> {
    let mut out = Vec::new();
    db.export(&mut out).unwrap();
    out
}

fn import(dump: &[u8], dir: &Path, engine: StorageEngine) -> permdb::Result<Db> {
    let (options, _clock) = common::test_options();
    let options = options.backend(engine);
    Db::import(dir, &options, dump)?;
    Db::open_with(dir, options)
}

/// Asserts `got` equals `want`, naming the first answer that differs.
fn same(got: &serde_json::Value, want: &serde_json::Value) {
    let (Some(got), Some(want)) = (got.as_object(), want.as_object()) else {
        panic!("answers are objects");
    };
    for (name, w) in want {
        assert_eq!(got.get(name), Some(w), "answer {name} differs");
    }
    assert_eq!(got.len(), want.len());
}

fn other(engine: StorageEngine) -> StorageEngine {
    match engine {
        StorageEngine::Sled => StorageEngine::Redb,
        _ => StorageEngine::Sled,
    }
}

/// sled → dump → redb → dump (and the other way round, as the tests' engine says): the
/// dumps are identical, and every answer a dump carries is the one the store gave.
#[test]
fn a_store_goes_through_a_dump_to_the_other_engine_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let first = common::engine();
    let (options, _clock) = common::test_options();
    let db = Db::open_with(tmp.path().join("a"), options).unwrap();
    let secrets = populate(&db);
    let want = lasting_answers(&db, &secrets);
    let dump_a = dump_of(&db);
    let mut progress = Vec::new();
    let report = db
        .export_with_progress(std::io::sink(), |p| progress.push(p.step))
        .unwrap();
    assert_eq!(
        (
            report.users,
            report.teams,
            report.memberships,
            report.api_keys
        ),
        (3, 1, 2, 1)
    );
    assert_eq!(
        (report.schemas, report.collections, report.documents),
        (3, 4, 164)
    );
    assert_eq!(report.signing_keys, 2);
    assert_eq!(
        report.lines,
        dump_a.iter().filter(|b| **b == b'\n').count() as u64
    );
    assert!(
        progress.contains(&"collection app/notes".to_string()),
        "{progress:?}"
    );

    let b = import(&dump_a, &tmp.path().join("b"), other(first)).unwrap();
    assert_eq!(
        permdb::Db::stats(&b).unwrap().trees.len(),
        permdb::Db::stats(&db).unwrap().trees.len()
    );
    let dump_b = dump_of(&b);
    assert_eq!(
        String::from_utf8(dump_b.clone()).unwrap(),
        String::from_utf8(dump_a.clone()).unwrap(),
        "{first:?} -> dump -> {:?} -> dump",
        other(first)
    );
    same(&lasting_answers(&b, &secrets), &want);
    assert_eq!(b.verify().unwrap().problems, 0);
    let c = import(&dump_b, &tmp.path().join("c"), first).unwrap();
    assert_eq!(dump_of(&c), dump_a);

    // The changes feed starts again: a reader resyncs once, then follows; a cursor kept
    // from the old store (whatever it was) resyncs too.
    let notes = b.root().schema("app").collection("notes");
    let old_cursor = db.last_lsn();
    for since in [0, 1, old_cursor, old_cursor + 1000] {
        assert!(
            matches!(notes.changes(since, 10), Err(Error::ResyncRequired { .. })),
            "{since}"
        );
    }
    let from = b.last_lsn();
    notes
        .create(
            "new",
            serde_json::json!({"title": "after import", "n": 1}),
            None,
        )
        .unwrap();
    let changes = notes.changes(from, 10).unwrap();
    assert_eq!(changes.documents.len(), 1);
    // A number this store never gave resyncs too.
    assert!(matches!(
        notes.changes(b.last_lsn() + 5, 10),
        Err(Error::ResyncRequired { .. })
    ));
    // Sessions are not carried, and the new store's tokens are its own.
    let old_session = db.client().set_session(&secrets.session_a);
    assert!(old_session.is_ok());
    assert!(b.client().set_session(&secrets.session_a).is_err());
    assert!(b.client().set_jwt(&secrets.jwt_b).is_err());
}

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dump-v1.jsonl")
}

fn upgraded_fixture(engine: StorageEngine) -> (tempfile::TempDir, Db, Secrets) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    raw::copy_dir(&scenario::fixture_dir(engine).join("store"), &store);
    let (options, _clock) = common::test_options();
    let db = Db::open_with(&store, options.upgrade(true)).unwrap();
    let secrets = serde_json::from_slice(
        &std::fs::read(scenario::fixture_dir(engine).join("secrets.json")).unwrap(),
    )
    .unwrap();
    (tmp, db, secrets)
}

/// The dump of the upgraded format-3 sled fixture is committed (dump format version 1):
/// this build writes exactly it, reads it back into either engine, and writes it again.
/// A change to the dump format fails here; it must come with a new version.
#[test]
fn the_committed_dump_is_what_this_build_writes_and_reads() {
    let (_tmp, db, secrets) = upgraded_fixture(StorageEngine::Sled);
    let written = dump_of(&db);
    if std::env::var_os("PERMDB_WRITE_GOLDEN").is_some() {
        std::fs::write(golden(), &written).unwrap();
    }
    let committed = std::fs::read(golden()).unwrap();
    assert_eq!(
        String::from_utf8(written).unwrap(),
        String::from_utf8(committed.clone()).unwrap()
    );
    let tmp = tempfile::tempdir().unwrap();
    for engine in [StorageEngine::Sled, StorageEngine::Redb] {
        let dir = tmp.path().join(format!("{engine:?}"));
        let back = import(&committed, &dir, engine).unwrap();
        assert_eq!(dump_of(&back), committed, "{engine:?}");
        assert_eq!(
            lasting_answers(&back, &secrets),
            lasting_answers(&db, &secrets)
        );
    }
}

/// Each damage to a dump is refused with `InvalidDump` naming its line, and leaves no
/// store (nor the import's work directory) behind.
#[test]
fn a_damaged_dump_is_refused_by_line_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (options, _clock) = common::test_options();
    let db =
        Db::temporary_with(options.durability(permdb::Durability::Periodic { every_ms: 1000 }))
            .unwrap();
    drop(populate(&db));
    let dump = String::from_utf8(dump_of(&db)).unwrap();
    let lines: Vec<&str> = dump.lines().collect();
    let find = |kind: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&format!("{{\"type\":\"{kind}\"")))
            .unwrap()
    };
    let with = |at: usize, line: &str| {
        let mut l = lines.clone();
        l[at] = line;
        l.join("\n") + "\n"
    };
    let replace_in = |at: usize, from: &str, to: &str| {
        assert!(lines[at].contains(from), "{} has no {from}", lines[at]);
        with(at, &lines[at].replacen(from, to, 1))
    };
    let user = find("user");
    let doc = find("document");
    let note = lines
        .iter()
        .position(|l| l.contains("\"id\":\"note00\""))
        .unwrap();
    let coll = find("collection");
    let member = find("membership");
    let key = find("api_key");
    let cases: Vec<(String, usize, &str)> = vec![
        (with(user, "not json"), user, "expected"),
        (with(user, r#"{"type":"mystery"}"#), user, "unknown variant"),
        (
            replace_in(user, "\"email\":\"", "\"email\":\"@"),
            user,
            "email",
        ),
        (
            replace_in(user, "\"password_hash\":\"", "\"password_hash\":\"x"),
            user,
            "PHC",
        ),
        (
            replace_in(user, "\"blocked\":", "\"surprise\":1,\"blocked\":"),
            user,
            "unknown field",
        ),
        (
            replace_in(
                note,
                "\"permissions\":[",
                "\"permissions\":[\"read(\\\"nobody:x\\\")\",",
            ),
            note,
            "role",
        ),
        (
            replace_in(doc, "\"sequence\":", "\"sequence\":99999"),
            doc,
            "sequence",
        ),
        (
            {
                let at = lines[coll].find("\"next_sequence\":").unwrap();
                with(
                    coll,
                    &format!("{}\"next_sequence\":0}}", &lines[coll][..at]),
                )
            },
            coll,
            "next_sequence",
        ),
        (
            replace_in(member, "\"team_id\":\"", "\"team_id\":\"ghost"),
            member,
            "not in the dump",
        ),
        (
            replace_in(key, "\"secret_sha256\":\"", "\"secret_sha256\":\"zz"),
            key,
            "hex",
        ),
        // What an outside dump could plant, refused as a write refuses it.
        (
            replace_in(user, "$m=256,", "$m=4294967295,"),
            user,
            "password hash",
        ),
        (
            replace_in(doc, "\"data\":{", "\"data\":{\"$id\":\"spoofed\","),
            doc,
            "reserved",
        ),
        (
            replace_in(
                doc,
                "\"created_ms\":1704067200000",
                "\"created_ms\":9223372036854775807",
            ),
            doc,
            "out of range",
        ),
        (replace_in(key, "\"id\":\"", "\"id\":\"a."), key, "no '.'"),
        (
            replace_in(
                find("signing_key"),
                "\"created_ms\":1704067200",
                "\"created_ms\":4102444800",
            ),
            find("signing_key"),
            "after now",
        ),
        (
            with(0, r#"{"type":"header","format":"permdb-dump","version":2}"#),
            0,
            "version 2",
        ),
        (lines[..=doc].join("\n") + "\n", doc + 1, "cut short"),
        (
            {
                let mut l = lines.clone();
                let u = l.remove(user);
                l.insert(coll, u);
                l.join("\n") + "\n"
            },
            coll,
            "out of order",
        ),
    ];
    for (i, (text, line, says)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        let (options, _clock) = common::test_options();
        match Db::import(&dir, &options, text.as_bytes()) {
            Err(Error::InvalidDump { line: got, message }) => {
                assert_eq!(got, line as u64 + 1, "case {i}: {message}");
                assert!(message.contains(says), "case {i}: {message}");
            }
            other => panic!("case {i}: expected InvalidDump, got {other:?}"),
        }
        assert!(!dir.exists(), "case {i} left a store");
        assert!(!tmp.path().join(format!("case{i}.importing")).exists());
    }

    // A directory holding a store, or anything else, is not imported into.
    let full = tmp.path().join("full");
    drop(Db::open_with(&full, common::options()).unwrap());
    let err = Db::import(&full, &Options::new(), dump.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// A signing key imported with a date a little ahead of the clock (allowed: clocks
/// differ) does not undo a rotation: the new key is dated after it, and still signs
/// after a restart.
#[test]
fn a_rotation_after_importing_a_key_from_ahead_still_signs_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (options, _clock) = common::test_options();
    let db = Db::open_with(tmp.path().join("a"), options.clone()).unwrap();
    drop(populate(&db));
    let dump = String::from_utf8(dump_of(&db)).unwrap();
    // Twelve hours ahead of the importing clock (2024-01-01).
    let lines: Vec<String> = dump
        .lines()
        .map(|l| {
            if l.starts_with("{\"type\":\"signing_key\"") {
                l.replace(
                    "\"created_ms\":1704067200000",
                    "\"created_ms\":1704110400000",
                )
            } else {
                l.to_owned()
            }
        })
        .collect();
    let dir = tmp.path().join("b");
    Db::import(&dir, &options, (lines.join("\n") + "\n").as_bytes()).unwrap();
    let rotated = {
        let b = Db::open_with(&dir, options.clone()).unwrap();
        b.root().token_keys().rotate().unwrap()
    };
    let b = common::when_unlocked(|| Db::open_with(&dir, options.clone())).unwrap();
    let jwt = common::sign_in(&b, "a").account().create_jwt().unwrap();
    let claims = permdb::TokenClaims::decode_unverified(&jwt.jwt).unwrap();
    assert_eq!(
        claims.key_id, rotated,
        "the rotated key signs after a restart"
    );
}
