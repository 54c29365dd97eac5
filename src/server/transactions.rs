//! Appwrite's transactions (`/v1/tablesdb/transactions`, `/v1/databases/transactions`):
//! operations staged in the server's memory with an expiry, committed as one `Transaction`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::{Caller, Via, caller};
use super::databases::{
    Flavor, Legacy, Tables, exact_number, parse_permissions, split_bulk_document,
};
use super::error::ApiError;
use super::extract::Body;
use super::{blocking, list};
use crate::{Db, Permission, Query};

/// Seconds a transaction lives unless its `ttl` says otherwise, and the bounds of `ttl`.
const TTL_DEFAULT: u32 = 300;
const TTL_MIN: u32 = 60;
const TTL_MAX: u32 = 3600;
/// Most operations one transaction stages (a bulk operation counts as one).
pub(crate) const MAX_OPERATIONS: usize = 100;
/// Most transactions one owner keeps at once, and the server in all: staged operations
/// live in memory until they are committed, rolled back or expire.
const MAX_PER_OWNER: usize = 20;
const MAX_OPEN: usize = 2000;

/// The transactions of one router, by id.
#[derive(Default)]
pub(crate) struct Registry {
    open: Mutex<HashMap<String, Staged>>,
}

/// Who may use a transaction: API keys (any key, as Appwrite), or one user (any of the
/// user's sessions and tokens). Guests may not make transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Key,
    User(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Committing,
    Committed,
    RolledBack,
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Committing => "committing",
            Status::Committed => "committed",
            Status::RolledBack => "rolled_back",
            Status::Failed => "failed",
        }
    }
}

struct Staged {
    id: String,
    owner: Owner,
    created_ms: i64,
    updated_ms: i64,
    expires_ms: i64,
    status: Status,
    ops: Vec<StagedOp>,
}

/// One staged operation, checked for shape when staged; everything else is checked by
/// the library at commit, as the committing caller.
#[derive(Debug, Clone)]
pub(crate) enum StagedOp {
    Create(Target, String, Map<String, Value>, Option<Vec<Permission>>),
    Upsert(Target, String, Map<String, Value>, Option<Vec<Permission>>),
    Update(Target, String, Map<String, Value>, Option<Vec<Permission>>),
    Increment {
        target: Target,
        id: String,
        attribute: String,
        by: f64,
        limit: Option<f64>,
    },
    Delete(Target, String),
    BulkCreate(Target, Vec<BulkDocument>),
    BulkUpsert(Target, Vec<BulkDocument>),
    UpdateWhere(Target, Vec<Query>, Map<String, Value>),
    DeleteWhere(Target, Vec<Query>),
}

/// A document of a bulk operation: id, fields, permissions.
pub(crate) type BulkDocument = (String, Map<String, Value>, Option<Vec<Permission>>);

/// The database (schema) and collection (table) an operation writes to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) schema: String,
    pub(crate) collection: String,
}

impl Staged {
    /// Whether to keep it: not expired, or being committed (whose end must be recorded).
    fn live(&self, now: i64) -> bool {
        self.expires_ms > now || self.status == Status::Committing
    }
}

impl StagedOp {
    fn is_bulk(&self) -> bool {
        matches!(
            self,
            StagedOp::BulkCreate(..)
                | StagedOp::BulkUpsert(..)
                | StagedOp::UpdateWhere(..)
                | StagedOp::DeleteWhere(..)
        )
    }

    fn target(&self) -> &Target {
        match self {
            StagedOp::Create(t, ..)
            | StagedOp::Upsert(t, ..)
            | StagedOp::Update(t, ..)
            | StagedOp::Delete(t, _)
            | StagedOp::BulkCreate(t, _)
            | StagedOp::BulkUpsert(t, _)
            | StagedOp::UpdateWhere(t, ..)
            | StagedOp::DeleteWhere(t, _)
            | StagedOp::Increment { target: t, .. } => t,
        }
    }

