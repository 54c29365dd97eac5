//! Live events: the subscriptions of `Collection::watch`, fed under the writer lock by
//! every commit (`engine::CommitObserver`), each change checked against each subscriber.
//!
//! INVARIANT (visible-tracked): a subscription holds the set of documents it may see
//! (`Sub::visible`), kept equal to what `find` with its filters would return for its
//! principal after every commit. An event is the difference a commit made to that set, so
//! no event carries a document the subscriber could not read at that change, and applying
//! the events in order to the set at subscription time gives the current set.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;

use crate::auth::{Affected, affected_principals};
use crate::catalog::{CollectionRecord, resolve_collection};
use crate::changes::{OldRecords, doc_changes, to_document, visible_set};
use crate::document::{DocRecord, Document, load_record};
use crate::engine::{Engine, Lsns};
use crate::error::{Error, Result};
use crate::perm::decide::{Access, access, may_read, skips_permissions};
use crate::perm::{Action, Principal};
use crate::query::eval::Filter;
use crate::store::{Tree, WriteBatch, keys};

/// Most events a subscription holds unread before it is closed as lagging.
pub const WATCH_QUEUE: usize = 1024;

/// One change a subscription sees, with the log sequence number of the change (for a
/// change of the subscriber's own roles or of the collection's rules, the last number
/// given out when it was seen).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A new document the subscriber may read and its filters match.
    Created {
        /// The change's log sequence number.
        lsn: u64,
        /// The document as written.
        document: Document,
    },
    /// A document the subscriber could and still can read and match, changed.
    Updated {
        /// The change's log sequence number.
        lsn: u64,
        /// The document as written.
        document: Document,
    },
    /// A document the subscriber could read was deleted.
    Deleted {
        /// The change's log sequence number.
        lsn: u64,
        /// The deleted document's id.
        id: String,
    },
    /// An existing document became readable (a permission, role or collection change)
    /// or started to match the filters.
    Entered {
        /// The change's log sequence number.
        lsn: u64,
        /// The document now.
        document: Document,
    },
    /// A document is no longer readable or no longer matches: only its id.
    Left {
        /// The change's log sequence number.
        lsn: u64,
        /// The document's id.
        id: String,
    },
    /// The last event: the subscriber fell more than [`WATCH_QUEUE`] events behind and
    /// the subscription is closed. Every change up to `resume_from` was delivered.
    Lagged {
        /// The last log sequence number delivered.
        resume_from: u64,
    },
    /// The last event: the subscription ended because its client may no longer read
    /// the collection (a credential ended, the collection was deleted), with the error a
    /// new `find` would return.
    Ended {
        /// Why.
        error: Error,
    },
}

/// Gives a subscription's principal as a call of its client would, derived again after
/// changes to users, memberships, sessions or keys.
pub(crate) type PrincipalSource = Arc<dyn Fn() -> Result<Arc<Principal>> + Send + Sync>;

/// What a new subscription watches.
pub(crate) struct Watch {
    pub(crate) schema_id: String,
    pub(crate) collection_id: String,
    pub(crate) filter: Option<Filter>,
    pub(crate) principal: PrincipalSource,
}

/// Every subscription of a store, found by collection and role.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<State>,
    visits: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    subs: HashMap<u64, Arc<Shared>>,
    /// Open subscriptions per user or API key (`owner_of`).
    per_owner: HashMap<String, usize>,
    /// By collection number: which subscriptions a change may concern.
    fanout: HashMap<u32, Fanout>,
}

/// The subscriptions on one collection, indexed so that a change visits those that may
/// see it (before or after), not the others.
#[derive(Default)]
struct Fanout {
    /// May read every document (root, keys, a collection-level read grant).
    every: BTreeSet<u64>,
    /// The others, under each role they hold.
    by_role: HashMap<String, BTreeSet<u64>>,
}

/// A subscription's state, shared between the hub and its handle.
pub(crate) struct Shared {
    sub: Mutex<Sub>,
    ready: Condvar,
}

struct Sub {
    schema_id: String,
    collection_id: String,
    cid: u32,
    filter: Option<Filter>,
    principal: PrincipalSource,
    /// The principal the indexes and `visible` were computed for.
    current: Arc<Principal>,
    /// Where it is indexed in its collection's `Fanout`.
    indexed: Indexed,
    visible: RoaringBitmap,
    queue: VecDeque<Event>,
    closed: bool,
    last_lsn: u64,
    /// The task polling the subscription as a stream, woken by the next event.
    waker: Option<std::task::Waker>,
}

