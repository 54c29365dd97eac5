//! Live events (`Collection::watch`): what each subscriber is sent, checked against what
//! `find` shows it; refusals; lag; and the fan-out's work counter.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use permdb::{
    Collection, CollectionSpec, Db, Error, Event, Permission, Query, Role, Subscription,
    WATCH_QUEUE,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn setup() -> (Db, Collection) {
    let (options, _clock) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    let spec = CollectionSpec::new("notes", "Notes")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    let notes = common::create_collection(&db, "app", spec);
    for letter in ["a", "b", "c"] {
        db.client()
            .account()
            .create(
                &format!("user-{letter}"),
                &format!("{letter}@example.com"),
                &format!("password-{letter}"),
                None,
            )
            .unwrap();
    }
    (db, notes)
}

fn notes_of(client: &permdb::Client) -> Collection {
    client.schema("app").collection("notes")
}

fn read(user: &str) -> Vec<Permission> {
    vec![Permission::read(Role::user(user))]
}

/// Every event waiting, without blocking.
fn drain(sub: &Subscription) -> Vec<Event> {
    std::iter::from_fn(|| sub.try_recv()).collect()
}

/// A replica: the events applied in order to a map of id to data.
#[derive(Default, Debug)]
struct Replica(BTreeMap<String, Value>);

