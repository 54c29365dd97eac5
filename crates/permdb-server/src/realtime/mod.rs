//! `GET /v1/realtime`: Appwrite's realtime WebSocket protocol (as its web SDK speaks it,
//! see docs/realtime-protocol.md) over the library's live subscriptions.
//!
//! A connection acts as one client, fixed at the handshake (session cookie, `jwt`
//! parameter, credential headers) or replaced by an `authentication` message; every
//! event it is sent comes from a library watch made as that client, so it carries only
//! what the client may read at that change.

mod account;
mod channels;
mod subscriptions;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{self, Via};
use crate::error::ApiError;
use crate::{SameSite, ServerOptions, model};
use permdb::{Client, Db};
use subscriptions::{
    Limit, Outcome, Refusal, Row, Subscriptions, WatchCount, error_frame, parse_rows, watches_for,
};

/// Bounds on realtime connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealtimeLimits {
    /// Open connections of the whole server; past it, a new one gets error 1013 and is
    /// closed. Default 1,000.
    pub max_connections: usize,
    /// Subscriptions (subscription ids) of one connection. Default 64.
    pub max_subscriptions: usize,
    /// Channels of one subscription. Default 64.
    pub max_channels: usize,
    /// Collection watches of one connection: a subscription holds one per collection its
    /// channels reach (`documents` reaches every readable collection). Default 256.
    pub max_watches: usize,
    /// Collection watches one connection may make in a minute (making one reads what
    /// its client may see of the collection; a `subscribe` repeating a subscription
    /// unchanged makes none). Default 256.
    pub max_watches_per_minute: usize,
    /// Collection watches of all connections together; past it, a `subscribe` gets error
    /// 1013. Default 20,000 (the store's own bound, `Options::max_subscriptions`, is
    /// 100,000 by default and is shared with in-process watches).
    pub max_total_watches: usize,
    /// Collection watches of guests' connections together (counted in
    /// `max_total_watches` too), so that guests cannot take every watch. Default 5,000.
    pub max_guest_watches: usize,
    /// Largest message a client may send, in bytes. Default 64,000 (Appwrite's).
    pub max_message_bytes: usize,
    /// Messages a client may send per minute; past it each gets error 1013 and is not
    /// run. Default 60 (the web SDK pings 3 times a minute and subscribes in batches).
    pub max_messages_per_minute: u32,
    /// A connection whose client sends nothing for this long is closed (code 1001). The
    /// server pings every 20 s and a browser answers at once (even in a background tab),
    /// so this finds dead peers. Default 60 s; taken as at least 3 s.
    pub idle_timeout: Duration,
    /// Longest the server waits to hand a client what it has for it (a round of events,
    /// a reply); past it the connection is dropped. Default 10 s; taken as at least
    /// 100 ms.
    pub send_timeout: Duration,
}