    /// Stages this operation into a library transaction.
    fn stage(&self, tx: &mut crate::Transaction) -> crate::Result<()> {
        let t = self.target();
        let mut c = tx.collection(&t.schema, &t.collection);
        match self {
            StagedOp::Create(_, id, data, p) => c.create(id, data, p.clone())?,
            StagedOp::Upsert(_, id, data, p) => c.upsert(id, data, p.clone())?,
            StagedOp::Update(_, id, data, p) => c.update(id, data, p.clone())?,
            StagedOp::Increment {
                id,
                attribute,
                by,
                limit,
                ..
            } => c.increment(id, attribute, *by, *limit)?,
            StagedOp::Delete(_, id) => c.delete(id)?,
            StagedOp::BulkCreate(_, docs) => {
                for (id, data, p) in docs {
                    c.create(id, data, p.clone())?;
                }
                &mut c
            }
            StagedOp::BulkUpsert(_, docs) => {
                for (id, data, p) in docs {
                    c.upsert(id, data, p.clone())?;
                }
                &mut c
            }
            StagedOp::UpdateWhere(_, queries, data) => c.update_where(queries, data)?,
            StagedOp::DeleteWhere(_, queries) => c.delete_where(queries)?,
        };
        Ok(())
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "transaction_not_found",
        format!("transaction {id:?} not found"),
    )
}

/// The owner a caller acts as; guests have none. A key needs `documents.write`.
fn owner_of(caller: &Caller) -> Result<Owner, ApiError> {
    let principal = caller.client.require_documents(true)?;
    if caller.via == Via::Key {
        return Ok(Owner::Key);
    }
    match principal.user_id() {
        Some(user) => Ok(Owner::User(user.to_owned())),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "user_unauthorized",
            "transactions need a signed-in user or an API key",
        )),
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Staged>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on transaction `id` if `owner` may use it; an expired one is dropped and
    /// answered `transaction_expired`, one of another owner as a missing one.
    fn with<T>(
        &self,
        now: i64,
        id: &str,
        owner: &Owner,
        f: impl FnOnce(&mut Staged) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut open = self.lock();
        open.retain(|key, t| t.live(now) || key == id);
        let staged = match open.get_mut(id) {
            Some(t) if t.owner == *owner => t,
            _ => return Err(not_found(id)),
        };
        if staged.expires_ms <= now {
            open.remove(id);
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "transaction_expired",
                format!("transaction {id:?} expired"),
            ));
        }
        f(staged)
    }

    /// Adds `ops` to pending transaction `id`.
    pub(crate) fn stage(
        &self,
        db: &Db,
        caller: &Caller,
        id: &str,
        ops: Vec<StagedOp>,
    ) -> Result<(), ApiError> {
        let owner = owner_of(caller)?;
        if caller.via != Via::Key && ops.iter().any(StagedOp::is_bulk) {
            return Err(key_only());
        }
        let now = db.inner.now_ms();
        self.with(now, id, &owner, |t| {
            if t.status != Status::Pending {
                return Err(not_ready(t));
            }
            if t.ops.len() + ops.len() > MAX_OPERATIONS {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "transaction_limit_exceeded",
                    format!(
                        "transaction {id:?} has {} operations; {} more would pass the most, {MAX_OPERATIONS}",
                        t.ops.len(),
                        ops.len()
                    ),
                ));
            }
            t.ops.extend(ops);
            t.updated_ms = now;
            Ok(())
        })
    }
}

fn key_only() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
        "bulk writes need an API key",
    )
}

fn not_ready(t: &Staged) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "transaction_not_ready",
        format!(
            "transaction {:?} is {}, not pending",
            t.id,
            t.status.as_str()
        ),
    )
}

fn model(t: &Staged) -> Value {
    let time = |ms: i64| {
        crate::timefmt::from_millis(ms)
            .map(crate::timefmt::format)
            .unwrap_or_default()
    };
    json!({
        "$id": t.id,
        "$createdAt": time(t.created_ms),
        "$updatedAt": time(t.updated_ms),
        "status": t.status.as_str(),
        "operations": t.ops.len(),
        "expiresAt": time(t.expires_ms),
    })
}

