//! The changes feed: per collection, what changed after a log sequence number, answered
//! from bucketed bitmaps intersected with what the client may read now.
//!
//! INVARIANT (feed-atomic): the feed's records of a document change are written in the
//! batch of the change (`record`, called by the engine before it applies a batch), so
//! the feed and the documents never disagree, across a crash too. A live document is in
//! the `Changed` bucket of its last change (and may stay in those of earlier changes:
//! its entry says which is current); each tombstone is in one `Gone` bucket.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::auth::{Affected, affected_principals};
use crate::catalog::CollectionRecord;
use crate::document::{DocHead, DocRecord, Document, describe, load_head, load_record};
use crate::engine::{Engine, Lsns};
use crate::error::{Error, Result};
use crate::index::{Counters, IndexKind};
use crate::perm::decide::{Access, access};
use crate::perm::{Action, Principal};
use crate::query::eval::Filter;
use crate::store::keys::{self, ChangeTag};
use crate::store::{CHECKSUM_LEN, Direction, Store, Tree, WriteBatch, codec};

/// Log sequence numbers per bucket (128): the feed reads whole buckets of bitmaps, and a
/// write rewrites the bitmap of the current bucket, so buckets stay small.
const BUCKET_BITS: u32 = 7;

fn bucket(lsn: u64) -> u64 {
    lsn >> BUCKET_BITS
}

/// What [`crate::Collection::changes`] answers: the documents created or updated after
/// `since` that the client may read now, in change order; the ids of those deleted or
/// no longer readable; and where to resume.
#[derive(Debug)]
#[non_exhaustive]
pub struct Changes {
    /// Documents created or updated after `since`, readable now, by change number.
    pub documents: Vec<(u64, Document)>,
    /// Ids of documents deleted, or no longer readable by the client, after `since`,
    /// with their change numbers.
    pub gone: Vec<(u64, String)>,
    /// The number to pass as `since` next: everything up to it is in this answer.
    pub next: u64,
    /// How many documents and tombstones this answer read (a work counter: it follows
    /// the changes the client may see, not all changes).
    pub examined: u64,
}

/// The record each document change replaced, read before its batch is applied.
pub(crate) type OldRecords = HashMap<(u32, u32), Option<DocRecord>>;

/// The (collection, sequence) of every document `batch` writes or removes, in key order
/// (the order the engine numbers them in).
pub(crate) fn doc_changes(batch: &WriteBatch) -> impl Iterator<Item = (u32, u32)> + '_ {
    batch
        .ops()
        .filter(|(tree, key, _)| *tree == Tree::Docs && keys::is_doc_key(key))
        .filter_map(|(_, key, _)| Some((keys::key_collection(key)?, keys::doc_seq(key)?)))
}

/// The records `batch`'s document changes replace (`None`: a new document).
pub(crate) fn old_records(store: &Store, batch: &WriteBatch) -> Result<OldRecords> {
    doc_changes(batch)
        .map(|(cid, seq)| Ok(((cid, seq), load_record(store, cid, seq)?)))
        .collect()
}

/// The heads of what `batch`'s document changes replace: what the feed needs of them.
pub(crate) type OldHeads = HashMap<(u32, u32), Option<DocHead>>;

/// [`OldHeads`] read from the store (without decoding attributes).
pub(crate) fn old_heads(store: &Store, batch: &WriteBatch) -> Result<OldHeads> {
    doc_changes(batch)
        .map(|(cid, seq)| Ok(((cid, seq), load_head(store, cid, seq)?)))
        .collect()
}

/// [`OldHeads`] of records already read whole.
pub(crate) fn heads_of(old: &OldRecords) -> OldHeads {
    old.iter()
        .map(|(k, r)| (*k, r.as_ref().map(DocHead::of)))
        .collect()
}

/// What `D cid seq` holds: the document's last change, and each read role it lost with
/// the change that took it (a client holding the role is told only of a loss after its
/// `since`: its roles did not change since, or it would resync).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DocEntry {
    lsn: u64,
    lost: Vec<(String, u64)>,
}

/// A deleted document: its id, the change that deleted it, when (ms), the roles that
/// could read it then, and the read roles it had lost before, with when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tombstone {
    id: String,
    lsn: u64,
    at_ms: i64,
    readers: Vec<String>,
    lost: Vec<(String, u64)>,
}

