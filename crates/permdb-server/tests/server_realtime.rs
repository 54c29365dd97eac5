//! `/v1/realtime` over a real WebSocket client: the handshake (project, origin, cookie,
//! JWT, refusals), every message type and its errors, which events reach whom (only
//! what the connection's user may read; entering and leaving), and the limits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use permdb::{Permission, Role};
use permdb_server::{RealtimeLimits, ServerOptions};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use common::server::{Server, start, start_with};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const BIRTHDAYS: &str = "databases.db.collections.birthdays.documents";

struct Ws(Socket);

/// Opens `/v1/realtime?{query}` with `headers`.
async fn connect(server: &Server, query: &str, headers: &[(&str, &str)]) -> Ws {
    let url = format!(
        "{}/v1/realtime?{query}",
        server.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    Ws(socket)
}

/// A connection as the page of `letter`'s user (its session cookie), past `connected`.
async fn signed_in(server: &Server, letter: &str) -> Ws {
    let (secret, _) = server.sign_in(letter).await;
    let cookie = format!("a_session_default={secret}");
    let mut ws = connect(server, "project=default", &[("cookie", &cookie)]).await;
    let connected = ws.next().await;
    assert_eq!(connected["type"], "connected", "{connected}");
    assert_eq!(connected["data"]["user"]["$id"], format!("user-{letter}"));
    ws
}

impl Ws {
    /// The next text message, as JSON; fails after 5 s.
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("a message within 5 s")
                .expect("the socket open")
                .expect("a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected text, got {other:?}"),
            }
        }
    }

    /// Reads for `time`, answering pings; asserts that no text message comes.
    async fn nothing_for(&mut self, time: Duration) {
        let end = tokio::time::Instant::now() + time;
        while let Ok(m) = tokio::time::timeout_at(end, self.0.next()).await {
            match m {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected nothing, got {other:?}"),
            }
        }
    }

    /// Asserts that no message comes within 300 ms.
    async fn nothing(&mut self) {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), self.0.next()).await {
            panic!("expected nothing, got {m:?}");
        }
    }

    /// The close frame the server sends next (text messages before it are returned too).
    async fn closed(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut before = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("a close within 5 s")
            {
                Some(Ok(Message::Text(text))) => before.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return (before, frame),
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return (before, None),
            }
        }
    }

    async fn send(&mut self, message: Value) {
        self.0
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// Sends a message and returns the reply.
    async fn ask(&mut self, message: Value) -> Value {
        self.send(message).await;
        self.next().await
    }

    /// Subscribes rows `(id, channels)` with no queries; asserts the reply.
    async fn subscribe(&mut self, rows: &[(&str, &[&str])]) -> Value {
        let data: Vec<Value> = rows
            .iter()
            .map(
                |(id, channels)| json!({"subscriptionId": id, "channels": channels, "queries": []}),
            )
            .collect();
        let reply = self.ask(json!({"type": "subscribe", "data": data})).await;
        assert_eq!(reply["type"], "response", "{reply}");
        assert_eq!(reply["data"]["to"], "subscribe");
        assert_eq!(reply["data"]["success"], true);
        reply
    }

    /// The next message, which must be an error with `code` whose message contains `says`.
    async fn error(&mut self, code: u16, says: &str) {
        let m = self.next().await;
        assert_error(&m, code, says);
    }
}

/// Reads to the close; asserts that the first message is an error with `code` saying
/// `says`, and the close code `close`.
async fn refused(ws: &mut Ws, code: u16, says: &str, close: u16) {
    let (before, frame) = ws.closed().await;
    assert_error(before.first().expect("an error first"), code, says);
    assert_eq!(frame.map(|c| u16::from(c.code)), Some(close));
}

/// The seed store served with `server` (and the tests' options).
async fn serve(server: ServerOptions) -> Server {
    let (options, clock) = common::test_options();
    start_with(options, clock, server).await
}

#[track_caller]
fn assert_error(m: &Value, code: u16, says: &str) {
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["data"]["code"], code, "{m}");
    let message = m["data"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{m}: expected {says:?}");
}

/// Read permissions for each of `users`.
fn read_by(users: &[&str]) -> Vec<Permission> {
    users
        .iter()
        .map(|u| Permission::read(Role::user(*u)))
        .collect()
}

