//! Every documented limit (README's table), taken at the limit and one past it: the first
//! succeeds, the second is refused with the documented error naming the limit and
//! leaves the store as it was. The numbers are README's, written here as literals: a
//! constant that drifted from the documentation must fail this file, not follow it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{
    AttributeSpec, Collection, CollectionSpec, Db, Error, IndexSpec, Permission, Query, Role,
    TokenError,
};
use serde_json::{Map, Value, json};

fn store() -> (Db, Collection) {
    let (options, _) = common::test_options();
    let db = Db::open_with(tempfile::tempdir().unwrap().keep(), options).unwrap();
    let c = common::create_collection(
        &db,
        "s",
        CollectionSpec::new("c", "C").document_security(true),
    );
    (db, c)
}

/// Asserts `result` failed as `kind` with a message containing `says`.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: permdb::Result<T>, kind: fn(&Error) -> bool, says: &str) {
    match result {
        Err(e) if kind(&e) && e.to_string().contains(says) => {}
        Err(e) => panic!("expected a refusal saying {says:?}, got {e:?}"),
        Ok(v) => {
            let shown: String = format!("{v:?}").chars().take(200).collect();
            panic!("expected a refusal saying {says:?}, got Ok({shown}...)")
        }
    }
}

fn limit_exceeded(e: &Error) -> bool {
    matches!(e, Error::LimitExceeded(_))
}
fn invalid_query(e: &Error) -> bool {
    matches!(e, Error::InvalidQuery(_))
}
fn invalid_argument(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument(_))
}
fn invalid_document(e: &Error) -> bool {
    matches!(e, Error::InvalidDocument(_))
}
fn invalid_id(e: &Error) -> bool {
    matches!(e, Error::InvalidId(_))
}
fn invalid_role(e: &Error) -> bool {
    matches!(e, Error::InvalidRole(_) | Error::InvalidPermission(_))
}

fn count(c: &Collection) -> u64 {
    c.count(&[]).unwrap()
}