/// Whether a client holding `roles` (constant since `since`) could read, after `since`,
/// a document that `readers` could read at a change after `since`, or that lost a role
/// of `lost` after `since`.
fn seen_after(roles: &[String], since: u64, readers: &[String], lost: &[(String, u64)]) -> bool {
    roles
        .iter()
        .any(|r| readers.contains(r) || lost.iter().any(|(l, at)| l == r && *at > since))
}

fn doc_key(cid: u32, seq: u32) -> Vec<u8> {
    keys::feed(cid, ChangeTag::Doc, &[&seq.to_be_bytes()])
}

fn bucket_key(tag: ChangeTag, cid: u32, b: u64) -> Vec<u8> {
    keys::feed(cid, tag, &[&b.to_be_bytes()])
}

fn role_key(tag: ChangeTag, cid: u32, b: u64, role: &str) -> Vec<u8> {
    keys::feed(cid, tag, &[&b.to_be_bytes(), role.as_bytes()])
}

fn tombstone_key(cid: u32, seq: u32) -> Vec<u8> {
    keys::feed(cid, ChangeTag::Tombstone, &[&seq.to_be_bytes()])
}

fn read_u64(store: &Store, key: &[u8]) -> Result<Option<u64>> {
    match store.get(Tree::Docs, key)? {
        None => Ok(None),
        Some(b) => b
            .first_chunk::<8>()
            .filter(|_| b.len() == 8)
            .map(|c| Some(u64::from_be_bytes(*c)))
            .ok_or_else(|| Error::corrupt(format!("changes record {key:02x?}"), "not 8 bytes")),
    }
}

fn load<T: serde::de::DeserializeOwned>(store: &Store, key: &[u8]) -> Result<Option<T>> {
    match store.get(Tree::Docs, key)? {
        None => Ok(None),
        Some(b) => Ok(Some(codec::decode(&b, || {
            format!("changes record {key:02x?}")
        })?)),
    }
}

fn load_bitmap(store: &Store, key: &[u8]) -> Result<RoaringBitmap> {
    match store.get(Tree::Docs, key)? {
        None => Ok(RoaringBitmap::new()),
        Some(b) => RoaringBitmap::deserialize_from(&b[..])
            .map_err(|e| Error::corrupt(format!("changes bitmap {key:02x?}"), e)),
    }
}

/// The bitmaps one batch edits, loaded once and written back once.
struct Edits<'s> {
    store: &'s Store,
    bitmaps: HashMap<Vec<u8>, RoaringBitmap>,
}

impl Edits<'_> {
    fn bitmap(&mut self, key: Vec<u8>) -> Result<&mut RoaringBitmap> {
        if !self.bitmaps.contains_key(&key) {
            let loaded = load_bitmap(self.store, &key)?;
            self.bitmaps.insert(key.clone(), loaded);
        }
        self.bitmaps
            .get_mut(&key)
            .ok_or_else(|| Error::internal("an edited bitmap went missing"))
    }

    fn finish(self, batch: &mut WriteBatch) -> Result<()> {
        for (key, bitmap) in self.bitmaps {
            if bitmap.is_empty() {
                batch.remove(Tree::Docs, key);
            } else {
                let mut bytes = Vec::with_capacity(bitmap.serialized_size());
                bitmap
                    .serialize_into(&mut bytes)
                    .map_err(|e| Error::storage("cannot encode a changes bitmap", e))?;
                batch.put(Tree::Docs, key, bytes);
            }
        }
        Ok(())
    }
}

fn read_roles(head: &DocHead) -> BTreeSet<String> {
    head.permissions
        .iter()
        .filter(|g| g.action() == Action::Read)
        .map(|g| g.role().to_owned())
        .collect()
}

/// The head of the record `batch` writes for a document (it was sealed in process: its
/// checksum is not checked again).
fn new_head(value: &[u8]) -> Result<DocHead> {
    let body = value
        .get(..value.len().saturating_sub(CHECKSUM_LEN))
        .unwrap_or_default();
    DocHead::decode(body, || "a document being written".into())
}

