//! Storage: ordered key-value trees, atomic multi-tree writes and range scans.
//! Every call into sled lives below this module; the rest of permdb sees only [`Store`].

pub(crate) mod codec;
mod frame;
pub(crate) mod keys;
mod overlay;
mod redb_backend;
mod sled_backend;

use std::collections::BTreeMap;
use std::ops::{Bound, Deref};
use std::sync::Arc;

use crate::error::Result;

pub(crate) use frame::CHECKSUM_LEN;
pub(crate) use redb_backend::RedbBackend;
pub(crate) use sled_backend::SledBackend;

/// Which engine holds the store in directory `dir`: the one it was made with, found by
/// its files (redb's `permdb.redb`; sled's `conf`); `None` for a directory that holds no
/// store yet. A directory holding both, or one that cannot be looked into, is an error:
/// never a guess that could hide a store behind a new, empty one.
pub(crate) fn engine_of(dir: &std::path::Path) -> Result<Option<crate::options::StorageEngine>> {
    let exists = |name: &str| {
        dir.join(name).try_exists().map_err(|e| {
            crate::error::Error::storage(format!("cannot look into {}", dir.display()), e)
        })
    };
    match (exists(redb_backend::FILE)?, exists("conf")?) {
        (true, true) => Err(crate::error::Error::storage(
            format!("{} holds both a redb and a sled store", dir.display()),
            std::io::Error::other("refused: move one of them away"),
        )),
        (true, false) => Ok(Some(crate::options::StorageEngine::Redb)),
        (false, true) => Ok(Some(crate::options::StorageEngine::Sled)),
        (false, false) => Ok(None),
    }
}

/// Compacts the closed store in `dir`: its engine's files before and after, or `None` for
/// an engine that compacts as it goes (sled, whose segments are rewritten in the
/// background and which offers no call for it). The store must not be open.
pub(crate) fn compact(dir: &std::path::Path) -> Result<Option<(u64, u64)>> {
    match engine_of(dir)? {
        Some(crate::options::StorageEngine::Redb) => redb_backend::compact(dir).map(Some),
        Some(_) => Ok(None),
        None => Err(crate::error::Error::InvalidArgument(format!(
            "{} holds no permdb store",
            dir.display()
        ))),
    }
}

/// The format version stored in `store` (format 1 stored it without a checksum).
pub(crate) fn stored_version(store: &Store) -> Result<Option<u32>> {
    let raw = match store.get(Tree::Meta, keys::VERSION) {
        Ok(v) => v.map(|v| v.to_vec()),
        Err(e) => match store.get_unverified(Tree::Meta, keys::VERSION)? {
            Some(raw) if raw.len() == 4 => Some(raw.to_vec()),
            _ => return Err(e),
        },
    };
    raw.map(|v| {
        <[u8; 4]>::try_from(v.as_slice())
            .map(u32::from_le_bytes)
            .map_err(|_| crate::error::Error::corrupt("format version", "not 4 bytes"))
    })
    .transpose()
}

/// The trees of a store. Their byte layouts are in [`keys`] and docs/ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Tree {
    /// Format version, counters, schemas, collections.
    Meta,
    /// Documents by (collection number, sequence), and the changes feed's records
    /// (`keys::FEED`).
    Docs,
    /// Document sequence by (collection number, document id).
    DocIds,
    /// Permission and live-set bitmap containers.
    PermIndex,
    /// Users, sessions, API keys, teams, memberships, token signing keys, used one-time tokens.
    Auth,
    /// Key and unique index entries: ordered (values, sequence) keys.
    AttrIndex,
}

impl Tree {
    pub(crate) const ALL: [Tree; 6] = [
        Tree::Meta,
        Tree::Docs,
        Tree::DocIds,
        Tree::PermIndex,
        Tree::Auth,
        Tree::AttrIndex,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Docs => "docs",
            Tree::DocIds => "doc_ids",
            Tree::PermIndex => "perm_index",
            Tree::Auth => "auth",
            Tree::AttrIndex => "attr_index",
        }
    }
}

/// Bytes read from the store, borrowed from the engine's buffer without a copy.
/// Past the backend, `len` excludes the value's checksum (see [`frame`]).
#[derive(Debug, Clone)]
pub(crate) struct Bytes {
    buf: sled::IVec,
    // INVARIANT (bytes-len): `len <= buf.len()`; set by `new` and only lowered by `truncated`.
    len: usize,
}

impl Bytes {
    fn new(buf: sled::IVec) -> Bytes {
        let len = buf.len();
        Bytes { buf, len }
    }

