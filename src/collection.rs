//! `Collection`: the handle through which documents are read and written, every
//! call checked against the client's roles by the rules in `perm::decide`.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::attribute;
use crate::catalog::{CollectionRecord, Counters, resolve_collection};
use crate::changes::Changes;
use crate::client::{Client, Schema};
use crate::document::{
    DocRecord, Document, DocumentList, Loaded, check_field_count, check_object, describe,
    load_record, make_record, put_record, seq_of,
};
use crate::error::{Error, ResourceKind, Result};
use crate::id::{new_id, quote};
use crate::index::{Contribution, IndexEdits};
use crate::live::{PrincipalSource, Subscription, Watch};
use crate::options::Limits;
use crate::perm::decide::{
    Access, access, check_create, check_document, check_grantable, may_read, skips_permissions,
};
use crate::perm::{Action, Permission, Principal, Role, Target, normalize};
use crate::query::eval::Filter;
use crate::query::exec::{Want, find};
use crate::query::plan::plan;
use crate::query::{Explain, Method, Query};
use crate::store::{Store, Tree, WriteBatch, keys};

/// Whether `method` is a filter (what `watch` takes).
fn is_filter(method: Method) -> bool {
    !matches!(
        method,
        Method::Select
            | Method::OrderAsc
            | Method::OrderDesc
            | Method::Limit
            | Method::Offset
            | Method::CursorAfter
            | Method::CursorBefore
    )
}

impl Schema {
    /// A handle on collection `id` of this schema; nothing is read until it is used.
    #[must_use]
    pub fn collection(&self, id: &str) -> Collection {
        Collection {
            client: self.client.clone(),
            schema_id: self.id.clone(),
            id: id.to_owned(),
        }
    }
}

/// A new document checked before the write lock: its id, data and permission strings.
pub(crate) type Prepared = (String, Map<String, Value>, Option<Vec<Permission>>);

pub use crate::document::MAX_FIELD_NAME_LEN;

/// A collection of one schema, as seen by one client. Cheap to clone; holds no lock.
#[derive(Debug, Clone)]
pub struct Collection {
    pub(crate) client: Client,
    pub(crate) schema_id: String,
    pub(crate) id: String,
}

impl Collection {
    /// The collection's record; `NotFound` when it, or its schema, is missing, or disabled
    /// for a client that does not skip permissions (a disabled schema answers exactly as a
    /// missing one, so that users cannot tell them apart; root and keys still reach it).
    fn resolve(&self, store: &Store, principal: &Principal) -> Result<CollectionRecord> {
        resolve_collection(
            store,
            &self.schema_id,
            &self.id,
            skips_permissions(principal),
        )
    }

    fn limits(&self) -> Limits {
        self.client.db.inner.options.limits
    }

    fn to_document(&self, record: DocRecord, seq: u32) -> Result<Document> {
        record.into_document(
            seq,
            &self.schema_id,
            &self.id,
            self.limits().max_depth,
            || describe(seq, &self.schema_id, &self.id),
        )
    }

    /// What a write answers with: the document as written when the client may read it,
    /// else its `$id` and system fields only, no data and no permissions.
    fn answer(
        &self,
        principal: &Principal,
        coll: &CollectionRecord,
        record: DocRecord,
        seq: u32,
    ) -> Result<Document> {
        let readable = coll
            .rules()
            .is_ok_and(|rules| may_read(principal, rules, record.grants()));
        let mut document = self.to_document(record, seq)?;
        if !readable {
            document.permissions = Vec::new().into();
            document.data = Arc::default();
        }
        Ok(document)
    }

    /// The document `id`. `NotFound` also when the client may not read it.
    pub fn get(&self, id: &str) -> Result<Document> {
        let principal = self.client.require_documents(false)?;
        let db = &self.client.db.inner;
        let coll = self.resolve(&db.store, &principal)?;
        let mut seq = 0;
        let found = check_document(
            &principal,
            coll.rules()?,
            Action::Read,
            id,
            || {
                lookup_with(&db.store, &coll, id, &mut seq, |s| {
                    self.cached(&principal, &coll, s)
                })
            },
            Loaded::grants,
        )?;
        self.public(found, seq, id)
    }

