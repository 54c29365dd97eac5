//! The changes feed (`Collection::changes`): what each client is given after a number,
//! checked against `find`; resync cases; retention; reopen; and its work counter.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::BTreeMap;

use permdb::{Collection, CollectionSpec, Db, Error, Permission, Query, Role};
use proptest::prelude::*;
use serde_json::{Value, json};

fn setup_with(options: permdb::Options) -> (Db, Collection) {
    let db = Db::temporary_with(options).unwrap();
    let spec = CollectionSpec::new("notes", "Notes")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    let notes = common::create_collection(&db, "app", spec);
    for letter in ["a", "b", "c"] {
        db.client()
            .account()
            .create(
                &format!("user-{letter}"),
                &format!("{letter}@example.com"),
                &format!("password-{letter}"),
                None,
            )
            .unwrap();
    }
    (db, notes)
}

fn setup() -> (Db, Collection) {
    setup_with(common::test_options().0)
}

fn notes_of(client: &permdb::Client) -> Collection {
    client.schema("app").collection("notes")
}

fn read(user: &str) -> Vec<Permission> {
    vec![Permission::read(Role::user(user))]
}

fn found(c: &Collection) -> BTreeMap<String, Value> {
    c.find(&[Query::limit(5000)])
        .unwrap()
        .documents
        .into_iter()
        .map(|d| (d.id().to_owned(), Value::Object(d.data().clone())))
        .collect()
}

/// A replica following the feed: resyncs with `find` when told to.
struct Replica {
    docs: BTreeMap<String, Value>,
    since: u64,
    resyncs: u32,
}

impl Replica {
    fn new() -> Replica {
        Replica {
            docs: BTreeMap::new(),
            since: 0,
            resyncs: 0,
        }
    }

