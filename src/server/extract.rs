//! Extractors: `UserClient` for one's own axum routes (a permdb client acting as the
//! user whose token the request carries), and a JSON body whose rejections are Appwrite errors.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::auth::bearer;
use super::error::ApiError;
use crate::{Client, Db};

/// A permdb [`Client`] acting as the user whose token the request carries, in
/// `Authorization: Bearer <token>` or `X-Appwrite-JWT`. The token is verified against the
/// store (signature, expiry, session still live, user not blocked) before the handler runs;
/// a missing or bad token is a 401 with Appwrite's JSON error body.
///
/// The router's state must give a [`Db`] (`Db: FromRef<S>`):
///
/// ```no_run
/// use axum::{Json, Router, routing::get};
/// use permdb::server::UserClient;
///
/// async fn mine(UserClient(client): UserClient) -> Json<u64> {
///     let count = client.schema("db").collection("birthdays").count(&[]).unwrap_or(0);
///     Json(count)
/// }
/// # fn app(db: permdb::Db) -> Router {
/// Router::new().route("/api/mine", get(mine)).with_state(db)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct UserClient(pub Client);

impl<S> FromRequestParts<S> for UserClient
where
    Db: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "user_unauthorized",
                "a token is needed: `Authorization: Bearer <token>`",
            )
        })?;
        let db = Db::from_ref(state);
        Ok(UserClient(db.client().set_jwt(token)?))
    }
}

/// A JSON body; a malformed, mistyped or oversized one is an Appwrite error (400 or 413).
pub(crate) struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(ApiError::new(
                    status,
                    "general_argument_invalid",
                    rejection.body_text(),
                ))
            }
        }
    }
}
