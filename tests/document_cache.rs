//! The document cache (`Options::document_cache_bytes`) never answers with a document
//! as it was before a write that returned: not its old data, not its old permissions, not
//! after its delete; on every read path (get, get by sequence, find, count, cursors), one
//! thread or many.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use permdb::{Client, Collection, Db, Error, Permission, Query, Role};
use serde_json::json;

fn birthdays(client: &Client) -> Collection {
    client.schema("db").collection("birthdays")
}

/// What user `client` reads of `doc1` on each read path: `Some(name)` when every path
/// finds it, `None` when none does; a disagreement between paths fails the test.
fn seen(client: &Client, sequence: u64) -> Option<String> {
    let coll = birthdays(client);
    let by_id = match coll.get("doc1") {
        Ok(doc) => Some(doc.data()["name"].as_str().unwrap().to_owned()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => panic!("get: {e}"),
    };
    let by_sequence = match coll.get_by_sequence(sequence) {
        Ok(doc) => Some(doc.data()["name"].as_str().unwrap().to_owned()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => panic!("get_by_sequence: {e}"),
    };
    let found = coll.find(&[Query::equal("$id", ["doc1"])]).unwrap();
    let in_find = found
        .documents
        .iter()
        .map(|d| d.data()["name"].as_str().unwrap().to_owned())
        .next();
    assert_eq!(found.total, u64::from(in_find.is_some()));
    let all = coll.find(&[]).unwrap();
    let in_page = all
        .documents
        .iter()
        .find(|d| d.id() == "doc1")
        .map(|d| d.data()["name"].as_str().unwrap().to_owned());
    let counted = coll.count(&[Query::equal("$id", ["doc1"])]).unwrap();
    assert_eq!(counted, u64::from(in_find.is_some()));
    assert_eq!(
        (&by_sequence, &in_find, &in_page),
        (&by_id, &by_id, &by_id),
        "read paths disagree"
    );
    by_id
}

#[test]
fn a_write_is_seen_on_every_read_path_after_the_document_was_cached() {
    let (options, _) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    let (a, b) = (common::sign_in(&db, "a"), common::sign_in(&db, "b"));
    let root = birthdays(&db.root());
    let sequence = root.get("doc1").unwrap().sequence();
    // Read (and so cached) through every path, by the user and by root.
    assert_eq!(seen(&a, sequence).as_deref(), Some("Kevin"));
    assert_eq!(seen(&b, sequence), None);
    assert!(db.cache_stats().documents > 0, "{:?}", db.cache_stats());

    // New data: every path answers it.
    root.update("doc1", json!({"name": "Kev"}), None).unwrap();
    assert_eq!(seen(&a, sequence).as_deref(), Some("Kev"));

    // Read moved from user-a to user-b: user-a's cached reads must not leak it.
    root.update(
        "doc1",
        json!({}),
        Some(vec![Permission::read(Role::user("user-b"))]),
    )
    .unwrap();
    assert_eq!(seen(&a, sequence), None);
    assert_eq!(seen(&b, sequence).as_deref(), Some("Kev"));

    // A cursor at a document the client may no longer read is refused.
    let page = birthdays(&b).find(&[]).unwrap();
    assert_eq!(page.documents.len(), 2);
    assert!(matches!(
        birthdays(&a).find(&[Query::cursor_after("doc1")]),
        Err(Error::NotFound { .. })
    ));

    // Deleted: gone from every path, for everyone.
    root.delete("doc1").unwrap();
    assert_eq!(seen(&b, sequence), None);
    assert_eq!(seen(&db.root(), sequence), None);
}

#[test]
fn a_store_without_a_document_cache_answers_the_same() {
    let (options, _) = common::test_options();
    let db = Db::temporary_with(options.document_cache_bytes(0)).unwrap();
    common::seed(&db);
    let a = common::sign_in(&db, "a");
    let root = birthdays(&db.root());
    let sequence = root.get("doc1").unwrap().sequence();
    assert_eq!(seen(&a, sequence).as_deref(), Some("Kevin"));
    root.update(
        "doc1",
        json!({}),
        Some(vec![Permission::read(Role::user("user-b"))]),
    )
    .unwrap();
    assert_eq!(seen(&a, sequence), None);
    let stats = db.cache_stats();
    assert_eq!((stats.documents, stats.document_bytes), (0, 0));
}

/// A writer opens `doc1` to user-a and closes it again, round after round, and says
/// which round it has closed once the closing write returned; readers as user-a, getting
/// and finding all the while, never read a round already closed when their read began.
#[test]
fn no_reader_gets_a_document_its_permission_was_taken_from_after_the_write_returned() {
    let (options, _) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    let a = common::sign_in(&db, "a");
    let root = birthdays(&db.root());
    let sequence = root.get("doc1").unwrap().sequence();
    // Round 0, closed: the seed's version (open to user-a) is gone before readers start.
    root.update(
        "doc1",
        json!({"round": 0, "open": false}),
        Some(vec![Permission::read(Role::user("user-b"))]),
    )
    .unwrap();
    let closed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (coll, closed, stop) = (birthdays(&a), Arc::clone(&closed), Arc::clone(&stop));
            thread::spawn(move || {
                let mut open_reads = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let before = closed.load(Ordering::Acquire);
                    let got = if r == 0 {
                        coll.get_by_sequence(sequence).ok()
                    } else {
                        coll.find(&[]).unwrap().documents.into_iter().next()
                    };
                    if let Some(doc) = got {
                        let round = doc.data()["round"].as_u64().unwrap();
                        assert!(
                            round > before,
                            "reader {r} got round {round}, closed before its read began ({before})"
                        );
                        assert_eq!(doc.data()["open"], json!(true), "reader {r}");
                        open_reads += 1;
                    }
                }
                open_reads
            })
        })
        .collect();
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_millis(1500) {
        round += 1;
        root.update(
            "doc1",
            json!({"round": round, "open": true}),
            Some(vec![Permission::read(Role::user("user-a"))]),
        )
        .unwrap();
        // Let the readers read (and cache) the open round.
        thread::sleep(Duration::from_micros(200));
        root.update(
            "doc1",
            json!({"round": round, "open": false}),
            Some(vec![Permission::read(Role::user("user-b"))]),
        )
        .unwrap();
        closed.store(round, Ordering::Release);
    }
    stop.store(true, Ordering::Release);
    let reads: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    eprintln!("{round} rounds, open reads per reader {reads:?}");
    assert!(reads.iter().all(|&n| n > 0), "{reads:?} in {round} rounds");
}

