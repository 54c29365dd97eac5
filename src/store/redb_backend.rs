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
use std::sync::{Arc, Weak};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Backend, Bytes, Direction, Scan, Tree, WriteBatch};
use crate::error::{Error, Result};

/// The file a redb store keeps in its directory (its presence marks the store as redb's).
pub(crate) const FILE: &str = "permdb.redb";

/// redb with the tables of permdb created.
pub(crate) struct RedbBackend {
    db: Arc<Database>,
    /// For `Periodic` durability: whether a commit is not durable yet (the flushing
    /// thread, which holds only a weak handle on the database, clears it).
    pending: Option<Arc<AtomicBool>>,
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
    /// Opens (or creates) the store in directory `path`; `None` makes one in memory.
    pub(crate) fn open(path: Option<&Path>, flush_every_ms: Option<u64>) -> Result<RedbBackend> {
        let db = match path {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::storage(format!("cannot create {}", dir.display()), e))?;
                Database::create(dir.join(FILE)).map_err(|e| match e {
                    redb::DatabaseError::DatabaseAlreadyOpen => Error::storage(
                        format!("the store in {} is open elsewhere", dir.display()),
                        e,
                    ),
                    e => storage(e),
                })?
            }
            None => Database::builder()
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
        let pending = match flush_every_ms {
            None => None,
            Some(ms) => {
                let pending = Arc::new(AtomicBool::new(false));
                let (weak, flag) = (Arc::downgrade(&db), Arc::clone(&pending));
                std::thread::Builder::new()
                    .name("permdb-redb-flush".into())
                    .spawn(move || flush_every(&weak, &flag, Duration::from_millis(ms)))
                    .map_err(|e| Error::storage("cannot start the flushing thread", e))?;
                Some(pending)
            }
        };
        Ok(RedbBackend { db, pending })
    }
}

/// The `Periodic` flusher: every `every`, makes the commits since the last durable one
/// durable; ends once the database is gone.
fn flush_every(db: &Weak<Database>, pending: &AtomicBool, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(db) = db.upgrade() else {
            return;
        };
        if pending.swap(false, Ordering::AcqRel) && durable_commit(&db).is_err() {
            // Tried again at the next interval.
            pending.store(true, Ordering::Release);
        }
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
        if let Some(pending) = &self.pending {
            txn.set_durability(redb::Durability::None)
                .map_err(storage)?;
            pending.store(true, Ordering::Release);
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
        match &self.pending {
            Some(pending) if pending.swap(false, Ordering::AcqRel) => durable_commit(&self.db),
            _ => Ok(()),
        }
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // The commits of the last interval become durable when the store closes.
        let _ = self.flush();
    }
}
