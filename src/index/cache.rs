//! Role bitmaps cached in memory (DESIGN §4 layout b's cache over layout a's storage):
//! loaded whole on first use, dropped when a write touches them, bounded in size.
//!
//! INVARIANT (cache-not-stale): an entry equals the stored bitmap as of its last
//! write. Writers invalidate the prefixes their batch touched after applying it and
//! bump `generation`; a reader inserts what it loaded only if `generation` did not
//! move since it began loading, checked under the same lock. A reader that still sees
//! an old entry for a moment fails closed: every returned document's own permissions
//! are re-checked (`query::exec`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use roaring::RoaringBitmap;

use super::{Counters, IndexKind, bitmap_prefix, load_bitmap};
use crate::error::Result;
use crate::store::{Store, Tree, WriteBatch};

/// Most bytes of bitmaps kept; past it the cache starts over.
const MAX_CACHED_BYTES: usize = 64 << 20;

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    bytes: usize,
    map: HashMap<Vec<u8>, Arc<RoaringBitmap>>,
}

#[derive(Debug, Default)]
pub(crate) struct BitmapCache {
    inner: RwLock<Inner>,
}

impl BitmapCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bitmap of `(cid, kind, role)`, from memory or loaded from the store.
    pub(crate) fn get(
        &self,
        store: &Store,
        cid: u32,
        kind: IndexKind,
        role: &str,
        counters: &Counters,
    ) -> Result<Arc<RoaringBitmap>> {
        let prefix = bitmap_prefix(cid, kind, role);
        let seen = {
            let inner = self.read();
            if let Some(hit) = inner.map.get(&prefix) {
                counters.bitmap_opened();
                return Ok(Arc::clone(hit));
            }
            inner.generation
        };
        let loaded = Arc::new(load_bitmap(store, cid, kind, role, counters)?);
        let mut inner = self.write();
        if inner.generation == seen {
            let size = loaded.serialized_size();
            if inner.bytes + size > MAX_CACHED_BYTES {
                inner.map.clear();
                inner.bytes = 0;
            }
            inner.bytes += size;
            inner.map.insert(prefix, Arc::clone(&loaded));
        }
        Ok(loaded)
    }

    /// Bytes of bitmaps held (their serialized size).
    pub(crate) fn bytes(&self) -> usize {
        self.read().bytes
    }

    /// Drops every cached bitmap a just-applied batch touched.
    pub(crate) fn invalidate(&self, batch: &WriteBatch) {
        let mut touched = batch
            .ops()
            .filter(|(tree, _, _)| *tree == Tree::PermIndex)
            .filter_map(|(_, key, _)| key.get(..key.len().checked_sub(2)?))
            .peekable();
        if touched.peek().is_none() {
            return;
        }
        let mut inner = self.write();
        for prefix in touched {
            if let Some(old) = inner.map.remove(prefix) {
                inner.bytes = inner.bytes.saturating_sub(old.serialized_size());
            }
        }
        inner.generation += 1;
    }
}
