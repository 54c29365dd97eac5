//! The seed scenario (docs/ARCHITECTURE.md, "The seed scenario") through the real chain, as
//! `cargo run --example seed` and `permdb demo` run it: sign-up, sign-in, a token for a
//! backend, an API key, logout, and expiry (moved by an injected clock, so nothing sleeps).
//! Every outcome is checked: a wrong one ends the scenario with an error (and the example
//! and the command with a non-zero exit code).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::{
    Client, CollectionSpec, Db, Document, ManualClock, Options, Permission, Query, Role, Scope,
};

fn names(docs: &[Document]) -> Vec<&str> {
    docs.iter()
        .filter_map(|d| d.get("name").and_then(|v| v.as_str()))
        .collect()
}

/// Shows what `client` finds with `queries`, and checks it is `want` (names, in order)
/// out of `total`.
fn show(
    out: &mut dyn Write,
    who: &str,
    client: &Client,
    queries: &[Query],
    want: (u64, &[&str]),
) -> Result<(), Box<dyn std::error::Error>> {
    let page = client.schema("db").collection("birthdays").find(queries)?;
    let got = (page.total, names(&page.documents));
    writeln!(out, "{who:<22} total {}  {:?}", got.0, got.1)?;
    if got != (want.0, want.1.to_vec()) {
        return Err(wrong(who, &format!("{got:?}"), &format!("{want:?}")));
    }
    Ok(())
}

/// Shows a refusal, and checks there was one and that it is `want` (its `Display`).
fn refused<T>(
    out: &mut dyn Write,
    who: &str,
    result: crate::Result<T>,
    want: &crate::Error,
) -> Result<(), Box<dyn std::error::Error>> {
    match result {
        Err(e) => {
            writeln!(out, "{who:<22} {e}")?;
            if e.to_string() != want.to_string() {
                return Err(wrong(who, &e.to_string(), &want.to_string()));
            }
            Ok(())
        }
        Ok(_) => Err(wrong(who, "accepted", &want.to_string())),
    }
}

fn wrong(who: &str, got: &str, want: &str) -> Box<dyn std::error::Error> {
    let who = who.trim_end_matches(':');
    format!("the seed scenario went wrong: {who}: got {got}, want {want}").into()
}

/// Runs the seed scenario on a new store in `dir` (which must not hold one), writing
/// what each principal sees to `out`. The store is left in `dir`.
pub fn seed_scenario(dir: &Path, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let options = Options::new().clock(Arc::new(clock.clone()));
    let db = Db::open_with(dir, options.clone())?;

    // Set-up, as the project owner (the in-process root client).
    let root = db.root();
    root.schemas().create("db", "Database")?;
    root.schema("db").collections().create(
        CollectionSpec::new("birthdays", "Birthdays")
            .permissions([Permission::create(Role::users())])
            .document_security(true),
    )?;
    let birthdays = root.schema("db").collection("birthdays");
    for (id, name, day, letter) in [
        ("doc1", "Kevin", "2012-02-03", "a"),
        ("doc2", "Laura", "1999-09-22", "b"),
        ("doc3", "Bob", "1982-05-11", "c"),
    ] {
        let user = format!("user-{letter}");
        let (email, password) = (
            format!("{letter}@example.com"),
            format!("password-{letter}"),
        );
        db.client()
            .account()
            .create(&user, &email, &password, None)?;
        let perms = vec![Permission::read(Role::user(user))];
        birthdays.create(id, json!({"name": name, "birthday": day}), Some(perms))?;
    }
    let key = root
        .keys()
        .create("backend", &[Scope::DocumentsRead, Scope::DocumentsWrite])?;

    // The client app signs user-a in and asks for a token ...
    let sign_in = |letter: &str| -> crate::Result<(String, String)> {
        let session = db.client().account().create_email_password_session(
            &format!("{letter}@example.com"),
            &format!("password-{letter}"),
        )?;
        let jwt = db
            .client()
            .set_session(&session.secret)?
            .account()
            .create_jwt()?;
        Ok((session.secret, jwt.jwt))
    };
    let (a_session, a_jwt) = sign_in("a")?;
    writeln!(out, "user-a's token: {} chars", a_jwt.len())?;

    // ... the backend acts as user-a with it; an API key sees everything.
    let first_page = [Query::limit(25)];
    show(
        out,
        "backend with a-token",
        &db.client().set_jwt(&a_jwt)?,
        &first_page,
        (1, &["Kevin"]),
    )?;
    let (_, b_jwt) = sign_in("b")?;
    show(
        out,
        "backend with b-token",
        &db.client().set_jwt(&b_jwt)?,
        &first_page,
        (1, &["Laura"]),
    )?;
    show(
        out,
        "backend with API key",
        &db.client().set_key(&key.secret)?,
        &first_page,
        (3, &["Kevin", "Laura", "Bob"]),
    )?;

    // A query: born before 2000, ordered by name, as user-b and as the key.
    let before_2000 = [
        Query::less_than("birthday", "2000-01-01"),
        Query::order_asc("name"),
    ];
    show(
        out,
        "user-b, born < 2000",
        &db.client().set_jwt(&b_jwt)?,
        &before_2000,
        (1, &["Laura"]),
    )?;
    show(
        out,
        "API key, born < 2000",
        &db.client().set_key(&key.secret)?,
        &before_2000,
        (2, &["Bob", "Laura"]),
    )?;

    // Logout kills the token at once, and a client already holding it.
    let held = db.client().set_jwt(&a_jwt)?;
    db.client()
        .set_session(&a_session)?
        .account()
        .delete_session("current")?;
    let revoked = crate::Error::InvalidToken(crate::TokenError::SessionRevoked);
    refused(out, "after logout:", db.client().set_jwt(&a_jwt), &revoked)?;
    let held_find = held.schema("db").collection("birthdays").find(&first_page);
    refused(out, "held client, logout:", held_find, &revoked)?;

    // Reopened from disk (nothing rebuilt), a fresh token is refused 15 minutes
    // (plus the 60 s leeway) later.
    drop((held, birthdays, root, db)); // every client holds the store open
    let db = Db::open_with(dir, options)?;
    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")?;
    let jwt = db
        .client()
        .set_session(&session.secret)?
        .account()
        .create_jwt()?;
    show(
        out,
        "reopened, new token",
        &db.client().set_jwt(&jwt.jwt)?,
        &first_page,
        (1, &["Kevin"]),
    )?;
    clock.advance(time::Duration::minutes(16) + time::Duration::seconds(1));
    let expired = crate::Error::InvalidToken(crate::TokenError::Expired);
    refused(
        out,
        "16 minutes later:",
        db.client().set_jwt(&jwt.jwt),
        &expired,
    )?;
    Ok(())
}