#[test]
fn encoded_document_size() {
    let (_db, c) = store();
    let doc = |pad: usize| json!({"pad": "x".repeat(pad)});
    // The largest padding that fits, found by bisection; one more byte must not fit.
    // The encoded size counts the id too, so every id here is two characters.
    let (mut fits, mut too_big) = (0usize, 2 << 20);
    while too_big - fits > 1 {
        let mid = (fits + too_big) / 2;
        match c.create("pr", doc(mid), None) {
            Ok(_) => {
                c.delete("pr").unwrap();
                fits = mid;
            }
            Err(Error::LimitExceeded(_)) => too_big = mid,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        (1 << 20) - fits < 64,
        "1 MiB holds only {fits} bytes of padding"
    );
    c.create("at", doc(fits), None).unwrap();
    refused(
        c.create("pa", doc(fits + 1), None),
        limit_exceeded,
        "1048577 bytes encoded, at most 1048576",
    );
    refused(
        c.update("at", doc(fits + 1), None),
        limit_exceeded,
        "1048577 bytes encoded, at most 1048576",
    );
    assert_eq!(
        c.get("at").unwrap().data()["pad"].as_str().unwrap().len(),
        fits
    );
    assert_eq!(count(&c), 1);
}

#[test]
fn top_level_attributes() {
    let (_db, c) = store();
    let fields = |n: usize| {
        let m: Map<String, Value> = (0..n).map(|i| (format!("f{i}"), json!(i))).collect();
        Value::Object(m)
    };
    c.create("at", fields(1000), None).unwrap();
    refused(c.create("past", fields(1001), None), limit_exceeded, "1000");
    assert_eq!(count(&c), 1);
}

#[test]
fn nesting_depth() {
    let (_db, c) = store();
    // `depth` levels, the document's own object included.
    let nested = |depth: usize| {
        let mut v = json!(1);
        for _ in 1..depth {
            v = json!([v]);
        }
        json!({ "a": v })
    };
    c.create("at", nested(32), None).unwrap();
    assert_eq!(
        c.get("at").unwrap().data()["a"],
        nested(32)["a"],
        "read back whole"
    );
    refused(c.create("past", nested(33), None), limit_exceeded, "32");
    assert_eq!(count(&c), 1);
}

#[test]
fn permissions_per_document_and_collection() {
    let (db, c) = store();
    let perms = |n: usize| -> Vec<Permission> {
        (0..n)
            .map(|i| Permission::read(Role::user(format!("u{i}"))))
            .collect()
    };
    c.create("at", json!({}), Some(perms(100))).unwrap();
    refused(
        c.create("past", json!({}), Some(perms(100 + 1))),
        limit_exceeded,
        "at most 100",
    );
    let collections = db.root().schema("s").collections();
    collections
        .create(CollectionSpec::new("at", "At").permissions(perms(100)))
        .unwrap();
    refused(
        collections.create(CollectionSpec::new("past", "Past").permissions(perms(100 + 1))),
        limit_exceeded,
        "at most 100",
    );
    assert_eq!(count(&c), 1);
    assert_eq!(collections.list().unwrap().len(), 2);
}

#[test]
fn ids_names_and_field_names() {
    let (db, c) = store();
    let id = |n: usize| "i".repeat(n);
    c.create(&id(36), json!({}), None).unwrap();
    refused(c.create(&id(36 + 1), json!({}), None), invalid_id, "36");
    let schemas = db.root().schemas();
    schemas.create("named", &"n".repeat(128)).unwrap();
    refused(
        schemas.create("named2", &"n".repeat(128 + 1)),
        invalid_argument,
        "128",
    );
    // API key, team and user names (a user may have none; the others need one).
    let root = db.root();
    root.keys().create(&"k".repeat(128), &[]).unwrap();
    for bad in ["k".repeat(129), String::new()] {
        refused(root.keys().create(&bad, &[]), invalid_argument, "1 to 128");
    }
    assert_eq!(root.keys().list().unwrap().len(), 1);
    root.teams().create("team", &"t".repeat(128)).unwrap();
    for bad in ["t".repeat(129), String::new()] {
        refused(
            root.teams().create("team2", &bad),
            invalid_argument,
            "1 to 128",
        );
    }
    assert_eq!(root.teams().list().unwrap().len(), 1);
    let users = root.users();
    users
        .create("u1", "u1@example.com", "password-1", Some(&"u".repeat(128)))
        .unwrap();
    users
        .create("u2", "u2@example.com", "password-2", Some(""))
        .unwrap();
    refused(
        users.create("u3", "u3@example.com", "password-3", Some(&"u".repeat(129))),
        invalid_argument,
        "128",
    );
    assert_eq!(users.list().unwrap().len(), 2);
    let field = |n: usize| json!({ "f".repeat(n): 1 });
    c.create("field", field(255), None).unwrap();
    refused(
        c.create("field2", field(255 + 1), None),
        invalid_document,
        "255",
    );
    assert_eq!(count(&c), 2);
}

#[test]
fn query_values_queries_nesting_and_page_size() {
    let (_db, c) = store();
    c.create("d", json!({"n": 1}), None).unwrap();
    let values = |n: usize| Query::equal("n", (0..n).map(|i| i as i64));
    assert_eq!(c.count(&[values(100)]).unwrap(), 1);
    refused(c.count(&[values(100 + 1)]), invalid_query, "100 values");
    let queries = |n: usize| vec![Query::equal("n", [1]); n];
    assert_eq!(c.count(&queries(100)).unwrap(), 1);
    refused(c.count(&queries(100 + 1)), invalid_query, "100 queries");
    // `levels` levels of queries, the innermost filter included.
    let nested = |levels: usize| {
        let mut q = Query::equal("n", [1]);
        for i in 1..levels {
            q = if i % 2 == 0 {
                Query::and([q])
            } else {
                Query::or([q])
            };
        }
        q
    };
    assert_eq!(c.count(&[nested(5)]).unwrap(), 1);
    refused(c.count(&[nested(5 + 1)]), invalid_query, "deeper than 5");
    assert_eq!(c.find(&[Query::limit(5000)]).unwrap().total, 1);
    refused(c.find(&[Query::limit(5000 + 1)]), invalid_query, "5000");
}

#[test]
fn roles_and_labels() {
    let (db, c) = store();
    let team_role = |n: usize| Role::team_role("t", "r".repeat(n));
    c.create("at", json!({}), Some(vec![Permission::read(team_role(81))]))
        .unwrap();
    refused(
        format!("read(\"team:t/{}\")", "r".repeat(81 + 1)).parse::<Permission>(),
        invalid_role,
        "81",
    );
    let label = |n: usize| format!("read(\"label:{}\")", "l".repeat(n));
    assert!(label(36).parse::<Permission>().is_ok());
    refused(label(36 + 1).parse::<Permission>(), invalid_role, "36");
    let users = db.root().users();
    users
        .create("u", "u@example.com", "password-u", None)
        .unwrap();
    let labels: Vec<String> = (0..=100).map(|i| format!("l{i}")).collect();
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    users.update_labels("u", &refs[..100]).unwrap();
    refused(users.update_labels("u", &refs), limit_exceeded, "100");
    assert_eq!(users.get("u").unwrap().labels.len(), 100);

    let teams = db.root().teams();
    teams.create("t", "T").unwrap();
    users
        .create("v", "v@example.com", "password-v", None)
        .unwrap();
    refused(
        teams.create_membership("t", "v", &refs),
        limit_exceeded,
        "100",
    );
    assert!(teams.list_memberships("t").unwrap().is_empty());
    teams.create_membership("t", "u", &refs[..100]).unwrap();
}

#[test]
fn passwords_and_emails() {
    let (db, _c) = store();
    let account = db.client().account();
    let email = |n: usize| format!("{}@example.com", "e".repeat(n - "@example.com".len()));
    account
        .create("a", &email(254), &"p".repeat(256), None)
        .unwrap();
    account
        .create("b", "b@example.com", &"p".repeat(8), None)
        .unwrap();
    refused(
        account.create("c", "c@example.com", &"p".repeat(256 + 1), None),
        invalid_argument,
        "256",
    );
    refused(
        account.create("d", "d@example.com", &"p".repeat(8 - 1), None),
        invalid_argument,
        "8",
    );
    refused(
        account.create("e", &email(254 + 1), "password-e", None),
        invalid_argument,
        "254",
    );
    // Exactly one `@`, with something on each side.
    for bad in [
        "two@at@example.com",
        "@example.com",
        "nobody@",
        "no-at.example.com",
        "a space@example.com",
        "bell\u{7}@example.com",
    ] {
        refused(
            account.create("f", bad, "password-f", None),
            invalid_argument,
            "invalid email",
        );
    }
    assert_eq!(db.root().users().list().unwrap().len(), 2);
}

#[test]
fn attributes_per_collection_and_string_size() {
    let (db, c) = store();
    let collections = db.root().schema("s").collections();
    collections
        .create_attribute("c", AttributeSpec::string("s", 5))
        .unwrap();
    c.create("at", json!({"s": "12345"}), None).unwrap();
    refused(
        c.create("past", json!({"s": "123456"}), None),
        invalid_document,
        "5",
    );
    collections
        .create_attribute("c", AttributeSpec::string("big", 1_048_576))
        .unwrap();
    refused(
        collections.create_attribute("c", AttributeSpec::string("bigger", 1_048_576 + 1)),
        invalid_argument,
        "1048576",
    );
    for i in 2..200 {
        collections
            .create_attribute("c", AttributeSpec::integer(&format!("a{i}")))
            .unwrap();
    }
    refused(
        collections.create_attribute("c", AttributeSpec::integer("one_more")),
        limit_exceeded,
        "200",
    );
    assert_eq!(collections.get("c").unwrap().attributes.len(), 200);
    assert_eq!(count(&c), 1);
}

#[test]
fn token_text() {
    let (db, _c) = store();
    // At the limit a token is parsed (and refused for what it says); past it, not even read.
    let at = format!("pdb1.{}", "A".repeat(512 - 5));
    assert_eq!(at.len(), 512);
    match db.client().set_jwt(&at) {
        Err(Error::InvalidToken(e)) => assert!(!matches!(e, TokenError::TooLong { .. }), "{e}"),
        other => panic!("{other:?}"),
    }
    let past = format!("pdb1.{}", "A".repeat(512 - 4));
    match db.client().set_jwt(&past) {
        Err(Error::InvalidToken(TokenError::TooLong { len, max })) => {
            assert_eq!((len, max), (513, 512));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn attributes_per_index() {
    let (db, c) = store();
    let collections = db.root().schema("s").collections();
    for i in 0..9 {
        collections
            .create_attribute("c", AttributeSpec::integer(&format!("a{i}")))
            .unwrap();
    }
    let names: Vec<String> = (0..9).map(|i| format!("a{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    collections
        .create_index("c", IndexSpec::key("eight", names[..8].iter().copied()))
        .unwrap();
    refused(
        collections.create_index("c", IndexSpec::key("nine", names.iter().copied())),
        invalid_argument,
        "1 to 8 attributes",
    );
    refused(
        collections.create_index("c", IndexSpec::key("none", [])),
        invalid_argument,
        "1 to 8 attributes",
    );
    collections
        .create_attribute("c", AttributeSpec::string("t", 100))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("u", 100))
        .unwrap();
    let mut two = IndexSpec::fulltext("two", "t");
    two.attributes.push("u".into());
    refused(
        collections.create_index("c", two),
        invalid_argument,
        "exactly one attribute",
    );
    refused(
        collections.create_index("c", IndexSpec::fulltext("number", "a0")),
        invalid_argument,
        "not a string",
    );
    collections
        .create_index("c", IndexSpec::fulltext("words", "t"))
        .unwrap();
    let indexes = collections.get("c").unwrap().indexes;
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert_eq!(count(&c), 0);
}
