//! Export and import: a store as a stream of JSON lines (docs/DUMP.md, version 1), read
//! back into a new store of either engine. Every line of a dump is checked as a write is.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::attribute::{self, AttributeSpec};
use crate::auth::keys::ApiKeyRecord;
use crate::auth::prefs::{self, Owner};
use crate::auth::teams::{MembershipRecord, TeamRecord};
use crate::auth::users::{self, UserRecord};
use crate::catalog::{self, CollectionRecord, Counters, SchemaRecord};
use crate::document::{check_object, make_record, put_record};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::attr::{IndexSpec, MAX_INDEXES};
use crate::index::{Contribution, IndexEdits};
use crate::options::{Durability, Options};
use crate::perm::{Permission, Scope, Target, normalize};
use crate::store::keys::{self, AuthTag};
use crate::store::{Direction, Tree, WriteBatch, codec};
use crate::token::keyring::SigningKeyRecord;

/// What every dump's first line says it is.
const FORMAT: &str = "permdb-dump";
/// The version of the dump format this build writes and reads.
pub const DUMP_VERSION: u32 = 1;
/// The longest line an import reads (a document's JSON is far shorter).
const MAX_LINE: usize = 64 << 20;
/// How many writes one commit of an import holds.
const CHUNK: usize = 4096;
/// How many bytes of dump lines one commit of an import holds, at most (about).
const CHUNK_BYTES: usize = 32 << 20;
/// How often (lines) progress is told.
const PROGRESS_EVERY: u64 = 10_000;

/// One line of a dump. Field names and meanings: docs/DUMP.md.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header {
        format: String,
        version: u32,
    },
    SigningKey {
        key_id: u64,
        secret: String,
        created_ms: i64,
    },
    User {
        id: String,
        email: String,
        name: String,
        password_hash: String,
        blocked: bool,
        email_verified: bool,
        labels: Vec<String>,
        created_ms: i64,
        updated_ms: i64,
        prefs: Map<String, Value>,
    },
    Team {
        id: String,
        name: String,
        created_ms: i64,
        prefs: Map<String, Value>,
    },
    Membership {
        id: String,
        team_id: String,
        user_id: String,
        roles: Vec<String>,
        confirmed: bool,
        created_ms: i64,
    },
    ApiKey {
        id: String,
        name: String,
        scopes: Vec<Scope>,
        secret_sha256: String,
        expires_ms: Option<i64>,
        created_ms: i64,
    },
    Schema {
        id: String,
        name: String,
        enabled: bool,
        created_ms: i64,
        updated_ms: i64,
    },
    Collection {
        schema_id: String,
        id: String,
        name: String,
        permissions: Vec<String>,
        document_security: bool,
        enabled: bool,
        created_ms: i64,
        updated_ms: i64,
        attributes: Vec<AttributeSpec>,
        indexes: Vec<IndexSpec>,
        next_sequence: u32,
    },
    Document {
        schema_id: String,
        collection_id: String,
        id: String,
        sequence: u32,
        created_ms: i64,
        updated_ms: i64,
        permissions: Vec<String>,
        data: Map<String, Value>,
    },
    End {
        lines: u64,
    },
}

impl Line {
    /// Where the line's kind comes in a dump: kinds come in this order, and documents
    /// right after their collection.
    fn rank(&self) -> u8 {
        match self {
            Line::Header { .. } => 0,
            Line::SigningKey { .. } => 1,
            Line::User { .. } => 2,
            Line::Team { .. } => 3,
            Line::Membership { .. } => 4,
            Line::ApiKey { .. } => 5,
            Line::Schema { .. } => 6,
            Line::Collection { .. } | Line::Document { .. } => 7,
            Line::End { .. } => 8,
        }
    }
}

/// What an export wrote or an import read, by kind of line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DumpReport {
    /// Lines, the header and the end included.
    pub lines: u64,
    /// Token signing keys.
    pub signing_keys: u64,
    /// Users.
    pub users: u64,
    /// Teams.
    pub teams: u64,
    /// Memberships.
    pub memberships: u64,
    /// API keys.
    pub api_keys: u64,
    /// Schemas.
    pub schemas: u64,
    /// Collections.
    pub collections: u64,
    /// Documents.
    pub documents: u64,
}

