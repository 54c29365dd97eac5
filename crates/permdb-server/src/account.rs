//! `/v1/account`: sign-up, the signed-in user, email sessions (with Appwrite's session
//! cookie), and JWTs.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Via, caller, cookie_name};
use crate::error::ApiError;
use crate::extract::Body;
use std::sync::Arc;

use crate::{SameSite, ServerOptions, blocking, model};
use permdb::Db;

pub(super) fn routes() -> Router<Db> {
    Router::new()
        .route("/account", post(create).get(get_account))
        .route("/account/prefs", get(get_prefs).patch(update_prefs))
        .route("/account/name", axum::routing::patch(update_name))
        .route("/account/email", axum::routing::patch(update_email))
        .route("/account/password", axum::routing::patch(update_password))
        .route("/account/sessions/email", post(create_session))
        .route(
            "/account/sessions",
            get(list_sessions).delete(delete_sessions),
        )
        .route(
            "/account/sessions/{id}",
            get(get_session).delete(delete_session),
        )
        .route("/account/jwts", post(create_jwt))
        .route("/account/jwt", post(create_jwt))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignUp {
    user_id: String,
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    headers: HeaderMap,
    Body(b): Body<SignUp>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let caller = caller(&db, &headers)?;
        options.check_new_id(&caller, &b.user_id)?;
        let user =
            caller
                .client
                .account()
                .create(&b.user_id, &b.email, &b.password, b.name.as_deref())?;
        Ok((StatusCode::CREATED, Json(model::user_of(&db, &user)?)).into_response())
    })
    .await
}

async fn get_account(State(db): State<Db>, headers: HeaderMap) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?.client.account().get()?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
}

async fn create_session(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    headers: HeaderMap,
    Body(b): Body<SignIn>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let caller = caller(&db, &headers)?;
        let mut session = caller
            .client
            .account()
            .create_email_password_session(&b.email, &b.password)?;
        // The web SDK keeps the session in this cookie, out of reach of script (HttpOnly).
        let cookie = session_cookie(
            cookie_name(db.project()),
            session.secret.clone(),
            session.expire - db.now(),
            &options,
        );
        // As Appwrite: the body carries the secret only for a request made with an API key
        // (an app's server, signing its user in for server-side rendering). A browser's
        // script never sees it.
        if caller.via != Via::Key {
            session.secret = String::new();
        }
        let mut response = (
            StatusCode::CREATED,
            Json(model::session(
                &session,
                &model::account_email(&db, &session.user_id)?,
            )),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, v);
        }
        Ok(response)
    })
    .await
}

async fn list_sessions(State(db): State<Db>, headers: HeaderMap) -> Result<Response, ApiError> {
    blocking(move || {
        let list = caller(&db, &headers)?.client.account().list_sessions()?;
        // All of one account: its email is read once.
        let email = match list.first() {
            Some(s) => model::account_email(&db, &s.user_id)?,
            None => String::new(),
        };
        let sessions: Vec<_> = list.iter().map(|s| model::session(s, &email)).collect();
        Ok(Json(json!({"total": sessions.len(), "sessions": sessions})).into_response())
    })
    .await
}

async fn get_session(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let sessions = caller(&db, &headers)?.client.account().list_sessions()?;
        sessions
            .into_iter()
            .find(|s| {
                if id == "current" {
                    s.current
                } else {
                    s.id == id
                }
            })
            .ok_or_else(|| permdb::Error::not_found(permdb::ResourceKind::Session, &id).into())
            .and_then(|s| {
                let email = model::account_email(&db, &s.user_id)?;
                Ok(Json(model::session(&s, &email)).into_response())
            })
    })
    .await
}

async fn delete_session(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let account = caller(&db, &headers)?.client.account();
        let current = id == "current"
            || account
                .list_sessions()?
                .iter()
                .any(|s| s.current && s.id == id);
        account.delete_session(&id)?;
        let mut response = crate::no_content();
        if current {
            clear_session_cookie(&mut response, &db, &options);
        }
        Ok(response)
    })
    .await
}

async fn delete_sessions(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    blocking(move || {
        caller(&db, &headers)?.client.account().delete_sessions()?;
        let mut response = crate::no_content();
        clear_session_cookie(&mut response, &db, &options);
        Ok(response)
    })
    .await
}