#[derive(Clone, PartialEq, Eq)]
enum Indexed {
    Every,
    Roles(Vec<String>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// Registers `watch` as `principal`; called under the writer lock so that no commit
    /// falls between the visible set computed here and the first event.
    pub(crate) fn subscribe(
        &self,
        engine: &Engine,
        watch: Watch,
        principal: Arc<Principal>,
        coll: &CollectionRecord,
    ) -> Result<(u64, Arc<Shared>)> {
        let owner = owner_of(&principal);
        {
            let state = lock(&self.state);
            let options = &engine.options;
            if state.subs.len() >= options.max_subscriptions {
                return Err(Error::LimitExceeded(format!(
                    "the store has {} live subscriptions, its most",
                    options.max_subscriptions
                )));
            }
            let mine = owner.as_ref().and_then(|o| state.per_owner.get(o)).copied();
            if mine.unwrap_or(0) >= options.max_subscriptions_per_owner {
                return Err(Error::LimitExceeded(format!(
                    "this client's user or key has {} live subscriptions, its most",
                    options.max_subscriptions_per_owner
                )));
            }
        }
        let visible = visible_set(engine, &principal, coll, watch.filter.as_ref())?;
        let indexed = index_of(&principal, coll);
        let shared = Arc::new(Shared {
            sub: Mutex::new(Sub {
                schema_id: watch.schema_id,
                collection_id: watch.collection_id,
                cid: coll.cid,
                filter: watch.filter,
                principal: watch.principal,
                current: principal,
                indexed: indexed.clone(),
                visible,
                queue: VecDeque::new(),
                closed: false,
                last_lsn: engine.last_lsn(),
                waker: None,
            }),
            ready: Condvar::new(),
        });
        let mut state = lock(&self.state);
        let id = state.next_id;
        state.next_id += 1;
        state.subs.insert(id, Arc::clone(&shared));
        if let Some(owner) = owner {
            *state.per_owner.entry(owner).or_default() += 1;
        }
        state.fanout.entry(coll.cid).or_default().add(id, &indexed);
        Ok((id, shared))
    }

    /// Forgets subscription `id` (its handle was dropped).
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut state = lock(&self.state);
        let Some(shared) = state.subs.remove(&id) else {
            return;
        };
        let (cid, indexed, owner) = {
            let sub = lock(&shared.sub);
            (sub.cid, sub.indexed.clone(), owner_of(&sub.current))
        };
        if let Some(owner) = owner
            && let Some(n) = state.per_owner.get_mut(&owner)
        {
            *n -= 1;
            if *n == 0 {
                state.per_owner.remove(&owner);
            }
        }
        if let Some(f) = state.fanout.get_mut(&cid) {
            f.remove(id, &indexed);
            if f.every.is_empty() && f.by_role.is_empty() {
                state.fanout.remove(&cid);
            }
        }
    }

