//! Single-operation benchmarks on one 100,000-document collection: a user's first
//! page beside root's page (no permission work) on the same data, a user holding 150
//! roles, an equality filter on a key index, get, count and inserts. The comparison
//! against peers is the bench runner's job (`src/main.rs` of this crate).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness"
)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use permdb::{
    AttributeSpec, Collection, CollectionSpec, Db, Durability, IndexSpec, Options, Permission,
    Query, Role,
};
use serde_json::json;

const DOCS: u32 = 100_000;
const USERS: u32 = 10_000;
const TEAMS: u32 = 100;

/// Each document readable by one of 10,000 users and one of 100 teams; every tenth also
/// by `any`. A key index on `cat` (100 values; `c40`'s 1,000 documents are all readable
/// by `any`). User `many` is in 50 teams, so holds 150 team roles (`team:T`,
/// `team:T/member`, `member:M`).
fn setup() -> (Db, Collection) {
    let db = Db::temporary_with(Options::new().durability(Durability::Periodic { every_ms: 1000 }))
        .unwrap();
    let root = db.root();
    root.schemas().create("s", "S").unwrap();
    root.schema("s")
        .collections()
        .create(CollectionSpec::new("c", "C").document_security(true))
        .unwrap();
    let collections = root.schema("s").collections();
    collections
        .create_attribute("c", AttributeSpec::integer("i"))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("name", 16))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::string("cat", 8))
        .unwrap();
    collections
        .create_index("c", IndexSpec::key("by_cat", ["cat"]))
        .unwrap();
    for t in 0..TEAMS {
        root.teams().create(&format!("t{t}"), "team").unwrap();
    }
    root.users()
        .create("many", "many@example.com", "password-x", None)
        .unwrap();
    for t in 0..TEAMS / 2 {
        root.teams()
            .create_membership(&format!("t{t}"), "many", &["member"])
            .unwrap();
    }
    let coll = root.schema("s").collection("c");
    let ids: Vec<u32> = (0..DOCS).collect();
    for chunk in ids.chunks(10_000) {
        coll.create_many(chunk.iter().map(|&i| {
            let mut perms = vec![
                Permission::read(Role::user(format!("u{}", i % USERS))),
                Permission::read(Role::team(format!("t{}", i % TEAMS))),
            ];
            if i % 10 == 0 {
                perms.push(Permission::read(Role::any()));
            }
            (
                format!("d{i}"),
                json!({"i": i, "name": format!("name {i}"), "cat": format!("c{}", i % 100)}),
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
    let many = db
        .root()
        .impersonate("many")
        .unwrap()
        .schema("s")
        .collection("c");
    let page = [Query::limit(25)];
    let equal = [Query::limit(25), Query::equal("cat", ["c40"])];

    let mut g = c.benchmark_group("first_page_100k");
    g.bench_function(BenchmarkId::new("root", "limit25"), |b| {
        b.iter(|| root_coll.find(&page).unwrap())
    });
    g.bench_function(BenchmarkId::new("user", "limit25"), |b| {
        b.iter(|| user.find(&page).unwrap())
    });
    g.bench_function(BenchmarkId::new("user_150_roles", "limit25"), |b| {
        b.iter(|| many.find(&page).unwrap())
    });
    g.bench_function(BenchmarkId::new("root", "equal_limit25"), |b| {
        b.iter(|| root_coll.find(&equal).unwrap())
    });
    g.bench_function(BenchmarkId::new("user", "equal_limit25"), |b| {
        b.iter(|| user.find(&equal).unwrap())
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