    fn catch_up(&mut self, db: &Db, c: &Collection, limit: usize) {
        loop {
            match c.changes(self.since, limit) {
                Ok(page) => {
                    // (number, id, the data; `None` for a gone id), applied in order.
                    let mut entries: Vec<(u64, String, Option<Value>)> = Vec::new();
                    for (lsn, d) in page.documents {
                        let data = Value::Object(d.data().clone());
                        entries.push((lsn, d.id().to_owned(), Some(data)));
                    }
                    for (lsn, id) in page.gone {
                        entries.push((lsn, id, None));
                    }
                    entries.sort_by_key(|e| e.0);
                    for (_, id, data) in entries {
                        match data {
                            Some(v) => {
                                self.docs.insert(id, v);
                            }
                            None => {
                                self.docs.remove(&id);
                            }
                        }
                    }
                    let done = page.next == self.since || page.next == db.last_lsn();
                    assert!(page.next >= self.since);
                    self.since = page.next;
                    if done {
                        return;
                    }
                }
                Err(Error::ResyncRequired { .. }) => {
                    self.resyncs += 1;
                    self.since = db.last_lsn();
                    self.docs = found(c);
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn a_user_gets_what_it_may_read_in_change_order_and_the_ids_that_went() {
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let since = db.last_lsn();
    notes
        .create("n1", json!({"t": 1}), Some(read("user-a")))
        .unwrap();
    notes
        .create("n2", json!({"t": 2}), Some(read("user-b")))
        .unwrap();
    notes
        .create("n3", json!({"t": 3}), Some(read("user-a")))
        .unwrap();
    notes.update("n1", json!({"t": 4}), None).unwrap();
    let page = notes_of(&a).changes(since, 100).unwrap();
    let ids: Vec<(u64, &str)> = page
        .documents
        .iter()
        .map(|(l, d)| (l - since, d.id()))
        .collect();
    // n1's last change (4) comes after n3's (3); user-b's n2 is not there.
    assert_eq!(ids, [(3, "n3"), (4, "n1")]);
    assert!(page.gone.is_empty());
    assert_eq!(page.next, db.last_lsn());

    // A delete and a permission change away are gone ids; other users' are not.
    let since = page.next;
    notes.delete("n3").unwrap();
    notes.update("n1", json!({}), Some(read("user-b"))).unwrap();
    notes.delete("n2").unwrap();
    let page = notes_of(&a).changes(since, 100).unwrap();
    let gone: Vec<(u64, &str)> = page
        .gone
        .iter()
        .map(|(l, id)| (l - since, id.as_str()))
        .collect();
    assert_eq!(gone, [(1, "n3"), (2, "n1")]);
    assert!(page.documents.is_empty());
    let page_b = notes_of(&common::sign_in(&db, "b"))
        .changes(since, 100)
        .unwrap();
    let docs_b: Vec<&str> = page_b.documents.iter().map(|(_, d)| d.id()).collect();
    let gone_b: Vec<&str> = page_b.gone.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!((docs_b, gone_b), (vec!["n1"], vec!["n2"]));
}

#[test]
fn pages_follow_the_limit_and_resume_where_they_stopped() {
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let since = db.last_lsn();
    for i in 0..25 {
        notes
            .create(&format!("n{i:02}"), json!({"i": i}), Some(read("user-a")))
            .unwrap();
    }
    let mut at = since;
    let mut seen = Vec::new();
    loop {
        let page = notes_of(&a).changes(at, 10).unwrap();
        assert!(page.documents.len() <= 10);
        seen.extend(page.documents.iter().map(|(_, d)| d.id().to_owned()));
        if page.next == at {
            break;
        }
        at = page.next;
    }
    let want: Vec<String> = (0..25).map(|i| format!("n{i:02}")).collect();
    assert_eq!(seen, want);
    // A number the store never gave (another store's, or from before a restore).
    assert!(matches!(
        notes_of(&a).changes(db.last_lsn() + 1, 10),
        Err(Error::ResyncRequired { .. })
    ));
}

#[test]
fn role_and_rule_changes_ask_for_a_resync() {
    let (db, _notes) = setup();
    let root = db.root();
    root.teams().create("t1", "Team").unwrap();
    let a = common::sign_in(&db, "a");
    let since = db.last_lsn();
    root.teams().create_membership("t1", "user-a", &[]).unwrap();
    assert!(matches!(
        notes_of(&a).changes(since, 10),
        Err(Error::ResyncRequired { .. })
    ));
    // From 0 a client holds nothing, so the feed answers whatever changed.
    assert!(notes_of(&a).changes(0, 10).is_ok());
    // user-b's roles did not change.
    let b = common::sign_in(&db, "b");
    assert!(notes_of(&b).changes(since, 10).is_ok());
    let since = db.last_lsn();
    root.schema("app")
        .collections()
        .update(
            CollectionSpec::new("notes", "Notes")
                .permissions([
                    Permission::create(Role::users()),
                    Permission::read(Role::users()),
                ])
                .document_security(true),
        )
        .unwrap();
    assert!(matches!(
        notes_of(&b).changes(since, 10),
        Err(Error::ResyncRequired { .. })
    ));
}

#[test]
fn tombstones_past_the_retention_ask_for_a_resync() {
    let (options, clock) = common::test_options();
    let (db, notes) = setup_with(options.tombstone_retention(time::Duration::days(1)));
    let a = common::sign_in(&db, "a");
    notes
        .create("old", json!({}), Some(read("user-a")))
        .unwrap();
    let since = db.last_lsn();
    notes.delete("old").unwrap();
    assert_eq!(notes_of(&a).changes(since, 10).unwrap().gone.len(), 1);
    // Two days and enough changes to start another bucket later, a delete purges it.
    clock.advance(time::Duration::days(2));
    let docs: Vec<(String, Value, Option<Vec<Permission>>)> = (0..1100)
        .map(|i| (format!("x{i}"), json!({}), None))
        .collect();
    for chunk in docs.chunks(500) {
        notes
            .create_many(chunk.iter().map(|(id, v, p)| (id.as_str(), v, p.clone())))
            .unwrap();
    }
    notes.delete("x0").unwrap();
    assert!(matches!(
        notes_of(&a).changes(since, 10),
        Err(Error::ResyncRequired { .. })
    ));
    assert!(notes_of(&a).changes(db.last_lsn(), 10).is_ok());
}

#[test]
fn the_feed_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (options, _clock) = common::test_options();
    let since = {
        let db = Db::open_with(dir.path(), options.clone()).unwrap();
        let notes = common::create_collection(&db, "app", CollectionSpec::new("notes", "Notes"));
        let since = db.last_lsn();
        notes.create("n1", json!({"v": 1}), None).unwrap();
        notes.create("n2", json!({"v": 2}), None).unwrap();
        notes.delete("n1").unwrap();
        since
    };
    let db = common::when_unlocked(|| Db::open_with(dir.path(), options.clone())).unwrap();
    let page = notes_of(&db.root()).changes(since, 10).unwrap();
    let docs: Vec<&str> = page.documents.iter().map(|(_, d)| d.id()).collect();
    let gone: Vec<&str> = page.gone.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!((docs, gone), (vec!["n2"], vec!["n1"]));
}

#[test]
fn the_work_follows_the_changes_the_client_may_see() {
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let since = db.last_lsn();
    let docs: Vec<(String, Value, Option<Vec<Permission>>)> = (0..10_000)
        .map(|i| {
            let owner = if i % 1000 == 0 { "user-a" } else { "user-b" };
            (format!("d{i}"), json!({"i": i}), Some(read(owner)))
        })
        .collect();
    for chunk in docs.chunks(1000) {
        notes
            .create_many(chunk.iter().map(|(id, v, p)| (id.as_str(), v, p.clone())))
            .unwrap();
    }
    let mut changes = 10_000;
    for i in (1..10_000).step_by(7).filter(|i| i % 1000 != 0) {
        notes.delete(&format!("d{i}")).unwrap();
        changes += 1;
    }
    assert_eq!(changes, 11_428);
    let page = notes_of(&a).changes(since, 5000).unwrap();
    assert_eq!(page.documents.len(), 10);
    assert!(page.gone.is_empty(), "user-a's documents were not deleted");
    // 11,428 changes, 10 of them user-a's: the feed reads those 10 documents.
    assert_eq!(page.examined, 10);
    let root = notes_of(&db.root()).changes(since, 5000).unwrap();
    assert!(
        root.examined >= 5000,
        "root sees every change: {}",
        root.examined
    );
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8, u8),
    Update(u8, u8, Option<u8>),
    Delete(u8),
    Join(u8),
    Leave(u8),
    Sync(u8),
}

fn role(i: u8) -> Role {
    match i % 5 {
        0 => Role::user("user-a"),
        1 => Role::user("user-b"),
        2 => Role::user("user-c"),
        3 => Role::team("t1"),
        _ => Role::users(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 0u8..5, 0u8..20).prop_map(|(d, r, v)| Op::Create(d, r, v)),
        4 => (0u8..8, 0u8..20, proptest::option::of(0u8..5)).prop_map(|(d, v, r)| Op::Update(d, v, r)),
        2 => (0u8..8).prop_map(Op::Delete),
        1 => (0u8..3).prop_map(Op::Join),
        1 => (0u8..3).prop_map(Op::Leave),
        3 => (0u8..3).prop_map(Op::Sync),
    ]
}

const USERS: [&str; 3] = ["a", "b", "c"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random writes and role changes; each user's replica catches up at random moments
    /// (with small pages); after catching up it equals `find`, and so does every replica
    /// at the end, across a reopen.
    #[test]
    fn replicas_following_the_feed_equal_find(ops in proptest::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().unwrap();
        let (options, _clock) = common::test_options();
        let mut replicas: Vec<Replica> = USERS.iter().map(|_| Replica::new()).collect();
        {
            let db = Db::open_with(dir.path(), options.clone()).unwrap();
            let spec = CollectionSpec::new("notes", "Notes")
                .permissions([Permission::create(Role::users())])
                .document_security(true);
            let notes = common::create_collection(&db, "app", spec);
            let root = db.root();
            root.teams().create("t1", "Team").unwrap();
            for u in USERS {
                db.client().account().create(&format!("user-{u}"), &format!("{u}@example.com"), &format!("password-{u}"), None).unwrap();
            }
            let clients: Vec<_> = USERS.iter().map(|u| common::sign_in(&db, u)).collect();
            let mut members: BTreeMap<u8, String> = BTreeMap::new();
            for op in ops {
                let _ = match op {
                    Op::Create(d, r, v) => notes.create(&format!("d{d}"), json!({"v": v}), Some(vec![Permission::read(role(r))])).map(|_| ()),
                    Op::Update(d, v, r) => notes.update(&format!("d{d}"), json!({"v": v}), r.map(|r| vec![Permission::read(role(r))])).map(|_| ()),
                    Op::Delete(d) => notes.delete(&format!("d{d}")),
                    Op::Join(u) => root.teams().create_membership("t1", &format!("user-{}", USERS[u as usize]), &[]).map(|m| { members.insert(u, m.id); }),
                    Op::Leave(u) => match members.remove(&u) {
                        Some(m) => root.teams().delete_membership("t1", &m),
                        None => Ok(()),
                    },
                    Op::Sync(u) => {
                        let c = notes_of(&clients[u as usize]);
                        replicas[u as usize].catch_up(&db, &c, 3);
                        prop_assert_eq!(&replicas[u as usize].docs, &found(&c));
                        Ok(())
                    }
                };
            }
        }
        let db = common::when_unlocked(|| Db::open_with(dir.path(), options.clone())).unwrap();
        for (i, u) in USERS.iter().enumerate() {
            let c = notes_of(&common::sign_in(&db, u));
            replicas[i].catch_up(&db, &c, 3);
            prop_assert_eq!(&replicas[i].docs, &found(&c));
        }
    }
}

/// Red-team findings: a gone id must never name a document the client could not read
/// after its `since`. A new account given a deleted user's id, and a new member of a
/// team whose read was taken before it joined, learn nothing of those documents.
#[test]
fn gone_ids_name_only_documents_the_client_could_read_after_since() {
    let (db, notes) = setup();
    let root = db.root();
    notes
        .create("c-private", json!({"t": 1}), Some(read("user-c")))
        .unwrap();
    notes
        .create("c-deleted", json!({"t": 1}), Some(read("user-c")))
        .unwrap();
    root.users().delete("user-c").unwrap();
    notes.delete("c-deleted").unwrap();
    db.client()
        .account()
        .create("user-c", "c2@example.com", "password-c2", None)
        .unwrap();
    let session = db
        .client()
        .account()
        .create_email_password_session("c2@example.com", "password-c2")
        .unwrap();
    let new_c = notes_of(&db.client().set_session(&session.secret).unwrap());
    let page = new_c.changes(0, 100).unwrap();
    assert!(
        page.documents.is_empty() && page.gone.is_empty(),
        "{page:?}"
    );
    let since = page.next;
    notes.update("c-private", json!({"t": 2}), None).unwrap();
    assert!(new_c.changes(since, 100).unwrap().gone.is_empty());

    // A team's read is taken, then mallory (user-a) joins and follows from after that.
    root.teams().create("t1", "Team").unwrap();
    notes
        .create(
            "team-doc",
            json!({}),
            Some(vec![Permission::read(Role::team("t1"))]),
        )
        .unwrap();
    notes
        .update("team-doc", json!({}), Some(read("user-b")))
        .unwrap();
    root.teams().create_membership("t1", "user-a", &[]).unwrap();
    let a = notes_of(&common::sign_in(&db, "a"));
    let since = db.last_lsn();
    notes.update("team-doc", json!({"x": 1}), None).unwrap();
    notes.delete("team-doc").unwrap();
    let page = a.changes(since, 100).unwrap();
    assert!(page.gone.is_empty(), "{:?}", page.gone);
    // Access denied is said before anything about the feed.
    let denied = common::create_collection(&db, "app", CollectionSpec::new("closed", "Closed"));
    drop(denied);
    let closed = common::sign_in(&db, "a").schema("app").collection("closed");
    assert!(matches!(
        closed.changes(1, 10),
        Err(Error::Unauthorized { .. })
    ));
}
