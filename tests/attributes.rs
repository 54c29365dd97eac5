//! Typed attributes: validation on create and update (a typed error naming the field,
//! the store unchanged), defaults, adding and removing attributes on a collection with
//! documents, and queries checked against the schema.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{AttributeSpec, Collection, CollectionSpec, Db, Error, IndexSpec, Query};
use serde_json::{Value, json};

fn setup() -> (Db, Collection) {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(&db, "s", CollectionSpec::new("people", "People"));
    let collections = db.root().schema("s").collections();
    for spec in [
        AttributeSpec::string("name", 10).required(true),
        AttributeSpec::integer("age"),
        AttributeSpec::float("score").default(0.5),
        AttributeSpec::boolean("active").default(true),
        AttributeSpec::datetime("born"),
        AttributeSpec::email("email"),
        AttributeSpec::enumeration("level", ["low", "high"]),
        AttributeSpec::string("tags", 5).array(true),
    ] {
        collections.create_attribute("people", spec).unwrap();
    }
    (db, coll)
}

fn dump(coll: &Collection) -> String {
    serde_json::to_string(&coll.find(&[Query::limit(5000)]).unwrap().documents).unwrap()
}

fn refused(coll: &Collection, f: impl FnOnce() -> permdb::Result<permdb::Document>, fault: &str) {
    let before = dump(coll);
    match f() {
        Err(Error::InvalidDocument(m)) => assert!(m.contains(fault), "{m:?} lacks {fault:?}"),
        other => panic!("expected InvalidDocument naming {fault:?}, got {other:?}"),
    }
    assert_eq!(dump(coll), before, "store changed");
}

#[test]
fn documents_are_validated_against_the_attributes() {
    let (_db, people) = setup();
    let ok = people.create("p1", json!({"name": "Ann", "age": 30, "tags": ["a", "b"], "born": "1994-05-11T10:00:00.000+00:00"}), None).unwrap();
    assert_eq!(ok.get("score"), Some(&json!(0.5)), "default applied");
    assert_eq!(ok.get("active"), Some(&json!(true)));
    let cases: Vec<(Value, &str)> = vec![
        (json!({"age": 1}), "\"name\": required"),
        (json!({"name": null}), "\"name\": required"),
        (
            json!({"name": "Ann", "nick": "x"}),
            "\"nick\": not in the collection's schema",
        ),
        (json!({"name": "Ann Elizabeth"}), "longer than 10"),
        (
            json!({"name": 5}),
            "\"name\": not a valid string (a number was given)",
        ),
        (
            json!({"name": "A", "age": 1.5}),
            "\"age\": not a valid integer (a number was given)",
        ),
        (json!({"name": "A", "age": "1"}), "not a valid integer"),
        (json!({"name": "A", "score": "high"}), "not a valid float"),
        (json!({"name": "A", "active": "yes"}), "not a valid boolean"),
        (
            json!({"name": "A", "born": "yesterday"}),
            "\"born\": not a valid datetime",
        ),
        (
            json!({"name": "A", "email": "not-an-email"}),
            "not a valid email",
        ),
        (
            json!({"name": "A", "level": "medium"}),
            "not one of the elements [\"low\", \"high\"]",
        ),
        (
            json!({"name": "A", "tags": "a"}),
            "not an array (a string was given)",
        ),
        (json!({"name": "A", "tags": ["toolong"]}), "longer than 5"),
        (json!({"name": "A", "tags": [1]}), "not a valid string"),
    ];
    for (i, (data, fault)) in cases.into_iter().enumerate() {
        let values: Vec<String> = data
            .as_object()
            .unwrap()
            .values()
            .filter(|v| !v.is_null())
            .map(|v| v.to_string())
            .collect();
        let message = match people.create(&format!("bad{i}"), data, None) {
            Err(Error::InvalidDocument(m)) => m,
            other => panic!("expected InvalidDocument naming {fault:?}, got {other:?}"),
        };
        assert!(message.contains(fault), "{message:?} lacks {fault:?}");
        // A document's values are never quoted back (they may be secrets, and refusals
        // are logged).
        for v in values
            .iter()
            .map(|v| v.trim_matches('"'))
            .filter(|v| v.len() >= 4)
        {
            assert!(!message.contains(v), "{message:?} quotes {v}");
        }
    }
    refused(
        &people,
        || people.update("p1", json!({"age": "old"}), None),
        "not a valid integer",
    );
    refused(
        &people,
        || people.update("p1", json!({"name": null}), None),
        "required",
    );
    refused(
        &people,
        || people.update("p1", json!({"nick": 1}), None),
        "not in the collection's schema",
    );
    let updated = people
        .update("p1", json!({"age": 31, "level": "high"}), None)
        .unwrap();
    assert_eq!(
        (updated.get("age"), updated.get("name")),
        (Some(&json!(31)), Some(&json!("Ann")))
    );
}

