//! Token costs beside a bare Ed25519 signature check, in one run: create, verify with
//! the session and user checks (`set_jwt`), verify offline (`TokenVerifier`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use permdb::{Db, Durability, Options, PasswordHashing, TokenVerifier};

fn bench(c: &mut Criterion) {
    let options = Options::new()
        .durability(Durability::Periodic { every_ms: 1000 })
        .password_hashing(PasswordHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        });
    let db = Db::temporary_with(options).unwrap();
    db.client()
        .account()
        .create("user-a", "a@example.com", "password-a", None)
        .unwrap();
    let session = db
        .client()
        .account()
        .create_email_password_session("a@example.com", "password-a")
        .unwrap();
    let alice = db.client().set_session(&session.secret).unwrap();
    let jwt = alice.account().create_jwt().unwrap().jwt;
    let verifier = TokenVerifier::new(&db.root().token_keys().public().unwrap()).unwrap();
    let now = time::OffsetDateTime::now_utc();

    // The same amount of signed data as a token's signing input, under a fresh key.
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let message = vec![0x5au8; 150];
    let signature = key.sign(&message);
    let public = key.verifying_key();

    let mut g = c.benchmark_group("token");
    g.bench_function("ed25519_verify_strict_bare", |b| {
        b.iter(|| public.verify_strict(&message, &signature).unwrap())
    });
    g.bench_function("verify_offline", |b| {
        b.iter(|| verifier.verify(&jwt, now).unwrap())
    });
    g.bench_function("set_jwt_with_session_check", |b| {
        b.iter(|| db.client().set_jwt(&jwt).unwrap())
    });
    g.bench_function("create_jwt", |b| {
        b.iter(|| alice.account().create_jwt().unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
