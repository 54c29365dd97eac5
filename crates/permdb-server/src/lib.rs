//! An HTTP server speaking the part of Appwrite's REST API permdb implements (account,
//! sessions, JWTs, databases, collections, attributes, indexes, documents, users, teams),
//! and [`UserClient`], an axum extractor for one's own routes. It uses the permdb library
//! through its public API only; the `permdb` command (`src/main.rs`) serves a store.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let db = permdb::Db::open("data/").expect("open the store");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, permdb_server::router(db)).await
//! # }
//! ```

mod account;
mod admin;
mod auth;
mod cors;
mod databases;
mod error;
mod extract;
mod list;
mod model;
mod realtime;
mod transactions;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use extract::UserClient;
pub use realtime::RealtimeLimits;

/// Entry points for the fuzz targets (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::realtime::fuzz_message as realtime_message;
}

use permdb::Db;

/// Limits the server puts on every request, and what it lets browsers do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Largest request body, in bytes; past it, 413. Default 4 MiB (a document is at most
    /// 1 MiB encoded; its JSON may be larger).
    pub body_limit: usize,
    /// Longest a request may take; past it, 408. Default 30 s.
    pub timeout: Duration,
    /// Whether the session cookie is marked `Secure` (sent over HTTPS only): set it when
    /// the server is reached over TLS. Default `false`.
    pub secure_cookies: bool,
    /// The session cookie's `SameSite`. Default [`SameSite::Lax`].
    pub same_site: SameSite,
    /// Whether the server picks the id of every document and user created by a request
    /// without an API key: such requests must pass `unique()`, so that nobody can learn
    /// which ids exist by trying to create them (a taken id is a 409). Default `false`.
    pub assigned_ids: bool,
    /// The origins (`scheme://host[:port]`) whose pages may call the server from a
    /// browser, with credentials (the session cookie). Default none: no cross-origin
    /// access.
    pub cors_origins: Vec<String>,
    /// What staged transactions may hold in the server's memory.
    pub transaction_limits: TransactionLimits,
    /// Bounds on realtime connections (`/v1/realtime`).
    pub realtime: RealtimeLimits,
}

/// Bounds on staged transactions, which live in the server's memory until their commit,
/// rollback or expiry. Bytes are the memory staged data takes once parsed. An API key's
/// transactions count against that key only, never against the users' totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionLimits {
    /// Operations in one transaction (a bulk operation counts as one). Default 100.
    pub max_operations: usize,
    /// Staged bytes in one transaction. Default 4 MiB.
    pub max_transaction_bytes: usize,
    /// Pending transactions of one owner (an account or a key). Default 20.
    pub max_pending_per_owner: usize,
    /// Staged bytes of one owner. Default 16 MiB.
    pub max_owner_bytes: usize,
    /// Pending transactions of all users together. Default 2,000.
    pub max_users_pending: usize,
    /// Staged bytes of all users together. Default 256 MiB.
    pub max_users_bytes: usize,
}

impl Default for TransactionLimits {
    fn default() -> TransactionLimits {
        TransactionLimits {
            max_operations: 100,
            max_transaction_bytes: 4 << 20,
            max_pending_per_owner: 20,
            max_owner_bytes: 16 << 20,
            max_users_pending: 2000,
            max_users_bytes: 256 << 20,
        }
    }
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent only with requests from the server's own site.
    Strict,
    /// Sent with requests from the server's own site and top-level navigations to it.
    #[default]
    Lax,
    /// Sent with cross-site requests too, for an app on another site than the API; it is
    /// always marked `Secure` as well (browsers refuse it otherwise), so it needs TLS
    /// (or `localhost`).
    None,
}

impl std::str::FromStr for SameSite {
    type Err = permdb::Error;

    fn from_str(s: &str) -> permdb::Result<SameSite> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(SameSite::Strict),
            "lax" => Ok(SameSite::Lax),
            "none" => Ok(SameSite::None),
            _ => Err(permdb::Error::InvalidArgument(format!(
                "SameSite {}: strict, lax or none",
                permdb::wire::quote(s)
            ))),
        }
    }
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            body_limit: 4 << 20,
            timeout: Duration::from_secs(30),
            secure_cookies: false,
            same_site: SameSite::Lax,
            assigned_ids: false,
            cors_origins: Vec::new(),
            transaction_limits: TransactionLimits::default(),
            realtime: RealtimeLimits::default(),
        }
    }
}

