//! An HTTP server speaking the part of Appwrite's REST API permdb implements (account,
//! sessions, JWTs, databases, collections, attributes, indexes, documents, users, teams),
//! and [`UserClient`], an axum extractor for one's own routes. Behind the `server` feature.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let db = permdb::Db::open("data/").expect("open the store");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, permdb::server::router(db)).await
//! # }
//! ```

mod account;
mod admin;
mod auth;
mod databases;
mod error;
mod extract;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use extract::UserClient;

use crate::Db;

/// Limits the server puts on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Largest request body, in bytes; past it, 413. Default 4 MiB (a document is at most
    /// 1 MiB encoded; its JSON may be larger).
    pub body_limit: usize,
    /// Longest a request may take; past it, 408. Default 30 s.
    pub timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions {
            body_limit: 4 << 20,
            timeout: Duration::from_secs(30),
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

    /// Sets the longest a request may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> ServerOptions {
        self.timeout = timeout;
        self
    }
}

/// The Appwrite-compatible API under `/v1`, with default [`ServerOptions`].
pub fn router(db: Db) -> Router {
    router_with(db, ServerOptions::default())
}

/// The Appwrite-compatible API under `/v1`.
pub fn router_with(db: Db, options: ServerOptions) -> Router {
    let api = Router::new()
        .merge(account::routes())
        .merge(databases::routes())
        .merge(admin::routes());
    Router::new()
        .nest("/v1", api)
        .fallback(|| async { ApiError::no_route() })
        .with_state(db)
        .layer(DefaultBodyLimit::max(options.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.timeout,
        ))
        .layer(TraceLayer::new_for_http())
}

/// 204 with no body but a content type (not JSON, as there is none to parse): Appwrite's
/// SDKs read the content type of every response, empty ones included.
pub(crate) fn no_content() -> axum::response::Response {
    use axum::response::IntoResponse;
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
