//! The permission rules of docs/ARCHITECTURE.md, "Permission rules" and the input checks, one test each:
//! the typed error, a message naming the fault, and the store unchanged afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{
    Client, Collection, CollectionSpec, Db, Error, Limits, Permission, Query, ResourceKind, Role,
};
use serde_json::json;

/// Schema `s`, collection `c` with the given collection permissions and document security.
fn setup(perms: Vec<Permission>, document_security: bool) -> Db {
    let db = common::temporary().unwrap();
    let spec = CollectionSpec::new("c", "C")
        .permissions(perms)
        .document_security(document_security);
    common::create_collection(&db, "s", spec);
    db
}

fn coll(client: &Client) -> Collection {
    client.schema("s").collection("c")
}

fn user(db: &Db, id: &str) -> Collection {
    coll(&db.root().impersonate(id).unwrap())
}

/// Everything a root client can see, as text: compared before and after a refused call.
fn snapshot(db: &Db) -> String {
    let root = db.root();
    let mut out = String::new();
    for schema in root.schemas().list().unwrap() {
        out += &format!("schema {} {}\n", schema.id, schema.name);
        for c in root.schema(&schema.id).collections().list().unwrap() {
            out += &format!(
                "collection {} {:?} {}\n",
                c.id, c.permissions, c.document_security
            );
            let docs = root
                .schema(&schema.id)
                .collection(&c.id)
                .find(&[Query::limit(5000)])
                .unwrap();
            out += &serde_json::to_string(&docs.documents).unwrap();
            out += "\n";
        }
    }
    out
}

/// Runs `f`, asserts it failed as `check` says, and that the store did not change.
fn refused<T: std::fmt::Debug>(
    db: &Db,
    f: impl FnOnce() -> permdb::Result<T>,
    check: impl FnOnce(&Error) -> bool,
    fault: &str,
) {
    let before = snapshot(db);
    match f() {
        Ok(v) => panic!("expected an error naming {fault:?}, got {v:?}"),
        Err(e) => {
            assert!(check(&e), "wrong variant: {e:?}");
            assert!(e.to_string().contains(fault), "{e} lacks {fault:?}");
        }
    }
    assert_eq!(snapshot(db), before, "store changed by a refused call");
}

fn unauthorized(e: &Error) -> bool {
    matches!(e, Error::Unauthorized { .. })
}

fn doc_not_found(id: &'static str) -> impl FnOnce(&Error) -> bool {
    move |e| matches!(e, Error::NotFound { kind: ResourceKind::Document, id: got } if got == id)
}

fn seed(db: &Db) {
    let read = |u: &str| Permission::read(Role::user(u));
    let docs = [
        ("a1", 1, vec![read("ua")]),
        (
            "a2",
            2,
            vec![read("ua"), Permission::write(Role::user("ua"))],
        ),
        ("b1", 3, vec![read("ub")]),
        ("any1", 4, vec![Permission::read(Role::any())]),
        ("guest1", 5, vec![Permission::read(Role::guests())]),
    ];
    let docs = docs.map(|(id, n, perms)| (id, json!({ "n": n }), Some(perms)));
    coll(&db.root()).create_many(docs).unwrap();
}

fn ids(c: &Collection) -> Vec<String> {
    c.find(&[])
        .unwrap()
        .documents
        .iter()
        .map(|d| d.id().to_string())
        .collect()
}

#[test]
fn collection_level_read_grants_every_document() {
    let db = setup(vec![Permission::read(Role::users())], true);
    seed(&db);
    assert_eq!(ids(&user(&db, "ub")), ["a1", "a2", "b1", "any1", "guest1"]);
    assert_eq!(user(&db, "ub").get("a1").unwrap().id(), "a1");
    // Guests do not hold `users`: document security applies to them.
    assert_eq!(ids(&coll(&db.client())), ["any1", "guest1"]);
}