impl ServerOptions {
    /// Sets the largest request body.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> ServerOptions {
        self.body_limit = bytes;
        self
    }

    /// Sets the bounds on staged transactions.
    #[must_use]
    pub fn transaction_limits(mut self, limits: TransactionLimits) -> ServerOptions {
        self.transaction_limits = limits;
        self
    }

    /// Sets the bounds on realtime connections.
    #[must_use]
    pub fn realtime(mut self, limits: RealtimeLimits) -> ServerOptions {
        self.realtime = limits;
        self
    }

    /// Sets the longest a request may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> ServerOptions {
        self.timeout = timeout;
        self
    }

    /// Marks the session cookie `Secure` (for a server reached over TLS).
    #[must_use]
    pub fn secure_cookies(mut self, secure: bool) -> ServerOptions {
        self.secure_cookies = secure;
        self
    }

    /// Sets the session cookie's `SameSite` ([`SameSite::None`] implies `Secure`).
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> ServerOptions {
        self.same_site = same_site;
        self
    }

    /// Makes the server pick the ids of documents and users that requests without an API
    /// key create (they must pass `unique()`).
    #[must_use]
    pub fn assigned_ids(mut self, assigned: bool) -> ServerOptions {
        self.assigned_ids = assigned;
        self
    }

    /// Lets pages from `origin` call the server from a browser, with credentials. The
    /// origin is `http` or `https`, a host and an optional port, nothing else (no path,
    /// no `*`): an [`Error::InvalidArgument`](permdb::Error::InvalidArgument) otherwise.
    /// It is kept as browsers send it: lowercase, without the scheme's default port.
    pub fn cors_origin(mut self, origin: &str) -> permdb::Result<ServerOptions> {
        self.cors_origins.push(cors::normalize_origin(origin)?);
        Ok(self)
    }
}

impl ServerOptions {
    /// Refuses an id the caller chose when the server assigns them (`assigned_ids`).
    pub(crate) fn check_new_id(&self, caller: &auth::Caller, id: &str) -> Result<(), ApiError> {
        if self.assigned_ids && caller.via != auth::Via::Key && id != permdb::UNIQUE_ID {
            return Err(ApiError::bad_request(format!(
                "this server assigns ids: pass \"{}\" instead of {}",
                permdb::UNIQUE_ID,
                permdb::wire::quote(id)
            )));
        }
        Ok(())
    }
}

/// The Appwrite-compatible API under `/v1`, with default [`ServerOptions`].
pub fn router(db: Db) -> Router {
    router_with(db, ServerOptions::default())
}

/// The Appwrite-compatible API under `/v1`.
pub fn router_with(db: Db, options: ServerOptions) -> Router {
    router_with_routes(db, options, Router::new())
}

/// The Appwrite-compatible API under `/v1` beside an app's own `routes` (such as ones
/// taking a [`UserClient`]), all under the same limits, timeout and CORS origins.
pub fn router_with_routes(db: Db, options: ServerOptions, routes: Router<Db>) -> Router {
    let api = Router::new()
        .route("/ping", axum::routing::get(ping))
        .route("/realtime", axum::routing::get(realtime::handler))
        .merge(account::routes())
        .merge(databases::routes())
        .merge(admin::routes())
        .method_not_allowed_fallback(|| async { ApiError::no_method() });
    let timeout = options.timeout;
    let body_limit = options.body_limit;
    let transaction_limits = options.transaction_limits;
    let realtime_limits = options.realtime;
    let cors = cors::layer(&options.cors_origins);
    let mut app = routes
        .nest("/v1", api)
        .fallback(|| async { ApiError::no_route() })
        .with_state(db)
        .layer(Extension(std::sync::Arc::new(options)))
        .layer(Extension(std::sync::Arc::new(realtime::Connections::new(
            &realtime_limits,
        ))))
        .layer(Extension(std::sync::Arc::new(transactions::Registry::new(
            transaction_limits,
        ))))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |request, next: Next| {
            within(timeout, request, next)
        }));
    // Outside the timeout and the routes: a preflight is answered here, before any route
    // (none takes OPTIONS) could refuse it. Without origins, no CORS header at all.
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.layer(TraceLayer::new_for_http())
}

/// `GET /v1/ping`: `Pong!` as plain text, as Appwrite answers its SDKs' `client.ping()`.
async fn ping() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        "Pong!",
    )
        .into_response()
}

/// Runs the request, or answers 408 with Appwrite's JSON body once `timeout` has passed.
/// (Work already handed to a blocking thread finishes there; its answer is dropped.)
async fn within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "general_request_timeout",
            format!("the request took longer than {} ms", timeout.as_millis()),
        )
        .into_response(),
    }
}

/// 204 with no body but a content type (not JSON, as there is none to parse): Appwrite's
/// SDKs read the content type of every response, empty ones included.
pub(crate) fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
    )
        .into_response()
}

/// Runs `work` (permdb calls: storage reads and writes, password hashing) on a thread
/// that may block, off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "general_unknown",
            format!("request worker failed: {e}"),
        )
    })?
}