/// Creates a birthday readable by `readers` as root (off the async workers).
async fn create(server: &Server, id: &str, name: &str, readers: &[&str]) {
    let (db, id, name) = (server.db.clone(), id.to_owned(), name.to_owned());
    let perms = read_by(readers);
    tokio::task::spawn_blocking(move || {
        db.root()
            .schema("db")
            .collection("birthdays")
            .create(
                &id,
                json!({"name": name, "birthday": "2000-01-01"}),
                Some(perms),
            )
            .unwrap();
    })
    .await
    .unwrap();
}

async fn set_readers(server: &Server, id: &str, readers: &[&str]) {
    let (db, id) = (server.db.clone(), id.to_owned());
    let perms = read_by(readers);
    tokio::task::spawn_blocking(move || {
        db.root()
            .schema("db")
            .collection("birthdays")
            .update(&id, json!({}), Some(perms))
            .unwrap();
    })
    .await
    .unwrap();
}

#[track_caller]
fn assert_event(m: &Value, id: &str, action: &str, change: &str, subscriptions: &[&str]) {
    assert_eq!(m["type"], "event", "{m}");
    let data = &m["data"];
    assert_eq!(
        data["events"][0],
        format!("{BIRTHDAYS}.{id}.{action}"),
        "{m}"
    );
    assert_eq!(data["events"].as_array().map(Vec::len), Some(42), "{m}");
    let channels = data["channels"].as_array().unwrap();
    for c in [
        "documents",
        "rows",
        BIRTHDAYS,
        "tablesdb.db.tables.birthdays.rows",
    ] {
        assert!(channels.contains(&json!(c)), "{c} missing: {m}");
    }
    assert!(
        channels.contains(&json!(format!("{BIRTHDAYS}.{id}.{action}"))),
        "{m}"
    );
    assert_eq!(data["payload"]["$id"], id, "{m}");
    assert_eq!(data["payload"]["$databaseId"], "db", "{m}");
    assert_eq!(data["payload"]["$collectionId"], "birthdays", "{m}");
    assert_eq!(data["payload"]["$tableId"], "birthdays", "{m}");
    assert_eq!(data["subscriptions"], json!(subscriptions), "{m}");
    // What happened for this connection; never the store's log sequence number (it
    // counts writes the connection may not read).
    assert_eq!(data["permdb"], json!({"change": change}), "{m}");
    let ts = data["timestamp"].as_str().unwrap();
    assert!(ts.ends_with("+00:00") && ts.len() == 29, "{ts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_receives_only_what_she_may_read_and_sees_documents_enter_and_leave() {
    let server = start().await;
    let mut a = signed_in(&server, "a").await;
    let mut b = signed_in(&server, "b").await;
    let reply = a.subscribe(&[("s1", &[BIRTHDAYS])]).await;
    assert_eq!(
        reply["data"]["subscriptions"],
        json!([{"subscriptionId": "s1", "channels": [BIRTHDAYS], "queries": []}])
    );
    b.subscribe(&[("sb", &["documents"])]).await;

    create(&server, "for-a", "Ann", &["user-a"]).await;
    create(&server, "for-b", "Ben", &["user-b"]).await;
    let m = a.next().await;
    assert_event(&m, "for-a", "create", "created", &["s1"]);
    assert_eq!(m["data"]["payload"]["name"], "Ann");
    assert_eq!(
        m["data"]["payload"]["$permissions"],
        json!(["read(\"user:user-a\")"])
    );
    let m = b.next().await;
    assert_event(&m, "for-b", "create", "created", &["sb"]);
    a.nothing().await;
    b.nothing().await;

    // A permission change lets user-a in: an update carrying the document ...
    set_readers(&server, "for-b", &["user-b", "user-a"]).await;
    let m = a.next().await;
    assert_event(&m, "for-b", "update", "entered", &["s1"]);
    assert_eq!(m["data"]["payload"]["name"], "Ben");
    assert_event(&b.next().await, "for-b", "update", "updated", &["sb"]);
    // ... and another shuts her out: a delete carrying the ids only.
    set_readers(&server, "for-b", &["user-b"]).await;
    let m = a.next().await;
    assert_event(&m, "for-b", "delete", "left", &["s1"]);
    assert_eq!(
        m["data"]["payload"].as_object().map(|o| o.len()),
        Some(4),
        "{m}"
    );
    assert!(m["data"]["payload"].get("name").is_none());
    assert_event(&b.next().await, "for-b", "update", "updated", &["sb"]);
    // Changes she can no longer read never reach her.
    let (db,) = (server.db.clone(),);
    tokio::task::spawn_blocking(move || {
        let c = db.root().schema("db").collection("birthdays");
        c.update("for-b", json!({"name": "Benedict"}), None)
            .unwrap();
        c.delete("for-b").unwrap();
        c.delete("for-a").unwrap();
    })
    .await
    .unwrap();
    assert_event(&b.next().await, "for-b", "update", "updated", &["sb"]);
    assert_event(&b.next().await, "for-b", "delete", "deleted", &["sb"]);
    assert_event(&a.next().await, "for-a", "delete", "deleted", &["s1"]);
    a.nothing().await;
    b.nothing().await;
}

/// Reads the frames of one change until they have named `subscriptions` (a change that
/// reaches several rows usually comes in one frame naming them all, but may come in
/// several when the rows' events are taken apart); each row is named once.
async fn reaching(ws: &mut Ws, id: &str, action: &str, change: &str, subscriptions: &[&str]) {
    let mut named: Vec<String> = Vec::new();
    while named.len() < subscriptions.len() {
        let m = ws.next().await;
        let subs: Vec<&str> = m["data"]["subscriptions"]
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_event(&m, id, action, change, &subs);
        for s in subs {
            assert!(subscriptions.contains(&s), "{s} should not be reached: {m}");
            assert!(!named.iter().any(|n| n == s), "{s} named twice: {m}");
            named.push(s.to_owned());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_each_row_once_and_channels_select_ids_and_actions() {
    let server = start().await;
    let mut a = signed_in(&server, "a").await;
    a.subscribe(&[
        ("all", &["documents", BIRTHDAYS]),
        ("rows", &["tablesdb.db.tables.birthdays.rows"]),
        ("one", &["databases.db.collections.birthdays.documents.x1"]),
        ("deletes", &["rows.delete"]),
        // Appwrite's channels permdb has nothing for are taken, and never match.
        (
            "nothing",
            &[
                "databases.db.collections.missing.documents",
                "files",
                "teams.t1",
            ],
        ),
    ])
    .await;
    create(&server, "x1", "X", &["user-a"]).await;
    reaching(&mut a, "x1", "create", "created", &["all", "rows", "one"]).await;
    create(&server, "x2", "Y", &["user-a"]).await;
    reaching(&mut a, "x2", "create", "created", &["all", "rows"]).await;
    let db = server.db.clone();
    tokio::task::spawn_blocking(move || {
        db.root()
            .schema("db")
            .collection("birthdays")
            .delete("x1")
            .unwrap()
    })
    .await
    .unwrap();
    reaching(
        &mut a,
        "x1",
        "delete",
        "deleted",
        &["all", "rows", "one", "deletes"],
    )
    .await;
    a.nothing().await;

    // Unsubscribing stops a row; an unknown id says removed: false.
    let reply = a
        .ask(json!({"type": "unsubscribe", "data": [{"subscriptionId": "all"}, {"subscriptionId": "zz"}]}))
        .await;
    assert_eq!(
        reply["data"],
        json!({"to": "unsubscribe", "success": true, "subscriptions": [
            {"subscriptionId": "all", "removed": true}, {"subscriptionId": "zz", "removed": false}]})
    );
    create(&server, "x3", "Z", &["user-a"]).await;
    assert_event(&a.next().await, "x3", "create", "created", &["rows"]);
    // Subscribing an existing id replaces its channels.
    a.subscribe(&[("rows", &["databases.db.collections.birthdays.documents.x3"])])
        .await;
    create(&server, "x4", "W", &["user-a"]).await;
    a.nothing().await;
    set_readers(&server, "x3", &["user-a", "user-b"]).await;
    assert_event(&a.next().await, "x3", "update", "updated", &["rows"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_queries_filter_and_a_document_that_stops_matching_leaves() {
    let server = start().await;
    let mut a = signed_in(&server, "a").await;
    let equal = json!({"method": "equal", "attribute": "name", "values": ["Ann"]}).to_string();
    let select = json!({"method": "select", "values": ["*"]}).to_string();
    let reply = a
        .ask(json!({"type": "subscribe", "data": [
            {"subscriptionId": "anns", "channels": [BIRTHDAYS], "queries": [equal, select]}]}))
        .await;
    assert_eq!(
        reply["data"]["subscriptions"][0]["queries"],
        json!([equal, select])
    );
    create(&server, "q1", "Bob", &["user-a"]).await;
    create(&server, "q2", "Ann", &["user-a"]).await;
    assert_event(&a.next().await, "q2", "create", "created", &["anns"]);
    let db = server.db.clone();
    tokio::task::spawn_blocking(move || {
        let c = db.root().schema("db").collection("birthdays");
        c.update("q2", json!({"name": "Anna"}), None).unwrap();
        c.update("q1", json!({"name": "Ann"}), None).unwrap();
    })
    .await
    .unwrap();
    assert_event(&a.next().await, "q2", "delete", "left", &["anns"]);
    assert_event(&a.next().await, "q1", "update", "entered", &["anns"]);

    // Queries Appwrite refuses in subscriptions, and ones that do not fit the collection.
    for (query, says) in [
        (
            json!({"method": "limit", "values": [1]}),
            "Query method 'limit' is not supported",
        ),
        (
            json!({"method": "select", "values": ["name"]}),
            "only select([\"*\"])",
        ),
        (
            json!({"method": "between", "attribute": "name", "values": [1]}),
            "Invalid query",
        ),
    ] {
        a.send(json!({"type": "subscribe", "data": [
            {"subscriptionId": "bad", "channels": [BIRTHDAYS], "queries": [query.to_string()]}]}))
            .await;
        a.error(1003, says).await;
    }
    // Nothing of a refused frame was subscribed.
    create(&server, "q3", "Ann", &["user-a"]).await;
    assert_event(&a.next().await, "q3", "create", "created", &["anns"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_type_and_malformed_ones_get_appwrites_answers_and_the_socket_stays() {
    let server = start().await;
    let mut ws = connect(&server, "project=default", &[]).await;
    assert_eq!(
        ws.next().await,
        json!({"type": "connected", "data": {"channels": [], "subscriptions": [], "user": null}})
    );
    assert_eq!(
        ws.ask(json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );
    ws.0.send(Message::text("not json")).await.unwrap();
    ws.error(1003, "Message format is not valid.").await;
    ws.0.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    ws.error(1003, "Message format is not valid.").await;
    ws.send(json!({"data": []})).await;
    ws.error(1003, "Message format is not valid.").await;
    ws.send(json!({"type": "presence", "data": {}})).await;
    ws.error(1003, "Message type is not valid.").await;
    for (data, says) in [
        (json!({"channels": ["documents"]}), "list of subscriptions"),
        (
            json!([{"channels": ["nonsense"]}]),
            "permdb serves documents",
        ),
        (
            json!([{"channels": ["documents", "databases.db"]}]),
            "permdb serves documents",
        ),
        (json!([{"channels": []}]), "empty"),
        (json!([{"queries": []}]), "channels is not present"),
        (
            json!([{"channels": ["documents"], "subscriptionId": "-bad"}]),
            "subscriptionId",
        ),
    ] {
        ws.send(json!({"type": "subscribe", "data": data})).await;
        ws.error(1003, says).await;
    }
    ws.send(json!({"type": "unsubscribe", "data": {}})).await;
    ws.error(1003, "data is a list").await;
    ws.send(json!({"type": "authentication", "data": {"session": "not-a-session"}}))
        .await;
    ws.error(1003, "Session is not valid.").await;
    // Still open and answering.
    assert_eq!(
        ws.ask(json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );

    // A guest sees documents any may read, not the users'.
    ws.subscribe(&[("g", &["documents"])]).await;
    let db = server.db.clone();
    tokio::task::spawn_blocking(move || {
        let c = db.root().schema("db").collection("birthdays");
        c.create(
            "public",
            json!({"name": "P", "birthday": "2000-01-01"}),
            Some(vec![Permission::read(Role::any())]),
        )
        .unwrap();
        c.create(
            "private",
            json!({"name": "Q", "birthday": "2000-01-01"}),
            None,
        )
        .unwrap();
    })
    .await
    .unwrap();
    assert_event(&ws.next().await, "public", "create", "created", &["g"]);
    ws.nothing().await;

    // `authentication` makes the connection the session's user, subscriptions and all.
    let (secret, _) = server.sign_in("a").await;
    let reply = ws
        .ask(json!({"type": "authentication", "data": {"session": secret}}))
        .await;
    assert_eq!(reply["data"]["to"], "authentication", "{reply}");
    assert_eq!(reply["data"]["user"]["$id"], "user-a", "{reply}");
    create(&server, "mine", "M", &["user-a"]).await;
    assert_event(&ws.next().await, "mine", "create", "created", &["g"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_refuses_what_appwrite_refuses_with_a_message_and_a_close() {
    let server = serve(
        ServerOptions::default()
            .cors_origin("http://app.test:3000")
            .unwrap(),
    )
    .await;
    let (secret, jwt) = server.sign_in("a").await;
    let cookie = format!("a_session_default={secret}");
    let host = server.base.trim_start_matches("http://").to_owned();
    let same_origin = format!("http://{host}");
    let q_jwt = format!("project=default&jwt={jwt}");
    for (query, headers, code, says) in [
        (
            "project=other",
            vec![],
            1008,
            "Missing or unknown project ID",
        ),
        (
            "project=default&jwt=nope",
            vec![],
            401,
            "Failed to verify JWT",
        ),
        (
            q_jwt.as_str(),
            vec![("cookie", cookie.as_str())],
            403,
            "both given",
        ),
        (
            "project=default",
            vec![("origin", "http://evil.test")],
            1008,
            "Invalid Origin",
        ),
        (
            "project=default",
            vec![("x-appwrite-key", "wrong")],
            401,
            "",
        ),
        (
            "project=default&channels[]=nonsense",
            vec![],
            1003,
            "permdb serves documents",
        ),
    ] {
        let mut ws = connect(&server, query, &headers).await;
        let (before, close) = ws.closed().await;
        let first = before
            .first()
            .unwrap_or_else(|| panic!("{query}: no error message"));
        assert_error(first, code, says);
        assert_eq!(close.map(|c| u16::from(c.code)), Some(1008), "{query}");
    }
    // Accepted: the server's own origin, a CORS origin, a JWT, an API key, the URL's channels.
    for (query, headers, user) in [
        (
            "project=default",
            vec![
                ("origin", same_origin.as_str()),
                ("cookie", cookie.as_str()),
            ],
            json!("user-a"),
        ),
        (
            "project=default",
            vec![("origin", "http://app.test:3000")],
            Value::Null,
        ),
        (q_jwt.as_str(), vec![], json!("user-a")),
        (
            "project=default",
            vec![("x-appwrite-key", server.key.as_str())],
            Value::Null,
        ),
    ] {
        let mut ws = connect(&server, query, &headers).await;
        let m = ws.next().await;
        assert_eq!(m["type"], "connected", "{m}");
        assert_eq!(m["data"]["user"]["$id"].clone(), user, "{m}");
    }
    // Appwrite's older form: channels in the URL make one subscription.
    let query = format!("project=default&jwt={jwt}&channels[]={BIRTHDAYS}");
    let mut ws = connect(&server, &query, &[]).await;
    let m = ws.next().await;
    assert_eq!(m["data"]["channels"], json!([BIRTHDAYS]), "{m}");
    let id = m["data"]["subscriptions"][0].as_str().unwrap().to_owned();
    create(&server, "url", "U", &["user-a"]).await;
    assert_event(&ws.next().await, "url", "create", "created", &[&id]);
    // Not a WebSocket: Appwrite's JSON error.
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/v1/realtime?project=default",
            &[],
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UPGRADE_REQUIRED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_ends_the_connection_and_a_blocked_user_too() {
    let server = start().await;
    let mut a = signed_in(&server, "a").await;
    a.subscribe(&[("s", &[BIRTHDAYS])]).await;
    let db = server.db.clone();
    tokio::task::spawn_blocking(move || db.root().users().update_status("user-a", false).unwrap())
        .await
        .unwrap();
    refused(&mut a, 401, "", 1000).await;

    // A token that runs out without any write is seen within a second or so.
    let (_, jwt) = server.sign_in("b").await;
    let mut b = connect(&server, &format!("project=default&jwt={jwt}"), &[]).await;
    assert_eq!(b.next().await["type"], "connected");
    b.subscribe(&[("s", &[BIRTHDAYS])]).await;
    // ... and so on a connection that subscribed to nothing it may read.
    let mut c = connect(&server, &format!("project=default&jwt={jwt}"), &[]).await;
    assert_eq!(c.next().await["type"], "connected");
    c.subscribe(&[("none", &["databases.db.collections.missing.documents"])])
        .await;
    server.clock.advance(time::Duration::minutes(20));
    for ws in [&mut b, &mut c] {
        refused(ws, 401, "", 1000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_close_or_refuse_with_reasons() {
    let mut limits = RealtimeLimits::default();
    limits.max_connections = 2;
    limits.max_subscriptions = 2;
    limits.max_channels = 3;
    limits.max_watches = 2;
    limits.max_message_bytes = 2_000;
    limits.max_messages_per_minute = 8;
    limits.idle_timeout = Duration::from_secs(2);
    let server = serve(ServerOptions::default().realtime(limits)).await;
    let mut a = signed_in(&server, "a").await;
    let mut other = connect(&server, "project=default", &[]).await;
    assert_eq!(other.next().await["type"], "connected");
    // A third connection is refused and closed (1013: try again later).
    let mut third = connect(&server, "project=default", &[]).await;
    let (before, close) = third.closed().await;
    assert_error(
        before.first().expect("an error"),
        1013,
        "Too many connections",
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1013));
    drop(other);

    // Subscriptions, channels and watches per connection.
    a.subscribe(&[("s1", &[BIRTHDAYS]), ("s2", &[BIRTHDAYS])])
        .await;
    a.send(
        json!({"type": "subscribe", "data": [{"subscriptionId": "s3", "channels": ["documents"]}]}),
    )
    .await;
    a.error(1003, "at most 2 subscriptions").await;
    a.send(json!({"type": "subscribe", "data": [{"channels": ["a", "b", "c", "d"]}]}))
        .await;
    a.error(1003, "the most is 3").await;
    // Replacing a row frees its watch first: still two watches.
    a.subscribe(&[("s2", &["documents"])]).await;
    // Past the message rate, each message is refused (8 a minute; 4 sent so far).
    for _ in 0..4 {
        assert_eq!(
            a.ask(json!({"type": "ping"})).await,
            json!({"type": "pong"})
        );
    }
    a.send(json!({"type": "ping"})).await;
    a.error(1013, "Too many messages.").await;
    // Too large a message closes with a reason.
    a.0.send(Message::text("x".repeat(3_000))).await.unwrap();
    let (_, close) = a.closed().await;
    assert!(
        close.as_ref().is_none_or(|c| u16::from(c.code) == 1009),
        "{close:?}"
    );

    // A client that answers the server's pings stays past the idle time ...
    let mut alive = connect(&server, "project=default", &[]).await;
    assert_eq!(alive.next().await["type"], "connected");
    alive.nothing_for(Duration::from_secs(4)).await;
    assert_eq!(
        alive.ask(json!({"type": "ping"})).await,
        json!({"type": "pong"})
    );
    // ... and one that reads nothing (so answers no ping) is closed (1001).
    let mut quiet = connect(&server, "project=default", &[]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (before, close) = quiet.closed().await;
    assert_eq!(
        before.first().map(|m| m["type"].clone()),
        Some(json!("connected"))
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_are_bounded_per_minute_per_connection_per_server_and_for_guests() {
    let mut limits = RealtimeLimits::default();
    limits.max_watches_per_minute = 5;
    limits.max_total_watches = 6;
    limits.max_guest_watches = 1;
    let server = serve(ServerOptions::default().realtime(limits)).await;
    let (db,) = (server.db.clone(),);
    tokio::task::spawn_blocking(move || {
        let root = db.root();
        for c in ["c1", "c2", "c3"] {
            root.schema("db")
                .collections()
                .create(
                    permdb::CollectionSpec::new(c, c).permissions([Permission::read(Role::any())]),
                )
                .unwrap();
        }
        // Exists, readable by nobody but root and keys.
        root.schema("db")
            .collections()
            .create(permdb::CollectionSpec::new("hidden", "Hidden"))
            .unwrap();
    })
    .await
    .unwrap();
    let mut a = signed_in(&server, "a").await;
    // `documents` reaches the 4 collections user-a may read: 4 of the 5 a minute.
    a.subscribe(&[("all", &["documents"])]).await;
    a.subscribe(&[("one", &["databases.db.collections.c1.documents"])])
        .await;
    // A row sent again unchanged makes no watch: as often as the SDK resends it.
    for _ in 0..4 {
        a.subscribe(&[("one", &["databases.db.collections.c1.documents"])])
            .await;
    }
    a.send(json!({"type": "subscribe", "data": [
        {"subscriptionId": "two", "channels": ["databases.db.collections.c2.documents"]}]}))
        .await;
    a.error(1013, "5 collections a minute").await;
    // With no budget left, a hidden collection and a missing one answer alike: bounds
    // are spent only on collections the client may read.
    for name in ["hidden", "nope"] {
        let channel = format!("databases.db.collections.{name}.documents");
        a.subscribe(&[("probe", &[channel.as_str()])]).await;
    }

    // The server's bound: 6 watches in all; user-a holds 5.
    let mut b = signed_in(&server, "b").await;
    b.subscribe(&[("x", &["databases.db.collections.c1.documents"])])
        .await;
    b.send(json!({"type": "subscribe", "data": [
        {"subscriptionId": "y", "channels": ["databases.db.collections.c2.documents"]}]}))
        .await;
    b.error(1013, "the server holds 6 collection watches").await;
    // Closing a connection gives its watches back.
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.subscribe(&[("y", &["databases.db.collections.c2.documents"])])
        .await;
    // Guests share a smaller pool (1 here).
    let mut guest = connect(&server, "project=default", &[]).await;
    assert_eq!(guest.next().await["type"], "connected");
    guest
        .subscribe(&[("g1", &["databases.db.collections.c1.documents"])])
        .await;
    guest
        .send(json!({"type": "subscribe", "data": [
            {"subscriptionId": "g2", "channels": ["databases.db.collections.c2.documents"]}]}))
        .await;
    guest.error(1013, "for guests").await;

    // A refused message spends the budget of the watches it made or tried.
    drop((b, guest));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = signed_in(&server, "c").await;
    let bad = json!({"method": "between", "attribute": "name", "values": [1]}).to_string();
    c.send(json!({"type": "subscribe", "data": [
        {"subscriptionId": "all", "channels": ["documents"]},
        {"subscriptionId": "bad", "channels": ["databases.db.collections.c1.documents"], "queries": [bad]}]}))
        .await;
    c.error(1003, "Invalid query").await;
    c.send(json!({"type": "subscribe", "data": [
        {"subscriptionId": "two", "channels": ["databases.db.collections.c2.documents"]}]}))
        .await;
    c.error(1013, "5 collections a minute").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let mut limits = RealtimeLimits::default();
    limits.send_timeout = Duration::from_millis(500);
    let server = serve(ServerOptions::default().realtime(limits)).await;
    let mut a = signed_in(&server, "a").await;
    a.subscribe(&[("s", &[BIRTHDAYS])]).await;
    // A few large documents: more bytes than the sockets' buffers hold, far fewer events
    // than a watch queues, so the server's send waits (it does not lag).
    let db = server.db.clone();
    tokio::task::spawn_blocking(move || {
        let birthdays = db.root().schema("db").collection("birthdays");
        for i in 0..24 {
            let pad = "p".repeat(700_000);
            let data = json!({"name": "B", "birthday": "2000-01-01", "pad": pad});
            let perms = Some(vec![Permission::read(Role::user("user-a"))]);
            birthdays.create(&format!("big{i}"), data, perms).unwrap();
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (before, close) = a.closed().await;
    assert!(close.is_none(), "dropped, not closed: {close:?}");
    assert!(
        before.len() < 24,
        "{} events: it was not dropped",
        before.len()
    );
    assert!(
        !before.iter().any(|m| m["type"] == "error"),
        "dropped before any lag message"
    );
}

/// Writes 8,000 documents readable by user-a, of 2 KB each, in batches of 1,000.
async fn flood(server: &Server) {
    let db = server.db.clone();
    tokio::task::spawn_blocking(move || {
        let birthdays = db.root().schema("db").collection("birthdays");
        for batch in 0..8 {
            let docs = (0..1000).map(|i| {
                (
                    format!("bulk{batch}-{i}"),
                    json!({"name": "B", "birthday": "2000-01-01", "pad": "p".repeat(2000)}),
                    Some(vec![Permission::read(Role::user("user-a"))]),
                )
            });
            birthdays.create_many(docs).unwrap();
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_falls_behind_is_told_and_closed() {
    let mut limits = RealtimeLimits::default();
    limits.send_timeout = Duration::from_secs(120);
    let server = serve(ServerOptions::default().realtime(limits)).await;
    let mut a = signed_in(&server, "a").await;
    a.subscribe(&[("s", &[BIRTHDAYS])]).await;
    // The client reads nothing while the writes go on: the server's sends block once the
    // socket's buffers are full, its subscription queue fills, and writers never wait.
    flood(&server).await;
    let (before, close) = a.closed().await;
    assert!(
        before.len() < 8000,
        "{} events: nothing was dropped",
        before.len()
    );
    let last = before.last().expect("an error");
    assert_error(last, 1013, "fell behind");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1013));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_channel_carries_the_users_own_changes_and_nobody_elses() {
    let server = start().await;
    let (secret, _) = server.sign_in("a").await;
    let cookie = format!("a_session_default={secret}");
    let mut a = connect(&server, "project=default", &[("cookie", &cookie)]).await;
    assert_eq!(a.next().await["type"], "connected");
    let reply = a
        .subscribe(&[("acc", &["account"]), ("docs", &["documents"])])
        .await;
    assert_eq!(
        reply["data"]["subscriptions"][0]["channels"],
        json!(["account", "account.user-a"])
    );
    let mut b = signed_in(&server, "b").await;
    b.subscribe(&[("acc", &["account"])]).await;

    let session = [("X-Appwrite-Session", secret.as_str())];
    let (status, _) = server
        .call(
            reqwest::Method::PATCH,
            "/v1/account/name",
            &session,
            Some(json!({"name": "Ada"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let m = a.next().await;
    assert_eq!(m["type"], "event", "{m}");
    assert_eq!(m["data"]["events"][0], "users.user-a.update.name", "{m}");
    assert!(
        m["data"]["events"]
            .as_array()
            .unwrap()
            .contains(&json!("users.*.update"))
    );
    assert_eq!(
        m["data"]["channels"],
        json!(["account", "account.user-a", "account.user-a.update"])
    );
    assert_eq!(m["data"]["payload"]["name"], "Ada", "{m}");
    assert_eq!(m["data"]["subscriptions"], json!(["acc"]), "{m}");

    // Another sign-in: a session event, without its secret.
    let (other, _) = server.sign_in("a").await;
    let m = a.next().await;
    let first = m["data"]["events"][0].as_str().unwrap();
    assert!(
        first.starts_with("users.user-a.sessions.") && first.ends_with(".create"),
        "{m}"
    );
    assert_eq!(m["data"]["payload"]["secret"], "", "{m}");
    assert_ne!(m["data"]["payload"]["secret"], json!(other));
    // user-b heard none of it.
    b.nothing().await;

    // The connection's own session deleted: an error, then the close.
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            "/v1/account/sessions/current",
            &session,
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let (before, close) = a.closed().await;
    assert!(
        before
            .iter()
            .any(|m| m["type"] == "error" && m["data"]["code"] == 401),
        "{before:?}"
    );
    assert!(
        !before
            .iter()
            .any(|m| m["data"]["payload"]["name"] == "Ada" && m["type"] == "event"),
        "nothing after the end: {before:?}"
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_secure_cookies_is_its_own_origin_over_https_only() {
    let server = serve(ServerOptions::default().secure_cookies(true)).await;
    let host = server.base.trim_start_matches("http://").to_owned();
    let plain = format!("http://{host}");
    let mut ws = connect(&server, "project=default", &[("origin", plain.as_str())]).await;
    refused(&mut ws, 1008, "Invalid Origin", 1008).await;
    let tls = format!("https://{host}");
    let mut ws = connect(&server, "project=default", &[("origin", tls.as_str())]).await;
    assert_eq!(ws.next().await["type"], "connected");
}