#[test]
fn document_security_filters_by_document_permissions() {
    let db = setup(vec![], true);
    seed(&db);
    assert_eq!(ids(&user(&db, "ua")), ["a1", "a2", "any1"]);
    assert_eq!(ids(&user(&db, "ub")), ["b1", "any1"]);
    assert_eq!(user(&db, "ua").count(&[]).unwrap(), 3);
    assert_eq!(ids(&coll(&db.root())), ["a1", "a2", "b1", "any1", "guest1"]);
}

#[test]
fn without_a_grant_or_document_security_reads_are_unauthorized() {
    let db = setup(vec![Permission::create(Role::users())], false);
    seed(&db);
    let ua = user(&db, "ua");
    refused(&db, || ua.find(&[]), unauthorized, "document security off");
    refused(&db, || ua.count(&[]), unauthorized, "document security off");
    refused(&db, || ua.get("a1"), unauthorized, "grants no read");
    refused(&db, || ua.get("missing"), unauthorized, "grants no read");
}

#[test]
fn unreadable_documents_are_not_found_exactly_like_missing_ones() {
    let db = setup(vec![], true);
    seed(&db);
    let ua = user(&db, "ua");
    refused(
        &db,
        || ua.get("b1"),
        doc_not_found("b1"),
        "document \"b1\" not found",
    );
    refused(
        &db,
        || ua.get("zz"),
        doc_not_found("zz"),
        "document \"zz\" not found",
    );
    refused(
        &db,
        || ua.update("b1", json!({"n": 9}), None),
        doc_not_found("b1"),
        "not found",
    );
    refused(&db, || ua.delete("b1"), doc_not_found("b1"), "not found");
    refused(
        &db,
        || ua.find(&[Query::cursor_after("b1")]),
        doc_not_found("b1"),
        "not found",
    );
    refused(
        &db,
        || ua.find(&[Query::cursor_before("zz")]),
        doc_not_found("zz"),
        "not found",
    );
}

#[test]
fn readable_but_not_changeable_is_unauthorized() {
    let db = setup(vec![], true);
    seed(&db);
    let ua = user(&db, "ua");
    refused(
        &db,
        || ua.update("a1", json!({"n": 9}), None),
        unauthorized,
        "no update permission",
    );
    refused(
        &db,
        || ua.delete("a1"),
        unauthorized,
        "no delete permission",
    );
    // `write` on a2 grants update and delete.
    assert_eq!(
        ua.update("a2", json!({"m": 1}), None).unwrap().get("m"),
        Some(&json!(1))
    );
    ua.delete("a2").unwrap();
    assert_eq!(ids(&ua), ["a1", "any1"]);
}

#[test]
fn collection_level_update_and_delete_apply_to_every_document() {
    let db = setup(
        vec![
            Permission::update(Role::user("ub")),
            Permission::delete(Role::user("ub")),
        ],
        true,
    );
    seed(&db);
    let ub = user(&db, "ub");
    // ub cannot read a1 but the collection lets ub change it (and the answer shows ub
    // nothing of it).
    assert_eq!(
        ub.update("a1", json!({"n": 10}), None).unwrap().get("n"),
        None
    );
    assert_eq!(
        coll(&db.root()).get("a1").unwrap().get("n"),
        Some(&json!(10))
    );
    ub.delete("a1").unwrap();
    refused(&db, || ub.get("a1"), doc_not_found("a1"), "not found");
}

#[test]
fn create_needs_a_collection_grant() {
    let db = setup(vec![Permission::read(Role::any())], true);
    let ua = user(&db, "ua");
    refused(
        &db,
        || ua.create("x", json!({}), None),
        unauthorized,
        "grants no create",
    );
    refused(
        &db,
        || coll(&db.client()).create("x", json!({}), None),
        unauthorized,
        "grants no create",
    );
    let db = setup(vec![Permission::create(Role::user("ua"))], true);
    user(&db, "ua").create("x", json!({}), None).unwrap();
    refused(
        &db,
        || user(&db, "ub").create("y", json!({}), None),
        unauthorized,
        "grants no create",
    );
    // `write` at collection level includes create.
    let db = setup(vec![Permission::write(Role::users())], false);
    user(&db, "ub").create("y", json!({}), None).unwrap();
}