/// The transaction routes of one API.
pub(super) fn routes<F: Flavor>() -> Router<Db> {
    let root = format!("/{}/transactions", F::ROOT);
    Router::new()
        .route(&root, post(create::<F>).get(list_all::<F>))
        .route(
            &format!("{root}/{{id}}"),
            get(get_one::<F>).patch(update::<F>).delete(delete::<F>),
        )
        .route(
            &format!("{root}/{{id}}/operations"),
            post(add_operations::<F>),
        )
}

/// Both APIs' transaction routes.
pub(super) fn all_routes() -> Router<Db> {
    routes::<Legacy>().merge(routes::<Tables>())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTransaction {
    /// Seconds; the SDKs type it as a number, so `60.0` is taken as 60.
    #[serde(default)]
    ttl: Option<f64>,
}

async fn create<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Body(b): Body<NewTransaction>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let ttl = b.ttl.unwrap_or(f64::from(TTL_DEFAULT));
        if ttl.fract() != 0.0 || !(f64::from(TTL_MIN)..=f64::from(TTL_MAX)).contains(&ttl) {
            return Err(ApiError::bad_request(format!(
                "ttl must be a whole number of seconds, {TTL_MIN} to {TTL_MAX}"
            )));
        }
        let owner = owner_of(&caller(&db, &headers)?)?;
        let now = db.inner.now_ms();
        let mut open = registry.lock();
        open.retain(|_, t| t.live(now));
        if open.len() >= MAX_OPEN || open.values().filter(|t| t.owner == owner).count() >= MAX_PER_OWNER {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "transaction_limit_exceeded",
                format!(
                    "too many open transactions (at most {MAX_PER_OWNER} each, {MAX_OPEN} in all): commit, roll back or delete some"
                ),
            ));
        }
        let staged = Staged {
            id: crate::ID::unique(),
            owner,
            created_ms: now,
            updated_ms: now,
            // A whole number of seconds within TTL_MAX, checked above.
            expires_ms: now + (ttl as i64) * 1000,
            status: Status::Pending,
            ops: Vec::new(),
        };
        let answer = model(&staged);
        open.insert(staged.id.clone(), staged);
        Ok((StatusCode::CREATED, Json(answer)).into_response())
    })
    .await
}

/// The transaction kinds list queries may name.
const TRANSACTIONS: list::ListKind = list::ListKind {
    attributes: &[
        ("status", crate::query::plan::ValueKind::String),
        ("operations", crate::query::plan::ValueKind::Number),
        ("expiresAt", crate::query::plan::ValueKind::String),
    ],
    searchable: &[],
    missing: crate::ResourceKind::Document,
};

async fn list_all<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), false)?;
        let owner = owner_of(&caller(&db, &headers)?)?;
        let now = db.inner.now_ms();
        let mut open = registry.lock();
        open.retain(|_, t| t.live(now));
        let mut mine: Vec<&Staged> = open.values().filter(|t| t.owner == owner).collect();
        mine.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        let models = mine.into_iter().map(model).collect();
        drop(open);
        let answer = list::answer(models, &params, &TRANSACTIONS, "transactions")?;
        Ok(Json(answer).into_response())
    })
    .await
}

async fn get_one<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let owner = owner_of(&caller(&db, &headers)?)?;
        let answer = registry.with(db.inner.now_ms(), &id, &owner, |t| Ok(model(t)))?;
        Ok(Json(answer).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionChange {
    #[serde(default)]
    commit: Option<bool>,
    #[serde(default)]
    rollback: Option<bool>,
}

/// `PATCH`: `{commit: true}` commits every staged operation as one atomic write, as the
/// calling client; `{rollback: true}` drops them.
async fn update<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<TransactionChange>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (commit, rollback) = (b.commit == Some(true), b.rollback == Some(true));
        if commit == rollback {
            return Err(ApiError::bad_request(
                "give either commit: true or rollback: true",
            ));
        }
        let caller = caller(&db, &headers)?;
        let owner = owner_of(&caller)?;
        let now = db.inner.now_ms();
        // Taken out under the registry's lock, so that one commit runs at a time.
        let ops = registry.with(now, &id, &owner, |t| {
            if t.status != Status::Pending {
                return Err(not_ready(t));
            }
            t.updated_ms = now;
            if rollback {
                t.status = Status::RolledBack;
                t.ops.clear();
                return Ok(None);
            }
            t.status = Status::Committing;
            Ok(Some(t.ops.clone()))
        })?;
        let outcome = match ops {
            None => Ok(()),
            Some(ops) => commit_ops(&caller, &ops),
        };
        let finished = if outcome.is_ok() {
            Status::Committed
        } else {
            Status::Failed
        };
        let answer = {
            let mut open = registry.lock();
            open.get_mut(&id).map(|t| {
                if t.status == Status::Committing {
                    t.status = finished;
                    t.updated_ms = db.inner.now_ms();
                }
                model(t)
            })
        };
        outcome.map_err(F::error)?;
        let answer = answer.ok_or_else(|| not_found(&id))?;
        Ok(Json(answer).into_response())
    })
    .await
}

