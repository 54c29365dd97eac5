//! `Db`: an open store. Cheap to clone, safe to share between threads; writes are
//! serialized by one writer lock, reads run beside them.

use std::path::Path;
use std::sync::Arc;

use crate::auth::SignIn;
use crate::catalog;
use crate::changes::{self, OldRecords};
use crate::dump::{DumpProgress, DumpReport};
use crate::engine::Engine;
use crate::engine::{CommitObserver, Lsns, Prepared};
use crate::error::Result;
use crate::integrity::{self, IntegrityProgress, IntegrityReport};
use crate::live::Hub;
use crate::options::{Durability, Limits, Options, StorageEngine};
use crate::store::Tree;
use crate::store::WriteBatch;
use crate::token::keyring::KeyRing;
use crate::upgrade::{UpgradeProgress, UpgradeReport};

/// An open permdb store.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// What [`Db::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// One entry per tree (`meta`, `docs`, `doc_ids`, `perm_index`, `auth`, `attr_index`),
    /// and `changes_feed`, the changes feed's records (kept in the docs tree).
    pub trees: Vec<TreeStats>,
    /// Bytes of role bitmaps held in memory (their serialized size).
    pub cached_bitmap_bytes: u64,
    /// What the document cache holds (as [`Db::cache_stats`] reports it).
    pub cached_documents: CacheStats,
    /// The last log sequence number given to a document change.
    pub last_lsn: u64,
    /// How many times commits visited a live subscription since open (a work counter:
    /// a change visits only the subscriptions that may see it, before or after).
    pub watch_visits: u64,
}

/// What [`Db::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// The engine the store is kept by.
    pub engine: StorageEngine,
    /// Bytes of the engine's file before and after; `None` when the engine compacts as it
    /// goes and offers no call for it (sled): nothing was done.
    pub bytes: Option<(u64, u64)>,
}

/// What the in-memory caches hold (see [`Db::cache_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Bytes of role and value bitmaps held (their serialized size).
    pub bitmap_bytes: u64,
    /// Decoded documents held (`Options::document_cache_bytes`).
    pub documents: u64,
    /// Their memory, estimated: the structs, strings and JSON values they hold.
    pub document_bytes: u64,
}

/// Sizes of one tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeStats {
    /// The tree's name.
    pub tree: &'static str,
    /// How many keys it holds.
    pub keys: u64,
    /// Sum of key lengths.
    pub key_bytes: u64,
    /// Sum of value lengths, checksums left out.
    pub value_bytes: u64,
    /// Bytes of the values' checksums (4 per key): stored, but not part of any value.
    pub checksum_bytes: u64,
}

/// What a `Db` holds: the engine, and the state of the services above it that lives as
/// long as the store is open (token signing keys, the sign-in throttle).
pub(crate) struct DbInner {
    pub(crate) engine: Engine,
    pub(crate) keyring: KeyRing,
    pub(crate) sign_in: SignIn,
    /// The live subscriptions, fed by every commit.
    pub(crate) hub: Arc<Hub>,
}

impl std::ops::Deref for DbInner {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Db {
    /// Opens or creates a store in directory `path` with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, Options::default())
    }

