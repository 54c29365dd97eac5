//! The systems compared on the same data: permdb (as a user, with an API key, and the
//! fetch floor), Appwrite's design on SQLite, and what one writes by hand on sled.

use std::path::Path;

use permdb::{
    Client, Collection, CollectionSpec, Db, Durability, IndexSpec, Options, PasswordHashing,
    Permission, Query, Role, Scope,
};
use rusqlite::{Connection, params_from_iter};
use serde_json::{Value, json};

use crate::data::{Profile, TEAMS, doc, sample_users, teams_of};

/// What a query asks as one user.
pub struct Ask {
    /// The user's role strings (from permdb, so every system checks the same roles).
    pub roles: Vec<String>,
    /// P3's filter: `category = value`.
    pub category: Option<String>,
}

fn data_of(d: &crate::data::Doc, i: u32) -> Value {
    json!({"name": format!("name {i}"), "category": format!("c{}", d.category), "n": i})
}

// ---- permdb ----------------------------------------------------------------

pub struct Permdb {
    pub db: Db,
    pub key: Client,
}

/// What a cached store's `complete` marker holds once it was compacted after its load.
const COMPACTED: &[u8] = b"compacted";

pub fn permdb_options() -> Options {
    Options::new()
        .durability(Durability::Periodic { every_ms: 500 })
        .password_hashing(PasswordHashing {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        })
}

/// Reports a build's progress on stderr, a line per 5% (with the rate so far): a 1M
/// store takes minutes, which must not look like a hang.
pub struct Progress {
    what: String,
    total: u32,
    start: std::time::Instant,
    next: u32,
}

impl Progress {
    pub fn new(what: String, total: u32) -> Progress {
        Progress {
            what,
            total,
            start: std::time::Instant::now(),
            next: 1,
        }
    }

    /// `done` documents are in.
    pub fn at(&mut self, done: u32) {
        let percent = u64::from(done) * 100 / u64::from(self.total.max(1));
        if percent < u64::from(self.next) * 5 {
            return;
        }
        self.next = u32::try_from(percent / 5 + 1).unwrap_or(u32::MAX);
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "  {}: {done} of {} ({percent}%), {:.0} docs/s",
            self.what,
            self.total,
            f64::from(done) / secs
        );
    }
}

/// Builds (or, when `dir` holds a complete store, reopens) the permdb store of a data set.
/// Returns the store, the seconds spent inserting (batched) when it was built, and the
/// engine file's bytes before and after the compaction that follows a build (redb).
pub fn permdb_build(
    dir: &Path,
    profile: Profile,
    n: u32,
    users: u32,
    engine: permdb::StorageEngine,
) -> (Permdb, Option<f64>, Option<(u64, u64)>) {
    let done = dir.join("complete");
    // A cached store of an older format does not open: it is rebuilt.
    let cached = done
        .exists()
        .then(|| Db::open_with(dir, permdb_options()).ok())
        .flatten();
    let fresh = cached.is_none();
    if fresh {
        let _ = std::fs::remove_dir_all(dir);
    }
    let db = match cached {
        Some(db) => db,
        None => Db::open_with(dir, permdb_options().backend(engine)).expect("open permdb"),
    };
    let root = db.root();
    let mut insert_secs = None;
    if fresh {
        root.schemas().create("db", "Database").unwrap();
        let collections = root.schema("db").collections();
        collections
            .create(CollectionSpec::new("docs", "Docs").document_security(true))
            .unwrap();
        collections
            .create_attribute("docs", permdb::AttributeSpec::string("name", 32))
            .unwrap();
        collections
            .create_attribute("docs", permdb::AttributeSpec::string("category", 8))
            .unwrap();
        collections
            .create_attribute("docs", permdb::AttributeSpec::integer("n"))
            .unwrap();
        collections
            .create_index("docs", IndexSpec::key("by_category", ["category"]))
            .unwrap();
        for t in 0..TEAMS {
            root.teams().create(&format!("t{t}"), "team").unwrap();
        }
        for u in sample_users(users) {
            let id = format!("u{u}");
            if root.users().get(&id).is_ok() {
                continue;
            }
            root.users()
                .create(&id, &format!("{id}@example.com"), "password-x", None)
                .unwrap();
            for t in teams_of(profile, u) {
                root.teams()
                    .create_membership(&format!("t{t}"), &id, &["member"])
                    .unwrap();
            }
        }
        let coll = root.schema("db").collection("docs");
        let start = std::time::Instant::now();
        let ids: Vec<u32> = (0..n).collect();
        let mut progress = Progress::new(format!("building permdb on {engine:?}"), n);
        for chunk in ids.chunks(10_000) {
            coll.create_many(chunk.iter().map(|&i| {
                let d = doc(profile, i);
                let perms: Vec<Permission> = d
                    .readers()
                    .iter()
                    .map(|r| Permission::read(r.parse::<Role>().unwrap()))
                    .collect();
                (d.id.clone(), data_of(&d, i), Some(perms))
            }))
            .unwrap();
            progress.at(chunk.last().map_or(0, |i| i + 1));
        }
        db.flush().unwrap();
        insert_secs = Some(start.elapsed().as_secs_f64());
    }
    // As an owner would after a bulk load: `permdb compact` (redb gives back the pages
    // its many commits left free; sled compacts as it goes). A store cached by a runner
    // that did not compact (its marker empty) is compacted now, so disk figures compare.
    let (db, compacted) = if std::fs::read(&done).ok().as_deref() != Some(COMPACTED) {
        drop(root);
        drop(db);
        let report = Db::compact(dir).expect("compact");
        std::fs::write(&done, COMPACTED).unwrap();
        let db = Db::open_with(dir, permdb_options()).expect("reopen permdb");
        (db, report.bytes)
    } else {
        (db, None)
    };
    let root = db.root();
    let key = root
        .keys()
        .create("bench", &[Scope::DocumentsRead])
        .unwrap();
    let key = db.client().set_key(&key.secret).unwrap();
    (Permdb { db, key }, insert_secs, compacted)
}

