//! Durability across close and reopen: documents, permission indexes, counters and
//! catalog come back from disk exactly; nothing is rebuilt on open.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{CollectionSpec, Db, Document, Permission, Plan, Query, Role};
use serde_json::json;

fn view(db: &Db) -> Vec<(String, u64, Vec<String>)> {
    let mut out = Vec::new();
    for who in ["u0", "u1", "u2", "u3"] {
        let c = db
            .root()
            .impersonate(who)
            .unwrap()
            .schema("s")
            .collection("c");
        let page = c.find(&[Query::limit(5000)]).unwrap();
        out.push((
            who.to_string(),
            page.total,
            page.documents.iter().map(|d| d.id().to_string()).collect(),
        ));
    }
    let all = db
        .root()
        .schema("s")
        .collection("c")
        .find(&[Query::limit(5000)])
        .unwrap();
    out.push((
        "root".into(),
        all.total,
        all.documents
            .iter()
            .map(|d| serde_json::to_string(d).unwrap())
            .collect(),
    ));
    out
}

#[test]
fn everything_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let db = common::when_unlocked(|| Db::open_with(dir.path(), common::options())).unwrap();
        let root = db.root();
        root.schemas().create("s", "S").unwrap();
        root.schema("s")
            .collections()
            .create(CollectionSpec::new("c", "C").document_security(true))
            .unwrap();
        root.schema("s")
            .collections()
            .create(CollectionSpec::new("gone", "Gone"))
            .unwrap();
        root.schema("s")
            .collection("gone")
            .create("g", json!({}), None)
            .unwrap();
        let c = root.schema("s").collection("c");
        for i in 0..300u32 {
            let reader = Role::user(format!("u{}", i % 4));
            c.create(
                &format!("d{i}"),
                json!({"i": i, "nested": {"a": [i, "x", null]}}),
                Some(vec![Permission::read(reader)]),
            )
            .unwrap();
        }
        for i in (0..300u32).step_by(7) {
            c.update(
                &format!("d{i}"),
                json!({"touched": true}),
                Some(vec![Permission::read(Role::user("u3"))]),
            )
            .unwrap();
        }
        for i in (0..300u32).step_by(11) {
            c.delete(&format!("d{i}")).unwrap();
        }
        root.schema("s").collections().delete("gone").unwrap();
        view(&db)
    };
    let db = common::when_unlocked(|| Db::open_with(dir.path(), common::options())).unwrap();
    assert_eq!(view(&db), before);
    let root = db.root();
    assert_eq!(root.schema("s").collections().list().unwrap().len(), 1);
    // Indexes are read from disk, not rebuilt: a user's page reads only their role bitmaps.
    let u1 = root.impersonate("u1").unwrap();
    let (page, e) = u1
        .schema("s")
        .collection("c")
        .find_explained(&[Query::limit(5)])
        .unwrap();
    assert_eq!(page.documents.len(), 5);
    assert_eq!(
        e.plan,
        Plan::RoleMerge {
            roles: u1.roles().len()
        }
    );
    assert!(
        e.documents_decoded <= 5 && e.bitmaps_read <= u1.roles().len() as u64,
        "{e:?}"
    );
    // Sequences continue after the highest ever assigned.
    let d = root
        .schema("s")
        .collection("c")
        .create("new", json!({}), None)
        .unwrap();
    assert_eq!(d.sequence(), 301);
}

#[test]
fn documents_round_trip_through_appwrite_json() {
    let db = common::temporary().unwrap();
    let root = db.root();
    root.schemas().create("db", "Database").unwrap();
    root.schema("db")
        .collections()
        .create(CollectionSpec::new("birthdays", "Birthdays"))
        .unwrap();
    let doc = root
        .schema("db")
        .collection("birthdays")
        .create(
            "doc1",
            json!({"name": "Kevin", "tags": ["a"], "n": 1.5}),
            Some(vec![Permission::read(Role::user("user-a"))]),
        )
        .unwrap();
    let value = serde_json::to_value(&doc).unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    let prefix = r#"{"$id":"doc1","$sequence":"1","$collectionId":"birthdays","$databaseId":"db","$createdAt":"#;
    assert!(text.starts_with(prefix), "{text}");
    let order: Vec<usize> = ["\"$updatedAt\"", "\"$permissions\"", "\"n\"", "\"name\""]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(value["$permissions"], json!(["read(\"user:user-a\")"]));
    assert_eq!(value["$databaseId"], json!("db"));
    assert!(value["$createdAt"].as_str().unwrap().ends_with("+00:00"));
    let back: Document = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, doc);
    // `$sequence` is read back as Appwrite's decimal string or as a number; nothing else.
    let with_sequence = |s: serde_json::Value| {
        let mut v = value.clone();
        v["$sequence"] = s;
        serde_json::from_value::<Document>(v).map(|d| d.sequence())
    };
    assert_eq!(with_sequence(json!(1)).unwrap(), 1);
    assert_eq!(
        with_sequence(json!("18446744073709551615")).unwrap(),
        u64::MAX
    );
    for bad in [
        json!("+1"),
        json!(" 1"),
        json!("1.0"),
        json!(""),
        json!(-1),
        json!(null),
    ] {
        assert!(with_sequence(bad.clone()).is_err(), "{bad}");
    }
    assert!(serde_json::from_value::<Document>(json!({"$id": "x"})).is_err());
}

#[test]
fn stats_report_trees_and_cached_bitmaps() {
    let db = common::temporary().unwrap();
    let root = db.root();
    root.schemas().create("s", "S").unwrap();
    root.schema("s")
        .collections()
        .create(CollectionSpec::new("c", "C").document_security(true))
        .unwrap();
    let c = root.schema("s").collection("c");
    c.create_many((0..100u32).map(|i| {
        (
            format!("d{i}"),
            json!({"i": i}),
            Some(vec![Permission::read(Role::user("u1"))]),
        )
    }))
    .unwrap();
    let before = db.stats().unwrap();
    let docs = before.trees.iter().find(|t| t.tree == "docs").unwrap();
    assert_eq!(docs.keys, 100);
    assert!(
        before
            .trees
            .iter()
            .any(|t| t.tree == "perm_index" && t.keys > 0 && t.value_bytes > 0)
    );
    assert_eq!(before.cached_bitmap_bytes, 0);
    root.impersonate("u1")
        .unwrap()
        .schema("s")
        .collection("c")
        .find(&[])
        .unwrap();
    let cached = db.stats().unwrap().cached_bitmap_bytes;
    // More than u1's four empty role bitmaps (8 bytes each): the one holding 100 documents
    // (a single run) is cached too.
    assert!(cached > 8 * 4, "u1's role bitmaps are cached: {cached}");
    c.delete("d0").unwrap();
    // The write touched `read("user:u1")`: that bitmap is dropped; the empty bitmaps of
    // u1's other roles (8 bytes each) were not touched and stay.
    let after = db.stats().unwrap().cached_bitmap_bytes;
    assert!(after < cached && after <= 8 * 4, "{after}");
}

/// A store closed and opened again at once opens (sled releases its directory lock from
/// a background thread after the last handle drops; opening waits for it). One held open
/// is refused.
#[test]
fn a_store_reopens_at_once_and_is_refused_while_held() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let db = Db::open_with(dir.path(), common::options()).unwrap();
        db.root().schemas().list().unwrap();
    }
    let held = Db::open_with(dir.path(), common::options()).unwrap();
    let second = Db::open_with(dir.path(), common::options());
    assert!(
        matches!(&second, Err(permdb::Error::Storage { message: m, .. }) if m.contains("lock")),
        "{second:?}"
    );
    drop(held);
}