    /// How many subscription visits the commits so far made (a work counter: a change
    /// visits the subscriptions that may see it, before or after, not the others).
    pub(crate) fn visits(&self) -> u64 {
        self.visits.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Fanout {
    fn add(&mut self, id: u64, indexed: &Indexed) {
        match indexed {
            Indexed::Every => {
                self.every.insert(id);
            }
            Indexed::Roles(roles) => {
                for role in roles {
                    self.by_role.entry(role.clone()).or_default().insert(id);
                }
            }
        }
    }

    fn remove(&mut self, id: u64, indexed: &Indexed) {
        match indexed {
            Indexed::Every => {
                self.every.remove(&id);
            }
            Indexed::Roles(roles) => {
                for role in roles {
                    if let Some(set) = self.by_role.get_mut(role) {
                        set.remove(&id);
                        if set.is_empty() {
                            self.by_role.remove(role);
                        }
                    }
                }
            }
        }
    }
}

/// Whose subscriptions count together against the per-owner limit: a user's (signed in
/// or impersonated) or an API key's; root and guests count against the store's only.
fn owner_of(principal: &Principal) -> Option<String> {
    match principal {
        Principal::User { id, .. } => Some(format!("user:{id}")),
        Principal::Key { id, .. } => Some(format!("key:{id}")),
        Principal::Root | Principal::Guest(_) => None,
    }
}

/// Where a subscription of `principal` on `coll` is indexed: under "every" when it may
/// read every document, else under each of its roles (a document it may read grants
/// read to one of them). One that may read nothing is indexed nowhere.
fn index_of(principal: &Principal, coll: &CollectionRecord) -> Indexed {
    let Ok(rules) = coll.rules() else {
        return Indexed::Roles(Vec::new());
    };
    match (access(principal, rules, Action::Read), principal.roles()) {
        (Access::All, _) | (Access::ByDocument, None) => Indexed::Every,
        (Access::ByDocument, Some(roles)) => {
            Indexed::Roles(roles.keys().map(str::to_owned).collect())
        }
        (Access::Denied, _) => Indexed::Roles(Vec::new()),
    }
}

/// The collection as `principal` may reach it: `NotFound` when it or its schema is
/// missing, or disabled for one who does not skip permissions (as `Collection` resolves).
fn reachable(
    engine: &Engine,
    principal: &Principal,
    schema_id: &str,
    collection_id: &str,
) -> Result<CollectionRecord> {
    resolve_collection(
        &engine.store,
        schema_id,
        collection_id,
        skips_permissions(principal),
    )
}

impl Hub {
    /// Whether any subscription is open (else commits skip the hub).
    pub(crate) fn watching(&self) -> bool {
        !lock(&self.state).subs.is_empty()
    }

    /// Sends every subscription what the applied `batch` means to it; `old` holds the
    /// records its document changes replaced.
    pub(crate) fn committed(
        &self,
        engine: &Engine,
        batch: &WriteBatch,
        old: &OldRecords,
        lsns: Lsns,
    ) {
        let mut state = lock(&self.state);
        if state.subs.is_empty() {
            return;
        }
        // Rules first: the roles of subscribers and the collections' rules, as this
        // batch left them; then each document change against the subscriptions it may
        // concern.
        // The collections' rules changed: their subscriptions' sets are computed again.
        // A principal changed: its subscriptions are derived again, and their sets
        // computed again only when the roles or the access changed.
        let lsn_now = lsns.rules.unwrap_or_else(|| engine.last_lsn());
        // Every change before this batch was delivered: where a subscription that lags
        // in it resumes.
        let at = At {
            lsn: lsn_now,
            resume: lsns.first - 1,
        };
        let touched = catalog_touched(&state, batch);
        for id in &touched {
            recheck(&mut state, engine, *id, at, old, true);
        }
        let affected: Vec<u64> = match affected_principals(batch) {
            Affected::Nobody => Vec::new(),
            Affected::Everyone => state.subs.keys().copied().collect(),
            Affected::Users(users) => state
                .subs
                .iter()
                .filter(|(_, shared)| {
                    lock(&shared.sub)
                        .current
                        .user_id()
                        .is_some_and(|u| users.contains(u))
                })
                .map(|(id, _)| *id)
                .collect(),
        };
        for id in affected {
            if !touched.contains(&id) {
                recheck(&mut state, engine, id, at, old, false);
            }
        }
        let mut reached = Reached::new();
        for (i, (cid, seq)) in doc_changes(batch).enumerate() {
            let lsn = lsns.first + i as u64;
            let Some(fanout) = state.fanout.get(&cid) else {
                continue;
            };
            let before = old.get(&(cid, seq)).and_then(Option::as_ref);
            let new = load_record(&engine.store, cid, seq);
            let mut candidates: BTreeSet<u64> = fanout.every.clone();
            let after = new.as_ref().ok().and_then(Option::as_ref);
            for record in [before, after].into_iter().flatten() {
                for grant in record.grants() {
                    if grant.action() == Action::Read
                        && let Some(ids) = fanout.by_role.get(grant.role())
                    {
                        candidates.extend(ids);
                    }
                }
            }
            for id in candidates {
                let Some(shared) = state.subs.get(&id).cloned() else {
                    continue;
                };
                self.visits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let new = match &new {
                    Ok(new) => new.as_ref(),
                    Err(e) => {
                        // Its new state cannot be read: what the subscription may see is
                        // unknown, so it ends (fail closed).
                        let error = Error::corrupt(format!("document {seq} as written"), e);
                        end(&shared, &mut lock(&shared.sub), Event::Ended { error });
                        continue;
                    }
                };
                // A principal that changed without naming itself in this batch (or whose
                // recheck was missed) is rechecked before the change is judged for it.
                if is_stale(&shared) {
                    recheck(&mut state, engine, id, at, old, false);
                }
                let at = At {
                    lsn,
                    resume: at.resume,
                };
                deliver(engine, &shared, seq, before, new, at, &mut reached);
            }
        }
    }
}

/// The subscriptions on collections whose (or whose schema's) record `batch` writes.
fn catalog_touched(state: &State, batch: &WriteBatch) -> Vec<u64> {
    let touched: Vec<&[u8]> = batch
        .ops()
        .filter(|(tree, ..)| *tree == Tree::Meta)
        .map(|(_, key, _)| key)
        .filter(|key| {
            key.starts_with(keys::COLLECTIONS_PREFIX) || key.starts_with(keys::SCHEMA_PREFIX)
        })
        .collect();
    if touched.is_empty() {
        return Vec::new();
    }
    state
        .subs
        .iter()
        .filter(|(_, shared)| {
            let sub = lock(&shared.sub);
            let coll = keys::collection(&sub.schema_id, &sub.collection_id);
            let schema = keys::schema(&sub.schema_id);
            touched
                .iter()
                .any(|k| *k == coll.as_slice() || *k == schema.as_slice())
        })
        .map(|(id, _)| *id)
        .collect()
}

/// Derives subscription `id`'s principal and collection again; when what it may see
/// changed, sends the difference (entered, left) and moves it in the fan-out index; when
/// it may no longer read the collection, ends it with the error a `find` would give.
fn recheck(
    state: &mut State,
    engine: &Engine,
    id: u64,
    at: At,
    old: &OldRecords,
    rules_changed: bool,
) {
    let Some(shared) = state.subs.get(&id).cloned() else {
        return;
    };
    let mut sub = lock(&shared.sub);
    if sub.closed {
        return;
    }
    let derived = (sub.principal)().and_then(|principal| {
        let coll = reachable(engine, &principal, &sub.schema_id, &sub.collection_id)?;
        // Who may no longer read the collection at all is ended, as `find` refuses it.
        if access(&principal, coll.rules()?, Action::Read) == Access::Denied {
            return Err(crate::query::exec::no_read(&coll));
        }
        Ok((principal, coll))
    });
    let (principal, coll) = match derived {
        Ok(found) => found,
        Err(error) => {
            end(&shared, &mut sub, Event::Ended { error });
            return;
        }
    };
    let indexed = index_of(&principal, &coll);
    let same_roles =
        principal.roles().map(|r| r.shared_keys()) == sub.current.roles().map(|r| r.shared_keys());
    if !rules_changed && same_roles && indexed == sub.indexed {
        sub.current = principal;
        return;
    }
    let visible = match visible_set(engine, &principal, &coll, sub.filter.as_ref()) {
        Ok(v) => v,
        Err(error) => {
            end(&shared, &mut sub, Event::Ended { error });
            return;
        }
    };
    if indexed != sub.indexed {
        if let Some(f) = state.fanout.get_mut(&sub.cid) {
            f.remove(id, &sub.indexed);
            f.add(id, &indexed);
        }
        sub.indexed = indexed;
    }
    sub.current = principal;
    let left = &sub.visible - &visible;
    let entered = &visible - &sub.visible;
    let lsn = at.lsn;
    for seq in &left {
        // Its id from the store, or from the record this batch deleted.
        let id = match load_record(&engine.store, coll.cid, seq) {
            Ok(Some(r)) => r.id,
            Ok(None) => match old.get(&(coll.cid, seq)) {
                Some(Some(r)) => r.id.clone(),
                _ => continue,
            },
            Err(error) => {
                end(&shared, &mut sub, Event::Ended { error });
                return;
            }
        };
        push(&shared, &mut sub, Event::Left { lsn, id }, at.resume);
    }
    for seq in &entered {
        let document = load_record(&engine.store, coll.cid, seq)
            .and_then(|r| r.map(|r| to_document(engine, &coll, r, seq)).transpose());
        match document {
            Ok(Some(document)) => push(
                &shared,
                &mut sub,
                Event::Entered { lsn, document },
                at.resume,
            ),
            Ok(None) => {}
            Err(error) => {
                end(&shared, &mut sub, Event::Ended { error });
                return;
            }
        }
    }
    sub.visible = visible;
}

/// Sends subscription `shared` what the change of document `seq` from `old` to `new`
/// means to it, and records it in the subscription's visible set.
fn deliver(
    engine: &Engine,
    shared: &Shared,
    seq: u32,
    old: Option<&DocRecord>,
    new: Option<&DocRecord>,
    at: At,
    reached: &mut Reached,
) {
    let lsn = at.lsn;
    let mut sub = lock(&shared.sub);
    if sub.closed {
        return;
    }
    // A credential that ended without a write to the auth tree (a token that expired)
    // ends the subscription: its client's next call would be refused.
    if let Err(error) = (sub.principal)() {
        end(shared, &mut sub, Event::Ended { error });
        return;
    }
    let was = sub.visible.contains(seq);
    let principal = Arc::clone(&sub.current);
    let after = match new {
        None => None,
        Some(record) => {
            // The collection as this batch left it, read once per batch and privilege.
            let key = (sub.cid, skips_permissions(&principal));
            let coll = match reached.get(&key) {
                Some(coll) => Arc::clone(coll),
                None => match reachable(engine, &principal, &sub.schema_id, &sub.collection_id) {
                    Ok(coll) => {
                        let coll = Arc::new(coll);
                        reached.insert(key, Arc::clone(&coll));
                        coll
                    }
                    Err(error) => {
                        end(shared, &mut sub, Event::Ended { error });
                        return;
                    }
                },
            };
            let readable = coll
                .rules()
                .is_ok_and(|rules| may_read(&principal, rules, record.grants()));
            if readable {
                match to_document(engine, &coll, record.clone(), seq) {
                    Ok(doc) => sub
                        .filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&doc))
                        .then_some(doc),
                    Err(error) => {
                        end(shared, &mut sub, Event::Ended { error });
                        return;
                    }
                }
            } else {
                None
            }
        }
    };
    let id = || old.or(new).map(|r| r.id.clone()).unwrap_or_default();
    let event = match (was, after) {
        (false, None) => return,
        (false, Some(document)) if old.is_none() => Event::Created { lsn, document },
        (false, Some(document)) => Event::Entered { lsn, document },
        (true, Some(document)) => Event::Updated { lsn, document },
        (true, None) if new.is_none() => Event::Deleted { lsn, id: id() },
        (true, None) => Event::Left { lsn, id: id() },
    };
    if new.is_some()
        && matches!(
            event,
            Event::Created { .. } | Event::Entered { .. } | Event::Updated { .. }
        )
    {
        sub.visible.insert(seq);
    } else {
        sub.visible.remove(seq);
    }
    push(shared, &mut sub, event, at.resume);
}

