//! One connection's subscriptions: the rows its client subscribed (an id, channels,
//! queries), the library watches they need (one per row and collection), and the
//! `event` frames their events make.
//!
//! INVARIANT (one-watch-per-row-and-collection): a row holds at most one watch on a
//! collection, so a change reaches a row at most once; rows that see the same change
//! share one frame when their events are taken together.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_core::Stream;
use serde_json::{Map, Value, json};

use super::channels::{self, Catalog, Reach};
use permdb::{Client, Db, Error, Event, Query};

/// Most events taken from the watches in one round: the rest wait in their queues (a
/// connection that cannot keep up lags there and is closed, rather than held here).
const EVENTS_PER_ROUND: usize = 512;

/// A subscription as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) channels: Vec<String>,
    /// The queries as sent (each one query's JSON), echoed in replies.
    pub(crate) queries: Vec<String>,
    /// The filters among them (`select(["*"])` is dropped).
    filters: Vec<Query>,
}

/// A library watch serving one row on one collection.
pub(crate) struct Watched {
    subscription: String,
    database: String,
    collection: String,
    live: permdb::Subscription,
    /// Closed and drained: every event it had was taken.
    done: bool,
    /// Its places in the server's counts.
    _slots: Vec<WatchSlot>,
}

/// What a connection has subscribed.
#[derive(Default)]
pub(crate) struct Subscriptions {
    rows: BTreeMap<String, Row>,
    watches: Vec<Watched>,
    /// Events taken from the watches and not yet made into frames: (watch, event).
    taken: Vec<(usize, Event)>,
}

/// What the connection must do after its events were made into frames.
pub(crate) enum Outcome {
    /// Send these frames.
    Frames(Vec<Value>),
    /// Send these frames, then close: the connection fell behind or its credential ended.
    Close {
        frames: Vec<Value>,
        code: u16,
        reason: &'static str,
    },
}

/// Parses the `data` of a `subscribe` message: a list of `{subscriptionId, channels,
/// queries}`. An id is minted for a row without one. Errors are Appwrite's 1003 words.
pub(crate) fn parse_rows(data: &Value, max_channels: usize) -> Result<Vec<(String, Row)>, String> {
    let Value::Array(items) = data else {
        return Err(
            "Invalid payload: a subscribe message's data is a list of subscriptions.".into(),
        );
    };
    let mut out: Vec<(String, Row)> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(item) = item else {
            return Err("Invalid payload: each subscription is an object.".into());
        };
        if let Some(key) = item
            .keys()
            .find(|k| !["subscriptionId", "channels", "queries"].contains(&k.as_str()))
        {
            return Err(format!(
                "Invalid payload: unknown key {}.",
                permdb::wire::quote(key)
            ));
        }
        let id = match item.get("subscriptionId") {
            None | Some(Value::Null) => permdb::ID::unique(),
            Some(Value::String(id)) => permdb::wire::new_id("subscription", id)
                .map_err(|e| format!("Invalid payload: subscriptionId: {e}"))?,
            Some(_) => return Err("Invalid payload: subscriptionId must be a string.".into()),
        };
        let channels = strings(item.get("channels"), "channels")?
            .ok_or("Invalid payload: items: channels is not present in payload.")?;
        if channels.is_empty() {
            return Err("Invalid payload: channels is empty.".into());
        }
        if channels.len() > max_channels {
            return Err(format!(
                "Invalid payload: {} channels in one subscription, the most is {max_channels}.",
                channels.len()
            ));
        }
        let queries = strings(item.get("queries"), "queries")?.unwrap_or_default();
        let mut filters = Vec::with_capacity(queries.len());
        for text in &queries {
            if let Some(q) = filter(text)? {
                filters.push(q);
            }
        }
        if out.iter().any(|(other, _)| *other == id) {
            return Err(format!(
                "Invalid payload: subscription {id} is given twice."
            ));
        }
        out.push((
            id,
            Row {
                channels,
                queries,
                filters,
            },
        ));
    }
    Ok(out)
}

/// A list of strings under `key`, `None` when absent.
fn strings(value: Option<&Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("Invalid payload: {key} must be a list of strings.")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("Invalid payload: {key} must be a list of strings.")),
    }
}