/// Adds to `batch` the feed's records of its changes (see the module's INVARIANT):
/// `old` holds what each document change replaces, `lsns` the batch's numbers.
pub(crate) fn record(
    engine: &Engine,
    batch: &mut WriteBatch,
    old: &OldHeads,
    lsns: Lsns,
) -> Result<()> {
    let store = &engine.store;
    // The clock is read only for a batch that deletes (tombstones are timed): most
    // batches, sign-ins among them, read no clock under the writer lock.
    let mut clock: Option<i64> = None;
    let mut now_ms = || *clock.get_or_insert_with(|| engine.now_ms());
    let mut edits = Edits {
        store,
        bitmaps: HashMap::new(),
    };
    let mut puts: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut deleted_in: BTreeSet<u32> = BTreeSet::new();
    let changes: Vec<(u32, u32, Option<DocHead>)> = batch
        .ops()
        .filter(|(tree, key, _)| *tree == Tree::Docs && keys::is_doc_key(key))
        .filter_map(|(_, key, value)| {
            let cid = keys::key_collection(key)?;
            let seq = keys::doc_seq(key)?;
            Some((cid, seq, value.map(new_head)))
        })
        .map(|(cid, seq, new)| Ok((cid, seq, new.transpose()?)))
        .collect::<Result<_>>()?;
    for (i, (cid, seq, new)) in changes.into_iter().enumerate() {
        let lsn = lsns.first + i as u64;
        let b = bucket(lsn);
        // The document stays in the bucket of its earlier change (a read skips it there:
        // its entry names its last change), so a write rewrites one bucket, not two.
        let old_record = old.get(&(cid, seq)).and_then(Option::as_ref);
        // A new document has no entry (sequences are never reused, and a delete removes
        // the entry): only a changed one is read.
        let before: Option<DocEntry> = match old_record {
            Some(_) => load(store, &doc_key(cid, seq))?,
            None => None,
        };
        let old_readers = old_record.map(read_roles).unwrap_or_default();
        // Each role that lost read, with the change that took it (kept while the
        // document lives, so that a client behind that change still learns of it).
        let mut lost: BTreeMap<String, u64> = before
            .map(|b| b.lost.into_iter().collect())
            .unwrap_or_default();
        // INVARIANT (loss-bucket): a live document is in `Lost(bucket(at), role)` for each
        // `(role, at)` of its entry, so that a read finds a loss in the bucket of the
        // change that made it, whatever changed after.
        match new {
            Some(new) => {
                let readers = read_roles(&new);
                for role in &old_readers {
                    if !readers.contains(role) {
                        if let Some(at) = lost.insert(role.clone(), lsn) {
                            edits
                                .bitmap(role_key(ChangeTag::Lost, cid, bucket(at), role))?
                                .remove(seq);
                        }
                        edits
                            .bitmap(role_key(ChangeTag::Lost, cid, b, role))?
                            .insert(seq);
                    }
                }
                // A role read again is no longer lost.
                for (role, at) in &lost {
                    if readers.contains(role) {
                        edits
                            .bitmap(role_key(ChangeTag::Lost, cid, bucket(*at), role))?
                            .remove(seq);
                    }
                }
                lost.retain(|r, _| !readers.contains(r));
                edits
                    .bitmap(bucket_key(ChangeTag::Changed, cid, b))?
                    .insert(seq);
                let entry = DocEntry {
                    lsn,
                    lost: lost.into_iter().collect(),
                };
                puts.push((doc_key(cid, seq), Some(codec::encode(&entry)?)));
            }
            None => {
                let Some(old_record) = old_record else {
                    continue;
                };
                // A deleted collection's documents, purged: no one reads its feed again,
                // and the purge removes its records.
                if store.get(Tree::Meta, &keys::purge(cid))?.is_some() {
                    continue;
                }
                puts.push((doc_key(cid, seq), None));
                for (role, at) in &lost {
                    edits
                        .bitmap(role_key(ChangeTag::Lost, cid, bucket(*at), role))?
                        .remove(seq);
                }
                let tomb = Tombstone {
                    id: old_record.id.clone(),
                    lsn,
                    at_ms: now_ms(),
                    readers: old_readers.iter().cloned().collect(),
                    lost: lost.iter().map(|(r, l)| (r.clone(), *l)).collect(),
                };
                puts.push((tombstone_key(cid, seq), Some(codec::encode(&tomb)?)));
                edits
                    .bitmap(bucket_key(ChangeTag::Gone, cid, b))?
                    .insert(seq);
                for role in old_readers.iter().chain(lost.keys()) {
                    edits
                        .bitmap(role_key(ChangeTag::GoneReaders, cid, b, role))?
                        .insert(seq);
                }
                puts.push((
                    bucket_key(ChangeTag::GoneAt, cid, b),
                    Some(now_ms().to_be_bytes().to_vec()),
                ));
                deleted_in.insert(cid);
            }
        }
    }
    if let Some(rules_lsn) = lsns.rules {
        let value = rules_lsn.to_be_bytes().to_vec();
        match affected_principals(batch) {
            Affected::Nobody => {}
            Affected::Everyone => {
                puts.push((keys::feed(0, ChangeTag::AllRoles, &[]), Some(value.clone())))
            }
            Affected::Users(users) => {
                for u in users {
                    puts.push((
                        keys::feed(0, ChangeTag::UserRoles, &[u.as_bytes()]),
                        Some(value.clone()),
                    ));
                }
            }
        }
        for cid in rules_touched(store, batch)? {
            let key = match cid {
                Some(cid) => keys::feed(cid, ChangeTag::Rules, &[]),
                None => keys::feed(0, ChangeTag::Rules, &[]),
            };
            puts.push((key, Some(value.clone())));
        }
    }
    for cid in deleted_in {
        purge(engine, cid, now_ms(), &mut edits, &mut puts)?;
    }
    edits.finish(batch)?;
    for (key, value) in puts {
        match value {
            Some(v) => batch.put(Tree::Docs, key, v),
            None => batch.remove(Tree::Docs, key),
        }
    }
    Ok(())
}

