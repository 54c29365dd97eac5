//! The seed scenario of docs/ARCHITECTURE.md, "The seed scenario", as far as the core engine goes:
//! user-a sees exactly doc1, root and an API key see all three.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{CollectionSpec, Db, Permission, Query, Role};
use serde_json::json;

#[test]
fn user_a_sees_kevin_and_root_sees_everyone() {
    let db = common::temporary().unwrap();
    let root = db.root();
    let spec = CollectionSpec::new("birthdays", "Birthdays")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    let birthdays = common::create_collection(&db, "db", spec);
    for (id, name, day, user) in [
        ("doc1", "Kevin", "2012-02-03", "user-a"),
        ("doc2", "Laura", "1999-09-22", "user-b"),
        ("doc3", "Bob", "1982-05-11", "user-c"),
    ] {
        birthdays
            .create(
                id,
                json!({"name": name, "birthday": day}),
                Some(vec![Permission::read(Role::user(user))]),
            )
            .unwrap();
    }
    for (user, expected) in [("user-a", "doc1"), ("user-b", "doc2"), ("user-c", "doc3")] {
        let page = root
            .impersonate(user)
            .unwrap()
            .schema("db")
            .collection("birthdays")
            .find(&[
                Query::equal("name", ["Kevin", "Laura", "Bob"]),
                Query::limit(25),
            ])
            .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(
            page.documents.iter().map(|d| d.id()).collect::<Vec<_>>(),
            [expected]
        );
    }
    let all = birthdays.find(&[]).unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(
        all.documents
            .iter()
            .map(|d| d.get("name").unwrap().as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Kevin", "Laura", "Bob"]
    );
    // A guest sees nothing, and is told so without an error.
    assert_eq!(
        db.client()
            .schema("db")
            .collection("birthdays")
            .find(&[])
            .unwrap()
            .total,
        0
    );
    // Debug output never needs to hide anything yet, but it must not dump the store.
    assert!(format!("{db:?}").starts_with("Db"));
    assert_eq!(
        format!("{:?}", root.impersonate("user-a").unwrap()),
        "Client { principal: \"user user-a\", .. }"
    );
}

/// docs/ARCHITECTURE.md, "The seed scenario" through the real chain: sign-up, email and password session,
/// token, backend client from the token; an API key; logout; expiry.
#[test]
fn the_seed_scenario_through_sign_in_and_tokens() {
    let (options, clock) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    let key = db
        .root()
        .keys()
        .create(
            "backend",
            &[permdb::Scope::DocumentsRead, permdb::Scope::DocumentsWrite],
        )
        .unwrap();

    let guest = db.client();
    let session = guest
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    let alice = db.client().set_session(&session.secret).unwrap();
    let jwt = alice.account().create_jwt().unwrap();

    let as_user = db.client().set_jwt(&jwt.jwt).unwrap();
    let page = as_user
        .schema("db")
        .collection("birthdays")
        .find(&[Query::equal("name", ["Kevin"]), Query::limit(25)])
        .unwrap();
    assert_eq!((page.total, page.documents[0].id()), (1, "doc1"));
    assert_eq!(
        as_user
            .schema("db")
            .collection("birthdays")
            .find(&[])
            .unwrap()
            .total,
        1
    );

    let admin = db.client().set_key(&key.secret).unwrap();
    assert_eq!(
        admin
            .schema("db")
            .collection("birthdays")
            .find(&[])
            .unwrap()
            .total,
        3
    );

    alice.account().delete_session(&session.id).unwrap();
    assert!(matches!(
        db.client().set_jwt(&jwt.jwt),
        Err(permdb::Error::InvalidToken(
            permdb::TokenError::SessionRevoked
        ))
    ));

    let session = guest
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    let jwt = db
        .client()
        .set_session(&session.secret)
        .unwrap()
        .account()
        .create_jwt()
        .unwrap();
    clock.advance(time::Duration::minutes(15) + time::Duration::seconds(61));
    assert!(matches!(
        db.client().set_jwt(&jwt.jwt),
        Err(permdb::Error::InvalidToken(permdb::TokenError::Expired))
    ));
}

/// README's first command runs this scenario (`cargo run --release --example seed`); it
/// checks every outcome itself and fails on a wrong one.
#[test]
fn the_seed_scenario_of_the_example_and_the_demo_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let result = permdb::demo::seed_scenario(&dir.path().join("store"), &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(result.is_ok(), "{result:?}\n{out}");
    assert!(
        out.contains("backend with a-token   total 1  [\"Kevin\"]"),
        "{out}"
    );
    assert!(
        out.contains("16 minutes later:      invalid token: token expired"),
        "{out}"
    );
}
