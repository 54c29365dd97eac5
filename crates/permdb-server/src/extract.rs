//! Extractors: `UserClient` for one's own axum routes (a permdb client acting as the
//! user whose token the request carries), and a JSON body whose rejections are Appwrite errors.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::bearer;
use crate::error::ApiError;
use permdb::{Client, Db};

/// A permdb [`Client`] acting as the user whose token the request carries, in
/// `Authorization: Bearer <token>` or `X-Appwrite-JWT`. The token is verified against the
/// store (signature, expiry, session still live, user not blocked) before the handler runs;
/// a missing or bad token is a 401 with Appwrite's JSON error body.
///
/// The router's state must give a [`Db`] (`Db: FromRef<S>`):
///
/// ```no_run
/// use axum::{Json, Router, routing::get};
/// use permdb_server::UserClient;
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
        // An object only: serde would also read a struct from an array of its fields.
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v @ serde_json::Value::Object(_))) => {
                serde_json::from_value(v).map(Body).map_err(|e| {
                    ApiError::bad_request(format!(
                        "the JSON body does not fit: {}",
                        without_values(&e.to_string())
                    ))
                })
            }
            Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(ApiError::new(
                    status,
                    "general_argument_invalid",
                    without_values(&rejection.body_text()),
                ))
            }
        }
    }
}

/// A JSON rejection's text without the values it quotes (serde writes "invalid type:
/// string \"…\", expected …"): a body's values may be passwords, and the message is
/// traced. Field names, expectations and positions stay.
pub(crate) fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["invalid type: ", "invalid value: "]
        .iter()
        .filter_map(|marker| rest.find(marker).map(|i| (i, marker.len())))
        .min()
    {
        let (start, len) = at;
        out.push_str(rest.get(..start + len).unwrap_or_default());
        let after = rest.get(start + len..).unwrap_or_default();
        match after.rfind(", expected") {
            Some(end) => {
                out.push_str("(value not shown)");
                rest = after.get(end..).unwrap_or_default();
            }
            None => {
                out.push_str("(value not shown)");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn rejections_lose_their_values() {
        let text = "Failed to deserialize the JSON body into the target type: password: \
                    invalid type: integer `27182818284`, expected a string at line 1 column 55";
        let shown = without_values(text);
        assert!(!shown.contains("27182818284"), "{shown}");
        assert!(shown.contains("password: invalid type: (value not shown), expected a string"));
        let text = "email: invalid type: string \"hunter2, expected\", expected u32";
        assert!(!without_values(text).contains("hunter2"));
        let text = "unknown field `passwrd`, expected one of `email`, `password`";
        assert_eq!(without_values(text), text);
    }
}