    /// Opens or creates a store in directory `path`. A store of the previous on-disk
    /// format is refused with [`Error::UpgradeRequired`](crate::Error::UpgradeRequired),
    /// or upgraded first when [`Options::upgrade`] says so.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let path = path.as_ref();
        // An upgrade cut short between its renames left no store at `path`: finishing it
        // (or asking for it) keeps a new empty store from taking the data's place.
        if crate::upgrade::cut_short(path) {
            if crate::store::engine_of(path)?.is_some() {
                return Err(crate::Error::InvalidArgument(format!(
                    "{0} holds a store, yet {0}.upgrading and {0}.format3 are beside it: an \
                     upgrade was cut short and something opened {0} meanwhile. Move {0} \
                     aside and run `permdb upgrade --data {0}` to finish the upgrade",
                    path.display()
                )));
            }
            if !options.upgrade {
                return Err(crate::Error::UpgradeRequired {
                    found: 3,
                    expected: crate::store::keys::FORMAT_VERSION,
                });
            }
            crate::upgrade::upgrade(path, &options, &mut |_| {})?;
        }
        match Db::start(Some(path), options.clone()) {
            Err(crate::Error::UpgradeRequired { .. }) if options.upgrade => {
                crate::upgrade::upgrade(path, &options, &mut |_| {})?;
                Db::start(Some(path), options)
            }
            other => other,
        }
    }

    /// The storage engine of the store in directory `path`, found from its files as
    /// opening it does; `None` when it holds no store.
    pub fn engine_of(path: impl AsRef<Path>) -> Result<Option<crate::StorageEngine>> {
        crate::store::engine_of(path.as_ref())
    }

    /// Writes the whole store to `out` as a dump (JSON lines, docs/DUMP.md): schemas,
    /// collections with their attributes and indexes, documents with their permissions,
    /// users with their password hashes and preferences, teams, memberships, API keys
    /// (their secrets' digests) and token signing keys. Not sessions, one-time tokens,
    /// the changes feed or the store's id. The dump holds secrets: keep it as you keep
    /// the store. Runs under the writer lock (writes wait), so it is one moment of the
    /// store.
    pub fn export(&self, mut out: impl std::io::Write) -> Result<DumpReport> {
        crate::dump::export(&self.inner, &mut out, &mut |_| {})
    }

    /// [`Db::export`], telling `progress` how far it is.
    pub fn export_with_progress(
        &self,
        mut out: impl std::io::Write,
        mut progress: impl FnMut(DumpProgress),
    ) -> Result<DumpReport> {
        crate::dump::export(&self.inner, &mut out, &mut progress)
    }

    /// Reads a dump made by [`Db::export`] into a new store in directory `path` (which
    /// must not exist or be empty), made with `options`' engine: the way across engines
    /// and format versions, and a restore from backup. Every line is checked as a write
    /// is; a bad one is [`Error::InvalidDump`](crate::Error::InvalidDump) naming it, and
    /// leaves no store behind. Sessions are not in a dump: users sign in again. The new
    /// store has its own id, so tokens issued by the old one are not accepted.
    pub fn import(
        path: impl AsRef<Path>,
        options: &Options,
        mut input: impl std::io::BufRead,
    ) -> Result<DumpReport> {
        crate::dump::import(path.as_ref(), options, &mut input, &mut |_| {})
    }

    /// [`Db::import`], telling `progress` how far it is.
    pub fn import_with_progress(
        path: impl AsRef<Path>,
        options: &Options,
        mut input: impl std::io::BufRead,
        mut progress: impl FnMut(DumpProgress),
    ) -> Result<DumpReport> {
        crate::dump::import(path.as_ref(), options, &mut input, &mut progress)
    }

    /// Compacts the store in directory `path`, as `permdb compact` does: on redb, packs
    /// its pages and gives the free space at the end of the file back to the file system
    /// (a store written by many small commits, or after deletes, can shrink to about a
    /// third). Each step is a two-phase commit, so an interruption loses nothing, though
    /// the next open then checks the whole file (redb's repair), which takes a while on a
    /// large store. sled rewrites its segments in the background and has no such call:
    /// nothing is done. The store must not be open (redb's is refused when it is), nor in
    /// the middle of an upgrade; [`Db::import`] and [`Db::upgrade`] compact what they write.
    pub fn compact(path: impl AsRef<Path>) -> Result<CompactReport> {
        let path = path.as_ref();
        crate::upgrade::check_named(path)?;
        crate::upgrade::while_not_upgrading(path, || {
            let engine = crate::store::engine_of(path)?.ok_or_else(|| {
                crate::Error::InvalidArgument(format!("{} holds no permdb store", path.display()))
            })?;
            Ok(CompactReport {
                engine,
                bytes: crate::store::compact(path)?,
            })
        })
    }

    /// Upgrades the store in directory `path` from the previous on-disk format to this
    /// build's, as `permdb upgrade` does: every record is checked and copied into a new
    /// store beside it, which then takes its place; the old store is kept as
    /// `PATH.format3` until its owner removes it. A store already current is left alone;
    /// an upgrade cut short is started again (or finished) by calling this again. The
    /// store must not be open.
    pub fn upgrade(path: impl AsRef<Path>, options: &Options) -> Result<UpgradeReport> {
        crate::upgrade::upgrade(path.as_ref(), options, &mut |_| {})
    }

    /// [`Db::upgrade`], telling `progress` how many records are copied, as it goes.
    pub fn upgrade_with_progress(
        path: impl AsRef<Path>,
        options: &Options,
        mut progress: impl FnMut(UpgradeProgress),
    ) -> Result<UpgradeReport> {
        crate::upgrade::upgrade(path.as_ref(), options, &mut progress)
    }

    /// A store in a temporary directory, removed when the last handle drops.
    /// Writes are not flushed on commit (nothing survives it anyway).
    pub fn temporary() -> Result<Db> {
        Db::start(
            None,
            Options::default().durability(Durability::Periodic { every_ms: 1000 }),
        )
    }

    /// A temporary store with the given options.
    pub fn temporary_with(options: Options) -> Result<Db> {
        Db::start(None, options)
    }

    fn start(path: Option<&Path>, options: Options) -> Result<Db> {
        let engine = Engine::open(path, options, crate::auth::changes_principals)?;
        let now_ms = engine.now_ms();
        let (keyring, first_keys) = KeyRing::open(&engine.store, now_ms)?;
        engine.store.apply(&first_keys)?;
        engine.store.flush()?;
        let sign_in = SignIn::new(&engine.options)?;
        let hub = Arc::new(Hub::default());
        engine.observe(Arc::new(Feeds { hub: hub.clone() }));
        changes::mark_older_store(&engine)?;
        let db = Db {
            inner: Arc::new(DbInner {
                engine,
                keyring,
                sign_in,
                hub,
            }),
        };
        catalog::resume_purges(&db.inner)?;
        Ok(db)
    }

    /// What the in-memory caches hold now. Cheap: reads no storage.
    #[must_use]
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            bitmap_bytes: self.inner.bitmaps.bytes() as u64,
            documents: self.inner.documents.len() as u64,
            document_bytes: self.inner.documents.bytes() as u64,
        }
    }

    /// Sizes of the store: per tree, its keys, key bytes, value bytes and checksum bytes
    /// (what is stored, not the engine's file size), and the bytes of bitmaps cached in
    /// memory. Reads every key: for tools and benchmarks, not for hot paths.
    pub fn stats(&self) -> Result<DbStats> {
        let mut trees = Vec::new();
        // The changes feed's records share the docs tree; they are reported apart.
        let mut feed = TreeStats {
            tree: "changes_feed",
            keys: 0,
            key_bytes: 0,
            value_bytes: 0,
            checksum_bytes: 0,
        };
        for tree in Tree::ALL {
            let mut t = TreeStats {
                tree: tree.name(),
                keys: 0,
                key_bytes: 0,
                value_bytes: 0,
                checksum_bytes: 0,
            };
            for entry in self
                .inner
                .store
                .scan_prefix(tree, &[], crate::store::Direction::Forward)
            {
                let (k, v) = entry?;
                let into = if tree == Tree::Docs && !crate::store::keys::is_doc_key(&k) {
                    &mut feed
                } else {
                    &mut t
                };
                into.keys += 1;
                into.key_bytes += k.len() as u64;
                into.value_bytes += v.len() as u64;
                into.checksum_bytes += crate::store::CHECKSUM_LEN as u64;
            }
            trees.push(t);
        }
        trees.push(feed);
        Ok(DbStats {
            trees,
            cached_bitmap_bytes: self.inner.bitmaps.bytes() as u64,
            cached_documents: self.cache_stats(),
            last_lsn: self.inner.last_lsn(),
            watch_visits: self.inner.hub.visits(),
        })
    }

    /// The project this store serves (`Options::project`): tokens name it.
    #[must_use]
    pub fn project(&self) -> &str {
        &self.inner.options.project
    }

    /// The store's clock reading (`Options::clock`): the time every write and token
    /// check of this store goes by.
    #[must_use]
    pub fn now(&self) -> time::OffsetDateTime {
        self.inner.now()
    }

    /// The last log sequence number the store gave out: a `find` made after reading it,
    /// and `Collection::changes` from it, together miss no change.
    #[must_use]
    pub fn last_lsn(&self) -> u64 {
        self.inner.last_lsn()
    }

    /// The limits this store was opened with (`Options::limits`).
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.inner.options.limits
    }

    /// Makes every write so far durable, whatever the [`Durability`].
    pub fn flush(&self) -> Result<()> {
        self.inner.store.flush()
    }

    /// Checks the checksum of every record of the store, then compares every index,
    /// counter and id entry with what the documents say; changes nothing.
    pub fn verify(&self) -> Result<IntegrityReport> {
        integrity::verify(&self.inner, &mut |_| {})
    }

    /// [`Db::verify`], telling `progress` of each step as it starts (for a long check
    /// on a large store: `permdb verify` shows it on stderr).
    pub fn verify_with_progress(
        &self,
        mut progress: impl FnMut(IntegrityProgress),
    ) -> Result<IntegrityReport> {
        integrity::verify(&self.inner, &mut progress)
    }

    /// Rebuilds every index, counter and id entry from the documents, one atomic write
    /// per collection. Returns what was wrong before.
    pub fn repair(&self) -> Result<IntegrityReport> {
        integrity::repair(&self.inner, &mut |_| {})
    }

    /// [`Db::repair`], telling `progress` of each collection as its rebuild starts.
    pub fn repair_with_progress(
        &self,
        mut progress: impl FnMut(IntegrityProgress),
    ) -> Result<IntegrityReport> {
        integrity::repair(&self.inner, &mut progress)
    }
}

/// What every commit feeds: the changes feed's records, written in the batch, and the
/// live subscriptions, told after it is applied. The records a batch replaces are read
/// once for both.
struct Feeds {
    hub: Arc<Hub>,
}

impl CommitObserver for Feeds {
    fn prepare(
        &self,
        engine: &Engine,
        batch: &mut WriteBatch,
        lsns: Lsns,
    ) -> Result<Option<Prepared>> {
        // Subscriptions judge the records a batch replaces whole; the feed needs only
        // their heads, read without their attributes when nobody watches.
        if self.hub.watching() {
            let old = changes::old_records(&engine.store, batch)?;
            changes::record(engine, batch, &changes::heads_of(&old), lsns)?;
            Ok(Some(Box::new(old)))
        } else {
            let old = changes::old_heads(&engine.store, batch)?;
            changes::record(engine, batch, &old, lsns)?;
            Ok(None)
        }
    }

    fn committed(
        &self,
        engine: &Engine,
        batch: &WriteBatch,
        prepared: Option<Prepared>,
        lsns: Lsns,
    ) {
        if let Some(old) = prepared.and_then(|p| p.downcast::<OldRecords>().ok()) {
            self.hub.committed(engine, batch, &old, lsns);
        }
    }
}
