//! `Transaction`: writes to documents of any collections, staged in memory, then committed
//! as one atomic write in which each is checked, in order, exactly as it would be alone.

pub(crate) mod wire;

use serde::Serialize;

use crate::client::Client;
use crate::collection::{Collection, Patch, Prepared, Written};
use crate::document::Document;
use crate::error::{Error, Result};
use crate::perm::Permission;
use crate::query::eval::Filter;
use crate::query::{MAX_LIMIT, Method, Query};

/// Most operations one transaction holds: its whole write is built in memory.
pub const MAX_TRANSACTION_OPERATIONS: usize = 10_000;

/// Writes staged for one atomic commit. Made by [`Client::transaction`]; stage writes
/// through [`Transaction::collection`], then [`Transaction::commit`].
///
/// Staging checks what needs no store (ids, data shape, permission strings); every
/// other check (the client's credential and roles, each document's permissions, the
/// schema) is made at commit, under the writer lock, for each operation in order, as
/// the same call outside a transaction would make it. Each operation sees the writes of
/// those before it. Either every operation commits, or none does and the error is the
/// first failing operation's.
///
/// ```
/// # use permdb::{Db, CollectionSpec};
/// # let db = Db::temporary()?;
/// # let root = db.root();
/// # root.schemas().create("shop", "Shop")?;
/// # root.schema("shop").collections().create(CollectionSpec::new("stock", "Stock"))?;
/// # root.schema("shop").collections().create(CollectionSpec::new("orders", "Orders"))?;
/// # root.schema("shop").collection("stock").create("apples", serde_json::json!({"left": 3}), None)?;
/// let mut tx = root.transaction();
/// tx.collection("shop", "stock").increment("apples", "left", -1.0, Some(0.0))?;
/// tx.collection("shop", "orders").create("o1", serde_json::json!({"item": "apples"}), None)?;
/// let written = tx.commit()?;
/// assert_eq!(written[0].document().unwrap().data()["left"], 2);
/// # Ok::<(), permdb::Error>(())
/// ```
#[derive(Debug)]
pub struct Transaction {
    client: Client,
    ops: Vec<Op>,
}

/// One staged write.
#[derive(Debug)]
enum Op {
    Create(Collection, Prepared),
    Upsert(Collection, Prepared),
    Update {
        coll: Collection,
        id: String,
        patch: Patch,
        permissions: Option<Vec<Permission>>,
    },
    Delete(Collection, String),
    UpdateWhere {
        coll: Collection,
        queries: Vec<Query>,
        data: serde_json::Map<String, serde_json::Value>,
    },
    DeleteWhere(Collection, Vec<Query>),
}

/// What one committed operation left, in the order staged: each written document as
/// the client sees it, and nothing for a delete.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A create, update, upsert or increment wrote this document.
    Written(Document),
    /// A delete removed a document.
    Deleted,
    /// An update by queries wrote these documents.
    WrittenMany(Vec<Document>),
    /// A delete by queries removed these documents (as they were).
    DeletedMany(Vec<Document>),
}

impl Outcome {
    /// The document a single write wrote, if this is one.
    #[must_use]
    pub fn document(&self) -> Option<&Document> {
        match self {
            Outcome::Written(d) => Some(d),
            _ => None,
        }
    }
}

impl Client {
    /// A new, empty transaction of this client's.
    #[must_use]
    pub fn transaction(&self) -> Transaction {
        Transaction {
            client: self.clone(),
            ops: Vec::new(),
        }
    }
}

/// Stages writes to one collection of a [`Transaction`].
#[derive(Debug)]
pub struct StagedCollection<'t> {
    tx: &'t mut Transaction,
    coll: Collection,
}