/// One subscription query: a filter, `None` for `select(["*"])` (Appwrite's only select),
/// or Appwrite's refusal of any other method.
fn filter(text: &str) -> Result<Option<Query>, String> {
    let raw: Value = serde_json::from_str(text).map_err(|_| {
        format!(
            "Invalid query: {} is not a query.",
            permdb::wire::quote(text)
        )
    })?;
    if raw.get("method").and_then(Value::as_str) == Some("select") {
        return if raw.get("values") == Some(&json!(["*"])) {
            Ok(None)
        } else {
            Err("Invalid query: only select([\"*\"]) is supported in subscriptions.".into())
        };
    }
    let query = Query::from_json(text).map_err(|e| format!("Invalid query: {e}"))?;
    if !query.method().is_filter() {
        return Err(format!(
            "Invalid query: Query method '{}' is not supported in subscriptions.",
            query.method().as_str()
        ));
    }
    Ok(Some(query))
}

/// The watches `rows` need, made as `client` (blocking: it reads the store).
///
/// A collection the client may not read, or that does not exist, is passed over before
/// any bound is looked at (as in Appwrite it never matches, and no bound tells a hidden
/// collection from a missing one); so is one a wildcard channel reaches whose attributes
/// the queries do not fit. Every watch made, or tried, counts in `made` (the
/// connection's this minute, shared so that a refused message counts too); each watch
/// takes a slot of the server's `pools`. An error (1003 words) for queries that do not
/// fit a collection a channel names; 1003 or 1013 past a bound: no watch is tried past
/// one, so the work one message causes is bounded.
pub(crate) fn watches_for(
    db: &Db,
    client: &Client,
    rows: &[(String, Row)],
    limit: &Limit,
    made: &AtomicUsize,
    pools: &[Arc<WatchCount>],
) -> Result<Vec<Watched>, Refusal> {
    let catalog = Catalog::new(existing_collections(db).map_err(|e| e.to_string())?);
    let mut out = Vec::new();
    for (id, row) in rows {
        // Each collection once per row, and whether a channel names it (rather than only
        // a wildcard).
        let mut targets: BTreeMap<(String, String), bool> = BTreeMap::new();
        for channel in &row.channels {
            for reach in channels::reach(channel, &catalog)? {
                match reach {
                    Reach::Everything => {
                        for key in catalog.all() {
                            targets.entry(key.clone()).or_insert(false);
                        }
                    }
                    Reach::Collection {
                        database,
                        collection,
                    } => {
                        targets.insert((database, collection), true);
                    }
                    Reach::Account | Reach::Nothing => {}
                }
            }
        }
        for ((database, collection), named) in targets {
            let handle = client.schema(&database).collection(&collection);
            match handle.check_readable() {
                Ok(()) => {}
                Err(Error::Unauthorized { .. } | Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.to_string().into()),
            }
            if out.len() >= limit.room {
                return Err(limit.room_refusal.clone());
            }
            if made.fetch_add(1, Ordering::SeqCst) >= limit.per_minute {
                return Err(limit.minute_refusal.clone());
            }
            let mut slots = Vec::with_capacity(pools.len());
            for pool in pools {
                let Some(slot) = WatchSlot::take(pool) else {
                    return Err(Refusal::later(format!(
                        "Too many subscriptions: the server holds {} collection watches{}, its most.",
                        pool.max, pool.of
                    )));
                };
                slots.push(slot);
            }
            match handle.watch(&row.filters) {
                Ok(live) => out.push(Watched {
                    subscription: id.clone(),
                    database,
                    collection,
                    live,
                    done: false,
                    _slots: slots,
                }),
                // Gone or closed to the client since the check: never matches.
                Err(Error::Unauthorized { .. } | Error::NotFound { .. }) => {}
                Err(Error::InvalidQuery(_)) if !named => {}
                Err(Error::InvalidQuery(e)) => return Err(format!("Invalid query: {e}").into()),
                Err(e @ Error::LimitExceeded(_)) => return Err(Refusal::later(e.to_string())),
                Err(e) => return Err(e.to_string().into()),
            }
        }
    }
    Ok(out)
}

/// The bounds on one `watches_for`, and what it says past each.
pub(crate) struct Limit {
    /// Watches it may return (the connection's room).
    pub(crate) room: usize,
    pub(crate) room_refusal: Refusal,
    /// Watches the connection may make (or try) a minute, against its `made` count.
    pub(crate) per_minute: usize,
    pub(crate) minute_refusal: Refusal,
}