/// The collections reached in one batch, by (collection number, privileged): a
/// disabled one only by root and keys.
type Reached = HashMap<(u32, bool), Arc<CollectionRecord>>;

/// The number an event carries, and the number before its batch (every change up to it
/// was delivered): where a subscription that lags in the batch resumes.
#[derive(Debug, Clone, Copy)]
struct At {
    lsn: u64,
    resume: u64,
}

/// Whether the subscription's principal is no longer the one it was computed for: its
/// credential ended, or its roles changed.
fn is_stale(shared: &Shared) -> bool {
    let sub = lock(&shared.sub);
    if sub.closed {
        return false;
    }
    match (sub.principal)() {
        Err(_) => true,
        Ok(p) => p.roles().map(|r| r.shared_keys()) != sub.current.roles().map(|r| r.shared_keys()),
    }
}

/// Queues `event`, or, when the queue is full, closes the subscription with
/// `Lagged { resume_from: resume }`. Never waits: writers call it.
fn push(shared: &Shared, sub: &mut Sub, event: Event, resume: u64) {
    if sub.closed {
        return;
    }
    if sub.queue.len() >= WATCH_QUEUE {
        end(
            shared,
            sub,
            Event::Lagged {
                resume_from: resume,
            },
        );
        return;
    }
    if let Some(lsn) = event_lsn(&event) {
        sub.last_lsn = sub.last_lsn.max(lsn);
    }
    sub.queue.push_back(event);
    wake(shared, sub);
}

