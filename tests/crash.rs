//! Crash rounds: a child process writes (creates, updates, permission changes, deletes,
//! batches) and logs each acknowledged write; the parent kills it with SIGKILL at a random
//! moment, reopens the store and checks it against a model of the acknowledged writes.
//!
//! Under `Durability::Immediate` the store must hold exactly the acknowledged writes, plus
//! possibly the one in flight; under `Durability::Periodic` it must hold a prefix of them.
//! Either way no document is half-written and `Db::verify` finds every index equal to a
//! rebuild from the documents. `cargo test` runs a bounded number of seeded rounds; the
//! ignored `crash_rounds_long` runs `PERMDB_CRASH_ROUNDS` (default 500) of each.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use permdb::{
    AttributeSpec, CollectionSpec, Db, Durability, Error, IndexSpec, Options, Permission, Query,
};
use serde_json::{Value, json};

/// Set in the child's environment: `dir|seed|first op|durability`.
const CHILD_ENV: &str = "PERMDB_CRASH_CHILD";
/// Document ids are drawn from this many.
const IDS: u64 = 40;
/// Users whose view of the collection is checked after every round.
const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];

#[derive(Debug, Clone)]
enum Op {
    /// Create the document, or update its data and permissions when it exists.
    Put {
        id: String,
        data: Value,
        perms: Vec<String>,
    },
    /// Change only the permissions of the document, when it exists.
    Repermission { id: String, perms: Vec<String> },
    /// Delete the document, when it exists.
    Delete { id: String },
    /// Create three documents in one batch; when any exists, nothing is written.
    Batch {
        docs: Vec<(String, Value, Vec<String>)>,
    },
}

fn perms_for(r: u64) -> Vec<String> {
    let mut perms = vec![format!("read(\"user:{}\")", USERS[(r % 4) as usize])];
    if r & 4 != 0 {
        perms.push(format!("read(\"user:{}\")", USERS[((r >> 3) % 4) as usize]));
    }
    if r & 32 != 0 {
        perms.push("read(\"any\")".into());
    }
    if r & 64 != 0 {
        perms.push(format!(
            "update(\"user:{}\")",
            USERS[((r >> 7) % 4) as usize]
        ));
    }
    perms.sort();
    perms.dedup();
    perms
}

fn data_for(i: u64, r: u64) -> Value {
    // `name` is indexed (key and fulltext); `v` is unique because `i` is.
    json!({"name": format!("name{} w{}", r % 7, (r >> 5) % 3), "v": i, "pad": "x".repeat((r % 300) as usize)})
}

/// Op `i` of the sequence for `seed`: independent of the store's state.
fn op(seed: u64, i: u64) -> Op {
    let r = common::mix(seed ^ common::mix(i));
    let id = format!("d{}", (r >> 16) % IDS);
    match r % 10 {
        0..=4 => Op::Put {
            id,
            data: data_for(i, r >> 20),
            perms: perms_for(r >> 24),
        },
        5 | 6 => Op::Repermission {
            id,
            perms: perms_for(r >> 28),
        },
        7 | 8 => Op::Delete { id },
        _ => Op::Batch {
            docs: (0..3u64)
                .map(|j| {
                    let rj = common::mix(r ^ j);
                    (
                        format!("d{}", rj % IDS),
                        data_for(i * 4 + j + 1_000_000, rj >> 8),
                        perms_for(rj >> 12),
                    )
                })
                .collect(),
        },
    }
}

/// What the collection holds: id -> (data, sorted permission strings).
type Model = BTreeMap<String, (Value, Vec<String>)>;

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Put { id, data, perms } => {
            model.insert(id.clone(), (data.clone(), perms.clone()));
        }
        Op::Repermission { id, perms } => {
            if let Some(doc) = model.get_mut(id) {
                doc.1 = perms.clone();
            }
        }
        Op::Delete { id } => {
            model.remove(id);
        }
        Op::Batch { docs } => {
            let mut ids: Vec<&String> = docs.iter().map(|d| &d.0).collect();
            ids.sort();
            ids.dedup();
            if ids.len() == docs.len() && docs.iter().all(|d| !model.contains_key(&d.0)) {
                for (id, data, perms) in docs {
                    model.insert(id.clone(), (data.clone(), perms.clone()));
                }
            }
        }
    }
}

