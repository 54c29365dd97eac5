//! Bitmaps cached in memory (layout b's cache over layout a's storage: docs/ARCHITECTURE.md, "Permission index"): role
//! bitmaps, and attribute indexes' value -> bitmap for equality, built from their
//! entries. Loaded whole on first use, dropped when a write touches them, bounded in size.
//!
//! INVARIANT (cache-not-stale): an entry equals the stored bitmap (or the bitmap of the
//! stored entries) as of its last write. Writers invalidate the keys their batch
//! touched after applying it and
//! bump `generation`; a reader inserts what it loaded only if `generation` did not
//! move since it began loading, checked under the same lock. A reader that still sees
//! an old entry for a moment fails closed: every returned document's own permissions
//! are re-checked (`query::exec`).
//!
//! The same rule keeps the per-role-set memo current: a memo entry lists the
//! non-empty bitmaps of one role set in one collection, and is dropped with every
//! write to one of the set's role bitmaps there (or, for a batch touching many
//! roles, to any of the collection's).

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock};

use roaring::{MultiOps, RoaringBitmap};

use super::attr::equality_key;
use super::{Counters, IndexKind, bitmap_prefix, load_bitmap};
use crate::error::Result;
use crate::perm::RoleSet;
use crate::store::{Store, Tree, WriteBatch, keys};

/// Most bytes of bitmaps kept; past it the cache starts over.
const MAX_CACHED_BYTES: usize = 64 << 20;

/// Most role-set memo entries kept; past it the memo starts over.
const MAX_MEMOISED_SETS: usize = 4096;

/// Most touched role bitmaps for which a write drops only the memo entries of the sets
/// holding them; a bigger batch drops its collections' entries.
const PRECISE_INVALIDATION_ROLES: usize = 64;

/// The non-empty bitmaps of one role set's roles, in one collection and kind, and the
/// size of their union once asked. Immutable but for that memo, which follows from them.
#[derive(Debug)]
pub(crate) struct RoleBitmaps {
    bitmaps: Vec<Arc<RoaringBitmap>>,
    union_len: OnceLock<u64>,
}

impl RoleBitmaps {
    fn new(bitmaps: Vec<Arc<RoaringBitmap>>) -> RoleBitmaps {
        RoleBitmaps {
            bitmaps,
            union_len: OnceLock::new(),
        }
    }

    /// The bitmaps, none empty.
    pub(crate) fn bitmaps(&self) -> &[Arc<RoaringBitmap>] {
        &self.bitmaps
    }

    /// How many documents their union holds, computed once (container-level union).
    pub(crate) fn union_len(&self) -> u64 {
        *self
            .union_len
            .get_or_init(|| self.bitmaps.iter().map(AsRef::as_ref).union().len())
    }
}

/// (role set fingerprint, collection, kind).
type SetKey = (u64, u32, IndexKind);

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    bytes: usize,
    /// Bitmap prefix (`bitmap_prefix`) -> a bitmap of the permission index tree.
    roles: HashMap<Vec<u8>, Arc<RoaringBitmap>>,
    /// Equality key (`attr::equality_key`) -> the documents with that value.
    values: HashMap<Vec<u8>, Arc<RoaringBitmap>>,
    /// (role set fingerprint, collection, kind) -> the set's keys and its non-empty
    /// bitmaps there. A hit needs equal keys too, so a fingerprint collision only misses.
    sets: HashMap<SetKey, SetEntry>,
}

/// A memo entry: the set's role keys, a 64-bit summary of them for invalidation, and the
/// set's non-empty bitmaps.
#[derive(Debug)]
struct SetEntry {
    keys: Arc<BTreeSet<String>>,
    /// The OR of `role_bit` over `keys`: a write to a role whose bit is not here cannot
    /// touch this set, which spares most entries a lookup in `keys`.
    role_bits: u64,
    bitmaps: Arc<RoleBitmaps>,
}

/// One of 64 bits for a role key (a fixed hash; collisions only cost a lookup).
fn role_bit(role: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    role.hash(&mut hasher);
    1 << (hasher.finish() % 64)
}

/// Which map of [`Inner`] a bitmap lives in.
#[derive(Debug, Clone, Copy)]
enum Space {
    Roles,
    Values,
}

impl Inner {
    fn space(&self, space: Space) -> &HashMap<Vec<u8>, Arc<RoaringBitmap>> {
        match space {
            Space::Roles => &self.roles,
            Space::Values => &self.values,
        }
    }