impl DumpReport {
    fn count(&mut self, line: &Line) {
        self.lines += 1;
        match line {
            Line::SigningKey { .. } => self.signing_keys += 1,
            Line::User { .. } => self.users += 1,
            Line::Team { .. } => self.teams += 1,
            Line::Membership { .. } => self.memberships += 1,
            Line::ApiKey { .. } => self.api_keys += 1,
            Line::Schema { .. } => self.schemas += 1,
            Line::Collection { .. } => self.collections += 1,
            Line::Document { .. } => self.documents += 1,
            Line::Header { .. } | Line::End { .. } => {}
        }
    }
}

/// How far an export or import is: told every 10,000 lines and at each collection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpProgress {
    /// Lines written or read so far.
    pub lines: u64,
    /// What is being written or read: `auth`, `schemas`, or `collection S/C`.
    pub step: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Refuses a time (Unix ms) no stored record can hold: reading it back would fail.
fn check_times(times: &[(&str, i64)]) -> Result<()> {
    for (field, ms) in times {
        crate::timefmt::from_millis(*ms)
            .map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))?;
    }
    Ok(())
}

/// How far ahead of the clock a signing key's creation may be: the newest key signs, so
/// one made "in the future" would go on signing after every rotation.
const SIGNING_KEY_SKEW_MS: i64 = 24 * 3600 * 1000;

fn base64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Writes lines, counting them.
struct Writer<'w> {
    out: std::io::BufWriter<&'w mut dyn Write>,
    report: DumpReport,
    progress: &'w mut dyn FnMut(DumpProgress),
    step: String,
}

impl Writer<'_> {
    fn line(&mut self, line: &Line) -> Result<()> {
        let io = |e: std::io::Error| Error::storage("cannot write the dump", e);
        serde_json::to_writer(&mut self.out, line)
            .map_err(|e| Error::storage("cannot write the dump", e))?;
        self.out.write_all(b"\n").map_err(io)?;
        self.report.count(line);
        if self.report.lines.is_multiple_of(PROGRESS_EVERY) {
            self.tell();
        }
        Ok(())
    }

    fn step(&mut self, step: String) {
        self.step = step;
        self.tell();
    }

    fn tell(&mut self) {
        (self.progress)(DumpProgress {
            lines: self.report.lines,
            step: self.step.clone(),
        });
    }
}

/// Writes the whole store to `out` (docs/DUMP.md), under the writer lock, so that the
/// dump is one moment of the store: writes wait until it is done.
pub(crate) fn export(
    engine: &Engine,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(DumpProgress),
) -> Result<DumpReport> {
    engine.exclusive(|| {
        exportable(engine)?;
        let mut w = Writer {
            out: std::io::BufWriter::new(out),
            report: DumpReport::default(),
            progress,
            step: "auth".into(),
        };
        w.line(&Line::Header {
            format: FORMAT.into(),
            version: DUMP_VERSION,
        })?;
        export_auth(engine, &mut w)?;
        w.step("schemas".into());
        export_catalog(engine, &mut w)?;
        let lines = w.report.lines;
        w.line(&Line::End { lines })?;
        w.out
            .flush()
            .map_err(|e| Error::storage("cannot write the dump", e))?;
        let report = w.report.clone();
        Ok(report)
    })
}

/// Refuses, before a line is written, a store whose dump an import would refuse: a
/// collection whose permissions do not parse (a store written by looser rules), or with
/// more indexes than [`MAX_INDEXES`] (made before the limit). Each is named, to be mended.
fn exportable(engine: &Engine) -> Result<()> {
    let store = &engine.store;
    for entry in store.scan_prefix(Tree::Meta, keys::COLLECTIONS_PREFIX, Direction::Forward) {
        let (k, v) = entry?;
        let coll: CollectionRecord =
            codec::decode(&v, || format!("collection record at {:02x?}", &*k))?;
        coll.permissions.parsed(&coll.id)?;
        if coll.indexes.len() > MAX_INDEXES {
            return Err(Error::LimitExceeded(format!(
                "collection {}/{} has {} indexes, more than an import takes ({MAX_INDEXES}): \
                 delete some first",
                coll.schema_id,
                coll.id,
                coll.indexes.len()
            )));
        }
    }
    Ok(())
}

