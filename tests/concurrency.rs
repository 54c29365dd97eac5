//! Many threads at once: writers creating, updating, re-permissioning and deleting their
//! documents as different users, readers finding, counting, paging and getting as others.
//! Every document carries in its data the readers its permissions name, written in the
//! same atomic write, so each answer can be checked against the version it returned: no
//! reader ever gets a document it could not read in that version, a document that is
//! always readable is never missing, nothing deadlocks, and at the end the store equals
//! the writers' model, and `verify` finds every index equal to a rebuild.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use permdb::{
    AttributeSpec, Collection, CollectionSpec, Db, Document, Error, IndexSpec, Permission, Query,
    Role,
};
use serde_json::{Value, json};

const WRITERS: usize = 4;
const READERS: usize = 4;
const OPS_PER_WRITER: u64 = 250;
const IDS_PER_WRITER: u64 = 25;

fn reader(r: usize) -> String {
    format!("r{r}")
}

fn collection(db: &Db, user: &str) -> Collection {
    db.root()
        .impersonate(user)
        .unwrap()
        .schema("s")
        .collection("c")
}

/// A document's data and permissions for readers `mask` (bit r: reader r), version `v`.
fn version(writer: &str, mask: u64, v: u64) -> (Value, Vec<Permission>) {
    let readers: Vec<String> = (0..READERS)
        .filter(|r| mask & (1 << r) != 0)
        .map(reader)
        .collect();
    // A user may only grant roles they hold: each reader has a team, and every writer
    // is in all of them.
    let mut perms: Vec<Permission> = readers
        .iter()
        .map(|r| Permission::read(Role::team(format!("t{r}"))))
        .collect();
    perms.push(Permission::read(Role::user(writer)));
    perms.push(Permission::update(Role::user(writer)));
    perms.push(Permission::delete(Role::user(writer)));
    (json!({"readers": readers, "v": v, "writer": writer}), perms)
}

/// Whether `doc`, in the version returned, names `me` among its readers, and its
/// permissions say the same as its data (they were written together).
#[track_caller]
fn check_returned(doc: &Document, me: &str) {
    let readers: Vec<&str> = doc
        .data()
        .get("readers")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
        .unwrap_or_default();
    let pinned = doc.id().starts_with("pin-");
    assert!(
        pinned || readers.contains(&me),
        "{me} got {} whose readers are {readers:?}",
        doc.id()
    );
    if !pinned {
        let mut granted: Vec<String> = doc
            .permissions()
            .iter()
            .filter(|p| p.to_string().starts_with("read(\"team:tr"))
            .map(|p| p.to_string())
            .collect();
        granted.sort();
        let mut named: Vec<String> = readers
            .iter()
            .map(|r| format!("read(\"team:t{r}\")"))
            .collect();
        named.sort();
        assert_eq!(
            granted,
            named,
            "{}: permissions and data disagree",
            doc.id()
        );
    }
}

type Model = BTreeMap<String, (u64, u64)>; // id -> (reader mask, version)

fn writer_thread(db: Db, w: usize, seed: u64) -> Model {
    let me = format!("w{w}");
    let c = collection(&db, &me);
    let mut model = Model::new();
    for i in 0..OPS_PER_WRITER {
        let r = common::mix(seed ^ ((w as u64) << 32) ^ i);
        let id = format!("{me}-{}", r % IDS_PER_WRITER);
        let mask = (r >> 8) % (1 << READERS);
        let v = i;
        let (data, perms) = version(&me, mask, v);
        match ((r >> 16) % 4, model.contains_key(&id)) {
            (0 | 1, false) => {
                c.create(&id, data, Some(perms)).unwrap();
                model.insert(id, (mask, v));
            }
            (0 | 1, true) | (2, true) => {
                c.update(&id, data, Some(perms)).unwrap();
                model.insert(id, (mask, v));
            }
            (3, true) => {
                c.delete(&id).unwrap();
                model.remove(&id);
            }
            (_, false) => {
                assert!(matches!(c.delete(&id), Err(Error::NotFound { .. })));
            }
            _ => unreachable!(),
        }
    }
    model
}