impl Default for RealtimeLimits {
    fn default() -> RealtimeLimits {
        RealtimeLimits {
            max_connections: 1000,
            max_subscriptions: 64,
            max_channels: 64,
            max_watches: 256,
            max_watches_per_minute: 256,
            max_total_watches: 20_000,
            max_guest_watches: 5_000,
            max_message_bytes: 64_000,
            max_messages_per_minute: 60,
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// The open connections of a server and their watches (for `max_connections` and
/// `max_total_watches`).
pub(crate) struct Connections {
    open: AtomicUsize,
    watches: Arc<WatchCount>,
    guest_watches: Arc<WatchCount>,
}

impl Connections {
    pub(crate) fn new(limits: &RealtimeLimits) -> Connections {
        Connections {
            open: AtomicUsize::new(0),
            watches: Arc::new(WatchCount::new(limits.max_total_watches, "")),
            guest_watches: Arc::new(WatchCount::new(limits.max_guest_watches, " for guests")),
        }
    }
}

/// One counted connection; uncounted when dropped.
struct Slot(Arc<Connections>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often the server pings a client: every 20 s, or a third of the idle timeout when
/// that is shorter, so that a live client always answers in time.
fn ping_every(limits: &RealtimeLimits) -> Duration {
    Duration::from_secs(20).min(limits.idle_timeout / 3)
}

/// Who a connection acts as, and what the handshake asked for.
struct Opened {
    client: Client,
    /// The Account model when a user is signed in.
    user: Option<Value>,
    /// Subscriptions given in the URL (`channels[]=`, Appwrite's older form).
    url_channels: Vec<String>,
    /// Whether the client holds a credential that can end.
    credentialed: bool,
}

/// The upgrade; the handshake's checks are made here and any refusal is sent on the
/// socket as Appwrite does (an `error` message, then a close), so the SDK sees why.
pub(crate) async fn handler(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    Extension(connections): Extension<Arc<Connections>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(e) => {
            return ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "general_argument_invalid",
                format!("/v1/realtime is a WebSocket: {e}"),
            )
            .into_response();
        }
    };
    let limits = options.realtime;
    let slot = {
        let n = connections.open.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(&connections));
        (n < limits.max_connections).then_some(slot)
    };
    // Over the bound, nothing of the handshake is looked at.
    let opened = match &slot {
        None => Err((
            1013,
            format!(
                "Too many connections: this server takes {} at once.",
                limits.max_connections
            ),
        )),
        Some(_) => {
            let db = db.clone();
            let options = Arc::clone(&options);
            tokio::task::spawn_blocking(move || open(&db, &options, &headers, query.as_deref()))
                .await
                .unwrap_or_else(|e| Err((1011, format!("Error: Server Error ({e})"))))
        }
    };
    let pools = [
        Arc::clone(&connections.watches),
        Arc::clone(&connections.guest_watches),
    ];
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_upgrade(move |mut socket| async move {
            match (opened, slot) {
                (Ok(opened), Some(slot)) => run(socket, db, limits, opened, slot, pools).await,
                (Err((code, message)), _) => {
                    refuse(&mut socket, code, &message, close_code(code)).await;
                }
                (Ok(_), None) => {}
            }
        })
}

/// The close that follows a refusal with Appwrite's error `code`: a policy refusal
/// (1008) stops the SDK from reconnecting; a full server (1013) or a server error (1011)
/// lets it try again.
fn close_code(code: u16) -> u16 {
    match code {
        1013 => 1013,
        1011 | 500..=599 => 1011,
        _ => 1008,
    }
}

/// Sends Appwrite's error message and closes with `close`.
async fn refuse(socket: &mut WebSocket, code: u16, message: &str, close: u16) {
    let _ = send(socket, &error_frame(code, message)).await;
    close_with(socket, close, "refused").await;
}

/// Longest a refusal or a close waits for a client that does not read.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

async fn send(socket: &mut WebSocket, frame: &Value) -> Result<(), ()> {
    send_within(socket, frame, CLOSE_TIMEOUT).await
}

/// Sends `frame`, waiting at most `timeout` for the client to take it; `Err` when the
/// socket failed or the client did not read in time (the connection is then dropped).
async fn send_within(socket: &mut WebSocket, frame: &Value, timeout: Duration) -> Result<(), ()> {
    match tokio::time::timeout(
        timeout,
        socket.send(Message::Text(frame.to_string().into())),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Sends a close frame, then waits (briefly) for the client's, as the protocol asks:
/// closing the TCP connection at once would make the client's next write (a pong) reset
/// it, and a reset loses the close frame the client had not read yet: the SDK would see
/// 1006 rather than the code that tells it whether to reconnect.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let close = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    if !matches!(
        tokio::time::timeout(CLOSE_TIMEOUT, socket.send(close)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let answered = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, answered).await;
}

/// Longest the server waits for the client's close frame after its own.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The handshake: the project, the page's origin, and the credential. Errors are
/// (Appwrite's code, message).
fn open(
    db: &Db,
    options: &ServerOptions,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Opened, (u16, String)> {
    let mut project = None;
    let mut jwt = None;
    let mut url_channels = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let once = |slot: &mut Option<String>| match slot {
            Some(_) => Err((1008, format!("parameter {key} given more than once"))),
            None => {
                *slot = Some(value.clone().into_owned());
                Ok(())
            }
        };
        match &*key {
            "project" => once(&mut project)?,
            "jwt" => once(&mut jwt)?,
            "channels[]" | "channels" => url_channels.push(value.into_owned()),
            _ => {}
        }
    }
    let header_project = auth::header(headers, &auth::PROJECT_HEADERS)
        .map_err(|e| (1008, e.message))?
        .map(|(_, p)| p.to_owned());
    // A request naming no project means the store's, as on every HTTP route.
    for given in [project, header_project].into_iter().flatten() {
        if given != db.project() {
            return Err((1008, "Missing or unknown project ID".to_owned()));
        }
    }
    check_origin(options, headers)?;
    let caller = auth::caller(db, headers).map_err(|e| (e.status.as_u16(), e.message))?;
    let credentialed = jwt.is_some() || caller.via != Via::Guest;
    let client = match (jwt, caller.via) {
        (None, _) => caller.client,
        (Some(_), Via::Cookie) => {
            return Err((
                403,
                "A JWT and a session cookie were both given: use one.".to_owned(),
            ));
        }
        (Some(_), Via::Key | Via::Jwt | Via::Session) => {
            return Err((
                400,
                "Give one credential: the jwt parameter or a header.".to_owned(),
            ));
        }
        (Some(token), Via::Guest) => db
            .client()
            .set_jwt(&token)
            .map_err(|e| (401, format!("Failed to verify JWT. {e}")))?,
    };
    let user = account_of(db, &client);
    Ok(Opened {
        client,
        user,
        url_channels,
        credentialed,
    })
}

/// The Account model of the user a client acts as; `None` for a guest, root or a key.
fn account_of(db: &Db, client: &Client) -> Option<Value> {
    let user = client.account().get().ok()?;
    model::user_of(db, &user).ok()
}

/// A browser's page may open a connection only from the server's own origin or one of
/// the CORS origins: a page elsewhere could otherwise act with the visitor's session
/// cookie (the browser attaches it to the handshake). Clients that are not browsers send
/// no `Origin`.
fn check_origin(options: &ServerOptions, headers: &HeaderMap) -> Result<(), (u16, String)> {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    // A server whose cookie is sent over HTTPS only is its own origin over HTTPS only: a
    // page on `http://` with the same host could be a network attacker's.
    let schemes: &[&str] = if options.secure_cookies || options.same_site == SameSite::None {
        &["https://"]
    } else {
        &["http://", "https://"]
    };
    let own = host.is_some_and(|host| {
        schemes
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host.as_str()))
    });
    if own || options.cors_origins.contains(&origin) {
        return Ok(());
    }
    Err((
        1008,
        format!(
            "Invalid Origin. Register the origin {} with the server (--cors-origin) to \
             connect from it.",
            permdb::wire::quote(&origin)
        ),
    ))
}

