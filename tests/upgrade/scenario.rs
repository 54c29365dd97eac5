//! The fixtures' scenario: what a format-3 store was filled with, and the answers it is
//! asked for, before and after its upgrade. Shared by this build and the one that wrote them.

#![allow(dead_code, reason = "the upgrade and dump tests use different parts")]

use std::path::{Path, PathBuf};

use permdb::{
    AttributeSpec, CollectionSpec, Db, IndexSpec, Permission, Query, Role, Scope, StorageEngine,
};
use serde_json::{Value, json};

use super::common;

/// Secrets the fixture's scenario made, kept beside the store so that the test can act
/// with them after the upgrade.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Secrets {
    pub session_a: String,
    pub key_reader: String,
    pub jwt_b: String,
}

/// Fills a new store with one record of every kind the format holds: schemas (one
/// disabled), collections with attributes and key, unique and fulltext indexes, documents
/// with user, team, label and public permissions, updates and deletes (so the changes
/// feed holds entries and tombstones), users with preferences and labels, teams with
/// preferences and memberships, an API key, sessions and rotated token signing keys.
pub fn populate(db: &Db) -> Secrets {
    let root = db.root();
    common::seed(db);
    let users = root.users();
    users
        .update_prefs(
            "user-a",
            json!({"theme": "dark"}).as_object().unwrap().clone(),
        )
        .unwrap();
    users.update_labels("user-c", &["vip"]).unwrap();
    let teams = root.teams();
    teams.create("t1", "Team one").unwrap();
    teams
        .update_prefs(
            "t1",
            json!({"colour": "green"}).as_object().unwrap().clone(),
        )
        .unwrap();
    teams.create_membership("t1", "user-b", &["admin"]).unwrap();
    teams.create_membership("t1", "user-c", &[]).unwrap();

    let key = root
        .keys()
        .create("reader", &[Scope::DocumentsRead, Scope::SchemasRead])
        .unwrap();
    root.token_keys().rotate().unwrap();

    root.schemas().create("app", "App").unwrap();
    let collections = root.schema("app").collections();
    collections
        .create(
            CollectionSpec::new("notes", "Notes")
                .permissions([Permission::create(Role::users())])
                .document_security(true),
        )
        .unwrap();
    collections
        .create_attribute("notes", AttributeSpec::string("title", 100))
        .unwrap();
    collections
        .create_attribute("notes", AttributeSpec::integer("n"))
        .unwrap();
    collections
        .create_attribute(
            "notes",
            AttributeSpec::enumeration("kind", ["todo", "idea"]),
        )
        .unwrap();
    collections
        .create_index("notes", IndexSpec::key("by_n", ["n"]))
        .unwrap();
    collections
        .create_index("notes", IndexSpec::unique("by_title", ["title"]))
        .unwrap();
    collections
        .create_index("notes", IndexSpec::fulltext("words", "title"))
        .unwrap();
    // Every change of rules before the documents: a change of any schema's record makes
    // the feed ask every reader to resync from before it.
    collections
        .create(CollectionSpec::new("archive", "Archive").enabled(false))
        .unwrap();
    root.schemas().create("old", "Old").unwrap();
    root.schemas().update("old", "Old", false).unwrap();
    // Enough changes before the notes that their change numbers take more than one byte
    // in either codec (below 128 both write a number alike).
    collections
        .create(CollectionSpec::new("bulk", "Bulk"))
        .unwrap();
    let bulk = root.schema("app").collection("bulk");
    for i in 0..150u32 {
        bulk.create(&format!("b{i:03}"), json!({"i": i}), None)
            .unwrap();
    }
    let notes = root.schema("app").collection("notes");
    let perms = |p: &[Permission]| Some(p.to_vec());
    for i in 0..12u32 {
        let reader = match i % 4 {
            0 => Role::user("user-a"),
            1 => Role::team_role("t1", "admin"),
            2 => Role::label("vip"),
            _ => Role::any(),
        };
        notes
            .create(
                &format!("note{i:02}"),
                json!({
                    "title": format!("note {i} about {}", ["cats", "dogs", "owls"][i as usize % 3]),
                    "n": i,
                    "kind": if i % 2 == 0 { "todo" } else { "idea" },
                }),
                perms(&[
                    Permission::read(reader),
                    Permission::update(Role::user("user-a")),
                ]),
            )
            .unwrap();
    }
    notes.update("note04", json!({"n": 40}), None).unwrap();
    notes
        .update(
            "note05",
            json!({}),
            perms(&[Permission::read(Role::users())]),
        )
        .unwrap();
    notes.delete("note06").unwrap();

    let session_a = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    let jwt_b = common::sign_in(db, "b").account().create_jwt().unwrap();
    Secrets {
        session_a: session_a.secret,
        key_reader: key.secret,
        jwt_b: jwt_b.jwt,
    }
}

/// What the store answers, to every kind of client, on every read path the fixture
/// covers: finds (filtered, searched, ordered, paged), counts, gets, the changes feed,
/// users, teams, memberships, preferences, keys and collections.
pub fn answers(db: &Db, secrets: &Secrets) -> Value {
    answers_of(db, secrets, true)
}