fn reader_thread(db: Db, r: usize, stop: Arc<AtomicBool>, rounds: Arc<AtomicU64>) {
    let me = reader(r);
    let c = collection(&db, &me);
    let pinned = format!("pin-{me}");
    let mut i = 0u64;
    while !stop.load(Ordering::Acquire) || i < 20 {
        i += 1;
        let pick = common::mix(i ^ ((r as u64) << 40));
        let queries = match pick % 6 {
            0 => vec![Query::limit(5000)],
            1 => vec![Query::limit(10), Query::offset(pick % 20)],
            2 => vec![Query::order_desc("v"), Query::limit(25)],
            3 => vec![
                Query::greater_than("v", (pick % 200) as i64),
                Query::limit(50),
            ],
            4 => vec![Query::or([
                Query::equal("writer", ["w0"]),
                Query::less_than("v", 50),
            ])],
            _ => vec![Query::select(["readers", "v"]), Query::limit(100)],
        };
        let list = c.find(&queries).unwrap();
        for doc in &list.documents {
            check_returned(doc, &me);
        }
        if pick % 6 == 0 {
            // Always readable by this reader, never changed: never missing.
            assert!(
                list.documents.iter().any(|d| d.id() == pinned),
                "{me}'s pinned document missing from a full page"
            );
            // A cursor on a document seen: the page after it is checked the same way,
            // or the cursor's document is gone by now (deleted or no longer readable).
            if let Some(seen) = list
                .documents
                .get((pick as usize / 7) % list.documents.len())
            {
                match c.find(&[Query::cursor_after(seen.id()), Query::limit(20)]) {
                    Ok(after) => after.documents.iter().for_each(|d| check_returned(d, &me)),
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => panic!("{me}: cursor: {e}"),
                }
            }
        }
        assert!(
            c.count(&[]).unwrap() >= 1,
            "{me} counts without its pinned document"
        );
        let id = format!(
            "w{}-{}",
            pick % WRITERS as u64,
            (pick >> 8) % IDS_PER_WRITER
        );
        match c.get(&id) {
            Ok(doc) => check_returned(&doc, &me),
            Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("{me}: get {id}: {e}"),
        }
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn writers_and_readers_at_once_never_see_what_they_may_not() {
    let (options, _) = common::test_options();
    let db = Db::open_with(tempfile::tempdir().unwrap().keep(), options).unwrap();
    let spec = CollectionSpec::new("c", "C")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    let root = common::create_collection(&db, "s", spec);
    let collections = db.root().schema("s").collections();
    collections
        .create_attribute("c", AttributeSpec::integer("v"))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("writer", 8))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("readers", 8).array(true))
        .unwrap();
    collections
        .create_index("c", IndexSpec::key("by_v", ["v"]))
        .unwrap();
    collections
        .create_index("c", IndexSpec::key("by_writer", ["writer"]))
        .unwrap();
    let users = db.root().users();
    for user in (0..READERS)
        .map(reader)
        .chain((0..WRITERS).map(|w| format!("w{w}")))
    {
        users
            .create(&user, &format!("{user}@example.com"), "password", None)
            .unwrap();
    }
    let teams = db.root().teams();
    for r in 0..READERS {
        teams.create(&format!("t{}", reader(r)), "Readers").unwrap();
        teams
            .create_membership(&format!("t{}", reader(r)), &reader(r), &[])
            .unwrap();
        for w in 0..WRITERS {
            teams
                .create_membership(&format!("t{}", reader(r)), &format!("w{w}"), &[])
                .unwrap();
        }
    }
    for r in 0..READERS {
        root.create(
            &format!("pin-{}", reader(r)),
            json!({"v": 1_000_000}),
            Some(vec![Permission::read(Role::user(reader(r)))]),
        )
        .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, stop, rounds, done) =
                (db.clone(), stop.clone(), rounds.clone(), done_tx.clone());
            thread::spawn(move || {
                reader_thread(db, r, stop, rounds);
                done.send(()).unwrap();
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, done) = (db.clone(), done_tx.clone());
            thread::spawn(move || {
                let model = writer_thread(db, w, 0xC0FF_EE00);
                done.send(()).unwrap();
                model
            })
        })
        .collect();
    // Nothing may deadlock: every writer finishes within the watchdog's time.
    for _ in 0..WRITERS {
        if done_rx.recv_timeout(Duration::from_secs(120)).is_err() {
            panic!("a thread has not finished in 120 s: deadlock or stall");
        }
    }
    stop.store(true, Ordering::Release);
    for _ in 0..READERS {
        if done_rx.recv_timeout(Duration::from_secs(120)).is_err() {
            panic!("a reader has not finished in 120 s");
        }
    }
    let mut model = Model::new();
    for w in writers {
        model.extend(w.join().unwrap());
    }
    for r in readers {
        r.join().unwrap();
    }
    eprintln!(
        "{} reader rounds during {} writes",
        rounds.load(Ordering::Relaxed),
        WRITERS as u64 * OPS_PER_WRITER
    );

    // The end state equals the writers' model, for root and for every reader.
    let all = root.find(&[Query::limit(5000)]).unwrap();
    assert_eq!(all.total as usize, model.len() + READERS);
    for doc in &all.documents {
        if let Some((mask, v)) = model.get(doc.id()) {
            assert_eq!(doc.data()["v"], json!(v), "{}", doc.id());
            let writer = &doc.id()[..2];
            let (data, _) = version(writer, *mask, *v);
            assert_eq!(doc.data()["readers"], data["readers"], "{}", doc.id());
        }
    }
    for r in 0..READERS {
        let me = reader(r);
        let mut seen: Vec<String> = collection(&db, &me)
            .find(&[Query::limit(5000)])
            .unwrap()
            .documents
            .iter()
            .map(|d| d.id().to_owned())
            .collect();
        seen.sort();
        let mut want: Vec<String> = model
            .iter()
            .filter(|(_, (mask, _))| mask & (1 << r) != 0)
            .map(|(id, _)| id.clone())
            .collect();
        want.push(format!("pin-{me}"));
        want.sort();
        assert_eq!(seen, want, "{me}");
    }
    let report = db.verify().unwrap();
    assert_eq!(report.problems, 0, "{report:?}");
}

/// A `get` racing a delete and a new create of the same id answers with the document
/// (old or new) or "not found", never with an error: the id entry and the document are
/// read apart, and a delete between the two reads is not damage.
#[test]
fn get_during_delete_and_create_again_is_found_or_absent() {
    let db = Db::temporary().unwrap();
    let coll = common::create_collection(&db, "s", CollectionSpec::new("c", "C"));
    coll.create("x", json!({"v": 0}), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (coll, stop) = (coll.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut v = 0u64;
            while !stop.load(Ordering::Acquire) {
                v += 1;
                coll.delete("x").unwrap();
                coll.create("x", json!({"v": v}), None).unwrap();
            }
            v
        })
    };
    let (mut found, mut absent) = (0u64, 0u64);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        match coll.get("x") {
            Ok(doc) => {
                assert_eq!(doc.id(), "x");
                found += 1;
            }
            Err(Error::NotFound { .. }) => absent += 1,
            Err(e) => panic!("get during delete and create: {e}"),
        }
    }
    stop.store(true, Ordering::Release);
    let replaced = churn.join().unwrap();
    assert!(
        found > 0 && replaced > 0,
        "found {found}, absent {absent}, replaced {replaced}"
    );
}
