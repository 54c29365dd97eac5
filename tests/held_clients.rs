//! A held `Client` must be exactly as safe as one built per request: revocations that
//! commit while a client is being built, session expiry, retired signing keys, and the
//! key behind an impersonated client all reach it on its next call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use permdb::{
    Client, Clock, Collection, CollectionSpec, Db, Error, ManualClock, Permission, Role, Scope,
    TokenError,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// An action to run inside a clock reading.
type Action = Box<dyn FnOnce() + Send>;

/// A clock that runs a planted action on its n-th reading after being armed: a way to
/// commit a revocation at each point where building a client looks at the time.
#[derive(Clone)]
struct TripClock {
    time: ManualClock,
    trip: Arc<Mutex<Trip>>,
}

#[derive(Default)]
struct Trip {
    /// Readings still to pass before the action runs.
    wait: usize,
    action: Option<Action>,
    fired: bool,
}

impl fmt::Debug for TripClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TripClock")
    }
}

impl Clock for TripClock {
    fn now(&self) -> OffsetDateTime {
        let action = {
            let mut trip = self.trip.lock().unwrap();
            match trip.action.take() {
                Some(a) if trip.wait == 0 => {
                    trip.fired = true;
                    Some(a)
                }
                Some(a) => {
                    trip.wait -= 1;
                    trip.action = Some(a);
                    None
                }
                None => None,
            }
        };
        if let Some(action) = action {
            action();
        }
        self.time.now()
    }
}

impl TripClock {
    fn arm(&self, wait: usize, action: Action) {
        *self.trip.lock().unwrap() = Trip {
            wait,
            action: Some(action),
            fired: false,
        };
    }

    /// Drops an action that did not run; whether it ran.
    fn disarm(&self) -> bool {
        let mut trip = self.trip.lock().unwrap();
        trip.action = None;
        trip.fired
    }
}

struct World {
    db: Db,
    clock: TripClock,
    /// att's session secret, and a client made from it before anything else.
    session: String,
    session_client: Client,
    jwt: String,
    /// A key with every scope, expiring in a year.
    key: String,
    key_id: String,
}

fn world() -> World {
    let (options, time) = common::test_options();
    let clock = TripClock {
        time,
        trip: Arc::default(),
    };
    let db = Db::temporary_with(options.clock(Arc::new(clock.clone()))).unwrap();
    let root = db.root();
    let spec = CollectionSpec::new("c", "C")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    common::create_collection(&db, "s", spec);
    let account = db.client().account();
    account
        .create("att", "a@example.com", "password-a", None)
        .unwrap();
    account
        .create("vic", "v@example.com", "password-v", None)
        .unwrap();
    root.teams().create("t1", "T1").unwrap();
    root.teams().create_membership("t1", "att", &[]).unwrap();
    let docs = root.schema("s").collection("c");
    docs.create(
        "mine",
        json!({}),
        Some(vec![Permission::read(Role::user("att"))]),
    )
    .unwrap();
    docs.create(
        "team",
        json!({}),
        Some(vec![Permission::read(Role::team("t1"))]),
    )
    .unwrap();
    docs.create(
        "vics",
        json!({}),
        Some(vec![
            Permission::read(Role::user("vic")),
            Permission::update(Role::user("vic")),
        ]),
    )
    .unwrap();
    let session = account
        .create_email_password_session("a@example.com", "password-a")
        .unwrap()
        .secret;
    let session_client = db.client().set_session(&session).unwrap();
    let jwt = session_client.account().create_jwt().unwrap().jwt;
    // It expires, so that checking it reads the clock (where the trip clock can act).
    let year = clock.now() + Duration::days(365);
    let key = root
        .keys()
        .create_expiring("all", &Scope::ALL, Some(year))
        .unwrap();
    World {
        db,
        clock,
        session,
        session_client,
        jwt,
        key: key.secret,
        key_id: key.id,
    }
}

fn docs(client: &Client) -> Collection {
    client.schema("s").collection("c")
}

