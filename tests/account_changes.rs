//! Name, email and password changes: proven by the current password (throttled as
//! sign-ins), an email that is unique and unverified after a change, and a new password
//! that ends the user's other sessions and their tokens.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{Db, Error, Role, Scope, Verification};

fn setup() -> Db {
    let (options, _clock) = common::test_options();
    let db = Db::temporary_with(options.sign_in_limit(3, time::Duration::minutes(5))).unwrap();
    common::seed(&db);
    db
}

fn is_invalid_credentials(e: &Error) -> bool {
    matches!(e, Error::Unauthorized { message: m, .. } if m == "invalid email or password")
}

#[test]
fn a_name_change_is_the_users_own() {
    let db = setup();
    let a = common::sign_in(&db, "a");
    assert_eq!(a.account().update_name("Ann").unwrap().name, "Ann");
    assert_eq!(db.root().users().get("user-a").unwrap().name, "Ann");
    assert!(a.account().update_name(&"x".repeat(129)).is_err());
    assert!(db.client().account().update_name("guest").is_err());
    assert_eq!(
        db.root().users().update_name("user-b", "Bea").unwrap().name,
        "Bea"
    );
}

#[test]
fn an_email_change_needs_the_password_and_leaves_the_email_unverified() {
    let db = setup();
    db.root()
        .users()
        .update_email_verification("user-a", true)
        .unwrap();
    let a = common::sign_in(&db, "a");
    assert!(
        a.roles()
            .contains(&Role::users_with(Verification::Verified))
    );
    let e = a
        .account()
        .update_email("new@example.com", "wrong-password")
        .unwrap_err();
    assert!(is_invalid_credentials(&e), "{e:?}");
    assert_eq!(a.account().get().unwrap().email, "a@example.com");
    // Another account's email, in any case, is taken.
    let e = a
        .account()
        .update_email("B@Example.com", "password-a")
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    // A change of case only keeps the verification.
    let user = a
        .account()
        .update_email("A@example.com", "password-a")
        .unwrap();
    assert!(user.email_verification);
    let user = a
        .account()
        .update_email("new@example.com", "password-a")
        .unwrap();
    assert_eq!(
        (user.email.as_str(), user.email_verification),
        ("new@example.com", false)
    );
    // The held client loses its verified role at its next call.
    assert!(
        !a.roles()
            .contains(&Role::users_with(Verification::Verified))
    );
    assert!(
        a.roles()
            .contains(&Role::users_with(Verification::Unverified))
    );
    // Sign-in follows the email; the old one is free for a new account.
    assert!(
        db.client()
            .account()
            .create_email_password_session("new@example.com", "password-a")
            .is_ok()
    );
    let e = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap_err();
    assert!(is_invalid_credentials(&e), "{e:?}");
    db.client()
        .account()
        .create("user-z", "a@example.com", "password-z", None)
        .unwrap();
    // By key.
    let user = db
        .root()
        .users()
        .update_email("user-b", "bee@example.com")
        .unwrap();
    assert_eq!(user.email, "bee@example.com");
    assert!(
        db.root()
            .users()
            .update_email("user-b", "not an email")
            .is_err()
    );
}

#[test]
fn a_password_change_ends_the_other_sessions_and_their_tokens() {
    let db = setup();
    let here = common::sign_in(&db, "a");
    let elsewhere = common::sign_in(&db, "a");
    let token = elsewhere.account().create_jwt().unwrap();
    let backend = db.client().set_jwt(&token.jwt).unwrap();
    let e = here
        .account()
        .update_password("password-new", "password-x")
        .unwrap_err();
    assert!(is_invalid_credentials(&e), "{e:?}");
    assert!(elsewhere.account().get().is_ok());
    assert!(
        here.account()
            .update_password("short", "password-a")
            .is_err()
    );

    here.account()
        .update_password("password-new", "password-a")
        .unwrap();
    assert!(
        here.account().get().is_ok(),
        "the client's own session stays"
    );
    assert!(elsewhere.account().get().is_err());
    assert!(backend.account().get().is_err());
    assert!(
        db.client()
            .account()
            .create_email_password_session("a@example.com", "password-a")
            .is_err()
    );
    let again = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-new")
        .unwrap();
    // Set by key: every session ends.
    db.root()
        .users()
        .update_password("user-a", "password-key")
        .unwrap();
    assert!(here.account().get().is_err());
    assert!(db.client().set_session(&again.secret).is_err());
}