/// Commits `ops` as one library transaction of `caller`'s client.
fn commit_ops(caller: &Caller, ops: &[StagedOp]) -> Result<(), ApiError> {
    let mut tx = caller.client.transaction();
    for op in ops {
        op.stage(&mut tx)?;
    }
    tx.commit()?;
    Ok(())
}

async fn delete<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let owner = owner_of(&caller(&db, &headers)?)?;
        registry.with(db.inner.now_ms(), &id, &owner, |t| {
            if t.status == Status::Committing {
                return Err(not_ready(t));
            }
            Ok(())
        })?;
        registry.lock().remove(&id);
        Ok(super::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operations {
    #[serde(default)]
    operations: Vec<Map<String, Value>>,
}

/// `POST .../operations`: stages Appwrite's operation objects, each
/// `{action, databaseId, tableId | collectionId, rowId | documentId, data}`.
async fn add_operations<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Operations>,
) -> Result<Response, ApiError> {
    blocking(move || {
        if b.operations.is_empty() {
            return Err(ApiError::bad_request("operations must not be empty"));
        }
        if b.operations.len() > MAX_OPERATIONS {
            return Err(ApiError::bad_request(format!(
                "at most {MAX_OPERATIONS} operations at once"
            )));
        }
        let ops = b
            .operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                parse_operation(op)
                    .map_err(|e| ApiError::bad_request(format!("operation {i}: {}", e.message)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let caller = caller(&db, &headers)?;
        registry.stage(&db, &caller, &id, ops)?;
        let owner = owner_of(&caller)?;
        let answer = registry.with(db.inner.now_ms(), &id, &owner, |t| Ok(model(t)))?;
        Ok((StatusCode::CREATED, Json(answer)).into_response())
    })
    .await
}

/// Takes `key`, or its other API's spelling, as a string.
fn text(op: &mut Map<String, Value>, keys: &[&str]) -> Result<Option<String>, ApiError> {
    let mut found = None;
    for key in keys {
        match op.remove(*key) {
            None => {}
            Some(Value::String(s)) if found.is_none() => found = Some(s),
            Some(Value::String(_)) => {
                return Err(ApiError::bad_request(format!(
                    "{} given twice",
                    keys.join(" or ")
                )));
            }
            Some(_) => return Err(ApiError::bad_request(format!("{key} must be a string"))),
        }
    }
    Ok(found)
}

fn object(v: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request(format!("{what} must be an object"))),
    }
}

/// A document's fields and permissions.
type Fields = (Map<String, Value>, Option<Vec<Permission>>);

/// The fields of a single operation's `data`, and its `$permissions`.
fn fields(data: Value) -> Result<Fields, ApiError> {
    let mut fields = match data {
        Value::Null => Map::new(),
        other => object(other, "data")?,
    };
    let permissions = match fields.remove("$permissions") {
        None | Some(Value::Null) => None,
        Some(list) => {
            parse_permissions(Some(serde_json::from_value(list).map_err(|_| {
                ApiError::bad_request("$permissions must be a list of strings")
            })?))?
        }
    };
    Ok((fields, permissions))
}

