//! Who is asking: a request's credential headers (Appwrite's and Nuvix's names) or
//! session cookie, turned into a permdb `Client` acting as that principal.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use super::error::ApiError;
use crate::{Client, Db};

/// How the caller authenticated; token callers may not mint tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Key,
    Jwt,
    Session,
    Guest,
}

/// The client a request acts through.
pub(crate) struct Caller {
    pub(crate) client: Client,
    pub(crate) via: Via,
}

pub(crate) const PROJECT_HEADERS: [&str; 2] = ["x-appwrite-project", "x-nuvix-project"];
const KEY_HEADERS: [&str; 2] = ["x-appwrite-key", "x-nuvix-key"];
const JWT_HEADERS: [&str; 2] = ["x-appwrite-jwt", "x-nuvix-jwt"];
const SESSION_HEADERS: [&str; 2] = ["x-appwrite-session", "x-nuvix-session"];

/// The value of the first of `names` present; a value that is not visible ASCII is a 400.
pub(crate) fn header<'a>(
    headers: &'a HeaderMap,
    names: &[&str],
) -> Result<Option<&'a str>, ApiError> {
    for name in names {
        if let Some(v) = headers.get(*name) {
            return v
                .to_str()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("header {name} is not visible ASCII")));
        }
    }
    Ok(None)
}

/// The name of the session cookie Appwrite's web SDK keeps for `project`.
pub(crate) fn cookie_name(project: &str) -> String {
    format!("a_session_{}", project.to_lowercase())
}

/// The session secret in the request's cookies, under Appwrite's cookie names.
fn session_cookie(headers: &HeaderMap, project: &str) -> Result<Option<String>, ApiError> {
    let name = cookie_name(project);
    let legacy = format!("{name}_legacy");
    for value in headers.get_all(COOKIE) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::bad_request("the Cookie header is not visible ASCII"))?;
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && (k == name || k == legacy)
            {
                return Ok(Some(v.trim_matches('"').to_owned()));
            }
        }
    }
    Ok(None)
}

/// The project the request names must be the store's (404 `project_not_found` otherwise);
/// a request naming none is taken to mean the store's.
fn check_project(db: &Db, headers: &HeaderMap) -> Result<(), ApiError> {
    match header(headers, &PROJECT_HEADERS)? {
        Some(p) if p != db.project() => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "project_not_found",
            format!("project {p:?} is not served here"),
        )),
        _ => Ok(()),
    }
}

/// The client for a request: an API key, a token, a session (header or cookie), or a
/// guest. Two credential headers at once are refused rather than guessed between.
pub(crate) fn caller(db: &Db, headers: &HeaderMap) -> Result<Caller, ApiError> {
    check_project(db, headers)?;
    let key = header(headers, &KEY_HEADERS)?;
    let jwt = header(headers, &JWT_HEADERS)?;
    let session = header(headers, &SESSION_HEADERS)?;
    let given = [key.is_some(), jwt.is_some(), session.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ApiError::bad_request(
            "give one of an API key, a JWT or a session, not several",
        ));
    }
    let guest = db.client();
    let (client, via) = if let Some(key) = key {
        (guest.set_key(key)?, Via::Key)
    } else if let Some(jwt) = jwt {
        (guest.set_jwt(jwt)?, Via::Jwt)
    } else if let Some(secret) = session {
        (guest.set_session(secret)?, Via::Session)
    } else if let Some(secret) = session_cookie(headers, db.project())? {
        (guest.set_session(&secret)?, Via::Session)
    } else {
        (guest, Via::Guest)
    };
    Ok(Caller { client, via })
}

/// The token of `Authorization: Bearer <token>`, or of the JWT headers.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(auth) = header(headers, &["authorization"])? {
        let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "user_unauthorized",
                "the Authorization header must be `Bearer <token>`",
            ));
        }
        return Ok(Some(token.trim()));
    }
    header(headers, &JWT_HEADERS)
}
