//! A `Db` shared between threads: writers and readers as different principals at once.
//! No reader ever sees a document it may not read, and the final state is exact.
//! (The full concurrency and crash suite is the hardening issue's.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::thread;

use permdb::{Client, Collection, CollectionSpec, Db, Permission, Query, Role};
use serde_json::json;

fn assert_send_sync<T: Send + Sync + Clone>() {}

#[test]
fn handles_are_send_sync_and_clone() {
    assert_send_sync::<Db>();
    assert_send_sync::<Client>();
    assert_send_sync::<Collection>();
}

#[test]
fn concurrent_writers_and_readers_never_see_what_they_may_not() {
    let db = common::temporary().unwrap();
    let root = db.root();
    let spec = CollectionSpec::new("c", "C")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    common::create_collection(&db, "s", spec);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let db = db.clone();
            thread::spawn(move || {
                let me = format!("w{w}");
                let c = db
                    .root()
                    .impersonate(&me)
                    .unwrap()
                    .schema("s")
                    .collection("c");
                for i in 0..150 {
                    let id = format!("{me}-{i}");
                    c.create(&id, json!({"i": i}), None).unwrap();
                    if i % 3 == 0 {
                        c.update(&id, json!({"i": -1}), None).unwrap();
                    }
                    if i % 5 == 0 {
                        c.delete(&id).unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let db = db.clone();
            thread::spawn(move || {
                let me = format!("w{r}");
                let c = db
                    .root()
                    .impersonate(&me)
                    .unwrap()
                    .schema("s")
                    .collection("c");
                for _ in 0..200 {
                    let page = c
                        .find(&[Query::limit(50), Query::order_desc("$sequence")])
                        .unwrap();
                    for d in &page.documents {
                        assert!(d.id().starts_with(&format!("{me}-")), "{me} saw {}", d.id());
                    }
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    for w in 0..3 {
        let c = db
            .root()
            .impersonate(&format!("w{w}"))
            .unwrap()
            .schema("s")
            .collection("c");
        assert_eq!(c.count(&[]).unwrap(), 120, "150 created, 30 deleted");
        assert_eq!(
            c.count(&[Query::equal("i", [-1])]).unwrap(),
            40,
            "50 updated, 10 of them deleted"
        );
    }
    assert_eq!(root.schema("s").collection("c").count(&[]).unwrap(), 360);
}