impl Replica {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Created { document, .. }
            | Event::Updated { document, .. }
            | Event::Entered { document, .. } => {
                self.0.insert(
                    document.id().to_owned(),
                    Value::Object(document.data().clone()),
                );
            }
            Event::Deleted { id, .. } | Event::Left { id, .. } => {
                self.0.remove(&id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn found(c: &Collection, queries: &[Query]) -> BTreeMap<String, Value> {
    let mut q = queries.to_vec();
    q.push(Query::limit(5000));
    c.find(&q)
        .unwrap()
        .documents
        .into_iter()
        .map(|d| (d.id().to_owned(), Value::Object(d.data().clone())))
        .collect()
}

#[test]
fn a_user_is_sent_only_what_it_may_read_with_each_changes_number() {
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let live = notes_of(&a).watch(&[]).unwrap();
    let start = live.last_lsn();
    notes
        .create("n1", json!({"t": 1}), Some(read("user-a")))
        .unwrap();
    notes
        .create("n2", json!({"t": 2}), Some(read("user-b")))
        .unwrap();
    notes.update("n1", json!({"t": 3}), None).unwrap();
    notes.update("n2", json!({"t": 4}), None).unwrap();
    notes.delete("n1").unwrap();
    notes.delete("n2").unwrap();
    let events = drain(&live);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Created { document, lsn } => {
                format!("created {} {}", document.id(), lsn - start)
            }
            Event::Updated { document, lsn } => {
                format!("updated {} {}", document.id(), lsn - start)
            }
            Event::Deleted { id, lsn } => format!("deleted {id} {}", lsn - start),
            other => format!("{other:?}"),
        })
        .collect();
    // Six changes numbered 1 to 6 after the subscription; user-a sees those of n1.
    assert_eq!(kinds, ["created n1 1", "updated n1 3", "deleted n1 5"]);
    assert_eq!(db.stats().unwrap().last_lsn, start + 6);
}

#[test]
fn permission_changes_enter_and_leave() {
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let b = common::sign_in(&db, "b");
    let live_a = notes_of(&a).watch(&[]).unwrap();
    let live_b = notes_of(&b).watch(&[]).unwrap();
    notes
        .create("n1", json!({"t": 1}), Some(read("user-a")))
        .unwrap();
    // The document moves from user-a to user-b: a left for one, an entered for the other.
    notes.update("n1", json!({}), Some(read("user-b"))).unwrap();
    let a_events = drain(&live_a);
    assert!(
        matches!(&a_events[..], [Event::Created { .. }, Event::Left { id, .. }] if id == "n1"),
        "{a_events:?}"
    );
    let b_events = drain(&live_b);
    assert!(
        matches!(&b_events[..], [Event::Entered { document, .. }] if document.id() == "n1" && document.data()["t"] == 1),
        "{b_events:?}"
    );
}

#[test]
fn filters_apply_and_a_document_that_stops_matching_leaves() {
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let live = notes_of(&a).watch(&[Query::greater_than("t", 10)]).unwrap();
    notes
        .create("n1", json!({"t": 5}), Some(read("user-a")))
        .unwrap();
    notes.update("n1", json!({"t": 20}), None).unwrap();
    notes.update("n1", json!({"t": 30}), None).unwrap();
    notes.update("n1", json!({"t": 1}), None).unwrap();
    let events = drain(&live);
    assert!(
        matches!(
            &events[..],
            [
                Event::Entered { .. },
                Event::Updated { .. },
                Event::Left { .. }
            ]
        ),
        "{events:?}"
    );
    // Only filters: an order or a limit is refused.
    for bad in [Query::order_asc("t"), Query::limit(1)] {
        assert!(matches!(
            notes_of(&a).watch(&[bad]),
            Err(Error::InvalidQuery(_))
        ));
    }
}

#[test]
fn role_changes_reach_live_subscriptions_and_an_ended_session_ends_them() {
    let (db, notes) = setup();
    let root = db.root();
    root.teams().create("t1", "Team").unwrap();
    notes
        .create(
            "team-note",
            json!({"t": 1}),
            Some(vec![Permission::read(Role::team("t1"))]),
        )
        .unwrap();
    let a = common::sign_in(&db, "a");
    let live = notes_of(&a).watch(&[]).unwrap();
    assert!(drain(&live).is_empty());
    let m = root.teams().create_membership("t1", "user-a", &[]).unwrap();
    let events = drain(&live);
    assert!(
        matches!(&events[..], [Event::Entered { document, .. }] if document.id() == "team-note"),
        "{events:?}"
    );
    root.teams().delete_membership("t1", &m.id).unwrap();
    let events = drain(&live);
    assert!(
        matches!(&events[..], [Event::Left { id, .. }] if id == "team-note"),
        "{events:?}"
    );

    // Logout: the subscription ends with the error the client's next call gets.
    a.account().delete_sessions().unwrap();
    notes
        .create("later", json!({}), Some(read("user-a")))
        .unwrap();
    let events = drain(&live);
    assert!(
        matches!(
            &events[..],
            [Event::Ended {
                error: Error::Unauthorized { .. }
            }]
        ),
        "{events:?}"
    );
    assert!(live.is_closed());
    assert!(live.recv_timeout(Duration::from_millis(10)).is_none());
}

#[test]
fn a_subscriber_that_falls_behind_is_closed_and_never_blocks_a_writer() {
    let (db, notes) = setup();
    let live = notes_of(&db.root()).watch(&[]).unwrap();
    let docs: Vec<(String, Value, Option<Vec<Permission>>)> = (0..WATCH_QUEUE + 10)
        .map(|i| (format!("d{i}"), json!({"i": i}), None))
        .collect();
    for chunk in docs.chunks(500) {
        notes
            .create_many(chunk.iter().map(|(id, v, p)| (id.as_str(), v, p.clone())))
            .unwrap();
    }
    let mut events: Vec<Event> = live.collect();
    assert_eq!(events.len(), WATCH_QUEUE + 1);
    let Some(Event::Lagged { resume_from }) = events.pop() else {
        panic!("the last event says it lagged");
    };
    // The queue filled in the third batch (documents 1,000 on): every change before that
    // batch was delivered, and the feed gives the rest from there.
    let Event::Created { lsn: first, .. } = &events[0] else {
        panic!("created events first");
    };
    assert_eq!(resume_from, first - 1 + 1000);
    let mut replica = Replica::default();
    for e in events
        .into_iter()
        .filter(|e| matches!(e, Event::Created { lsn, .. } if *lsn <= resume_from))
    {
        replica.apply(e);
    }
    let mut since = resume_from;
    loop {
        let page = notes.changes(since, 500).unwrap();
        for (_, d) in page.documents {
            replica
                .0
                .insert(d.id().to_owned(), Value::Object(d.data().clone()));
        }
        if page.next == since {
            break;
        }
        since = page.next;
    }
    assert_eq!(replica.0, found(&notes, &[]));
}

#[test]
fn a_write_visits_only_the_subscriptions_that_may_see_it() {
    let (db, notes) = setup();
    let key = db
        .root()
        .keys()
        .create(
            "k",
            &[permdb::Scope::UsersRead, permdb::Scope::DocumentsRead],
        )
        .unwrap();
    let by_key = db.client().set_key(&key.secret).unwrap();
    // 200 users, one subscription each, and user-a's.
    let mut subs = Vec::new();
    for i in 0..200 {
        db.client()
            .account()
            .create(
                &format!("u{i}"),
                &format!("u{i}@example.com"),
                "password-u",
                None,
            )
            .unwrap();
        subs.push(
            notes_of(&by_key.impersonate(&format!("u{i}")).unwrap())
                .watch(&[])
                .unwrap(),
        );
    }
    let a = common::sign_in(&db, "a");
    let live_a = notes_of(&a).watch(&[]).unwrap();
    let before = db.stats().unwrap().watch_visits;
    notes.create("n1", json!({}), Some(read("user-a"))).unwrap();
    notes.update("n1", json!({"x": 1}), None).unwrap();
    let visits = db.stats().unwrap().watch_visits - before;
    assert_eq!(
        visits, 2,
        "one visit per change, to user-a's subscription only"
    );
    assert_eq!(drain(&live_a).len(), 2);
    assert!(subs.iter().all(|s| s.try_recv().is_none()));
}

#[derive(Debug, Clone)]
enum Op {
    Create(u8, u8, u8),
    Update(u8, u8, Option<u8>),
    Delete(u8),
    Join(u8),
    Leave(u8),
    Label(u8, bool),
}

/// Who a permission index names: the three users, the team, a label, and any user.
fn role(i: u8) -> Role {
    match i % 6 {
        0 => Role::user("user-a"),
        1 => Role::user("user-b"),
        2 => Role::user("user-c"),
        3 => Role::team("t1"),
        4 => Role::label("vip"),
        _ => Role::users(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 0u8..6, 0u8..20).prop_map(|(d, r, v)| Op::Create(d, r, v)),
        4 => (0u8..8, 0u8..20, proptest::option::of(0u8..6)).prop_map(|(d, v, r)| Op::Update(d, v, r)),
        2 => (0u8..8).prop_map(Op::Delete),
        1 => (0u8..3).prop_map(Op::Join),
        1 => (0u8..3).prop_map(Op::Leave),
        1 => (0u8..3, any::<bool>()).prop_map(|(u, on)| Op::Label(u, on)),
    ]
}

const USERS: [&str; 3] = ["a", "b", "c"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random writes, permission, membership and label changes, with three users watching
    /// everything and one watching a filter: after every change each replica, built only
    /// from its events, equals what `find` returns for that user.
    #[test]
    fn replicas_built_from_events_equal_find(ops in proptest::collection::vec(op(), 1..40)) {
        let (db, notes) = setup();
        let root = db.root();
        root.teams().create("t1", "Team").unwrap();
        let clients: Vec<_> = USERS.iter().map(|u| common::sign_in(&db, u)).collect();
        let filter = [Query::greater_than("v", 9)];
        let mut watchers: Vec<(Subscription, Collection, Vec<Query>, Replica)> = Vec::new();
        for c in &clients {
            watchers.push((notes_of(c).watch(&[]).unwrap(), notes_of(c), Vec::new(), Replica::default()));
        }
        watchers.push((notes_of(&clients[0]).watch(&filter).unwrap(), notes_of(&clients[0]), filter.to_vec(), Replica::default()));
        let mut members: BTreeMap<u8, String> = BTreeMap::new();
        for op in ops {
            let _ = match op {
                Op::Create(d, r, v) => notes.create(&format!("d{d}"), json!({"v": v}), Some(vec![Permission::read(role(r))])).map(|_| ()),
                Op::Update(d, v, r) => notes.update(&format!("d{d}"), json!({"v": v}), r.map(|r| vec![Permission::read(role(r))])).map(|_| ()),
                Op::Delete(d) => notes.delete(&format!("d{d}")),
                Op::Join(u) => root.teams().create_membership("t1", &format!("user-{}", USERS[u as usize]), &[]).map(|m| { members.insert(u, m.id); }),
                Op::Leave(u) => match members.remove(&u) {
                    Some(m) => root.teams().delete_membership("t1", &m),
                    None => Ok(()),
                },
                Op::Label(u, on) => root.users().update_labels(&format!("user-{}", USERS[u as usize]), if on { &["vip"] } else { &[] }).map(|_| ()),
            };
            for (sub, coll, queries, replica) in &mut watchers {
                for event in drain(sub) {
                    replica.apply(event);
                }
                prop_assert_eq!(&replica.0, &found(coll, queries));
            }
        }
    }
}

#[test]
fn log_sequence_numbers_survive_a_reopen_and_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let (options, _clock) = common::test_options();
    let last = {
        let db = Db::open_with(dir.path(), options.clone()).unwrap();
        let notes = common::create_collection(&db, "app", CollectionSpec::new("notes", "Notes"));
        // The schema and the collection each took one (rules changed).
        assert_eq!(db.last_lsn(), 2);
        notes.create("n1", json!({}), None).unwrap();
        notes
            .create_many([("n2", json!({}), None), ("n3", json!({}), None)])
            .unwrap();
        let last = db.stats().unwrap().last_lsn;
        assert_eq!(last, 5, "one number per document change");
        last
    };
    let db = common::when_unlocked(|| Db::open_with(dir.path(), options.clone())).unwrap();
    assert_eq!(db.stats().unwrap().last_lsn, last);
    let live = notes_of(&db.root()).watch(&[]).unwrap();
    assert_eq!(live.last_lsn(), last);
    notes_of(&db.root()).delete("n2").unwrap();
    assert!(matches!(live.try_recv(), Some(Event::Deleted { lsn, .. }) if lsn == last + 1));
}

