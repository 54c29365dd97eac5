//! `Db::verify` and `Db::repair`: every index compared with what the documents say
//! it must hold, and rebuilt from the documents. Both hold the writer lock throughout.

use std::collections::{BTreeMap, BTreeSet};

use roaring::RoaringBitmap;

use crate::catalog::{CollectionRecord, Counters, SchemaRecord};
use crate::engine::Engine;
use crate::error::Result;
use crate::index::attr::IndexType;
use crate::index::{Contribution, container_key_of, encode_container, stored_containers};
use crate::store::{Direction, Store, Tree, WriteBatch, codec, keys};

/// Most problems listed in one report (the count goes on).
const MAX_LISTED: usize = 100;

/// What `verify` or `repair` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Collections checked.
    pub collections: u64,
    /// Documents checked.
    pub documents: u64,
    /// How many differences were found (before any repair).
    pub problems: u64,
    /// The first differences, described.
    pub details: Vec<String>,
}

/// How far a `verify` or `repair` has come: step `done` of `total` (the checksums of
/// every record, then each collection), named in `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityProgress {
    /// Steps finished before this one.
    pub done: usize,
    /// All steps.
    pub total: usize,
    /// What this step checks: `checksums`, or `collection SCHEMA/COLLECTION`.
    pub step: String,
}

impl IntegrityProgress {
    fn of(done: usize, total: usize, coll: &CollectionRecord) -> IntegrityProgress {
        IntegrityProgress {
            done,
            total,
            step: format!("collection {}/{}", coll.schema_id, coll.id),
        }
    }
}

impl IntegrityReport {
    fn problem(&mut self, what: String) {
        self.problems += 1;
        if self.details.len() < MAX_LISTED {
            self.details.push(what);
        }
    }
}

/// What the documents of one collection say its indexes and counters must hold: the
/// sum of their contributions (`index::Contribution`), id entries and live count.
struct Expected {
    containers: BTreeMap<Vec<u8>, RoaringBitmap>,
    entries: BTreeSet<Vec<u8>>,
    ids: BTreeMap<Vec<u8>, u32>,
    live: u64,
}

fn expected(store: &Store, coll: &CollectionRecord, max_depth: usize) -> Result<Expected> {
    let mut e = Expected {
        containers: BTreeMap::new(),
        entries: BTreeSet::new(),
        ids: BTreeMap::new(),
        live: 0,
    };
    for entry in crate::document::scan_collection(store, coll.cid, &coll.id) {
        let (seq, doc) = entry?;
        e.live += 1;
        e.ids.insert(keys::doc_id(coll.cid, &doc.id), seq);
        let data = doc.data(max_depth)?;
        let contribution = Contribution::of(coll.cid, &coll.indexes, seq, doc.grants(), &data);
        for (kind, role) in &contribution.bits {
            e.containers
                .entry(container_key_of(coll.cid, *kind, role, seq))
                .or_default()
                .insert(seq);
        }
        e.entries.extend(contribution.entries.into_keys());
    }
    Ok(e)
}

fn collections(store: &Store) -> Result<Vec<CollectionRecord>> {
    let mut out = Vec::new();
    for entry in store.scan_prefix(Tree::Meta, keys::SCHEMA_PREFIX, Direction::Forward) {
        let (k, v) = entry?;
        let schema: SchemaRecord = codec::decode(&v, || format!("schema record at {:02x?}", &*k))?;
        for entry in store.scan_prefix(
            Tree::Meta,
            &keys::collection_prefix(&schema.id),
            Direction::Forward,
        ) {
            let (k, v) = entry?;
            out.push(codec::decode(&v, || {
                format!("collection record at {:02x?}", &*k)
            })?);
        }
    }
    Ok(out)
}

