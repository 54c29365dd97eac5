//! Single-operation benchmarks on one 100,000-document collection: a user's first
//! page beside root's page (no permission work) on the same data, get, count and inserts.
//! The full comparison against peers is the bench runner's job (a later issue).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness"
)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use permdb::{Collection, CollectionSpec, Db, Durability, Options, Permission, Query, Role};
use serde_json::json;

const DOCS: u32 = 100_000;
const USERS: u32 = 10_000;

/// Each document readable by one of 10,000 users; every tenth also by `any`.
fn setup() -> (Db, Collection) {
    let db = Db::temporary_with(Options::new().durability(Durability::Periodic { every_ms: 1000 }))
        .unwrap();
    let root = db.root();
    root.schemas().create("s", "S").unwrap();
    root.schema("s")
        .collections()
        .create(CollectionSpec::new("c", "C").document_security(true))
        .unwrap();
    let coll = root.schema("s").collection("c");
    let ids: Vec<u32> = (0..DOCS).collect();
    for chunk in ids.chunks(10_000) {
        coll.create_many(chunk.iter().map(|&i| {
            let mut perms = vec![Permission::read(Role::user(format!("u{}", i % USERS)))];
            if i % 10 == 0 {
                perms.push(Permission::read(Role::any()));
            }
            (
                format!("d{i}"),
                json!({"i": i, "name": format!("name {i}")}),
                Some(perms),
            )
        }))
        .unwrap();
    }
    (db, coll)
}

fn bench(c: &mut Criterion) {
    let (db, root_coll) = setup();
    let user = db
        .root()
        .impersonate("u42")
        .unwrap()
        .schema("s")
        .collection("c");
    let page = [Query::limit(25)];

    let mut g = c.benchmark_group("first_page_100k");
    g.bench_function(BenchmarkId::new("root", "limit25"), |b| {
        b.iter(|| root_coll.find(&page).unwrap())
    });
    g.bench_function(BenchmarkId::new("user", "limit25"), |b| {
        b.iter(|| user.find(&page).unwrap())
    });
    g.bench_function(BenchmarkId::new("user_count", "all"), |b| {
        b.iter(|| user.count(&[]).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("single_ops_100k");
    g.bench_function("get_root", |b| b.iter(|| root_coll.get("d4242").unwrap()));
    g.bench_function("get_user", |b| b.iter(|| user.get("d42").unwrap()));
    let mut n = 0u64;
    g.bench_function("create_one_periodic_flush", |b| {
        b.iter(|| {
            n += 1;
            root_coll
                .create(
                    &format!("new{n}"),
                    json!({"i": n}),
                    Some(vec![Permission::read(Role::any())]),
                )
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