/// A connection's state.
struct Connection {
    db: Db,
    limits: RealtimeLimits,
    client: Client,
    /// Whether the client holds a credential that can end (a session, a token, a key).
    credentialed: bool,
    user: Option<Value>,
    subs: Subscriptions,
    /// What the connection last saw of its account, while a row names the account channel.
    account: Option<account::Seen>,
    /// Messages in the current minute.
    window: (Instant, u32),
    /// When the current minute began, and the watches made or tried in it (shared with
    /// the blocking work that makes them, so that a refused message counts too).
    made: (Instant, Arc<AtomicUsize>),
    /// The server's counts of watches: the total, and the guests' while the client is a
    /// guest.
    pools: Vec<Arc<WatchCount>>,
}

/// Serves one connection until either side closes it.
async fn run(
    mut socket: WebSocket,
    db: Db,
    limits: RealtimeLimits,
    opened: Opened,
    _slot: Slot,
    pools: [Arc<WatchCount>; 2],
) {
    let [total, guests] = pools;
    let mut limits = limits;
    limits.idle_timeout = limits.idle_timeout.max(Duration::from_secs(3));
    limits.send_timeout = limits.send_timeout.max(Duration::from_millis(100));
    let pools = if opened.credentialed {
        vec![total]
    } else {
        vec![total, guests]
    };
    let mut conn = Connection {
        db,
        limits,
        credentialed: opened.credentialed,
        client: opened.client,
        user: opened.user,
        subs: Subscriptions::default(),
        account: None,
        window: (Instant::now(), 0),
        made: (Instant::now(), Arc::new(AtomicUsize::new(0))),
        pools,
    };
    let (mut ids, mut channels) = (json!([]), json!([]));
    if !opened.url_channels.is_empty() {
        let rows = json!([{"channels": opened.url_channels}]);
        match conn.subscribe(&rows).await {
            Ok(reply) => {
                // One row: its id and its channels.
                if let Some(row) = reply.pointer("/data/subscriptions/0") {
                    ids = json!([row.get("subscriptionId")]);
                    channels = row.get("channels").cloned().unwrap_or_default();
                }
            }
            Err(refusal) => {
                let close = close_code(refusal.code);
                refuse(&mut socket, refusal.code, &refusal.message, close).await;
                return;
            }
        }
    }
    let connected = json!({"channels": channels, "subscriptions": ids, "user": conn.user});
    let timeout = conn.limits.send_timeout;
    let connected = json!({"type": "connected", "data": connected});
    if send_within(&mut socket, &connected, timeout).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut heard = Instant::now();
    let mut pinged = Instant::now();
    loop {
        // What to send, and whether (and how) to close after it.
        let (frames, close): (Vec<Value>, Option<(u16, &'static str)>) = tokio::select! {
            message = socket.recv() => {
                heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => (conn.handle(&text).await.into_iter().collect(), None),
                    Some(Ok(Message::Binary(_))) => {
                        (conn.counted(|| error_frame(1003, "Message format is not valid.")).into_iter().collect(), None)
                    }
                    // (The socket answers pings itself.)
                    Some(Ok(Message::Ping(_))) => (conn.counted(|| Value::Null).into_iter().filter(|f| !f.is_null()).collect(), None),
                    // (Counted too: each wakes the loop.)
                    Some(Ok(Message::Pong(_))) => {
                        (conn.counted(|| Value::Null).into_iter().filter(|f| !f.is_null()).collect(), None)
                    }
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Err(e)) => {
                        // Too large a message, or a broken frame: say so if the socket
                        // still takes it.
                        (vec![error_frame(1003, &format!("Message is not valid: {e}"))], Some((1009, "message not valid")))
                    }
                }
            }
            () = std::future::poll_fn(|cx| conn.subs.poll_events(cx)) => {
                let now = permdb::wire::format_time(time::OffsetDateTime::now_utc());
                match conn.subs.frames(&now) {
                    Outcome::Frames(frames) => (frames, None),
                    Outcome::Close { frames, code, reason } => (frames, Some((code, reason))),
                }
            }
            _ = tick.tick() => {
                if heard.elapsed() > conn.limits.idle_timeout {
                    close_with(&mut socket, 1001, "idle").await;
                    return;
                }
                if pinged.elapsed() >= ping_every(&conn.limits) {
                    pinged = Instant::now();
                    let ping = socket.send(Message::Ping(Vec::new().into()));
                    if !matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(()))) {
                        return;
                    }
                }
                match conn.check().await {
                    Ok(frames) => (frames, None),
                    Err(message) => (vec![error_frame(401, &message)], Some((1000, "credential ended"))),
                }
            }
        };
        // One deadline for the whole round: a client reading slowly cannot hold a
        // round's frames for longer.
        let deadline = tokio::time::Instant::now() + timeout;
        for frame in &frames {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if send_within(&mut socket, frame, left).await.is_err() {
                return;
            }
        }
        if let Some((code, reason)) = close {
            close_with(&mut socket, code, reason).await;
            return;
        }
    }
}