/// The async stream (feature `stream`): pending while nothing happened, woken by the
/// write that concerns it, then the event.
#[cfg(feature = "stream")]
#[test]
fn the_stream_wakes_its_task_on_an_event() {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use futures_core::Stream;

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let (db, notes) = setup();
    let a = common::sign_in(&db, "a");
    let mut live = notes_of(&a).watch(&[]).unwrap();
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut live).poll_next(&mut cx).is_pending());
    notes
        .create("other", json!({}), Some(read("user-b")))
        .unwrap();
    assert!(
        !flag.0.load(Ordering::SeqCst),
        "a write user-a cannot see wakes nothing"
    );
    notes
        .create("mine", json!({}), Some(read("user-a")))
        .unwrap();
    assert!(flag.0.load(Ordering::SeqCst));
    match Pin::new(&mut live).poll_next(&mut cx) {
        Poll::Ready(Some(Event::Created { document, .. })) => assert_eq!(document.id(), "mine"),
        other => panic!("{other:?}"),
    }
    a.account().delete_sessions().unwrap();
    assert!(matches!(
        Pin::new(&mut live).poll_next(&mut cx),
        Poll::Ready(Some(Event::Ended { .. }))
    ));
    assert!(matches!(
        Pin::new(&mut live).poll_next(&mut cx),
        Poll::Ready(None)
    ));
}