/// The `Set-Cookie` value of session cookie `name=value` for `max_age` (none left:
/// `Max-Age=0`, drop it), built by the `cookie` crate: out of reach of script
/// (`HttpOnly`), path `/`, the configured `SameSite`; `Secure` when configured, and always
/// with `SameSite=None` (browsers refuse such a cookie otherwise).
fn session_cookie(
    name: String,
    value: String,
    max_age: time::Duration,
    options: &ServerOptions,
) -> String {
    let same_site = match options.same_site {
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::None => cookie::SameSite::None,
    };
    let secure = options.secure_cookies || options.same_site == SameSite::None;
    cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(secure)
        .max_age(max_age.max(time::Duration::ZERO))
        .build()
        .to_string()
}

/// Tells the browser to drop the session cookies (the current name and `_legacy`): the
/// session they name has ended.
fn clear_session_cookie(response: &mut Response, db: &Db, options: &ServerOptions) {
    let name = cookie_name(db.project());
    for cookie in [name.clone(), format!("{name}_legacy")] {
        let value = session_cookie(cookie, String::new(), time::Duration::ZERO, options);
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewJwt {
    /// Seconds the token lasts (Appwrite's SDKs send it when asked); the store's
    /// `jwt_ttl` when absent.
    #[serde(default)]
    duration: Option<u32>,
}

/// `POST /v1/account/jwts`, with an optional JSON body `{duration}` (an empty body is
/// `{}`, as older SDKs send none).
async fn create_jwt(
    State(db): State<Db>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: NewJwt = if body.iter().all(u8::is_ascii_whitespace) {
        NewJwt::default()
    } else {
        let bad = |e: String| {
            ApiError::bad_request(format!(
                "the body must be {{\"duration\": seconds}}: {}",
                crate::extract::without_values(&e)
            ))
        };
        match serde_json::from_slice::<serde_json::Value>(&body) {
            // An object only: serde would read a struct from an array too.
            Ok(value @ serde_json::Value::Object(_)) => {
                serde_json::from_value(value).map_err(|e| bad(e.to_string()))?
            }
            Ok(_) => return Err(bad("not an object".into())),
            Err(e) => return Err(bad(e.to_string())),
        }
    };
    blocking(move || {
        let caller = caller(&db, &headers)?;
        if caller.via == Via::Jwt {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "user_jwt_creation_denied",
                "a request authenticated by a JWT cannot create another JWT",
            ));
        }
        let account = caller.client.account();
        let jwt = match b.duration {
            Some(seconds) => {
                account.create_jwt_lasting(time::Duration::seconds(i64::from(seconds)))?
            }
            None => account.create_jwt()?,
        };
        Ok((StatusCode::CREATED, Json(json!({"jwt": jwt.jwt}))).into_response())
    })
    .await
}

async fn get_prefs(State(db): State<Db>, headers: HeaderMap) -> Result<Response, ApiError> {
    blocking(move || Ok(Json(caller(&db, &headers)?.client.account().prefs()?).into_response()))
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prefs {
    prefs: serde_json::Map<String, serde_json::Value>,
}

/// `PATCH /v1/account/prefs`: replaces the preferences; answers the user, as Appwrite.
async fn update_prefs(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<Prefs>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let account = caller(&db, &headers)?.client.account();
        // Read first: a caller who may not read the account changes nothing.
        let user = account.get()?;
        account.update_prefs(b.prefs)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewName {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEmail {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewPassword {
    password: String,
    /// Appwrite makes it optional for accounts without a password; every permdb account
    /// has one, so a missing one is a wrong one.
    #[serde(default)]
    old_password: Option<String>,
}

async fn update_name(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<NewName>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?
            .client
            .account()
            .update_name(&b.name)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

/// `PATCH /account/email`: proven by the current password; the new email is unverified.
async fn update_email(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<NewEmail>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let account = caller(&db, &headers)?.client.account();
        let user = account.update_email(&b.email, &b.password)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

/// `PATCH /account/password`: proven by `oldPassword`; the user's other sessions end.
async fn update_password(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<NewPassword>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let account = caller(&db, &headers)?.client.account();
        let old = b.old_password.unwrap_or_default();
        let user = account.update_password(&b.password, &old)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}