#[test]
fn a_user_may_only_grant_roles_they_hold() {
    let db = setup(vec![Permission::create(Role::users())], true);
    seed(&db);
    let ua = user(&db, "ua");
    for role in [
        Role::user("ub"),
        Role::team("t1"),
        Role::label("vip"),
        Role::guests(),
        Role::users_with(permdb::Verification::Verified),
    ] {
        let shown = role.to_string();
        refused(
            &db,
            || ua.create("x", json!({}), Some(vec![Permission::read(role.clone())])),
            unauthorized,
            &shown,
        );
    }
    refused(
        &db,
        || {
            ua.update(
                "a2",
                json!({}),
                Some(vec![Permission::read(Role::user("ub"))]),
            )
        },
        unauthorized,
        "user:ub",
    );
    // Roles the user holds are fine, and root may name any role.
    ua.create(
        "x",
        json!({}),
        Some(vec![
            Permission::read(Role::any()),
            Permission::read(Role::users()),
        ]),
    )
    .unwrap();
    coll(&db.root())
        .create(
            "y",
            json!({}),
            Some(vec![Permission::read(Role::team("t1"))]),
        )
        .unwrap();
}

#[test]
fn a_users_documents_default_to_their_own_permissions() {
    let db = setup(vec![Permission::create(Role::users())], true);
    let doc = user(&db, "ua")
        .create("mine", json!({"k": "v"}), None)
        .unwrap();
    let perms: Vec<String> = doc.permissions().iter().map(ToString::to_string).collect();
    assert_eq!(
        perms,
        [
            "read(\"user:ua\")",
            "update(\"user:ua\")",
            "delete(\"user:ua\")"
        ]
    );
    assert_eq!(ids(&user(&db, "ua")), ["mine"]);
    assert!(ids(&user(&db, "ub")).is_empty());
    user(&db, "ua")
        .update("mine", json!({"k": "w"}), None)
        .unwrap();
    user(&db, "ua").delete("mine").unwrap();
}

#[test]
fn update_is_partial_and_keeps_permissions_unless_given() {
    let db = setup(vec![], true);
    seed(&db);
    let root = coll(&db.root());
    let d = root.update("a1", json!({"extra": [1, 2]}), None).unwrap();
    assert_eq!(
        (d.get("n"), d.get("extra")),
        (Some(&json!(1)), Some(&json!([1, 2])))
    );
    assert_eq!(ids(&user(&db, "ua")), ["a1", "a2", "any1"]);
    let d = root
        .update(
            "a1",
            json!({}),
            Some(vec![Permission::read(Role::user("ub"))]),
        )
        .unwrap();
    assert_eq!(d.get("extra"), Some(&json!([1, 2])));
    assert!(d.updated_at() >= d.created_at());
    assert_eq!(ids(&user(&db, "ua")), ["a2", "any1"]);
    assert_eq!(ids(&user(&db, "ub")), ["a1", "b1", "any1"]);
}

#[test]
fn management_and_impersonation_need_root() {
    let db = setup(vec![], true);
    let ua = db.root().impersonate("ua").unwrap();
    refused(&db, || ua.schemas().create("x", "X"), unauthorized, "root");
    refused(&db, || ua.schemas().list(), unauthorized, "root");
    refused(
        &db,
        || ua.schema("s").collections().delete("c"),
        unauthorized,
        "root",
    );
    refused(&db, || ua.impersonate("ub"), unauthorized, "root");
    refused(&db, || db.client().impersonate("ub"), unauthorized, "root");
    assert!(db.client().roles().contains(&Role::guests()));
    assert!(!ua.roles().contains(&Role::guests()));
}