impl Transaction {
    /// Stages writes to collection `collection` of schema `schema`.
    pub fn collection(&mut self, schema: &str, collection: &str) -> StagedCollection<'_> {
        let coll = self.client.schema(schema).collection(collection);
        StagedCollection { tx: self, coll }
    }

    /// How many operations are staged.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing is staged.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn push(&mut self, op: Op) -> Result<()> {
        if self.ops.len() >= MAX_TRANSACTION_OPERATIONS {
            return Err(Error::LimitExceeded(format!(
                "a transaction holds at most {MAX_TRANSACTION_OPERATIONS} operations"
            )));
        }
        self.ops.push(op);
        Ok(())
    }

    /// Commits every staged operation in one atomic write, or none. Returns what each
    /// left, in the order staged.
    pub fn commit(self) -> Result<Vec<Outcome>> {
        if self.ops.is_empty() {
            return Ok(Vec::new());
        }
        // Refused early when the client may not write at all; decided again under the lock.
        self.client.require_documents(true)?;
        // Updates and deletes by queries find their documents now, as the client; under
        // the lock each found document is checked again against the queries' filters.
        let mut found: Vec<Option<(Vec<String>, Option<Filter>)>> = Vec::new();
        for op in &self.ops {
            found.push(match op {
                Op::UpdateWhere { coll, queries, .. } | Op::DeleteWhere(coll, queries) => {
                    Some(matching(coll, queries)?)
                }
                _ => None,
            });
        }
        let db = &self.client.db.inner;
        let now = db.now_ms();
        let written = db.write_steps(|steps| {
            let mut out = Vec::with_capacity(self.ops.len());
            for (op, found) in self.ops.iter().zip(&found) {
                let (ids, filter) = match found {
                    Some((ids, filter)) => (ids.as_slice(), filter.as_ref()),
                    None => (&[][..], None),
                };
                out.push(match op {
                    Op::Create(coll, doc) => Step::One(steps.step(|store, batch| {
                        coll.create_in(store, batch, std::slice::from_ref(doc), now)
                    })?),
                    Op::Upsert(coll, doc) => Step::One(
                        steps.step(|store, batch| coll.upsert_in(store, batch, doc, now))?,
                    ),
                    Op::Update {
                        coll,
                        id,
                        patch,
                        permissions,
                    } => Step::One(steps.step(|store, batch| {
                        coll.update_in(store, batch, id, patch, permissions.as_deref(), None, now)
                    })?),
                    Op::Delete(coll, id) => {
                        steps.step(|store, batch| coll.delete_in(store, batch, id, None))?;
                        Step::Deleted(Vec::new())
                    }
                    Op::UpdateWhere { coll, data, .. } => {
                        let patch = Patch::Merge(data.clone());
                        let mut many = Vec::new();
                        for id in ids {
                            many.push(steps.step(|store, batch| {
                                coll.update_in(store, batch, id, &patch, None, filter, now)
                            })?);
                        }
                        Step::Many(many)
                    }
                    Op::DeleteWhere(coll, _) => {
                        let mut deleted = Vec::new();
                        for id in ids {
                            deleted.push(
                                steps.step(|store, batch| {
                                    coll.delete_in(store, batch, id, filter)
                                })?,
                            );
                        }
                        Step::Deleted(deleted)
                    }
                });
            }
            Ok(out)
        })?;
        self.ops
            .iter()
            .zip(written)
            .map(|(op, step)| {
                let coll = op.collection();
                Ok(match (op, step) {
                    (Op::Delete(..), _) => Outcome::Deleted,
                    (_, Step::Deleted(ws)) => Outcome::DeletedMany(answer_many(coll, ws)?),
                    (_, Step::One(w)) => Outcome::Written(
                        coll.answer_all(w)?
                            .pop()
                            .ok_or_else(|| Error::internal("a write returned no document"))?,
                    ),
                    (_, Step::Many(ws)) => Outcome::WrittenMany(answer_many(coll, ws)?),
                })
            })
            .collect()
    }
}

/// The documents of many steps, as the client sees them.
fn answer_many(coll: &Collection, steps: Vec<Written>) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for w in steps {
        docs.extend(coll.answer_all(w)?);
    }
    Ok(docs)
}

/// What one operation's steps returned under the lock.
enum Step {
    One(Written),
    Many(Vec<Written>),
    Deleted(Vec<Written>),
}

impl Op {
    fn collection(&self) -> &Collection {
        match self {
            Op::Create(c, _) | Op::Upsert(c, _) | Op::Delete(c, _) | Op::DeleteWhere(c, _) => c,
            Op::Update { coll, .. } | Op::UpdateWhere { coll, .. } => coll,
        }
    }
}

/// The ids of the documents `queries` find for the client, and the filter to check each
/// again under the lock. Without a limit every match is taken, up to [`MAX_LIMIT`].
fn matching(coll: &Collection, queries: &[Query]) -> Result<(Vec<String>, Option<Filter>)> {
    let limited = queries.iter().any(|q| q.method() == Method::Limit);
    let mut queries = queries.to_vec();
    if !limited {
        queries.push(Query::limit(MAX_LIMIT));
    }
    let (list, filter) = coll.find_with_filter(&queries)?;
    if !limited && list.documents.len() as u64 >= MAX_LIMIT {
        return Err(Error::LimitExceeded(format!(
            "{MAX_LIMIT} or more documents match: give a limit (at most {MAX_LIMIT}) and repeat"
        )));
    }
    Ok((
        list.documents
            .into_iter()
            .map(|d| d.id().to_owned())
            .collect(),
        filter,
    ))
}