/// Every other write that changes a cached document: a user's deletion (which revokes
/// their grants; a new account with the same id must not read it), an attribute's
/// deletion (which rewrites the documents), a transaction, a collection's deletion.
#[test]
fn other_writes_to_cached_documents_are_seen_too() {
    let (options, _) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    let root = db.root();
    root.schema("db")
        .collections()
        .create_attribute("birthdays", permdb::AttributeSpec::string("note", 64))
        .unwrap();
    let root_docs = birthdays(&root);
    root_docs
        .update("doc1", json!({"note": "cached"}), None)
        .unwrap();
    let a = common::sign_in(&db, "a");
    let sequence = root_docs.get("doc1").unwrap().sequence();
    assert_eq!(seen(&a, sequence).as_deref(), Some("Kevin"));
    assert_eq!(root_docs.get("doc1").unwrap().data()["note"], "cached");

    // The attribute goes: so does its value in the cached document.
    root.schema("db")
        .collections()
        .delete_attribute("birthdays", "note")
        .unwrap();
    assert!(root_docs.get("doc1").unwrap().get("note").is_none());
    assert!(birthdays(&a).get("doc1").unwrap().get("note").is_none());

    // A transaction's write.
    let mut tx = root.transaction();
    tx.collection("db", "birthdays")
        .update("doc1", json!({"name": "Kevin T."}), None)
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(seen(&a, sequence).as_deref(), Some("Kevin T."));

    // user-a is deleted and an account of the same id made again: it reads nothing.
    root.users().delete("user-a").unwrap();
    db.client()
        .account()
        .create("user-a", "a2@example.com", "password-a2", None)
        .unwrap();
    let session = db
        .client()
        .account()
        .create_email_password_session("a2@example.com", "password-a2")
        .unwrap();
    let new_a = db.client().set_session(&session.secret).unwrap();
    assert_eq!(seen(&new_a, sequence), None);
    assert_eq!(root_docs.get("doc1").unwrap().permissions(), &[]);

    // The collection goes: its cached documents with it.
    root.schema("db").collections().delete("birthdays").unwrap();
    assert!(matches!(root_docs.get("doc1"), Err(Error::NotFound { .. })));
    assert!(matches!(
        root_docs.get_by_sequence(sequence),
        Err(Error::NotFound { .. })
    ));
}