    /// The first `len` bytes (no more than there are).
    fn truncated(self, len: usize) -> Bytes {
        Bytes {
            len: len.min(self.len),
            buf: self.buf,
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Iteration order of a range scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Reverse,
}

/// A key-value pair yielded by a range scan.
pub(crate) type Entry = (Bytes, Bytes);
/// A range scan over one tree.
pub(crate) type Scan<'a> = Box<dyn Iterator<Item = Result<Entry>> + Send + 'a>;

/// Writes to several trees that are applied all together or not at all.
/// A later write to the same key replaces an earlier one.
#[derive(Debug, Default, Clone)]
pub(crate) struct WriteBatch {
    ops: BTreeMap<(Tree, Vec<u8>), Option<Vec<u8>>>,
}

impl WriteBatch {
    /// Puts `value` at `key`, sealed with its checksum.
    pub(crate) fn put(&mut self, tree: Tree, key: Vec<u8>, mut value: Vec<u8>) {
        frame::seal(tree, &key, &mut value);
        self.ops.insert((tree, key), Some(value));
    }

    pub(crate) fn remove(&mut self, tree: Tree, key: Vec<u8>) {
        self.ops.insert((tree, key), None);
    }

    /// Whether this batch removes `key` from `tree`.
    pub(crate) fn removes(&self, tree: Tree, key: &[u8]) -> bool {
        matches!(self.ops.get(&(tree, key.to_vec())), Some(None))
    }

    /// Whether this batch puts a key `prefix` + 4 bytes other than `prefix` + `seq` into `tree`.
    pub(crate) fn puts_with_prefix(&self, tree: Tree, prefix: &[u8], seq: u32) -> bool {
        let start = (tree, prefix.to_vec());
        self.ops
            .range(start..)
            .take_while(|((t, k), _)| *t == tree && k.starts_with(prefix))
            .any(|((_, k), v)| {
                v.is_some()
                    && k.len() == prefix.len() + 4
                    && k.get(prefix.len()..) != Some(&seq.to_be_bytes()[..])
            })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Adds `later`'s writes; where both write a key, `later`'s stands.
    pub(crate) fn extend(&mut self, later: WriteBatch) {
        self.ops.extend(later.ops);
    }

    /// The writes, grouped by tree in key order.
    pub(crate) fn ops(&self) -> impl Iterator<Item = (Tree, &[u8], Option<&[u8]>)> {
        self.ops
            .iter()
            .map(|((t, k), v)| (*t, k.as_slice(), v.as_deref()))
    }
}

/// What a storage engine must offer permdb.
pub(crate) trait Backend: Send + Sync {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Bytes>>;
    fn range<'a>(
        &'a self,
        tree: Tree,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        direction: Direction,
    ) -> Scan<'a>;
    /// Applies every write of the batch atomically, also across a crash.
    fn apply(&self, batch: &WriteBatch) -> Result<()>;
    /// Makes every applied write durable.
    fn flush(&self) -> Result<()>;
}

/// A scan whose values have their checksums verified and stripped.
fn unseal_scan(tree: Tree, scan: Scan<'_>) -> Scan<'_> {
    Box::new(scan.map(move |entry| {
        let (key, raw) = entry?;
        let value = frame::unseal(tree, &key, raw)?;
        Ok((key, value))
    }))
}

/// The store handle the rest of the crate uses.
#[derive(Clone)]
pub(crate) struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// This store as it will be once `pending` is applied: reads see its writes.
    /// The view refuses to apply a batch of its own.
    pub(crate) fn with_pending(&self, pending: Arc<WriteBatch>) -> Store {
        Store::new(Arc::new(overlay::Overlay {
            base: self.backend.clone(),
            pending,
        }))
    }

    /// The value at `key`, its checksum verified.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Bytes>> {
        self.backend
            .get(tree, key)?
            .map(|raw| frame::unseal(tree, key, raw))
            .transpose()
    }

    /// The value at `key` with its checksum unchecked and kept. Only for the format
    /// version, whose first four bytes every build must be able to read.
    pub(crate) fn get_unverified(&self, tree: Tree, key: &[u8]) -> Result<Option<Bytes>> {
        self.backend.get(tree, key)
    }

    /// Every entry whose key starts with `prefix`, in `direction` order.
    pub(crate) fn scan_prefix(&self, tree: Tree, prefix: &[u8], direction: Direction) -> Scan<'_> {
        unseal_scan(tree, self.raw_scan_prefix(tree, prefix, direction))
    }

    /// Like [`Store::scan_prefix`], but a value that fails its checksum comes back beside its
    /// key instead of ending the scan: the integrity check repairs such derived records.
    pub(crate) fn scan_prefix_keyed(
        &self,
        tree: Tree,
        prefix: &[u8],
        direction: Direction,
    ) -> impl Iterator<Item = Result<(Bytes, Result<Bytes>)>> + '_ {
        self.raw_scan_prefix(tree, prefix, direction)
            .map(move |entry| {
                let (key, raw) = entry?;
                let value = frame::unseal(tree, &key, raw);
                Ok((key, value))
            })
    }

    fn raw_scan_prefix(&self, tree: Tree, prefix: &[u8], direction: Direction) -> Scan<'_> {
        match keys::prefix_end(prefix) {
            Some(end) => self.backend.range(
                tree,
                Bound::Included(prefix),
                Bound::Excluded(&end),
                direction,
            ),
            None => self
                .backend
                .range(tree, Bound::Included(prefix), Bound::Unbounded, direction),
        }
    }

    /// Entries with keys in `[from, to)`, in `direction` order.
    pub(crate) fn scan_range(
        &self,
        tree: Tree,
        from: &[u8],
        to: &[u8],
        direction: Direction,
    ) -> Scan<'_> {
        let scan = self
            .backend
            .range(tree, Bound::Included(from), Bound::Excluded(to), direction);
        unseal_scan(tree, scan)
    }

    pub(crate) fn apply(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.backend.apply(batch)
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.backend.flush()
    }
}