fn parse_perms(perms: &[String]) -> Vec<Permission> {
    perms.iter().map(|p| p.parse().unwrap()).collect()
}

fn options(durability: Durability) -> Options {
    common::test_options().0.durability(durability)
}

fn create_store(dir: &Path) {
    let db = Db::open_with(dir, options(Durability::Immediate)).unwrap();
    let root = db.root();
    root.schemas().create("s", "S").unwrap();
    let collections = root.schema("s").collections();
    collections
        .create(CollectionSpec::new("c", "C").document_security(true))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("name", 40))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::integer("v"))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("pad", 400))
        .unwrap();
    collections
        .create_index("c", IndexSpec::key("by_name", ["name"]))
        .unwrap();
    collections
        .create_index("c", IndexSpec::unique("by_v", ["v"]))
        .unwrap();
    collections
        .create_index("c", IndexSpec::fulltext("words", "name"))
        .unwrap();
}

/// The child: applies ops from `first` on until killed, logging each acknowledged one.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split('|').collect();
    let dir = Path::new(parts[0]);
    let seed: u64 = parts[1].parse().unwrap();
    let first: u64 = parts[2].parse().unwrap();
    let durability = match parts[3] {
        "immediate" => Durability::Immediate,
        _ => Durability::Periodic { every_ms: 100 },
    };
    let mut acks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("acks"))
        .unwrap();
    let db = Db::open_with(dir, options(durability)).unwrap();
    let c = db.root().schema("s").collection("c");
    for i in first.. {
        match op(seed, i) {
            Op::Put { id, data, perms } => match c.get(&id) {
                Ok(_) => drop(c.update(&id, data, Some(parse_perms(&perms))).unwrap()),
                Err(Error::NotFound { .. }) => {
                    drop(c.create(&id, data, Some(parse_perms(&perms))).unwrap())
                }
                Err(e) => panic!("{e}"),
            },
            Op::Repermission { id, perms } => match c.get(&id) {
                Ok(_) => drop(c.update(&id, json!({}), Some(parse_perms(&perms))).unwrap()),
                Err(Error::NotFound { .. }) => {}
                Err(e) => panic!("{e}"),
            },
            Op::Delete { id } => match c.delete(&id) {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => panic!("{e}"),
            },
            Op::Batch { docs } => {
                let docs: Vec<_> = docs
                    .into_iter()
                    .map(|(id, data, perms)| (id, data, Some(parse_perms(&perms))))
                    .collect();
                match c.create_many(docs) {
                    Ok(_) | Err(Error::Conflict(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
        // The write returned: acknowledged. A kill may cut this line short; the parent
        // ignores a line without its newline.
        acks.write_all(format!("{i}\n").as_bytes()).unwrap();
    }
}

/// The child's entry point: this test does nothing unless started by `crash_rounds`.
#[test]
fn crash_child_entry() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
    }
}

/// The documents of the store as root sees them, with sorted permission strings.
fn stored(db: &Db) -> Model {
    let c = db.root().schema("s").collection("c");
    let list = c.find(&[Query::limit(1000)]).unwrap();
    assert_eq!(list.total as usize, list.documents.len());
    let mut out = Model::new();
    for d in list.documents {
        let mut perms: Vec<String> = d.permissions().iter().map(|p| p.to_string()).collect();
        perms.sort();
        out.insert(d.id().to_owned(), (Value::Object(d.data().clone()), perms));
    }
    out
}

/// Every check a reopened store must pass against `model`.
fn check_views(db: &Db, model: &Model, context: &str) {
    let report = db.verify().unwrap();
    assert_eq!(report.problems, 0, "{context}: {report:?}");
    for user in USERS {
        let c = db
            .root()
            .impersonate(user)
            .unwrap()
            .schema("s")
            .collection("c");
        let mut seen: Vec<String> = c
            .find(&[Query::limit(1000)])
            .unwrap()
            .documents
            .into_iter()
            .map(|d| d.id().to_owned())
            .collect();
        seen.sort();
        let want: Vec<String> = model
            .iter()
            .filter(|(_, (_, perms))| {
                perms.contains(&format!("read(\"user:{user}\")"))
                    || perms.contains(&"read(\"any\")".to_string())
            })
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(seen, want, "{context}: {user}'s find");
    }
    let c = db.root().schema("s").collection("c");
    for n in 0..7 {
        let by_index = c
            .count(&[Query::starts_with("name", &format!("name{n} "))])
            .unwrap();
        let want = model
            .values()
            .filter(|(d, _)| {
                d["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("name{n} "))
            })
            .count() as u64;
        assert_eq!(by_index, want, "{context}: name{n} through the index");
    }
}

fn read_acks(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(|l| l.parse().unwrap()).collect()
}

/// What a round found.
#[derive(Debug, Default)]
struct Tally {
    rounds: u64,
    acknowledged: u64,
    in_flight_applied: u64,
    lost_unflushed: u64,
}

fn crash_rounds(seed: u64, rounds: u64, durability: Durability) -> Tally {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let acks_path = dir.with_extension("acks");
    create_store(&dir);
    let exe = std::env::current_exe().unwrap();
    // The child's periodic flush is every 100 ms, shorter than most rounds.
    let mode = match durability {
        Durability::Immediate => "immediate",
        _ => "periodic",
    };
    let mut model = Model::new();
    let mut next = 0u64;
    let mut tally = Tally::default();
    for round in 0..rounds {
        let _ = std::fs::remove_file(&acks_path);
        let mut child = Command::new(&exe)
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{seed}|{next}|{mode}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(30 + common::mix(seed ^ round) % 170);
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                panic!("seed {seed} round {round}: child exited by itself ({status}): {err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let acked = read_acks(&acks_path);
        let expected: Vec<u64> = (next..next + acked.len() as u64).collect();
        assert_eq!(
            acked, expected,
            "seed {seed} round {round}: acks out of order"
        );
        let context = format!("seed {seed} round {round} ({mode}, ops {next}..)");

        // The states the store may be in: after the first j ops of this round.
        let mut states = vec![model.clone()];
        let mut s = model.clone();
        for i in next..=next + acked.len() as u64 {
            apply(&mut s, &op(seed, i));
            states.push(s.clone());
        }
        let db = Db::open_with(&dir, options(durability))
            .unwrap_or_else(|e| panic!("{context}: reopening after the kill: {e}"));
        let have = stored(&db);
        let allowed = match durability {
            // Every acknowledged op, and the one in flight may have landed.
            Durability::Immediate => acked.len()..=acked.len() + 1,
            _ => 0..=acked.len() + 1,
        };
        let j = allowed
            .clone()
            .rev()
            .find(|&j| states[j] == have)
            .unwrap_or_else(|| {
                panic!(
                    "{context}: the store matches no allowed state ({allowed:?} of {} acked ops)",
                    acked.len()
                )
            });
        check_views(&db, &states[j], &context);
        drop(db);
        tally.rounds += 1;
        tally.acknowledged += acked.len() as u64;
        if j > acked.len() {
            tally.in_flight_applied += 1;
        }
        tally.lost_unflushed += acked.len().saturating_sub(j) as u64;
        model = states.swap_remove(j);
        next += j as u64;
    }
    tally
}

#[test]
fn crash_rounds_immediate_durability_lose_nothing_acknowledged() {
    let tally = crash_rounds(0x5EED_0001, 120, Durability::Immediate);
    eprintln!("immediate: {tally:?}");
    assert_eq!(tally.lost_unflushed, 0);
    assert!(tally.acknowledged > 0, "{tally:?}");
}

#[test]
fn crash_rounds_periodic_durability_keep_a_consistent_prefix() {
    let tally = crash_rounds(0x5EED_0002, 40, Durability::Periodic { every_ms: 100 });
    eprintln!("periodic: {tally:?}");
}

#[test]
#[ignore = "long: PERMDB_CRASH_ROUNDS rounds of each durability (default 500)"]
fn crash_rounds_long() {
    let rounds = std::env::var("PERMDB_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(500);
    let seed = std::env::var("PERMDB_CRASH_SEED")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0x5EED_1000);
    eprintln!(
        "immediate: {:?}",
        crash_rounds(seed, rounds, Durability::Immediate)
    );
    eprintln!(
        "periodic: {:?}",
        crash_rounds(seed + 1, rounds, Durability::Periodic { every_ms: 100 })
    );
}
