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
//! non-empty bitmaps of one role set in one collection (and, once asked, their union),
//! and is dropped with every write to one of the set's role bitmaps there (or, for a
//! batch touching many roles, to any of the collection's).

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

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

/// Most bytes of role-set unions kept with their memo entries (part of
/// `MAX_CACHED_BYTES`); past it every kept union goes and they start over.
const MAX_UNION_BYTES: usize = 16 << 20;

/// Most touched role bitmaps for which a write drops only the memo entries of the sets
/// holding them; a bigger batch drops its collections' entries.
const PRECISE_INVALIDATION_ROLES: usize = 64;

/// Most sizes [`RoleBitmaps::met_len`] keeps for one role set; past it they start over.
const MAX_MET_LENS: usize = 32;

/// The non-empty bitmaps of one role set's roles, in one collection and kind, and the
/// size of their union once asked. Immutable but for those memos, which follow from them.
#[derive(Debug)]
pub(crate) struct RoleBitmaps {
    bitmaps: Vec<Arc<RoaringBitmap>>,
    union_len: OnceLock<u64>,
    /// Sizes of the union's intersection with other bitmaps, by those bitmaps'
    /// identity ([`RoleBitmaps::met_len`]).
    met_lens: Mutex<Vec<(Weak<RoaringBitmap>, u64)>>,
}

impl RoleBitmaps {
    fn new(bitmaps: Vec<Arc<RoaringBitmap>>) -> RoleBitmaps {
        RoleBitmaps {
            bitmaps,
            union_len: OnceLock::new(),
            met_lens: Mutex::new(Vec::new()),
        }
    }

    /// How many documents are in both `union` (which must be the union of these
    /// bitmaps: `BitmapCache::role_union`) and `other`, memoised by `other`'s identity,
    /// so that the total of a page filtered by one cached index value costs one lookup
    /// until a write replaces either side.
    ///
    /// Never stale: `other` is never mutated (no bitmap behind an `Arc` is), and a held
    /// `Weak` keeps its allocation, so while the memo holds its size no other bitmap can
    /// have its address. A write to the value gives a new `Arc`, a write to one of the
    /// roles a new `RoleBitmaps`: either misses.
    pub(crate) fn met_len(&self, union: &RoaringBitmap, other: &Arc<RoaringBitmap>) -> u64 {
        let mine = |memo: &[(Weak<RoaringBitmap>, u64)]| {
            memo.iter()
                .find(|(seen, _)| std::ptr::eq(seen.as_ptr(), Arc::as_ptr(other)))
                .map(|(_, len)| *len)
        };
        if let Some(len) = mine(&self.met_lens()) {
            return len;
        }
        let len = union.intersection_len(other);
        let mut memo = self.met_lens();
        if mine(&memo).is_none() {
            // Entries whose bitmap is gone cannot hit again: they go first.
            memo.retain(|(seen, _)| seen.strong_count() > 0);
            if memo.len() >= MAX_MET_LENS {
                memo.clear();
            }
            memo.push((Arc::downgrade(other), len));
        }
        len
    }

    fn met_lens(&self) -> std::sync::MutexGuard<'_, Vec<(Weak<RoaringBitmap>, u64)>> {
        self.met_lens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// Bytes held: bitmaps of both spaces and the unions of `sets` (serialized sizes).
    bytes: usize,
    /// The part of `bytes` held by the unions of `sets`.
    union_bytes: usize,
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
    /// The union of `bitmaps`, once a query that needs it whole asked for it
    /// ([`BitmapCache::role_union`]); it goes with the entry.
    union: Option<Arc<RoaringBitmap>>,
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

    /// Drops the memo entries `drop` selects, and the bytes of their unions.
    fn drop_sets(&mut self, mut drop: impl FnMut(&SetKey, &SetEntry) -> bool) {
        let mut freed = 0;
        self.sets.retain(|key, entry| {
            let gone = drop(key, entry);
            if gone {
                freed += entry.union.as_ref().map_or(0, |u| u.serialized_size());
            }
            !gone
        });
        self.union_bytes = self.union_bytes.saturating_sub(freed);
        self.bytes = self.bytes.saturating_sub(freed);
    }

