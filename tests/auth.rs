//! Sign-up, sign-in, sessions, API keys, teams and labels, written as an attacker
//! would try them: each privilege the issue names must be refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{Clock, Db, Error, Permission, Query, Role, Scope};
use serde_json::json;
use time::Duration;

fn setup() -> (Db, permdb::ManualClock) {
    let (options, clock) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    (db, clock)
}

fn unauthorized<T: std::fmt::Debug>(r: permdb::Result<T>) -> String {
    match r {
        Err(Error::Unauthorized { message: m, .. }) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn sign_up_rules() {
    let (db, _) = setup();
    let account = db.client().account();
    let conflict = account.create("user-x", "A@Example.com", "password-x", None);
    assert!(
        matches!(conflict, Err(Error::Conflict { ref message, .. }) if message.contains("email")),
        "{conflict:?}"
    );
    assert!(matches!(
        account.create("user-a", "new@example.com", "password-x", None),
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        account.create("user-x", "x@example.com", "short", None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        account.create("user-x", "not-an-email", "password-x", None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        account.create("_x", "x@example.com", "password-x", None),
        Err(Error::InvalidId(_))
    ));
    let user = account
        .create("user-x", "x@example.com", "password-x", Some("Xavier"))
        .unwrap();
    assert_eq!(
        (user.name.as_str(), user.status, user.email_verification),
        ("Xavier", true, false)
    );
    let json = serde_json::to_string(&db.root().users().get("user-x").unwrap()).unwrap();
    assert!(
        !json.contains("argon2") && !json.contains("password"),
        "{json}"
    );
    // A signed-in client cannot sign up again.
    assert!(
        common::sign_in(&db, "a")
            .account()
            .create("user-y", "y@example.com", "password-y", None)
            .is_err()
    );
}

#[test]
fn wrong_email_and_wrong_password_look_the_same_and_are_throttled() {
    let (db, clock) = setup();
    let account = db.client().account();
    let wrong_password =
        unauthorized(account.create_email_password_session("a@example.com", "nope-nope"));
    let wrong_email =
        unauthorized(account.create_email_password_session("zz@example.com", "password-a"));
    assert_eq!(wrong_password, wrong_email);
    // Failures 2 to 10, a minute apart: each is a checked password, not a refusal.
    for minute in 1..=9 {
        clock.advance(Duration::minutes(1));
        let r = account.create_email_password_session("A@example.com", "nope-nope");
        assert_eq!(unauthorized(r), wrong_password, "failure {}", minute + 1);
    }
    // Ten failures for this email (any case) within 15 minutes of the first: refused even
    // with the right password, until 15 minutes after the first failure.
    let too_many = |r: permdb::Result<permdb::Session>| {
        assert!(matches!(r, Err(Error::TooManyRequests(_))), "{r:?}");
    };
    too_many(account.create_email_password_session("a@example.com", "password-a"));
    account
        .create_email_password_session("b@example.com", "password-b")
        .unwrap();
    // The first failure was 9 minutes ago: 5 min 59 s more is 14 min 59 s after it.
    clock.advance(Duration::minutes(5) + Duration::seconds(59));
    too_many(account.create_email_password_session("a@example.com", "password-a"));
    clock.advance(Duration::seconds(1));
    account
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
}

/// Concurrent guesses for one email: at most the limit of passwords are checked, however
/// many attempts are in flight at once.
#[test]
fn concurrent_guesses_check_at_most_the_limit() {
    let (options, _) = common::test_options();
    // Costly enough (8 MiB) that the 24 attempts overlap.
    let options = options.password_hashing(permdb::PasswordHashing {
        memory_kib: 8 << 10,
        iterations: 1,
        parallelism: 1,
    });
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    let start = std::sync::Arc::new(std::sync::Barrier::new(24));
    let guesses: Vec<_> = (0..24)
        .map(|i| {
            let (db, start) = (db.clone(), std::sync::Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                db.client()
                    .account()
                    .create_email_password_session("a@example.com", &format!("guess-{i:04}"))
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for g in guesses {
        match g.join().unwrap() {
            Err(Error::Unauthorized { .. }) => checked += 1,
            Err(Error::TooManyRequests(_)) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (checked, refused),
        (10, 14),
        "passwords checked, attempts refused"
    );
}

/// A new account with a deleted user's id inherits nothing of the old user: no document,
/// collection or team grant.
#[test]
fn a_new_account_with_a_deleted_users_id_inherits_nothing() {
    let (db, _) = setup();
    let root = db.root();
    root.teams().create("t1", "T1").unwrap();
    root.teams().create_membership("t1", "user-b", &[]).unwrap();
    let spec = permdb::CollectionSpec::new("diary", "Diary")
        .permissions([Permission::read(Role::user("user-b"))])
        .document_security(true);
    let diary = common::create_collection(&db, "db", spec);
    diary
        .create("d1", json!({"text": "b's diary"}), None)
        .unwrap();
    let birthdays = root.schema("db").collection("birthdays");
    birthdays
        .create(
            "team1",
            json!({"name": "Team"}),
            Some(vec![Permission::read(Role::team("t1"))]),
        )
        .unwrap();
    birthdays
        .create(
            "shared",
            json!({"name": "Shared"}),
            Some(vec![
                Permission::read(Role::user("user-b")),
                Permission::update(Role::user_with("user-b", permdb::Verification::Unverified)),
                Permission::read(Role::user("user-a")),
            ]),
        )
        .unwrap();
    // Found through the update bitmap alone, and the delete bitmap alone.
    for (id, grant) in [
        ("update-only", Permission::update(Role::user("user-b"))),
        ("delete-only", Permission::delete(Role::user("user-b"))),
    ] {
        birthdays
            .create(id, json!({"name": id}), Some(vec![grant]))
            .unwrap();
    }
    let b = common::sign_in(&db, "b");
    assert_eq!(
        b.schema("db").collection("birthdays").count(&[]).unwrap(),
        3
    );
    assert_eq!(b.schema("db").collection("diary").count(&[]).unwrap(), 1);

    root.users().delete("user-b").unwrap();
    db.client()
        .account()
        .create("user-b", "new-b@example.com", "password-new-b", None)
        .unwrap();
    let new_b = db.client().set_session(
        &db.client()
            .account()
            .create_email_password_session("new-b@example.com", "password-new-b")
            .unwrap()
            .secret,
    );
    let new_b = new_b.unwrap();
    let page = new_b
        .schema("db")
        .collection("birthdays")
        .find(&[])
        .unwrap();
    assert_eq!(page.total, 0, "{:?}", page.documents);
    assert_eq!(
        new_b.schema("db").collection("diary").count(&[]).unwrap(),
        0,
        "the collection's grant to user-b is gone"
    );
    assert!(matches!(
        new_b.schema("db").collection("birthdays").get("doc2"),
        Err(Error::NotFound { .. })
    ));
    // The grants are gone from the documents and the collection, others' grants stay.
    let shared = birthdays.get("shared").unwrap();
    assert_eq!(
        shared.permissions(),
        [Permission::read(Role::user("user-a"))]
    );
    assert!(birthdays.get("doc2").unwrap().permissions().is_empty());
    for id in ["update-only", "delete-only"] {
        assert!(
            birthdays.get(id).unwrap().permissions().is_empty(),
            "{id}: grants found through the update or delete bitmap are gone too"
        );
    }
    let diary_info = root.schema("db").collections().get("diary").unwrap();
    assert!(
        diary_info.permissions.is_empty(),
        "{:?}",
        diary_info.permissions
    );
    assert_eq!(
        common::sign_in(&db, "a")
            .schema("db")
            .collection("birthdays")
            .count(&[])
            .unwrap(),
        2,
        "doc1 and shared"
    );
    let report = db.verify().unwrap();
    assert_eq!(report.problems, 0, "{report:?}");
}

#[test]
fn sessions_are_secrets_shown_once() {
    let (db, clock) = setup();
    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    assert!(session.secret.starts_with("pdbs_") && session.secret.len() > 60);
    assert!(
        !format!("{session:?}").contains(&session.secret),
        "Debug must redact the secret"
    );
    assert_eq!(
        session.expire - session_created(&clock),
        Duration::days(365)
    );
    let alice = db.client().set_session(&session.secret).unwrap();
    let listed = alice.account().list_sessions().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].current && listed[0].secret.is_empty());
    // Guessing: a wrong secret for a real session id, a malformed one, another user's id.
    let mut wrong = session.secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        wrong.as_str(),
        "pdbs_x.y",
        "",
        &session.secret[..session.secret.len() - 4],
    ] {
        assert_eq!(
            unauthorized(db.client().set_session(bad)),
            "invalid session secret"
        );
    }
    // A second session, then logout of the current one only.
    let second = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    alice.account().delete_session("current").unwrap();
    assert!(db.client().set_session(&session.secret).is_err());
    let alice2 = db.client().set_session(&second.secret).unwrap();
    assert_eq!(alice2.account().list_sessions().unwrap().len(), 1);
    // Another user's session cannot be deleted by id.
    let bob = common::sign_in(&db, "b");
    let bobs = bob.account().list_sessions().unwrap()[0].id.clone();
    assert!(matches!(
        alice2.account().delete_session(&bobs),
        Err(Error::NotFound { .. })
    ));
    alice2.account().delete_sessions().unwrap();
    assert!(db.client().set_session(&second.secret).is_err());
    // Blocked users cannot sign in or use a session.
    let bob_session = db
        .client()
        .account()
        .create_email_password_session("b@example.com", "password-b")
        .unwrap();
    db.root().users().update_status("user-b", false).unwrap();
    assert!(unauthorized(db.client().set_session(&bob_session.secret)).contains("blocked"));
    assert!(
        unauthorized(
            db.client()
                .account()
                .create_email_password_session("b@example.com", "password-b")
        )
        .contains("blocked")
    );
    // Sessions expire.
    let s = db
        .client()
        .account()
        .create_email_password_session("c@example.com", "password-c")
        .unwrap();
    clock.advance(Duration::days(366));
    assert_eq!(
        unauthorized(db.client().set_session(&s.secret)),
        "session expired"
    );
}

fn session_created(clock: &permdb::ManualClock) -> time::OffsetDateTime {
    clock.now()
}

#[test]
fn a_token_gives_exactly_the_users_permissions() {
    let (db, _) = setup();
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let as_a = db.client().set_jwt(&jwt).unwrap();
    let birthdays = as_a.schema("db").collection("birthdays");
    assert_eq!(birthdays.find(&[Query::limit(100)]).unwrap().total, 1);
    assert!(matches!(birthdays.get("doc2"), Err(Error::NotFound { .. })));
    assert!(matches!(
        birthdays.find(&[Query::cursor_after("doc2")]),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        birthdays.update("doc2", json!({"name": "x"}), None),
        Err(Error::NotFound { .. })
    ));
    let r = birthdays.create(
        "mine",
        json!({}),
        Some(vec![Permission::read(Role::user("user-b"))]),
    );
    assert!(unauthorized(r).contains("user:user-b"));
    birthdays.create("mine", json!({}), None).unwrap();
    assert!(unauthorized(as_a.users().list()).contains("users.read"));
    assert!(as_a.schemas().list().is_err());
    assert!(as_a.keys().list().is_err());
    assert!(as_a.impersonate("user-b").is_err());
}

#[test]
fn api_keys_skip_permissions_within_their_scopes() {
    let (db, clock) = setup();
    let reader = db
        .root()
        .keys()
        .create("reader", &[Scope::DocumentsRead])
        .unwrap();
    assert!(reader.secret.starts_with("pdbk_"));
    assert!(!format!("{reader:?}").contains(&reader.secret));
    let key = db.client().set_key(&reader.secret).unwrap();
    let birthdays = key.schema("db").collection("birthdays");
    assert_eq!(birthdays.find(&[]).unwrap().total, 3);
    assert!(unauthorized(birthdays.create("x", json!({}), None)).contains("documents.write"));
    assert!(unauthorized(birthdays.delete("doc1")).contains("documents.write"));
    assert!(unauthorized(key.users().list()).contains("users.read"));
    assert!(key.keys().list().is_err(), "keys cannot manage keys");
    assert!(key.impersonate("user-a").is_err());

    let writer = db
        .root()
        .keys()
        .create("writer", &[Scope::DocumentsWrite, Scope::UsersRead])
        .unwrap();
    let key = db.client().set_key(&writer.secret).unwrap();
    key.schema("db")
        .collection("birthdays")
        .create(
            "x",
            json!({}),
            Some(vec![Permission::read(Role::team("t1"))]),
        )
        .unwrap();
    assert!(
        key.schema("db").collection("birthdays").find(&[]).is_err(),
        "no documents.read"
    );
    // Impersonating does not widen the key: user-a's permissions and the key's scopes both apply.
    let as_a = key.impersonate("user-a").unwrap();
    assert!(
        unauthorized(as_a.schema("db").collection("birthdays").find(&[]))
            .contains("documents.read")
    );
    let reader_too = db
        .root()
        .keys()
        .create("reader too", &[Scope::DocumentsRead, Scope::UsersRead])
        .unwrap();
    let as_a = db
        .client()
        .set_key(&reader_too.secret)
        .unwrap()
        .impersonate("user-a")
        .unwrap();
    assert_eq!(
        as_a.schema("db")
            .collection("birthdays")
            .find(&[])
            .unwrap()
            .total,
        1
    );

    // Expired, deleted, unknown, and malformed keys.
    let expiring = db
        .root()
        .keys()
        .create_expiring(
            "short",
            &[Scope::DocumentsRead],
            Some(session_created(&clock) + Duration::hours(1)),
        )
        .unwrap();
    let live = db.client().set_key(&expiring.secret).unwrap();
    clock.advance(Duration::hours(2));
    assert_eq!(
        unauthorized(db.client().set_key(&expiring.secret)),
        "API key expired"
    );
    assert!(unauthorized(live.schema("db").collection("birthdays").find(&[])).contains("expired"));
    db.root().keys().delete(&reader.id).unwrap();
    assert_eq!(
        unauthorized(db.client().set_key(&reader.secret)),
        "invalid API key"
    );
    let mut guessed = writer.secret.clone();
    guessed.replace_range(guessed.len() - 3.., "AAA");
    for bad in [guessed.as_str(), "pdbk_nope.AAAA", "", "pdbs_x.y"] {
        assert_eq!(unauthorized(db.client().set_key(bad)), "invalid API key");
    }
    assert_eq!(
        db.root()
            .keys()
            .list()
            .unwrap()
            .iter()
            .filter(|k| !k.secret.is_empty())
            .count(),
        0
    );
}

#[test]
fn teams_memberships_and_labels_become_roles_at_the_next_sign_in() {
    let (db, _) = setup();
    let root = db.root();
    root.teams().create("t1", "Team one").unwrap();
    let birthdays = root.schema("db").collection("birthdays");
    birthdays
        .create(
            "team-doc",
            json!({}),
            Some(vec![Permission::read(Role::team_role("t1", "admin"))]),
        )
        .unwrap();
    birthdays
        .create(
            "vip-doc",
            json!({}),
            Some(vec![Permission::read(Role::label("vip"))]),
        )
        .unwrap();
    birthdays
        .create(
            "verified-doc",
            json!({}),
            Some(vec![Permission::read(Role::users_with(
                permdb::Verification::Verified,
            ))]),
        )
        .unwrap();
    let membership = root
        .teams()
        .create_membership("t1", "user-a", &["admin"])
        .unwrap();
    root.users().update_labels("user-a", &["vip"]).unwrap();
    root.users()
        .update_email_verification("user-a", true)
        .unwrap();
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let as_a = db.client().set_jwt(&jwt).unwrap();
    let roles: Vec<String> = as_a.roles().iter().map(ToString::to_string).collect();
    for expected in [
        "team:t1",
        "team:t1/admin",
        &format!("member:{}", membership.id()),
        "label:vip",
        "users/verified",
        "user:user-a/verified",
    ] {
        assert!(
            roles.iter().any(|r| r == expected),
            "{expected} missing from {roles:?}"
        );
    }
    let ids = |c: &permdb::Client| -> Vec<String> {
        c.schema("db")
            .collection("birthdays")
            .find(&[])
            .unwrap()
            .documents
            .iter()
            .map(|d| d.id().to_string())
            .collect()
    };
    assert_eq!(ids(&as_a), ["doc1", "team-doc", "vip-doc", "verified-doc"]);
    // The same token, after the membership and label are removed: roles follow the store.
    root.teams()
        .delete_membership("t1", membership.id())
        .unwrap();
    root.users().update_labels("user-a", &[]).unwrap();
    let again = db.client().set_jwt(&jwt).unwrap();
    assert!(
        !again
            .roles()
            .iter()
            .any(|r| r.to_string().starts_with("team:"))
    );
    assert_eq!(ids(&again), ["doc1", "verified-doc"]);
    assert!(matches!(
        root.teams().create_membership("t1", "nobody", &[]),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        root.teams()
            .create_membership("t1", "user-b", &["bad role"]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        root.users().update_labels("user-a", &["not-alnum"]),
        Err(Error::InvalidArgument(_))
    ));
    root.teams().create_membership("t1", "user-b", &[]).unwrap();
    assert!(matches!(
        root.teams().create_membership("t1", "user-b", &[]),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(root.teams().list_memberships("t1").unwrap().len(), 1);
    root.teams().delete("t1").unwrap();
    assert!(root.teams().list().unwrap().is_empty());
}

/// Red-team finding: each distinct email, however long, was kept by the throttle for its
/// window (3 MiB emails over HTTP grew the server by 210 MiB in 60 requests). An email
/// past 254 bytes is refused before anything is counted or hashed.
#[test]
fn an_overlong_email_is_refused_before_the_throttle_and_the_hash() {
    let (db, _) = setup();
    let account = db.client().account();
    for i in 0..20 {
        let email = format!("{i}{}@example.com", "a".repeat(2 << 20));
        let r = account.create_email_password_session(&email, "password-a");
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    }
    // Nothing was counted against a real address either.
    for _ in 0..9 {
        unauthorized(account.create_email_password_session("a@example.com", "wrong-pass"));
    }
    account
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
}

/// What the management calls list and show: keys, teams and their times, a membership
/// found only through its own team, and `Debug` output that names things but no secret.
#[test]
fn listings_times_and_debug_output() {
    let (db, clock) = setup();
    let root = db.root();
    let key = root
        .keys()
        .create("backend", &[Scope::DocumentsRead])
        .unwrap();
    let listed = root.keys().list().unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| (k.id.as_str(), k.name.as_str(), k.secret.as_str()))
            .collect::<Vec<_>>(),
        [(key.id.as_str(), "backend", "")]
    );
    let shown = format!("{key:?}");
    assert!(
        shown.contains("ApiKey") && shown.contains(&key.id),
        "{shown}"
    );
    assert!(!shown.contains(&key.secret), "{shown}");

    root.teams().create("t1", "Team one").unwrap();
    root.teams().create("t2", "Team two").unwrap();
    let teams = root.teams().list().unwrap();
    assert_eq!(
        teams.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    assert_eq!(teams[0].created_at, "2024-01-01T00:00:00.000+00:00");
    let m = root.teams().create_membership("t1", "user-a", &[]).unwrap();
    assert_eq!(m.created_at, "2024-01-01T00:00:00.000+00:00");
    // A membership is deleted through its own team only.
    assert!(matches!(
        root.teams().delete_membership("t2", m.id()),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(root.teams().list_memberships("t1").unwrap().len(), 1);
    root.teams().delete_membership("t1", m.id()).unwrap();

    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    let shown = format!("{session:?}");
    assert!(
        shown.contains("Session") && shown.contains(&session.id),
        "{shown}"
    );
    assert!(!shown.contains(&session.secret), "{shown}");
    let p = Permission::read(Role::user("user-a"));
    assert_eq!(format!("{p:?}"), "Permission(read(\"user:user-a\"))");

    // Who skips the permission filter: root and live keys, not users or guests.
    let as_key = db.client().set_key(&key.secret).unwrap();
    assert!(root.skips_permissions() && as_key.skips_permissions());
    assert!(!db.client().skips_permissions());
    assert!(!common::sign_in(&db, "a").skips_permissions());
    root.keys().delete(&key.id).unwrap();
    assert!(!as_key.skips_permissions(), "a deleted key skips nothing");
    let _ = clock;
}

/// Expiry instants: a session or key is good up to and including its expiry, not after.
#[test]
fn sessions_and_keys_end_just_after_their_expiry() {
    let (options, clock) = common::test_options();
    let db = Db::temporary_with(options.session_ttl(Duration::hours(1))).unwrap();
    common::seed(&db);
    let start = clock.now();
    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    let key = db
        .root()
        .keys()
        .create_expiring(
            "k",
            &[Scope::DocumentsRead],
            Some(start + Duration::hours(1)),
        )
        .unwrap();
    let held_session = db.client().set_session(&session.secret).unwrap();
    let held_key = db.client().set_key(&key.secret).unwrap();
    let birthdays = |c: &permdb::Client| c.schema("db").collection("birthdays").count(&[]);
    clock.set(start + Duration::hours(1));
    assert_eq!(birthdays(&held_session).unwrap(), 1);
    assert_eq!(birthdays(&held_key).unwrap(), 3);
    assert!(db.client().set_session(&session.secret).is_ok());
    assert!(db.client().set_key(&key.secret).is_ok());
    clock.set(start + Duration::hours(1) + Duration::milliseconds(1));
    assert!(matches!(
        birthdays(&held_session),
        Err(Error::Unauthorized { .. })
    ));
    assert!(matches!(
        birthdays(&held_key),
        Err(Error::Unauthorized { .. })
    ));
    assert!(db.client().set_session(&session.secret).is_err());
    assert!(db.client().set_key(&key.secret).is_err());
}

/// Red-team finding (second round): a deleted team's grants stayed, and a new team with
/// its id passed them to its new members.
#[test]
fn a_new_team_with_a_deleted_teams_id_inherits_nothing() {
    let (db, _) = setup();
    let root = db.root();
    root.teams().create("ops", "Ops").unwrap();
    let m = root
        .teams()
        .create_membership("ops", "user-a", &["admin"])
        .unwrap();
    let spec = permdb::CollectionSpec::new("runbooks", "Runbooks")
        .permissions([Permission::read(Role::team_role("ops", "admin"))])
        .document_security(true);
    let runbooks = common::create_collection(&db, "db", spec);
    for (id, role) in [
        ("t", Role::team("ops")),
        ("r", Role::team_role("ops", "admin")),
        ("o", Role::team_role("ops", "oncall")),
        ("m", Role::member(m.id())),
    ] {
        runbooks
            .create(id, json!({}), Some(vec![Permission::read(role)]))
            .unwrap();
    }
    runbooks
        .create(
            "keep",
            json!({}),
            Some(vec![
                Permission::read(Role::team("ops")),
                Permission::read(Role::team("opsx")),
            ]),
        )
        .unwrap();
    let a = common::sign_in(&db, "a");
    assert_eq!(a.schema("db").collection("runbooks").count(&[]).unwrap(), 5);

    root.teams().delete("ops").unwrap();
    root.teams().create("ops", "Ops again").unwrap();
    root.teams()
        .create_membership("ops", "user-b", &["admin", "oncall"])
        .unwrap();
    let b = common::sign_in(&db, "b");
    let c = b.schema("db").collection("runbooks");
    assert_eq!(c.find(&[]).unwrap().total, 0, "{:?}", c.find(&[]).unwrap());
    // Others' grants stay; the collection's grant to the old team is gone.
    assert_eq!(
        runbooks.get("keep").unwrap().permissions(),
        [Permission::read(Role::team("opsx"))]
    );
    let info = root.schema("db").collections().get("runbooks").unwrap();
    assert!(info.permissions.is_empty(), "{:?}", info.permissions);
    assert_eq!(db.verify().unwrap().problems, 0);
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Preferences: each user's own (a key reads them with `users.read`, changes them with
/// `users.write`), replaced whole, bounded, and gone with the user or team.
#[test]
fn preferences_are_the_owners_and_go_with_them() {
    let (db, _) = setup();
    let a = common::sign_in(&db, "a");
    let b = common::sign_in(&db, "b");
    assert!(a.account().prefs().unwrap().is_empty());
    let set = a
        .account()
        .update_prefs(object(json!({"theme": "dark", "n": [1, {"x": true}]})))
        .unwrap();
    assert_eq!(set["theme"], "dark");
    assert_eq!(a.account().prefs().unwrap(), set);
    assert!(b.account().prefs().unwrap().is_empty(), "b's are b's own");
    // Replaced whole, as Appwrite.
    a.account()
        .update_prefs(object(json!({"lang": "fr"})))
        .unwrap();
    assert_eq!(a.account().prefs().unwrap(), object(json!({"lang": "fr"})));
    // A guest has no preferences to read or write.
    for r in [
        db.client().account().prefs(),
        db.client().account().update_prefs(object(json!({"x": 1}))),
    ] {
        assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    }
    // Keys: reading needs users.read, changing users.write; so does an impersonated client.
    let reader = db
        .root()
        .keys()
        .create("reader", &[Scope::UsersRead])
        .unwrap()
        .secret;
    let reader = db.client().set_key(&reader).unwrap();
    assert_eq!(
        reader.users().prefs("user-a").unwrap(),
        object(json!({"lang": "fr"}))
    );
    let r = reader.users().update_prefs("user-a", object(json!({})));
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    let as_a = reader.impersonate("user-a").unwrap();
    assert_eq!(as_a.account().prefs().unwrap()["lang"], "fr");
    let r = as_a.account().update_prefs(object(json!({"x": 1})));
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    let r = reader.users().prefs("nobody");
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    db.root()
        .users()
        .update_prefs("user-b", object(json!({"k": "v"})))
        .unwrap();
    assert_eq!(b.account().prefs().unwrap()["k"], "v");
    // Limits: 64 KiB of JSON text, 32 levels.
    let big = "x".repeat(permdb::MAX_PREFS_BYTES);
    let r = a.account().update_prefs(object(json!({ "big": big })));
    assert!(matches!(r, Err(Error::LimitExceeded(_))), "too big");
    let fits = "x".repeat(permdb::MAX_PREFS_BYTES - r#"{"big":""}"#.len());
    a.account()
        .update_prefs(object(json!({ "big": fits })))
        .unwrap();
    let nest = |levels: usize| {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({ "in": v });
        }
        object(v)
    };
    a.account()
        .update_prefs(nest(permdb::MAX_PREFS_DEPTH))
        .unwrap();
    let r = a.account().update_prefs(nest(permdb::MAX_PREFS_DEPTH + 1));
    assert!(matches!(r, Err(Error::LimitExceeded(_))), "too deep: {r:?}");
    // A new account with a deleted user's id starts with none.
    db.root().users().delete("user-a").unwrap();
    db.client()
        .account()
        .create("user-a", "new-a@example.com", "password-new", None)
        .unwrap();
    assert!(db.root().users().prefs("user-a").unwrap().is_empty());
    // Teams: the same, with teams.read and teams.write.
    let teams = db.root().teams();
    teams.create("t1", "T").unwrap();
    assert!(teams.prefs("t1").unwrap().is_empty());
    teams
        .update_prefs("t1", object(json!({"color": "red"})))
        .unwrap();
    assert_eq!(teams.prefs("t1").unwrap()["color"], "red");
    let r = reader.teams().prefs("t1");
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    teams.delete("t1").unwrap();
    teams.create("t1", "T again").unwrap();
    assert!(teams.prefs("t1").unwrap().is_empty());
    let r = teams.update_prefs("t2", object(json!({})));
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
}

/// A backend with `users.write` and both document scopes mints a user's token from one of
/// their live sessions; the
/// token carries the user's permissions and ends with that session.
#[test]
fn a_key_mints_a_users_token_from_their_session() {
    let (db, clock) = setup();
    let key = |scopes: &[Scope]| {
        let secret = db.root().keys().create("k", scopes).unwrap().secret;
        db.client().set_key(&secret).unwrap()
    };
    let writer = key(&[
        Scope::UsersWrite,
        Scope::DocumentsRead,
        Scope::DocumentsWrite,
    ]);
    let reader = key(&[Scope::UsersRead, Scope::DocumentsRead]);
    // A token does everything the user may: a key needs every scope of that to mint one.
    let users_only = key(&[Scope::UsersWrite]);
    let no_writes = key(&[Scope::UsersWrite, Scope::DocumentsRead]);
    let docs = |client: &permdb::Client| {
        client
            .schema("db")
            .collection("birthdays")
            .find(&[])
            .map(|l| {
                l.documents
                    .iter()
                    .map(|d| d.id().to_owned())
                    .collect::<Vec<_>>()
            })
    };
    // No session yet: no token (permdb never mints one without a session).
    let r = writer.users().create_jwt("user-a", None, None);
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    let account = db.client().account();
    let old = account
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    clock.advance(Duration::minutes(1));
    let new = account
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    for (what, short) in [
        ("users.read", &reader),
        ("users.write only", &users_only),
        ("no documents.write", &no_writes),
    ] {
        let r = short.users().create_jwt("user-a", None, None);
        assert!(
            matches!(r, Err(Error::Unauthorized { .. })),
            "{what}: {r:?}"
        );
    }
    // The most recent session by default; the token is user-a's, nothing more.
    let recent = writer.users().create_jwt("user-a", None, None).unwrap();
    let as_a = db.client().set_jwt(&recent.jwt).unwrap();
    assert_eq!(docs(&as_a).unwrap(), ["doc1"]);
    let chosen = writer
        .users()
        .create_jwt("user-a", Some(&old.id), Some(Duration::seconds(60)))
        .unwrap();
    assert_eq!(chosen.expires_at, db_now(&clock) + Duration::seconds(60));
    // Ending the newest session ends the default token, not the one from the old session.
    let a = db.client().set_session(&new.secret).unwrap();
    a.account().delete_session("current").unwrap();
    assert!(db.client().set_jwt(&recent.jwt).is_err());
    assert_eq!(
        docs(&db.client().set_jwt(&chosen.jwt).unwrap()).unwrap(),
        ["doc1"]
    );
    // Another user's session, an unknown one, a bad lifetime, a blocked user: refused.
    let b = account
        .create_email_password_session("b@example.com", "password-b")
        .unwrap();
    for session in [b.id.as_str(), "nothing"] {
        let r = writer.users().create_jwt("user-a", Some(session), None);
        assert!(matches!(r, Err(Error::NotFound { .. })), "{session}: {r:?}");
    }
    for ttl in [Duration::ZERO, Duration::seconds(3601)] {
        let r = writer.users().create_jwt("user-a", None, Some(ttl));
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{ttl}: {r:?}");
    }
    let r = writer.users().create_jwt("nobody", None, None);
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    db.root().users().update_status("user-a", false).unwrap();
    let r = writer.users().create_jwt("user-a", None, None);
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
    db.root().users().update_status("user-a", true).unwrap();
    // An expired session is not chosen.
    clock.advance(Duration::days(400));
    let r = writer.users().create_jwt("user-a", None, None);
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
}

fn db_now(clock: &permdb::ManualClock) -> time::OffsetDateTime {
    let now = clock.now();
    time::OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap()
}

/// `Client::writer` names who a client writes as, after the same checks a document write
/// makes: a key without `documents.write` (or a user impersonated by one) is refused, a
/// session ended is refused, and a later account given a deleted user's id is another
/// writer.
#[test]
fn a_writer_is_checked_now_and_tells_accounts_apart() {
    use permdb::Actor;
    let (db, _clock) = setup();
    assert_eq!(db.root().writer().unwrap(), Actor::Root);
    assert_eq!(db.client().writer().unwrap(), Actor::Guest);

    let root = db.root();
    let writer_key = root.keys().create("w", &[Scope::DocumentsWrite]).unwrap();
    let reader_key = root
        .keys()
        .create("r", &[Scope::DocumentsRead, Scope::UsersRead])
        .unwrap();
    let by_key = db.client().set_key(&writer_key.secret).unwrap();
    assert_eq!(
        by_key.writer().unwrap(),
        Actor::Key {
            id: writer_key.id.clone()
        }
    );
    let reader = db.client().set_key(&reader_key.secret).unwrap();
    unauthorized(reader.writer());
    let impersonated = reader.impersonate("user-a").unwrap();
    unauthorized(impersonated.writer());

    let a = common::sign_in(&db, "a");
    let Actor::User { id, account: first } = a.writer().unwrap() else {
        panic!("a user writes as a user");
    };
    assert_eq!(id, "user-a");
    // The same account through another credential is the same writer.
    let again = common::sign_in(&db, "a").writer().unwrap();
    assert_eq!(
        again,
        Actor::User {
            id: "user-a".into(),
            account: first.clone()
        }
    );

    root.users().delete("user-a").unwrap();
    unauthorized(a.writer());
    db.client()
        .account()
        .create("user-a", "a2@example.com", "password-a2", None)
        .unwrap();
    let session = db
        .client()
        .account()
        .create_email_password_session("a2@example.com", "password-a2")
        .unwrap();
    let second = db.client().set_session(&session.secret).unwrap();
    let Actor::User { account, .. } = second.writer().unwrap() else {
        panic!("a user writes as a user");
    };
    assert_ne!(
        account, first,
        "a new account with the id is another writer"
    );
}