fn export_auth(engine: &Engine, w: &mut Writer<'_>) -> Result<()> {
    let store = &engine.store;
    for r in crate::auth::scan::<SigningKeyRecord>(store, &AuthTag::SigningKey.prefix())? {
        w.line(&Line::SigningKey {
            key_id: r.key_id,
            secret: base64url().encode(r.secret),
            created_ms: r.created_ms,
        })?;
    }
    for r in crate::auth::scan::<UserRecord>(store, &AuthTag::User.prefix())? {
        let prefs = prefs::load(store, Owner::User(&r.id))?;
        w.line(&Line::User {
            id: r.id,
            email: r.email,
            name: r.name,
            password_hash: r.password_hash,
            blocked: r.blocked,
            email_verified: r.email_verified,
            labels: r.labels,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            prefs,
        })?;
    }
    for r in crate::auth::scan::<TeamRecord>(store, &AuthTag::Team.prefix())? {
        let prefs = prefs::load(store, Owner::Team(&r.id))?;
        w.line(&Line::Team {
            id: r.id,
            name: r.name,
            created_ms: r.created_ms,
            prefs,
        })?;
    }
    for r in crate::auth::scan::<MembershipRecord>(store, &AuthTag::Membership.prefix())? {
        w.line(&Line::Membership {
            id: r.id,
            team_id: r.team_id,
            user_id: r.user_id,
            roles: r.roles,
            confirmed: r.confirmed,
            created_ms: r.created_ms,
        })?;
    }
    for r in crate::auth::scan::<ApiKeyRecord>(store, &AuthTag::ApiKey.prefix())? {
        w.line(&Line::ApiKey {
            id: r.id,
            name: r.name,
            scopes: r.scopes.into_iter().collect(),
            secret_sha256: hex(&r.secret_digest),
            expires_ms: r.expires_ms,
            created_ms: r.created_ms,
        })?;
    }
    Ok(())
}

fn export_catalog(engine: &Engine, w: &mut Writer<'_>) -> Result<()> {
    let store = &engine.store;
    let max_depth = engine.options.limits.max_depth;
    for entry in store.scan_prefix(Tree::Meta, keys::SCHEMA_PREFIX, Direction::Forward) {
        let (k, v) = entry?;
        let r: SchemaRecord = codec::decode(&v, || format!("schema record at {:02x?}", &*k))?;
        w.line(&Line::Schema {
            id: r.id,
            name: r.name,
            enabled: r.enabled,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })?;
    }
    for entry in store.scan_prefix(Tree::Meta, keys::COLLECTIONS_PREFIX, Direction::Forward) {
        let (k, v) = entry?;
        let coll: CollectionRecord =
            codec::decode(&v, || format!("collection record at {:02x?}", &*k))?;
        w.step(format!("collection {}/{}", coll.schema_id, coll.id));
        let counters = Counters::load(store, coll.cid)?;
        w.line(&Line::Collection {
            schema_id: coll.schema_id.clone(),
            id: coll.id.clone(),
            name: coll.name.clone(),
            permissions: coll.permissions.strings(),
            document_security: coll.document_security,
            enabled: coll.enabled,
            created_ms: coll.created_ms,
            updated_ms: coll.updated_ms,
            attributes: coll.attribute_specs(max_depth)?,
            indexes: coll.indexes.iter().map(|i| i.public()).collect(),
            next_sequence: counters.next_seq,
        })?;
        for entry in crate::document::scan_collection(store, coll.cid, &coll.id) {
            let (seq, doc) = entry?;
            let permissions = doc
                .grants()
                .iter()
                .map(|g| g.to_permission().map(|p| p.to_string()))
                .collect::<Result<Vec<String>>>()?;
            let data = doc.data(max_depth)?;
            w.line(&Line::Document {
                schema_id: coll.schema_id.clone(),
                collection_id: coll.id.clone(),
                id: doc.id,
                sequence: seq,
                created_ms: doc.created_ms,
                updated_ms: doc.updated_ms,
                permissions,
                data,
            })?;
        }
    }
    Ok(())
}