/// The collections whose record `batch` writes (`None`: a schema record, which may
/// change every collection of it).
fn rules_touched(store: &Store, batch: &WriteBatch) -> Result<BTreeSet<Option<u32>>> {
    let mut out = BTreeSet::new();
    for (tree, key, value) in batch.ops() {
        if tree != Tree::Meta {
            continue;
        }
        if key.starts_with(keys::SCHEMA_PREFIX) {
            out.insert(None);
        } else if key.starts_with(keys::COLLECTIONS_PREFIX) {
            let record: Option<CollectionRecord> = match value {
                Some(v) => Some(codec::decode(
                    v.get(..v.len().saturating_sub(CHECKSUM_LEN))
                        .unwrap_or_default(),
                    || "a collection record being written".into(),
                )?),
                None => match store.get(Tree::Meta, key)? {
                    Some(b) => Some(codec::decode(&b, || "a collection record".into())?),
                    None => None,
                },
            };
            match record {
                Some(r) => out.insert(Some(r.cid)),
                None => out.insert(None),
            };
        }
    }
    Ok(out)
}

/// Removes collection `cid`'s tombstone buckets whose last tombstone is older than the
/// retention, and moves its horizon past them.
fn purge(
    engine: &Engine,
    cid: u32,
    now_ms: i64,
    edits: &mut Edits<'_>,
    puts: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<()> {
    let store = &engine.store;
    let retention_ms =
        i64::try_from(engine.options.tombstone_retention.whole_milliseconds()).unwrap_or(i64::MAX);
    let prefix = keys::feed(cid, ChangeTag::GoneAt, &[]);
    let mut horizon = None;
    for entry in store.scan_prefix(Tree::Docs, &prefix, Direction::Forward) {
        let (key, value) = entry?;
        let at = value
            .first_chunk::<8>()
            .map(|c| i64::from_be_bytes(*c))
            .ok_or_else(|| Error::corrupt("a tombstone bucket's time", "not 8 bytes"))?;
        if now_ms.saturating_sub(at) <= retention_ms {
            break;
        }
        let Some(b) = key
            .get(prefix.len()..)
            .and_then(|b| b.first_chunk::<8>())
            .map(|c| u64::from_be_bytes(*c))
        else {
            return Err(Error::corrupt("a tombstone bucket's key", "too short"));
        };
        let gone = edits.bitmap(bucket_key(ChangeTag::Gone, cid, b))?;
        let seqs: Vec<u32> = gone.iter().collect();
        gone.clear();
        for seq in seqs {
            puts.push((tombstone_key(cid, seq), None));
        }
        let readers = keys::feed(cid, ChangeTag::GoneReaders, &[&b.to_be_bytes()]);
        for entry in store.scan_prefix(Tree::Docs, &readers, Direction::Forward) {
            let (key, _) = entry?;
            edits.bitmap(key.to_vec())?.clear();
        }
        puts.push((key.to_vec(), None));
        horizon = Some(((b + 1) << BUCKET_BITS) - 1);
    }
    if let Some(h) = horizon {
        puts.push((
            keys::feed(cid, ChangeTag::Horizon, &[]),
            Some(h.to_be_bytes().to_vec()),
        ));
    }
    Ok(())
}

/// Marks a store written before the feed existed: every `since` before its first
/// number must resync (its documents have no feed records). Called at open.
pub(crate) fn mark_older_store(engine: &Engine) -> Result<()> {
    if engine.last_lsn() > 0 {
        return Ok(());
    }
    let has_documents = match engine
        .store
        .scan_prefix_keyed(Tree::Docs, &[], Direction::Forward)
        .next()
    {
        Some(entry) => keys::is_doc_key(&entry?.0),
        None => false,
    };
    if !has_documents {
        return Ok(());
    }
    engine.write(|_, batch| {
        batch.put(
            Tree::Docs,
            keys::feed(0, ChangeTag::Horizon, &[]),
            1u64.to_be_bytes().to_vec(),
        );
        // One number for the mark, so that `since` = 1 is after it.
        batch.put(Tree::Docs, keys::last_lsn(), 1u64.to_be_bytes().to_vec());
        Ok(())
    })?;
    engine.numbered_up_to(1);
    Ok(())
}

/// Starts the feed of a store an import just filled (whose documents have no feed
/// records): every reader resyncs once, from a number above every number the store the
/// dump came from can have handed out, so that a cursor kept from that store is never
/// answered with this one's numbering.
///
/// INVARIANT (restored-numbering): the new numbering starts at the import's time in ms
/// times 1,000 (never below the last number given): above every change number of a store
/// that gave fewer than 1,000 numbers per millisecond since it was made (or imported
/// itself), and below 2^53 (exact in JavaScript) until the year 2255.
pub(crate) fn start_after_import(engine: &Engine) -> Result<u64> {
    let by_time = u64::try_from(engine.now_ms())
        .unwrap_or(0)
        .saturating_mul(1_000);
    let start = by_time.max(engine.last_lsn() + 1);
    engine.write(|_, batch| {
        batch.put(
            Tree::Docs,
            keys::feed(0, ChangeTag::Horizon, &[]),
            start.to_be_bytes().to_vec(),
        );
        batch.put(Tree::Docs, keys::last_lsn(), start.to_be_bytes().to_vec());
        Ok(())
    })?;
    engine.numbered_up_to(start);
    Ok(start)
}

/// The feed of `coll` after `since` as `principal` may read it now, at most `limit`
/// entries (documents and gone ids together). Runs under the writer lock (one snapshot).
pub(crate) fn read(
    engine: &Engine,
    principal: &Principal,
    coll: &CollectionRecord,
    since: u64,
    limit: usize,
) -> Result<Changes> {
    let store = &engine.store;
    let cid = coll.cid;
    let resync = |reason: &str| {
        Err(Error::ResyncRequired {
            since,
            reason: reason.to_owned(),
        })
    };
    // Who may read nothing learns nothing of the feed (not even when rules changed).
    if access(principal, coll.rules()?, Action::Read) == Access::Denied {
        return Err(crate::query::exec::no_read(coll));
    }
    let last = engine.last_lsn();
    if since > last {
        // A number this store never gave: one kept from another store, or from this one
        // before it was restored from a dump. Only a fresh read can answer it.
        return resync(&format!(
            "{since} is after this store's last change number {last}: a number from \
             another store, or from before a restore?"
        ));
    }
    // A store older than the feed has documents without feed records: only `find` sees
    // them all.
    if read_u64(store, &keys::feed(0, ChangeTag::Horizon, &[]))?.is_some_and(|h| since < h) {
        return resync("the store was written before the feed existed");
    }
    // From 0 the client holds nothing: every live document it may read now is in the
    // log (its last change), so purged tombstones and changed roles or rules do not
    // matter. From a later number they do.
    if since == 0 {
        return read_after(engine, principal, coll, since, 0, limit);
    }
    if read_u64(store, &keys::feed(cid, ChangeTag::Horizon, &[]))?.is_some_and(|h| since < h) {
        return resync("the changes before it are no longer kept");
    }
    // `tenure`: since when the client's roles and the collection's rules are what they
    // are now (each change of them is numbered); a later one than `since` must resync.
    let mut tenure = 0;
    for key in [
        keys::feed(0, ChangeTag::Rules, &[]),
        keys::feed(cid, ChangeTag::Rules, &[]),
    ] {
        if let Some(l) = read_u64(store, &key)? {
            if l > since {
                return resync("the collection's permissions or settings changed since");
            }
            tenure = tenure.max(l);
        }
    }
    if (principal.roles().is_some() || matches!(principal, Principal::Key { .. }))
        && let Some(l) = read_u64(store, &keys::feed(0, ChangeTag::AllRoles, &[]))?
    {
        if l > since {
            return resync("credentials changed since");
        }
        tenure = tenure.max(l);
    }
    if let Some(user) = principal.user_id() {
        let key = keys::feed(0, ChangeTag::UserRoles, &[user.as_bytes()]);
        if let Some(l) = read_u64(store, &key)? {
            if l > since {
                return resync("the client's roles changed since");
            }
            tenure = tenure.max(l);
        }
    }
    read_after(engine, principal, coll, since, tenure, limit)
}

/// [`read`] once it is known that the feed can answer from `since`.
fn read_after(
    engine: &Engine,
    principal: &Principal,
    coll: &CollectionRecord,
    since: u64,
    tenure: u64,
    limit: usize,
) -> Result<Changes> {
    let store = &engine.store;
    let cid = coll.cid;
    let last = engine.last_lsn();
    // What the client may read now (as a subscription computes it), and the roles whose
    // losses and tombstones concern it (none for one that reads every document).
    let visible = visible_set(engine, principal, coll, None)?;
    let roles: Option<Vec<String>> = match (
        access(principal, coll.rules()?, Action::Read),
        principal.roles(),
    ) {
        (Access::Denied, _) => return Err(crate::query::exec::no_read(coll)),
        (Access::All, _) | (_, None) => None,
        (Access::ByDocument, Some(r)) => Some(r.keys().map(str::to_owned).collect()),
    };
    let union_of = |tag: ChangeTag, b: u64, roles: &[String]| -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for role in roles {
            out |= load_bitmap(store, &role_key(tag, cid, b, role))?;
        }
        Ok(out)
    };
    let mut documents = Vec::new();
    let mut gone = Vec::new();
    let mut examined = 0u64;
    let mut b = bucket(since + 1);
    let end = bucket(last);
    while b <= end {
        let changed = load_bitmap(store, &bucket_key(ChangeTag::Changed, cid, b))?;
        for seq in &(&changed & &visible) {
            examined += 1;
            let entry: Option<DocEntry> = load(store, &doc_key(cid, seq))?;
            // In this bucket for its last change only; an earlier change left it here too.
            let Some(entry) = entry.filter(|e| e.lsn > since && bucket(e.lsn) == b) else {
                continue;
            };
            if let Some(record) = load_record(store, cid, seq)? {
                documents.push((entry.lsn, to_document(engine, coll, record, seq)?));
            }
        }
        // From 0 the client holds nothing to remove: no gone ids (a tombstone or a lost
        // role from before it had access would name a document it never could read).
        let tombs = if since == 0 {
            RoaringBitmap::new()
        } else {
            load_bitmap(store, &bucket_key(ChangeTag::Gone, cid, b))?
        };
        let tombs = match &roles {
            None => tombs,
            Some(roles) => tombs & union_of(ChangeTag::GoneReaders, b, roles)?,
        };
        for seq in &tombs {
            examined += 1;
            if let Some(t) = load::<Tombstone>(store, &tombstone_key(cid, seq))? {
                // Readable by the client before it went: through a role that read it when
                // deleted, or one it lost while the client held that role (after
                // `tenure`; a loss the client was told of before `since` is told again,
                // which names nothing it could not read).
                let seen = roles
                    .as_ref()
                    .is_none_or(|roles| seen_after(roles, tenure, &t.readers, &t.lost));
                if t.lsn > since && seen {
                    gone.push((t.lsn, t.id));
                }
            }
        }
        if let Some(roles) = roles.as_ref().filter(|_| since > 0) {
            // Documents that lost one of the client's roles at a change of this bucket
            // (loss-bucket), and that it cannot read now: gone at that change.
            let left = union_of(ChangeTag::Lost, b, roles)? - &visible;
            for seq in &left {
                examined += 1;
                let entry: Option<DocEntry> = load(store, &doc_key(cid, seq))?;
                let at = entry.as_ref().and_then(|e| {
                    e.lost
                        .iter()
                        .filter(|(r, at)| roles.contains(r) && *at > since && bucket(*at) == b)
                        .map(|(_, at)| *at)
                        .min()
                });
                let Some(at) = at else {
                    continue;
                };
                if let Some(record) = load_record(store, cid, seq)? {
                    gone.push((at, record.id));
                }
            }
        }
        if documents.len() + gone.len() >= limit {
            break;
        }
        b += 1;
    }
    documents.sort_by_key(|(lsn, _)| *lsn);
    gone.sort_by_key(|(lsn, _)| *lsn);
    // Keep the first `limit` entries by number; `next` is the last kept, or the store's
    // last number when the answer holds everything.
    let total = documents.len() + gone.len();
    let next = if total > limit {
        let mut numbers: Vec<u64> = documents
            .iter()
            .map(|(l, _)| *l)
            .chain(gone.iter().map(|(l, _)| *l))
            .collect();
        numbers.sort_unstable();
        let cut = numbers
            .get(limit.saturating_sub(1))
            .copied()
            .unwrap_or(since);
        documents.retain(|(l, _)| *l <= cut);
        gone.retain(|(l, _)| *l <= cut);
        cut
    } else if b <= end {
        // Stopped at a full bucket: everything up to its end is in.
        (((b + 1) << BUCKET_BITS) - 1).min(last)
    } else {
        last
    };
    Ok(Changes {
        documents,
        gone,
        next,
        examined,
    })
}