/// Reads one of Appwrite's operation objects.
fn parse_operation(mut op: Map<String, Value>) -> Result<StagedOp, ApiError> {
    let action =
        text(&mut op, &["action"])?.ok_or_else(|| ApiError::bad_request("action is missing"))?;
    let schema = text(&mut op, &["databaseId"])?
        .ok_or_else(|| ApiError::bad_request("databaseId is missing"))?;
    let collection = text(&mut op, &["tableId", "collectionId"])?
        .ok_or_else(|| ApiError::bad_request("tableId (or collectionId) is missing"))?;
    let doc_id = text(&mut op, &["rowId", "documentId"])?;
    let data = op.remove("data").unwrap_or(Value::Null);
    if let Some(extra) = op.keys().next() {
        return Err(ApiError::bad_request(format!("unknown field {extra:?}")));
    }
    let target = Target { schema, collection };
    let needs_id = || {
        doc_id
            .clone()
            .ok_or_else(|| ApiError::bad_request(format!("a {action} needs rowId (or documentId)")))
    };
    let queries = |v: Option<Value>| -> Result<Vec<Query>, ApiError> {
        let list: Vec<String> = match v {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v)
                .map_err(|_| ApiError::bad_request("queries must be a list of strings"))?,
        };
        list.iter()
            .map(|q| Query::from_json(q).map_err(ApiError::from))
            .collect()
    };
    let docs = |data: Value| -> Result<Vec<BulkDocument>, ApiError> {
        match data {
            Value::Array(list) => list
                .into_iter()
                .map(|d| split_bulk_document(object(d, "each document")?))
                .collect(),
            _ => Err(ApiError::bad_request("data must be a list of documents")),
        }
    };
    Ok(match action.as_str() {
        "create" => {
            let id = crate::id::new_id("document id", &needs_id()?)?;
            let (fields, p) = fields(data)?;
            StagedOp::Create(target, id, fields, p)
        }
        "upsert" => {
            let (fields, p) = fields(data)?;
            StagedOp::Upsert(target, needs_id()?, fields, p)
        }
        "update" => {
            let (fields, p) = fields(data)?;
            StagedOp::Update(target, needs_id()?, fields, p)
        }
        "delete" => StagedOp::Delete(target, needs_id()?),
        "increment" | "decrement" => {
            let mut data = object(data, "data")?;
            let attribute = text(&mut data, &["column", "attribute"])?
                .ok_or_else(|| ApiError::bad_request("data.column (or attribute) is missing"))?;
            let number = |v: Option<Value>, what: &str| -> Result<Option<f64>, ApiError> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => exact_number(&n, what).map(Some),
                    Some(_) => Err(ApiError::bad_request(format!("{what} must be a number"))),
                }
            };
            let by = number(data.remove("value"), "value")?.unwrap_or(1.0);
            let (bound, other) = if action == "increment" {
                ("max", "min")
            } else {
                ("min", "max")
            };
            let limit = number(data.remove(bound), bound)?;
            if data.remove(other).is_some() {
                return Err(ApiError::bad_request(format!(
                    "a {action} is bounded by {bound}, not {other}"
                )));
            }
            if let Some(extra) = data.keys().next() {
                return Err(ApiError::bad_request(format!("unknown field data.{extra}")));
            }
            if by < 0.0 {
                return Err(ApiError::bad_request(
                    "value must not be negative: step the other way instead",
                ));
            }
            let by = if action == "increment" { by } else { -by };
            StagedOp::Increment {
                target,
                id: needs_id()?,
                attribute,
                by,
                limit,
            }
        }
        "bulkCreate" => StagedOp::BulkCreate(target, docs(data)?),
        "bulkUpsert" => StagedOp::BulkUpsert(target, docs(data)?),
        "bulkUpdate" => {
            let mut data = object(data, "data")?;
            let q = queries(data.remove("queries"))?;
            let fields = match data.remove("data") {
                None | Some(Value::Null) => Map::new(),
                Some(v) => object(v, "data.data")?,
            };
            StagedOp::UpdateWhere(target, q, fields)
        }
        "bulkDelete" => {
            let mut data = match data {
                Value::Null => Map::new(),
                other => object(other, "data")?,
            };
            StagedOp::DeleteWhere(target, queries(data.remove("queries"))?)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown action {other:?}: create, update, upsert, delete, increment, decrement, bulkCreate, bulkUpdate, bulkUpsert or bulkDelete"
            )));
        }
    })
}