/// Reads a dump into a new store at `dir` (which must not hold one), made with
/// `options`' engine. The store is built at `DIR.importing` and renamed into place once
/// complete, so a failed import leaves nothing that looks like a store.
pub(crate) fn import(
    dir: &Path,
    options: &Options,
    input: &mut dyn BufRead,
    progress: &mut dyn FnMut(DumpProgress),
) -> Result<DumpReport> {
    let io = |what: String| move |e: std::io::Error| Error::storage(what, e);
    crate::upgrade::check_named(dir)?;
    if crate::store::engine_of(dir)?.is_some()
        || std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    {
        return Err(Error::InvalidArgument(format!(
            "{} is not empty: an import makes a new store",
            dir.display()
        )));
    }
    let building = crate::upgrade::beside(dir, ".importing");
    if building
        .try_exists()
        .map_err(io(format!("cannot look at {}", building.display())))?
    {
        std::fs::remove_dir_all(&building)
            .map_err(io(format!("cannot remove {}", building.display())))?;
    }
    let loaded = (|| {
        // Durable once, at the end: the store is not in place before then anyway.
        let engine = Engine::open(
            Some(&building),
            options
                .clone()
                .durability(Durability::Periodic { every_ms: 60_000 }),
            crate::auth::changes_principals,
        )?;
        let report = Loader::new(&engine).run(input, progress)?;
        engine.store.flush()?;
        drop(engine);
        // Many commits leave redb's file with free pages: given back before it is in place.
        crate::store::compact(&building)?;
        Ok(report)
    })();
    match loaded {
        Ok(report) => {
            let placed = (|| {
                if dir.exists() {
                    std::fs::remove_dir(dir)
                        .map_err(io(format!("cannot replace {}", dir.display())))?;
                }
                std::fs::rename(&building, dir).map_err(io(format!(
                    "cannot rename {} to {}",
                    building.display(),
                    dir.display()
                )))?;
                crate::upgrade::sync_parent(dir)
            })();
            if placed.is_err() && building.exists() {
                let _ = std::fs::remove_dir_all(&building);
            }
            placed.map(|()| report)
        }
        Err(e) => {
            // Best effort: a leftover is removed by the next import anyway.
            let _ = std::fs::remove_dir_all(&building);
            Err(e)
        }
    }
}

/// Reads a dump into a temporary store: for the fuzz target. Whether it was accepted.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn import_temporary(bytes: &[u8]) -> bool {
    let options = Options::new()
        .backend(crate::options::StorageEngine::Redb)
        .durability(Durability::Periodic { every_ms: 60_000 });
    let Ok(engine) = Engine::open(None, options, crate::auth::changes_principals) else {
        return false;
    };
    let mut input = bytes;
    Loader::new(&engine).run(&mut input, &mut |_| {}).is_ok()
}

/// The collection whose documents are being read.
struct Current {
    record: CollectionRecord,
    specs: Vec<AttributeSpec>,
    next_sequence: u32,
    last_sequence: u32,
    live: u64,
    ids: HashSet<String>,
}

/// An import in progress: what was read so far, and the writes not yet committed.
struct Loader<'e> {
    engine: &'e Engine,
    report: DumpReport,
    rank: u8,
    pending: WriteBatch,
    edits: IndexEdits,
    writes: usize,
    /// Bytes of the lines whose writes are pending.
    pending_bytes: usize,
    signing_keys: HashSet<u64>,
    users: HashSet<String>,
    emails: HashSet<Vec<u8>>,
    teams: HashSet<String>,
    memberships: HashSet<String>,
    member_of: HashSet<(String, String)>,
    api_keys: HashSet<String>,
    schemas: HashMap<String, SchemaRecord>,
    collections: HashSet<(String, String)>,
    next_cid: u32,
    current: Option<Current>,
}