/// Where `on_own_thread` leaves its thread, and whether the revocation had committed
/// when the call went on.
type Slot = Arc<Mutex<Option<(std::thread::JoinHandle<()>, bool)>>>;

/// `revoke` run on a thread of its own and waited for up to 200 ms: at a clock reading
/// outside the writer lock it commits right there; at one taken under the lock (a write
/// checking its client again) it commits after that write, a legitimate order too.
fn on_own_thread(revoke: Action, slot: Slot) -> Action {
    Box::new(move || {
        let (done, finished) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            revoke();
            let _ = done.send(());
        });
        let first = finished
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_ok();
        *slot.lock().unwrap() = Some((t, first));
    })
}

/// Waits for the revocation; whether it committed before the call went on.
fn join(slot: &Slot) -> bool {
    match slot.lock().unwrap().take() {
        Some((t, first)) => {
            t.join().unwrap();
            first
        }
        None => false,
    }
}

/// A way to build a client, a revocation, and what the revocation takes away.
struct Case {
    name: &'static str,
    build: fn(&World) -> permdb::Result<Client>,
    revoke: fn(&Db, &World) -> Action,
    /// Whether the client still has what the revocation took away.
    kept: fn(&Client) -> bool,
}

fn logout(_: &Db, w: &World) -> Action {
    let c = w.session_client.clone();
    Box::new(move || c.account().delete_sessions().unwrap())
}

fn block(db: &Db, _: &World) -> Action {
    let db = db.clone();
    Box::new(move || {
        db.root().users().update_status("att", false).unwrap();
    })
}

fn remove_membership(db: &Db, _: &World) -> Action {
    let db = db.clone();
    Box::new(move || {
        let teams = db.root().teams();
        let m = teams.list_memberships("t1").unwrap().remove(0);
        teams.delete_membership("t1", m.id()).unwrap();
    })
}

fn delete_key(db: &Db, w: &World) -> Action {
    let db = db.clone();
    let id = w.key_id.clone();
    Box::new(move || db.root().keys().delete(&id).unwrap())
}

/// Rotates the token keys and retires the one that signed `w.jwt`.
fn retire_signing_key(db: &Db, _: &World) -> Action {
    let db = db.clone();
    Box::new(move || {
        let keys = db.root().token_keys();
        let old = keys.public().unwrap().keys[0].key_id;
        keys.rotate().unwrap();
        keys.retire(old).unwrap();
    })
}

fn can_read_any(client: &Client) -> bool {
    docs(client).count(&[]).is_ok()
}

fn sees_team_doc(client: &Client) -> bool {
    docs(client).get("team").is_ok()
}

const CASES: [Case; 9] = [
    Case {
        name: "set_session, logout",
        build: |w| w.db.client().set_session(&w.session),
        revoke: logout,
        kept: can_read_any,
    },
    Case {
        name: "set_jwt, logout",
        build: |w| w.db.client().set_jwt(&w.jwt),
        revoke: logout,
        kept: can_read_any,
    },
    Case {
        name: "set_jwt, signing key retired",
        build: |w| w.db.client().set_jwt(&w.jwt),
        revoke: retire_signing_key,
        kept: can_read_any,
    },
    Case {
        name: "set_jwt, user blocked",
        build: |w| w.db.client().set_jwt(&w.jwt),
        revoke: block,
        kept: can_read_any,
    },
    Case {
        name: "set_session, membership removed",
        build: |w| w.db.client().set_session(&w.session),
        revoke: remove_membership,
        kept: sees_team_doc,
    },
    Case {
        name: "set_jwt, membership removed",
        build: |w| w.db.client().set_jwt(&w.jwt),
        revoke: remove_membership,
        kept: sees_team_doc,
    },
    Case {
        name: "set_key, key deleted",
        build: |w| w.db.client().set_key(&w.key),
        revoke: delete_key,
        kept: can_read_any,
    },
    Case {
        name: "impersonate by key, key deleted",
        build: |w| w.db.client().set_key(&w.key)?.impersonate("att"),
        revoke: delete_key,
        kept: can_read_any,
    },
    Case {
        name: "impersonate by key, user blocked",
        build: |w| w.db.client().set_key(&w.key)?.impersonate("att"),
        revoke: block,
        kept: can_read_any,
    },
];

