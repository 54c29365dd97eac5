//! The seed scenario of DESIGN.md section 1, as far as the core engine goes:
//! user-a sees exactly doc1, root sees all three. (Sign-in and tokens come later.)

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
    let db = Db::temporary().unwrap();
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
