//! Refused sign-ins: an unknown email and a wrong password must cost the same, with the
//! production password hashing (Argon2id, 19 MiB, 2 passes), from the first request after
//! a store opens as well as later. Compare the pairs' medians; they should be within noise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness"
)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use permdb::{Db, Durability, Error, Options};

/// A fresh store with one user, `a@example.com`, and no limit on failed sign-ins.
fn store() -> Db {
    let options = Options::new()
        .durability(Durability::Periodic { every_ms: 1000 })
        .sign_in_limit(u32::MAX, time::Duration::minutes(15));
    let db = Db::temporary_with(options).unwrap();
    db.client()
        .account()
        .create("user-a", "a@example.com", "password-a", None)
        .unwrap();
    db
}

fn refused(db: &Db, email: &str) {
    let r = db
        .client()
        .account()
        .create_email_password_session(email, "wrong password");
    assert!(matches!(r, Err(Error::Unauthorized { .. })), "{r:?}");
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign-in refused");
    g.sample_size(30);
    // The first sign-in after opening: each iteration gets a store of its own.
    for (name, email) in [
        ("first after open, wrong password", "a@example.com"),
        ("first after open, unknown email", "nobody@example.com"),
    ] {
        g.bench_function(name, |b| {
            // The store is returned, so that closing it is not timed.
            b.iter_batched(
                store,
                |db| {
                    refused(&db, email);
                    db
                },
                BatchSize::PerIteration,
            );
        });
    }
    let db = store();
    for (name, email) in [
        ("later, wrong password", "a@example.com"),
        ("later, unknown email", "nobody@example.com"),
    ] {
        g.bench_function(name, |b| b.iter(|| refused(&db, email)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
