//! `--live N,N,...`: write latency with N live subscriptions (one per user), and the
//! delay from a write's start to its event reaching the subscriber's thread.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use permdb::{CollectionSpec, Db, Event, Permission, Role, Scope};
use serde_json::json;

use crate::peers::permdb_options;

/// Percentile `p` (0 to 1) of `v`, in µs.
fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

/// One row: `subscribers` users, each watching the collection; `writes` single creates,
/// each readable by one user (user 0, whose subscription a thread drains), and batches
/// of 1,000 creates spread over every user.
pub fn run(dir: &Path, subscribers: u32, writes: u32) -> serde_json::Value {
    let _ = std::fs::remove_dir_all(dir);
    let db = Db::open_with(dir, permdb_options()).unwrap();
    let root = db.root();
    root.schemas().create("db", "Database").unwrap();
    root.schema("db")
        .collections()
        .create(CollectionSpec::new("docs", "Docs").document_security(true))
        .unwrap();
    let coll = root.schema("db").collection("docs");
    let key = root
        .keys()
        .create("live", &[Scope::UsersRead, Scope::DocumentsRead])
        .unwrap();
    let by_key = db.client().set_key(&key.secret).unwrap();
    let users = subscribers.max(1);
    let started = Instant::now();
    let mut subs = Vec::new();
    for u in 0..users {
        let id = format!("u{u}");
        root.users()
            .create(&id, &format!("{id}@example.com"), "password-u", None)
            .unwrap();
        if u < subscribers {
            let client = by_key.impersonate(&id).unwrap();
            subs.push(client.schema("db").collection("docs").watch(&[]).unwrap());
        }
        if u > 0 && u % 2000 == 0 {
            eprintln!(
                "   {u} of {users} users subscribed ({:.0?})",
                started.elapsed()
            );
        }
    }
    // User 0's subscription is drained by a thread that notes when each event arrives;
    // the others are drained after each batch so that none lags.
    let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = (subscribers > 0).then(|| {
        let first = subs.remove(0);
        let (sent, delays, stop) = (sent.clone(), delays.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let Some(event) = first.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let at = Instant::now();
                if let Event::Created { .. } = event
                    && let Some(t) = sent.lock().unwrap().pop_front()
                {
                    delays.lock().unwrap().push(at - t);
                }
            }
        })
    });
    let mut latencies = Vec::new();
    for i in 0..writes {
        let start = Instant::now();
        if subscribers > 0 {
            sent.lock().unwrap().push_back(start);
        }
        coll.create(
            &format!("s{i}"),
            json!({"n": i}),
            Some(vec![Permission::read(Role::user("u0"))]),
        )
        .unwrap();
        latencies.push(start.elapsed());
    }
    let batches = 5u32;
    let batch_start = Instant::now();
    for b in 0..batches {
        let docs: Vec<(String, serde_json::Value, Option<Vec<Permission>>)> = (0..1000)
            .map(|i| {
                let owner = format!("u{}", (b * 1000 + i) % users);
                (
                    format!("b{b}-{i}"),
                    json!({"n": i}),
                    Some(vec![Permission::read(Role::user(owner))]),
                )
            })
            .collect();
        coll.create_many(docs.iter().map(|(id, v, p)| (id.as_str(), v, p.clone())))
            .unwrap();
        for s in &subs {
            while s.try_recv().is_some() {}
        }
    }
    let batched = f64::from(batches * 1000) / batch_start.elapsed().as_secs_f64();
    let visits = db.stats().unwrap().watch_visits;
    stop.store(true, Ordering::Release);
    if let Some(w) = watcher {
        w.join().unwrap();
    }
    drop((coll, subs, by_key, root, db));
    let mut delays = delays.lock().unwrap().clone();
    let row = json!({
        "subscribers": subscribers,
        "single_create_median_us": percentile(&mut latencies, 0.5),
        "single_create_p99_us": percentile(&mut latencies, 0.99),
        "batched_insert_docs_per_s": batched,
        "delivery_median_us": (!delays.is_empty()).then(|| percentile(&mut delays, 0.5)),
        "delivery_p99_us": (!delays.is_empty()).then(|| percentile(&mut delays, 0.99)),
        "subscription_visits": visits,
    });
    let _ = std::fs::remove_dir_all(dir);
    row
}