    fn space_mut(&mut self, space: Space) -> &mut HashMap<Vec<u8>, Arc<RoaringBitmap>> {
        match space {
            Space::Roles => &mut self.roles,
            Space::Values => &mut self.values,
        }
    }

    fn forget(&mut self, space: Space, key: &[u8]) {
        if let Some(old) = self.space_mut(space).remove(key) {
            self.bytes = self.bytes.saturating_sub(old.serialized_size());
        }
    }

    fn clear(&mut self) {
        self.roles.clear();
        self.values.clear();
        self.sets.clear();
        self.bytes = 0;
    }
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
        let key = bitmap_prefix(cid, kind, role);
        let (bitmap, hit) = self.cached(Space::Roles, key, || {
            load_bitmap(store, cid, kind, role, counters)
        })?;
        if hit {
            counters.bitmap_opened(); // `load_bitmap` counts the misses
        }
        Ok(bitmap)
    }

    /// The documents whose first value in an attribute index is the one `key` ends with
    /// (`key` = index prefix and encoded value, as `attr::equality_key`), from memory or
    /// from `load`.
    pub(crate) fn equality(
        &self,
        key: Vec<u8>,
        load: impl FnOnce() -> Result<RoaringBitmap>,
    ) -> Result<Arc<RoaringBitmap>> {
        Ok(self.cached(Space::Values, key, load)?.0)
    }

    /// The bitmap at `key`, and whether it was already in memory.
    fn cached(
        &self,
        space: Space,
        key: Vec<u8>,
        load: impl FnOnce() -> Result<RoaringBitmap>,
    ) -> Result<(Arc<RoaringBitmap>, bool)> {
        let seen = {
            let inner = self.read();
            if let Some(hit) = inner.space(space).get(&key) {
                return Ok((Arc::clone(hit), true));
            }
            inner.generation
        };
        let loaded = Arc::new(load()?);
        let mut inner = self.write();
        if inner.generation == seen {
            let size = loaded.serialized_size();
            if inner.bytes + size > MAX_CACHED_BYTES {
                // The memo goes too: its bitmaps would outlive the bound.
                inner.clear();
            }
            inner.bytes += size;
            inner.space_mut(space).insert(key, Arc::clone(&loaded));
        }
        Ok((loaded, false))
    }

    /// The non-empty bitmaps of `roles` in `(cid, kind)`, memoised per role set, so a
    /// client holding many roles looks them up once per write to the collection, not
    /// once per query (and so do other clients with the same roles). Empty bitmaps are
    /// left out: they add nothing to a union or merge.
    pub(crate) fn role_bitmaps(
        &self,
        store: &Store,
        cid: u32,
        kind: IndexKind,
        roles: &RoleSet,
        counters: &Counters,
    ) -> Result<Arc<RoleBitmaps>> {
        let key = (roles.fingerprint(), cid, kind);
        let mine = roles.shared_keys();
        let seen = {
            let inner = self.read();
            match inner.sets.get(&key) {
                // The same set, or an equal one (another client of the same user).
                Some(entry) if Arc::ptr_eq(&entry.keys, mine) || entry.keys == *mine => {
                    let hit = &entry.bitmaps;
                    hit.bitmaps().iter().for_each(|_| counters.bitmap_opened());
                    return Ok(Arc::clone(hit));
                }
                _ => inner.generation,
            }
        };
        let mut found = Vec::new();
        for role in roles.keys() {
            let bitmap = self.get(store, cid, kind, role, counters)?;
            if !bitmap.is_empty() {
                found.push(bitmap);
            }
        }
        let found = Arc::new(RoleBitmaps::new(found));
        let role_bits = roles.keys().fold(0, |bits, role| bits | role_bit(role));
        let mut inner = self.write();
        // Same rule as `get`: only what was read with no write in between is kept.
        if inner.generation == seen {
            if inner.sets.len() >= MAX_MEMOISED_SETS {
                inner.sets.clear();
            }
            let entry = SetEntry {
                keys: Arc::clone(mine),
                role_bits,
                bitmaps: Arc::clone(&found),
            };
            inner.sets.insert(key, entry);
        }
        Ok(found)
    }

    /// Bytes of bitmaps held (their serialized size).
    pub(crate) fn bytes(&self) -> usize {
        self.read().bytes
    }

    /// Drops every cached bitmap a just-applied batch touched.
    pub(crate) fn invalidate(&self, batch: &WriteBatch) {
        let mut touched = batch
            .ops()
            .filter(|(tree, _, _)| matches!(tree, Tree::PermIndex | Tree::AttrIndex))
            .peekable();
        if touched.peek().is_none() {
            return;
        }
        let mut inner = self.write();
        // Role bitmaps the batch touched: a memo entry goes when its set holds one.
        let mut roles: Vec<(u32, u8, &str, u64)> = Vec::new();
        // Collections whose memo entries all go (a prefix this build does not parse).
        let mut collections: Vec<u32> = Vec::new();
        for (tree, key, _) in touched {
            if tree == Tree::AttrIndex {
                match equality_key(key) {
                    Some(k) => inner.forget(Space::Values, k),
                    // Not an entry this build wrote: forget everything, to be safe.
                    None => inner.clear(),
                }
                continue;
            }
            // A container key is its bitmap's prefix and two bytes of high bits.
            let Some(prefix) = key.get(..key.len().saturating_sub(2)) else {
                continue;
            };
            inner.forget(Space::Roles, prefix);
            match keys::bitmap_parts(prefix) {
                Some((cid, kind, role)) => roles.push((cid, kind, role, role_bit(role))),
                None => collections.extend(keys::key_collection(prefix)),
            }
        }
        if roles.len() > PRECISE_INVALIDATION_ROLES {
            // A big batch: checking every set against every role would cost more than
            // rebuilding the collection's entries.
            collections.extend(roles.iter().map(|(cid, _, _, _)| *cid));
            roles.clear();
        }
        inner.sets.retain(|(_, cid, kind), entry| {
            !collections.contains(cid)
                && !roles.iter().any(|(c, k, role, bit)| {
                    c == cid
                        && *k == *kind as u8
                        && entry.role_bits & bit != 0
                        && entry.keys.contains(*role)
                })
        });
        inner.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexEdits;
    use crate::perm::UserFacts;
    use crate::store::SledBackend;

    fn user(id: &str) -> RoleSet {
        RoleSet::user(&UserFacts {
            id: id.into(),
            ..UserFacts::default()
        })
    }

    /// Grants read in collection 7 on `seq` to `role`, and tells the cache.
    fn grant(store: &Store, cache: &BitmapCache, role: &str, seq: u32) {
        let mut edits = IndexEdits::default();
        edits.add(7, IndexKind::Read, role, seq);
        let mut batch = WriteBatch::default();
        edits.write(store, &mut batch).unwrap();
        store.apply(&batch).unwrap();
        cache.invalidate(&batch);
    }

    fn union(bitmaps: &RoleBitmaps) -> Vec<u32> {
        let mut all = RoaringBitmap::new();
        for b in bitmaps.bitmaps() {
            all |= b.as_ref();
        }
        assert_eq!(bitmaps.union_len(), all.len());
        all.iter().collect()
    }

    #[test]
    fn role_set_memo_follows_writes_and_never_mixes_up_sets() {
        let store = Store::new(Arc::new(SledBackend::open(None, 1 << 20, None).unwrap()));
        let cache = BitmapCache::default();
        let counters = Counters::default();
        let (a, b) = (user("a"), user("b"));
        grant(&store, &cache, "user:a", 1);
        grant(&store, &cache, "user:b", 2);
        let seen = |set: &RoleSet| {
            union(
                &cache
                    .role_bitmaps(&store, 7, IndexKind::Read, set, &counters)
                    .unwrap(),
            )
        };
        assert_eq!(seen(&a), [1]);
        // Memoised: only the non-empty bitmap is listed.
        assert_eq!(
            cache
                .role_bitmaps(&store, 7, IndexKind::Read, &a, &counters)
                .unwrap()
                .bitmaps()
                .len(),
            1
        );
        // A write to a role outside the set keeps its memo: a hit opens only the
        // non-empty bitmaps, a rebuild looks up every role of the set.
        grant(&store, &cache, "user:b", 4);
        let fresh = Counters::default();
        cache
            .role_bitmaps(&store, 7, IndexKind::Read, &a, &fresh)
            .unwrap();
        assert_eq!(fresh.bitmaps.get(), 1);
        // A role that was empty when the memo was made gains a document.
        grant(&store, &cache, "any", 3);
        assert_eq!(seen(&a), [1, 3]);
        // An equal set made separately shares the memo; a different set with the same
        // fingerprint does not get it.
        assert_eq!(seen(&user("a")), [1, 3]);
        let forged = b.clone().with_fingerprint(a.fingerprint());
        assert_eq!(seen(&forged), [2, 3, 4]);
        assert_eq!(seen(&a), [1, 3]);
    }
}
