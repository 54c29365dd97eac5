//! A permdb server on a loopback port for the HTTP tests, and helpers to call it.

use axum::Router;
use axum::routing::get;
use permdb::{Db, ManualClock, Options, Scope};
use permdb_server::{ServerOptions, UserClient};
use reqwest::{Client as Http, Method, StatusCode};
use serde_json::{Value, json};

pub struct Server {
    pub base: String,
    pub http: Http,
    pub db: Db,
    pub clock: ManualClock,
    pub key: String,
}

async fn mine(UserClient(client): UserClient) -> axum::Json<Value> {
    let roles: Vec<String> = client.roles().iter().map(|r| r.to_string()).collect();
    axum::Json(json!({ "roles": roles }))
}

/// The seed store served with a 64 KiB body limit, and `/api/mine` (the roles of the
/// `UserClient` of the request) beside the API.
pub async fn start() -> Server {
    let (options, clock) = super::test_options();
    start_with(
        options,
        clock,
        ServerOptions::default().body_limit(64 * 1024),
    )
    .await
}

/// The seed store opened with `options` (whose clock is `clock`), served with `server`.
pub async fn start_with(options: Options, clock: ManualClock, server: ServerOptions) -> Server {
    let db = Db::open_with(tempfile::tempdir().unwrap().keep(), options).unwrap();
    super::seed(&db);
    let key = db
        .root()
        .keys()
        .create("backend", &Scope::ALL)
        .unwrap()
        .secret;
    let app = permdb_server::router_with(db.clone(), server).merge(
        Router::new()
            .route("/api/mine", get(mine))
            .with_state(db.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        base,
        http: Http::new(),
        db,
        clock,
        key,
    }
}

impl Server {
    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !headers
            .iter()
            .any(|(k, _)| k.to_ascii_lowercase().ends_with("-project"))
        {
            req = req.header("X-Appwrite-Project", "default");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    /// Signs in as the server side of an app does (with the API key, so that the answer
    /// carries the session secret); returns the secret and a token made from it.
    pub async fn sign_in(&self, letter: &str) -> (String, String) {
        let (status, session) = self
            .call(
                Method::POST,
                "/v1/account/sessions/email",
                &[("X-Appwrite-Key", &self.key)],
                Some(json!({"email": format!("{letter}@example.com"), "password": format!("password-{letter}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let secret = session["secret"].as_str().unwrap().to_owned();
        let (status, jwt) = self
            .call(
                Method::POST,
                "/v1/account/jwts",
                &[("X-Appwrite-Session", &secret)],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{jwt}");
        (secret, jwt["jwt"].as_str().unwrap().to_owned())
    }

    pub async fn names(&self, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let (status, body) = self
            .call(
                Method::GET,
                "/v1/databases/db/collections/birthdays/documents",
                headers,
                None,
            )
            .await;
        if status != StatusCode::OK {
            return (status, body);
        }
        let names: Vec<Value> = body["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].clone())
            .collect();
        (status, json!({"total": body["total"], "names": names}))
    }
}

/// Asserts an Appwrite error body: `code` equal to the status, and the `type`.
#[track_caller]
pub fn appwrite_error(got: (StatusCode, Value), status: StatusCode, kind: &str) -> Value {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["code"], status.as_u16(), "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
