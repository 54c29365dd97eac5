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
    /// An estimate of the memory it holds (see `estimated_bytes`).
    bytes: usize,
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
        let mut decoded = DecodedDocument {
            created_at: timefmt::from_millis(record.created_ms)
                .map_err(|e| Error::corrupt(where_(), e))?,
            updated_at: timefmt::from_millis(record.updated_ms)
                .map_err(|e| Error::corrupt(where_(), e))?,
            id: record.id,
            grants: record.permissions,
            permissions,
            data: Arc::new(data),
            bytes: 0,
        };
        decoded.bytes = estimated_bytes(&decoded);
        Ok(decoded)
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

/// Roughly the bytes `doc` holds: its struct, strings and grants, and its attributes as
/// `serde_json` lays them out (a value slot each, string and key buffers, map nodes).
fn estimated_bytes(doc: &DecodedDocument) -> usize {
    fn value_bytes(v: &Value) -> usize {
        std::mem::size_of::<Value>()
            + match v {
                Value::String(s) => s.capacity(),
                Value::Array(items) => items.iter().map(value_bytes).sum(),
                Value::Object(map) => map_bytes(map),
                Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            }
    }
    fn map_bytes(map: &Map<String, Value>) -> usize {
        // A B-tree (or index map) entry: the key's `String` and buffer, the value, and
        // about a pointer of node overhead per entry.
        map.iter()
            .map(|(k, v)| std::mem::size_of::<String>() + k.capacity() + 8 + value_bytes(v))
            .sum()
    }
    std::mem::size_of::<DecodedDocument>()
        + doc.id.capacity()
        + doc.grants.capacity() * std::mem::size_of::<Grant>()
        + doc.permissions.len() * std::mem::size_of::<Permission>()
        // Each permission's role holds about the strings of its grant's role key.
        + 2 * doc.grants.iter().map(|g| g.role().len()).sum::<usize>()
        + map_bytes(&doc.data)
}

/// One lock's part of the cache.
struct Shard {
    entries: LruCache<(u32, u32), Arc<DecodedDocument>>,
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

    /// Document `seq` of collection `cid`, decoded (nested at most `max_depth`), from
    /// memory or read from the committed `store`; `None` when it does not exist. A bad
    /// record is corruption of the document `where_` names, and is not cached.
    pub(crate) fn load(
        &self,
        store: &Store,
        cid: u32,
        seq: u32,
        max_depth: usize,
        where_: impl Fn() -> String,
    ) -> Result<Option<Arc<DecodedDocument>>> {
        let key = (cid, seq);
        let seen = match self.probe(key) {
            Ok(hit) => return Ok(Some(hit)),
            Err(seen) => seen,
        };
        let Some(record) = load_record(store, cid, seq)? else {
            return Ok(None);
        };
        let decoded = Arc::new(DecodedDocument::of_record(record, max_depth, where_)?);
        self.keep(key, seen, &decoded);
        Ok(Some(decoded))
    }

    /// The document held at `key`, or the generation of its shard to read it under.
    fn probe(&self, key: (u32, u32)) -> std::result::Result<Arc<DecodedDocument>, u64> {
        let mut shard = self.shard(key);
        match shard.entries.get(&key) {
            Some(hit) => Ok(Arc::clone(hit)),
            None => Err(shard.generation),
        }
    }

    /// Holds `decoded`, read from the store at `key` after [`DocumentCache::probe`] saw
    /// generation `seen`, unless a write dropped keys of its shard since; then drops the
    /// least recently read documents of the shard past its bound.
    fn keep(&self, key: (u32, u32), seen: u64, decoded: &Arc<DecodedDocument>) {
        if decoded.bytes > self.shard_bytes {
            return;
        }
        let mut shard = self.shard(key);
        // INVARIANT (document-cache-not-stale): what was read before a write that
        // dropped keys of this shard is not kept.
        if shard.generation != seen {
            return;
        }
        if let Some(old) = shard.entries.put(key, Arc::clone(decoded)) {
            shard.bytes -= old.bytes;
        }
        shard.bytes += decoded.bytes;
        while shard.bytes > self.shard_bytes {
            match shard.entries.pop_lru() {
                Some((_, out)) => shard.bytes -= out.bytes,
                None => break,
            }
        }
    }

    /// Drops every document a just-applied (or failed) batch wrote.
    pub(crate) fn invalidate(&self, batch: &WriteBatch) {
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
            if let Some(old) = shard.entries.pop(&(cid, seq)) {
                shard.bytes -= old.bytes;
            }
            shard.generation += 1;
        }
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
        cache.load(store, 1, seq, 16, String::new).unwrap()
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
        let seen = cache.probe((1, 3)).unwrap_err();
        let old = Arc::new(
            DecodedDocument::of_record(
                load_record(&store, 1, 3).unwrap().unwrap(),
                16,
                String::new,
            )
            .unwrap(),
        );
        // ... a write revokes the reader's grant and is applied ...
        commit(&store, &cache, &write(3, 2, "b"));
        // ... and only then the reader offers what it read.
        cache.keep((1, 3), seen, &old);
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
    fn a_cache_of_no_bytes_holds_nothing() {
        let (store, cache) = (store(), DocumentCache::new(0));
        commit(&store, &cache, &write(1, 1, "a"));
        assert_eq!(n(&read(&store, &cache, 1).unwrap()), 1);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }
}
