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

use crate::auth::{Caller, Via, caller};
use crate::databases::{Flavor, Legacy, Tables};
use crate::error::ApiError;
use crate::extract::Body;
use crate::{TransactionLimits, blocking, list};
use permdb::wire::{ValueKind, parse_operation};
use permdb::{AccountStamp, Actor, Db};

pub(crate) use permdb::wire::{BulkDocument, Operation as StagedOp, Target};

/// Seconds a transaction lives unless its `ttl` says otherwise, and the bounds of `ttl`.
const TTL_DEFAULT: u32 = 300;
const TTL_MIN: u32 = 60;
const TTL_MAX: u32 = 3600;

/// The transactions of one router, by id, and the bounds on what they hold: staged
/// operations live in memory until the commit, the rollback or the expiry.
pub(crate) struct Registry {
    open: Mutex<HashMap<String, Staged>>,
    limits: TransactionLimits,
}

/// Who may use a transaction: the API key that made it, or the user account that made
/// it (any of its sessions and tokens; `account` tells a deleted account from a new one
/// given the same id). Guests may not make transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Key(String),
    User { id: String, account: AccountStamp },
}

impl Owner {
    fn is_user(&self) -> bool {
        matches!(self, Owner::User { .. })
    }
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
    /// Operations staged: what the model counts (kept once `ops` is dropped).
    count: usize,
    /// The JSON size of what `ops` holds.
    bytes: usize,
    /// Held while pending; dropped when the transaction ends.
    ops: Vec<StagedOp>,
}

impl Staged {
    /// Whether to keep it: not expired, or being committed (whose end must be recorded).
    fn live(&self, now: i64) -> bool {
        self.expires_ms > now || self.status == Status::Committing
    }

    /// Whether it holds staged operations (pending or being committed).
    fn open(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Committing)
    }

    /// Ends it: its operations are dropped, their count kept.
    fn finish(&mut self, status: Status, now: i64) {
        self.status = status;
        self.updated_ms = now;
        self.ops = Vec::new();
        self.bytes = 0;
    }
}

/// The open transactions' count and bytes of `owner`, and of all users'.
fn usage(open: &HashMap<String, Staged>, owner: &Owner) -> (usize, usize, usize, usize) {
    let (mut mine, mut mine_bytes, mut users, mut users_bytes) = (0, 0, 0, 0);
    for t in open.values().filter(|t| t.open()) {
        if t.owner == *owner {
            mine += 1;
            mine_bytes += t.bytes;
        }
        if t.owner.is_user() {
            users += 1;
            users_bytes += t.bytes;
        }
    }
    (mine, mine_bytes, users, users_bytes)
}

fn too_much(what: String) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "transaction_limit_exceeded",
        what,
    )
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
    match caller.client.writer()? {
        Actor::Key { id } => Ok(Owner::Key(id)),
        Actor::User { id, account } => Ok(Owner::User { id, account }),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "user_unauthorized",
            "transactions need a signed-in user or an API key",
        )),
    }
}