/// [`answers`] without what a dump does not carry: the clients of sessions and tokens, the
/// changes feed and the last change number (an imported store starts its own).
pub fn lasting_answers(db: &Db, secrets: &Secrets) -> Value {
    answers_of(db, secrets, false)
}

fn answers_of(db: &Db, secrets: &Secrets, sessions: bool) -> Value {
    let root = db.root();
    let mut clients = vec![
        ("root", root.clone()),
        ("guest", db.client()),
        ("password-b", common::sign_in(db, "b")),
        ("password-c", common::sign_in(db, "c")),
        (
            "key-reader",
            db.client().set_key(&secrets.key_reader).unwrap(),
        ),
    ];
    if sessions {
        clients.push((
            "session-a",
            db.client().set_session(&secrets.session_a).unwrap(),
        ));
        clients.push(("jwt-b", db.client().set_jwt(&secrets.jwt_b).unwrap()));
    }
    let queries: Vec<(&str, &str, Vec<Query>)> = vec![
        ("db", "birthdays", vec![]),
        ("app", "notes", vec![]),
        ("app", "notes", vec![Query::equal("kind", ["todo"])]),
        ("app", "notes", vec![Query::search("title", "cats")]),
        (
            "app",
            "notes",
            vec![Query::greater_than("n", 3), Query::order_desc("n")],
        ),
        (
            "app",
            "notes",
            vec![Query::order_asc("title"), Query::limit(3), Query::offset(1)],
        ),
    ];
    let last_create = sessions.then(|| {
        root.schema("app")
            .collection("notes")
            .changes(0, 100)
            .unwrap()
            .documents
            .iter()
            .find(|(_, d)| d.id() == "note11")
            .map(|(lsn, _)| *lsn)
            .unwrap()
    });
    let mut out = serde_json::Map::new();
    for (name, client) in &clients {
        let mut rows = Vec::new();
        for (schema, collection, q) in &queries {
            let c = client.schema(schema).collection(collection);
            let row = match (c.find(q), c.count(q)) {
                (Ok(list), Ok(count)) => json!({"find": list, "count": count}),
                (find, count) => json!({
                    "find_error": find.err().map(|e| e.to_string()),
                    "count_error": count.err().map(|e| e.to_string()),
                }),
            };
            rows.push(row);
        }
        let notes = client.schema("app").collection("notes");
        rows.push(match notes.get("note00") {
            Ok(d) => json!(d),
            Err(e) => json!(e.to_string()),
        });
        // From the start, and from the last create, before the updates and the delete (so
        // that tombstones and lost reads are read too).
        for since in last_create.into_iter().flat_map(|last| [0, last]) {
            rows.push(match notes.changes(since, 100) {
                Ok(ch) => json!({
                    "documents": ch.documents,
                    "gone": ch.gone,
                    "next": ch.next,
                }),
                Err(e) => json!(e.to_string()),
            });
        }
        out.insert((*name).to_owned(), Value::Array(rows));
    }
    let ids = |v: Vec<String>| json!(v);
    out.insert("users".into(), json!(root.users().list().unwrap()));
    out.insert(
        "prefs-a".into(),
        json!(root.users().prefs("user-a").unwrap()),
    );
    out.insert("teams".into(), json!(root.teams().list().unwrap()));
    out.insert(
        "team-prefs".into(),
        json!(root.teams().prefs("t1").unwrap()),
    );
    out.insert(
        "memberships".into(),
        json!(root.teams().list_memberships("t1").unwrap()),
    );
    out.insert(
        "keys".into(),
        ids(root
            .keys()
            .list()
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect()),
    );
    let mut token_keys = json!(root.token_keys().public().unwrap());
    if !sessions {
        // Each store has its own id (tokens of one are not accepted by another).
        token_keys.as_object_mut().unwrap().remove("store_id");
    }
    out.insert("token-keys".into(), token_keys);
    out.insert("schemas".into(), json!(root.schemas().list().unwrap()));
    for schema in ["db", "app"] {
        out.insert(
            format!("collections-{schema}"),
            json!(root.schema(schema).collections().list().unwrap()),
        );
    }
    if sessions {
        out.insert("last-lsn".into(), json!(db.last_lsn()));
    }
    Value::Object(out)
}

pub fn fixture_dir(engine: StorageEngine) -> PathBuf {
    let name = match engine {
        StorageEngine::Sled => "format3-sled",
        StorageEngine::Redb => "format3-redb",
        other => panic!("no fixture for {other:?}"),
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Writes the fixture of the tests' engine (`PERMDB_TEST_BACKEND`): run by hand, with
/// `--ignored`, by a build of the format the fixture is named for (format 3: commit
/// e0b615c with this file and tests/common as they are now).
#[test]
#[ignore = "writes tests/fixtures: run by hand when making a fixture"]
fn write_fixture() {
    let dir = fixture_dir(common::engine());
    let store = dir.join("store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&store).unwrap();
    let (options, _clock) = common::test_options();
    let db = Db::open_with(&store, options).unwrap();
    let secrets = populate(&db);
    let answers = answers(&db, &secrets);
    db.flush().unwrap();
    drop(db);
    std::fs::write(
        dir.join("secrets.json"),
        serde_json::to_string_pretty(&secrets).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("answers.json"),
        serde_json::to_string_pretty(&answers).unwrap() + "\n",
    )
    .unwrap();
}
