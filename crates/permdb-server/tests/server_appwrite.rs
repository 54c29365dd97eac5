//! What Appwrite's SDKs read from every answer, checked over HTTP: JSON error bodies with
//! their content type (the router's own 404 and 405 too), `ping`, each conflict's type, and
//! what a browser needs: CORS for configured origins only, and the cookie's `SameSite`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::server::{Server, appwrite_error, start, start_with};
use permdb_server::{SameSite, ServerOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a request; returns the status, the content type and the body text.
async fn raw(s: &Server, method: Method, path: &str) -> (StatusCode, String, String) {
    let resp = s
        .http
        .request(method, format!("{}{path}", s.base))
        .header("X-Appwrite-Project", "default")
        .header("X-Appwrite-Key", &s.key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

/// An Appwrite error answer as the Python SDK reads it: `application/json`, and a body with
/// `message`, `code` (the status), `type` and `version`.
#[track_caller]
fn json_error(got: (StatusCode, String, String), status: StatusCode, kind: &str) {
    let (s, content_type, text) = got;
    assert_eq!(s, status, "{text}");
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?} for {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], status.as_u16(), "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["version"].is_string(), "{body}");
}

#[tokio::test]
async fn the_routers_own_refusals_are_appwrite_json() {
    let s = start().await;
    json_error(
        raw(&s, Method::GET, "/v1/nothing/here").await,
        StatusCode::NOT_FOUND,
        "general_route_not_found",
    );
    json_error(
        raw(&s, Method::GET, "/outside/v1").await,
        StatusCode::NOT_FOUND,
        "general_route_not_found",
    );
    // A served path with a method it does not take.
    json_error(
        raw(&s, Method::POST, "/v1/databases/db/collections/birthdays").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "general_not_implemented",
    );
    json_error(
        raw(&s, Method::PATCH, "/v1/account/jwts").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "general_not_implemented",
    );
}

#[tokio::test]
async fn ping_answers_pong_as_text() {
    let s = start().await;
    let (status, content_type, body) = raw(&s, Method::GET, "/v1/ping").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(body, "Pong!");
}

#[tokio::test]
async fn each_conflict_names_what_exists() {
    let s = start().await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let post = |path: &'static str, body: Value| {
        let s = &s;
        async move { s.call(Method::POST, path, &key, Some(body)).await }
    };
    let user = json!({"userId": "user-a", "email": "new@example.com", "password": "password-n"});
    appwrite_error(
        post("/v1/users", user).await,
        StatusCode::CONFLICT,
        "user_already_exists",
    );
    let email = json!({"userId": "user-n", "email": "a@example.com", "password": "password-n"});
    appwrite_error(
        post("/v1/users", email).await,
        StatusCode::CONFLICT,
        "user_already_exists",
    );
    // Sign-up through the account service: the same type.
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-b", "email": "z@example.com", "password": "password-z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let team = json!({"teamId": "t1", "name": "T"});
    assert_eq!(post("/v1/teams", team.clone()).await.0, StatusCode::CREATED);
    appwrite_error(
        post("/v1/teams", team).await,
        StatusCode::CONFLICT,
        "team_already_exists",
    );
    let member = json!({"userId": "user-a", "roles": []});
    assert_eq!(
        post("/v1/teams/t1/memberships", member.clone()).await.0,
        StatusCode::CREATED
    );
    appwrite_error(
        post("/v1/teams/t1/memberships", member).await,
        StatusCode::CONFLICT,
        "team_invite_already_exists",
    );
    appwrite_error(
        post(
            "/v1/databases",
            json!({"databaseId": "db", "name": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "database_already_exists",
    );
    appwrite_error(
        post(
            "/v1/databases/db/collections",
            json!({"collectionId": "birthdays", "name": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "collection_already_exists",
    );
    let attribute = json!({"key": "email", "required": false});
    let attributes = "/v1/databases/db/collections/birthdays/attributes/email";
    assert_eq!(
        post(attributes, attribute.clone()).await.0,
        StatusCode::ACCEPTED
    );
    appwrite_error(
        post(attributes, attribute).await,
        StatusCode::CONFLICT,
        "attribute_already_exists",
    );
    let index = json!({"key": "by_email", "type": "unique", "attributes": ["email"]});
    let indexes = "/v1/databases/db/collections/birthdays/indexes";
    assert_eq!(post(indexes, index.clone()).await.0, StatusCode::ACCEPTED);
    appwrite_error(
        post(indexes, index).await,
        StatusCode::CONFLICT,
        "index_already_exists",
    );
    // A taken document id, and another document's values under a unique index.
    let docs = "/v1/databases/db/collections/birthdays/documents";
    appwrite_error(
        post(docs, json!({"documentId": "doc1", "data": {}})).await,
        StatusCode::CONFLICT,
        "document_already_exists",
    );
    let with_email = |id: &str| json!({"documentId": id, "data": {"email": "k@example.com"}});
    assert_eq!(post(docs, with_email("e1")).await.0, StatusCode::CREATED);
    appwrite_error(
        post(docs, with_email("e2")).await,
        StatusCode::CONFLICT,
        "document_already_exists",
    );
}

#[tokio::test]
async fn a_wrong_email_or_password_is_invalid_credentials() {
    let s = start().await;
    for (email, password) in [
        ("a@example.com", "wrong-password"),
        ("nobody@example.com", "password-a"),
    ] {
        appwrite_error(
            s.call(
                Method::POST,
                "/v1/account/sessions/email",
                &[],
                Some(json!({"email": email, "password": password})),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "user_invalid_credentials",
        );
    }
    // A blocked user's sign-in, as Appwrite names it.
    s.db.root().users().update_status("user-a", false).unwrap();
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/account/sessions/email",
            &[],
            Some(json!({"email": "a@example.com", "password": "password-a"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_blocked",
    );
}

/// Sends `method` to `path` with exactly these headers; returns the status and headers.
async fn with_headers(
    s: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap) {
    let mut req = s.http.request(method, format!("{}{path}", s.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.headers().clone())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

const APP: &str = "http://localhost:5173";
const DOCS: &str = "/v1/databases/db/collections/birthdays/documents";

/// A preflight as the web SDK's `fetch` makes it for a JSON request with its headers.
fn preflight(origin: &str) -> Vec<(&str, &str)> {
    vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "content-type,x-appwrite-project,x-appwrite-response-format,x-sdk-name,x-sdk-platform,x-sdk-language,x-sdk-version,x-fallback-cookies,x-appwrite-jwt",
        ),
    ]
}

#[tokio::test]
async fn a_configured_origin_may_call_with_credentials_and_no_other() {
    let (options, clock) = common::test_options();
    // Given as a person might type it; browsers send it lowercase, without :443.
    let server = ServerOptions::default()
        .cors_origin("http://LocalHost:5173")
        .unwrap()
        .cors_origin("https://app.example.com:443")
        .unwrap();
    let s = start_with(options, clock, server).await;
    // Preflight: the origin echoed (never `*`), credentials, the SDK's headers and methods.
    let (status, h) = with_headers(&s, Method::OPTIONS, DOCS, &preflight(APP)).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    let allowed = header(&h, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for wanted in [
        "content-type",
        "x-appwrite-project",
        "x-sdk-version",
        "x-appwrite-jwt",
    ] {
        assert!(allowed.contains(wanted), "{wanted} not in {allowed}");
    }
    let methods = header(&h, "access-control-allow-methods").unwrap();
    for wanted in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(wanted), "{wanted} not in {methods}");
    }
    // The real request: the origin echoed and credentials allowed, the answer unchanged.
    let (status, h) = with_headers(
        &s,
        Method::GET,
        DOCS,
        &[
            ("Origin", "https://app.example.com"),
            ("X-Appwrite-Project", "default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a guest lists what guests may read");
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    // Another origin, a look-alike, or a port off: no allow-origin, so the browser keeps
    // the answer from the page.
    for other in [
        "http://localhost:5174",
        "http://evil.example",
        "https://app.example.com.evil.example",
        "null",
    ] {
        let (_, h) = with_headers(&s, Method::OPTIONS, DOCS, &preflight(other)).await;
        assert_eq!(header(&h, "access-control-allow-origin"), None, "{other}");
        let (_, h) = with_headers(
            &s,
            Method::GET,
            DOCS,
            &[("Origin", other), ("X-Appwrite-Project", "default")],
        )
        .await;
        assert_eq!(header(&h, "access-control-allow-origin"), None, "{other}");
    }
}

#[tokio::test]
async fn without_origins_there_is_no_cross_origin_access() {
    let s = start().await;
    let (_, h) = with_headers(&s, Method::OPTIONS, DOCS, &preflight(APP)).await;
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    assert_eq!(header(&h, "access-control-allow-credentials"), None);
    let (status, h) = with_headers(
        &s,
        Method::GET,
        DOCS,
        &[("Origin", APP), ("X-Appwrite-Project", "default")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "access-control-allow-origin"), None);
}

#[test]
fn malformed_origins_and_same_site_values_are_refused() {
    for bad in ["*", "https://example.com/", "example.com", "null"] {
        let r = ServerOptions::default().cors_origin(bad);
        assert!(
            matches!(r, Err(permdb::Error::InvalidArgument(ref m)) if m.contains("CORS origin")),
            "{bad}: {r:?}"
        );
    }
    assert!("sideways".parse::<SameSite>().is_err());
    assert_eq!("None".parse::<SameSite>().unwrap(), SameSite::None);
}

/// Signs in as a browser does (no key); returns the session cookie's `Set-Cookie`.
async fn sign_in_cookie(s: &Server) -> String {
    let resp = s
        .http
        .post(format!("{}/v1/account/sessions/email", s.base))
        .header("X-Appwrite-Project", "default")
        .json(&json!({"email": "a@example.com", "password": "password-a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("a_session_default="))
        .unwrap()
}

fn attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_session_cookie_takes_the_configured_same_site() {
    let lax = attributes(&sign_in_cookie(&start().await).await);
    assert!(lax.contains(&"SameSite=Lax".to_owned()), "{lax:?}");
    assert!(lax.contains(&"HttpOnly".to_owned()), "{lax:?}");
    assert!(!lax.contains(&"Secure".to_owned()), "{lax:?}");
    assert!(lax.contains(&"Path=/".to_owned()), "{lax:?}");
    // The session's lifetime (a year by default), in whole seconds.
    let age = lax
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .and_then(|s| s.parse::<i64>().ok());
    assert!(age.is_some_and(|s| s > 86_400), "{lax:?}");
    // `--secure-cookies` marks it Secure with any SameSite.
    let (options, clock) = common::test_options();
    let s = start_with(
        options,
        clock,
        ServerOptions::default().secure_cookies(true),
    )
    .await;
    let secure = attributes(&sign_in_cookie(&s).await);
    assert!(
        secure.contains(&"Secure".to_owned()) && secure.contains(&"SameSite=Lax".to_owned()),
        "{secure:?}"
    );
    for (same_site, wanted) in [
        (SameSite::Strict, "SameSite=Strict"),
        (SameSite::None, "SameSite=None"),
    ] {
        let (options, clock) = common::test_options();
        let s = start_with(
            options,
            clock,
            ServerOptions::default().same_site(same_site),
        )
        .await;
        let got = attributes(&sign_in_cookie(&s).await);
        assert!(got.contains(&wanted.to_owned()), "{got:?}");
        assert!(got.contains(&"HttpOnly".to_owned()), "{got:?}");
        // Browsers drop a SameSite=None cookie that is not Secure.
        assert_eq!(
            got.contains(&"Secure".to_owned()),
            same_site == SameSite::None,
            "{got:?}"
        );
    }
}

/// `GET` with the API key; the JSON body.
async fn get_json(s: &Server, path: &str) -> (StatusCode, Value) {
    s.call(
        Method::GET,
        path,
        &[("X-Appwrite-Key", s.key.as_str())],
        None,
    )
    .await
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["$id"].as_str().unwrap().to_owned())
        .collect()
}

fn q(query: &str) -> String {
    form_urlencoded::byte_serialize(query.as_bytes()).collect()
}

/// Lists take Appwrite's `queries[]`, `search` and `total=false`, with `find`'s meaning:
/// the total counts every match, the page is what limit, offset and cursors leave.
#[tokio::test]
async fn management_lists_take_queries_search_and_total() {
    let s = start().await;
    let limit1 = q(r#"{"method":"limit","values":[1]}"#);
    let (status, page) = get_json(&s, &format!("/v1/users?queries[0]={limit1}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        (page["total"].as_u64(), ids(&page, "users")),
        (Some(3), vec!["user-a".to_owned()])
    );
    let desc = q(r#"{"method":"orderDesc","attribute":"email"}"#);
    let offset = q(r#"{"method":"offset","values":[1]}"#);
    let (_, page) = get_json(
        &s,
        &format!("/v1/users?queries[]={desc}&queries[]={offset}"),
    )
    .await;
    assert_eq!(ids(&page, "users"), ["user-b", "user-a"]);
    let after = q(r#"{"method":"cursorAfter","values":["user-a"]}"#);
    let (_, page) = get_json(&s, &format!("/v1/users?queries[]={after}")).await;
    assert_eq!(ids(&page, "users"), ["user-b", "user-c"]);
    let email = q(r#"{"method":"equal","attribute":"email","values":["c@example.com"]}"#);
    let (_, page) = get_json(&s, &format!("/v1/users?queries[]={email}&total=false")).await;
    assert_eq!(
        (page["total"].as_u64(), ids(&page, "users")),
        (Some(0), vec!["user-c".to_owned()])
    );
    let (_, page) = get_json(&s, "/v1/users?search=b").await;
    assert_eq!(ids(&page, "users"), ["user-b"]);
    // Refused, naming the fault: an attribute users do not have, a cursor naming no one,
    // a parameter lists do not take, a total that is not a boolean or given twice.
    let secret = q(r#"{"method":"equal","attribute":"password","values":["x"]}"#);
    let nobody = q(r#"{"method":"cursorAfter","values":["nobody"]}"#);
    for (path, status, kind) in [
        (
            format!("/v1/users?queries[]={secret}"),
            StatusCode::BAD_REQUEST,
            "general_query_invalid",
        ),
        (
            format!("/v1/users?queries[]={nobody}"),
            StatusCode::NOT_FOUND,
            "user_not_found",
        ),
        (
            "/v1/users?limit=1".to_owned(),
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        ),
        (
            "/v1/users?total=maybe".to_owned(),
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        ),
        (
            "/v1/users?total=false&total=true".to_owned(),
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        ),
        (
            "/v1/databases/db/collections/birthdays/documents?search=x".to_owned(),
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        ),
    ] {
        appwrite_error(get_json(&s, &path).await, status, kind);
    }
    // Appwrite's list cache lifetime is taken (every list is answered fresh anyway).
    let (status, _) = get_json(&s, "/v1/tablesdb/db/tables/birthdays/rows?ttl=60").await;
    assert_eq!(status, StatusCode::OK);
    appwrite_error(
        get_json(&s, "/v1/users?ttl=-1").await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    // Documents: total=false leaves the count out, the page stays.
    let (_, docs) = get_json(
        &s,
        "/v1/databases/db/collections/birthdays/documents?total=false",
    )
    .await;
    assert_eq!(
        (docs["total"].as_u64(), ids(&docs, "documents").len()),
        (Some(0), 3)
    );
    // Collections, databases and teams lists too.
    let named = q(r#"{"method":"equal","attribute":"name","values":["Birthdays"]}"#);
    let (_, colls) = get_json(
        &s,
        &format!("/v1/databases/db/collections?queries[]={named}"),
    )
    .await;
    assert_eq!(ids(&colls, "collections"), ["birthdays"]);
    let (_, none) = get_json(&s, "/v1/tablesdb/db/tables?search=nothing").await;
    assert_eq!(
        (none["total"].as_u64(), ids(&none, "tables").len()),
        (Some(0), 0)
    );
    for (id, name) in [("t1", "Red team"), ("t2", "Blue team")] {
        s.db.root().teams().create(id, name).unwrap();
    }
    let (_, teams) = get_json(&s, "/v1/teams?search=blue").await;
    assert_eq!(ids(&teams, "teams"), ["t2"]);
    // Memberships are searched by member name and email (for callers who may see them).
    s.db.root()
        .teams()
        .create_membership("t1", "user-b", &[])
        .unwrap();
    s.db.root()
        .teams()
        .create_membership("t1", "user-c", &[])
        .unwrap();
    let (status, found) = get_json(&s, "/v1/teams/t1/memberships?search=c").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let members: Vec<&str> = found["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["user-c"]);
    // Each API's own field names: the other API's are refused, not matched against nothing.
    let rows = q(r#"{"method":"equal","attribute":"rowSecurity","values":[true]}"#);
    let docs = q(r#"{"method":"equal","attribute":"documentSecurity","values":[true]}"#);
    for path in [
        format!("/v1/databases/db/collections?queries[]={rows}"),
        format!("/v1/tablesdb/db/tables?queries[]={docs}"),
    ] {
        appwrite_error(
            get_json(&s, &path).await,
            StatusCode::BAD_REQUEST,
            "general_query_invalid",
        );
    }
    let (_, tables) = get_json(&s, &format!("/v1/tablesdb/db/tables?queries[]={rows}")).await;
    assert_eq!(ids(&tables, "tables"), ["birthdays"]);
}

/// Appwrite's impersonation headers are not taken over HTTP: refused, never run with the
/// key's full rights.
#[tokio::test]
async fn impersonation_headers_are_refused() {
    let s = start().await;
    for header in [
        "X-Appwrite-Impersonate-User-Id",
        "X-Appwrite-Impersonate-User-Email",
        "X-Appwrite-Impersonate-User-Phone",
    ] {
        appwrite_error(
            s.call(
                Method::GET,
                DOCS,
                &[("X-Appwrite-Key", s.key.as_str()), (header, "user-a")],
                None,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
}

/// Nuvix's client (`client.schema('db').collection('birthdays').find()`, the seed's call)
/// speaks `/v1/schemas/.../documents` with `X-Nuvix-*` headers and reads `{total, data}`
/// lists whose documents name `$collection` and `$schema`: served over the same rules.
#[tokio::test]
async fn nuvix_document_routes_are_served() {
    let s = start().await;
    let (_, jwt) = s.sign_in("a").await;
    // As Nuvix's SDK sends them: its project header, its JWT header, JSON content type.
    let nuvix = [
        ("X-Nuvix-Project", "default"),
        ("X-Nuvix-JWT", jwt.as_str()),
        ("content-type", "application/json"),
        ("X-Nuvix-Response-Format", "1.0.0"),
    ];
    let docs = "/v1/schemas/db/collections/birthdays/documents";
    let (status, list) = s.call(Method::GET, docs, &nuvix, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1);
    let first = &list["data"][0];
    assert_eq!(
        (
            &first["$id"],
            &first["$collection"],
            &first["$schema"],
            &first["$sequence"],
            &first["name"]
        ),
        (
            &json!("doc1"),
            &json!("birthdays"),
            &json!("db"),
            &json!(1),
            &json!("Kevin")
        )
    );
    assert!(first.get("$collectionId").is_none() && list.get("documents").is_none());
    let named = q(r#"{"method":"equal","attribute":"name","values":["Kevin"]}"#);
    let (_, found) = s
        .call(
            Method::GET,
            &format!("{docs}?queries[0]={named}"),
            &nuvix,
            None,
        )
        .await;
    assert_eq!(found["total"], 1);
    // Another user's document is as missing as one that does not exist.
    appwrite_error(
        s.call(Method::GET, &format!("{docs}/doc2"), &nuvix, None)
            .await,
        StatusCode::NOT_FOUND,
        "document_not_found",
    );
    // Create (a user holds create on the collection), update, delete.
    let (status, made) = s
        .call(
            Method::POST,
            docs,
            &nuvix,
            Some(json!({"documentId": "unique()", "data": {"name": "Ana"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["$collection"], "birthdays");
    let id = made["$id"].as_str().unwrap().to_owned();
    let (status, changed) = s
        .call(
            Method::PATCH,
            &format!("{docs}/{id}"),
            &nuvix,
            Some(json!({"data": {"name": "Anna"}})),
        )
        .await;
    assert_eq!((status, &changed["name"]), (StatusCode::OK, &json!("Anna")));
    let resp = s
        .http
        .delete(format!("{}{docs}/{id}", s.base))
        .header("X-Nuvix-JWT", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        !content_type.contains("json"),
        "an empty 204 is not JSON: {content_type}"
    );
    let (_, after) = s.call(Method::GET, docs, &nuvix, None).await;
    assert_eq!(after["total"], 1);
    // Only the document routes: Nuvix's schema management is not Appwrite's.
    appwrite_error(
        s.call(Method::GET, "/v1/schemas/db/collections", &nuvix, None)
            .await,
        StatusCode::NOT_FOUND,
        "general_route_not_found",
    );
}

/// `POST /v1/account/jwts` takes the SDKs' optional `{duration}`: the token lasts that
/// long (within 1 s to 1 h); no body, or `{}`, gives the store's lifetime.
#[tokio::test]
async fn account_jwts_take_a_duration() {
    let s = start().await;
    let (secret, _) = s.sign_in("a").await;
    let mine = [("X-Appwrite-Session", secret.as_str())];
    let (status, short) = s
        .call(
            Method::POST,
            "/v1/account/jwts",
            &mine,
            Some(json!({"duration": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let (status, default) = s
        .call(Method::POST, "/v1/account/jwts", &mine, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{default}");
    let short = short["jwt"].as_str().unwrap().to_owned();
    let default = default["jwt"].as_str().unwrap().to_owned();
    // Past 60 s and the leeway, the short token is refused and the default one is not.
    s.clock.advance(time::Duration::seconds(60 + 5 * 60 + 1));
    appwrite_error(
        s.names(&[("X-Appwrite-JWT", &short)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    assert_eq!(
        s.names(&[("X-Appwrite-JWT", &default)]).await.0,
        StatusCode::OK
    );
    // A body is an object: serde would read a struct from an array of its fields.
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/account/sessions/email",
            &[],
            Some(json!(["a@example.com", "password-a"])),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    for bad in [
        json!({"duration": 0}),
        json!({"duration": 3601}),
        json!({"ttl": 5}),
        json!([1]),
    ] {
        appwrite_error(
            s.call(Method::POST, "/v1/account/jwts", &mine, Some(bad))
                .await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
}

#[tokio::test]
async fn updating_a_table_or_database_keeps_what_the_body_leaves_out() {
    let s = start().await;
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    let (_, jwt) = s.sign_in("a").await;
    let a = [("X-Appwrite-JWT", jwt.as_str())];
    let table = "/v1/tablesdb/db/tables/birthdays";
    let (status, t) = s
        .call(Method::PUT, table, &auth, Some(json!({"name": "Days"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    common::models::assert_model("Table", &t);
    assert_eq!(
        (
            &t["name"],
            &t["rowSecurity"],
            &t["$permissions"],
            &t["enabled"]
        ),
        (
            &json!("Days"),
            &json!(true),
            &json!(["create(\"users\")"]),
            &json!(true)
        )
    );
    assert_eq!(s.names(&a).await.1["names"], json!(["Kevin"]));
    // A user may not change it; with row security off and no read grant, user-a reads nothing.
    appwrite_error(
        s.call(Method::PUT, table, &a, Some(json!({"rowSecurity": false})))
            .await,
        StatusCode::UNAUTHORIZED,
        "general_unauthorized_scope",
    );
    let (status, t) = s
        .call(
            Method::PUT,
            "/v1/databases/db/collections/birthdays",
            &auth,
            Some(json!({"documentSecurity": false, "purge": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    common::models::assert_model("Collection", &t);
    assert_eq!(
        (&t["name"], &t["documentSecurity"]),
        (&json!("Days"), &json!(false))
    );
    assert_eq!(s.names(&a).await.0, StatusCode::UNAUTHORIZED);
    // A disabled database is missing for users, not for keys.
    let (status, d) = s
        .call(
            Method::PUT,
            "/v1/tablesdb/db",
            &auth,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    common::models::assert_model("Database", &d);
    assert_eq!((&d["name"], &d["enabled"]), (&json!("db"), &json!(false)));
    assert_eq!(s.names(&a).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.names(&auth).await.1["total"], 3);
    appwrite_error(
        s.call(
            Method::PUT,
            "/v1/tablesdb/db",
            &auth,
            Some(json!({"replicas": 2})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
}

#[tokio::test]
async fn account_name_email_and_password_changes() {
    let s = start().await;
    let (secret, jwt) = s.sign_in("a").await;
    let (other, _) = s.sign_in("a").await;
    let me = [("X-Appwrite-Session", secret.as_str())];
    let (status, user) = s
        .call(
            Method::PATCH,
            "/v1/account/name",
            &me,
            Some(json!({"name": "Ann"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    common::models::assert_model("User", &user);
    assert_eq!(user["name"], "Ann");
    appwrite_error(
        s.call(
            Method::PATCH,
            "/v1/account/email",
            &me,
            Some(json!({"email": "ann@example.com", "password": "nope-nope"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_invalid_credentials",
    );
    appwrite_error(
        s.call(
            Method::PATCH,
            "/v1/account/email",
            &me,
            Some(json!({"email": "b@example.com", "password": "password-a"})),
        )
        .await,
        StatusCode::CONFLICT,
        "user_already_exists",
    );
    let (status, user) = s
        .call(
            Method::PATCH,
            "/v1/account/email",
            &me,
            Some(json!({"email": "ann@example.com", "password": "password-a"})),
        )
        .await;
    assert_eq!(
        (status, &user["email"]),
        (StatusCode::OK, &json!("ann@example.com"))
    );
    // Without oldPassword the change is refused as a wrong password.
    appwrite_error(
        s.call(
            Method::PATCH,
            "/v1/account/password",
            &me,
            Some(json!({"password": "password-2"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_invalid_credentials",
    );
    let (status, _) = s
        .call(
            Method::PATCH,
            "/v1/account/password",
            &me,
            Some(json!({"password": "password-2", "oldPassword": "password-a"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // This session and its token stay; the other session ends.
    assert_eq!(
        s.call(Method::GET, "/v1/account", &me, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.names(&[("X-Appwrite-JWT", jwt.as_str())]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.call(
            Method::GET,
            "/v1/account",
            &[("X-Appwrite-Session", other.as_str())],
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // By key: a token cannot do it, a key can.
    appwrite_error(
        s.call(
            Method::PATCH,
            "/v1/users/user-b/name",
            &[("X-Appwrite-JWT", jwt.as_str())],
            Some(json!({"name": "B"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "general_unauthorized_scope",
    );
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    let cases: [(&str, Value, &str, Value); 4] = [
        (
            "/v1/users/user-b/name",
            json!({"name": "Bea"}),
            "name",
            json!("Bea"),
        ),
        (
            "/v1/users/user-b/email",
            json!({"email": "bea@example.com"}),
            "email",
            json!("bea@example.com"),
        ),
        (
            "/v1/users/user-b/password",
            json!({"password": "password-bea"}),
            "$id",
            json!("user-b"),
        ),
        (
            "/v1/users/user-b/verification",
            json!({"emailVerification": true}),
            "emailVerification",
            json!(true),
        ),
    ];
    for (path, body, field, want) in cases {
        let (status, user) = s.call(Method::PATCH, path, &auth, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {user}");
        common::models::assert_model("User", &user);
        assert_eq!(user[field], want, "{path}");
    }
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/account/sessions/email",
            &auth,
            Some(json!({"email": "bea@example.com", "password": "password-bea"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