impl<'e> Loader<'e> {
    fn new(engine: &'e Engine) -> Loader<'e> {
        Loader {
            engine,
            report: DumpReport::default(),
            rank: 0,
            pending: WriteBatch::default(),
            edits: IndexEdits::default(),
            writes: 0,
            pending_bytes: 0,
            signing_keys: HashSet::new(),
            users: HashSet::new(),
            emails: HashSet::new(),
            teams: HashSet::new(),
            memberships: HashSet::new(),
            member_of: HashSet::new(),
            api_keys: HashSet::new(),
            schemas: HashMap::new(),
            collections: HashSet::new(),
            next_cid: 0,
            current: None,
        }
    }

    fn run(
        mut self,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(DumpProgress),
    ) -> Result<DumpReport> {
        self.next_cid = catalog::next_cid(&self.engine.store)?;
        let mut buf = Vec::new();
        let mut ended = false;
        loop {
            buf.clear();
            let number = self.report.lines + 1;
            let read = (&mut *input)
                .take(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::storage("cannot read the dump", e))?;
            if read == 0 {
                break;
            }
            let bad = |message: String| Error::InvalidDump {
                line: number,
                message,
            };
            if ended {
                return Err(bad("a line after the end line".into()));
            }
            if buf.len() > MAX_LINE {
                return Err(bad(format!("longer than {MAX_LINE} bytes")));
            }
            let text = std::str::from_utf8(&buf).map_err(|_| bad("not UTF-8".into()))?;
            let line: Line = serde_json::from_str(text.trim_end_matches(['\n', '\r']))
                .map_err(|e| bad(e.to_string()))?;
            if number == 1 && !matches!(line, Line::Header { .. }) {
                return Err(bad("a dump starts with its header line".into()));
            }
            if line.rank() < self.rank || (number > 1 && line.rank() == 0) {
                return Err(bad(
                    "out of order: docs/DUMP.md gives the order of a dump's lines".into(),
                ));
            }
            self.rank = line.rank();
            ended = matches!(line, Line::End { .. });
            let step_before = self.current.as_ref().map(|c| c.record.cid);
            self.report.count(&line);
            self.pending_bytes += buf.len();
            self.take(line).map_err(|e| match e {
                Error::Storage { .. } | Error::Corrupt { .. } | Error::Internal(_) => e,
                other => bad(other.to_string()),
            })?;
            let moved = self.current.as_ref().map(|c| c.record.cid) != step_before;
            if moved || self.report.lines.is_multiple_of(PROGRESS_EVERY) {
                progress(DumpProgress {
                    lines: self.report.lines,
                    step: match &self.current {
                        Some(c) => format!("collection {}/{}", c.record.schema_id, c.record.id),
                        None => "auth".into(),
                    },
                });
            }
        }
        if !ended {
            return Err(Error::InvalidDump {
                line: self.report.lines + 1,
                message: "the dump ends without its end line: cut short?".into(),
            });
        }
        Ok(self.report)
    }

    /// Commits the writes gathered so far (index edits merged with the stored containers).
    fn commit(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        let edits = std::mem::take(&mut self.edits);
        self.engine.write(|store, batch| {
            edits.write(store, &mut pending)?;
            batch.extend(pending);
            Ok(())
        })?;
        self.writes = 0;
        self.pending_bytes = 0;
        Ok(())
    }

    fn wrote(&mut self) -> Result<()> {
        self.writes += 1;
        if self.writes >= CHUNK || self.pending_bytes >= CHUNK_BYTES {
            self.commit()?;
        }
        Ok(())
    }

    /// Writes the counters of the collection whose documents were being read.
    fn finish_collection(&mut self) -> Result<()> {
        if let Some(c) = self.current.take() {
            Counters {
                next_seq: c.next_sequence,
                live: c.live,
            }
            .put(&mut self.pending, c.record.cid);
            self.commit()?;
        }
        Ok(())
    }

    fn take(&mut self, line: Line) -> Result<()> {
        let invalid = |m: String| Err(Error::InvalidArgument(m));
        match line {
            Line::Header { format, version } => {
                if format != FORMAT {
                    return invalid(format!("not a permdb dump (format {format:?})"));
                }
                if version != DUMP_VERSION {
                    return invalid(format!(
                        "dump version {version}: this build reads version {DUMP_VERSION}"
                    ));
                }
            }
            Line::SigningKey {
                key_id,
                secret,
                created_ms,
            } => {
                check_times(&[("created_ms", created_ms)])?;
                if created_ms > self.engine.now_ms().saturating_add(SIGNING_KEY_SKEW_MS) {
                    return invalid(
                        "created_ms: after now (a key from the future would sign \
                                    after every rotation)"
                            .into(),
                    );
                }
                let secret: [u8; 32] = base64url()
                    .decode(secret.as_bytes())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        Error::InvalidArgument("secret: 32 bytes in base64url expected".into())
                    })?;
                if !self.signing_keys.insert(key_id) {
                    return invalid(format!("signing key {key_id} appears twice"));
                }
                let r = SigningKeyRecord {
                    key_id,
                    secret,
                    created_ms,
                };
                self.pending.put(
                    Tree::Auth,
                    crate::token::keyring::key_key(key_id),
                    codec::encode(&r)?,
                );
            }
            Line::User {
                id,
                email,
                name,
                password_hash,
                blocked,
                email_verified,
                labels,
                created_ms,
                updated_ms,
                prefs,
            } => {
                check_times(&[("created_ms", created_ms), ("updated_ms", updated_ms)])?;
                crate::id::check_id("user id", &id)?;
                // As an existing account's email is checked (older ones may be non-ASCII).
                crate::text::check_email(&email)?;
                users::check_user_name(&name)?;
                let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                let labels = users::check_labels(&label_refs)?;
                crate::auth::password::check_stored_hash(&password_hash)?;
                if !self.users.insert(id.clone()) {
                    return invalid(format!("user {id} appears twice"));
                }
                let email_key = users::email_key(&email);
                if !self.emails.insert(email_key.clone()) {
                    return invalid("a user with this email appears before".into());
                }
                prefs::put(&mut self.pending, Owner::User(&id), &prefs)?;
                let r = UserRecord {
                    id: id.clone(),
                    email,
                    name,
                    password_hash,
                    blocked,
                    email_verified,
                    labels,
                    created_ms,
                    updated_ms,
                };
                users::put_user(&mut self.pending, &r)?;
                self.pending
                    .put(Tree::Auth, email_key, id.as_bytes().to_vec());
                let incarnation: [u8; 16] = crate::secret::random_bytes();
                self.pending.put(
                    Tree::Auth,
                    users::incarnation_key(&id),
                    incarnation.to_vec(),
                );
            }
            Line::Team {
                id,
                name,
                created_ms,
                prefs,
            } => {
                check_times(&[("created_ms", created_ms)])?;
                crate::id::check_id("team id", &id)?;
                crate::text::check_name("team", &name)?;
                if !self.teams.insert(id.clone()) {
                    return invalid(format!("team {id} appears twice"));
                }
                prefs::put(&mut self.pending, Owner::Team(&id), &prefs)?;
                let r = TeamRecord {
                    id: id.clone(),
                    name,
                    created_ms,
                };
                crate::auth::put(&mut self.pending, crate::auth::teams::team_key(&id), &r)?;
            }
            Line::Membership {
                id,
                team_id,
                user_id,
                roles,
                confirmed,
                created_ms,
            } => {
                check_times(&[("created_ms", created_ms)])?;
                crate::id::check_id("membership id", &id)?;
                if !self.teams.contains(&team_id) {
                    return invalid(format!("team {team_id} is not in the dump before"));
                }
                if !self.users.contains(&user_id) {
                    return invalid(format!("user {user_id} is not in the dump before"));
                }
                if roles.len() > crate::auth::teams::MAX_MEMBERSHIP_ROLES {
                    return invalid(format!("{} roles, at most 100", roles.len()));
                }
                if let Some(fault) = roles.iter().find_map(|r| crate::perm::team_role_fault(r)) {
                    return invalid(format!("team role: {fault}"));
                }
                if !self.memberships.insert(id.clone())
                    || !self.member_of.insert((user_id.clone(), team_id.clone()))
                {
                    return invalid(format!(
                        "membership {id} (or user {user_id} in team {team_id}) appears twice"
                    ));
                }
                let mut roles = roles;
                roles.sort();
                roles.dedup();
                let r = MembershipRecord {
                    id: id.clone(),
                    team_id: team_id.clone(),
                    user_id: user_id.clone(),
                    roles,
                    confirmed,
                    created_ms,
                };
                crate::auth::put(
                    &mut self.pending,
                    crate::auth::teams::membership_key(&id),
                    &r,
                )?;
                self.pending.put(
                    Tree::Auth,
                    keys::auth(AuthTag::UserMembership, &[&user_id, &id]),
                    Vec::new(),
                );
                self.pending.put(
                    Tree::Auth,
                    keys::auth(AuthTag::TeamMembership, &[&team_id, &id]),
                    Vec::new(),
                );
            }
            Line::ApiKey {
                id,
                name,
                scopes,
                secret_sha256,
                expires_ms,
                created_ms,
            } => {
                check_times(&[("created_ms", created_ms)])?;
                check_times(
                    &expires_ms
                        .map(|e| ("expires_ms", e))
                        .into_iter()
                        .collect::<Vec<_>>(),
                )?;
                if id.contains('.') {
                    return invalid("key id: no '.' (the secret is the id, a dot, the key)".into());
                }
                crate::id::check_id("key id", &id)?;
                crate::text::check_name("key", &name)?;
                let secret_digest = unhex32(&secret_sha256).ok_or_else(|| {
                    Error::InvalidArgument("secret_sha256: 64 hex digits expected".into())
                })?;
                if !self.api_keys.insert(id.clone()) {
                    return invalid(format!("key {id} appears twice"));
                }
                let r = ApiKeyRecord {
                    id: id.clone(),
                    name,
                    scopes: scopes.into_iter().collect(),
                    secret_digest,
                    expires_ms,
                    created_ms,
                };
                crate::auth::put(&mut self.pending, crate::auth::keys::key_key(&id), &r)?;
            }
            Line::Schema {
                id,
                name,
                enabled,
                created_ms,
                updated_ms,
            } => {
                check_times(&[("created_ms", created_ms), ("updated_ms", updated_ms)])?;
                let r = SchemaRecord {
                    id: id.clone(),
                    name,
                    enabled,
                    created_ms,
                    updated_ms,
                };
                let (key, value) = catalog::import_schema(r.clone())?;
                if self.schemas.insert(id.clone(), r).is_some() {
                    return invalid(format!("schema {id} appears twice"));
                }
                self.pending.put(Tree::Meta, key, value);
            }
            Line::Collection {
                schema_id,
                id,
                name,
                permissions,
                document_security,
                enabled,
                created_ms,
                updated_ms,
                attributes,
                indexes,
                next_sequence,
            } => {
                check_times(&[("created_ms", created_ms), ("updated_ms", updated_ms)])?;
                self.finish_collection()?;
                let Some(schema) = self.schemas.get(&schema_id) else {
                    return invalid(format!("schema {schema_id} is not in the dump before"));
                };
                if !self.collections.insert((schema_id.clone(), id.clone())) {
                    return invalid(format!("collection {schema_id}/{id} appears twice"));
                }
                if next_sequence == 0 {
                    return invalid("next_sequence: at least 1".into());
                }
                let permissions = permissions
                    .iter()
                    .map(|p| p.parse::<Permission>())
                    .collect::<Result<Vec<_>>>()?;
                let cid = self.next_cid;
                let max_depth = self.engine.options.limits.max_depth;
                let record = catalog::import_collection(
                    &mut self.pending,
                    cid,
                    schema,
                    &id,
                    &name,
                    &permissions,
                    document_security,
                    enabled,
                    (created_ms, updated_ms),
                    &attributes,
                    &indexes,
                    max_depth,
                )?;
                self.next_cid = cid.saturating_add(1);
                self.commit()?;
                self.current = Some(Current {
                    specs: record.attribute_specs(max_depth)?,
                    record,
                    next_sequence,
                    last_sequence: 0,
                    live: 0,
                    ids: HashSet::new(),
                });
            }
            Line::Document {
                schema_id,
                collection_id,
                id,
                sequence,
                created_ms,
                updated_ms,
                permissions,
                data,
            } => self.document(
                (&schema_id, &collection_id),
                &id,
                sequence,
                (created_ms, updated_ms),
                &permissions,
                &data,
            )?,
            Line::End { lines } => {
                self.finish_collection()?;
                self.commit()?;
                crate::changes::start_after_import(self.engine)?;
                // The end line counts the lines before it.
                if lines != self.report.lines - 1 {
                    return invalid(format!(
                        "the end line counts {lines} lines before it, the dump has {}",
                        self.report.lines - 1
                    ));
                }
            }
        }
        if !matches!(
            self.rank, 7 // documents and collections commit themselves
        ) {
            self.wrote()?;
        }
        Ok(())
    }

    fn document(
        &mut self,
        (schema_id, collection_id): (&str, &str),
        id: &str,
        sequence: u32,
        (created_ms, updated_ms): (i64, i64),
        permissions: &[String],
        data: &Map<String, Value>,
    ) -> Result<()> {
        let limits = self.engine.options.limits;
        let Some(c) = self.current.as_mut() else {
            return Err(Error::InvalidArgument(
                "a document before any collection".into(),
            ));
        };
        if c.record.schema_id != schema_id || c.record.id != collection_id {
            return Err(Error::InvalidArgument(format!(
                "a document of {schema_id}/{collection_id} among those of {}/{}: a \
                 collection's documents follow its line",
                c.record.schema_id, c.record.id
            )));
        }
        crate::id::check_id("document id", id)?;
        check_times(&[("created_ms", created_ms), ("updated_ms", updated_ms)])?;
        if sequence <= c.last_sequence || sequence >= c.next_sequence {
            return Err(Error::InvalidArgument(format!(
                "sequence {sequence}: above {} (the one before) and below next_sequence {}",
                c.last_sequence, c.next_sequence
            )));
        }
        if !c.ids.insert(id.to_owned()) {
            return Err(Error::InvalidArgument(format!(
                "document {id} appears twice"
            )));
        }
        let permissions = permissions
            .iter()
            .map(|p| p.parse::<Permission>())
            .collect::<Result<Vec<_>>>()?;
        let permissions = normalize(&permissions, Target::Document)?;
        attribute::check_stored(&c.specs, data)?;
        check_object(data, limits)?;
        let record = make_record(id, created_ms, updated_ms, &permissions, data, limits)?;
        let cid = c.record.cid;
        put_record(&mut self.pending, cid, sequence, &record, limits)?;
        self.pending.put(
            Tree::DocIds,
            keys::doc_id(cid, id),
            sequence.to_be_bytes().to_vec(),
        );
        Contribution::apply_change(
            &self.engine.store,
            &mut self.pending,
            &mut self.edits,
            cid,
            (id, sequence),
            &Contribution::default(),
            &Contribution::of(cid, &c.record.indexes, sequence, record.grants(), data),
        )?;
        c.last_sequence = sequence;
        c.live += 1;
        self.wrote()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        format!("{{\"type\":\"header\",\"format\":\"permdb-dump\",\"version\":{DUMP_VERSION}}}\n")
    }

    #[test]
    fn a_minimal_dump_is_accepted_and_bad_ones_are_not() {
        let end = |n: u64| format!("{{\"type\":\"end\",\"lines\":{n}}}\n");
        assert!(import_temporary(
            format!("{}{}", header(), end(1)).as_bytes()
        ));
        for bad in [
            String::new(),
            header(),
            end(0),
            format!("{}{}", header(), end(2)),
            format!("{}{}{}", header(), end(1), end(2)),
            format!("{}{{\"type\":\"nope\"}}\n{}", header(), end(2)),
            format!("{}{{\"type\":\"end\",\"lines\":1,\"extra\":1}}\n", header()),
            header().replace("permdb-dump", "other"),
            header().replace(&format!(":{DUMP_VERSION}}}"), ":99}"),
        ] {
            assert!(!import_temporary(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn hex_round_trips_and_refuses_bad_digits() {
        let bytes: [u8; 32] = core::array::from_fn(|i| i as u8 * 7);
        assert_eq!(unhex32(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"g".repeat(64)), None);
        assert_eq!(unhex32(&"é".repeat(32)), None);
    }
}