pub fn permdb_docs(client: &Client) -> Collection {
    client.schema("db").collection("docs")
}

/// The filter of an ask (P3's category), for `count`.
pub fn permdb_filter(ask: &Ask) -> Vec<Query> {
    ask.category
        .iter()
        .map(|c| Query::equal("category", [c.as_str()]))
        .collect()
}

pub fn permdb_queries(ask: &Ask, after: Option<&str>) -> Vec<Query> {
    let mut q = vec![Query::limit(25)];
    q.extend(permdb_filter(ask));
    if let Some(a) = after {
        q.push(Query::cursor_after(a));
    }
    q
}

/// Single inserts, each its own write, under `durability`. Seconds per insert.
pub fn permdb_single_inserts(
    dir: &Path,
    durability: Durability,
    count: u32,
    engine: permdb::StorageEngine,
) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    let db = Db::open_with(dir, permdb_options().durability(durability).backend(engine)).unwrap();
    let root = db.root();
    root.schemas().create("db", "Database").unwrap();
    root.schema("db")
        .collections()
        .create(CollectionSpec::new("docs", "Docs").document_security(true))
        .unwrap();
    let coll = root.schema("db").collection("docs");
    let start = std::time::Instant::now();
    for i in 0..count {
        let d = doc(Profile::P2, i);
        let perms: Vec<Permission> = d
            .readers()
            .iter()
            .map(|r| Permission::read(r.parse::<Role>().unwrap()))
            .collect();
        coll.create(&d.id, data_of(&d, i), Some(perms)).unwrap();
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(count);
    drop((coll, root, db));
    let _ = std::fs::remove_dir_all(dir);
    secs
}

// ---- SQLite, Appwrite's design ---------------------------------------------

/// Appwrite's layout: documents, and `perms` with the two indexes its SQL adapters create.
const SCHEMA: &str = "CREATE TABLE docs (_id INTEGER PRIMARY KEY, _uid TEXT NOT NULL UNIQUE, name TEXT, category TEXT, n INTEGER, data TEXT);
     CREATE INDEX docs_category ON docs (category);
     CREATE TABLE perms (_id INTEGER PRIMARY KEY, _type TEXT NOT NULL, _permission TEXT NOT NULL, _document TEXT NOT NULL);
     CREATE UNIQUE INDEX perms_doc ON perms (_document, _type, _permission);
     CREATE INDEX perms_perm ON perms (_permission, _type);";