/// Commits each revocation at every clock reading a client's construction makes; a
/// client whose construction returned after the revocation committed must not keep
/// what it took away.
#[test]
fn a_revocation_committed_while_a_client_is_built_reaches_it() {
    let mut failures = Vec::new();
    for case in &CASES {
        for wait in 0.. {
            let w = world();
            w.clock.arm(wait, (case.revoke)(&w.db, &w));
            let built = (case.build)(&w);
            if !w.clock.disarm() {
                // The construction made fewer readings than `wait`: every point was tried.
                assert!(
                    wait > 0,
                    "{}: the construction never read the clock",
                    case.name
                );
                break;
            }
            if let Ok(client) = built
                && (case.kept)(&client)
            {
                failures.push(format!(
                    "{} (revoked at clock reading {})",
                    case.name,
                    wait + 1
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "clients kept revoked access:\n{}",
        failures.join("\n")
    );
}

/// The reproduction, with real threads: clients built in a loop while a
/// membership is removed. Every client held after the removal must have lost the team.
#[test]
fn clients_built_during_a_membership_removal_lose_the_team() {
    let w = world();
    let root = w.db.root();
    for t in 0..100 {
        let team = format!("x{t}");
        root.teams().create(&team, "X").unwrap();
        root.teams().create_membership(&team, "att", &[]).unwrap();
    }
    let mut kept = 0;
    let mut built = 0;
    for _ in 0..30 {
        if root
            .teams()
            .list_memberships("t1")
            .unwrap()
            .iter()
            .all(|m| m.user_id != "att")
        {
            root.teams().create_membership("t1", "att", &[]).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(Mutex::new(Vec::new()));
        let builders: Vec<_> = (0..2)
            .map(|_| {
                let (db, jwt) = (w.db.clone(), w.jwt.clone());
                let (stop, clients) = (Arc::clone(&stop), Arc::clone(&clients));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let c = db.client().set_jwt(&jwt).unwrap();
                        clients.lock().unwrap().push(c);
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(2));
        remove_membership(&w.db, &w)();
        std::thread::sleep(std::time::Duration::from_millis(2));
        stop.store(true, Ordering::Relaxed);
        for b in builders {
            b.join().unwrap();
        }
        let clients = clients.lock().unwrap();
        built += clients.len();
        kept += clients.iter().filter(|c| sees_team_doc(c)).count();
    }
    assert_eq!(kept, 0, "{kept} of {built} clients kept the removed team");
}

/// The same with a logout: clients built while the session is deleted.
#[test]
fn clients_built_during_a_logout_are_refused_after_it() {
    let mut kept = 0;
    let mut built = 0;
    for _ in 0..30 {
        let w = world();
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(Mutex::new(Vec::new()));
        let builders: Vec<_> = (0..2)
            .map(|_| {
                let (db, secret) = (w.db.clone(), w.session.clone());
                let (stop, clients) = (Arc::clone(&stop), Arc::clone(&clients));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(c) = db.client().set_session(&secret) {
                            clients.lock().unwrap().push(c);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(2));
        logout(&w.db, &w)();
        stop.store(true, Ordering::Relaxed);
        for b in builders {
            b.join().unwrap();
        }
        let clients = clients.lock().unwrap();
        built += clients.len();
        kept += clients.iter().filter(|c| can_read_any(c)).count();
    }
    assert_eq!(
        kept, 0,
        "{kept} of {built} clients kept working after logout"
    );
}

/// A held session or token client is refused once its session expires, as a new one is.
#[test]
fn held_clients_end_with_their_session() {
    let (options, clock) = common::test_options();
    let db = Db::temporary_with(options.session_ttl(Duration::minutes(10))).unwrap();
    common::seed(&db);
    let session = common::sign_in(&db, "a");
    let jwt = session.account().create_jwt().unwrap().jwt;
    let held = db.client().set_jwt(&jwt).unwrap();
    let birthdays = |c: &Client| c.schema("db").collection("birthdays");
    assert_eq!(birthdays(&held).count(&[]).unwrap(), 1);
    // Up to and including the session's expiry, the token and the held client work.
    clock.advance(Duration::minutes(10));
    assert_eq!(birthdays(&held).count(&[]).unwrap(), 1);
    assert!(db.client().set_jwt(&jwt).is_ok());
    clock.advance(Duration::seconds(1));
    // The token itself has minutes left; its session has none.
    assert!(matches!(
        db.client().set_jwt(&jwt),
        Err(Error::InvalidToken(TokenError::SessionExpired))
    ));
    let r = birthdays(&held).find(&[]);
    assert!(
        matches!(r, Err(Error::InvalidToken(TokenError::SessionExpired))),
        "{r:?}"
    );
    let r = birthdays(&session).find(&[]);
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
}

/// A held token client is refused once the key that signed its token is retired.
#[test]
fn held_token_clients_end_with_their_signing_key() {
    let (options, _) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    let old_key = db.root().token_keys().public().unwrap().keys[0].key_id;
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let held = db.client().set_jwt(&jwt).unwrap();
    db.root().token_keys().rotate().unwrap();
    let birthdays = held.schema("db").collection("birthdays");
    assert_eq!(
        birthdays.count(&[]).unwrap(),
        1,
        "rotation alone retires nothing"
    );
    db.root().token_keys().retire(old_key).unwrap();
    assert!(matches!(
        db.client().set_jwt(&jwt),
        Err(Error::InvalidToken(TokenError::UnknownKey(_)))
    ));
    let r = birthdays.count(&[]);
    assert!(
        matches!(r, Err(Error::InvalidToken(TokenError::UnknownKey(k))) if k == old_key),
        "{r:?}"
    );
}

/// An impersonated client is bound to the key that made it: deleted or expired, the key
/// takes the client with it.
#[test]
fn impersonated_clients_end_with_their_key() {
    let w = world();
    let root = w.db.root();
    let as_vic =
        w.db.client()
            .set_key(&w.key)
            .unwrap()
            .impersonate("vic")
            .unwrap();
    docs(&as_vic).update("vics", json!({"n": 1}), None).unwrap();
    root.keys().delete(&w.key_id).unwrap();
    let r = docs(&as_vic).update("vics", json!({"n": 2}), None);
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    assert!(matches!(
        docs(&as_vic).get("vics"),
        Err(Error::Unauthorized { .. })
    ));

    let expiring = root
        .keys()
        .create_expiring(
            "short",
            &Scope::ALL,
            Some(w.clock.now() + Duration::hours(1)),
        )
        .unwrap();
    let as_vic =
        w.db.client()
            .set_key(&expiring.secret)
            .unwrap()
            .impersonate("vic")
            .unwrap();
    assert!(docs(&as_vic).get("vics").is_ok());
    w.clock
        .time
        .advance(Duration::hours(1) + Duration::seconds(1));
    let r = docs(&as_vic).get("vics");
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    assert!(matches!(
        as_vic.account().get(),
        Err(Error::Unauthorized { .. })
    ));
    // A client impersonated by root has no key to lose.
    let by_root = root.impersonate("vic").unwrap();
    assert!(docs(&by_root).get("vics").is_ok());
}

/// An impersonated client may do only what both the user's permissions and the key's
/// scopes allow.
#[test]
fn impersonation_is_bounded_by_the_keys_scopes() {
    let w = world();
    let keys = w.db.root().keys();
    let vic_session =
        w.db.client()
            .account()
            .create_email_password_session("v@example.com", "password-v")
            .unwrap();
    let impersonate = |scopes: &[Scope]| {
        let key = keys.create("k", scopes).unwrap();
        w.db.client()
            .set_key(&key.secret)
            .unwrap()
            .impersonate("vic")
            .unwrap()
    };
    let refused = |r: permdb::Result<_>| matches!(r, Err(Error::Unauthorized { .. }));

    // users.read alone: the account may be read, nothing else.
    let only_users_read = impersonate(&[Scope::UsersRead]);
    assert_eq!(only_users_read.account().get().unwrap().id, "vic");
    assert!(refused(docs(&only_users_read).find(&[]).map(|_| ())));
    assert!(refused(docs(&only_users_read).get("vics").map(|_| ())));
    assert!(refused(
        docs(&only_users_read)
            .update("vics", json!({"n": 1}), None)
            .map(|_| ())
    ));
    assert!(refused(
        docs(&only_users_read)
            .create("new", json!({}), None)
            .map(|_| ())
    ));
    assert!(refused(docs(&only_users_read).delete("vics")));
    assert!(refused(only_users_read.account().delete_sessions()));
    assert!(refused(
        only_users_read.account().delete_session(&vic_session.id)
    ));
    assert!(
        w.db.client().set_session(&vic_session.secret).is_ok(),
        "the session lives"
    );

    // Reading documents too: vic's documents only, and still no writes.
    let reader = impersonate(&[Scope::UsersRead, Scope::DocumentsRead]);
    let page = docs(&reader).find(&[]).unwrap();
    assert_eq!(page.total, 1);
    assert!(refused(
        docs(&reader)
            .update("vics", json!({"n": 1}), None)
            .map(|_| ())
    ));

    // With every scope, still within vic's permissions.
    let full = impersonate(&Scope::ALL);
    docs(&full).update("vics", json!({"n": 1}), None).unwrap();
    assert!(matches!(
        docs(&full).update("mine", json!({"n": 1}), None),
        Err(Error::NotFound { .. })
    ));
    full.account().delete_sessions().unwrap();
    assert!(w.db.client().set_session(&vic_session.secret).is_err());
}

/// README: after a user is deleted, or loses a label, the next call of every held client
/// of that user is refused, or no longer has the label's documents.
#[test]
fn held_clients_follow_user_deletion_and_label_removal() {
    let w = world();
    let root = w.db.root();
    root.users().update_labels("att", &["vip"]).unwrap();
    root.schema("s")
        .collection("c")
        .create(
            "vip",
            json!({}),
            Some(vec![Permission::read(Role::label("vip"))]),
        )
        .unwrap();
    let by_token = w.db.client().set_jwt(&w.jwt).unwrap();
    let by_session = w.db.client().set_session(&w.session).unwrap();
    let by_key =
        w.db.client()
            .set_key(&w.key)
            .unwrap()
            .impersonate("att")
            .unwrap();
    for held in [&by_token, &by_session, &by_key] {
        assert!(docs(held).get("vip").is_ok());
    }
    root.users().update_labels("att", &[]).unwrap();
    // `roles()` answers as of now, before any other call.
    for held in [&by_token, &by_session, &by_key] {
        assert!(!held.roles().contains(&Role::label("vip")), "{held:?}");
    }
    for held in [&by_token, &by_session, &by_key] {
        assert!(
            matches!(docs(held).get("vip"), Err(Error::NotFound { .. })),
            "{held:?}"
        );
        assert!(!held.roles().contains(&Role::label("vip")));
        assert!(docs(held).get("mine").is_ok());
    }
    root.users().delete("att").unwrap();
    assert!(by_token.roles().is_empty() && by_session.roles().is_empty());
    let r = docs(&by_token).count(&[]);
    assert!(
        matches!(r, Err(Error::InvalidToken(TokenError::SessionRevoked))),
        "{r:?}"
    );
    let r = docs(&by_session).count(&[]);
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    // The impersonated client was made for att's account: it ends with it (impersonating
    // the id again, now without an account, is allowed, and the deleted user's grants
    // went with it).
    let r = docs(&by_key).get("mine");
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    let again =
        w.db.client()
            .set_key(&w.key)
            .unwrap()
            .impersonate("att")
            .unwrap();
    assert!(matches!(
        docs(&again).get("mine"),
        Err(Error::NotFound { .. })
    ));
}

/// Signs up `id` again with a new email and signs it in.
fn new_account(db: &Db, id: &str) -> Client {
    let account = db.client().account();
    account
        .create(id, "new@example.com", "password-new", None)
        .unwrap();
    let session = account
        .create_email_password_session("new@example.com", "password-new")
        .unwrap();
    db.client().set_session(&session.secret).unwrap()
}

/// Red-team finding: a document write authorised before a user's deletion committed after
/// it, re-adding `user:ID` grants the deletion had revoked, which the next account with
/// the id then read. Here the deletion commits at each clock reading the write makes.
#[test]
fn a_write_racing_a_users_deletion_grants_nothing_to_the_next_account() {
    for wait in 0.. {
        let w = world();
        let mine = docs(&w.session_client);
        let db = w.db.clone();
        // The deletion runs on its own thread: a reading taken under the writer lock cannot
        // run a write itself. It is waited for briefly, so that at a reading outside the
        // lock it commits right there; under the lock it commits after the write.
        let deleting = Arc::new(Mutex::new(None));
        let handle = Arc::clone(&deleting);
        w.clock.arm(
            wait,
            Box::new(move || {
                let (done, finished) = std::sync::mpsc::channel();
                let t = std::thread::spawn(move || {
                    db.root().users().delete("att").unwrap();
                    let _ = done.send(());
                });
                let _ = finished.recv_timeout(std::time::Duration::from_millis(200));
                *handle.lock().unwrap() = Some(t);
            }),
        );
        let created = mine.create(permdb::UNIQUE_ID, json!({"diary": "secret"}), None);
        if !w.clock.disarm() {
            assert!(wait > 0, "the write never read the clock");
            break;
        }
        let deletion = deleting.lock().unwrap().take();
        deletion.unwrap().join().unwrap();
        let successor = new_account(&w.db, "att");
        let seen = docs(&successor).find(&[]).unwrap();
        assert_eq!(
            seen.total,
            0,
            "deleted at clock reading {}: the write gave {created:?}; the new account sees {:?}",
            wait + 1,
            seen.documents
        );
    }
}

/// Red-team finding: a client impersonating a user outlived the user's deletion, kept
/// writing `user:ID` grants, and acted as the next account with the id.
#[test]
fn an_impersonated_client_ends_with_the_account_it_was_made_for() {
    let w = world();
    let by_key =
        w.db.client()
            .set_key(&w.key)
            .unwrap()
            .impersonate("att")
            .unwrap();
    let by_root = w.db.root().impersonate("att").unwrap();
    // Other accounts coming and going do not touch it.
    let account = w.db.client().account();
    account
        .create("other", "o@example.com", "password-o", None)
        .unwrap();
    w.db.root().users().delete("other").unwrap();
    for held in [&by_key, &by_root] {
        assert_eq!(docs(held).count(&[]).unwrap(), 2, "mine and team");
    }
    w.db.root().users().delete("att").unwrap();
    for held in [&by_key, &by_root] {
        let r = docs(held).create("after", json!({}), None);
        assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    }
    // An id without an account may be impersonated; the client ends when an account
    // takes the id.
    let no_account = w.db.root().impersonate("att").unwrap();
    docs(&no_account)
        .create("service", json!({}), None)
        .unwrap();
    let successor = new_account(&w.db, "att");
    for held in [&by_key, &by_root, &no_account] {
        let r = docs(held).count(&[]);
        assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
        assert!(held.roles().is_empty());
    }
    // What the id without an account wrote is the service's to grant: the new account
    // reads it, as services with their own sign-in do.
    assert_eq!(docs(&successor).count(&[]).unwrap(), 1);
    // Ended is ended: with the account deleted again, the old clients stay refused, and
    // every refusal says why.
    w.db.root().users().delete("att").unwrap();
    for (held, why) in [
        (&by_key, "no longer exists"),
        (&by_root, "no longer exists"),
        (&no_account, "now belongs to an account"),
    ] {
        for _ in 0..2 {
            let r = docs(held).count(&[]);
            assert!(
                matches!(&r, Err(Error::Unauthorized { message: m, .. }) if m.contains(why)),
                "{r:?}"
            );
        }
    }
}

/// A block is not an ending: an impersonated client is refused while its user is blocked
/// and works again once the user is unblocked, as a client built per request would.
#[test]
fn an_impersonated_client_outlives_a_block() {
    let w = world();
    let by_key =
        w.db.client()
            .set_key(&w.key)
            .unwrap()
            .impersonate("att")
            .unwrap();
    let by_root = w.db.root().impersonate("att").unwrap();
    w.db.root().users().update_status("att", false).unwrap();
    for held in [&by_key, &by_root] {
        let r = docs(held).count(&[]);
        assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    }
    w.db.root().users().update_status("att", true).unwrap();
    for held in [&by_key, &by_root] {
        assert_eq!(docs(held).count(&[]).unwrap(), 2, "mine and team");
    }
}

/// A sign-in checks the password, then writes the session: a block, or the account's
/// deletion and a new account with the id, committed in between must refuse it (the old
/// password must never open the new account).
#[test]
fn a_sign_in_racing_a_block_or_a_new_account_is_refused() {
    type Race = fn(&Db) -> Action;
    let races: [(&str, Race, &str); 2] = [
        (
            "blocked",
            |db| {
                let db = db.clone();
                Box::new(move || {
                    db.root().users().update_status("att", false).unwrap();
                })
            },
            "the user is blocked",
        ),
        (
            "deleted and signed up again",
            |db| {
                let db = db.clone();
                Box::new(move || {
                    db.root().users().delete("att").unwrap();
                    db.client()
                        .account()
                        .create("att", "a@example.com", "password-new", None)
                        .unwrap();
                })
            },
            "invalid email or password",
        ),
    ];
    for (what, race, refusal) in races {
        for wait in 0.. {
            let w = world();
            w.clock.arm(wait, race(&w.db));
            let r =
                w.db.client()
                    .account()
                    .create_email_password_session("a@example.com", "password-a");
            if !w.clock.disarm() {
                assert!(wait > 0, "sign-in never read the clock");
                break;
            }
            assert!(
                matches!(&r, Err(Error::Unauthorized { message: m, .. }) if m == refusal),
                "{what} at clock reading {}: {r:?}",
                wait + 1
            );
            // Nothing was left behind either: unblocked, or as the new account, no
            // session but those made before.
            w.db.root().users().update_status("att", true).unwrap();
            let sessions =
                w.db.root()
                    .impersonate("att")
                    .unwrap()
                    .account()
                    .list_sessions();
            assert!(
                sessions.unwrap().len() <= 1,
                "{what} at clock reading {}: a session was written",
                wait + 1
            );
        }
    }
}

/// When a token and its session end at the same instant, the refusal names the token's
/// own expiry (the earlier of two expiries is the token's on a tie).
#[test]
fn a_token_and_its_session_ending_together_name_the_token() {
    let (options, clock) = common::test_options();
    // The token lasts 15 minutes and 60 s of leeway: as long as the session.
    let db = Db::temporary_with(options.session_ttl(Duration::minutes(16))).unwrap();
    common::seed(&db);
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let held = db.client().set_jwt(&jwt).unwrap();
    let birthdays = held.schema("db").collection("birthdays");
    clock.advance(Duration::minutes(16));
    assert_eq!(birthdays.count(&[]).unwrap(), 1);
    clock.advance(Duration::milliseconds(1));
    let r = birthdays.count(&[]);
    assert!(
        matches!(r, Err(Error::InvalidToken(TokenError::Expired))),
        "{r:?}"
    );
}

/// Red-team finding (second round): admin and account writes acted with rights checked
/// before the writer lock, so a deleted key committed one more write (a label, a
/// membership, a collection opened to `any`). Each write is tried with the key deleted at
/// every clock reading it makes; none may commit.
#[test]
fn admin_writes_racing_their_keys_deletion_are_refused() {
    type Write = fn(&Client) -> permdb::Result<()>;
    let writes: [(&str, Write); 5] = [
        ("labels", |k| {
            k.users().update_labels("att", &["admin"]).map(|_| ())
        }),
        ("membership", |k| {
            k.teams()
                .create_membership("t1", "vic", &["owner"])
                .map(|_| ())
        }),
        ("collection opened", |k| {
            k.schema("s")
                .collections()
                .update(
                    CollectionSpec::new("c", "C")
                        .permissions([Permission::read(Role::any())])
                        .document_security(true),
                )
                .map(|_| ())
        }),
        ("user created", |k| {
            k.users()
                .create("mallory", "m@example.com", "password-m", None)
                .map(|_| ())
        }),
        ("user blocked", |k| {
            k.users().update_status("vic", false).map(|_| ())
        }),
    ];
    let mut committed = Vec::new();
    for (what, write) in writes {
        for wait in 0.. {
            let w = world();
            let key = w.db.client().set_key(&w.key).unwrap();
            let before = snapshot(&w.db);
            let slot = Arc::default();
            w.clock.arm(
                wait,
                on_own_thread(delete_key(&w.db, &w), Arc::clone(&slot)),
            );
            let r = write(&key);
            if !w.clock.disarm() {
                assert!(wait > 0, "{what}: the write never read the clock");
                break;
            }
            if join(&slot) && (r.is_ok() || snapshot(&w.db) != before) {
                committed.push(format!(
                    "{what} (key deleted at clock reading {}): {r:?}",
                    wait + 1
                ));
            }
        }
    }
    assert!(
        committed.is_empty(),
        "written after the key's deletion:\n{}",
        committed.join("\n")
    );
}

/// What the races above could change.
fn snapshot(db: &Db) -> String {
    let root = db.root();
    format!(
        "{:?} {:?} {:?}",
        root.users().list().unwrap(),
        root.teams().list_memberships("t1").unwrap(),
        root.schema("s").collections().get("c").unwrap().permissions,
    )
}

/// The same for a user's own account: a session ended by its owner cannot end the
/// owner's other sessions while its call is in flight.
#[test]
fn an_ended_session_cannot_end_the_others() {
    for wait in 0.. {
        let w = world();
        let other =
            w.db.client()
                .account()
                .create_email_password_session("a@example.com", "password-a")
                .unwrap();
        let thief = w.db.client().set_session(&w.session).unwrap();
        let owner = w.db.client().set_session(&other.secret).unwrap();
        let session_id = thief
            .account()
            .list_sessions()
            .unwrap()
            .into_iter()
            .find(|s| s.current)
            .unwrap()
            .id;
        let slot: Slot = Arc::default();
        // The owner's call fails when the thief's commits first (it ended every session).
        let end = Box::new(move || {
            let _ = owner.account().delete_session(&session_id);
        });
        w.clock.arm(wait, on_own_thread(end, Arc::clone(&slot)));
        let r = thief.account().delete_sessions();
        if !w.clock.disarm() {
            assert!(wait > 0, "the call never read the clock");
            break;
        }
        if !join(&slot) {
            continue;
        }
        assert!(r.is_err(), "at clock reading {}: {r:?}", wait + 1);
        assert!(
            w.db.client().set_session(&other.secret).is_ok(),
            "at clock reading {}: the owner's session was ended",
            wait + 1
        );
    }
}
