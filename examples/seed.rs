//! The seed scenario: a `birthdays` collection with three documents, each readable
//! by one user. user-a sees only Kevin; the root client sees all three.
//!
//! Sign-in and tokens come with the auth layer; until then the backend acts as
//! user-a through `impersonate`, which gives the same roles a token will.

use permdb::{CollectionSpec, Db, Document, Permission, Query, Role};
use serde_json::json;

fn names(docs: &[Document]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{} ({})",
                d.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                d.id()
            )
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("permdb-seed-{}", std::process::id()));
    {
        let db = Db::open(&dir)?;
        let root = db.root();
        root.schemas().create("db", "Database")?;
        root.schema("db").collections().create(
            CollectionSpec::new("birthdays", "Birthdays")
                .permissions([Permission::create(Role::users())])
                .document_security(true),
        )?;
        let birthdays = root.schema("db").collection("birthdays");
        for (id, name, day, user) in [
            ("doc1", "Kevin", "2012-02-03", "user-a"),
            ("doc2", "Laura", "1999-09-22", "user-b"),
            ("doc3", "Bob", "1982-05-11", "user-c"),
        ] {
            birthdays.create(
                id,
                json!({"name": name, "birthday": day}),
                Some(vec![Permission::read(Role::user(user))]),
            )?;
        }
    }
    // Reopen: documents and permission indexes come back from disk, nothing is rebuilt.
    let db = Db::open(&dir)?;
    let root = db.root();
    let as_user = root.impersonate("user-a")?;
    let page = as_user
        .schema("db")
        .collection("birthdays")
        .find(&[Query::limit(25)])?;
    println!(
        "user-a sees {} of them: {:?}",
        page.total,
        names(&page.documents)
    );
    println!("{}", serde_json::to_string_pretty(&page.documents)?);
    let all = root.schema("db").collection("birthdays").find(&[])?;
    println!("root sees {}: {:?}", all.total, names(&all.documents));
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