impl StagedCollection<'_> {
    /// Stages a create, as [`Collection::create`]. With [`crate::UNIQUE_ID`] the id is
    /// picked now.
    pub fn create(
        &mut self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<&mut Self> {
        let doc = self.coll.prepare(id, data, permissions)?;
        self.tx.push(Op::Create(self.coll.clone(), doc))?;
        Ok(self)
    }

    /// Stages an upsert, as [`Collection::upsert`].
    pub fn upsert(
        &mut self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<&mut Self> {
        let doc = self.coll.prepare_upsert(id, data, permissions)?;
        self.tx.push(Op::Upsert(self.coll.clone(), doc))?;
        Ok(self)
    }

    /// Stages an update, as [`Collection::update`].
    pub fn update(
        &mut self,
        id: &str,
        data: impl Serialize,
        permissions: Option<Vec<Permission>>,
    ) -> Result<&mut Self> {
        let patch = Patch::Merge(self.coll.to_patch(data)?);
        self.stage_update(id, patch, permissions)
    }

    /// Stages an increment, as [`Collection::increment`].
    pub fn increment(
        &mut self,
        id: &str,
        attribute: &str,
        by: f64,
        limit: Option<f64>,
    ) -> Result<&mut Self> {
        let patch = Patch::increment(attribute, by, limit)?;
        self.stage_update(id, patch, None)
    }

    fn stage_update(
        &mut self,
        id: &str,
        patch: Patch,
        permissions: Option<Vec<Permission>>,
    ) -> Result<&mut Self> {
        let permissions = permissions
            .map(|p| crate::perm::normalize(&p, crate::perm::Target::Document))
            .transpose()?;
        self.tx.push(Op::Update {
            coll: self.coll.clone(),
            id: id.to_owned(),
            patch,
            permissions,
        })?;
        Ok(self)
    }

    /// Stages a delete, as [`Collection::delete`].
    pub fn delete(&mut self, id: &str) -> Result<&mut Self> {
        self.tx.push(Op::Delete(self.coll.clone(), id.to_owned()))?;
        Ok(self)
    }

    /// Stages an update of every document `queries` find, as [`Collection::update_where`].
    pub fn update_where(&mut self, queries: &[Query], data: impl Serialize) -> Result<&mut Self> {
        let data = self.coll.to_patch(data)?;
        self.tx.push(Op::UpdateWhere {
            coll: self.coll.clone(),
            queries: queries.to_vec(),
            data,
        })?;
        Ok(self)
    }

    /// Stages a delete of every document `queries` find, as [`Collection::delete_where`].
    pub fn delete_where(&mut self, queries: &[Query]) -> Result<&mut Self> {
        self.tx
            .push(Op::DeleteWhere(self.coll.clone(), queries.to_vec()))?;
        Ok(self)
    }
}

impl Collection {
    /// Updates, in one atomic write, every document `queries` find for the client, as
    /// [`Collection::update`] would one by one (each needs `update`; one refusal refuses
    /// all). A document found that no longer matches the filters at commit is left
    /// alone; one that began to match after the search is not updated. Without a limit
    /// every match is taken, and more than [`MAX_LIMIT`] is refused: page with a limit.
    pub fn update_where(&self, queries: &[Query], data: impl Serialize) -> Result<Vec<Document>> {
        let mut tx = self.client.transaction();
        tx.collection(&self.schema_id, &self.id)
            .update_where(queries, data)?;
        match tx.commit()?.pop() {
            Some(Outcome::WrittenMany(docs)) => Ok(docs),
            _ => Err(Error::internal("an update by queries returned nothing")),
        }
    }

    /// Deletes, in one atomic write, every document `queries` find for the client, as
    /// [`Collection::delete`] would one by one; the rules of [`Collection::update_where`]
    /// apply. Returns the deleted documents, as they were.
    pub fn delete_where(&self, queries: &[Query]) -> Result<Vec<Document>> {
        let mut tx = self.client.transaction();
        tx.collection(&self.schema_id, &self.id)
            .delete_where(queries)?;
        match tx.commit()?.pop() {
            Some(Outcome::DeletedMany(docs)) => Ok(docs),
            _ => Err(Error::internal("a delete by queries returned nothing")),
        }
    }
}
