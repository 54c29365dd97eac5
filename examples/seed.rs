//! The seed scenario (DESIGN.md section 1) on the embedded on-disk store, through the
//! real chain: users sign up and sign in with email and password, user-a trades the
//! session for a 15-minute token, and a backend acts as user-a with that token. An API
//! key sees everything. Then the token is refused after logout and after 15 minutes
//! (moved by an injectable clock, so the example does not sleep).

use std::sync::Arc;

use permdb::{
    Client, CollectionSpec, Db, Document, ManualClock, Options, Permission, Query, Role, Scope,
};
use serde_json::json;

fn names(docs: &[Document]) -> Vec<&str> {
    docs.iter()
        .filter_map(|d| d.get("name").and_then(|v| v.as_str()))
        .collect()
}

fn show(who: &str, client: &Client) -> Result<(), permdb::Error> {
    let page = client
        .schema("db")
        .collection("birthdays")
        .find(&[Query::limit(25)])?;
    println!(
        "{who:<22} total {}  {:?}",
        page.total,
        names(&page.documents)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("permdb-seed-{}", std::process::id()));
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let options = Options::new().clock(Arc::new(clock.clone()));
    let db = Db::open_with(&dir, options.clone())?;

    // Set-up, as the project owner (the in-process root client).
    let root = db.root();
    root.schemas().create("db", "Database")?;
    root.schema("db").collections().create(
        CollectionSpec::new("birthdays", "Birthdays")
            .permissions([Permission::create(Role::users())])
            .document_security(true),
    )?;
    let birthdays = root.schema("db").collection("birthdays");
    for (id, name, day, user, email, password) in [
        (
            "doc1",
            "Kevin",
            "2012-02-03",
            "user-a",
            "a@example.com",
            "password-a",
        ),
        (
            "doc2",
            "Laura",
            "1999-09-22",
            "user-b",
            "b@example.com",
            "password-b",
        ),
        (
            "doc3",
            "Bob",
            "1982-05-11",
            "user-c",
            "c@example.com",
            "password-c",
        ),
    ] {
        db.client().account().create(user, email, password, None)?;
        let perms = vec![Permission::read(Role::user(user))];
        birthdays.create(id, json!({"name": name, "birthday": day}), Some(perms))?;
    }
    let key = root
        .keys()
        .create("backend", &[Scope::DocumentsRead, Scope::DocumentsWrite])?;

    // The client app signs user-a in and asks for a token ...
    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")?;
    let jwt = db
        .client()
        .set_session(&session.secret)?
        .account()
        .create_jwt()?;
    println!(
        "user-a's token ({} chars) expires at {}",
        jwt.jwt.len(),
        jwt.expires_at
    );

    // ... the backend acts as user-a with it; an API key sees everything.
    show("backend with a-token", &db.client().set_jwt(&jwt.jwt)?)?;
    let b_session = db
        .client()
        .account()
        .create_email_password_session("b@example.com", "password-b")?;
    let b_jwt = db
        .client()
        .set_session(&b_session.secret)?
        .account()
        .create_jwt()?;
    show("backend with b-token", &db.client().set_jwt(&b_jwt.jwt)?)?;
    show("backend with API key", &db.client().set_key(&key.secret)?)?;

    // A query: born before 2000, ordered by name, as user-b and as the key.
    let before_2000 = [
        Query::less_than("birthday", "2000-01-01"),
        Query::order_asc("name"),
    ];
    for (who, client) in [
        ("user-b, born < 2000", db.client().set_jwt(&b_jwt.jwt)?),
        ("API key, born < 2000", db.client().set_key(&key.secret)?),
    ] {
        let page = client
            .schema("db")
            .collection("birthdays")
            .find(&before_2000)?;
        println!(
            "{who:<22} total {}  {:?}",
            page.total,
            names(&page.documents)
        );
    }

    // Logout kills the token at once.
    db.client()
        .set_session(&session.secret)?
        .account()
        .delete_session("current")?;
    match db.client().set_jwt(&jwt.jwt) {
        Err(e) => println!("after logout:          {e}"),
        Ok(_) => println!("after logout:          token still accepted (bug)"),
    }

    // A fresh token is refused 15 minutes (plus the 60 s leeway) later.
    drop((birthdays, root, db)); // every client holds the store open

    let db = Db::open_with(&dir, options)?; // reopened from disk: nothing rebuilt
    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")?;
    let jwt = db
        .client()
        .set_session(&session.secret)?
        .account()
        .create_jwt()?;
    show("backend, new token", &db.client().set_jwt(&jwt.jwt)?)?;
    clock.advance(time::Duration::minutes(16) + time::Duration::seconds(1));
    match db.client().set_jwt(&jwt.jwt) {
        Err(e) => println!("16 minutes later:      {e}"),
        Ok(_) => println!("16 minutes later:      token still accepted (bug)"),
    }
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
