//! `--writes ROUNDS`: the cost of single writes and batches with no subscribers, on a fresh
//! store each round: the figures README compares across commits (the same rounds built
//! against another commit's library).

use std::time::Instant;

use permdb::{CollectionSpec, Db, Durability, Options, PasswordHashing, Permission, Role};
use serde_json::json;

/// `rounds` rounds of 3,000 single creates, updates and deletes and 20 batches of 1,000.
pub fn run(rounds: u32) {
    for round in 0..rounds {
        let dir = std::env::temp_dir().join(format!("wc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = Options::new()
            .durability(Durability::Periodic { every_ms: 500 })
            .password_hashing(PasswordHashing {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            });
        let db = Db::open_with(&dir, opts).unwrap();
        let root = db.root();
        root.schemas().create("db", "Db").unwrap();
        root.schema("db")
            .collections()
            .create(CollectionSpec::new("docs", "Docs").document_security(true))
            .unwrap();
        let c = root.schema("db").collection("docs");
        let t = Instant::now();
        for i in 0..3000 {
            c.create(
                &format!("s{i}"),
                json!({"n": i, "name": "some text"}),
                Some(vec![Permission::read(Role::user(format!("u{}", i % 50)))]),
            )
            .unwrap();
        }
        let single = t.elapsed().as_secs_f64() * 1e6 / 3000.0;
        let t = Instant::now();
        for b in 0..20 {
            let docs: Vec<(String, serde_json::Value, Option<Vec<Permission>>)> = (0..1000)
                .map(|i| {
                    (
                        format!("b{b}-{i}"),
                        json!({"n": i, "name": "some text"}),
                        Some(vec![Permission::read(Role::user(format!("u{}", i % 50)))]),
                    )
                })
                .collect();
            c.create_many(docs.iter().map(|(id, v, p)| (id.as_str(), v, p.clone())))
                .unwrap();
        }
        let batched = 20_000.0 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for i in 0..3000 {
            c.update(&format!("s{i}"), json!({"n": i + 1}), None)
                .unwrap();
        }
        let update = t.elapsed().as_secs_f64() * 1e6 / 3000.0;
        let t = Instant::now();
        for i in 0..3000 {
            c.delete(&format!("s{i}")).unwrap();
        }
        let delete = t.elapsed().as_secs_f64() * 1e6 / 3000.0;
        println!(
            "round {round}: create {single:.1} µs, update {update:.1} µs, delete {delete:.1} µs, batched {batched:.0} docs/s"
        );
        drop((c, root, db));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
