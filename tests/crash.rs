//! Crash rounds: a child process writes (creates, updates, permission changes, deletes,
//! batches) and logs each acknowledged write with the time it was acknowledged. A round
//! ends with the parent's SIGKILL at a seeded moment, or with the child aborting itself
//! right after a seeded op; the parent then reopens the store and checks it against a
//! model of the acknowledged writes.
//!
//! Under `Durability::Immediate` the store must hold exactly the acknowledged writes, plus
//! possibly the one in flight when the parent killed. Under `Durability::Periodic` it must
//! hold a prefix of them that takes in every write acknowledged more than two flush
//! intervals before the kill. Either way no document is half-written and `Db::verify`
//! finds every index equal to a rebuild from the documents.
//!
//! A kill takes what the process held, not what it had handed to the operating system:
//! a write still only in the process's memory two intervals after it was acknowledged
//! fails a round, one handed over but never fsynced does not. (sled hands the log to the
//! operating system at every transaction, so only a power cut would tell a `Periodic`
//! that never fsyncs apart.)
//!
//! The child is the test that runs the rounds, started again with `PERMDB_CRASH_CHILD`
//! set: no test exists only to be started, so none passes in a normal run without
//! checking anything. A failure names its seed, its round and a `PERMDB_CRASH_REPLAY`
//! value; `PERMDB_CRASH_REPLAY=<value> cargo test --test crash crash_rounds_long --
//! --ignored` then runs that round alone: the ops before it are written in process, and
//! the child aborts after the same op (a round ended by a timed kill is replayed as an
//! abort after its last acknowledged op). `cargo test` runs a bounded number of seeded
//! rounds; the ignored `crash_rounds_long` runs `PERMDB_CRASH_ROUNDS` (default 500) of
//! each durability from `PERMDB_CRASH_SEED`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use permdb::{
    AttributeSpec, Collection, CollectionSpec, Db, Durability, Error, IndexSpec, Options,
    Permission, Query,
};
use serde_json::{Value, json};

/// Set in the child's environment: `dir|seed|first op|mode|abort after op or -|pace µs`.
const CHILD_ENV: &str = "PERMDB_CRASH_CHILD";
/// Makes `crash_rounds_long` replay one round: `seed|mode|round|first op|abort after op`.
const REPLAY_ENV: &str = "PERMDB_CRASH_REPLAY";
/// Document ids are drawn from this many.
const IDS: u64 = 40;
/// Users whose view of the collection is checked after every round.
const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
/// The flush interval of the `Periodic` rounds.
const EVERY_MS: u64 = 100;
/// Under `Periodic`, a write acknowledged more than this many flush intervals before the
/// kill must survive it.
const FLUSHES_OWED: u64 = 2;
/// Under `Periodic`, the child sleeps this long after each write, so that a round spans
/// several flush intervals without writing a large log.
const PERIODIC_PACE_US: u64 = 1000;

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

/// Writes `op` through `c`: the outcome [`apply`] models.
fn execute(c: &Collection, op: Op) {
    match op {
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
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// `durability` as the child's spec and the replay value write it.
fn mode(durability: Durability) -> String {
    match durability {
        Durability::Immediate => "immediate".into(),
        Durability::Periodic { every_ms } => format!("periodic:{every_ms}"),
        other => panic!("no mode for {other:?}"),
    }
}

fn durability_of(mode: &str) -> Durability {
    match mode.split_once(':') {
        None if mode == "immediate" => Durability::Immediate,
        Some(("periodic", every_ms)) => Durability::Periodic {
            every_ms: every_ms.parse().unwrap(),
        },
        _ => panic!("unknown durability {mode:?}"),
    }
}

/// Microseconds since the Unix epoch: the one clock the child and the parent share.
fn unix_micros() -> u64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_micros()).unwrap()
}

