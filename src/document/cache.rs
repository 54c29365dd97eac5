//! Decoded documents kept in memory, so that a warm page or fetch skips the storage read,
//! the checksum, the codec and rebuilding the JSON; bounded in bytes, least recently used out.
//!
//! INVARIANT (document-cache-not-stale): an entry equals the stored record of its
//! `(collection, sequence)` as of the last write to that key. Writers drop the keys their
//! batch wrote after applying it (`Engine::commit`, through `Applying`) and move their
//! shard's `generation` under the same lock; a reader inserts what it read only if its
//! shard's `generation` did not move since before it read, checked under that lock. So
//! a record read before a write is never put back after the write dropped its key. Only
//! the committed store is read through this cache: a view with pending writes must not be.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{DocRecord, Document, load_record};
use crate::error::{Error, Result};
use crate::perm::{Grant, Permission};
use crate::store::{Store, Tree, WriteBatch, keys};
use crate::timefmt;
use crate::value;

/// Locks the cache is split under, so that readers of different documents rarely meet.
const SHARDS: usize = 16;

/// A document record decoded into what a client gets back, and the grants it is read
/// by. What the cache holds; also the one way from a record to a [`Document`].
#[derive(Debug)]
pub(crate) struct DecodedDocument {
    id: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    grants: Vec<Grant>,
    permissions: Arc<[Permission]>,
    data: Arc<Map<String, Value>>,
}

impl DecodedDocument {
    /// Decodes `record`'s permissions, times and attributes (nested at most
    /// `max_depth`); a bad one is corruption of the document `where_` names.
    pub(crate) fn of_record(
        record: DocRecord,
        max_depth: usize,
        where_: impl Fn() -> String,
    ) -> Result<DecodedDocument> {
        let permissions = record
            .permissions
            .iter()
            .map(|p| p.to_permission().map_err(|e| Error::corrupt(where_(), e)))
            .collect::<Result<Arc<[Permission]>>>()?;
        let data = match value::rebuild(record.nodes, max_depth)
            .map_err(|e| Error::corrupt(where_(), e))?
        {
            Value::Object(map) => map,
            _ => return Err(Error::corrupt(where_(), "attributes are not an object")),
        };
        Ok(DecodedDocument {
            created_at: timefmt::from_millis(record.created_ms)
                .map_err(|e| Error::corrupt(where_(), e))?,
            updated_at: timefmt::from_millis(record.updated_ms)
                .map_err(|e| Error::corrupt(where_(), e))?,
            id: record.id,
            grants: record.permissions,
            permissions,
            data: Arc::new(data),
        })
    }