/// A document that no longer decodes (here: opened with a smaller `max_depth` than it
/// was written with) answers `NotFound` to a client that may not read it, as a missing
/// one does, and `Corrupt` only to one that may: its grants are checked before the rest
/// of it is decoded, on every read path.
#[test]
fn a_document_that_fails_to_decode_is_not_told_to_a_client_that_may_not_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (options, _) = common::test_options();
    {
        let db = Db::open_with(&dir, options.clone()).unwrap();
        common::seed(&db);
        birthdays(&db.root())
            .update("doc1", json!({"deep": {"deeper": [1]}}), None)
            .unwrap();
        db.flush().unwrap();
    }
    let shallow = permdb::Limits {
        max_depth: 2,
        ..permdb::Limits::default()
    };
    let db =
        common::when_unlocked(|| Db::open_with(&dir, options.clone().limits(shallow))).unwrap();
    let (a, b) = (common::sign_in(&db, "a"), common::sign_in(&db, "b"));
    let sequence = birthdays(&db.root()).get("doc2").unwrap().sequence() - 1;
    let (hidden, readable) = (birthdays(&b), birthdays(&a));
    assert!(matches!(hidden.get("doc1"), Err(Error::NotFound { .. })));
    assert!(matches!(
        hidden.get_by_sequence(sequence),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        hidden.find(&[Query::cursor_after("doc1")]),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(hidden.find(&[]).unwrap().documents.len(), 1);
    assert!(matches!(readable.get("doc1"), Err(Error::Corrupt { .. })));
    assert!(matches!(
        readable.get_by_sequence(sequence),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(readable.find(&[]), Err(Error::Corrupt { .. })));
}

/// Only what a page returns (and a cursor's document, when read) fills the cache: a filter's
/// misses, an offset's skipped documents, a sort's and a count's reads do not push the
/// pages out.
#[test]
fn only_what_a_page_returns_is_kept() {
    let db = common::temporary().unwrap();
    let c = common::create_collection(&db, "s", permdb::CollectionSpec::new("c", "C"));
    c.create_many((0..500).map(|i| (format!("d{i:03}"), json!({"n": i}), None)))
        .unwrap();
    // The writes read nothing into the cache.
    assert_eq!(db.cache_stats().documents, 0);
    let kept = || db.cache_stats().documents;
    // A filter no index answers: 500 documents decoded, one returned.
    let found = c.find(&[Query::greater_than("n", 498)]).unwrap();
    assert_eq!((found.documents.len(), found.total), (1, 1));
    assert_eq!(kept(), 1);
    // An offset: the skipped documents are not kept.
    let page = c.find(&[Query::offset(400), Query::limit(3)]).unwrap();
    assert_eq!(page.documents.len(), 3);
    assert_eq!(kept(), 4);
    // A sort and a count read every document and keep none.
    c.find(&[Query::order_desc("n"), Query::limit(5)]).unwrap();
    assert_eq!(c.count(&[Query::less_than("n", 250)]).unwrap(), 250);
    assert_eq!(kept(), 4);
    // The page after a cursor is kept (in `$sequence` order the cursor's document is
    // not read: its sequence is enough).
    c.find(&[Query::cursor_after("d100"), Query::limit(2)])
        .unwrap();
    assert_eq!(kept(), 6);
    // In another order it is read, and kept.
    c.find(&[
        Query::order_desc("n"),
        Query::cursor_after("d300"),
        Query::limit(1),
    ])
    .unwrap();
    assert_eq!(kept(), 7);
}