/// The child: applies ops from `first` on, logging each acknowledged one with the time,
/// until killed or until it aborts itself after the op its spec names.
fn child(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split('|').collect();
    let dir = Path::new(parts[0]);
    let seed: u64 = parts[1].parse().unwrap();
    let first: u64 = parts[2].parse().unwrap();
    let durability = durability_of(parts[3]);
    let abort_after: Option<u64> = parts[4].parse().ok();
    let pace = Duration::from_micros(parts[5].parse().unwrap());
    let mut acks = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("acks"))
        .unwrap();
    // The parent's handle on the store from the round before may still hold its lock.
    let db = common::when_unlocked(|| Db::open_with(dir, options(durability))).unwrap();
    let c = db.root().schema("s").collection("c");
    let mut i = first;
    loop {
        execute(&c, op(seed, i));
        // The write returned: acknowledged. A kill may cut this line short; the parent
        // ignores a line without its newline.
        acks.write_all(format!("{i} {}\n", unix_micros()).as_bytes())
            .unwrap();
        if abort_after == Some(i) {
            // No destructor runs, no buffer is flushed: as a crash.
            std::process::abort();
        }
        i += 1;
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
    }
}

/// In a process started as a crash child, writes as the child and never returns; in the
/// parent (the test as `cargo test` runs it), returns at once.
fn child_if_started_as_one() {
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

fn data_by_id(docs: &[permdb::Document]) -> BTreeMap<String, Value> {
    docs.iter()
        .map(|d| (d.id().to_owned(), Value::Object(d.data().clone())))
        .collect()
}

/// Follows `c`'s changes feed from `since` to the present in pages of 7, applying each
/// page to `docs`; a resync reads the view with `find`.
fn follow(db: &Db, c: &Collection, since: &mut u64, docs: &mut BTreeMap<String, Value>) {
    loop {
        match c.changes(*since, 7) {
            Ok(page) => {
                let mut entries: Vec<(u64, String, Option<Value>)> = page
                    .documents
                    .iter()
                    .map(|(l, d)| (*l, d.id().to_owned(), Some(Value::Object(d.data().clone()))))
                    .collect();
                entries.extend(page.gone.into_iter().map(|(l, id)| (l, id, None)));
                entries.sort_by_key(|e| e.0);
                for (_, id, data) in entries {
                    match data {
                        Some(v) => docs.insert(id, v),
                        None => docs.remove(&id),
                    };
                }
                let done = page.next == *since || page.next == db.last_lsn();
                *since = page.next;
                if done {
                    return;
                }
            }
            Err(Error::ResyncRequired { .. }) => {
                *since = db.last_lsn();
                *docs = data_by_id(&c.find(&[Query::limit(1000)]).unwrap().documents);
                return;
            }
            Err(e) => panic!("the changes feed: {e}"),
        }
    }
}

/// One line of the child's log: an op and when its write was acknowledged.
#[derive(Debug, Clone, Copy)]
struct Ack {
    op: u64,
    at_us: u64,
}

fn read_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| {
            let (op, at_us) = l.split_once(' ').unwrap();
            Ack {
                op: op.parse().unwrap(),
                at_us: at_us.parse().unwrap(),
            }
        })
        .collect()
}

/// How a round ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The parent sends SIGKILL this long after starting the child.
    Kill(Duration),
    /// The child aborts itself right after acknowledging this op.
    AbortAfter(u64),
}

/// How round `round` of the run from `seed` ends, when it starts at op `first`: half the
/// rounds are killed by the parent at a seeded moment, half abort after a seeded op.
fn end_of_round(seed: u64, round: u64, first: u64, durability: Durability) -> End {
    let r = common::mix(seed ^ common::mix(round));
    let periodic = !matches!(durability, Durability::Immediate);
    match (r.is_multiple_of(2), periodic) {
        // Long enough for writes acknowledged more than two flush intervals before the
        // kill, after the child's start.
        (false, true) => End::Kill(Duration::from_millis(350 + (r >> 8) % 400)),
        (false, false) => End::Kill(Duration::from_millis(30 + (r >> 8) % 170)),
        (true, true) => End::AbortAfter(first + 150 + (r >> 8) % 300),
        (true, false) => End::AbortAfter(first + (r >> 8) % 300),
    }
}