    /// The document's stored grants, for `perm::decide`.
    pub(crate) fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The public form, as document `sequence` of collection `collection_id` in schema
    /// `database_id`. Shares the permissions and attributes: no JSON is copied.
    pub(crate) fn to_document(
        &self,
        sequence: u32,
        database_id: &str,
        collection_id: &str,
    ) -> Document {
        Document {
            id: self.id.clone(),
            sequence: u64::from(sequence),
            collection_id: collection_id.to_owned(),
            database_id: database_id.to_owned(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            permissions: Arc::clone(&self.permissions),
            data: Arc::clone(&self.data),
        }
    }
}

/// What one heap allocation of `n` bytes costs, rounded as glibc's malloc does: a header
/// of 8 bytes, 16-byte steps, 32 bytes at least.
fn allocation(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// Bytes of one node of `serde_json::Map` (a `BTreeMap<String, Value>`): 11 keys and
/// values and the node's header; an internal node adds 12 child pointers.
const MAP_LEAF: usize = 11 * (24 + 32) + 16;
const MAP_INTERNAL: usize = MAP_LEAF + 12 * 8;

/// The heap `map`'s B-tree and everything in it hold, allocations rounded.
fn map_bytes(map: &Map<String, Value>) -> usize {
    let leaves = map.len().div_ceil(11);
    let internal = if leaves > 1 { leaves.div_ceil(6) } else { 0 };
    leaves * allocation(MAP_LEAF)
        + internal * allocation(MAP_INTERNAL)
        + map
            .iter()
            .map(|(k, v)| allocation(k.capacity()) + value_heap(v))
            .sum::<usize>()
}

/// The heap a JSON value holds beyond its own slot.
fn value_heap(v: &Value) -> usize {
    match v {
        Value::String(s) => allocation(s.capacity()),
        Value::Array(items) => {
            allocation(items.capacity() * std::mem::size_of::<Value>())
                + items.iter().map(value_heap).sum::<usize>()
        }
        Value::Object(map) => map_bytes(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// About the memory a cached `doc` holds: its `Arc` and struct, id, grants, permissions
/// (each role's strings), attributes, and its cache entry. Checked against a counting
/// allocator by `tests/document_cache_memory.rs`.
fn estimated_bytes(doc: &DecodedDocument) -> usize {
    /// The LRU's node and hash slot, and the entry's key and size.
    const ENTRY: usize = 96;
    let roles: usize = doc.grants.iter().map(|g| allocation(g.role().len())).sum();
    ENTRY
        + allocation(16 + std::mem::size_of::<DecodedDocument>())
        + allocation(doc.id.capacity())
        + allocation(doc.grants.capacity() * std::mem::size_of::<Grant>())
        + allocation(16 + doc.permissions.len() * std::mem::size_of::<Permission>())
        // Each grant's role key, and its permission's role's id (about as long).
        + 2 * roles
        + allocation(16 + std::mem::size_of::<Map<String, Value>>())
        + map_bytes(&doc.data)
}

/// One lock's part of the cache: each document with its estimated bytes.
struct Shard {
    entries: LruCache<(u32, u32), (Arc<DecodedDocument>, usize)>,
    bytes: usize,
    /// Moved by every write that drops keys of this shard (INVARIANT
    /// document-cache-not-stale).
    generation: u64,
}

/// Decoded documents by `(collection number, sequence)`, at most about `max_bytes` of
/// them (estimated); 0 caches nothing.
pub(crate) struct DocumentCache {
    shards: Box<[Mutex<Shard>]>,
    shard_bytes: usize,
    hasher: RandomState,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("bytes", &self.bytes())
            .field("max_bytes", &(self.shard_bytes * SHARDS))
            .finish()
    }
}

/// What [`DocumentCache::load`] found at a sequence.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// No document.
    Missing,
    /// A document the caller may not read: not decoded, not kept.
    Hidden,
    /// A document the caller may read.
    Readable(Arc<DecodedDocument>),
}

impl Loaded {
    /// The document, when the caller may read it.
    pub(crate) fn readable(self) -> Option<Arc<DecodedDocument>> {
        match self {
            Loaded::Readable(doc) => Some(doc),
            Loaded::Missing | Loaded::Hidden => None,
        }
    }

    /// The grants of a readable document; none for a hidden one (so a check denies it).
    pub(crate) fn grants(&self) -> &[Grant] {
        match self {
            Loaded::Readable(doc) => doc.grants(),
            Loaded::Missing | Loaded::Hidden => &[],
        }
    }
}

/// A document read from the store on a miss, under its shard's generation `seen`: what
/// [`DocumentCache::keep`] needs to keep it. Only [`DocumentCache::load`] makes one.
#[derive(Debug)]
pub(crate) struct Ticket {
    key: (u32, u32),
    seen: u64,
}

impl DocumentCache {
    /// A cache of at most about `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> DocumentCache {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    entries: LruCache::unbounded(),
                    bytes: 0,
                    generation: 0,
                })
            })
            .collect();
        DocumentCache {
            shards,
            shard_bytes: max_bytes / SHARDS,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: (u32, u32)) -> MutexGuard<'_, Shard> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        self.shards
            .get(index)
            .unwrap_or_else(|| unreachable!("index below SHARDS"))
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Document `seq` of collection `cid`, if it exists and `readable` says its grants
    /// let the caller read it: from memory, or read from the committed `store` and
    /// decoded (nested at most `max_depth`). A document read from the store comes with
    /// the [`Ticket`] that [`DocumentCache::keep`] takes to keep it: a page keeps what it
    /// returns, not what it only looked at (a filter's misses, a sort's, a count's). The
    /// grants are checked before the rest of the record is decoded, so a document the
    /// caller may not read is neither decoded nor kept. A record that fails its checksum
    /// or the codec is corruption, told before its grants can be; one whose attributes
    /// fail to rebuild is corruption of the document `where_` names, told only to a
    /// caller that may read it.
    pub(crate) fn load(
        &self,
        store: &Store,
        (cid, seq): (u32, u32),
        max_depth: usize,
        where_: impl Fn() -> String,
        readable: impl Fn(&[Grant]) -> bool,
    ) -> Result<(Loaded, Option<Ticket>)> {
        let key = (cid, seq);
        let seen = if self.shard_bytes == 0 {
            None
        } else {
            match self.probe(key) {
                Ok(hit) if readable(hit.grants()) => return Ok((Loaded::Readable(hit), None)),
                Ok(_) => return Ok((Loaded::Hidden, None)),
                Err(seen) => Some(seen),
            }
        };
        let Some(record) = load_record(store, cid, seq)? else {
            return Ok((Loaded::Missing, None));
        };
        if !readable(record.grants()) {
            return Ok((Loaded::Hidden, None));
        }
        let decoded = Arc::new(DecodedDocument::of_record(record, max_depth, where_)?);
        Ok((
            Loaded::Readable(decoded),
            seen.map(|seen| Ticket { key, seen }),
        ))
    }

    /// The document held at `key`, or the generation of its shard to read it under.
    fn probe(&self, key: (u32, u32)) -> std::result::Result<Arc<DecodedDocument>, u64> {
        let mut shard = self.shard(key);
        match shard.entries.get(&key) {
            Some((hit, _)) => Ok(Arc::clone(hit)),
            None => Err(shard.generation),
        }
    }

    /// Holds `decoded`, read from the store under `ticket`, unless a write dropped keys of
    /// its shard since; then drops the least recently read documents of the shard past its
    /// bound (freed after the lock is released, so that a writer's `invalidate` never
    /// waits for that).
    pub(crate) fn keep(&self, ticket: Ticket, decoded: &Arc<DecodedDocument>) {
        let Ticket { key, seen } = ticket;
        let bytes = estimated_bytes(decoded);
        if bytes > self.shard_bytes {
            return;
        }
        let mut out = Vec::new();
        let mut shard = self.shard(key);
        // INVARIANT (document-cache-not-stale): what was read before a write that
        // dropped keys of this shard is not kept.
        if shard.generation != seen {
            return;
        }
        if let Some((old, old_bytes)) = shard.entries.put(key, (Arc::clone(decoded), bytes)) {
            shard.bytes -= old_bytes;
            out.push(old);
        }
        shard.bytes += bytes;
        while shard.bytes > self.shard_bytes {
            match shard.entries.pop_lru() {
                Some((_, (old, old_bytes))) => {
                    shard.bytes -= old_bytes;
                    out.push(old);
                }
                None => break,
            }
        }
        drop(shard);
        drop(out);
    }

    /// [`DocumentCache::load`], keeping what it read from the store at once.
    pub(crate) fn load_and_keep(
        &self,
        store: &Store,
        key: (u32, u32),
        max_depth: usize,
        where_: impl Fn() -> String,
        readable: impl Fn(&[Grant]) -> bool,
    ) -> Result<Loaded> {
        let (loaded, ticket) = self.load(store, key, max_depth, where_, readable)?;
        if let (Loaded::Readable(doc), Some(ticket)) = (&loaded, ticket) {
            self.keep(ticket, doc);
        }
        Ok(loaded)
    }

    /// Drops every document a just-applied (or failed) batch wrote (their memory is
    /// freed after each shard's lock is released).
    pub(crate) fn invalidate(&self, batch: &WriteBatch) {
        if self.shard_bytes == 0 {
            return;
        }
        let mut out = Vec::new();
        for (tree, key, _) in batch.ops() {
            if tree != Tree::Docs || key.len() != 8 {
                continue;
            }
            // Every 8-byte key of the docs tree, a feed key included: dropping a key the
            // cache never held costs nothing, missing one would keep a stale document.
            let (Some(cid), Some(seq)) = (keys::key_collection(key), keys::doc_seq(key)) else {
                continue;
            };
            let mut shard = self.shard((cid, seq));
            if let Some((old, old_bytes)) = shard.entries.pop(&(cid, seq)) {
                shard.bytes -= old_bytes;
                out.push(old);
            }
            shard.generation += 1;
        }
        drop(out);
    }

    /// The estimated bytes of the documents held.
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }

    /// How many documents are held.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{make_record, put_record};
    use crate::options::Limits;
    use crate::perm::{Permission, Role};
    use crate::store::SledBackend;

    fn store() -> Store {
        Store::new(Arc::new(SledBackend::open(None, 1 << 20, None).unwrap()))
    }

    /// A batch writing document `seq` of collection 1 with `{"n": n}`, readable by `user`.
    fn write(seq: u32, n: i64, user: &str) -> WriteBatch {
        let data = serde_json::json!({ "n": n, "text": "x".repeat(100) });
        let Value::Object(map) = data else {
            unreachable!()
        };
        let perms = [Permission::read(Role::user(user))];
        let record =
            make_record(&format!("d{seq}"), 0, 0, &perms, &map, Limits::default()).unwrap();
        let mut batch = WriteBatch::default();
        put_record(&mut batch, 1, seq, &record, Limits::default()).unwrap();
        batch
    }

    /// Applies `batch` as `Engine::commit` does: the store first, then the cache.
    fn commit(store: &Store, cache: &DocumentCache, batch: &WriteBatch) {
        store.apply(batch).unwrap();
        cache.invalidate(batch);
    }

    fn read(store: &Store, cache: &DocumentCache, seq: u32) -> Option<Arc<DecodedDocument>> {
        cache
            .load_and_keep(store, (1, seq), 16, String::new, |_| true)
            .unwrap()
            .readable()
    }

    fn n(doc: &DecodedDocument) -> i64 {
        doc.data["n"].as_i64().unwrap()
    }

    #[test]
    fn a_write_drops_what_it_changed_and_reads_see_the_new_record() {
        let (store, cache) = (store(), DocumentCache::new(1 << 20));
        commit(&store, &cache, &write(7, 1, "a"));
        let first = read(&store, &cache, 7).unwrap();
        assert!(
            Arc::ptr_eq(&first, &read(&store, &cache, 7).unwrap()),
            "a hit"
        );
        assert_eq!(cache.len(), 1);
        commit(&store, &cache, &write(7, 2, "b"));
        let second = read(&store, &cache, 7).unwrap();
        assert_eq!(n(&second), 2);
        assert_eq!(second.grants()[0].role(), "user:b");
        let mut gone = WriteBatch::default();
        gone.remove(Tree::Docs, keys::doc(1, 7));
        commit(&store, &cache, &gone);
        assert!(read(&store, &cache, 7).is_none());
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    #[test]
    fn a_record_read_before_a_write_is_not_kept_after_it() {
        let (store, cache) = (store(), DocumentCache::new(1 << 20));
        commit(&store, &cache, &write(3, 1, "a"));
        // A reader misses and reads the record ...
        let (loaded, ticket) = cache
            .load(&store, (1, 3), 16, String::new, |_| true)
            .unwrap();
        let (old, ticket) = (loaded.readable().unwrap(), ticket.unwrap());
        assert_eq!(n(&old), 1);
        // ... a write revokes the reader's grant and is applied ...
        commit(&store, &cache, &write(3, 2, "b"));
        // ... and only then the reader offers what it read.
        cache.keep(ticket, &old);
        let now = read(&store, &cache, 3).unwrap();
        assert_eq!((n(&now), now.grants()[0].role()), (2, "user:b"));
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_drops_the_least_recently_read() {
        let (store, cache) = (store(), DocumentCache::new(SHARDS * 4096));
        for seq in 0..2000 {
            commit(&store, &cache, &write(seq, i64::from(seq), "a"));
        }
        let hot = read(&store, &cache, 0).unwrap();
        for seq in 1..2000 {
            read(&store, &cache, seq).unwrap();
            // Document 0 is read again and again: never the least recently read.
            assert!(
                Arc::ptr_eq(&hot, &read(&store, &cache, 0).unwrap()),
                "{seq}"
            );
        }
        assert!(cache.bytes() <= SHARDS * 4096, "{}", cache.bytes());
        assert!(
            cache.len() < 2000 && cache.len() > SHARDS,
            "{}",
            cache.len()
        );
    }

    #[test]
    fn a_document_the_caller_may_not_read_is_neither_decoded_nor_kept() {
        let (store, cache) = (store(), DocumentCache::new(1 << 20));
        // Nested deeper than a reader's `max_depth` of 0 allows: it fails to decode.
        commit(&store, &cache, &write(5, 1, "a"));
        let load = |readable: bool| {
            cache.load_and_keep(&store, (1, 5), 0, String::new, |g| {
                readable && g[0].role() == "user:a"
            })
        };
        assert!(matches!(load(false), Ok(Loaded::Hidden)));
        assert!(matches!(load(true), Err(Error::Corrupt { .. })));
        assert_eq!(cache.len(), 0);
        // Read with the store's depth, but its ticket not taken: it is not kept.
        let (scan, ticket) = cache
            .load(&store, (1, 5), 16, String::new, |_| true)
            .unwrap();
        assert!(matches!(scan, Loaded::Readable(_)) && ticket.is_some());
        assert_eq!(cache.len(), 0);
        // Held, then asked by a caller its grants do not let read.
        assert!(read(&store, &cache, 5).is_some());
        assert_eq!(cache.len(), 1);
        let (denied, ticket) = cache
            .load(&store, (1, 5), 16, String::new, |_| false)
            .unwrap();
        assert!(matches!(denied, Loaded::Hidden) && ticket.is_none());
    }

    #[test]
    fn a_cache_of_no_bytes_holds_nothing() {
        let (store, cache) = (store(), DocumentCache::new(0));
        commit(&store, &cache, &write(1, 1, "a"));
        assert_eq!(n(&read(&store, &cache, 1).unwrap()), 1);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }
}