    /// Drops every kept union, leaving the memo entries.
    fn drop_unions(&mut self) {
        self.sets.values_mut().for_each(|entry| entry.union = None);
        self.bytes = self.bytes.saturating_sub(self.union_bytes);
        self.union_bytes = 0;
    }

    fn clear(&mut self) {
        self.roles.clear();
        self.values.clear();
        self.sets.clear();
        self.bytes = 0;
        self.union_bytes = 0;
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
                inner.drop_sets(|_, _| true);
            }
            let entry = SetEntry {
                keys: Arc::clone(mine),
                role_bits,
                bitmaps: Arc::clone(&found),
                union: None,
            };
            // Another reader may have memoised the set meanwhile: its union goes with it.
            if let Some(old) = inner.sets.insert(key, entry)
                && let Some(union) = old.union
            {
                let size = union.serialized_size();
                inner.union_bytes = inner.union_bytes.saturating_sub(size);
                inner.bytes = inner.bytes.saturating_sub(size);
            }
        }
        Ok(found)
    }

    /// The union of `set`, which [`BitmapCache::role_bitmaps`] returned for `roles` in
    /// `(cid, kind)`: kept with the set's memo entry (while unions fit in
    /// `MAX_UNION_BYTES`), so a query that needs the union whole (to meet an index's
    /// answer, or for another order than `$sequence`) builds it once per write to the
    /// set's roles, not once per query.
    ///
    /// Never stale: the union is kept only with the very entry `set` came from (its
    /// bitmaps are immutable), and goes when that entry does (`invalidate`).
    pub(crate) fn role_union(
        &self,
        roles: &RoleSet,
        cid: u32,
        kind: IndexKind,
        set: &Arc<RoleBitmaps>,
    ) -> Arc<RoaringBitmap> {
        let key = (roles.fingerprint(), cid, kind);
        // Whether `set` is the memo's entry with no union yet: then the union is kept.
        let mine = |inner: &Inner| {
            inner
                .sets
                .get(&key)
                .is_some_and(|e| Arc::ptr_eq(&e.bitmaps, set) && e.union.is_none())
        };
        let keep = {
            let inner = self.read();
            if let Some(entry) = inner.sets.get(&key)
                && Arc::ptr_eq(&entry.bitmaps, set)
                && let Some(union) = &entry.union
            {
                return Arc::clone(union);
            }
            mine(&inner)
        };
        let union = Arc::new(set.bitmaps().iter().map(AsRef::as_ref).union());
        let size = union.serialized_size();
        if !keep || size > MAX_UNION_BYTES {
            return union;
        }
        let mut inner = self.write();
        if mine(&inner) {
            if inner.union_bytes + size > MAX_UNION_BYTES {
                inner.drop_unions();
            }
            if inner.bytes + size > MAX_CACHED_BYTES {
                inner.clear(); // the entry goes too: nothing is kept this time
            } else if let Some(entry) = inner.sets.get_mut(&key) {
                entry.union = Some(Arc::clone(&union));
                inner.union_bytes += size;
                inner.bytes += size;
            }
        }
        union
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
        inner.drop_sets(|(_, cid, kind), entry| {
            collections.contains(cid)
                || roles.iter().any(|(c, k, role, bit)| {
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

    #[test]
    fn a_kept_union_goes_with_its_set_and_its_bytes_are_counted() {
        let store = Store::new(Arc::new(SledBackend::open(None, 1 << 20, None).unwrap()));
        let cache = BitmapCache::default();
        let counters = Counters::default();
        let a = user("a");
        grant(&store, &cache, "user:a", 1);
        grant(&store, &cache, "any", 70_000);
        let set = cache
            .role_bitmaps(&store, 7, IndexKind::Read, &a, &counters)
            .unwrap();
        let before = cache.bytes();
        let union = cache.role_union(&a, 7, IndexKind::Read, &set);
        assert_eq!(union.iter().collect::<Vec<_>>(), [1, 70_000]);
        let size = union.serialized_size();
        assert_eq!(cache.bytes(), before + size);
        assert_eq!(cache.read().union_bytes, size);
        // Kept: the same union again.
        let again = cache.role_union(&a, 7, IndexKind::Read, &set);
        assert!(Arc::ptr_eq(&union, &again));
        // A write to one of the set's roles drops the entry and its union's bytes.
        grant(&store, &cache, "any", 5);
        assert_eq!(cache.read().union_bytes, 0);
        let fresh = cache
            .role_bitmaps(&store, 7, IndexKind::Read, &a, &counters)
            .unwrap();
        assert!(!Arc::ptr_eq(&set, &fresh));
        let now = cache.role_union(&a, 7, IndexKind::Read, &fresh);
        assert_eq!(now.iter().collect::<Vec<_>>(), [1, 5, 70_000]);
        // The old set (a query that began before the write) still gets its own union,
        // built for it and not kept in the place of the current one.
        let old = cache.role_union(&a, 7, IndexKind::Read, &set);
        assert_eq!(old.iter().collect::<Vec<_>>(), [1, 70_000]);
        let current = cache.role_union(&a, 7, IndexKind::Read, &fresh);
        assert!(Arc::ptr_eq(&now, &current));
        assert_eq!(cache.read().union_bytes, now.serialized_size());
        // An entry replaced under the same key (here a set with a colliding
        // fingerprint) takes its union's bytes with it.
        let forged = user("b").with_fingerprint(a.fingerprint());
        cache
            .role_bitmaps(&store, 7, IndexKind::Read, &forged, &counters)
            .unwrap();
        let inner = cache.read();
        assert_eq!(inner.union_bytes, 0);
        let bitmaps = inner.roles.values().chain(inner.values.values());
        assert_eq!(
            inner.bytes,
            bitmaps.map(|b| b.serialized_size()).sum::<usize>()
        );
        drop(inner);
        let fresh = cache
            .role_bitmaps(&store, 7, IndexKind::Read, &a, &counters)
            .unwrap();
        cache.role_union(&a, 7, IndexKind::Read, &fresh);
        // Unions past their budget start over; the memo entries stay.
        cache.write().union_bytes = MAX_UNION_BYTES;
        let b = user("b");
        let b_set = cache
            .role_bitmaps(&store, 7, IndexKind::Read, &b, &counters)
            .unwrap();
        cache.role_union(&b, 7, IndexKind::Read, &b_set);
        let inner = cache.read();
        assert_eq!(inner.sets.len(), 2);
        let kept: Vec<bool> = inner.sets.values().map(|e| e.union.is_some()).collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 1);
    }

    #[test]
    fn an_intersection_size_is_memoised_by_the_bitmaps_identity_only() {
        let bits = |v: &[u32]| v.iter().copied().collect::<RoaringBitmap>();
        let set = RoleBitmaps::new(vec![Arc::new(bits(&[1, 2, 3]))]);
        let union = bits(&[1, 2, 3]);
        let other = Arc::new(bits(&[2, 3, 4]));
        assert_eq!(set.met_len(&union, &other), 2);
        // Memoised: the same bitmap is not counted again (an empty union proves it).
        assert_eq!(set.met_len(&RoaringBitmap::new(), &other), 2);
        // Equal contents under another identity are counted.
        let twin = Arc::new(bits(&[2, 3, 4]));
        assert_eq!(set.met_len(&RoaringBitmap::new(), &twin), 0);
        // Once a bitmap is dropped, new bitmaps (the allocator would reuse its address
        // were it not held) never take its size.
        drop(other);
        for i in 0..100u32 {
            let next = Arc::new(bits(&[i + 10]));
            assert_eq!(set.met_len(&union, &next), 0);
        }
    }
}