/// Red-team findings: a subscription whose client may no longer read the collection is
/// ended as `find` would refuse it, and what it had not taken is dropped with it.
#[test]
fn losing_the_collection_ends_the_subscription_and_drops_what_it_held() {
    let (db, notes) = setup();
    let root = db.root();
    let open = CollectionSpec::new("notes", "Notes")
        .permissions([
            Permission::create(Role::users()),
            Permission::read(Role::users()),
        ])
        .document_security(false);
    root.schema("app").collections().update(open).unwrap();
    let a = common::sign_in(&db, "a");
    let live = notes_of(&a).watch(&[]).unwrap();
    notes.create("n1", json!({"secret": 1}), None).unwrap();
    // Not taken yet; then read is no longer granted at all.
    let closed = CollectionSpec::new("notes", "Notes")
        .permissions([Permission::create(Role::users())])
        .document_security(false);
    root.schema("app").collections().update(closed).unwrap();
    let events = drain(&live);
    assert!(
        matches!(
            &events[..],
            [Event::Ended {
                error: Error::Unauthorized { .. }
            }]
        ),
        "{events:?}"
    );
    assert!(matches!(
        notes_of(&a).find(&[]),
        Err(Error::Unauthorized { .. })
    ));
}

#[test]
fn subscriptions_are_capped_per_store_and_per_user() {
    let (options, _clock) = common::test_options();
    let db = Db::temporary_with(options.max_subscriptions(3, 2)).unwrap();
    let spec = CollectionSpec::new("notes", "Notes").permissions([Permission::read(Role::any())]);
    common::create_collection(&db, "app", spec);
    db.client()
        .account()
        .create("user-a", "a@example.com", "password-a", None)
        .unwrap();
    let a = notes_of(&common::sign_in(&db, "a"));
    let first = a.watch(&[]).unwrap();
    let _second = a.watch(&[]).unwrap();
    assert!(matches!(a.watch(&[]), Err(Error::LimitExceeded(_))));
    drop(first);
    let _third = a.watch(&[]).unwrap();
    // Guests count against the store's limit only: one more fits, then none.
    let guest = notes_of(&db.client());
    let _g = guest.watch(&[]).unwrap();
    assert!(matches!(guest.watch(&[]), Err(Error::LimitExceeded(_))));
}

/// A token that expires ends a subscription blocked in `recv`, with no write to wake it.
#[test]
fn an_expired_token_ends_a_waiting_subscription() {
    let (options, clock) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    let spec = CollectionSpec::new("notes", "Notes").permissions([Permission::read(Role::users())]);
    common::create_collection(&db, "app", spec);
    db.client()
        .account()
        .create("user-a", "a@example.com", "password-a", None)
        .unwrap();
    let jwt = common::sign_in(&db, "a").account().create_jwt().unwrap();
    let by_token = db.client().set_jwt(&jwt.jwt).unwrap();
    let live = notes_of(&by_token).watch(&[]).unwrap();
    assert!(live.recv_timeout(Duration::from_millis(50)).is_none());
    // Past its 15 minutes and the 60 s leeway.
    clock.advance(time::Duration::minutes(17));
    let event = live.recv_timeout(Duration::from_secs(5));
    assert!(matches!(event, Some(Event::Ended { .. })), "{event:?}");
}