/// The documents of `coll` that `principal` may read and `filter` matches, as `find`
/// would select them (the permission bitmaps, then each document's filter check).
pub(crate) fn visible_set(
    engine: &Engine,
    principal: &Principal,
    coll: &CollectionRecord,
    filter: Option<&Filter>,
) -> Result<RoaringBitmap> {
    let counters = Counters::default();
    let store = &engine.store;
    let base = match (
        access(principal, coll.rules()?, Action::Read),
        principal.roles(),
    ) {
        (Access::Denied, _) => return Ok(RoaringBitmap::new()),
        (Access::All, _) | (Access::ByDocument, None) => {
            (*engine
                .bitmaps
                .get(store, coll.cid, IndexKind::Live, "", &counters)?)
            .clone()
        }
        (Access::ByDocument, Some(roles)) => {
            // Role by role, not through the role-set memo: thousands of subscribers'
            // sets would each hold an entry every write must check.
            let mut union = RoaringBitmap::new();
            for role in roles.keys() {
                union |= engine
                    .bitmaps
                    .get(store, coll.cid, IndexKind::Read, role, &counters)?
                    .as_ref();
            }
            union
        }
    };
    let Some(filter) = filter else {
        return Ok(base);
    };
    let mut out = RoaringBitmap::new();
    for seq in &base {
        if let Some(record) = load_record(store, coll.cid, seq)? {
            let doc = to_document(engine, coll, record, seq)?;
            if filter.matches(&doc) {
                out.insert(seq);
            }
        }
    }
    Ok(out)
}

pub(crate) fn to_document(
    engine: &Engine,
    coll: &CollectionRecord,
    record: DocRecord,
    seq: u32,
) -> Result<Document> {
    record.into_document(
        seq,
        &coll.schema_id,
        &coll.id,
        engine.options.limits.max_depth,
        || describe(seq, &coll.schema_id, &coll.id),
    )
}