pub fn sqlite_open(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    c
}

/// Builds (or reuses) the SQLite peer: a documents table and Appwrite's permissions table
/// with its two indexes. Returns the seconds spent inserting (batched, 10,000 a transaction).
pub fn sqlite_build(path: &Path, profile: Profile, n: u32) -> (Connection, Option<f64>) {
    let done = path.with_extension("complete");
    if done.exists() {
        return (sqlite_open(path), None);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut c = sqlite_open(path);
    c.execute_batch(SCHEMA).unwrap();
    let start = std::time::Instant::now();
    let ids: Vec<u32> = (0..n).collect();
    let mut progress = Progress::new("building sqlite".into(), n);
    for chunk in ids.chunks(10_000) {
        let tx = c.transaction().unwrap();
        {
            let mut ins_doc = tx.prepare_cached("INSERT INTO docs (_id, _uid, name, category, n, data) VALUES (?, ?, ?, ?, ?, ?)").unwrap();
            let mut ins_perm = tx
                .prepare_cached(
                    "INSERT INTO perms (_type, _permission, _document) VALUES ('read', ?, ?)",
                )
                .unwrap();
            for &i in chunk {
                let d = doc(profile, i);
                let data = data_of(&d, i);
                ins_doc
                    .execute(rusqlite::params![
                        i64::from(i) + 1,
                        d.id,
                        data["name"].as_str(),
                        data["category"].as_str(),
                        i,
                        data.to_string()
                    ])
                    .unwrap();
                for r in d.readers() {
                    ins_perm.execute(rusqlite::params![r, d.id]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
        progress.at(chunk.last().map_or(0, |i| i + 1));
    }
    let secs = start.elapsed().as_secs_f64();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .unwrap();
    std::fs::write(&done, b"").unwrap();
    (c, Some(secs))
}

fn sqlite_perm_clause(ask: &Ask) -> String {
    let marks = vec!["?"; ask.roles.len()].join(", ");
    format!(
        "_uid IN (SELECT _document FROM perms WHERE _permission IN ({marks}) AND _type = 'read')"
    )
}

/// `select ... WHERE <permission clause> [AND category = ?]` and its arguments.
fn sqlite_filtered(select: &str, ask: &Ask) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = format!("{select} FROM docs WHERE {}", sqlite_perm_clause(ask));
    let mut args: Vec<rusqlite::types::Value> =
        ask.roles.iter().map(|r| r.clone().into()).collect();
    if let Some(cat) = &ask.category {
        sql += " AND category = ?";
        args.push(cat.clone().into());
    }
    (sql, args)
}

/// The first page (or the page after `after`, an `_id`): ids and the last `_id`.
pub fn sqlite_page(c: &Connection, ask: &Ask, after: Option<i64>) -> (usize, Option<i64>) {
    let (mut sql, mut args) = sqlite_filtered("SELECT _id, _uid, data", ask);
    if let Some(a) = after {
        sql += " AND _id > ?";
        args.push(a.into());
    }
    sql += " ORDER BY _id LIMIT 25";
    let mut stmt = c.prepare_cached(&sql).unwrap();
    let mut rows = stmt.query(params_from_iter(args)).unwrap();
    let (mut n, mut last) = (0, None);
    while let Some(row) = rows.next().unwrap() {
        let id: i64 = row.get(0).unwrap();
        let data: String = row.get(2).unwrap();
        std::hint::black_box(serde_json::from_str::<Value>(&data).unwrap());
        n += 1;
        last = Some(id);
    }
    (n, last)
}

pub fn sqlite_count(c: &Connection, ask: &Ask) -> u64 {
    let (sql, args) = sqlite_filtered("SELECT COUNT(*)", ask);
    let mut stmt = c.prepare_cached(&sql).unwrap();
    stmt.query_row(params_from_iter(args), |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

pub fn sqlite_get(c: &Connection, ask: &Ask, id: &str) -> bool {
    let sql = format!(
        "SELECT data FROM docs WHERE _uid = ? AND {}",
        sqlite_perm_clause(ask)
    );
    let mut args: Vec<rusqlite::types::Value> = vec![id.to_owned().into()];
    args.extend(ask.roles.iter().map(|r| r.clone().into()));
    let mut stmt = c.prepare_cached(&sql).unwrap();
    let mut rows = stmt.query(params_from_iter(args)).unwrap();
    match rows.next().unwrap() {
        Some(row) => {
            let data: String = row.get(0).unwrap();
            std::hint::black_box(serde_json::from_str::<Value>(&data).unwrap());
            true
        }
        None => false,
    }
}

/// Single inserts (each its own transaction, WAL with synchronous=NORMAL). Seconds per insert.
pub fn sqlite_single_inserts(path: &Path, count: u32) -> f64 {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut c = sqlite_open(path);
    c.execute_batch(SCHEMA).unwrap();
    let start = std::time::Instant::now();
    for i in 0..count {
        let d = doc(Profile::P2, i);
        let data = data_of(&d, i);
        let tx = c.transaction().unwrap();
        tx.execute(
            "INSERT INTO docs (_uid, name, category, n, data) VALUES (?, ?, ?, ?, ?)",
            rusqlite::params![
                d.id,
                data["name"].as_str(),
                data["category"].as_str(),
                i,
                data.to_string()
            ],
        )
        .unwrap();
        for r in d.readers() {
            tx.execute(
                "INSERT INTO perms (_type, _permission, _document) VALUES ('read', ?, ?)",
                rusqlite::params![r, d.id],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let secs = start.elapsed().as_secs_f64() / f64::from(count);
    drop(c);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    secs
}

// ---- sled by hand: documents with their permissions inside, scan and filter --

pub fn sled_build(dir: &Path, profile: Profile, n: u32) -> (sled::Db, Option<f64>) {
    let done = dir.join("complete");
    if done.exists() {
        return (sled::open(dir).unwrap(), None);
    }
    let _ = std::fs::remove_dir_all(dir);
    let db = sled::open(dir).unwrap();
    let start = std::time::Instant::now();
    let ids: Vec<u32> = (0..n).collect();
    let mut progress = Progress::new("building the sled scan".into(), n);
    for chunk in ids.chunks(10_000) {
        let mut batch = sled::Batch::default();
        for &i in chunk {
            let d = doc(profile, i);
            let value = json!({"readers": d.readers(), "data": data_of(&d, i)});
            batch.insert(d.id.as_bytes(), serde_json::to_vec(&value).unwrap());
        }
        db.apply_batch(batch).unwrap();
        progress.at(chunk.last().map_or(0, |i| i + 1));
    }
    db.flush().unwrap();
    let secs = start.elapsed().as_secs_f64();
    std::fs::write(&done, b"").unwrap();
    (db, Some(secs))
}

fn sled_visible(v: &[u8], ask: &Ask) -> bool {
    let value: Value = serde_json::from_slice(v).unwrap();
    let readers = value["readers"].as_array().unwrap();
    let allowed = readers.iter().any(|r| {
        ask.roles
            .iter()
            .any(|role| Some(role.as_str()) == r.as_str())
    });
    allowed
        && ask
            .category
            .as_ref()
            .is_none_or(|c| value["data"]["category"].as_str() == Some(c))
}

pub fn sled_page(db: &sled::Db, ask: &Ask, after: Option<&str>) -> (usize, Option<String>) {
    let iter = match after {
        Some(a) => db.range::<&[u8], _>((
            std::ops::Bound::Excluded(a.as_bytes()),
            std::ops::Bound::Unbounded,
        )),
        None => db.iter(),
    };
    let mut out = Vec::new();
    for kv in iter {
        let (k, v) = kv.unwrap();
        if sled_visible(&v, ask) {
            out.push(String::from_utf8(k.to_vec()).unwrap());
            if out.len() == 25 {
                break;
            }
        }
    }
    (out.len(), out.pop())
}

pub fn sled_count(db: &sled::Db, ask: &Ask) -> u64 {
    db.iter()
        .filter(|kv| sled_visible(&kv.as_ref().unwrap().1, ask))
        .count() as u64
}

pub fn sled_get(db: &sled::Db, ask: &Ask, id: &str) -> bool {
    db.get(id).unwrap().is_some_and(|v| sled_visible(&v, ask))
}