/// Checks one collection; with `batch`, also writes what repairs it.
fn check(
    db: &Engine,
    coll: &CollectionRecord,
    report: &mut IntegrityReport,
    mut batch: Option<&mut WriteBatch>,
) -> Result<()> {
    let store = &db.store;
    let want = expected(store, coll, db.options.limits.max_depth)?;
    report.collections += 1;
    report.documents += want.live;
    let name = format!("{}/{}", coll.schema_id, coll.id);
    if let Err(e) = coll.rules() {
        // Not repairable from derived data: an admin sets the permissions again.
        report.problem(format!("{name}: {e}"));
    }
    let stored = stored_containers(store, coll.cid)?;
    for (key, have) in &stored {
        match (have, want.containers.get(key)) {
            (Ok(h), Some(w)) if h == w => continue,
            (Err(e), _) => report.problem(format!(
                "{name}: index container {key:02x?} does not decode: {e}"
            )),
            (Ok(_), Some(_)) => report.problem(format!(
                "{name}: index container {key:02x?} differs from the documents"
            )),
            (Ok(_), None) => report.problem(format!(
                "{name}: index container {key:02x?} has no documents"
            )),
        }
        if let Some(b) = batch.as_deref_mut() {
            b.remove(Tree::PermIndex, key.clone());
        }
    }
    for (key, bitmap) in &want.containers {
        if !stored.contains_key(key) {
            report.problem(format!("{name}: index container {key:02x?} is missing"));
        }
        if let Some(b) = batch.as_deref_mut() {
            b.put(Tree::PermIndex, key.clone(), encode_container(bitmap));
        }
    }
    let mut have_entries = BTreeSet::new();
    for index in coll
        .indexes
        .iter()
        .filter(|i| i.kind != IndexType::Fulltext)
    {
        for entry in
            store.scan_prefix_keyed(Tree::AttrIndex, &index.prefix(coll.cid), Direction::Forward)
        {
            let (k, v) = entry?;
            match v {
                Ok(_) => {
                    have_entries.insert(k.to_vec());
                }
                Err(e) => {
                    // Left out of `have_entries`: repaired below like a missing or stray entry.
                    report.problem(format!("{name}: {e}"));
                    if let Some(b) = batch.as_deref_mut() {
                        b.remove(Tree::AttrIndex, k.to_vec());
                    }
                }
            }
        }
    }
    for k in have_entries.symmetric_difference(&want.entries) {
        let which = if want.entries.contains(k) {
            "missing"
        } else {
            "without a document"
        };
        report.problem(format!("{name}: attribute index entry {k:02x?} {which}"));
        if let Some(b) = batch.as_deref_mut() {
            if want.entries.contains(k) {
                b.put(Tree::AttrIndex, k.clone(), Vec::new());
            } else {
                b.remove(Tree::AttrIndex, k.clone());
            }
        }
    }
    let counters = Counters::load(store, coll.cid)?;
    if counters.live != want.live {
        report.problem(format!(
            "{name}: live counter {} but {} documents",
            counters.live, want.live
        ));
        if let Some(b) = batch.as_deref_mut() {
            Counters {
                live: want.live,
                ..counters
            }
            .put(b, coll.cid);
        }
    }
    for entry in store.scan_prefix_keyed(
        Tree::DocIds,
        &keys::collection_data(coll.cid),
        Direction::Forward,
    ) {
        let (k, v) = entry?;
        let seq = v
            .ok()
            .and_then(|v| <[u8; 4]>::try_from(&*v).ok())
            .map(u32::from_be_bytes);
        if seq.is_none() || want.ids.get(&k.to_vec()) != seq.as_ref() {
            report.problem(format!(
                "{name}: document id entry {:02x?} does not match a document",
                &*k
            ));
            if let Some(b) = batch.as_deref_mut() {
                b.remove(Tree::DocIds, k.to_vec());
            }
        }
    }
    if let Some(b) = batch {
        for (k, seq) in &want.ids {
            b.put(Tree::DocIds, k.clone(), seq.to_be_bytes().to_vec());
        }
    }
    Ok(())
}

/// Reads every record of every tree and checks its checksum, which covers its tree, key
/// and value: a damaged value, and a record moved under another key, fail it. Each
/// failure is a problem of the report.
fn check_frames(store: &Store, report: &mut IntegrityReport) -> Result<()> {
    for tree in Tree::ALL {
        for entry in store.scan_prefix_keyed(tree, &[], Direction::Forward) {
            let (key, value) = entry?;
            if let Err(e) = value {
                report.problem(format!("{}: {e} (key {:02x?})", tree.name(), &*key));
            }
        }
    }
    Ok(())
}