/// A count of watches held, bounded (`RealtimeLimits::max_total_watches`, and
/// `max_guest_watches` for guests' connections).
#[derive(Debug)]
pub(crate) struct WatchCount {
    held: AtomicUsize,
    max: usize,
    /// What it counts, for the refusal (" of guests", or nothing).
    of: &'static str,
}

impl WatchCount {
    pub(crate) fn new(max: usize, of: &'static str) -> WatchCount {
        WatchCount {
            held: AtomicUsize::new(0),
            max,
            of,
        }
    }
}

/// One counted watch; uncounted when dropped (with its watch).
struct WatchSlot(Arc<WatchCount>);

impl WatchSlot {
    fn take(count: &Arc<WatchCount>) -> Option<WatchSlot> {
        let slot = WatchSlot(Arc::clone(count));
        (count.held.fetch_add(1, Ordering::SeqCst) < count.max).then_some(slot)
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A message refused: Appwrite's error code (1003 for a message that is not valid, 1013
/// for one to try again later) and the words.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) code: u16,
    pub(crate) message: String,
}

impl Refusal {
    /// 1013: a bound was reached; the same message may pass later.
    pub(crate) fn later(message: String) -> Refusal {
        Refusal {
            code: 1013,
            message,
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal {
            code: 1003,
            message,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal::from(message.to_owned())
    }
}

/// Every collection of the store, as `(database, collection)`. Read as root: only the
/// watches made from it, as the connection's client, decide what the client sees.
fn existing_collections(db: &Db) -> permdb::Result<Vec<(String, String)>> {
    let root = db.root();
    let mut out = Vec::new();
    for schema in root.schemas().list()? {
        for coll in root.schema(&schema.id).collections().list()? {
            out.push((schema.id.clone(), coll.id));
        }
    }
    Ok(out)
}

impl Subscriptions {
    /// The rows, by subscription id.
    pub(crate) fn rows(&self) -> &BTreeMap<String, Row> {
        &self.rows
    }

    /// Whether some row names the account channel.
    pub(crate) fn wants_account(&self) -> bool {
        self.rows.values().any(|row| {
            row.channels
                .iter()
                .any(|c| c == "account" || c.starts_with("account."))
        })
    }

    /// Whether some watch is still open (it sees its credential end by itself).
    pub(crate) fn has_live_watches(&self) -> bool {
        self.watches.iter().any(|w| !w.done)
    }

    /// How many library watches serve rows other than `ids`.
    pub(crate) fn watches_outside<'a>(&self, ids: impl Iterator<Item = &'a str>) -> usize {
        let ids: BTreeSet<&str> = ids.collect();
        self.watches
            .iter()
            .filter(|w| !ids.contains(w.subscription.as_str()))
            .count()
    }

    /// Adds or replaces `rows` (an existing id is replaced whole: channels and queries)
    /// with their new `watches`.
    pub(crate) fn upsert(&mut self, rows: Vec<(String, Row)>, watches: Vec<Watched>) {
        let ids: BTreeSet<&String> = rows.iter().map(|(id, _)| id).collect();
        self.forget_watches(|w| ids.contains(&w.subscription));
        for (id, row) in rows {
            self.rows.insert(id, row);
        }
        self.watches.extend(watches);
    }

    /// Replaces every watch (after the connection's credential changed).
    pub(crate) fn rewatch(&mut self, watches: Vec<Watched>) {
        self.forget_watches(|_| true);
        self.watches = watches;
    }

    /// Removes the row `id`; whether it existed.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        self.forget_watches(|w| w.subscription == id);
        self.rows.remove(id).is_some()
    }

    /// Drops the watches `gone` picks, and any event taken from them.
    fn forget_watches(&mut self, gone: impl Fn(&Watched) -> bool) {
        let mut kept = Vec::with_capacity(self.watches.len());
        let mut renumber = Vec::with_capacity(self.watches.len());
        for w in std::mem::take(&mut self.watches) {
            if gone(&w) {
                renumber.push(None);
            } else {
                renumber.push(Some(kept.len()));
                kept.push(w);
            }
        }
        self.watches = kept;
        self.taken = std::mem::take(&mut self.taken)
            .into_iter()
            .filter_map(|(i, e)| renumber.get(i).copied().flatten().map(|i| (i, e)))
            .collect();
    }

