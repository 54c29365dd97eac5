//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;

use permdb::{
    Client, Collection, CollectionSpec, Db, Durability, ManualClock, Options, PasswordHashing,
    Permission, Role, StorageEngine,
};
use time::OffsetDateTime;

/// Creates schema `schema` (if missing) and the collection `spec` describes in it;
/// returns the root client's handle on the collection.
pub fn create_collection(db: &Db, schema: &str, spec: CollectionSpec) -> Collection {
    let root = db.root();
    if root.schemas().get(schema).is_err() {
        root.schemas().create(schema, schema).unwrap();
    }
    let id = root.schema(schema).collections().create(spec).unwrap().id;
    root.schema(schema).collection(&id)
}

/// The storage engine the tests run on: `PERMDB_TEST_BACKEND=redb` for redb, sled
/// without it (`.ci/run` runs the suite on both).
pub fn engine() -> StorageEngine {
    match std::env::var("PERMDB_TEST_BACKEND").as_deref() {
        Ok("redb") => StorageEngine::Redb,
        Ok("sled") | Err(_) => StorageEngine::Sled,
        Ok(other) => panic!("PERMDB_TEST_BACKEND={other}: sled or redb"),
    }
}

/// Default options on the tests' storage engine ([`engine`]).
pub fn options() -> Options {
    Options::new().backend(engine())
}

/// A temporary store on the tests' storage engine, as `Db::temporary` makes one.
pub fn temporary() -> permdb::Result<Db> {
    Db::temporary_with(options().durability(Durability::Periodic { every_ms: 1000 }))
}

/// Options with a manual clock at 2024-01-01 and cheap password hashing (tests only).
pub fn test_options() -> (Options, ManualClock) {
    let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_704_067_200).unwrap());
    let options = options()
        .clock(Arc::new(clock.clone()))
        .password_hashing(PasswordHashing {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        });
    (options, clock)
}

/// The seed scenario's store: `db/birthdays`, users user-a, user-b, user-c with
/// passwords `password-a` ..., one document each readable by its user.
pub fn seed(db: &Db) {
    let spec = CollectionSpec::new("birthdays", "Birthdays")
        .permissions([Permission::create(Role::users())])
        .document_security(true);
    let birthdays = create_collection(db, "db", spec);
    for (id, name, day, user) in [
        ("doc1", "Kevin", "2012-02-03", "user-a"),
        ("doc2", "Laura", "1999-09-22", "user-b"),
        ("doc3", "Bob", "1982-05-11", "user-c"),
    ] {
        let letter = user.trim_start_matches("user-");
        db.client()
            .account()
            .create(
                user,
                &format!("{letter}@example.com"),
                &format!("password-{letter}"),
                None,
            )
            .unwrap();
        let perms = vec![Permission::read(Role::user(user))];
        birthdays
            .create(
                id,
                serde_json::json!({"name": name, "birthday": day}),
                Some(perms),
            )
            .unwrap();
    }
}

/// A client signed in as `user-x` through email and password.
pub fn sign_in(db: &Db, letter: &str) -> Client {
    let session = db
        .client()
        .account()
        .create_email_password_session(
            &format!("{letter}@example.com"),
            &format!("password-{letter}"),
        )
        .unwrap();
    db.client().set_session(&session.secret).unwrap()
}

/// splitmix64: a seeded generator whose sequence is the same in every process and run
/// (crash rounds rely on the child and the parent agreeing on it).
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `open` again while it fails because the store's directory is still locked: sled
/// releases its lock from a background thread some time after the last handle drops, so
/// reopening at once can fail under load. Gives up after 10 s with the last error.
pub fn when_unlocked<T, E: std::fmt::Display>(
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