/// Queues the final `event` and closes the subscription. An `Ended` subscription drops
/// what it had not delivered: its credential no longer reads it.
fn end(shared: &Shared, sub: &mut Sub, event: Event) {
    if matches!(event, Event::Ended { .. }) {
        sub.queue.clear();
    }
    sub.queue.push_back(event);
    sub.closed = true;
    wake(shared, sub);
}

/// Wakes the threads blocked in `recv` and the task polling the stream.
fn wake(shared: &Shared, sub: &mut Sub) {
    shared.ready.notify_all();
    if let Some(waker) = sub.waker.take() {
        waker.wake();
    }
}

fn event_lsn(event: &Event) -> Option<u64> {
    match event {
        Event::Created { lsn, .. }
        | Event::Updated { lsn, .. }
        | Event::Deleted { lsn, .. }
        | Event::Entered { lsn, .. }
        | Event::Left { lsn, .. } => Some(*lsn),
        Event::Lagged { .. } | Event::Ended { .. } => None,
    }
}

impl Shared {
    /// The next event, waiting until `deadline` (forever without one); `None` at the
    /// deadline, and once the subscription is closed and every event was taken.
    pub(crate) fn next(&self, deadline: Option<Instant>) -> Option<Event> {
        loop {
            let source = {
                let mut sub = lock(&self.sub);
                if let Some(event) = sub.queue.pop_front() {
                    return Some(event);
                }
                if sub.closed {
                    return None;
                }
                Arc::clone(&sub.principal)
            };
            // A credential that ended without a write (a token that expired) ends the
            // subscription here, as the next call of its client would be refused. It is
            // derived without the subscription's lock, which writers take.
            let checked = source();
            let mut sub = lock(&self.sub);
            if let Err(error) = checked {
                if !sub.closed {
                    end(self, &mut sub, Event::Ended { error });
                }
                continue;
            }
            if !sub.queue.is_empty() || sub.closed {
                continue;
            }
            // Wake at least every second to see a credential that expired.
            let mut wait = Duration::from_secs(1);
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                wait = wait.min(left);
            }
            drop(
                self.ready
                    .wait_timeout(sub, wait)
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }

    /// The next event for a task: `Ready(None)` once closed and drained; else `Pending`,
    /// with the task woken by the next event.
    #[cfg(feature = "stream")]
    fn poll_next(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Event>> {
        use std::task::Poll;
        let mut sub = lock(&self.sub);
        if let Some(event) = sub.queue.pop_front() {
            return Poll::Ready(Some(event));
        }
        if sub.closed {
            return Poll::Ready(None);
        }
        if let Err(error) = (sub.principal)() {
            sub.closed = true;
            return Poll::Ready(Some(Event::Ended { error }));
        }
        sub.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next event if one is queued.
    pub(crate) fn try_next(&self) -> Option<Event> {
        lock(&self.sub).queue.pop_front()
    }

    /// Whether the subscription is closed (its queue may still hold events).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.sub).closed
    }

    /// The last log sequence number queued (at subscription: the last given out).
    pub(crate) fn last_lsn(&self) -> u64 {
        lock(&self.sub).last_lsn
    }
}

/// A live subscription made by [`crate::Collection::watch`]: the changes its client may
/// see, in commit order, from the moment it was made. Dropping it ends it.
///
/// Events queue in memory up to [`WATCH_QUEUE`]; a subscriber that falls further behind
/// gets [`Event::Lagged`] and the subscription closes (writers never wait for it).
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(hub: Arc<Hub>, id: u64, shared: Arc<Shared>) -> Subscription {
        Subscription { hub, id, shared }
    }

    /// The next event, waiting for it; `None` once the subscription is closed and every
    /// event was taken (its last event says why it closed).
    pub fn recv(&self) -> Option<Event> {
        self.shared.next(None)
    }

    /// The next event, waiting at most `timeout`; `None` at the timeout, or once the
    /// subscription is closed and drained ([`Subscription::is_closed`] tells which).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.shared.next(Some(Instant::now() + timeout))
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.shared.try_next()
    }

    /// Whether the subscription is closed (events may still wait to be taken).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// The log sequence number of the last event queued; at subscription, the last number
    /// the store had given out, so that a `find` made before `watch` and these events
    /// together cover every change.
    #[must_use]
    pub fn last_lsn(&self) -> u64 {
        self.shared.last_lsn()
    }
}

/// An async stream of the events (feature `stream`): the same events as
/// [`Subscription::recv`], for a task. A credential that ends without a write (a token
/// that expires) is seen at the next poll.
#[cfg(feature = "stream")]
impl futures_core::Stream for Subscription {
    type Item = Event;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Event>> {
        self.shared.poll_next(cx)
    }
}

impl Iterator for Subscription {
    type Item = Event;

    /// Blocks for the next event; ends when the subscription is closed and drained.
    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}
