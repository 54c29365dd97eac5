//! The redb implementation of [`Backend`]: one redb table per [`Tree`] in one file,
//! every batch one write transaction over the tables it touches.
//!
//! Durability: `Immediate` commits each batch durably (redb's `Durability::Immediate`,
//! an fsync); `Periodic` commits without one (`Durability::None`), and a thread makes
//! them durable every `every_ms` (an empty durable commit), as does closing the store.
//! A commit that is not durable is never half applied after a crash: redb falls back to
//! the last durable commit.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Backend, Bytes, Direction, Scan, Tree, WriteBatch};
use crate::error::{Error, Result};

/// The file a redb store keeps in its directory (its presence marks the store as redb's).
pub(crate) const FILE: &str = "permdb.redb";

/// How long opening waits for the file to be released by a handle closing in this
/// process (as the sled backend waits for its lock).
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// redb with the tables of permdb created.
pub(crate) struct RedbBackend {
    db: Arc<Database>,
    /// For `Periodic` durability: what the flushing thread shares with writes.
    periodic: Option<Periodic>,
}

/// `Periodic` durability's state.
struct Periodic {
    durability: Arc<Deferred>,
    /// Set to stop the thread, which waits on it between flushes.
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// Commits not made durable yet, and the lock every durable flush takes.
///
/// INVARIANT (flush-truth): `pending` is cleared only under `flushing`, by a flush whose
/// durable commit then succeeds (it is set again when it fails); so a flush that finds
/// it clear, having waited for `flushing`, may say every earlier commit is durable.
#[derive(Default)]
struct Deferred {
    pending: AtomicBool,
    flushing: Mutex<()>,
}

impl Deferred {
    /// Makes every commit so far durable, if one is not.
    fn flush(&self, db: &Database) -> Result<()> {
        let _one = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.pending.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        durable_commit(db).inspect_err(|_| self.pending.store(true, Ordering::Release))
    }
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::storage("redb failed", e)
}

/// A table of raw keys and values, open in a write transaction.
type RawTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

fn table(tree: Tree) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(tree.name())
}

impl RedbBackend {
    /// Opens (or creates) the store in directory `path` with a page cache of
    /// `cache_bytes`; `None` makes one in memory.
    pub(crate) fn open(
        path: Option<&Path>,
        cache_bytes: u64,
        flush_every_ms: Option<u64>,
    ) -> Result<RedbBackend> {
        let mut builder = Database::builder();
        builder.set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX));
        let db = match path {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::storage(format!("cannot create {}", dir.display()), e))?;
                open_when_released(&builder, &dir.join(FILE))?
            }
            None => builder
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(storage)?,
        };
        // Every table exists, so that reads never meet a missing one.
        let txn = db.begin_write().map_err(storage)?;
        for tree in Tree::ALL {
            txn.open_table(table(tree)).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        let db = Arc::new(db);
        let periodic = match flush_every_ms {
            None => None,
            Some(ms) => {
                let durability = Arc::new(Deferred::default());
                let stop = Arc::new((Mutex::new(false), Condvar::new()));
                let (weak, shared, stopping) = (
                    Arc::downgrade(&db),
                    Arc::clone(&durability),
                    Arc::clone(&stop),
                );
                let thread = std::thread::Builder::new()
                    .name("permdb-redb-flush".into())
                    .spawn(move || {
                        flush_every(&weak, &shared, &stopping, Duration::from_millis(ms));
                    })
                    .map_err(|e| Error::storage("cannot start the flushing thread", e))?;
                Some(Periodic {
                    durability,
                    stop,
                    thread: Some(thread),
                })
            }
        };
        Ok(RedbBackend { db, periodic })
    }
}

/// Compacts the closed store in directory `dir` as far as redb can (moving pages to the
/// front, packing half-empty ones, truncating the free end), one crash-safe commit at a
/// time; returns the file's size before and after. A store open elsewhere is refused.
pub(crate) fn compact(dir: &Path) -> Result<(u64, u64)> {
    let file = dir.join(FILE);
    let size = || {
        std::fs::metadata(&file)
            .map(|m| m.len())
            .map_err(|e| Error::storage(format!("cannot look at {}", file.display()), e))
    };
    let before = size()?;
    let mut db = open_when_released(&Database::builder(), &file)?;
    // One call packs and moves pages until nothing moves; each pass its own commit.
    db.compact(redb::CompactionMode::Maximum).map_err(storage)?;
    drop(db);
    Ok((before, size()?))
}

