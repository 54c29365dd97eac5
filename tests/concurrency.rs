//! Many threads at once: writers creating, updating, re-permissioning and deleting their
//! documents as different users, readers finding, counting, paging and getting as others.
//! Every document carries in its data the readers its permissions name, written in the
//! same atomic write, so each answer can be checked against the version it returned: no
//! reader ever gets a document it could not read in that version, a document that is
//! always readable is never missing, nothing deadlocks, and at the end the store equals
//! the writers' model, and `verify` finds every index equal to a rebuild. A thread that
//! panics fails the test as soon as it has, with its message. A `get` racing a delete
//! and a create of its id answers with the old document, the new one or "not found".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
        if pick.is_multiple_of(6) {
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

/// What a panicking thread panicked with.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

/// Joins those of `running` that have finished and returns what they returned; one that
/// panicked fails the test at once with its name and message, after setting `stop`.
fn reap<T>(running: &mut Vec<(String, JoinHandle<T>)>, stop: &AtomicBool) -> Vec<T> {
    let mut returned = Vec::new();
    let mut i = 0;
    while i < running.len() {
        if !running[i].1.is_finished() {
            i += 1;
            continue;
        }
        let (name, handle) = running.swap_remove(i);
        match handle.join() {
            Ok(value) => returned.push(value),
            Err(payload) => {
                stop.store(true, Ordering::Release);
                panic!("{name} panicked: {}", panic_message(&*payload));
            }
        }
    }
    returned
}

/// A reader that panicked on a permission violation was reported only 120 s later, as
/// "has not finished": the watchdog now joins each thread that finishes, at once.
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
    let mut readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, stop, rounds) = (db.clone(), stop.clone(), rounds.clone());
            let handle = thread::spawn(move || reader_thread(db, r, stop, rounds));
            (reader(r), handle)
        })
        .collect();
    let mut writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            let handle = thread::spawn(move || writer_thread(db, w, 0xC0FF_EE00));
            (format!("w{w}"), handle)
        })
        .collect();
    // Nothing may deadlock: every writer finishes within the watchdog's time. A thread
    // that panics fails the test as soon as it has; a reader stops only when told to.
    let watchdog = Duration::from_secs(120);
    let started = Instant::now();
    let mut model = Model::new();
    while !writers.is_empty() {
        model.extend(reap(&mut writers, &stop).into_iter().flatten());
        assert!(
            reap(&mut readers, &stop).is_empty(),
            "a reader returned while the writers were writing"
        );
        let waiting: Vec<&String> = writers.iter().map(|(name, _)| name).collect();
        assert!(
            started.elapsed() < watchdog,
            "writers {waiting:?} have not finished in {watchdog:?}: deadlock or stall"
        );
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Release);
    let started = Instant::now();
    while !readers.is_empty() {
        reap(&mut readers, &stop);
        let waiting: Vec<&String> = readers.iter().map(|(name, _)| name).collect();
        assert!(
            started.elapsed() < watchdog,
            "readers {waiting:?} have not finished in {watchdog:?}"
        );
        thread::sleep(Duration::from_millis(5));
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
/// read apart, and a delete between the two reads is not damage. The test once passed
/// without a get ever answering "not found": it now runs until each answer was seen.
#[test]
fn get_during_delete_and_create_again_is_found_or_absent() {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(&db, "s", CollectionSpec::new("c", "C"));
    coll.create("x", json!({"v": 0}), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The version of "x" whose create has begun: every older one is deleted by then.
    let begun = Arc::new(AtomicU64::new(0));
    let churn = {
        let (coll, stop, begun) = (coll.clone(), Arc::clone(&stop), Arc::clone(&begun));
        thread::spawn(move || {
            let mut v = 0u64;
            while !stop.load(Ordering::Acquire) {
                v += 1;
                coll.delete("x").unwrap();
                begun.store(v, Ordering::Release);
                coll.create("x", json!({"v": v}), None).unwrap();
            }
            v
        })
    };
    // Old: the version begun before the get began. New: one begun after it, so a delete
    // and a create ran during the get. Absent: read between a delete and a create.
    let (mut old, mut new, mut absent) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    // As long as before, longer until each answer has been seen, but not without end.
    while started.elapsed() < Duration::from_millis(1500)
        || (started.elapsed() < Duration::from_secs(6) && old.min(new).min(absent) == 0)
    {
        let before = begun.load(Ordering::Acquire);
        match coll.get("x") {
            Ok(doc) => {
                assert_eq!(doc.id(), "x");
                let v = doc.data()["v"].as_u64().unwrap();
                assert!(v >= before, "got version {v}, deleted before the get began");
                if v == before {
                    old += 1;
                } else {
                    new += 1;
                }
            }
            Err(Error::NotFound { .. }) => absent += 1,
            Err(e) => panic!("get during delete and create: {e}"),
        }
    }
    eprintln!(
        "old {old}, new {new}, absent {absent} in {:?}",
        started.elapsed()
    );
    stop.store(true, Ordering::Release);
    let replaced = churn.join().unwrap();
    assert!(
        old > 0 && new > 0 && absent > 0,
        "in {:?}: old {old}, new {new}, absent {absent}, replaced {replaced}",
        started.elapsed()
    );
}

/// A `find`'s page and total, and a `count`, come from one state of the store, on either
/// engine: a writer swaps documents in single transactions (one out, one in, the number
/// constant), and no reader sees a page whose size is not its total, nor another count.
#[test]
fn a_find_reads_one_state_of_the_store() {
    const LIVE: usize = 40;
    let db = common::temporary().unwrap();
    let coll = common::create_collection(&db, "s", CollectionSpec::new("c", "C"));
    for i in 0..LIVE {
        coll.create(&format!("d{i}"), json!({"i": i}), None)
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let root = db.root();
            let mut n = 0usize;
            while !stop.load(Ordering::Acquire) {
                let mut tx = root.transaction();
                tx.collection("s", "c")
                    .delete(&format!("d{n}"))
                    .unwrap()
                    .create(&format!("d{}", n + LIVE), json!({"i": n + LIVE}), None)
                    .unwrap();
                tx.commit().unwrap();
                n += 1;
            }
            n
        })
    };
    let started = Instant::now();
    let mut reads = 0u64;
    while started.elapsed() < Duration::from_millis(1500) {
        let page = coll.find(&[Query::limit(1000)]).unwrap();
        assert_eq!(page.total, LIVE as u64, "total after {reads} reads");
        assert_eq!(page.documents.len(), LIVE, "page size after {reads} reads");
        assert_eq!(coll.count(&[]).unwrap(), LIVE as u64);
        reads += 1;
    }
    stop.store(true, Ordering::Release);
    let swapped = swaps.join().unwrap();
    assert!(
        swapped > 100 && reads > 100,
        "{swapped} swaps, {reads} reads"
    );
}
