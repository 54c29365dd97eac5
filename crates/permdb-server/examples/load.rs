//! Throughput of `GET .../documents` (list, limit 25) as a user through the HTTP server,
//! measured with wrk on loopback, beside the same page in-process.
//!
//! ```sh
//! cargo run --release -p permdb-server --example load -- --docs 100000 --seconds 10
//! ```
//!
//! The store (N documents, each readable by one of 1,000 users, every tenth also by
//! `any`) is cached under `target/bench/load-N`. User `u1` signs in with a password and
//! trades the session for a token; wrk sends that token in `X-Appwrite-JWT`. Server and
//! wrk share the machine's cores, so the figure is a floor for a dedicated server.

#![allow(
    clippy::expect_used,
    reason = "a measurement run stops at the first failure"
)]

use std::time::{Duration, Instant};

use permdb::{Client, CollectionSpec, Db, Permission, Query, Role};
use serde_json::json;

const USERS: u32 = 1_000;

/// Throughput of `permdb serve`'s routes under wrk: a user listing 25 of the documents
/// they may read, over HTTP on loopback.
#[derive(clap::Parser)]
struct Args {
    /// Documents in the collection (the store is built once, under target/bench).
    #[arg(long, default_value_t = 100_000)]
    docs: u64,
    /// How long wrk runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// wrk's connections.
    #[arg(long, default_value_t = 16)]
    connections: u64,
}

/// Builds the store, or reopens it when a complete one is cached.
fn store(docs: u64) -> Result<Db, Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(format!("target/bench/load-{docs}"));
    if dir.join("complete").exists()
        && let Ok(db) = Db::open(&dir)
    {
        return Ok(db);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(&dir)?;
    let root = db.root();
    root.schemas().create("db", "Database")?;
    root.schema("db").collections().create(
        CollectionSpec::new("docs", "Docs")
            .permissions([Permission::create(Role::users())])
            .document_security(true),
    )?;
    let c = root.schema("db").collection("docs");
    let start = Instant::now();
    for chunk in (0..docs).collect::<Vec<_>>().chunks(5_000) {
        let batch = chunk.iter().map(|i| {
            let mut perms = vec![Permission::read(Role::user(format!(
                "u{}",
                i % u64::from(USERS)
            )))];
            if i % 10 == 0 {
                perms.push(Permission::read(Role::any()));
            }
            (
                format!("d{i:08}"),
                json!({"n": i, "name": format!("doc {i}")}),
                Some(perms),
            )
        });
        c.create_many(batch)?;
        // A line per 5%, with the rate: a large store takes minutes to build.
        let done = chunk.last().map_or(0, |i| i + 1);
        let step = (docs / 20).max(1);
        if done % step < 5_000 || done == docs {
            eprintln!(
                "building: {done} of {docs} ({}%), {:.0} docs/s",
                done * 100 / docs.max(1),
                done as f64 / start.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    db.client()
        .account()
        .create("u1", "u1@example.com", "password-u1", None)?;
    db.flush()?;
    std::fs::write(dir.join("complete"), b"")?;
    println!(
        "built {docs} documents in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(db)
}

/// Median and rate of `op` run for `seconds`.
fn measure(seconds: f64, mut op: impl FnMut()) -> (f64, f64) {
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        op();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    (median, times.len() as f64 / start.elapsed().as_secs_f64())
}

fn page(client: &Client) {
    let list = client
        .schema("db")
        .collection("docs")
        .find(&[Query::limit(25)])
        .expect("find");
    assert_eq!(list.documents.len(), 25);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        docs,
        seconds,
        connections,
    } = clap::Parser::parse();
    let db = store(docs)?;
    let session = db
        .client()
        .account()
        .create_email_password_session("u1@example.com", "password-u1")?;
    let jwt = db
        .client()
        .set_session(&session.secret)?
        .account()
        .create_jwt()?
        .jwt;

    // In-process: a held client, and a client made from the token per request (what the
    // server does before the page).
    let held = db.client().set_jwt(&jwt)?;
    let (held_us, held_rate) = measure(3.0, || page(&held));
    let (per_req_us, per_req_rate) =
        measure(3.0, || page(&db.client().set_jwt(&jwt).expect("jwt")));
    let total = held.schema("db").collection("docs").count(&[])?;
    println!("{docs} documents; u1 may read {total}");
    println!(
        "in-process, held client:          median {held_us:.1} µs, {held_rate:.0} pages/s (one thread)"
    );
    println!(
        "in-process, set_jwt + page:       median {per_req_us:.1} µs, {per_req_rate:.0} pages/s (one thread)"
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!(
        "http://{}/v1/databases/db/collections/docs/documents",
        listener.local_addr()?
    );
    let app = permdb_server::router(db.clone());
    runtime.spawn(async move { axum::serve(listener, app).await });
    std::thread::sleep(Duration::from_millis(200));

    let args = [
        "-t1".to_string(),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        "--latency".into(),
        "-H".into(),
        format!("X-Appwrite-JWT: {jwt}"),
        "-H".into(),
        "X-Appwrite-Project: default".into(),
        url.clone(),
    ];
    println!(
        "wrk -t1 -c{connections} -d{seconds}s --latency -H 'X-Appwrite-JWT: <u1 token>' -H 'X-Appwrite-Project: default' {url}"
    );
    match std::process::Command::new("wrk").args(&args).output() {
        Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Err(e) => println!("wrk not run ({e}); install it (Debian: apt-get install wrk)"),
    }
    Ok(())
}
