//! The sled implementation of [`Backend`]: one sled tree per [`Tree`],
//! multi-tree writes through a sled transaction over the touched trees.

use std::ops::Bound;
use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Backend, Bytes, Direction, Scan, Tree, WriteBatch};
use crate::error::{Error, Result};

/// sled with the trees of permdb opened.
pub(crate) struct SledBackend {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

fn storage(e: sled::Error) -> Error {
    Error::storage("sled failed", e)
}

impl SledBackend {
    /// Opens (or creates) a store at `path`; `None` makes a temporary one removed on drop.
    pub(crate) fn open(
        path: Option<&Path>,
        cache_bytes: u64,
        flush_every_ms: Option<u64>,
    ) -> Result<SledBackend> {
        let config = sled::Config::new()
            .cache_capacity(cache_bytes)
            .flush_every_ms(flush_every_ms);
        let config = match path {
            Some(p) => config.path(p),
            None => config.temporary(true),
        };
        let db = open_when_unlocked(&config, path)?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).map_err(storage))
            .collect::<Result<Vec<_>>>()?;
        Ok(SledBackend { db, trees })
    }

    fn tree(&self, tree: Tree) -> Result<&sled::Tree> {
        // INVARIANT (tree-order): `trees` holds one sled tree per entry of `Tree::ALL`, in that order.
        let pos = Tree::ALL.iter().position(|t| *t == tree);
        pos.and_then(|i| self.trees.get(i))
            .ok_or_else(|| Error::internal(format!("tree {} not open", tree.name())))
    }
}

/// How long opening waits for a store's directory lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens `config`, waiting up to [`LOCK_WAIT`] while its directory is locked: sled
/// releases the lock from a background thread some time after the last handle of a
/// store drops, so a store closed and opened again at once could otherwise be refused.
/// A store held open elsewhere is still refused, [`LOCK_WAIT`] later, saying so (sled's
/// own message is the OS error's debug form).
fn open_when_unlocked(config: &sled::Config, path: Option<&Path>) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::Other
                    && e.to_string().contains("could not acquire lock") =>
            {
                if std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                let place =
                    path.map_or("a temporary directory".into(), |p| p.display().to_string());
                return Err(Error::Storage {
                    message: format!(
                        "the store in {place} is open elsewhere: another process (or another \
                         handle in this one) holds its lock"
                    ),
                    source: Some(Box::new(sled::Error::Io(e))),
                });
            }
            other => return other.map_err(storage),
        }
    }
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.tree(tree)?.get(key).map_err(storage)?.map(Bytes::new))
    }

    fn range<'a>(
        &'a self,
        tree: Tree,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        direction: Direction,
    ) -> Scan<'a> {
        let t = match self.tree(tree) {
            Ok(t) => t,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let own = |b: Bound<&[u8]>| b.map(sled::IVec::from);
        let iter = t.range::<sled::IVec, _>((own(from), own(to)));
        let map = |r: sled::Result<(sled::IVec, sled::IVec)>| {
            r.map(|(k, v)| (Bytes::new(k), Bytes::new(v)))
                .map_err(storage)
        };
        match direction {
            Direction::Forward => Box::new(iter.map(map)),
            Direction::Reverse => Box::new(iter.rev().map(map)),
        }
    }

    fn apply(&self, batch: &WriteBatch) -> Result<()> {
        let mut trees: Vec<sled::Tree> = Vec::new();
        let mut batches: Vec<sled::Batch> = Vec::new();
        let mut current: Option<Tree> = None;
        for (tree, key, value) in batch.ops() {
            if current != Some(tree) {
                current = Some(tree);
                trees.push(self.tree(tree)?.clone());
                batches.push(sled::Batch::default());
            }
            if let Some(b) = batches.last_mut() {
                match value {
                    Some(v) => b.insert(key, v),
                    None => b.remove(key),
                }
            }
        }
        let result: std::result::Result<(), TransactionError<()>> =
            trees.as_slice().transaction(|views| {
                for (view, b) in views.iter().zip(&batches) {
                    view.apply_batch(b)?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| match e {
            TransactionError::Storage(e) => storage(e),
            TransactionError::Abort(()) => Error::internal("transaction aborted"),
        })
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(storage)
    }
}
