//! Who is asking: a request's credential headers (Appwrite's and Nuvix's names) or
//! session cookie, turned into a permdb `Client` acting as that principal.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use crate::error::ApiError;
use permdb::{Client, Db};

/// How the caller authenticated; token callers may not mint tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Key,
    Jwt,
    Session,
    /// A session, from the web SDK's cookie.
    Cookie,
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

/// The one value given under any of `names` (spellings of one header, such as
/// Appwrite's and Nuvix's), with the name it came under. A value that is not visible
/// ASCII, or a header given more than once (repeated, or under two of the names, even
/// with equal values), is a 400 naming it: a request is refused, never guessed between.
pub(crate) fn header<'a>(
    headers: &'a HeaderMap,
    names: &[&'static str],
) -> Result<Option<(&'static str, &'a str)>, ApiError> {
    let mut given = Vec::new();
    for name in names {
        given.extend(headers.get_all(*name).iter().map(|v| (*name, v)));
    }
    match given.as_slice() {
        [] => Ok(None),
        [(name, v)] => v
            .to_str()
            .map(|v| Some((*name, v)))
            .map_err(|_| ApiError::bad_request(format!("header {name} is not visible ASCII"))),
        [..] => {
            let mut named: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
            named.dedup();
            Err(ApiError::bad_request(format!(
                "header {} given {} times; give it once",
                named.join(" and "),
                given.len()
            )))
        }
    }
}

/// The name of the session cookie Appwrite's web SDK keeps for `project`.
pub(crate) fn cookie_name(project: &str) -> String {
    format!("a_session_{}", project.to_lowercase())
}

/// The distinct session secrets in the request's cookies, under Appwrite's cookie names
/// (the current one and `_legacy`, which Appwrite sets alike). Cookies are read leniently
/// (another app on the same host may set cookies that are not ASCII); only these names
/// are looked at.
fn session_cookies(headers: &HeaderMap, project: &str) -> Vec<String> {
    let name = cookie_name(project);
    let legacy = format!("{name}_legacy");
    let mut found: Vec<String> = Vec::new();
    for value in headers.get_all(COOKIE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            let v = v.trim_matches('"');
            if (k == name || k == legacy) && !found.iter().any(|f| f == v) {
                found.push(v.to_owned());
            }
        }
    }
    found
}

/// The session the cookies carry: the one live session among them. A cookie whose
/// session has ended (expired, logged out elsewhere, the user deleted), or one another
/// site on the host tossed in, is passed over, and with no live session the request is a
/// guest's (as in Appwrite), so the browser can still sign in. Two different live
/// sessions are a 400: the request is refused, not guessed between.
fn cookie_session(db: &Db, headers: &HeaderMap) -> Result<Option<Client>, ApiError> {
    let mut live: Vec<Client> = Vec::new();
    for secret in session_cookies(headers, db.project()) {
        if let Ok(client) = db.client().set_session(&secret) {
            live.push(client);
        }
    }
    if live.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "the session cookies ({}, {}_legacy) carry two live sessions; send one",
            cookie_name(db.project()),
            cookie_name(db.project())
        )));
    }
    Ok(live.pop())
}

/// The project the request names must be the store's (404 `project_not_found` otherwise);
/// a request naming none is taken to mean the store's.
fn check_project(db: &Db, headers: &HeaderMap) -> Result<(), ApiError> {
    match header(headers, &PROJECT_HEADERS)? {
        Some((_, p)) if p != db.project() => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "project_not_found",
            format!("project {p:?} is not served here"),
        )),
        _ => Ok(()),
    }
}

/// The client for a request: an API key, a token, a session (header or cookie), or a
/// guest. Two credential headers at once are refused rather than guessed between; a
/// credential header is taken over a session cookie (a page cannot make a browser send a
/// header to another origin, so a header is always the caller's own choice).
/// Appwrite's headers for a key acting as a user. permdb does not take them over HTTP
/// (impersonation is `Client::impersonate`, in-process): a request carrying one is
/// refused rather than run with the key's full rights.
const IMPERSONATION_HEADERS: [&str; 3] = [
    "x-appwrite-impersonate-user-id",
    "x-appwrite-impersonate-user-email",
    "x-appwrite-impersonate-user-phone",
];

pub(crate) fn caller(db: &Db, headers: &HeaderMap) -> Result<Caller, ApiError> {
    check_project(db, headers)?;
    if let Some(name) = IMPERSONATION_HEADERS
        .iter()
        .find(|h| headers.contains_key(**h))
    {
        return Err(ApiError::bad_request(format!(
            "header {name}: impersonation over HTTP is not supported"
        )));
    }
    let key = header(headers, &KEY_HEADERS)?;
    let jwt = header(headers, &JWT_HEADERS)?;
    let session = header(headers, &SESSION_HEADERS)?;
    let given: Vec<&str> = [key, jwt, session]
        .iter()
        .flatten()
        .map(|(name, _)| *name)
        .collect();
    if given.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "give one of an API key, a JWT or a session, not several (got {})",
            given.join(" and ")
        )));
    }
    let guest = db.client();
    let (client, via) = if let Some((_, key)) = key {
        (guest.set_key(key)?, Via::Key)
    } else if let Some((_, jwt)) = jwt {
        (guest.set_jwt(jwt)?, Via::Jwt)
    } else if let Some((_, secret)) = session {
        (guest.set_session(secret)?, Via::Session)
    } else if let Some(client) = cookie_session(db, headers)? {
        // (A credential header that fails stays a 401.)
        (client, Via::Cookie)
    } else {
        (guest, Via::Guest)
    };
    Ok(Caller { client, via })
}

/// The token of `Authorization: Bearer <token>`, or of the JWT headers; both at once are a 400.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let jwt = header(headers, &JWT_HEADERS)?;
    let Some((_, auth)) = header(headers, &["authorization"])? else {
        return Ok(jwt.map(|(_, token)| token));
    };
    if let Some((name, _)) = jwt {
        return Err(ApiError::bad_request(format!(
            "give the token once: in authorization or in {name}, not both"
        )));
    }
    let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "user_unauthorized",
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(Some(token.trim()))
}
