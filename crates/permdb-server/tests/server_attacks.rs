//! The HTTP server as a browser or an attacker meets it: where the session secret goes,
//! ambiguous credentials, disabled databases, guesses in parallel, the limits README
//! promises (408, 409, 413, 429), the extractor's headers, and logs free of secrets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::server::{Server, appwrite_error, start, start_with};
use permdb::{CollectionSpec, PasswordHashing, Permission, Role};
use permdb_server::ServerOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DOCS: &str = "/v1/databases/db/collections/birthdays/documents";

/// Signs in as user-a through the route a browser uses; returns the response's status,
/// its `Set-Cookie` header and its body.
async fn browser_sign_in(s: &Server, extra: &[(&str, &str)]) -> (StatusCode, String, Value) {
    let mut req = s
        .http
        .post(format!("{}/v1/account/sessions/email", s.base))
        .header("X-Appwrite-Project", "default")
        .json(&json!({"email": "a@example.com", "password": "password-a"}));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cookie, resp.json().await.unwrap())
}

/// The session secret a `Set-Cookie` header carries.
fn cookie_secret(cookie: &str) -> &str {
    let first = cookie.split(';').next().unwrap();
    first.split_once('=').unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_secret_is_only_in_an_httponly_cookie_unless_a_key_asks() {
    let s = start().await;
    let (status, cookie, body) = browser_sign_in(&s, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["secret"], "", "script can read the body: {body}");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attributes[0].starts_with("a_session_default=pdbs_"),
        "{cookie}"
    );
    for want in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&want), "{want} missing: {cookie}");
    }
    assert!(
        !attributes.contains(&"Secure"),
        "not configured for TLS: {cookie}"
    );
    // The cookie is the credential.
    let (status, me) = s
        .call(
            Method::GET,
            "/v1/account",
            &[(
                "Cookie",
                &format!("a_session_default={}", cookie_secret(&cookie)),
            )],
            None,
        )
        .await;
    assert_eq!((status, &me["$id"]), (StatusCode::OK, &json!("user-a")));

    // Server-side rendering: a request with an API key gets the secret in the body.
    let (status, _, body) = browser_sign_in(&s, &[("X-Appwrite-Key", &s.key)]).await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = body["secret"].as_str().unwrap();
    assert!(secret.starts_with("pdbs_"), "{body}");
    let (status, _) = s
        .call(
            Method::GET,
            "/v1/account",
            &[("X-Appwrite-Session", secret)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Served over TLS (as configured), the cookie is Secure too.
    let (options, clock) = common::test_options();
    let tls = start_with(
        options,
        clock,
        ServerOptions::default().secure_cookies(true),
    )
    .await;
    let (_, cookie, _) = browser_sign_in(&tls, &[]).await;
    assert!(
        cookie.split(';').map(str::trim).any(|a| a == "Secure"),
        "{cookie}"
    );
}

/// Sends a request with exactly these headers (repeats included).
async fn raw_get(s: &Server, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        map.append(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let resp = s
        .http
        .get(format!("{}{path}", s.base))
        .headers(map)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What a case is, its headers, and the header names the refusal must name.
type Ambiguous<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_credentials_are_refused_not_guessed_between() {
    let s = start().await;
    let (a_secret, a_jwt) = s.sign_in("a").await;
    let (b_secret, b_jwt) = s.sign_in("b").await;
    let key = s.key.as_str();
    let p = ("X-Appwrite-Project", "default");
    let cases: Vec<Ambiguous> = vec![
        (
            "the same JWT header twice",
            vec![p, ("X-Appwrite-JWT", &a_jwt), ("X-Appwrite-JWT", &a_jwt)],
            &["x-appwrite-jwt"],
        ),
        (
            "two JWT headers with different tokens",
            vec![p, ("X-Appwrite-JWT", &a_jwt), ("X-Appwrite-JWT", &b_jwt)],
            &["x-appwrite-jwt"],
        ),
        (
            "Appwrite's and Nuvix's JWT headers",
            vec![p, ("X-Appwrite-JWT", &a_jwt), ("X-Nuvix-JWT", &a_jwt)],
            &["x-appwrite-jwt", "x-nuvix-jwt"],
        ),
        (
            "Appwrite's and Nuvix's key headers",
            vec![p, ("X-Appwrite-Key", key), ("X-Nuvix-Key", key)],
            &["x-appwrite-key", "x-nuvix-key"],
        ),
        (
            "Appwrite's and Nuvix's session headers",
            vec![
                p,
                ("X-Appwrite-Session", &a_secret),
                ("X-Nuvix-Session", &b_secret),
            ],
            &["x-appwrite-session", "x-nuvix-session"],
        ),
        (
            "a key and a JWT",
            vec![p, ("X-Appwrite-Key", key), ("X-Appwrite-JWT", &a_jwt)],
            &["x-appwrite-key", "x-appwrite-jwt"],
        ),
        (
            "two project headers",
            vec![
                ("X-Appwrite-Project", "default"),
                ("X-Appwrite-Project", "other"),
                ("X-Appwrite-Key", key),
            ],
            &["x-appwrite-project"],
        ),
        (
            "Appwrite's and Nuvix's project headers",
            vec![
                ("X-Appwrite-Project", "default"),
                ("X-Nuvix-Project", "default"),
                ("X-Appwrite-Key", key),
            ],
            &["x-appwrite-project", "x-nuvix-project"],
        ),
    ];
    for (what, headers, named) in cases {
        let body = appwrite_error(
            raw_get(&s, DOCS, &headers).await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
        let message = body["message"].as_str().unwrap().to_lowercase();
        for name in named {
            assert!(message.contains(name), "{what}: {message}");
        }
    }
    // Two session cookies that disagree; the legacy cookie agreeing with the current one is fine.
    let two = format!("a_session_default={a_secret}; a_session_default={b_secret}");
    appwrite_error(
        raw_get(&s, "/v1/account", &[p, ("Cookie", &two)]).await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    let legacy = format!("a_session_default={a_secret}; a_session_default_legacy={a_secret}");
    let (status, me) = raw_get(&s, "/v1/account", &[p, ("Cookie", &legacy)]).await;
    assert_eq!((status, &me["$id"]), (StatusCode::OK, &json!("user-a")));
    // The extractor: Authorization and X-Appwrite-JWT together, or Authorization twice.
    let bearer = format!("Bearer {a_jwt}");
    for headers in [
        vec![
            ("Authorization", bearer.as_str()),
            ("X-Appwrite-JWT", &b_jwt),
        ],
        vec![
            ("Authorization", bearer.as_str()),
            ("Authorization", &bearer),
        ],
    ] {
        let (status, body) = raw_get(&s, "/api/mine", &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_database_is_as_missing_to_users() {
    let s = start().await;
    let (_, jwt) = s.sign_in("a").await;
    let root = s.db.root();
    let disable = |enabled: bool| root.schemas().update("db", "Database", enabled).unwrap();
    disable(false);
    let user = [("X-Appwrite-JWT", jwt.as_str())];
    let missing = appwrite_error(
        s.call(
            Method::GET,
            "/v1/databases/nodb/collections/birthdays/documents",
            &user,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "database_not_found",
    );
    let disabled = appwrite_error(
        s.call(Method::GET, DOCS, &user, None).await,
        StatusCode::NOT_FOUND,
        "database_not_found",
    );
    assert_eq!(
        missing["message"].as_str().unwrap().replace("nodb", "ID"),
        disabled["message"].as_str().unwrap().replace("db", "ID"),
    );
    // Every route that takes the database answers alike.
    for path in [
        format!("{DOCS}/doc1"),
        "/v1/databases/db/collections/nocoll/documents".into(),
    ] {
        appwrite_error(
            s.call(Method::GET, &path, &user, None).await,
            StatusCode::NOT_FOUND,
            "database_not_found",
        );
    }
    // The key, like root, still reaches it.
    let (status, _) = s
        .call(Method::GET, DOCS, &[("X-Appwrite-Key", &s.key)], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    disable(true);
    let (status, _) = s.call(Method::GET, DOCS, &user, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_over_http_check_at_most_the_limit() {
    let (options, clock) = common::test_options();
    let options = options.password_hashing(PasswordHashing {
        memory_kib: 8 << 10,
        iterations: 1,
        parallelism: 1,
    });
    let s = Arc::new(start_with(options, clock, ServerOptions::default()).await);
    let guesses: Vec<_> = (0..24)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.call(
                    Method::POST,
                    "/v1/account/sessions/email",
                    &[],
                    Some(json!({"email": "a@example.com", "password": format!("guess-{i:04}")})),
                )
                .await
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for g in guesses {
        let (status, body) = g.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["type"], "general_rate_limit_exceeded", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        (checked, refused),
        (10, 14),
        "passwords checked, attempts refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_conflicts_and_the_default_body_limit() {
    // 408: a sign-in whose password hashing outlasts a 20 ms timeout.
    let (options, clock) = common::test_options();
    let options = options.password_hashing(PasswordHashing {
        memory_kib: 64 << 10,
        iterations: 3,
        parallelism: 1,
    });
    let slow = start_with(
        options,
        clock,
        ServerOptions::default().timeout(Duration::from_millis(20)),
    )
    .await;
    appwrite_error(
        slow.call(
            Method::POST,
            "/v1/account/sessions/email",
            &[],
            Some(json!({"email": "a@example.com", "password": "password-a"})),
        )
        .await,
        StatusCode::REQUEST_TIMEOUT,
        "general_request_timeout",
    );

    // The default body limit is 4 MiB: one byte over is 413; just under reaches permdb
    // (which refuses a document of that size itself).
    let (options, clock) = common::test_options();
    let s = start_with(options, clock, ServerOptions::default()).await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let body_of = |len: usize| {
        let frame = json!({"documentId": "big", "data": {"pad": ""}}).to_string();
        let pad = "x".repeat(len - frame.len());
        json!({"documentId": "big", "data": {"pad": pad}})
    };
    assert_eq!(body_of(4 << 20).to_string().len(), 4 << 20);
    let (status, _) = s
        .call(Method::POST, DOCS, &key, Some(body_of((4 << 20) + 1)))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = s
        .call(Method::POST, DOCS, &key, Some(body_of(4 << 20)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // 409: a document id taken.
    appwrite_error(
        s.call(
            Method::POST,
            DOCS,
            &key,
            Some(json!({"documentId": "doc1", "data": {"name": "again"}})),
        )
        .await,
        StatusCode::CONFLICT,
        "document_already_exists",
    );
    // 429: ten failed sign-ins for one email.
    for _ in 0..10 {
        let (status, _) = s
            .call(
                Method::POST,
                "/v1/account/sessions/email",
                &[],
                Some(json!({"email": "b@example.com", "password": "wrong-password"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/account/sessions/email",
            &[],
            Some(json!({"email": "b@example.com", "password": "password-b"})),
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "general_rate_limit_exceeded",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_client_takes_the_appwrite_jwt_header() {
    let s = start().await;
    let (_, jwt) = s.sign_in("a").await;
    let (status, body) = raw_get(&s, "/api/mine", &[("X-Appwrite-JWT", &jwt)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("user:user-a")),
        "{body}"
    );
    let (status, _) = raw_get(&s, "/api/mine", &[("X-Appwrite-JWT", "pdb1.AAAA")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Everything traced by the process, at every level.
fn trace_log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        #[derive(Clone, Copy)]
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                trace_log().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| Sink)
            .with_ansi(false)
            .init();
        Mutex::new(Vec::new())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let log = trace_log();
    let s = start().await;
    let user = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-d", "email": "d@example.com", "password": "hunter2-secret-pw"})),
        )
        .await;
    assert_eq!(user.0, StatusCode::CREATED);
    let (status, cookie, _) = browser_sign_in(&s, &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    let cookie_secret = cookie_secret(&cookie).to_owned();
    let (secret, jwt) = s.sign_in("b").await;
    let key =
        s.db.root()
            .keys()
            .create("k", &permdb::Scope::ALL)
            .unwrap()
            .secret;
    // Used, refused, mangled: every path that might echo them.
    let mut mangled_jwt = jwt.clone();
    mangled_jwt.push('A');
    for headers in [
        vec![("X-Appwrite-JWT", jwt.as_str())],
        vec![("X-Appwrite-JWT", mangled_jwt.as_str())],
        vec![("X-Appwrite-Session", secret.as_str())],
        vec![("X-Appwrite-Key", key.as_str())],
        vec![("X-Appwrite-Key", &key[..key.len() - 2])],
        vec![
            ("X-Appwrite-Key", key.as_str()),
            ("X-Appwrite-JWT", jwt.as_str()),
        ],
    ] {
        s.call(Method::GET, DOCS, &headers, None).await;
    }
    let cookie = format!("a_session_default={cookie_secret}x");
    s.call(Method::GET, "/v1/account", &[("Cookie", &cookie)], None)
        .await;
    s.call(
        Method::POST,
        "/v1/account/sessions/email",
        &[],
        Some(json!({"email": "d@example.com", "password": "hunter2-wrong-pw"})),
    )
    .await;
    // Passwords where they do not belong: typed into the email field, or sent as a number.
    for body in [
        json!({"userId": "user-e", "email": "hunter2-in-the-email-field", "password": "password-e"}),
        json!({"userId": "user-e", "email": "e@example.com", "password": 41_8374_2391_u64}),
    ] {
        let (status, _) = s.call(Method::POST, "/v1/account", &[], Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/account/sessions/email",
            &[],
            Some(json!({"email": "d@example.com", "password": 41_8374_2391_u64})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.db.root()
        .schema("db")
        .collections()
        .create(CollectionSpec::new("x", "X").permissions([Permission::read(Role::any())]))
        .unwrap();
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        text.contains("request refused"),
        "the log was captured: {text}"
    );
    let secret_part = |s: &str| s.split_once('.').map(|(_, r)| r.to_owned()).unwrap();
    for (what, needle) in [
        ("a password", "hunter2".to_owned()),
        ("a password sent as a number", "41837423910".to_owned()),
        ("a session secret", secret_part(&secret)),
        ("a cookie's session secret", secret_part(&cookie_secret)),
        ("a token", jwt[5..40].to_owned()),
        ("an API key", secret_part(&key)),
    ] {
        assert!(!text.contains(&needle), "{what} in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answers_with_what_the_caller_may_read() {
    let s = start().await;
    let write_only =
        s.db.root()
            .keys()
            .create("w", &[permdb::Scope::DocumentsWrite])
            .unwrap()
            .secret;
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("{DOCS}/doc2"),
            &[("X-Appwrite-Key", &write_only)],
            Some(json!({"data": {"name": "Laura B."}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "$collectionId",
            "$createdAt",
            "$databaseId",
            "$id",
            "$permissions",
            "$sequence",
            "$updatedAt"
        ],
        "{body}"
    );
    assert_eq!(body["$permissions"], json!([]));
    let (status, body) = s
        .call(
            Method::POST,
            DOCS,
            &[("X-Appwrite-Key", &write_only)],
            Some(json!({"documentId": "doc9", "data": {"name": "Nina"}, "permissions": ["read(\"any\")"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("name").is_none(), "{body}");
    // The full key sees what was written.
    let (_, doc) = s
        .call(
            Method::GET,
            &format!("{DOCS}/doc2"),
            &[("X-Appwrite-Key", &s.key)],
            None,
        )
        .await;
    assert_eq!(doc["name"], "Laura B.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_assigned_ids_callers_cannot_probe_ids() {
    let (options, clock) = common::test_options();
    let s = start_with(options, clock, ServerOptions::default().assigned_ids(true)).await;
    let (_, jwt) = s.sign_in("a").await;
    let user = [("X-Appwrite-JWT", jwt.as_str())];
    // Probing doc2 (someone else's) would be a 409; the id is refused before it is looked up.
    let body = appwrite_error(
        s.call(
            Method::POST,
            DOCS,
            &user,
            Some(json!({"documentId": "doc2", "data": {"name": "x"}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    assert!(
        body["message"].as_str().unwrap().contains("unique()"),
        "{body}"
    );
    let (status, doc) = s
        .call(
            Method::POST,
            DOCS,
            &user,
            Some(json!({"documentId": "unique()", "data": {"name": "Mine"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    let id = doc["$id"].as_str().unwrap();
    assert_eq!(id.len(), 20, "{doc}");
    assert_eq!(doc["name"], "Mine");
    // Sign-up too; a key still chooses.
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-a", "email": "z@example.com", "password": "password-z"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, created) = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "unique()", "email": "z@example.com", "password": "password-z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_ne!(created["$id"], "unique()");
    let (status, _) = s
        .call(
            Method::POST,
            DOCS,
            &[("X-Appwrite-Key", &s.key)],
            Some(json!({"documentId": "chosen", "data": {"name": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

/// Red-team finding: logout left the session cookie in the browser, and a dead cookie made
/// every request a 401, sign-in included, for the cookie's year.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_clears_the_cookie_and_a_dead_one_is_a_guest() {
    let s = start().await;
    let (_, cookie, _) = browser_sign_in(&s, &[]).await;
    let cookie = format!("a_session_default={}", cookie_secret(&cookie));
    let resp = s
        .http
        .delete(format!("{}/v1/account/sessions/current", s.base))
        .header("X-Appwrite-Project", "default")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    for name in ["a_session_default=;", "a_session_default_legacy=;"] {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Max-Age=0") && c.contains("HttpOnly")),
            "{name} not cleared: {cleared:?}"
        );
    }
    // A cookie tossed in beside a live one (another site on the host) is passed over.
    let (_, fresh, _) = browser_sign_in(&s, &[]).await;
    let fresh = format!("a_session_default={}", cookie_secret(&fresh));
    let tossed = format!("{fresh}; a_session_default_legacy=tossed");
    let (status, me) = s
        .call(Method::GET, "/v1/account", &[("Cookie", &tossed)], None)
        .await;
    assert_eq!((status, &me["$id"]), (StatusCode::OK, &json!("user-a")));
    // A browser that kept the dead cookie is a guest: it can sign in again.
    let (status, _, body) = browser_sign_in(&s, &[("Cookie", &cookie)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = s
        .call(Method::GET, "/v1/account", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a guest has no account");
    // A dead session in a header is still refused as such.
    let dead = cookie.trim_start_matches("a_session_default=");
    appwrite_error(
        s.call(Method::GET, DOCS, &[("X-Appwrite-Session", dead)], None)
            .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    // Another app's cookie that is not ASCII does not lock anyone out.
    let resp = s
        .http
        .get(format!("{}{DOCS}", s.base))
        .header("X-Appwrite-Project", "default")
        .header(
            "Cookie",
            reqwest::header::HeaderValue::from_bytes(b"pref=caf\xc3\xa9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