    /// The public form of what `check_document` let through under `name`: `NotFound`
    /// unless the client may read it.
    fn public(&self, found: Loaded, seq: u32, name: &str) -> Result<Document> {
        let decoded = found
            .readable()
            .ok_or_else(|| Error::not_found(ResourceKind::Document, name))?;
        Ok(decoded.to_document(seq, &self.schema_id, &self.id))
    }

    /// Document `seq` of `coll` through the document cache (committed state only), if it
    /// exists: decoded only when `principal` may read it (else [`Loaded::Hidden`], which
    /// `check_document` denies), so a document hidden from the client is never decoded
    /// for it (and one whose attributes no longer rebuild answers it `NotFound`).
    fn cached(
        &self,
        principal: &Principal,
        coll: &CollectionRecord,
        seq: u32,
    ) -> Result<Option<Loaded>> {
        let db = &self.client.db.inner;
        let rules = coll.rules()?;
        let loaded = db.documents.load_and_keep(
            &db.store,
            (coll.cid, seq),
            self.limits().max_depth,
            || describe(seq, &self.schema_id, &self.id),
            |grants| may_read(principal, rules, grants),
        )?;
        Ok(match loaded {
            Loaded::Missing => None,
            found => Some(found),
        })
    }

    /// The document whose `$sequence` is `sequence`, under the rules of
    /// [`Collection::get`] (`NotFound` also when the client may not read it). One storage
    /// read, no id lookup: for clients that keep sequences.
    pub fn get_by_sequence(&self, sequence: u64) -> Result<Document> {
        self.get_by_sequences(&[sequence])?
            .pop()
            .ok_or_else(|| Error::internal("no document returned"))
    }

    /// The documents whose `$sequence`s are `sequences`, in that order, each under the
    /// rules of [`Collection::get`]: the first that is missing or unreadable fails the
    /// call with `NotFound`. The collection is resolved once, then one storage read per
    /// document; with the root client or a key this is the benchmarks' fetch floor.
    pub fn get_by_sequences(&self, sequences: &[u64]) -> Result<Vec<Document>> {
        let principal = self.client.require_documents(false)?;
        let coll = self.resolve(&self.client.db.inner.store, &principal)?;
        sequences
            .iter()
            .map(|&sequence| {
                let name = format!("$sequence {sequence}");
                let seq = u32::try_from(sequence).ok();
                let found = check_document(
                    &principal,
                    coll.rules()?,
                    Action::Read,
                    &name,
                    || match seq {
                        Some(seq) => self.cached(&principal, &coll, seq),
                        None => Ok(None),
                    },
                    Loaded::grants,
                )?;
                self.public(found, seq.unwrap_or_default(), &name)
            })
            .collect()
    }

    /// Whether the client may read this collection (all of it, or documents in it): `Ok`,
    /// or the error [`Collection::find`] would give before reading anything
    /// (`Unauthorized`, `NotFound`). Cheap: no document is read and no lock is taken. A
    /// server checks it before spending a bound on a collection the client names, so that
    /// bounds never tell hidden collections from missing ones.
    ///
    /// ```
    /// # use permdb::{CollectionSpec, Db};
    /// let db = Db::temporary()?;
    /// db.root().schemas().create("app", "App")?;
    /// db.root().schema("app").collections().create(CollectionSpec::new("notes", "Notes"))?;
    /// assert!(db.root().schema("app").collection("notes").check_readable().is_ok());
    /// assert!(db.client().schema("app").collection("notes").check_readable().is_err());
    /// # Ok::<(), permdb::Error>(())
    /// ```
    pub fn check_readable(&self) -> Result<()> {
        let principal = self.client.require_documents(false)?;
        let coll = self.resolve(&self.client.db.inner.store, &principal)?;
        if access(&principal, coll.rules()?, Action::Read) == Access::Denied {
            return Err(crate::query::exec::no_read(&coll));
        }
        Ok(())
    }