#[test]
fn attribute_declarations_are_checked() {
    let (db, _) = setup();
    let collections = db.root().schema("s").collections();
    let conflict = collections.create_attribute("people", AttributeSpec::integer("age"));
    assert!(
        matches!(conflict, Err(Error::Conflict { .. })),
        "{conflict:?}"
    );
    for bad in [
        AttributeSpec::string("x", 0),
        AttributeSpec::integer("y").required(true).default(1),
        AttributeSpec::integer("z").default("one"),
        AttributeSpec::enumeration("e", []),
    ] {
        assert!(matches!(
            collections.create_attribute("people", bad),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        collections.create_attribute("people", AttributeSpec::integer("_bad")),
        Err(Error::InvalidId(_))
    ));
    let user = db.root().impersonate("u1").unwrap();
    assert!(matches!(
        user.schema("s")
            .collections()
            .create_attribute("people", AttributeSpec::integer("w")),
        Err(Error::Unauthorized { .. })
    ));
}

#[test]
fn adding_and_removing_attributes_on_a_collection_with_documents() {
    let (db, people) = setup();
    people
        .create(
            "p1",
            json!({"name": "Ann", "age": 30, "email": "ann@example.com"}),
            None,
        )
        .unwrap();
    people
        .create("p2", json!({"name": "Bob", "age": 40}), None)
        .unwrap();
    let collections = db.root().schema("s").collections();
    collections
        .create_attribute("people", AttributeSpec::string("city", 20))
        .unwrap();
    assert_eq!(
        people.get("p1").unwrap().get("city"),
        None,
        "existing documents lack it"
    );
    people.update("p2", json!({"city": "Oslo"}), None).unwrap();
    collections.delete_attribute("people", "email").unwrap();
    assert_eq!(
        people.get("p1").unwrap().get("email"),
        None,
        "its values are gone"
    );
    assert_eq!(people.get("p1").unwrap().get("age"), Some(&json!(30)));
    assert!(matches!(
        people.create("p3", json!({"name": "C", "email": "c@example.com"}), None),
        Err(Error::InvalidDocument(_))
    ));
    assert!(matches!(
        collections.delete_attribute("people", "email"),
        Err(Error::NotFound { .. })
    ));
    let info = collections.get("people").unwrap();
    assert!(
        info.attributes.iter().any(|a| a.key == "city")
            && !info.attributes.iter().any(|a| a.key == "email")
    );
}

#[test]
fn queries_are_checked_against_the_schema() {
    let (_db, people) = setup();
    people
        .create("p1", json!({"name": "Ann", "age": 30}), None)
        .unwrap();
    people
        .create("p2", json!({"name": "Bob", "age": 40}), None)
        .unwrap();
    let invalid = |q: Query, fault: &str| match people.find(&[q]) {
        Err(Error::InvalidQuery(m)) => assert!(m.contains(fault), "{m:?} lacks {fault:?}"),
        other => panic!("{other:?}"),
    };
    invalid(
        Query::equal("nick", ["x"]),
        "not in the collection's schema",
    );
    invalid(Query::less_than("age", "old"), "wrong type");
    invalid(Query::starts_with("age", "3"), "wrong type");
    invalid(Query::equal("active", ["true"]), "wrong type");
    invalid(Query::search("name", "ann"), "needs a fulltext index");
    invalid(Query::order_asc("nick"), "not in the collection's schema");
    let page = people.find(&[Query::greater_than("age", 35)]).unwrap();
    assert_eq!(
        page.documents.iter().map(|d| d.id()).collect::<Vec<_>>(),
        ["p2"]
    );
    let page = people.find(&[Query::order_desc("name")]).unwrap();
    assert_eq!(
        page.documents.iter().map(|d| d.id()).collect::<Vec<_>>(),
        ["p2", "p1"]
    );
}

#[test]
fn unique_indexes_name_themselves_and_dropped_indexes_are_freed() {
    let (db, people) = setup();
    let collections = db.root().schema("s").collections();
    people
        .create(
            "p1",
            json!({"name": "Ann", "email": "ann@example.com"}),
            None,
        )
        .unwrap();
    people
        .create(
            "p2",
            json!({"name": "Bob", "email": "ann@example.com"}),
            None,
        )
        .unwrap();
    // Existing duplicates: the index is not created.
    let r = collections.create_index("people", permdb::IndexSpec::unique("one_email", ["email"]));
    assert!(
        matches!(r, Err(Error::Conflict { ref message, .. }) if message.contains("\"one_email\"")),
        "{r:?}"
    );
    people
        .update("p2", json!({"email": "bob@example.com"}), None)
        .unwrap();
    collections
        .create_index("people", permdb::IndexSpec::unique("one_email", ["email"]))
        .unwrap();
    let before = dump(&people);
    let r = people.create(
        "p3",
        json!({"name": "Cy", "email": "bob@example.com"}),
        None,
    );
    assert!(
        matches!(r, Err(Error::Conflict { ref message, .. }) if message.contains("unique index \"one_email\"")),
        "{r:?}"
    );
    let r = people.update("p1", json!({"email": "bob@example.com"}), None);
    assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
    assert_eq!(dump(&people), before, "store unchanged");
    // Missing values are never duplicates; a document may keep its own value.
    people.create("p4", json!({"name": "Di"}), None).unwrap();
    people.create("p5", json!({"name": "Ed"}), None).unwrap();
    people
        .update("p1", json!({"email": "ann@example.com", "age": 3}), None)
        .unwrap();

    collections
        .create_index("people", permdb::IndexSpec::fulltext("words", "name"))
        .unwrap();
    assert_eq!(
        people.count(&[Query::search("name", "ann bob")]).unwrap(),
        2
    );
    let info = collections.get("people").unwrap();
    assert_eq!(info.indexes.len(), 2);
    collections.delete_index("people", "words").unwrap();
    assert!(matches!(
        people.count(&[Query::search("name", "ann")]),
        Err(Error::InvalidQuery(_))
    ));
    collections.delete_index("people", "one_email").unwrap();
    people
        .create(
            "p6",
            json!({"name": "Fi", "email": "bob@example.com"}),
            None,
        )
        .unwrap();
    assert!(matches!(
        collections.delete_index("people", "one_email"),
        Err(Error::NotFound { .. })
    ));
    for bad in [
        permdb::IndexSpec::key("k", ["nope"]),
        permdb::IndexSpec::key("k", ["tags"]),
        permdb::IndexSpec::fulltext("f", "age"),
        permdb::IndexSpec::key("k", Vec::<&str>::new()),
    ] {
        assert!(matches!(
            collections.create_index("people", bad),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn index_answers_follow_every_write() {
    let (db, people) = setup();
    let collections = db.root().schema("s").collections();
    for spec in [
        permdb::IndexSpec::key("by_level", ["level"]),
        permdb::IndexSpec::key("by_active_age", ["active", "age"]),
        permdb::IndexSpec::fulltext("by_name", "name"),
    ] {
        collections.create_index("people", spec).unwrap();
    }
    let ids = |q: Query| -> Vec<String> {
        let found = people.find(std::slice::from_ref(&q)).unwrap();
        assert_eq!(people.count(&[q]).unwrap(), found.total);
        found.documents.iter().map(|d| d.id().to_owned()).collect()
    };
    let level = |v: &str| Query::equal("level", [v]);
    let active = Query::equal("active", [true]);
    let ann = || Query::search("name", "ann");
    people
        .create(
            "p1",
            json!({"name": "Ann", "level": "low", "age": 30}),
            None,
        )
        .unwrap();
    people
        .create(
            "p2",
            json!({"name": "Bob", "level": "high", "age": 40}),
            None,
        )
        .unwrap();
    // Each answer is asked first, so a stale one kept in memory would show below.
    assert_eq!(ids(level("low")), ["p1"]);
    assert_eq!(ids(level("high")), ["p2"]);
    assert_eq!(ids(active.clone()), ["p1", "p2"]);
    assert_eq!(ids(ann()), ["p1"]);

    people.update("p1", json!({"level": "high"}), None).unwrap();
    assert_eq!(ids(level("low")), Vec::<String>::new());
    assert_eq!(ids(level("high")), ["p1", "p2"]);
    people.update("p2", json!({"active": false}), None).unwrap();
    assert_eq!(ids(active.clone()), ["p1"]);
    people.update("p1", json!({"name": "Cat"}), None).unwrap();
    assert_eq!(ids(ann()), Vec::<String>::new());
    people.delete("p2").unwrap();
    assert_eq!(ids(level("high")), ["p1"]);
    people
        .create("p3", json!({"name": "Ann", "level": "low"}), None)
        .unwrap();
    assert_eq!(ids(level("low")), ["p3"]);
    assert_eq!(ids(active), ["p1", "p3"]);
    assert_eq!(ids(ann()), ["p3"]);
    // Dropping the index leaves the same answers, from the documents.
    collections.delete_index("people", "by_level").unwrap();
    assert_eq!(ids(level("low")), ["p3"]);
}

/// Datetimes as Appwrite takes them (a date alone, a space, any offset) are stored in UTC
/// with milliseconds, and queries and unique indexes compare those stored forms.
#[test]
fn datetimes_are_stored_and_compared_in_utc() {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(&db, "s", CollectionSpec::new("events", "Events"));
    let collections = db.root().schema("s").collections();
    for spec in [
        AttributeSpec::datetime("at"),
        AttributeSpec::datetime("also").array(true),
        AttributeSpec::datetime("since").default("2000-01-01"),
    ] {
        collections.create_attribute("events", spec).unwrap();
    }
    collections
        .create_index("events", IndexSpec::unique("one_at", ["at"]))
        .unwrap();
    let e1 = coll
        .create(
            "e1",
            json!({"at": "2012-02-03", "also": ["2012-02-03 10:00", "2012-02-03T12:00:00+02:00"]}),
            None,
        )
        .unwrap();
    assert_eq!(e1.get("at"), Some(&json!("2012-02-03T00:00:00.000+00:00")));
    assert_eq!(
        e1.get("also"),
        Some(&json!([
            "2012-02-03T10:00:00.000+00:00",
            "2012-02-03T10:00:00.000+00:00"
        ]))
    );
    assert_eq!(
        e1.get("since"),
        Some(&json!("2000-01-01T00:00:00.000+00:00")),
        "default"
    );
    coll.create("e2", json!({"at": "2012-02-03T23:30:00-01:00"}), None)
        .unwrap();
    // The same instant in another form is the same value to the unique index.
    let r = coll.create("e3", json!({"at": "2012-02-03T01:00:00+01:00"}), None);
    assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
    // Queries take the same forms and compare instants.
    let ids = |queries: &[Query]| -> Vec<String> {
        coll.find(queries)
            .unwrap()
            .documents
            .iter()
            .map(|d| d.id().to_owned())
            .collect()
    };
    assert_eq!(ids(&[Query::equal("at", ["2012-02-03"])]), ["e1"]);
    assert_eq!(
        ids(&[Query::equal("at", ["2012-02-04T00:30:00.000+00:00"])]),
        ["e2"]
    );
    assert_eq!(
        ids(&[Query::greater_than("at", "2012-02-03T21:00:00-02:00")]),
        ["e2"]
    );
    assert_eq!(
        ids(&[Query::between("at", "2012-02-02", "2012-02-03 00:00:00")]),
        ["e1"]
    );
    assert_eq!(
        ids(&[Query::contains("also", ["2012-02-03T11:00:00+01:00"])]),
        ["e1"]
    );
    assert_eq!(
        ids(&[Query::greater_than("$createdAt", "2000-01-01")]),
        ["e1", "e2"]
    );
    // An update normalizes what it sets.
    let e2 = coll
        .update("e2", json!({"at": "2030-06-01 08:00:00.1234"}), None)
        .unwrap();
    assert_eq!(e2.get("at"), Some(&json!("2030-06-01T08:00:00.123+00:00")));
    // Bad datetimes in queries are invalid queries, naming the value.
    for bad in ["yesterday", "2012-02-30"] {
        let r = coll.find(&[Query::equal("at", [bad])]);
        assert!(
            matches!(&r, Err(Error::InvalidQuery(m)) if m.contains(bad)),
            "{r:?}"
        );
    }
    let r = coll.find(&[Query::starts_with("at", "2012")]);
    assert!(matches!(r, Err(Error::InvalidQuery(_))), "{r:?}");
}

/// Increments are atomic read-modify-writes: concurrent ones all count; limits, types and
/// permissions are checked as for any update.
#[test]
fn increments_count_every_time_and_respect_limits() {
    // (Who may increment: crates/permdb-server/tests/server_models.rs, over HTTP, with users.)
    let (db, people) = setup();
    people
        .create("p1", json!({"name": "Ann", "age": 1}), None)
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let people = people.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    people.increment("p1", "age", 1.0, None).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        people.get("p1").unwrap().get("age"),
        Some(&json!(201)),
        "every increment counts"
    );
    let doc = people.increment("p1", "age", -200.0, Some(0.0)).unwrap();
    assert_eq!(doc.get("age"), Some(&json!(1)));
    let before = dump(&people);
    for (attribute, by, limit, fault) in [
        ("age", -2.0, Some(0.0), "the result would pass the limit 0"),
        ("age", 5.0, Some(3.0), "the result would pass the limit 3"),
        ("age", 0.5, None, "not a valid integer"),
        ("name", 1.0, None, "the stored value is not a number"),
        ("nothing", 1.0, None, "not in the collection's schema"),
    ] {
        let r = people.increment("p1", attribute, by, limit);
        assert!(
            matches!(&r, Err(Error::InvalidDocument(m)) if m.contains(fault) && !m.contains("Ann")),
            "{attribute} {by}: {r:?} (a refusal never shows the stored value)"
        );
    }
    let r = people.increment("p1", "age", f64::NAN, None);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(dump(&people), before, "refusals change nothing");
    // A missing value counts as 0; floats add as floats.
    assert_eq!(
        people
            .increment("p1", "score", 0.25, None)
            .unwrap()
            .get("score"),
        Some(&json!(0.75))
    );
    people.create("p2", json!({"name": "Bo"}), None).unwrap();
    assert_eq!(
        people
            .increment("p2", "age", 3.0, Some(3.0))
            .unwrap()
            .get("age"),
        Some(&json!(3))
    );
    // Integer overflow is refused, not wrapped.
    people.update("p2", json!({"age": i64::MAX}), None).unwrap();
    let r = people.increment("p2", "age", 1.0, None);
    assert!(
        matches!(&r, Err(Error::InvalidDocument(m)) if m.contains("out of range")),
        "{r:?}"
    );
    drop(db);
}