#[test]
fn wrong_current_passwords_are_throttled_as_sign_ins() {
    let db = setup();
    let a = common::sign_in(&db, "a");
    for _ in 0..3 {
        let e = a
            .account()
            .update_password("password-new", "guess-1234")
            .unwrap_err();
        assert!(is_invalid_credentials(&e), "{e:?}");
    }
    // The limit is reached: even the right password waits, and sign-ins for the email too.
    let e = a
        .account()
        .update_password("password-new", "password-a")
        .unwrap_err();
    assert!(matches!(e, Error::TooManyRequests(_)), "{e:?}");
    let e = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap_err();
    assert!(matches!(e, Error::TooManyRequests(_)), "{e:?}");
}

#[test]
fn changing_users_needs_the_users_write_scope() {
    let db = setup();
    let read_only = db.root().keys().create("ro", &[Scope::UsersRead]).unwrap();
    let client = db.client().set_key(&read_only.secret).unwrap();
    assert!(client.users().update_name("user-a", "X").is_err());
    assert!(
        client
            .users()
            .update_email("user-a", "x@example.com")
            .is_err()
    );
    assert!(
        client
            .users()
            .update_password("user-a", "password-x")
            .is_err()
    );
    assert_eq!(
        db.root().users().get("user-a").unwrap().email,
        "a@example.com"
    );
}

/// Red-team round 2: sign-ins with the old password racing a password change. Every
/// session they made must be dead once the change has returned (the change ends the
/// sessions it finds; a sign-in that checked the old password before it and writes its
/// session after it must be refused).
#[test]
fn no_sign_in_with_the_old_password_outlives_the_change() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut survivors = 0;
    for round in 0..20 {
        let db = setup_unthrottled();
        let stop = Arc::new(AtomicBool::new(false));
        let signers: Vec<_> = (0..2)
            .map(|_| {
                let db = db.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut secrets = Vec::new();
                    while !stop.load(Ordering::Acquire) {
                        if let Ok(s) = db
                            .client()
                            .account()
                            .create_email_password_session("a@example.com", "password-a")
                        {
                            secrets.push(s.secret);
                        }
                    }
                    secrets
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(5 + round % 7));
        let password = format!("password-new-{round}");
        if round % 2 == 0 {
            db.root()
                .users()
                .update_password("user-a", &password)
                .unwrap();
        } else {
            common::sign_in(&db, "a")
                .account()
                .update_password(&password, "password-a")
                .unwrap();
        }
        stop.store(true, Ordering::Release);
        for signer in signers {
            for secret in signer.join().unwrap() {
                if let Ok(client) = db.client().set_session(&secret)
                    && client.account().get().is_ok()
                {
                    survivors += 1;
                }
            }
        }
    }
    assert_eq!(
        survivors, 0,
        "sessions made with the old password outlived the change"
    );
}

/// The seed store without a sign-in limit, for tests that sign in many times.
fn setup_unthrottled() -> Db {
    let (options, _clock) = common::test_options();
    let db =
        Db::temporary_with(options.sign_in_limit(1_000_000, time::Duration::minutes(5))).unwrap();
    common::seed(&db);
    db
}

/// Red-team round 2: an email that only looks like another (invisible characters,
/// lookalike letters) is refused for new and changed accounts.
#[test]
fn new_emails_are_ascii() {
    let db = setup();
    let a = common::sign_in(&db, "a");
    for email in [
        "b@example.com\u{200b}",
        "\u{131}@example.com",
        "\u{ff42}@example.com",
        "b@exampl\u{217c}.com",
    ] {
        let e = a.account().update_email(email, "password-a").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{email:?}: {e:?}");
        let e = db
            .client()
            .account()
            .create("user-x", email, "password-x", None)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{email:?}: {e:?}");
        assert!(db.root().users().update_email("user-b", email).is_err());
    }
    assert_eq!(a.account().get().unwrap().email, "a@example.com");
}