/// What the rounds found.
#[derive(Debug, Default)]
struct Tally {
    rounds: u64,
    /// Rounds the child ended by aborting itself.
    aborted: u64,
    acknowledged: u64,
    in_flight_applied: u64,
    /// Acknowledged writes missing after the kill (`Periodic` only).
    lost_unflushed: u64,
    /// Acknowledged writes that had to survive: under `Periodic`, those acknowledged
    /// more than two flush intervals before the kill.
    owed: u64,
    /// Rounds with at least one such write.
    rounds_owed: u64,
}

/// A store under crash rounds, its model and the op the next round starts at.
struct Crashes {
    /// The test running the rounds: each child is that test, started again.
    test: &'static str,
    seed: u64,
    durability: Durability,
    tmp: tempfile::TempDir,
    dir: PathBuf,
    model: Model,
    next: u64,
    tally: Tally,
    /// Per user, a replica following the changes feed across the rounds: (the number
    /// to resume from, the documents' data by id).
    replicas: BTreeMap<&'static str, (u64, BTreeMap<String, Value>)>,
}

impl Crashes {
    fn new(test: &'static str, seed: u64, durability: Durability) -> Crashes {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        create_store(&dir);
        Crashes {
            test,
            seed,
            durability,
            tmp,
            dir,
            model: Model::new(),
            next: 0,
            tally: Tally::default(),
            replicas: BTreeMap::new(),
        }
    }

    /// Each user's replica resumes the changes feed where it stopped before the crash,
    /// and must then equal the user's `find`; so must a replica read from number 0.
    fn follow_feeds(&mut self, db: &Db, context: &str) {
        for user in USERS {
            let c = db
                .root()
                .impersonate(user)
                .unwrap()
                .schema("s")
                .collection("c");
            let view = data_by_id(&c.find(&[Query::limit(1000)]).unwrap().documents);
            let (since, docs) = self.replicas.entry(user).or_default();
            follow(db, &c, since, docs);
            assert_eq!(
                *docs, view,
                "{context}: {user}'s replica resumed after the crash"
            );
            let (mut from_zero, mut fresh) = (0, BTreeMap::new());
            follow(db, &c, &mut from_zero, &mut fresh);
            assert_eq!(fresh, view, "{context}: {user}'s feed from 0");
        }
    }

    /// Writes ops `next..first` in this process, as rounds that all survived would have.
    fn write_up_to(&mut self, first: u64) {
        let db =
            common::when_unlocked(|| Db::open_with(&self.dir, options(self.durability))).unwrap();
        let c = db.root().schema("s").collection("c");
        for i in self.next..first {
            execute(&c, op(self.seed, i));
            apply(&mut self.model, &op(self.seed, i));
        }
        db.flush().unwrap();
        self.next = first;
    }