impl Connection {
    /// Counts one message against `max_messages_per_minute`: Appwrite's refusal past it,
    /// else `reply()`.
    fn counted(&mut self, reply: impl FnOnce() -> Value) -> Option<Value> {
        let (start, count) = &mut self.window;
        if start.elapsed() >= Duration::from_secs(60) {
            *start = Instant::now();
            *count = 0;
        }
        *count += 1;
        if *count > self.limits.max_messages_per_minute {
            return Some(error_frame(1013, "Too many messages."));
        }
        Some(reply())
    }

    /// Runs one text message; the reply to send, if any.
    async fn handle(&mut self, text: &str) -> Option<Value> {
        if let Some(refused) = self.counted(|| Value::Null).filter(|f| !f.is_null()) {
            return Some(refused);
        }
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Some(error_frame(1003, "Message format is not valid."));
        };
        let kind = message.get("type").and_then(Value::as_str);
        let data = message.get("data").unwrap_or(&Value::Null);
        let answer = match kind {
            Some("ping") => return Some(json!({"type": "pong"})),
            Some("subscribe") => self.subscribe(data).await,
            Some("unsubscribe") => self.unsubscribe(data).await,
            Some("authentication") => self.authenticate(data).await,
            Some(_) => Err("Message type is not valid.".into()),
            None => Err("Message format is not valid.".into()),
        };
        Some(answer.unwrap_or_else(|r| error_frame(r.code, &r.message)))
    }

    /// `subscribe`: adds or replaces the rows, all or none.
    async fn subscribe(&mut self, data: &Value) -> Result<Value, Refusal> {
        let rows = parse_rows(data, self.limits.max_channels)?;
        let after: usize = self.subs.rows().len()
            + rows
                .iter()
                .filter(|(id, _)| !self.subs.rows().contains_key(id))
                .count();
        if after > self.limits.max_subscriptions {
            return Err(format!(
                "Invalid payload: a connection holds at most {} subscriptions.",
                self.limits.max_subscriptions
            )
            .into());
        }
        // A row sent again unchanged keeps its watches (the SDK sends every row again on
        // each reconnect and after each change to one of them).
        let changed: Vec<(String, Row)> = rows
            .iter()
            .filter(|(id, row)| self.subs.rows().get(id) != Some(row))
            .cloned()
            .collect();
        // The watches of replaced rows go when the new ones come.
        let kept = self
            .subs
            .watches_outside(changed.iter().map(|(id, _)| id.as_str()));
        let limit = self.limit(self.limits.max_watches.saturating_sub(kept));
        let watches = {
            let (db, client) = (self.db.clone(), self.client.clone());
            let (made, pools, rows) = (
                Arc::clone(&self.made.1),
                self.pools.clone(),
                changed.clone(),
            );
            tokio::task::spawn_blocking(move || {
                watches_for(&db, &client, &rows, &limit, &made, &pools)
            })
            .await
            .map_err(|e| Refusal::from(format!("Error: Server Error ({e})")))??
        };
        let user = self.user_id();
        let answered: Vec<Value> = rows
            .iter()
            .map(|(id, row)| {
                json!({
                    "subscriptionId": id,
                    "channels": channels::converted(&row.channels, user.as_deref()),
                    "queries": row.queries,
                })
            })
            .collect();
        self.subs.upsert(changed, watches);
        self.follow_account().await;
        Ok(json!({"type": "response", "data": {
            "to": "subscribe", "success": true, "subscriptions": answered}}))
    }

    /// The bounds of the next `watches_for`: the connection's `room`, and its watches
    /// a minute (the minute starts again once passed).
    fn limit(&mut self, room: usize) -> Limit {
        let (start, made) = &mut self.made;
        if start.elapsed() >= Duration::from_secs(60) {
            *start = Instant::now();
            made.store(0, Ordering::SeqCst);
        }
        Limit {
            room,
            room_refusal: format!(
                "Invalid payload: these subscriptions reach more than {} collections, the \
                 most one connection may watch.",
                self.limits.max_watches
            )
            .into(),
            per_minute: self.limits.max_watches_per_minute,
            minute_refusal: Refusal::later(format!(
                "Too many subscriptions: a connection may watch {} collections a minute; try \
                 again later.",
                self.limits.max_watches_per_minute
            )),
        }
    }

    /// `unsubscribe`: removes the rows named; unknown ids answer `removed: false`.
    async fn unsubscribe(&mut self, data: &Value) -> Result<Value, Refusal> {
        let Value::Array(items) = data else {
            return Err("Invalid payload: an unsubscribe message's data is a list.".into());
        };
        let mut answered = Vec::with_capacity(items.len());
        for item in items {
            let Some(id) = item.get("subscriptionId").and_then(Value::as_str) else {
                return Err("Invalid payload: each item needs a subscriptionId.".into());
            };
            let removed = self.subs.remove(id);
            answered.push(json!({"subscriptionId": id, "removed": removed}));
        }
        self.follow_account().await;
        Ok(json!({"type": "response", "data": {
            "to": "unsubscribe", "success": true, "subscriptions": answered}}))
    }

    /// `authentication`: the connection acts as the session's user from now on; every
    /// subscription is made again as that user.
    async fn authenticate(&mut self, data: &Value) -> Result<Value, Refusal> {
        let Some(secret) = data.get("session").and_then(Value::as_str) else {
            return Err("Invalid payload: authentication needs a session.".into());
        };
        let (db, secret) = (self.db.clone(), secret.to_owned());
        let rows: Vec<(String, Row)> = self
            .subs
            .rows()
            .iter()
            .map(|(id, row)| (id.clone(), row.clone()))
            .collect();
        let limit = self.limit(self.limits.max_watches);
        let count = Arc::clone(&self.made.1);
        // A signed-in user's watches are not counted among the guests'.
        let pools: Vec<Arc<WatchCount>> = self.pools.iter().take(1).cloned().collect();
        let new_pools = pools.clone();
        let made = tokio::task::spawn_blocking(move || {
            let client = db
                .client()
                .set_session(&secret)
                .map_err(|_| Refusal::from("Session is not valid."))?;
            let watches = watches_for(&db, &client, &rows, &limit, &count, &pools)?;
            let user = account_of(&db, &client);
            Ok::<_, Refusal>((client, watches, user))
        })
        .await
        .map_err(|e| Refusal::from(format!("Error: Server Error ({e})")))?;
        let (client, watches, user) = made?;
        self.pools = new_pools;
        self.credentialed = true;
        self.client = client;
        self.user = user;
        self.subs.rewatch(watches);
        self.follow_account().await;
        Ok(json!({"type": "response", "data": {
            "to": "authentication", "success": true, "user": self.user}}))
    }

    /// Starts or stops following the account as the rows now ask (blocking read).
    async fn follow_account(&mut self) {
        let Some(user) = self.user_id() else {
            self.account = None;
            return;
        };
        if !self.subs.wants_account() {
            self.account = None;
            return;
        }
        if self.account.as_ref().is_some_and(|seen| seen.user == user) {
            return;
        }
        let (db, client) = (self.db.clone(), self.client.clone());
        self.account = tokio::task::spawn_blocking(move || account::read(&db, &client).ok())
            .await
            .ok()
            .flatten();
    }

    /// Each second: the account channel's frames for what changed since the last reading;
    /// `Err` when the connection's credential has ended. (Watches see that themselves, at
    /// their next poll; this covers a connection with none.)
    async fn check(&mut self) -> Result<Vec<Value>, String> {
        if self.account.is_some() {
            return self.account_frames().await;
        }
        if !self.credentialed || self.subs.has_live_watches() {
            return Ok(Vec::new());
        }
        let client = self.client.clone();
        let alive = tokio::task::spawn_blocking(move || {
            client.skips_permissions() || !client.roles().is_empty()
        })
        .await
        .unwrap_or(false);
        if alive {
            Ok(Vec::new())
        } else {
            Err("The connection's credential has ended (expired, signed out or revoked).".into())
        }
    }

    /// The account channel's frames for what changed since the last reading; `Err` when
    /// the account can no longer be read (the credential ended).
    async fn account_frames(&mut self) -> Result<Vec<Value>, String> {
        let Some(old) = self.account.clone() else {
            return Ok(Vec::new());
        };
        let (db, client) = (self.db.clone(), self.client.clone());
        let new = tokio::task::spawn_blocking(move || account::read(&db, &client))
            .await
            .map_err(|e| format!("Error: Server Error ({e})"))?
            .map_err(|e| e.to_string())?;
        let now = permdb::wire::format_time(time::OffsetDateTime::now_utc());
        let frames = account::changes(&old, &new)
            .iter()
            .filter_map(|change| {
                let rows = self.subs.rows().iter().map(|(id, row)| (id, &row.channels));
                account::frame(&new.user, change, rows, &now)
            })
            .collect();
        self.account = Some(new);
        Ok(frames)
    }

    fn user_id(&self) -> Option<String> {
        self.user
            .as_ref()
            .and_then(|u| u.get("$id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// Parses a client's message as a connection would, without a store: its JSON, and for a
/// `subscribe`, its rows and what their channels reach among a fixed set of collections
/// (ids with dots among them). Panics only on a broken invariant (for the fuzz target).
#[cfg(feature = "fuzzing")]
pub fn fuzz_message(text: &str) {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let data = message.get("data").unwrap_or(&Value::Null);
    if message.get("type").and_then(Value::as_str) != Some("subscribe") {
        return;
    }
    let pairs = vec![
        ("db".to_owned(), "notes".to_owned()),
        ("a.b".to_owned(), "c.documents".to_owned()),
    ];
    let collections = channels::Catalog::new(pairs.clone());
    let Ok(rows) = parse_rows(data, 64) else {
        return;
    };
    for (id, row) in rows {
        assert!(!id.is_empty() && id.len() <= 36, "{id}");
        assert!(!row.channels.is_empty() && row.channels.len() <= 64);
        for channel in &row.channels {
            if let Ok(reach) = channels::reach(channel, &collections) {
                assert!(!reach.is_empty(), "{channel}");
            }
        }
        let converted = channels::converted(&row.channels, Some("u"));
        assert!(converted.len() <= 2 * row.channels.len());
        for (d, c) in &pairs {
            let names = channels::event_names(d, c, &id, "update");
            assert_eq!(names.len(), 42);
            assert_eq!(channels::change_channels(d, c, &id, "update").len(), 16);
        }
    }
}