/// Opens or creates the file, waiting up to [`LOCK_WAIT`] while a handle closing in this
/// process still holds it. A store open elsewhere is refused, [`LOCK_WAIT`] later.
fn open_when_released(builder: &redb::Builder, file: &Path) -> Result<Database> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match builder.create(file) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e @ redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::Storage {
                    message: format!(
                        "the store in {} is open elsewhere: another process (or another \
                         handle in this one) holds its lock",
                        file.parent().unwrap_or(file).display()
                    ),
                    source: Some(Box::new(e)),
                });
            }
            other => return other.map_err(storage),
        }
    }
}

/// The `Periodic` flusher: every `every`, makes the commits since the last durable one
/// durable; ends when told to stop (the backend is closing) or the database is gone.
fn flush_every(
    db: &Weak<Database>,
    durability: &Deferred,
    stop: &(Mutex<bool>, Condvar),
    every: Duration,
) {
    let (stopped, wake) = stop;
    loop {
        let guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = wake
            .wait_timeout_while(guard, every, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        if *guard {
            return;
        }
        drop(guard);
        let Some(db) = db.upgrade() else {
            return;
        };
        // A failure leaves the commits pending: tried again at the next interval.
        let _ = durability.flush(&db);
    }
}

/// An empty durable commit: every commit before it becomes durable.
fn durable_commit(db: &Database) -> Result<()> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(storage)?;
    txn.commit().map_err(storage)
}

impl Backend for RedbBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Bytes>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(table(tree)).map_err(storage)?;
        let value = t.get(key).map_err(storage)?;
        Ok(value.map(|v| Bytes::new(sled::IVec::from(v.value()))))
    }

    fn range<'a>(
        &'a self,
        tree: Tree,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        direction: Direction,
    ) -> Scan<'a> {
        let opened = self
            .db
            .begin_read()
            .map_err(storage)
            .and_then(|txn| txn.open_table(table(tree)).map_err(storage));
        let t = match opened {
            Ok(t) => t,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        // The iterator keeps its read transaction (one snapshot) alive until dropped.
        let range = match t.range_owned((from, to)) {
            Ok(r) => r,
            Err(e) => return Box::new(std::iter::once(Err(storage(e)))),
        };
        type Item = redb::Result<(
            redb::OwnedAccessGuard<&'static [u8]>,
            redb::OwnedAccessGuard<&'static [u8]>,
        )>;
        let map = |r: Item| {
            r.map(|(k, v)| {
                (
                    Bytes::new(sled::IVec::from(k.value())),
                    Bytes::new(sled::IVec::from(v.value())),
                )
            })
            .map_err(storage)
        };
        match direction {
            Direction::Forward => Box::new(range.map(map)),
            Direction::Reverse => Box::new(range.rev().map(map)),
        }
    }

    fn apply(&self, batch: &WriteBatch) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(storage)?;
        if let Some(periodic) = &self.periodic {
            txn.set_durability(redb::Durability::None)
                .map_err(storage)?;
            // Set before the commit, while this batch holds redb's one write slot: a
            // flush waiting for the slot then sees it (INVARIANT flush-truth).
            periodic.durability.pending.store(true, Ordering::Release);
        }
        {
            let mut current: Option<(Tree, RawTable<'_>)> = None;
            for (tree, key, value) in batch.ops() {
                if current.as_ref().map(|(t, _)| *t) != Some(tree) {
                    // The table open before is closed first: one open at a time.
                    drop(current.take());
                    current = Some((tree, txn.open_table(table(tree)).map_err(storage)?));
                }
                let Some((_, t)) = current.as_mut() else {
                    return Err(Error::internal("a redb table went missing"));
                };
                match value {
                    Some(v) => drop(t.insert(key, v).map_err(storage)?),
                    None => drop(t.remove(key).map_err(storage)?),
                }
            }
        }
        txn.commit().map_err(storage)
    }

    fn flush(&self) -> Result<()> {
        // Under `Immediate` every commit is durable already.
        match &self.periodic {
            Some(periodic) => periodic.durability.flush(&self.db),
            None => Ok(()),
        }
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        if let Some(periodic) = &mut self.periodic {
            // The thread is stopped and joined first, so that it holds the database no
            // longer: the file is closed when this backend is, and can be opened again.
            let (stopped, wake) = &*periodic.stop;
            *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
            wake.notify_all();
            if let Some(thread) = periodic.thread.take() {
                let _ = thread.join();
            }
        }
        // The commits of the last interval become durable when the store closes.
        let _ = self.flush();
    }
}
