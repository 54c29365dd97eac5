//! Transactions and writes by queries: all or nothing, each operation checked as alone and
//! seeing the ones before it, indexes consistent after, and a property test that a
//! committed transaction leaves exactly what the same calls made one by one leave.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{
    AttributeSpec, Collection, CollectionSpec, Db, Error, IndexSpec, Outcome, Permission, Query,
    Role,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// `s/items` with an integer `n` (key index) and a string `tag` (unique index), creatable
/// by users, document security on; `s/log` plain.
fn setup(db: &Db) -> Collection {
    let spec = CollectionSpec::new("items", "Items")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    let items = common::create_collection(db, "s", spec);
    common::create_collection(db, "s", CollectionSpec::new("log", "Log"));
    let collections = db.root().schema("s").collections();
    collections
        .create_attribute("items", AttributeSpec::integer("n"))
        .unwrap();
    collections
        .create_attribute("items", AttributeSpec::string("tag", 20))
        .unwrap();
    collections
        .create_index("items", IndexSpec::key("by_n", ["n"]))
        .unwrap();
    collections
        .create_index("items", IndexSpec::unique("by_tag", ["tag"]))
        .unwrap();
    items
}

/// Every document of `coll` as (id, data, permissions), in id order.
fn dump(coll: &Collection) -> Vec<(String, Value, Vec<String>)> {
    let mut docs: Vec<_> = coll
        .find(&[Query::limit(5000)])
        .unwrap()
        .documents
        .into_iter()
        .map(|d| {
            let perms = d.permissions().iter().map(ToString::to_string).collect();
            (d.id().to_owned(), Value::Object(d.data().clone()), perms)
        })
        .collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

fn ids(list: &permdb::DocumentList) -> Vec<String> {
    let mut ids: Vec<_> = list.documents.iter().map(|d| d.id().to_owned()).collect();
    ids.sort();
    ids
}

/// Stages operations into a transaction.
type Stage = dyn Fn(&mut permdb::Transaction);
/// What a case stages, and the error its commit must give.
type Case = (&'static str, Box<Stage>, fn(&Error) -> bool);

fn assert_consistent(db: &Db) {
    let report = db.verify().unwrap();
    assert_eq!(report.problems, 0, "{:?}", report.details);
}

#[test]
fn later_operations_see_earlier_ones_and_indexes_stay_consistent() {
    let db = common::temporary().unwrap();
    let items = setup(&db);
    items
        .create("x", json!({"n": 1, "tag": "old"}), None)
        .unwrap();
    let root = db.root();
    let mut tx = root.transaction();
    tx.collection("s", "items")
        .create("a", json!({"n": 5, "tag": "a"}), None)
        .unwrap()
        .increment("a", "n", 2.0, None)
        .unwrap()
        .increment("a", "n", 3.0, Some(10.0))
        .unwrap()
        .update("x", json!({"tag": "new"}), None)
        .unwrap()
        .create("b", json!({"n": 10, "tag": "old"}), None)
        .unwrap()
        .delete("b")
        .unwrap()
        .create("b", json!({"n": 10}), None)
        .unwrap();
    tx.collection("s", "log")
        .create("l1", json!({"what": "made a"}), None)
        .unwrap();
    assert_eq!(tx.len(), 8);
    let out = tx.commit().unwrap();
    assert_eq!(out.len(), 8);
    assert_eq!(out[2].document().unwrap().data()["n"], 10);
    assert_eq!(out[5], Outcome::Deleted);
    let a = items.get("a").unwrap();
    assert_eq!(a.data()["n"], 10);
    assert_eq!(a.sequence() + 1, items.get("b").unwrap().sequence() - 1);
    // The key and unique indexes hold the final values only: "old" was freed by the
    // update of x before b took it, then freed again by b's delete.
    assert_eq!(
        ids(&items.find(&[Query::equal("n", [10])]).unwrap()),
        ["a", "b"]
    );
    assert!(
        items
            .find(&[Query::equal("n", [5])])
            .unwrap()
            .documents
            .is_empty()
    );
    assert_eq!(
        ids(&items.find(&[Query::equal("tag", ["new"])]).unwrap()),
        ["x"]
    );
    assert!(
        items
            .find(&[Query::equal("tag", ["old"])])
            .unwrap()
            .documents
            .is_empty()
    );
    assert_eq!(
        root.schema("s").collection("log").get("l1").unwrap().data()["what"],
        "made a"
    );
    assert_consistent(&db);
}

#[test]
fn one_failing_operation_leaves_nothing_written() {
    let db = common::temporary().unwrap();
    let items = setup(&db);
    items
        .create("x", json!({"n": 1, "tag": "t"}), None)
        .unwrap();
    let before = dump(&items);
    let cases: Vec<Case> = vec![
        (
            "update of a missing document",
            Box::new(|tx| {
                tx.collection("s", "items")
                    .create("a", json!({"n": 2}), None)
                    .unwrap()
                    .update("missing", json!({"n": 3}), None)
                    .unwrap();
            }),
            |e| matches!(e, Error::NotFound { .. }),
        ),
        (
            "unique value taken by an earlier operation",
            Box::new(|tx| {
                tx.collection("s", "items")
                    .create("a", json!({"tag": "u"}), None)
                    .unwrap()
                    .create("b", json!({"tag": "u"}), None)
                    .unwrap();
            }),
            |e| matches!(e, Error::Conflict { .. }),
        ),
        (
            "increment past its limit after an earlier increment",
            Box::new(|tx| {
                tx.collection("s", "items")
                    .increment("x", "n", 5.0, Some(10.0))
                    .unwrap()
                    .increment("x", "n", 5.0, Some(10.0))
                    .unwrap();
            }),
            |e| matches!(e, Error::InvalidDocument(_)),
        ),
        (
            "an operation on a missing collection",
            Box::new(|tx| {
                tx.collection("s", "items").delete("x").unwrap();
                tx.collection("s", "nope")
                    .create("a", json!({}), None)
                    .unwrap();
            }),
            |e| matches!(e, Error::NotFound { .. }),
        ),
        (
            "a create of an id made earlier in the transaction",
            Box::new(|tx| {
                tx.collection("s", "items")
                    .create("a", json!({}), None)
                    .unwrap()
                    .create("a", json!({}), None)
                    .unwrap();
            }),
            |e| matches!(e, Error::Conflict { .. }),
        ),
    ];
    for (what, stage, expected) in cases {
        let mut tx = db.root().transaction();
        stage(&mut tx);
        match tx.commit() {
            Err(e) if expected(&e) => {}
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(dump(&items), before, "{what} left writes behind");
        assert!(
            db.root()
                .schema("s")
                .collection("log")
                .find(&[])
                .unwrap()
                .documents
                .is_empty()
        );
        assert_consistent(&db);
    }
}

#[test]
fn each_operation_is_checked_as_the_client_alone() {
    let (options, _clock) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    let items = setup(&db);
    for (user, letter) in [("u1", "a"), ("u2", "b")] {
        db.client()
            .account()
            .create(
                user,
                &format!("{letter}@example.com"),
                "password-1234",
                None,
            )
            .unwrap();
    }
    let u1 = db
        .client()
        .set_session(
            &db.client()
                .account()
                .create_email_password_session("a@example.com", "password-1234")
                .unwrap()
                .secret,
        )
        .unwrap();
    // Created by u1: u1 may read, update and delete it.
    u1.schema("s")
        .collection("items")
        .create("mine", json!({"n": 1}), None)
        .unwrap();
    // Readable by u1, not updatable.
    items
        .create(
            "shown",
            json!({"n": 1}),
            Some(vec![Permission::read(Role::user("u1"))]),
        )
        .unwrap();
    // Hidden from u1.
    items
        .create(
            "hidden",
            json!({"n": 1}),
            Some(vec![Permission::read(Role::user("u2"))]),
        )
        .unwrap();
    let before = dump(&items);

    let refused = |stage: &dyn Fn(&mut permdb::Transaction)| {
        let mut tx = u1.transaction();
        stage(&mut tx);
        let err = tx.commit().unwrap_err();
        assert_eq!(dump(&items), before);
        err
    };
    // The first operation alone would pass; the second is refused, so neither lands.
    let e = refused(&|tx| {
        tx.collection("s", "items")
            .increment("mine", "n", 1.0, None)
            .unwrap()
            .update("shown", json!({"n": 2}), None)
            .unwrap();
    });
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    // A hidden document is a missing one, through every operation.
    for op in ["update", "increment", "delete", "upsert"] {
        let e = refused(&|tx| {
            let mut c = tx.collection("s", "items");
            match op {
                "update" => c.update("hidden", json!({"n": 2}), None).map(|_| ()),
                "increment" => c.increment("hidden", "n", 1.0, None).map(|_| ()),
                "delete" => c.delete("hidden").map(|_| ()),
                _ => c.upsert("hidden", json!({"n": 2}), None).map(|_| ()),
            }
            .unwrap();
        });
        match (op, &e) {
            ("upsert", Error::Conflict { .. }) => {}
            (_, Error::NotFound { id, .. }) if id == "hidden" => {}
            _ => panic!("{op}: {e:?}"),
        }
    }
    // Granting a role the client does not hold is refused at commit.
    let e = refused(&|tx| {
        tx.collection("s", "items")
            .create(
                "g",
                json!({}),
                Some(vec![Permission::read(Role::user("u2"))]),
            )
            .unwrap();
    });
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    // A collection the client may not create in.
    let e = refused(&|tx| {
        tx.collection("s", "log")
            .create("l", json!({}), None)
            .unwrap();
    });
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");

    // Ending the session between staging and commit refuses the commit.
    let mut tx = u1.transaction();
    tx.collection("s", "items")
        .increment("mine", "n", 1.0, None)
        .unwrap();
    u1.account().delete_session("current").unwrap();
    assert!(tx.commit().is_err());
    assert_eq!(dump(&items), before);
}

#[test]
fn writes_by_queries_take_what_matches_at_commit() {
    let db = common::temporary().unwrap();
    let items = setup(&db);
    for i in 0..20 {
        items
            .create(&format!("d{i:02}"), json!({"n": i % 4}), None)
            .unwrap();
    }
    let updated = items
        .update_where(&[Query::equal("n", [1])], json!({"tag": null, "n": 100}))
        .unwrap();
    assert_eq!(updated.len(), 5);
    assert!(updated.iter().all(|d| d.data()["n"] == 100));
    assert_eq!(items.find(&[Query::equal("n", [100])]).unwrap().total, 5);
    assert!(
        items
            .find(&[Query::equal("n", [1])])
            .unwrap()
            .documents
            .is_empty()
    );
    // A limit takes a page only.
    let deleted = items
        .delete_where(&[Query::equal("n", [2]), Query::limit(2)])
        .unwrap();
    assert_eq!(deleted.len(), 2);
    assert!(deleted.iter().all(|d| d.data()["n"] == 2), "{deleted:?}");
    assert_eq!(items.find(&[Query::equal("n", [2])]).unwrap().total, 3);
    assert_eq!(
        items.delete_where(&[Query::equal("n", [2])]).unwrap().len(),
        3
    );
    assert_eq!(items.find(&[]).unwrap().total, 15);

    // Inside one transaction a delete by queries sees the earlier operations: a
    // document found but changed by an earlier operation so it no longer matches stays.
    let mut tx = db.root().transaction();
    tx.collection("s", "items")
        .update("d00", json!({"n": 7}), None)
        .unwrap()
        .delete_where(&[Query::equal("n", [0])])
        .unwrap();
    let out = tx.commit().unwrap();
    match &out[1] {
        Outcome::DeletedMany(docs) => assert_eq!(docs.len(), 4),
        other => panic!("{other:?}"),
    }
    assert_eq!(items.get("d00").unwrap().data()["n"], 7);
    assert_eq!(items.find(&[]).unwrap().total, 11);
    // A bad query is refused before anything is written.
    assert!(matches!(
        items.update_where(&[Query::equal("nope", [1])], json!({"n": 1})),
        Err(Error::InvalidQuery(_))
    ));
    assert_consistent(&db);
}

/// One write of the property test, on the ids `k0`..`k3`.
#[derive(Debug, Clone)]
enum Op {
    Create(usize, i64, Option<usize>),
    Update(usize, i64),
    Increment(usize, i64),
    Delete(usize),
    Upsert(usize, i64, Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..4usize;
    let tag = proptest::option::of(0..3usize);
    prop_oneof![
        (id.clone(), 0..5i64, tag.clone()).prop_map(|(i, n, t)| Op::Create(i, n, t)),
        (id.clone(), 0..5i64).prop_map(|(i, n)| Op::Update(i, n)),
        (id.clone(), -3..4i64).prop_map(|(i, n)| Op::Increment(i, n)),
        id.clone().prop_map(Op::Delete),
        (id, 0..5i64, tag).prop_map(|(i, n, t)| Op::Upsert(i, n, t)),
    ]
}

fn data(n: i64, tag: Option<usize>) -> Value {
    match tag {
        Some(t) => json!({"n": n, "tag": format!("t{t}")}),
        None => json!({"n": n}),
    }
}

fn stage(tx: &mut permdb::Transaction, op: &Op) {
    let mut c = tx.collection("s", "items");
    let id = |i: &usize| format!("k{i}");
    match op {
        Op::Create(i, n, t) => c.create(&id(i), data(*n, *t), None).map(|_| ()),
        Op::Update(i, n) => c.update(&id(i), json!({"n": n}), None).map(|_| ()),
        Op::Increment(i, by) => c.increment(&id(i), "n", *by as f64, Some(8.0)).map(|_| ()),
        Op::Delete(i) => c.delete(&id(i)).map(|_| ()),
        Op::Upsert(i, n, t) => c.upsert(&id(i), data(*n, *t), None).map(|_| ()),
    }
    .unwrap();
}

fn apply_alone(items: &Collection, op: &Op) -> permdb::Result<()> {
    let id = |i: &usize| format!("k{i}");
    match op {
        Op::Create(i, n, t) => items.create(&id(i), data(*n, *t), None).map(|_| ()),
        Op::Update(i, n) => items.update(&id(i), json!({"n": n}), None).map(|_| ()),
        Op::Increment(i, by) => items
            .increment(&id(i), "n", *by as f64, Some(8.0))
            .map(|_| ()),
        Op::Delete(i) => items.delete(&id(i)),
        Op::Upsert(i, n, t) => items.upsert(&id(i), data(*n, *t), None).map(|_| ()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The operations that succeed made alone, one by one, succeed as one transaction
    /// and leave the same documents and the same index answers, with consistent indexes.
    #[test]
    fn a_transaction_equals_its_operations_in_order(
        start in proptest::collection::vec(op(), 0..4),
        ops in proptest::collection::vec(op(), 1..12),
    ) {
        let (options, _clock) = common::test_options();
        let alone_db = Db::temporary_with(options.clone()).unwrap();
        let tx_db = Db::temporary_with(options).unwrap();
        let alone = setup(&alone_db);
        let in_tx = setup(&tx_db);
        for op in &start {
            let a = apply_alone(&alone, op).is_ok();
            let b = apply_alone(&in_tx, op).is_ok();
            prop_assert_eq!(a, b);
        }
        let succeeding: Vec<&Op> = ops.iter().filter(|op| apply_alone(&alone, op).is_ok()).collect();
        let mut tx = tx_db.root().transaction();
        for op in &succeeding {
            stage(&mut tx, op);
        }
        let committed = tx.commit();
        prop_assert!(committed.is_ok(), "{:?}", committed);
        prop_assert_eq!(committed.unwrap().len(), succeeding.len());
        prop_assert_eq!(dump(&in_tx), dump(&alone));
        for n in -3..12 {
            let q = [Query::equal("n", [n])];
            prop_assert_eq!(ids(&in_tx.find(&q).unwrap()), ids(&alone.find(&q).unwrap()));
        }
        for t in 0..3 {
            let q = [Query::equal("tag", [format!("t{t}")])];
            prop_assert_eq!(ids(&in_tx.find(&q).unwrap()), ids(&alone.find(&q).unwrap()));
        }
        let report = tx_db.verify().unwrap();
        prop_assert_eq!(report.problems, 0, "{:?}", report.details);
    }
}