/// Checks the checksum of every record of the store, then compares every index,
/// counter and id entry with what the documents say; changes nothing (`Db::verify`).
pub(crate) fn verify(
    engine: &Engine,
    progress: &mut dyn FnMut(IntegrityProgress),
) -> Result<IntegrityReport> {
    engine.write(|store, _| {
        let mut report = IntegrityReport::default();
        let colls = collections(store)?;
        let total = colls.len() + 1;
        progress(IntegrityProgress {
            done: 0,
            total,
            step: "checksums".into(),
        });
        check_frames(store, &mut report)?;
        for (i, coll) in colls.iter().enumerate() {
            progress(IntegrityProgress::of(i + 1, total, coll));
            check(engine, coll, &mut report, None)?;
        }
        Ok(report)
    })
}

/// Rebuilds every index, counter and id entry from the documents, one atomic write per
/// collection; returns what was wrong before (`Db::repair`).
pub(crate) fn repair(
    engine: &Engine,
    progress: &mut dyn FnMut(IntegrityProgress),
) -> Result<IntegrityReport> {
    let colls = engine.write(|store, _| collections(store))?;
    let mut report = IntegrityReport::default();
    for (i, coll) in colls.iter().enumerate() {
        progress(IntegrityProgress::of(i, colls.len(), coll));
        engine.write(|_, batch| check(engine, coll, &mut report, Some(batch)))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::index::IndexKind;
    use crate::{AttributeSpec, CollectionSpec, Db, IndexSpec, Permission, Query, Role};

    #[test]
    fn verify_finds_damage_and_repair_rebuilds_from_documents() {
        let db = Db::temporary().unwrap();
        let root = db.root();
        root.schemas().create("s", "S").unwrap();
        let collections = root.schema("s").collections();
        collections
            .create(CollectionSpec::new("c", "C").document_security(true))
            .unwrap();
        collections
            .create_attribute("c", AttributeSpec::string("name", 20))
            .unwrap();
        collections
            .create_index("c", IndexSpec::key("by_name", ["name"]))
            .unwrap();
        collections
            .create_index("c", IndexSpec::fulltext("words", "name"))
            .unwrap();
        let c = root.schema("s").collection("c");
        for i in 0..50u32 {
            let perms = vec![Permission::read(Role::user(format!("u{}", i % 3)))];
            c.create(
                &format!("d{i}"),
                json!({"name": format!("name {i}")}),
                Some(perms),
            )
            .unwrap();
        }
        let clean = db.verify().unwrap();
        assert_eq!(
            (clean.collections, clean.documents, clean.problems),
            (1, 50, 0),
            "{clean:?}"
        );

        // Damage: drop u1's read container, add a stray index entry, break the live counter,
        // and plant a container that does not decode.
        let store = &db.inner.store;
        let cid = crate::catalog::load_collection(store, "s", "c")
            .unwrap()
            .unwrap()
            .cid;
        let mut batch = WriteBatch::default();
        batch.remove(
            Tree::PermIndex,
            container_key_of(cid, IndexKind::Read, "user:u1", 1),
        );
        let mut stray = keys::collection_data(cid).to_vec();
        stray.extend_from_slice(&1u16.to_be_bytes());
        stray.extend_from_slice(&[0x04, b'z', 0, 0, 0, 0, 0, 99]);
        batch.put(Tree::AttrIndex, stray, Vec::new());
        Counters {
            next_seq: 51,
            live: 7,
        }
        .put(&mut batch, cid);
        batch.put(
            Tree::PermIndex,
            container_key_of(cid, IndexKind::Read, "user:zz", 1),
            vec![1, 2, 3],
        );
        store.apply(&batch).unwrap();

        let u1 = root.impersonate("u1").unwrap().schema("s").collection("c");
        assert_eq!(
            u1.count(&[]).unwrap(),
            0,
            "the damaged index hides u1's documents"
        );
        let damaged = db.verify().unwrap();
        assert_eq!(damaged.problems, 4, "{damaged:#?}");
        assert_eq!(db.verify().unwrap(), damaged, "verify changes nothing");
        let repaired = db.repair().unwrap();
        assert_eq!(repaired.problems, 4);
        assert_eq!(db.verify().unwrap().problems, 0);
        assert_eq!(u1.count(&[]).unwrap(), 17);
        assert_eq!(c.count(&[]).unwrap(), 50);
        assert_eq!(c.count(&[Query::equal("name", ["name 7"])]).unwrap(), 1);
        assert_eq!(c.count(&[Query::search("name", "7")]).unwrap(), 1);
    }
}