    /// A live subscription to the changes of this collection that the client may see and
    /// `queries` (filters only) match: documents created, updated, deleted, and those
    /// that enter or leave its view when permissions, its roles or its filters' matches
    /// change. Each event carries the change's log sequence number. Refused as `find`
    /// would refuse it, and for queries other than filters (order, limit, offset,
    /// cursor, select).
    ///
    /// ```
    /// # use permdb::{CollectionSpec, Db, Event, Permission, Role};
    /// let db = Db::temporary()?;
    /// let root = db.root();
    /// root.schemas().create("app", "App")?;
    /// let spec = CollectionSpec::new("notes", "Notes").permissions([Permission::read(Role::any())]);
    /// root.schema("app").collections().create(spec)?;
    /// let notes = db.client().schema("app").collection("notes");
    /// let live = notes.watch(&[])?;
    /// root.schema("app").collection("notes").create("n1", serde_json::json!({"t": "hi"}), None)?;
    /// match live.recv() {
    ///     Some(Event::Created { document, .. }) => assert_eq!(document.id(), "n1"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), permdb::Error>(())
    /// ```
    pub fn watch(&self, queries: &[Query]) -> Result<Subscription> {
        if let Some(q) = queries.iter().find(|q| !is_filter(q.method())) {
            return Err(Error::InvalidQuery(format!(
                "watch takes filters only, not {}",
                q.method().as_str()
            )));
        }
        let db = &self.client.db.inner;
        let client = self.client.clone();
        let source: PrincipalSource = Arc::new(move || client.require_documents(false));
        db.exclusive(|| {
            let principal = self.client.require_documents(false)?;
            let coll = self.resolve(&db.store, &principal)?;
            // Who may read nothing is refused as `find` refuses it, before the queries.
            if access(&principal, coll.rules()?, Action::Read) == Access::Denied {
                return Err(crate::query::exec::no_read(&coll));
            }
            let plan = plan(queries, &coll.query_schema(self.limits().max_depth)?)?;
            let watch = Watch {
                schema_id: self.schema_id.clone(),
                collection_id: self.id.clone(),
                filter: plan.filter,
                principal: source,
            };
            let (id, shared) = db.hub.subscribe(db, watch, principal, &coll)?;
            Ok(Subscription::new(Arc::clone(&db.hub), id, shared))
        })
    }

    /// The changes feed: the documents created or updated after log sequence number
    /// `since` that the client may read now (in change order), the ids of those deleted
    /// or no longer readable since, and the number to resume from, at most `limit`
    /// entries. Pass 0 at first; then [`Changes::next`]. `ResyncRequired` when it cannot
    /// answer from `since` (tombstones purged, the client's roles or the collection's
    /// permissions changed since): read the view again with `find` and follow from
    /// [`crate::Db`]'s last number taken before that `find`.
    pub fn changes(&self, since: u64, limit: usize) -> Result<Changes> {
        let db = &self.client.db.inner;
        db.exclusive(|| {
            let principal = self.client.require_documents(false)?;
            let coll = self.resolve(&db.store, &principal)?;
            crate::changes::read(db, &principal, &coll, since, limit.clamp(1, 5000))
        })
    }

    /// The page of documents the client may read that match `queries`, and their total.
    pub fn find(&self, queries: &[Query]) -> Result<DocumentList> {
        self.find_explained(queries).map(|(list, _)| list)
    }

    /// As [`Collection::find`], with the plan taken and the work it did.
    pub fn find_explained(&self, queries: &[Query]) -> Result<(DocumentList, Explain)> {
        let principal = self.client.require_documents(false)?;
        let db = &self.client.db.inner;
        let found = db.consistent(|| {
            let coll = self.resolve(&db.store, &principal)?;
            find(db.read_view(), &principal, &coll, queries, Want::Page)
        })?;
        let list = DocumentList {
            total: found.total,
            documents: found.documents,
        };
        Ok((list, found.explain))
    }