#[test]
fn disabled_collections_and_schemas_are_hidden_from_clients() {
    let db = setup(vec![Permission::read(Role::any())], false);
    seed(&db);
    let root = db.root();
    root.schema("s")
        .collections()
        .update(
            CollectionSpec::new("c", "C")
                .permissions([Permission::read(Role::any())])
                .enabled(false),
        )
        .unwrap();
    refused(
        &db,
        || user(&db, "ua").find(&[]),
        |e| {
            matches!(
                e,
                Error::NotFound {
                    kind: ResourceKind::Collection,
                    ..
                }
            )
        },
        "collection \"c\" not found",
    );
    assert_eq!(coll(&root).count(&[]).unwrap(), 5);
    root.schema("s")
        .collections()
        .update(CollectionSpec::new("c", "C").permissions([Permission::read(Role::any())]))
        .unwrap();
    root.schemas().update("s", "S", false).unwrap();
    // A disabled schema answers exactly as a missing one, on every document call.
    let missing = db
        .root()
        .impersonate("ua")
        .unwrap()
        .schema("nope")
        .collection("c")
        .get("a1")
        .unwrap_err();
    let disabled = user(&db, "ua").get("a1").unwrap_err();
    assert!(
        matches!(
            disabled,
            Error::NotFound {
                kind: ResourceKind::Schema,
                ..
            }
        ),
        "{disabled:?}"
    );
    assert_eq!(
        format!("{missing:?}").replace("nope", "ID"),
        format!("{disabled:?}").replace("\"s\"", "\"ID\""),
    );
    for r in [
        user(&db, "ua").find(&[]).map(|_| ()),
        user(&db, "ua").count(&[]).map(|_| ()),
        user(&db, "ua").create("n1", json!({}), None).map(|_| ()),
        user(&db, "ua").delete("a1"),
    ] {
        assert!(
            matches!(
                r,
                Err(Error::NotFound {
                    kind: ResourceKind::Schema,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(coll(&root).count(&[]).unwrap(), 5, "root still reaches it");
}

#[test]
fn unknown_schemas_collections_and_documents_are_not_found() {
    let db = setup(vec![], true);
    let root = db.root();
    refused(
        &db,
        || root.schema("nope").collection("c").find(&[]),
        |e| {
            matches!(
                e,
                Error::NotFound {
                    kind: ResourceKind::Schema,
                    ..
                }
            )
        },
        "schema \"nope\" not found",
    );
    refused(
        &db,
        || root.schema("s").collection("nope").get("x"),
        |e| {
            matches!(
                e,
                Error::NotFound {
                    kind: ResourceKind::Collection,
                    ..
                }
            )
        },
        "collection \"nope\" not found",
    );
    refused(
        &db,
        || coll(&root).get("nope"),
        doc_not_found("nope"),
        "document \"nope\" not found",
    );
    refused(
        &db,
        || coll(&root).update("nope", json!({}), None),
        doc_not_found("nope"),
        "not found",
    );
    refused(
        &db,
        || coll(&root).delete("nope"),
        doc_not_found("nope"),
        "not found",
    );
    refused(
        &db,
        || root.schemas().get("nope"),
        |e| matches!(e, Error::NotFound { .. }),
        "not found",
    );
    refused(
        &db,
        || root.schemas().delete("nope"),
        |e| matches!(e, Error::NotFound { .. }),
        "not found",
    );
    refused(
        &db,
        || root.schema("s").collections().get("nope"),
        |e| matches!(e, Error::NotFound { .. }),
        "not found",
    );
    refused(
        &db,
        || {
            root.schema("nope")
                .collections()
                .create(CollectionSpec::new("c", "C"))
        },
        |e| matches!(e, Error::NotFound { .. }),
        "schema \"nope\"",
    );
}

#[test]
fn duplicates_conflict() {
    let db = setup(vec![], true);
    seed(&db);
    let root = db.root();
    let conflict = |e: &Error| matches!(e, Error::Conflict { .. });
    refused(
        &db,
        || root.schemas().create("s", "again"),
        conflict,
        "schema \"s\" already exists",
    );
    refused(
        &db,
        || {
            root.schema("s")
                .collections()
                .create(CollectionSpec::new("c", "again"))
        },
        conflict,
        "collection \"c\" already exists",
    );
    refused(
        &db,
        || coll(&root).create("a1", json!({}), None),
        conflict,
        "document \"a1\" already exists",
    );
    // A batch with one clash writes nothing at all.
    refused(
        &db,
        || coll(&root).create_many([("n1", json!({}), None), ("a1", json!({}), None)]),
        conflict,
        "\"a1\"",
    );
    refused(
        &db,
        || coll(&root).create_many([("n1", json!({}), None), ("n1", json!({}), None)]),
        conflict,
        "\"n1\"",
    );
}

#[test]
fn malformed_ids_are_invalid() {
    let db = setup(vec![], true);
    let root = db.root();
    let invalid = |e: &Error| matches!(e, Error::InvalidId(_));
    let long = "x".repeat(37);
    for (id, fault) in [
        ("", "empty"),
        ("_x", "may not start"),
        ("a b", "not allowed"),
        (long.as_str(), "longer than 36"),
    ] {
        refused(&db, || root.schemas().create(id, "X"), invalid, fault);
        refused(
            &db,
            || {
                root.schema("s")
                    .collections()
                    .create(CollectionSpec::new(id, "X"))
            },
            invalid,
            fault,
        );
        refused(
            &db,
            || coll(&root).create(id, json!({}), None),
            invalid,
            fault,
        );
        refused(&db, || root.impersonate(id), invalid, fault);
    }
    // A name is not an id: an empty one is an invalid argument.
    refused(
        &db,
        || root.schemas().create("ok", ""),
        |e| matches!(e, Error::InvalidArgument(_)),
        "name",
    );
}

#[test]
fn malformed_permissions_and_roles_are_refused() {
    let db = setup(vec![], true);
    let root = coll(&db.root());
    let role = |e: &Error| matches!(e, Error::InvalidRole(_));
    refused(
        &db,
        || root.create("x", json!({}), Some(vec![Permission::read(Role::user(""))])),
        role,
        "empty id",
    );
    refused(
        &db,
        || {
            root.create(
                "x",
                json!({}),
                Some(vec![Permission::read(Role::user("a".repeat(37)))]),
            )
        },
        role,
        "longer than 36",
    );
    refused(
        &db,
        || {
            root.create(
                "x",
                json!({}),
                Some(vec![Permission::read(Role::team_role("t", "a b"))]),
            )
        },
        role,
        "not allowed in a team role",
    );
    refused(
        &db,
        || {
            root.create(
                "x",
                json!({}),
                Some(vec![Permission::read(Role::label("v-ip"))]),
            )
        },
        role,
        "label",
    );
    refused(
        &db,
        || root.create("x", json!({}), Some(vec![Permission::create(Role::any())])),
        |e| matches!(e, Error::InvalidPermission(_)),
        "create is granted on the collection",
    );
    let many: Vec<Permission> = (0..101)
        .map(|i| Permission::read(Role::user(format!("u{i}"))))
        .collect();
    refused(
        &db,
        || root.create("x", json!({}), Some(many.clone())),
        |e| matches!(e, Error::LimitExceeded(_)),
        "101 permissions",
    );
    root.create("x", json!({}), Some(many[..100].to_vec()))
        .unwrap();
    refused(
        &db,
        || {
            db.root()
                .schema("s")
                .collections()
                .create(CollectionSpec::new("c2", "C").permissions(many.clone()))
        },
        |e| matches!(e, Error::LimitExceeded(_)),
        "at most 100",
    );
    // Strings: every malformed form is an error, never silently dropped.
    for bad in [
        "",
        "read",
        "read(\"\")",
        "read(\"user:\")",
        "read(\"any\"",
        "read(any)",
        "reed(\"any\")",
        "read(\"user:a b\")",
        "read(\"team:t/\")",
        "read(\"x:y\")",
    ] {
        assert!(bad.parse::<Permission>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn malformed_documents_are_refused() {
    let limits = Limits {
        max_document_bytes: 2048,
        max_depth: 4,
        max_fields: 5,
    };
    let db = Db::temporary_with(common::options().limits(limits)).unwrap();
    db.root().schemas().create("s", "S").unwrap();
    db.root()
        .schema("s")
        .collections()
        .create(CollectionSpec::new("c", "C"))
        .unwrap();
    let root = coll(&db.root());
    let invalid = |e: &Error| matches!(e, Error::InvalidDocument(_));
    let limit = |e: &Error| matches!(e, Error::LimitExceeded(_));
    refused(
        &db,
        || root.create("x", json!([1]), None),
        invalid,
        "must be a JSON object, got an array",
    );
    refused(
        &db,
        || root.create("x", "text", None),
        invalid,
        "got a string",
    );
    refused(
        &db,
        || root.create("x", json!({"$id": "y"}), None),
        invalid,
        "reserved",
    );
    refused(
        &db,
        || root.create("x", json!({"": 1}), None),
        invalid,
        "attribute name",
    );
    refused(
        &db,
        || root.create("x", json!({"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}), None),
        limit,
        "6 attributes, at most 5",
    );
    refused(
        &db,
        || root.create("x", json!({"a": [[[[1]]]]}), None),
        limit,
        "deeper than 4",
    );
    refused(
        &db,
        || root.create("x", json!({"a": "x".repeat(3000)}), None),
        limit,
        "at most 2048",
    );
    // One under each limit is fine.
    root.create(
        "x",
        json!({"a": [[1]], "b": "x".repeat(1000), "c": 1, "d": 2, "e": 3}),
        None,
    )
    .unwrap();
    refused(
        &db,
        || root.update("x", json!({"f": 1}), None),
        limit,
        "6 attributes",
    );
    refused(
        &db,
        || root.update("x", json!({"b": "x".repeat(3000)}), None),
        limit,
        "at most 2048",
    );
}

#[test]
fn deleting_a_collection_purges_its_documents_and_indexes() {
    let db = setup(vec![], true);
    seed(&db);
    let root = db.root();
    root.schema("s").collections().delete("c").unwrap();
    refused(
        &db,
        || coll(&root).find(&[]),
        |e| matches!(e, Error::NotFound { .. }),
        "collection \"c\" not found",
    );
    root.schema("s")
        .collections()
        .create(CollectionSpec::new("c", "C").document_security(true))
        .unwrap();
    assert!(ids(&coll(&root)).is_empty());
    assert!(ids(&user(&db, "ua")).is_empty());
    coll(&root)
        .create(
            "a1",
            json!({}),
            Some(vec![Permission::read(Role::user("ua"))]),
        )
        .unwrap();
    assert_eq!(ids(&user(&db, "ua")), ["a1"]);
    assert_eq!(coll(&root).get("a1").unwrap().sequence(), 1);
    root.schemas().delete("s").unwrap();
    assert!(root.schemas().list().unwrap().is_empty());
}

#[test]
fn bad_queries_are_invalid() {
    let db = setup(vec![], true);
    seed(&db);
    let ua = user(&db, "ua");
    let invalid = |e: &Error| matches!(e, Error::InvalidQuery(_));
    refused(
        &db,
        || ua.find(&[Query::limit(5001)]),
        invalid,
        "more than 5000",
    );
    refused(
        &db,
        || ua.find(&[Query::order_asc("$permissions")]),
        invalid,
        "unknown system attribute",
    );
    refused(
        &db,
        || ua.find(&[Query::equal("n", [json!({"x": 1})])]),
        invalid,
        "must be strings",
    );
    refused(
        &db,
        || ua.count(&[Query::equal("$permissions", ["x"])]),
        invalid,
        "unknown system attribute",
    );
}

#[test]
fn filters_and_system_attributes() {
    let db = setup(vec![Permission::read(Role::any())], false);
    seed(&db);
    let ua = user(&db, "ua");
    let page = ua
        .find(&[Query::equal("n", [1, 3]), Query::not_equal("n", 3)])
        .unwrap();
    assert_eq!((page.total, page.documents[0].id()), (1, "a1"));
    assert_eq!(ua.count(&[Query::equal("$id", ["b1", "any1"])]).unwrap(), 2);
    assert_eq!(ua.count(&[Query::equal("n", [2.0])]).unwrap(), 1);
    assert_eq!(ua.count(&[Query::not_equal("missing", 1)]).unwrap(), 0);
    let last = ua
        .find(&[Query::order_desc("$sequence"), Query::limit(1)])
        .unwrap();
    assert_eq!(last.documents[0].id(), "guest1");
    assert_eq!(last.total, 5);
}

/// What a write returned: the data and permissions it showed.
fn shown(doc: &permdb::Document) -> (usize, usize) {
    (doc.data().len(), doc.permissions().len())
}

/// A write answers with the document only when the caller may read it afterwards;
/// otherwise with `$id` and the system fields, no data and no permissions.
#[test]
fn writes_return_the_document_only_to_callers_who_may_read_it() {
    // Collection-level update and create, no read.
    let db = setup(
        vec![
            Permission::update(Role::users()),
            Permission::create(Role::users()),
        ],
        false,
    );
    seed(&db);
    let updated = user(&db, "ub")
        .update("a1", json!({"n": 10}), None)
        .unwrap();
    assert_eq!((updated.id(), updated.sequence()), ("a1", 1));
    assert_eq!(shown(&updated), (0, 0), "{updated:?}");
    assert_eq!(
        coll(&db.root()).get("a1").unwrap().get("n"),
        Some(&json!(10))
    );
    let created = user(&db, "ub")
        .create("new1", json!({"secret": "s"}), None)
        .unwrap();
    assert_eq!(shown(&created), (0, 0), "{created:?}");
    let many = user(&db, "ub")
        .create_many([("new2", json!({"secret": "s"}), None)])
        .unwrap();
    assert_eq!(shown(&many[0]), (0, 0), "{many:?}");

    // Document-level update without read; and a user's own document with read.
    let db = setup(vec![Permission::create(Role::users())], true);
    coll(&db.root())
        .create(
            "w1",
            json!({"secret": "s"}),
            Some(vec![Permission::update(Role::user("ua"))]),
        )
        .unwrap();
    let updated = user(&db, "ua").update("w1", json!({"n": 1}), None).unwrap();
    assert_eq!(shown(&updated), (0, 0), "{updated:?}");
    let mine = user(&db, "ua").create("m1", json!({"n": 1}), None).unwrap();
    assert_eq!(shown(&mine), (1, 3), "the default permissions include read");
    // Readability after the write decides: giving up one's own read hides the answer.
    let given_up = user(&db, "ua")
        .update(
            "m1",
            json!({"n": 2}),
            Some(vec![Permission::update(Role::user("ua"))]),
        )
        .unwrap();
    assert_eq!(shown(&given_up), (0, 0), "{given_up:?}");
    let written_blind = user(&db, "ua")
        .create(
            "m2",
            json!({"n": 1}),
            Some(vec![Permission::update(Role::user("ua"))]),
        )
        .unwrap();
    assert_eq!(shown(&written_blind), (0, 0), "{written_blind:?}");

    // A key: documents.write alone shows nothing, with documents.read everything.
    let keys = db.root().keys();
    let write_only = keys.create("w", &[permdb::Scope::DocumentsWrite]).unwrap();
    let writer = coll(&db.client().set_key(&write_only.secret).unwrap());
    let updated = writer.update("w1", json!({"n": 3}), None).unwrap();
    assert_eq!(shown(&updated), (0, 0), "{updated:?}");
    let created = writer.create("k1", json!({"n": 1}), None).unwrap();
    assert_eq!(shown(&created), (0, 0), "{created:?}");
    let both = keys
        .create(
            "rw",
            &[permdb::Scope::DocumentsWrite, permdb::Scope::DocumentsRead],
        )
        .unwrap();
    let reader_writer = coll(&db.client().set_key(&both.secret).unwrap());
    let updated = reader_writer.update("w1", json!({"n": 4}), None).unwrap();
    assert_eq!(shown(&updated), (2, 1), "{updated:?}");
}

#[test]
fn unique_asks_for_a_fresh_id() {
    let db = setup(vec![Permission::create(Role::users())], true);
    let a = user(&db, "ua")
        .create(permdb::UNIQUE_ID, json!({}), None)
        .unwrap();
    let b = user(&db, "ua")
        .create(permdb::UNIQUE_ID, json!({}), None)
        .unwrap();
    assert_ne!(a.id(), b.id());
    assert_eq!(a.id().len(), 20);
    assert_eq!(user(&db, "ua").get(a.id()).unwrap().id(), a.id());
    let u = db
        .client()
        .account()
        .create(permdb::UNIQUE_ID, "u@example.com", "password-u", None)
        .unwrap();
    assert_eq!(u.id.len(), 20);
    assert_eq!(
        user(&db, "ua")
            .create("unique", json!({}), None)
            .unwrap()
            .id(),
        "unique"
    );
    assert!(matches!(
        user(&db, "ua").create("unique(", json!({}), None),
        Err(Error::InvalidId(_))
    ));
}

/// Upsert: an update where the client sees the document, a create where none exists, and
/// never an update of a document the client may not see (that is a create's conflict).
#[test]
fn upsert_updates_what_the_client_sees_and_creates_the_rest() {
    let db = setup(vec![Permission::create(Role::users())], true);
    let a = user(&db, "a");
    let b = user(&db, "b");
    // Created: a's default permissions (read, update, delete for a).
    let made = a.upsert("d1", json!({"n": 1}), None).unwrap();
    assert_eq!(made.get("n"), Some(&json!(1)));
    // Updated, partially, by its owner.
    let changed = a.upsert("d1", json!({"m": 2}), None).unwrap();
    assert_eq!(
        (changed.get("n"), changed.get("m")),
        (Some(&json!(1)), Some(&json!(2)))
    );
    // b cannot see d1: no update, and creating it conflicts; nothing changes.
    let before = snapshot(&db);
    let r = b.upsert("d1", json!({"n": 99}), None);
    assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
    assert_eq!(snapshot(&db), before);
    // b may read but not update a document shared for reading: Unauthorized.
    coll(&db.root())
        .create(
            "shared",
            json!({"n": 5}),
            Some(vec![Permission::read(Role::users())]),
        )
        .unwrap();
    let before = snapshot(&db);
    let r = b.upsert("shared", json!({"n": 6}), None);
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    assert_eq!(snapshot(&db), before);
    // A guest may not create here; unique() names nothing to update.
    let r = coll(&db.client()).upsert("g1", json!({}), None);
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    let r = a.upsert(permdb::UNIQUE_ID, json!({}), None);
    assert!(matches!(r, Err(Error::InvalidId(_))), "{r:?}");
    assert_eq!(b.upsert("d2", json!({"n": 3}), None).unwrap().id(), "d2");
}

/// Red-team finding: an upsert of a document the client may not see tells no more than a
/// create of that id. Without a create grant a hidden id and a missing id answer the same
/// refusal (a 409 would have told that the hidden document exists); with document security
/// off and no grant at all, the same.
#[test]
fn upsert_of_a_hidden_document_answers_as_a_missing_one_without_a_create_grant() {
    for document_security in [true, false] {
        let db = setup(Vec::new(), document_security);
        coll(&db.root())
            .create(
                "hidden",
                json!({"n": 1}),
                Some(vec![
                    Permission::read(Role::user("a")),
                    Permission::update(Role::user("a")),
                ]),
            )
            .unwrap();
        let b = user(&db, "b");
        let before = snapshot(&db);
        let hidden = format!("{:?}", b.upsert("hidden", json!({"n": 2}), None));
        let missing = format!("{:?}", b.upsert("nothing", json!({"n": 2}), None));
        assert!(hidden.contains("Unauthorized"), "{hidden}");
        assert_eq!(hidden, missing, "document security {document_security}");
        assert_eq!(snapshot(&db), before);
    }
}
