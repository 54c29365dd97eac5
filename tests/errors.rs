//! Typed errors: every refusal names its reason (`Denial`), every conflict its resource
//! kind and the id the call tried to write, and storage failures keep their source.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::error::Error as _;

use permdb::{
    AttributeSpec, CollectionSpec, Db, Denial, Error, IndexSpec, Permission, ResourceKind, Role,
    Scope,
};
use serde_json::json;

#[track_caller]
fn denial<T: std::fmt::Debug>(r: permdb::Result<T>) -> Denial {
    match r {
        Err(Error::Unauthorized { reason, .. }) => reason,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[track_caller]
fn conflict<T: std::fmt::Debug>(r: permdb::Result<T>) -> (ResourceKind, String) {
    match r {
        Err(Error::Conflict { kind, id, .. }) => (kind, id),
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[test]
fn each_refusal_names_its_reason() {
    let db = common::temporary().unwrap();
    common::seed(&db);
    let root = db.root();
    // Credentials.
    let wrong = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-x");
    assert_eq!(denial(wrong), Denial::InvalidCredentials);
    let unknown = db
        .client()
        .account()
        .create_email_password_session("nobody@example.com", "password-x");
    assert_eq!(denial(unknown), Denial::InvalidCredentials);
    assert_eq!(
        denial(db.client().set_session("pdbs_nope.AAAA")),
        Denial::CredentialRefused
    );
    assert_eq!(
        denial(db.client().set_key("pdbk_nope.AAAA")),
        Denial::CredentialRefused
    );
    // A held client whose session ends.
    let a = common::sign_in(&db, "a");
    let birthdays = a.schema("db").collection("birthdays");
    birthdays.get("doc1").unwrap();
    a.account().delete_sessions().unwrap();
    assert_eq!(denial(birthdays.get("doc1")), Denial::CredentialRefused);
    // Permissions.
    let b = common::sign_in(&db, "b");
    let b_birthdays = b.schema("db").collection("birthdays");
    assert_eq!(
        denial(b_birthdays.update("doc2", json!({"name": "L"}), None)),
        Denial::NotGranted,
        "user-b may read doc2 but not change it"
    );
    assert_eq!(
        denial(b_birthdays.create(
            "x",
            json!({}),
            Some(vec![Permission::read(Role::user("user-a"))])
        )),
        Denial::NotGranted,
        "user-b does not hold user:user-a"
    );
    // Scopes: a key without documents.read, a user at an admin call.
    let key = root.keys().create("k", &[Scope::UsersRead]).unwrap();
    let keyed = db.client().set_key(&key.secret).unwrap();
    assert_eq!(
        denial(keyed.schema("db").collection("birthdays").get("doc1")),
        Denial::MissingScope
    );
    assert_eq!(denial(b.users().list()), Denial::MissingScope);
    // The wrong kind of client.
    assert_eq!(denial(db.client().account().get()), Denial::WrongClient);
    // A blocked user.
    root.users().update_status("user-c", false).unwrap();
    let blocked = db
        .client()
        .account()
        .create_email_password_session("c@example.com", "password-c");
    assert_eq!(denial(blocked), Denial::UserBlocked);
}

#[test]
fn each_conflict_names_its_kind_and_the_id_written() {
    let db = common::temporary().unwrap();
    common::seed(&db);
    let root = db.root();
    let users = root.users();
    assert_eq!(
        conflict(users.create("user-a", "new@example.com", "password-n", None)),
        (ResourceKind::User, "user-a".into())
    );
    assert_eq!(
        conflict(users.create("user-n", "A@example.com", "password-n", None)),
        (ResourceKind::User, "user-n".into()),
        "a taken email names the user being created, never the email's holder"
    );
    assert_eq!(
        conflict(root.schemas().create("db", "Again")),
        (ResourceKind::Schema, "db".into())
    );
    assert_eq!(
        conflict(
            root.schema("db")
                .collections()
                .create(CollectionSpec::new("birthdays", "B"))
        ),
        (ResourceKind::Collection, "birthdays".into())
    );
    let collections = root.schema("db").collections();
    collections
        .create_attribute("birthdays", AttributeSpec::string("name", 64))
        .unwrap();
    assert_eq!(
        conflict(collections.create_attribute("birthdays", AttributeSpec::string("name", 64))),
        (ResourceKind::Attribute, "name".into())
    );
    collections
        .create_index("birthdays", IndexSpec::unique("one_name", ["name"]))
        .unwrap();
    assert_eq!(
        conflict(collections.create_index("birthdays", IndexSpec::key("one_name", ["name"]))),
        (ResourceKind::Index, "one_name".into())
    );
    let birthdays = root.schema("db").collection("birthdays");
    assert_eq!(
        conflict(birthdays.create("doc1", json!({"name": "Other"}), None)),
        (ResourceKind::Document, "doc1".into())
    );
    assert_eq!(
        conflict(birthdays.create("doc9", json!({"name": "Kevin"}), None)),
        (ResourceKind::Document, "doc9".into()),
        "a unique index's values name the document being written, never the holder"
    );
    root.teams().create("t1", "T1").unwrap();
    assert_eq!(
        conflict(root.teams().create("t1", "T1")),
        (ResourceKind::Team, "t1".into())
    );
    root.teams().create_membership("t1", "user-a", &[]).unwrap();
    assert_eq!(
        conflict(root.teams().create_membership("t1", "user-a", &[])),
        (ResourceKind::Membership, "user-a".into())
    );
}

#[test]
fn a_storage_failure_keeps_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let held = Db::open_with(dir.path(), common::options()).unwrap();
    let err = Db::open_with(dir.path(), common::options()).expect_err("the store is held");
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    let source = err.source().expect("the engine's error is the source");
    // A lock held elsewhere is said as such, not as the OS error's debug form (which
    // stays reachable as the source).
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string())
            && message.contains("is open elsewhere: another process"),
        "{message}"
    );
    assert!(!message.contains("Os {"), "{message}");
    assert!(!source.to_string().is_empty());
    drop(held);
}