    /// As [`Collection::find`], with the filter of `queries` to check documents against later.
    pub(crate) fn find_with_filter(
        &self,
        queries: &[Query],
    ) -> Result<(DocumentList, Option<Filter>)> {
        let principal = self.client.require_documents(false)?;
        let db = &self.client.db.inner;
        let found = db.consistent(|| {
            let coll = self.resolve(&db.store, &principal)?;
            find(db.read_view(), &principal, &coll, queries, Want::Page)
        })?;
        let list = DocumentList {
            total: found.total,
            documents: found.documents,
        };
        Ok((list, found.filter))
    }

    /// `data` as the top-level attributes of an update, its size checked.
    pub(crate) fn to_patch(&self, data: impl Serialize) -> Result<Map<String, Value>> {
        to_object(data, self.limits())
    }

    /// How many documents the client may read match the filters in `queries`
    /// (limit, offset and cursor are ignored).
    pub fn count(&self, queries: &[Query]) -> Result<u64> {
        let principal = self.client.require_documents(false)?;
        let db = &self.client.db.inner;
        db.consistent(|| {
            let coll = self.resolve(&db.store, &principal)?;
            Ok(find(db.read_view(), &principal, &coll, queries, Want::Count)?.total)
        })
    }

    /// Creates document `id` from `data` (a JSON object). Needs `create` on the collection.
    /// With `id` [`crate::UNIQUE_ID`] (`"unique()"`) permdb picks a fresh id.
    /// Without `permissions`, a user's document grants read, update and delete to that user;
    /// root's and a guest's grant nothing. A client may only name roles it holds.
    pub fn create(
        &self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<Document> {
        let mut created = self.create_many([(id, data, permissions)])?;
        created
            .pop()
            .ok_or_else(|| Error::internal("create returned no document"))
    }

    /// Creates many documents in one atomic write: all of them, or none when any
    /// fails a check (the error names it). Each follows the rules of [`Collection::create`];
    /// index containers shared by the batch are read and written once, so this is
    /// the fast way to load data. Keep batches to some thousands: the whole batch is
    /// one transaction held in memory.
    pub fn create_many<S: AsRef<str>, T: Serialize>(
        &self,
        documents: impl IntoIterator<Item = (S, T, Option<Vec<Permission>>)>,
    ) -> Result<Vec<Document>> {
        // Refused early when the client may not write at all; decided again under the lock.
        self.client.require_documents(true)?;
        let prepared = documents
            .into_iter()
            .map(|(id, data, permissions)| self.prepare(id.as_ref(), data, permissions))
            .collect::<Result<Vec<_>>>()?;
        let db = &self.client.db.inner;
        let now = db.now_ms();
        let written = db.write(|store, batch| self.create_in(store, batch, &prepared, now))?;
        self.answer_all(written)
    }

    /// The documents a step wrote, as the client sees them.
    pub(crate) fn answer_all(&self, written: Written) -> Result<Vec<Document>> {
        let (principal, coll, records) = written;
        records
            .into_iter()
            .map(|(record, seq)| self.answer(&principal, &coll, record, seq))
            .collect()
    }

    /// The step of a create: checks and writes `prepared` into `batch`, reading `store`.
    pub(crate) fn create_in(
        &self,
        store: &Store,
        batch: &mut WriteBatch,
        prepared: &[Prepared],
        now: i64,
    ) -> Result<Written> {
        let acting = self.principal_under_lock()?;
        let principal = &*acting;
        let coll = self.resolve(store, principal)?;
        check_create(principal, coll.rules()?)?;
        let specs = coll.attribute_specs(self.limits().max_depth)?;
        let mut counters = Counters::load(store, coll.cid)?;
        let mut edits = IndexEdits::default();
        let mut ids = HashSet::new();
        let mut created = Vec::with_capacity(prepared.len());
        for (id, data, permissions) in prepared {
            let permissions = match permissions {
                Some(p) => {
                    check_grantable(principal, p.iter().map(Permission::role))?;
                    p.clone()
                }
                None => default_permissions(principal),
            };
            let permissions = &permissions;
            if !ids.insert(id.as_str()) || seq_of(store, coll.cid, id)?.is_some() {
                return Err(Error::conflict(
                    ResourceKind::Document,
                    id,
                    format!("document {} already exists", quote(id)),
                ));
            }
            let seq = counters.next_seq;
            counters.next_seq = seq.checked_add(1).ok_or_else(|| {
                Error::LimitExceeded("document sequences of the collection exhausted".into())
            })?;
            counters.live += 1;
            let mut data = data.clone();
            attribute::validate(&specs, &mut data, &Map::new(), true)?;
            check_field_count(&data, self.limits())?;
            let record = make_record(id, now, now, permissions, &data, self.limits())?;
            put_record(batch, coll.cid, seq, &record, self.limits())?;
            batch.put(
                Tree::DocIds,
                keys::doc_id(coll.cid, id),
                seq.to_be_bytes().to_vec(),
            );
            Contribution::apply_change(
                store,
                batch,
                &mut edits,
                coll.cid,
                (id, seq),
                &Contribution::default(),
                &Contribution::of(coll.cid, &coll.indexes, seq, record.grants(), &data),
            )?;
            created.push((record, seq));
        }
        counters.put(batch, coll.cid);
        edits.write(store, batch)?;
        Ok((acting.clone(), coll, created))
    }

    /// Checks one new document's id, data and permission strings before the write lock
    /// is taken; what depends on the principal is checked under it.
    pub(crate) fn prepare(
        &self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<Prepared> {
        let id = new_id("document id", id)?;
        let data = to_object(data, self.limits())?;
        let permissions = permissions
            .map(|p| normalize(&p, Target::Document))
            .transpose()?;
        Ok((id, data, permissions))
    }

    /// The principal to write as, derived again under the writer lock.
    ///
    /// INVARIANT (write-as-of-commit): a write acts with the principal as of its commit.
    /// The auth epoch moves only under the writer lock, so the principal derived here
    /// cannot be revoked before this write commits: a write that began before a logout, a
    /// user's deletion or a membership removal, and commits after it, is refused or done
    /// with the roles left (never re-granting what the deletion revoked).
    fn principal_under_lock(&self) -> Result<std::sync::Arc<Principal>> {
        self.client.require_documents(true)
    }

    /// Updates document `id`: the top-level attributes in `data` replace those stored,
    /// others stay; `permissions`, when given, replace the stored ones.
    pub fn update(
        &self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<Document> {
        self.client.require_documents(true)?;
        let patch = Patch::Merge(self.to_patch(data)?);
        self.write_one(|store, batch, now| {
            self.update_in(store, batch, id, &patch, permissions.as_deref(), None, now)
        })
    }

    /// Creates document `id`, or updates it when it exists and the client may see it
    /// (Appwrite's upsert), in one write: an update needs `update`, a create `create`,
    /// each as [`Collection::update`] and [`Collection::create`] decide. A document the
    /// client may not see is not updated: the upsert answers as a create of that id would
    /// (`Unauthorized` without a create grant, `Conflict` with one). `id` may not be [`crate::UNIQUE_ID`] (there would be nothing to update).
    pub fn upsert(
        &self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<Document> {
        self.client.require_documents(true)?;
        let prepared = self.prepare_upsert(id, data, permissions)?;
        self.write_one(|store, batch, now| self.upsert_in(store, batch, &prepared, now))
    }

    /// Checks an upsert's id, data and permission strings before the write lock.
    pub(crate) fn prepare_upsert(
        &self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<Prepared> {
        if id == crate::UNIQUE_ID {
            return Err(Error::InvalidId(
                "an upsert names its document: unique() is for create".into(),
            ));
        }
        self.prepare(id, data, permissions)
    }

    /// The step of an upsert: an update when the document exists, else a create.
    pub(crate) fn upsert_in(
        &self,
        store: &Store,
        batch: &mut WriteBatch,
        prepared: &Prepared,
        now: i64,
    ) -> Result<Written> {
        let (id, data, permissions) = prepared;
        let principal = self.principal_under_lock()?;
        let coll = self.resolve(store, &principal)?;
        if seq_of(store, coll.cid, id)?.is_none() {
            return self.create_in(store, batch, std::slice::from_ref(prepared), now);
        }
        // A document the client may not see answers exactly as a create of its id would:
        // refused without a create grant (as a missing id is), a conflict with one (as
        // `create` is), so that an upsert tells no more than a create.
        let as_create = || -> Result<Written> {
            check_create(&principal, coll.rules()?)?;
            Err(Error::conflict(
                ResourceKind::Document,
                id,
                format!("document {} already exists", quote(id)),
            ))
        };
        let rules = coll.rules()?;
        if access(&principal, rules, Action::Read) == Access::Denied
            && access(&principal, rules, Action::Update) == Access::Denied
        {
            return as_create();
        }
        let patch = Patch::Merge(data.clone());
        match self.update_in(store, batch, id, &patch, permissions.as_deref(), None, now) {
            Err(Error::NotFound {
                kind: ResourceKind::Document,
                ..
            }) => as_create(),
            other => other,
        }
    }

    /// Runs one step in its own write and answers the document it wrote.
    fn write_one(
        &self,
        step: impl FnOnce(&Store, &mut WriteBatch, i64) -> Result<Written>,
    ) -> Result<Document> {
        let db = &self.client.db.inner;
        let now = db.now_ms();
        let written = db.write(|store, batch| step(store, batch, now))?;
        self.answer_all(written)?
            .pop()
            .ok_or_else(|| Error::internal("a write returned no document"))
    }

    /// Adds `by` to the number in attribute `attribute` of document `id` (a missing or
    /// null value counts as 0), in one write: concurrent increments all count. With
    /// `limit`, a result past it (above for a positive `by`, below for a negative one) is
    /// refused with `InvalidDocument`, as is a value that is not a number, an integer
    /// attribute given a fractional `by`, or a result outside i64 for an integer. Needs
    /// `update`, as [`Collection::update`].
    pub fn increment(
        &self,
        id: &str,
        attribute: &str,
        by: f64,
        limit: Option<f64>,
    ) -> Result<Document> {
        self.client.require_documents(true)?;
        let patch = Patch::increment(attribute, by, limit)?;
        self.write_one(|store, batch, now| {
            self.update_in(store, batch, id, &patch, None, None, now)
        })
    }

    /// The step of an update: document `id` gets `patch`, computed from its stored data
    /// under the writer lock (so a read-modify-write is atomic), and `permissions` when
    /// given. With `only_if`, a document that no longer matches it is left alone and
    /// nothing is returned for it.
    #[allow(
        clippy::too_many_arguments,
        reason = "a step takes the store, its batch, the write and its time"
    )]
    pub(crate) fn update_in(
        &self,
        store: &Store,
        batch: &mut WriteBatch,
        id: &str,
        patch: &Patch,
        permissions: Option<&[Permission]>,
        only_if: Option<&Filter>,
        now: i64,
    ) -> Result<Written> {
        let permissions = permissions
            .map(|p| normalize(p, Target::Document))
            .transpose()?;
        let principal = self.principal_under_lock()?;
        if let Some(p) = &permissions {
            check_grantable(&principal, p.iter().map(Permission::role))?;
        }
        let (coll, found) = self.locate(store, &principal, Action::Update, id, only_if)?;
        let Some((old, seq)) = found else {
            return Ok((principal, coll, Vec::new()));
        };
        let mut data = old.data(self.limits().max_depth)?;
        let old_data = data.clone();
        let patch = patch.apply(&data)?;
        data.extend(patch.clone());
        let specs = coll.attribute_specs(self.limits().max_depth)?;
        attribute::validate(&specs, &mut data, &patch, false)?;
        check_field_count(&data, self.limits())?;
        let permissions = match &permissions {
            Some(p) => p.clone(),
            None => old
                .permissions
                .iter()
                .map(|p| {
                    p.to_permission()
                        .map_err(|e| Error::corrupt(format!("document {}", quote(id)), e))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let record = make_record(
            id,
            old.created_ms,
            now.max(old.created_ms),
            &permissions,
            &data,
            self.limits(),
        )?;
        put_record(batch, coll.cid, seq, &record, self.limits())?;
        let mut edits = IndexEdits::default();
        Contribution::apply_change(
            store,
            batch,
            &mut edits,
            coll.cid,
            (id, seq),
            &Contribution::of(coll.cid, &coll.indexes, seq, old.grants(), &old_data),
            &Contribution::of(coll.cid, &coll.indexes, seq, record.grants(), &data),
        )?;
        edits.write(store, batch)?;
        Ok((principal, coll, vec![(record, seq)]))
    }

    /// Deletes document `id`. Needs `delete` on the collection or on the document.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.client.require_documents(true)?;
        let db = &self.client.db.inner;
        db.write(|store, batch| self.delete_in(store, batch, id, None))
            .map(|_| ())
    }

    /// The collection, and document `id` a step of `action` works on, found and checked
    /// under the lock (a hidden one is `NotFound`); `None` when it no longer matches
    /// `only_if`.
    fn locate(
        &self,
        store: &Store,
        principal: &Principal,
        action: Action,
        id: &str,
        only_if: Option<&Filter>,
    ) -> Result<(CollectionRecord, Option<(DocRecord, u32)>)> {
        let coll = self.resolve(store, principal)?;
        let mut seq = 0;
        let old = check_document(
            principal,
            coll.rules()?,
            action,
            id,
            || lookup(store, &coll, id, &mut seq),
            DocRecord::grants,
        )?;
        if let Some(filter) = only_if
            && !filter.matches(&self.to_document(old.clone(), seq)?)
        {
            return Ok((coll, None));
        }
        Ok((coll, Some((old, seq))))
    }

    /// The step of a delete; with `only_if`, a document that no longer matches it is
    /// left alone. Returns the deleted document's record (none when left alone).
    pub(crate) fn delete_in(
        &self,
        store: &Store,
        batch: &mut WriteBatch,
        id: &str,
        only_if: Option<&Filter>,
    ) -> Result<Written> {
        let acting = self.principal_under_lock()?;
        let (coll, found) = self.locate(store, &acting, Action::Delete, id, only_if)?;
        let Some((old, seq)) = found else {
            return Ok((acting, coll, Vec::new()));
        };
        batch.remove(Tree::Docs, keys::doc(coll.cid, seq));
        batch.remove(Tree::DocIds, keys::doc_id(coll.cid, id));
        let mut counters = Counters::load(store, coll.cid)?;
        counters.live = counters.live.saturating_sub(1);
        counters.put(batch, coll.cid);
        let mut edits = IndexEdits::default();
        let old_data = old.data(self.limits().max_depth)?;
        Contribution::apply_change(
            store,
            batch,
            &mut edits,
            coll.cid,
            (id, seq),
            &Contribution::of(coll.cid, &coll.indexes, seq, old.grants(), &old_data),
            &Contribution::default(),
        )?;
        edits.write(store, batch)?;
        Ok((acting.clone(), coll, vec![(old, seq)]))
    }
}

/// What a write step wrote: the principal it acted as, the collection, and each
/// document's record and sequence, to be answered after the commit.
pub(crate) type Written = (
    std::sync::Arc<Principal>,
    CollectionRecord,
    Vec<(DocRecord, u32)>,
);

/// How an update changes a document's data, computed from the stored data under the lock.
#[derive(Debug, Clone)]
pub(crate) enum Patch {
    /// The top-level attributes given replace those stored.
    Merge(Map<String, Value>),
    /// Adds `by` to one number, refusing a result past `limit`.
    Increment {
        attribute: String,
        by: f64,
        limit: Option<f64>,
    },
}

impl Patch {
    /// An increment, its numbers checked.
    pub(crate) fn increment(attribute: &str, by: f64, limit: Option<f64>) -> Result<Patch> {
        if !by.is_finite() || limit.is_some_and(|l| !l.is_finite()) {
            return Err(Error::InvalidArgument(
                "increments and limits must be finite numbers".into(),
            ));
        }
        Ok(Patch::Increment {
            attribute: attribute.to_owned(),
            by,
            limit,
        })
    }

    /// The top-level attributes to replace in `data`.
    fn apply(&self, data: &Map<String, Value>) -> Result<Map<String, Value>> {
        let (key, by, limit) = match self {
            Patch::Merge(patch) => return Ok(patch.clone()),
            Patch::Increment {
                attribute,
                by,
                limit,
            } => (attribute, *by, *limit),
        };
        let bad = |m: String| Error::InvalidDocument(format!("attribute {}: {m}", quote(key)));
        let current = match data.get(key) {
            None | Some(Value::Null) => Value::from(0),
            Some(v @ Value::Number(_)) => v.clone(),
            // The fault, never the stored value: the caller may update without reading.
            Some(_) => return Err(bad("the stored value is not a number".into())),
        };
        let whole = current.is_i64() && by.fract() == 0.0;
        let next = if whole {
            // `by` is whole and within ±2^63 when the conversion is exact.
            let step = by as i64;
            if step as f64 != by {
                return Err(bad("the step is out of range".into()));
            }
            current
                .as_i64()
                .and_then(|c| c.checked_add(step))
                .map(Value::from)
                .ok_or_else(|| bad("the result is out of range".into()))?
        } else {
            let sum = current.as_f64().unwrap_or(0.0) + by;
            serde_json::Number::from_f64(sum)
                .map(Value::Number)
                .ok_or_else(|| bad("the result is not a finite number".into()))?
        };
        let value = next.as_f64().unwrap_or(0.0);
        if let Some(limit) = limit
            && ((by >= 0.0 && value > limit) || (by < 0.0 && value < limit))
        {
            return Err(bad(format!("the result would pass the limit {limit}")));
        }
        let mut patch = Map::new();
        patch.insert(key.clone(), next);
        Ok(patch)
    }
}

/// Finds document `id`, writing its sequence to `seq`.
///
/// The id entry and the document are two reads, each atomic against a write but not
/// together: a delete (or a delete and a new create of the id) committed between them
/// shows as an id entry whose document is gone. So the entry is read again; only an
/// entry that still names the same missing sequence is damage. Under the writer lock
/// nothing moves and the second read confirms the first.
fn lookup(
    store: &Store,
    coll: &CollectionRecord,
    id: &str,
    seq: &mut u32,
) -> Result<Option<DocRecord>> {
    lookup_with(store, coll, id, seq, |s| load_record(store, coll.cid, s))
}

/// As [`lookup`], reading the document at a sequence with `load`.
fn lookup_with<D>(
    store: &Store,
    coll: &CollectionRecord,
    id: &str,
    seq: &mut u32,
    load: impl Fn(u32) -> Result<Option<D>>,
) -> Result<Option<D>> {
    /// Looks at the id entry before a document deleted and created again at every
    /// look is answered as absent.
    const ATTEMPTS: usize = 8;
    let mut missing = None;
    for _ in 0..ATTEMPTS {
        let Some(s) = seq_of(store, coll.cid, id)? else {
            return Ok(None);
        };
        if missing == Some(s) {
            return Err(Error::corrupt(
                format!("document id entry {} of collection {}", quote(id), coll.id),
                format!("points at sequence {s}, which has no document"),
            ));
        }
        *seq = s;
        if let Some(record) = load(s)? {
            return Ok(Some(record));
        }
        missing = Some(s);
    }
    // Deleted and created again at every look: absent at each of those moments.
    Ok(None)
}

fn default_permissions(principal: &Principal) -> Vec<Permission> {
    match principal.user_id() {
        Some(user) => [Action::Read, Action::Update, Action::Delete]
            .into_iter()
            .map(|a| Permission::new(a, Role::user(user)))
            .collect(),
        None => Vec::new(),
    }
}

/// Turns caller data into an attribute map, checking names and the field count.
fn to_object(data: impl Serialize, limits: Limits) -> Result<Map<String, Value>> {
    let map = match serde_json::to_value(data) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return Err(Error::InvalidDocument(format!(
                "data must be a JSON object, got {}",
                kind_of(&other)
            )));
        }
        Err(e) => {
            return Err(Error::InvalidDocument(format!(
                "data cannot be serialized: {e}"
            )));
        }
    };
    check_object(&map, limits)?;
    Ok(map)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