    fn spawn_child(&self, end: End) -> Child {
        // Only the parent starts children: a child that ran this would start its own.
        assert!(
            std::env::var_os(CHILD_ENV).is_none(),
            "a crash child does not start children"
        );
        let abort = match end {
            End::AbortAfter(op) => op.to_string(),
            End::Kill(_) => "-".into(),
        };
        let pace_us = match self.durability {
            Durability::Immediate => 0,
            _ => PERIODIC_PACE_US,
        };
        let spec = format!(
            "{}|{}|{}|{}|{abort}|{pace_us}",
            self.dir.display(),
            self.seed,
            self.next,
            mode(self.durability)
        );
        Command::new(std::env::current_exe().unwrap())
            .args([
                self.test,
                "--exact",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spec)
            // Where a core dump of the abort would land, if the system writes one.
            .current_dir(self.tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs round `round`: starts the child at op `next`, ends it as `end` says, reopens
    /// the store and checks it. Panics naming the seed, the round and its replay value.
    fn round(&mut self, round: u64, end: End) {
        let (seed, next) = (self.seed, self.next);
        let mode = mode(self.durability);
        let acks_path = self.dir.with_extension("acks");
        let _ = std::fs::remove_file(&acks_path);
        let named = |abort_after: u64| {
            format!(
                "seed {seed} round {round} ({mode}, ops {next}.., {end:?}); \
                 replay: {REPLAY_ENV}='{seed}|{mode}|{round}|{next}|{abort_after}'"
            )
        };
        let mut child = self.spawn_child(end);
        let started = Instant::now();
        // When the child stopped writing, as its acknowledgements' clock reads it.
        let killed_at_us = match end {
            End::Kill(wait) => {
                while started.elapsed() < wait {
                    if let Some(status) = child.try_wait().unwrap() {
                        let err = stderr_of(&mut child);
                        panic!("{}: child exited by itself ({status}): {err}", named(next));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                let at = unix_micros();
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                Some(at)
            }
            End::AbortAfter(op) => {
                let status = wait_for_exit(&mut child, Duration::from_secs(60));
                let err = stderr_of(&mut child);
                assert!(
                    status.is_some_and(|s| !s.success()) && !err.contains("panicked"),
                    "{}: the child did not abort ({status:?}): {err}",
                    named(op)
                );
                None
            }
        };

        let acked = read_acks(&acks_path);
        let last = acked.last().map(|a| a.op);
        let abort_after = match end {
            End::AbortAfter(op) => op,
            End::Kill(_) => last.unwrap_or(next),
        };
        let context = named(abort_after);
        let ops: Vec<u64> = acked.iter().map(|a| a.op).collect();
        let expected: Vec<u64> = (next..next + acked.len() as u64).collect();
        assert_eq!(ops, expected, "{context}: acks out of order");
        if let End::AbortAfter(op) = end {
            assert_eq!(last, Some(op), "{context}: the child aborted elsewhere");
        }
        let killed_at_us = killed_at_us.unwrap_or_else(|| acked.last().unwrap().at_us);

        // The states the store may be in: after the first j ops of this round.
        let mut states = vec![self.model.clone()];
        let mut s = self.model.clone();
        for i in next..=next + acked.len() as u64 {
            apply(&mut s, &op(seed, i));
            states.push(s.clone());
        }
        // The acknowledged writes that must have survived, and whether the write in
        // flight may have landed (after an abort, none was in flight).
        let (owed, rule) = match self.durability {
            Durability::Periodic { every_ms } => {
                let owed_us = FLUSHES_OWED * every_ms * 1000;
                let owed = acked
                    .iter()
                    .rposition(|a| a.at_us + owed_us < killed_at_us)
                    .map_or(0, |p| p + 1);
                let rule = format!(
                    "those acknowledged over {FLUSHES_OWED} flush intervals of {every_ms} ms \
                     before the kill must survive"
                );
                (owed, rule)
            }
            _ => (
                acked.len(),
                "every acknowledged op must survive".to_string(),
            ),
        };
        let most = match end {
            End::Kill(_) => acked.len() + 1,
            End::AbortAfter(_) => acked.len(),
        };
        let db = common::when_unlocked(|| Db::open_with(&self.dir, options(self.durability)))
            .unwrap_or_else(|e| panic!("{context}: reopening after the kill: {e}"));
        let have = stored(&db);
        let Some(j) = (owed..=most).rev().find(|&j| states[j] == have) else {
            let held = (0..=acked.len() + 1).rev().find(|&j| states[j] == have);
            match held {
                Some(j) if j < owed => {
                    let lost = acked[j];
                    panic!(
                        "{context}: op {} was lost, acknowledged {} ms before the kill: the \
                         store holds the first {j} of {} acknowledged ops, and {rule}",
                        lost.op,
                        (killed_at_us - lost.at_us) / 1000,
                        acked.len()
                    )
                }
                _ => panic!(
                    "{context}: the store matches no allowed state ({:?} of {} acked ops; \
                     it holds the first {held:?})",
                    owed..=most,
                    acked.len()
                ),
            }
        };
        check_views(&db, &states[j], &context);
        self.follow_feeds(&db, &context);
        drop(db);
        let tally = &mut self.tally;
        tally.rounds += 1;
        tally.aborted += u64::from(matches!(end, End::AbortAfter(_)));
        tally.acknowledged += acked.len() as u64;
        tally.in_flight_applied += u64::from(j > acked.len());
        tally.lost_unflushed += acked.len().saturating_sub(j) as u64;
        tally.owed += owed as u64;
        tally.rounds_owed += u64::from(owed > 0);
        self.model = states.swap_remove(j);
        self.next += j as u64;
    }
}

/// The child's exit status once it exits, `None` (and the child killed) after `limit`.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut err).unwrap();
    }
    err
}

/// `rounds` seeded rounds on a new store; `test` is the test calling, which each child
/// runs again.
fn crash_rounds(test: &'static str, seed: u64, rounds: u64, durability: Durability) -> Tally {
    child_if_started_as_one();
    let mut crashes = Crashes::new(test, seed, durability);
    for round in 0..rounds {
        let end = end_of_round(seed, round, crashes.next, durability);
        crashes.round(round, end);
    }
    crashes.tally
}

/// The round a failure printed as `seed|mode|round|first op|abort after op`, alone.
fn replay(test: &'static str, value: &str) -> Tally {
    let parts: Vec<&str> = value.split('|').collect();
    assert_eq!(
        parts.len(),
        5,
        "{REPLAY_ENV}={value:?}: seed|mode|round|first|abort"
    );
    let seed = parts[0].parse().unwrap();
    let round = parts[2].parse().unwrap();
    let first = parts[3].parse().unwrap();
    let abort_after = parts[4].parse().unwrap();
    let mut crashes = Crashes::new(test, seed, durability_of(parts[1]));
    crashes.write_up_to(first);
    crashes.round(round, End::AbortAfter(abort_after));
    crashes.tally
}

/// Kill points were wall-clock sleeps, so a failing round could not be replayed: half the
/// rounds now end with the child aborting after a seeded op, replayable from the failure.
#[test]
fn crash_rounds_immediate_durability_lose_nothing_acknowledged() {
    let tally = crash_rounds(
        "crash_rounds_immediate_durability_lose_nothing_acknowledged",
        0x5EED_0001,
        120,
        Durability::Immediate,
    );
    eprintln!("immediate: {tally:?}");
    assert_eq!(tally.lost_unflushed, 0);
    assert!(tally.acknowledged > 0, "{tally:?}");
    assert!(
        0 < tally.aborted && tally.aborted < tally.rounds,
        "{tally:?}"
    );
}

/// Periodic rounds accepted losing every acknowledged write, so a store that never wrote
/// them passed: writes acknowledged over two flush intervals before the kill must survive.
#[test]
fn crash_rounds_periodic_durability_keep_every_write_two_flushes_old() {
    let tally = crash_rounds(
        "crash_rounds_periodic_durability_keep_every_write_two_flushes_old",
        0x5EED_0002,
        24,
        Durability::Periodic { every_ms: EVERY_MS },
    );
    eprintln!("periodic: {tally:?}");
    assert!(
        0 < tally.aborted && tally.aborted < tally.rounds,
        "{tally:?}"
    );
    // The rule held the store to something in most rounds, not only in a lucky one.
    assert!(tally.rounds_owed * 4 >= tally.rounds * 3, "{tally:?}");
}

/// `PERMDB_CRASH_ROUNDS` rounds of each durability from `PERMDB_CRASH_SEED`; with
/// `PERMDB_CRASH_REPLAY` set, only the round it names (as a failure prints it).
#[test]
#[ignore = "long: PERMDB_CRASH_ROUNDS rounds of each durability (default 500), or the round PERMDB_CRASH_REPLAY names"]
fn crash_rounds_long() {
    const TEST: &str = "crash_rounds_long";
    child_if_started_as_one();
    if let Ok(value) = std::env::var(REPLAY_ENV) {
        eprintln!("replayed: {:?}", replay(TEST, &value));
        return;
    }
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
        crash_rounds(TEST, seed, rounds, Durability::Immediate)
    );
    eprintln!(
        "periodic: {:?}",
        crash_rounds(
            TEST,
            seed + 1,
            rounds,
            Durability::Periodic { every_ms: EVERY_MS }
        )
    );
}