/// The store's clock in milliseconds since the epoch: what staged transactions expire by.
fn now_ms(db: &Db) -> i64 {
    i64::try_from(db.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Registry {
    pub(crate) fn new(limits: TransactionLimits) -> Registry {
        Registry {
            open: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Staged>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on transaction `id` if `owner` may use it (see [`find`]).
    fn with<T>(
        &self,
        now: i64,
        id: &str,
        owner: &Owner,
        f: impl FnOnce(&mut Staged) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut open = self.lock();
        f(find(&mut open, now, id, owner)?)
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
        // What needs no store is checked now (ids, data size and depth, permission
        // strings), into a transaction that is dropped: the commit checks it all again.
        let mut trial = caller.client.transaction();
        for op in &ops {
            op.stage(&mut trial)?;
        }
        let bytes: usize = ops.iter().map(StagedOp::size).sum();
        let now = now_ms(db);
        let mut open = self.lock();
        let (_, owner_bytes, _, users_bytes) = usage(&open, &owner);
        let l = self.limits;
        if owner_bytes.saturating_add(bytes) > l.max_owner_bytes
            || (owner.is_user() && users_bytes.saturating_add(bytes) > l.max_users_bytes)
        {
            return Err(too_much(format!(
                "staged data past the most kept ({} MiB per owner, {} MiB for all users)",
                l.max_owner_bytes >> 20,
                l.max_users_bytes >> 20
            )));
        }
        let t = find(&mut open, now, id, &owner)?;
        {
            if t.status != Status::Pending {
                return Err(not_ready(t));
            }
            if t.bytes.saturating_add(bytes) > l.max_transaction_bytes {
                return Err(too_much(format!(
                    "transaction {id:?} would hold more than {} MiB of staged data",
                    l.max_transaction_bytes >> 20
                )));
            }
            if t.ops.len() + ops.len() > l.max_operations {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "transaction_limit_exceeded",
                    format!(
                        "transaction {id:?} has {} operations; {} more would pass the most, {}",
                        t.ops.len(),
                        ops.len(),
                        l.max_operations
                    ),
                ));
            }
            t.count += ops.len();
            t.bytes += bytes;
            t.ops.extend(ops);
            t.updated_ms = now;
            Ok(())
        }
    }
}

/// Transaction `id` if `owner` may use it. Expired ones are swept first; an expired one
/// asked for is dropped and answered `transaction_expired`, one of another owner as a
/// missing one.
fn find<'a>(
    open: &'a mut HashMap<String, Staged>,
    now: i64,
    id: &str,
    owner: &Owner,
) -> Result<&'a mut Staged, ApiError> {
    open.retain(|key, t| t.live(now) || key == id);
    match open.get(id) {
        Some(t) if t.owner == *owner => {}
        _ => return Err(not_found(id)),
    }
    if open.get(id).is_some_and(|t| !t.live(now)) {
        open.remove(id);
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "transaction_expired",
            format!("transaction {id:?} expired"),
        ));
    }
    open.get_mut(id).ok_or_else(|| not_found(id))
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
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map(permdb::wire::format_time)
            .unwrap_or_default()
    };
    json!({
        "$id": t.id,
        "$createdAt": time(t.created_ms),
        "$updatedAt": time(t.updated_ms),
        "status": t.status.as_str(),
        "operations": t.count,
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
        let now = now_ms(&db);
        let mut open = registry.lock();
        open.retain(|_, t| t.live(now));
        let (mine, _, users, _) = usage(&open, &owner);
        let l = registry.limits;
        if mine >= l.max_pending_per_owner || (owner.is_user() && users >= l.max_users_pending) {
            return Err(too_much(format!(
                "too many pending transactions (at most {} each, {} for all users): commit, roll back or delete some",
                l.max_pending_per_owner,
                l.max_users_pending
            )));
        }
        let staged = Staged {
            id: permdb::ID::unique(),
            owner,
            created_ms: now,
            updated_ms: now,
            // A whole number of seconds within TTL_MAX, checked above.
            expires_ms: now + (ttl as i64) * 1000,
            status: Status::Pending,
            count: 0,
            bytes: 0,
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
        ("status", ValueKind::String),
        ("operations", ValueKind::Number),
        ("expiresAt", ValueKind::String),
    ],
    searchable: &[],
    missing: permdb::ResourceKind::Document,
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
        let now = now_ms(&db);
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
        let answer = registry.with(now_ms(&db), &id, &owner, |t| Ok(model(t)))?;
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
        let now = now_ms(&db);
        // Marked under the registry's lock, so that one commit runs at a time and nothing
        // removes it meanwhile (a delete refuses, the sweep keeps it).
        let ops = registry.with(now, &id, &owner, |t| {
            if t.status != Status::Pending {
                return Err(not_ready(t));
            }
            if rollback {
                t.finish(Status::RolledBack, now);
                return Ok(None);
            }
            t.status = Status::Committing;
            t.updated_ms = now;
            Ok(Some(std::mem::take(&mut t.ops)))
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
            let t = open.get_mut(&id).ok_or_else(|| {
                ApiError::internal(format!(
                    "transaction {id:?} went missing while it committed"
                ))
            })?;
            if t.status == Status::Committing {
                t.finish(finished, now_ms(&db));
            }
            model(t)
        };
        outcome.map_err(F::error)?;
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
        // Checked and removed under one lock: a commit that has begun is never removed
        // from under it (it would answer its end to nobody).
        let mut open = registry.lock();
        let t = find(&mut open, now_ms(&db), &id, &owner)?;
        if t.status == Status::Committing {
            return Err(not_ready(t));
        }
        open.remove(&id);
        Ok(crate::no_content())
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
        if b.operations.len() > registry.limits.max_operations {
            return Err(ApiError::bad_request(format!(
                "at most {} operations at once",
                registry.limits.max_operations
            )));
        }
        let ops = b
            .operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                parse_operation(op).map_err(|e| {
                    let e = ApiError::from(e);
                    ApiError::new(e.status, e.kind, format!("operation {i}: {}", e.message))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let caller = caller(&db, &headers)?;
        registry.stage(&db, &caller, &id, ops)?;
        let owner = owner_of(&caller)?;
        let answer = registry.with(now_ms(&db), &id, &owner, |t| Ok(model(t)))?;
        Ok((StatusCode::CREATED, Json(answer)).into_response())
    })
    .await
}