    /// Ready once some watch has events (they are taken, every one that is waiting);
    /// pending otherwise, woken by the next event.
    pub(crate) fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.taken.is_empty() {
            // Their last events (lagged, ended) were made into frames already.
            self.forget_watches(|w| w.done);
        }
        for (i, w) in self.watches.iter_mut().enumerate() {
            // A closed watch is drained whole: its last event (lagged, ended) is seen now,
            // not after rounds of the events queued before it.
            let closed = w.live.is_closed();
            while !w.done && (closed || self.taken.len() < EVENTS_PER_ROUND) {
                match Pin::new(&mut w.live).poll_next(cx) {
                    Poll::Ready(Some(event)) => self.taken.push((i, event)),
                    Poll::Ready(None) => w.done = true,
                    Poll::Pending => break,
                }
            }
        }
        if self.taken.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// The frames for the events taken: one per change and kind, naming every row it
    /// reaches (a row reached when one of its channels is one of the change's).
    pub(crate) fn frames(&mut self, now: &str) -> Outcome {
        let mut taken = std::mem::take(&mut self.taken);
        // Each watch's events are in change order; merge them so.
        taken.sort_by_key(|(_, e)| lsn_of(e));
        let mut frames: Vec<Value> = Vec::new();
        // (lsn, database, collection, id, change) -> index in `frames`
        let mut by_change: BTreeMap<(u64, String, String, String, &'static str), usize> =
            BTreeMap::new();
        for (i, event) in taken {
            let Some(w) = self.watches.get(i) else {
                continue;
            };
            let (lsn, change, id, document) = match event {
                Event::Created { lsn, document } => (lsn, "created", None, Some(document)),
                Event::Updated { lsn, document } => (lsn, "updated", None, Some(document)),
                Event::Entered { lsn, document } => (lsn, "entered", None, Some(document)),
                Event::Deleted { lsn, id } => (lsn, "deleted", Some(id), None),
                Event::Left { lsn, id } => (lsn, "left", Some(id), None),
                // (Its log sequence number is not sent: it counts the store's writes,
                // those the client may not read too.)
                // What was taken is dropped: the client missed changes anyway, and a slow
                // reader is not made to hold them.
                Event::Lagged { .. } => {
                    frames.clear();
                    frames.push(error_frame(
                        1013,
                        &format!(
                            "This connection fell behind the changes (more than {} events \
                             waiting); reconnect and read the current state again.",
                            permdb::WATCH_QUEUE
                        ),
                    ));
                    return Outcome::Close {
                        frames,
                        code: 1013,
                        reason: "fell behind",
                    };
                }
                Event::Ended { error } => {
                    if ends_credential(&error) {
                        frames.push(error_frame(401, &error.to_string()));
                        return Outcome::Close {
                            frames,
                            code: 1000,
                            reason: "credential ended",
                        };
                    }
                    // The collection went away or stopped being readable: nothing of it
                    // reaches this row any more (the watch is dropped once drained).
                    continue;
                }
                _ => continue,
            };
            let id = match (&document, id) {
                (Some(d), _) => d.id().to_owned(),
                (None, Some(id)) => id,
                (None, None) => continue,
            };
            // Appwrite's action: entering reads as an update (as a permission change that
            // grants access does in Appwrite), leaving as a delete.
            let action = match change {
                "created" => "create",
                "updated" | "entered" => "update",
                _ => "delete",
            };
            let Some(row) = self.rows.get(&w.subscription) else {
                continue;
            };
            let reached = channels::change_channels(&w.database, &w.collection, &id, action);
            if !row.channels.iter().any(|c| reached.contains(c)) {
                continue;
            }
            let key = (
                lsn,
                w.database.clone(),
                w.collection.clone(),
                id.clone(),
                change,
            );
            if let Some(at) = by_change.get(&key) {
                if let Some(subs) = frames
                    .get_mut(*at)
                    .and_then(|f| f.pointer_mut("/data/subscriptions"))
                    .and_then(Value::as_array_mut)
                    && !subs.iter().any(|s| s.as_str() == Some(&w.subscription))
                {
                    subs.push(Value::String(w.subscription.clone()));
                }
                continue;
            }
            let payload = match &document {
                Some(d) => payload_of(d),
                None => {
                    let mut m = Map::new();
                    m.insert("$id".into(), json!(id));
                    m.insert("$collectionId".into(), json!(w.collection));
                    m.insert("$tableId".into(), json!(w.collection));
                    m.insert("$databaseId".into(), json!(w.database));
                    Value::Object(m)
                }
            };
            by_change.insert(key, frames.len());
            frames.push(json!({
                "type": "event",
                "data": {
                    "events": channels::event_names(&w.database, &w.collection, &id, action),
                    "channels": reached,
                    "timestamp": now,
                    "payload": payload,
                    "subscriptions": [w.subscription],
                    // permdb's addition (the SDK passes it over): what happened for this
                    // connection. Not the log sequence number: it counts every write of
                    // the store, those the client may not read too.
                    "permdb": {"change": change},
                }
            }));
        }
        Outcome::Frames(frames)
    }
}

/// The log sequence number of an event; the last events (lagged, ended) sort last.
fn lsn_of(event: &Event) -> u64 {
    match event {
        Event::Created { lsn, .. }
        | Event::Updated { lsn, .. }
        | Event::Deleted { lsn, .. }
        | Event::Entered { lsn, .. }
        | Event::Left { lsn, .. } => *lsn,
        _ => u64::MAX,
    }
}

/// Whether a subscription ended because the connection's credential did, or lost the
/// scope to read documents (rather than because of its collection): then every
/// subscription is over, and so is the connection.
fn ends_credential(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidToken(_)
            | Error::Unauthorized {
                reason: permdb::Denial::CredentialRefused
                    | permdb::Denial::UserBlocked
                    | permdb::Denial::MissingScope,
                ..
            }
    )
}

/// A document as both APIs show it: the Documents model, with the Rows model's `$tableId`.
fn payload_of(document: &permdb::Document) -> Value {
    let mut value = serde_json::to_value(document).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value
        && let Some(coll) = map.get("$collectionId").cloned()
    {
        map.insert("$tableId".to_owned(), coll);
    }
    value
}

/// Appwrite's error message: `{"type":"error","data":{"code","message"}}`.
pub(crate) fn error_frame(code: u16, message: &str) -> Value {
    json!({"type": "error", "data": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_rows_are_checked_as_appwrite_checks_them() {
        let ok = json!([{"subscriptionId": "s1", "channels": ["documents"],
                         "queries": ["{\"method\":\"equal\",\"attribute\":\"a\",\"values\":[1]}",
                                     "{\"method\":\"select\",\"values\":[\"*\"]}"]}]);
        let rows = parse_rows(&ok, 8).expect("valid");
        let (id, row) = rows.first().expect("one row");
        assert_eq!(id, "s1");
        assert_eq!(row.filters.len(), 1);
        assert_eq!(row.queries.len(), 2);
        // A row without an id gets one.
        let minted = parse_rows(&json!([{"channels": ["rows"]}]), 8).expect("valid");
        assert_eq!(minted.first().map(|(id, _)| id.len()), Some(20));
        for (bad, says) in [
            (json!({"channels": []}), "list of subscriptions"),
            (json!([{"queries": []}]), "channels is not present"),
            (json!([{"channels": "documents"}]), "list of strings"),
            (json!([{"channels": []}]), "empty"),
            (json!([{"channels": ["a", "b", "c"]}]), "the most is 2"),
            (json!([{"channels": ["rows"], "extra": 1}]), "unknown key"),
            (
                json!([{"channels": ["rows"], "subscriptionId": "_x"}]),
                "subscriptionId",
            ),
            (
                json!([{"channels": ["rows"], "subscriptionId": 5}]),
                "subscriptionId",
            ),
            (
                json!([{"channels": ["rows"], "queries": ["nope"]}]),
                "is not a query",
            ),
            (
                json!([{"channels": ["rows"], "queries": ["{\"method\":\"limit\",\"values\":[1]}"]}]),
                "Query method 'limit' is not supported",
            ),
            (
                json!([{"channels": ["rows"], "queries": ["{\"method\":\"select\",\"values\":[\"a\"]}"]}]),
                "only select",
            ),
            (
                json!([{"channels": ["rows"], "subscriptionId": "a"}, {"channels": ["rows"], "subscriptionId": "a"}]),
                "given twice",
            ),
        ] {
            let e = parse_rows(&bad, 2).err().unwrap_or_default();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
