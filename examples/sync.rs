//! Local-first sync: a replica that keeps a local copy of what one user may see. It
//! catches up with `Collection::changes` after a restart, then follows `watch`, and says
//! what it did. `cargo run --example sync`
//!
//! The replica keeps its copy and the number to resume from in a file; the "server" is
//! a permdb store in the same process (a real app would reach it over HTTP).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "an example")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use permdb::{Collection, CollectionSpec, Db, Error, Event, Permission, Query, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the replica keeps on disk: the documents by id, and where to resume the feed.
#[derive(Default, Serialize, Deserialize)]
struct Replica {
    since: u64,
    docs: BTreeMap<String, Value>,
}

impl Replica {
    fn load(path: &Path) -> Replica {
        std::fs::read(path)
            .map(|b| serde_json::from_slice(&b).expect("the replica file"))
            .unwrap_or_default()
    }

    fn save(&self, path: &Path) {
        std::fs::write(path, serde_json::to_vec_pretty(self).unwrap()).unwrap();
    }

    /// Follows the feed to the present, in pages of 50; resyncs with `find` when the
    /// feed says it cannot answer.
    fn catch_up(&mut self, db: &Db, notes: &Collection) -> permdb::Result<()> {
        loop {
            match notes.changes(self.since, 50) {
                Ok(page) => {
                    let (put, gone) = (page.documents.len(), page.gone.len());
                    for (_, doc) in page.documents {
                        self.docs
                            .insert(doc.id().to_owned(), Value::Object(doc.data().clone()));
                    }
                    for (_, id) in page.gone {
                        self.docs.remove(&id);
                    }
                    println!(
                        "  feed after {}: {put} document(s) new or changed, {gone} gone; resume from {}",
                        self.since, page.next
                    );
                    let done = page.next == self.since || page.next == db.last_lsn();
                    self.since = page.next;
                    if done {
                        return Ok(());
                    }
                }
                Err(Error::ResyncRequired { reason, .. }) => {
                    println!("  feed: resync ({reason}); reading the view again with find");
                    self.since = db.last_lsn();
                    self.docs = notes
                        .find(&[Query::limit(5000)])?
                        .documents
                        .into_iter()
                        .map(|d| (d.id().to_owned(), Value::Object(d.data().clone())))
                        .collect();
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Created { lsn, document }
            | Event::Updated { lsn, document }
            | Event::Entered { lsn, document } => {
                println!(
                    "  live {lsn}: {} now {}",
                    document.id(),
                    Value::Object(document.data().clone())
                );
                self.docs.insert(
                    document.id().to_owned(),
                    Value::Object(document.data().clone()),
                );
                self.since = self.since.max(lsn);
            }
            Event::Deleted { lsn, id } | Event::Left { lsn, id } => {
                println!("  live {lsn}: {id} gone");
                self.docs.remove(&id);
                self.since = self.since.max(lsn);
            }
            other => println!("  live: subscription closed: {other:?}"),
        }
    }
}

fn main() -> permdb::Result<()> {
    let dir = tempfile_dir();
    let replica_file = dir.join("replica-user-a.json");
    let db = Db::open(dir.join("store"))?;
    let root = db.root();
    root.schemas().create("app", "App")?;
    root.schema("app").collections().create(
        CollectionSpec::new("notes", "Notes")
            .permissions([Permission::create(Role::users())])
            .document_security(true),
    )?;
    let notes = root.schema("app").collection("notes");
    for who in ["user-a", "user-b"] {
        let letter = who.trim_start_matches("user-");
        db.client().account().create(
            who,
            &format!("{letter}@example.com"),
            &format!("password-{letter}"),
            None,
        )?;
    }
    let for_a = |doc: &str, text: &str| {
        notes.create(
            doc,
            json!({"text": text}),
            Some(vec![Permission::read(Role::user("user-a"))]),
        )
    };
    for_a("n1", "buy milk")?;
    for_a("n2", "call Laura")?;
    notes.create(
        "n3",
        json!({"text": "user-b's"}),
        Some(vec![Permission::read(Role::user("user-b"))]),
    )?;

    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")?;
    let a = db.client().set_session(&session.secret)?;
    let a_notes = a.schema("app").collection("notes");

    println!("first start: an empty replica catches up");
    let mut replica = Replica::load(&replica_file);
    replica.catch_up(&db, &a_notes)?;
    replica.save(&replica_file);
    println!(
        "  replica holds {:?}",
        replica.docs.keys().collect::<Vec<_>>()
    );

    println!("offline: the server changes n1, shares n3 with user-a, deletes n2, adds n4");
    notes.update("n1", json!({"text": "buy oat milk"}), None)?;
    notes.update(
        "n3",
        json!({}),
        Some(vec![
            Permission::read(Role::user("user-a")),
            Permission::read(Role::user("user-b")),
        ]),
    )?;
    notes.delete("n2")?;
    for_a("n4", "book trains")?;

    println!("restart: the replica is read from its file and catches up");
    let mut replica = Replica::load(&replica_file);
    replica.catch_up(&db, &a_notes)?;
    replica.save(&replica_file);
    println!(
        "  replica holds {:?}",
        replica.docs.keys().collect::<Vec<_>>()
    );

    println!("live: the replica follows watch");
    let live = a_notes.watch(&[])?;
    // Changes between the catch-up and the subscription are read once more.
    replica.catch_up(&db, &a_notes)?;
    notes.update("n4", json!({"text": "book trains to Lyon"}), None)?;
    notes.update(
        "n3",
        json!({}),
        Some(vec![Permission::read(Role::user("user-b"))]),
    )?;
    for_a("n5", "water plants")?;
    while let Some(event) = live.recv_timeout(Duration::from_millis(200)) {
        replica.apply(event);
    }
    replica.save(&replica_file);

    let view: BTreeMap<String, Value> = a_notes
        .find(&[Query::limit(5000)])?
        .documents
        .into_iter()
        .map(|d| (d.id().to_owned(), Value::Object(d.data().clone())))
        .collect();
    println!(
        "replica holds {:?}",
        replica.docs.keys().collect::<Vec<_>>()
    );
    println!("replica equals find: {}", replica.docs == view);
    assert_eq!(
        replica.docs, view,
        "the replica must equal what find shows user-a"
    );
    drop(live);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("permdb-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
