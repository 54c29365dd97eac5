//! The benchmark runner of the peers issue: permdb beside Appwrite's design on SQLite
//! and a hand-written sled scan, on the same seeded data, in one run.
//!
//! `cargo run --release -p permdb-bench -- --docs 10000,100000,1000000 [--profiles P1,P2,P3,P4]
//!  [--backends sled,redb] [--peers sqlite,sled] [--users 20] [--out target/bench]`, or
//! `cargo run --release -p permdb-bench -- --live 0,100,10000 [writes]` (live subscriptions),
//! or `cargo run --release -p permdb-bench -- --writes 5` (single writes and batches).
//!
//! Stores are cached under `<out>/data`, so a rerun does not rebuild them. Prints a
//! markdown table per size and profile, writes `<out>/results.json` and `<out>/page-<P>.svg`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness"
)]

mod data;
mod live;
mod peers;
mod report;
mod writes;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use data::{Profile, sample_users};
use peers::{Ask, permdb_docs, permdb_filter, permdb_queries};
use permdb::{Db, Durability, Query, StorageEngine};
use report::Report;
use serde_json::json;

/// permdb's benchmark runner: first pages, counts, gets, inserts, opens, disk and memory,
/// for the visibility profiles P1 to P4 at each size, on sled and redb, beside Appwrite's
/// design on SQLite and a hand-written sled scan, on the same seeded data.
#[derive(clap::Parser)]
#[command(name = "bench", after_help = MODES)]
struct Cli {
    /// Collection sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    docs: Vec<u32>,
    /// Profiles, comma-separated: P1 (each document readable by one user), P2 (P1, 10%
    /// by anyone, one team each), P3 (P2 with an indexed filter matching 1%), P4 (P2,
    /// users in 50 teams).
    #[arg(long, value_delimiter = ',', default_value = "P1,P2,P3,P4", value_parser = parse_profile)]
    profiles: Vec<Profile>,
    /// permdb's storage engines, comma-separated: sled, redb.
    #[arg(long, value_delimiter = ',', default_value = "sled,redb", value_parser = parse_backend)]
    backends: Vec<StorageEngine>,
    /// Peers, comma-separated: sqlite, sled, or none.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,sled",
          value_parser = ["sqlite", "sled", "none"])]
    peers: Vec<String>,
    /// Users sampled per profile.
    #[arg(long, default_value_t = 20)]
    users: u32,
    /// Where stores (under data/), results.json and the charts go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Profiling: ask first pages as USERS users for SECONDS a figure on the store in DIR
    /// (filtered on CATEGORY when given), then the same right after writes.
    #[arg(long, num_args = 3..=4, value_names = ["DIR", "USERS", "SECONDS", "CATEGORY"])]
    page_loop: Option<Vec<String>>,
    /// Draw DIR/page-P*.svg again from DIR/results.json, and stop.
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
    /// Single writes and batches with no subscribers, ROUNDS fresh stores (default 3).
    #[arg(long, num_args = 0..=1, value_name = "ROUNDS")]
    writes: Option<Option<u32>>,
    /// Write and delivery latency with N live subscriptions, for each N (comma-separated),
    /// then optionally the number of writes (default 2,000).
    #[arg(long, num_args = 1..=2, value_names = ["N,N,...", "WRITES"])]
    live: Option<Vec<String>>,
    /// Internal: the resident memory of a process that opens DIR and asks USERS pages.
    #[arg(long, num_args = 2, value_names = ["DIR", "USERS"], hide = true)]
    rss_probe: Option<Vec<String>>,
}

/// The other modes, under `--help`.
const MODES: &str = "Stores are cached under <out>/data, so a rerun does not rebuild them. \
Prints a markdown table per size and profile, writes <out>/results.json and <out>/page-<P>.svg. \
Other modes: --page-loop (profiling), --charts, --writes, --live (each stops after its own work).";

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("{s:?}: P1, P2, P3 or P4"))
}

fn parse_backend(s: &str) -> Result<StorageEngine, String> {
    match s {
        "sled" => Ok(StorageEngine::Sled),
        "redb" => Ok(StorageEngine::Redb),
        other => Err(format!("{other:?}: sled or redb")),
    }
}

struct Args {
    docs: Vec<u32>,
    backends: Vec<StorageEngine>,
    profiles: Vec<Profile>,
    sqlite: bool,
    sled: bool,
    users: u32,
    out: PathBuf,
}

impl From<Cli> for Args {
    fn from(cli: Cli) -> Args {
        Args {
            docs: cli.docs,
            backends: cli.backends,
            profiles: cli.profiles,
            sqlite: cli.peers.iter().any(|p| p == "sqlite"),
            sled: cli.peers.iter().any(|p| p == "sled"),
            users: cli.users,
            out: cli.out,
        }
    }
}

/// Median of per-call times in µs, calling `f` round-robin over `asks` until `budget`
/// is spent (at least once per ask, at most 50 rounds).
fn measure<T>(asks: &[T], budget: Duration, f: impl FnMut(usize, &T)) -> f64 {
    measure_prepared(asks, budget, |_| {}, f)
}

/// As [`measure`], calling `prepare` untimed before each call, with the ask's index.
fn measure_prepared<T>(
    asks: &[T],
    budget: Duration,
    mut prepare: impl FnMut(usize),
    mut f: impl FnMut(usize, &T),
) -> f64 {
    let start = Instant::now();
    let mut samples = Vec::new();
    'rounds: for _ in 0..50 {
        for (i, a) in asks.iter().enumerate() {
            prepare(i);
            let t = Instant::now();
            f(i, a);
            samples.push(t.elapsed().as_secs_f64() * 1e6);
            if start.elapsed() > budget && samples.len() >= asks.len() {
                break 'rounds;
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The files under `path`: the bytes they take on disk (allocated blocks: a file grown
/// by `set_len` and not written through takes less than its length), and their lengths.
fn dir_sizes(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let of = |m: std::fs::Metadata| (m.blocks() * 512, m.len());
    match std::fs::read_dir(path) {
        Ok(entries) => entries
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    dir_sizes(&p)
                } else {
                    e.metadata().map(of).unwrap_or((0, 0))
                }
            })
            .fold((0, 0), |(a, l), (b, m)| (a + b, l + m)),
        Err(_) => std::fs::metadata(path).map(of).unwrap_or((0, 0)),
    }
}

/// Bytes the files under `path` take on disk.
fn dir_bytes(path: &Path) -> u64 {
    dir_sizes(path).0
}

/// VmRSS of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Child mode: open a permdb store, query as the sampled users, print RSS before and after.
fn rss_probe(dir: &str, users: u32) {
    let before = rss_bytes();
    let db = Db::open_with(dir, peers::permdb_options()).unwrap();
    for u in sample_users(users) {
        let c = db.root().impersonate(&format!("u{u}")).unwrap();
        std::hint::black_box(permdb_docs(&c).find(&[Query::limit(25)]).unwrap());
        std::hint::black_box(permdb_docs(&c).count(&[]).unwrap());
    }
    println!("{before} {}", rss_bytes());
}

/// Profiling mode: open a cached permdb store and ask the sampled users' first pages
/// (with `equal("category", [category])` when given, as P3), then the same pages with
/// no permission work, each for `seconds`; prints mean µs. Run under `perf record` to
/// see where a page's time goes.
fn page_loop(dir: &str, users: u32, seconds: f64, category: Option<&str>) {
    let db = Db::open_with(dir, peers::permdb_options()).unwrap();
    let clients: Vec<permdb::Client> = sample_users(users)
        .into_iter()
        .map(|u| db.root().impersonate(&format!("u{u}")).unwrap())
        .collect();
    let mut page = vec![Query::limit(25)];
    page.extend(category.map(|c| Query::equal("category", [c])));
    let root = permdb_docs(&db.root());
    let run = |label: &str, f: &dyn Fn(usize)| {
        let start = Instant::now();
        let mut calls = 0usize;
        while start.elapsed().as_secs_f64() < seconds {
            f(calls % clients.len());
            calls += 1;
        }
        let mean = start.elapsed().as_secs_f64() * 1e6 / calls as f64;
        println!("{label}: {calls} calls, mean {mean:.1} µs");
    };
    run("user first page", &|i| {
        std::hint::black_box(permdb_docs(&clients[i]).find(&page).unwrap());
    });
    run("root first page", &|_| {
        std::hint::black_box(root.find(&page).unwrap());
    });
    // Each page right after another user's create (untimed), deleted after it.
    let after_write = |label: &str, f: &dyn Fn(usize)| {
        let (start, mut timed, mut calls) = (Instant::now(), Duration::ZERO, 0usize);
        let perms = || vec![permdb::Permission::read(permdb::Role::user("writer"))];
        while start.elapsed().as_secs_f64() < seconds {
            root.create("loop-w", json!({"n": 0}), Some(perms()))
                .unwrap();
            let t = Instant::now();
            f(calls % clients.len());
            timed += t.elapsed();
            root.delete("loop-w").unwrap();
            calls += 1;
        }
        let mean = timed.as_secs_f64() * 1e6 / calls as f64;
        println!("{label} after a write: {calls} calls, mean {mean:.1} µs");
    };
    after_write("user first page", &|i| {
        std::hint::black_box(permdb_docs(&clients[i]).find(&page).unwrap());
    });
    after_write("root first page", &|_| {
        std::hint::black_box(root.find(&page).unwrap());
    });
}

/// What one engine's run hands the peers: the users asked as and their first pages.
struct PermdbRun {
    asks: Vec<Ask>,
    pages: Vec<Vec<(String, u64)>>,
    open_ms: f64,
    disk_bytes: u64,
}

fn engine_name(engine: StorageEngine) -> &'static str {
    match engine {
        StorageEngine::Redb => "redb",
        _ => "sled",
    }
}

/// permdb's rows on `engine` for one data set: pages, counts (cached, after another
/// user's write, after a write to one of the user's own roles), gets, the fetch floor,
/// its inserts, index size, open time, first query after open, memory and disk.
#[allow(clippy::too_many_lines, reason = "one row after another")]
fn permdb_rows(
    report: &mut Report,
    args: &Args,
    data_dir: &Path,
    engine: StorageEngine,
    profile: Profile,
    n: u32,
    budget: Duration,
) -> PermdbRun {
    let stored = profile.data();
    let p = profile.name();
    let sys = |base: &str| report::system(base, engine);
    // sled's stores keep the name they had before redb joined (a cache reused as is).
    let permdb_dir = match engine {
        StorageEngine::Redb => data_dir.join(format!("permdb-redb-{}-{n}", stored.name())),
        _ => data_dir.join(format!("permdb-{}-{n}", stored.name())),
    };
    let (pdb, built, compacted) = peers::permdb_build(&permdb_dir, stored, n, args.users, engine);
    if let Some((before, after)) = compacted {
        report.extra.push(json!({"docs": n, "profile": stored.name(), "system": sys("permdb"), "engine_file_bytes_before_compact": before, "engine_file_bytes_after_compact": after, "before_compact_bytes_per_doc": before as f64 / f64::from(n)}));
        println!(
            "{}: compacted after the load, {before} -> {after} bytes",
            sys("permdb")
        );
    }
    if let Some(s) = built {
        report.extra.push(json!({"docs": n, "profile": stored.name(), "system": sys("permdb"), "batched_insert_docs_per_s": f64::from(n) / s, "durability": "periodic flush (500 ms), one final flush"}));
    }
    // The users queried as, with the roles permdb computes for them (all systems use these).
    let sampled = sample_users(args.users);
    let users: Vec<(permdb::Client, Ask)> = sampled
        .iter()
        .map(|u| {
            let client = pdb.db.root().impersonate(&format!("u{u}")).unwrap();
            let roles = client.roles().iter().map(ToString::to_string).collect();
            let category = (profile == Profile::P3).then(|| "c7".to_string());
            (client, Ask { roles, category })
        })
        .collect();
    // Each user's first page: ids and `$sequence`s.
    let pages: Vec<Vec<(String, u64)>> = users
        .iter()
        .map(|(c, a)| {
            permdb_docs(c)
                .find(&permdb_queries(a, None))
                .unwrap()
                .documents
                .iter()
                .map(|d| (d.id().to_string(), d.sequence()))
                .collect()
        })
        .collect();
    let key_docs = permdb_docs(&pdb.key);
    report.put(
        n,
        p,
        "first page",
        &sys("permdb user"),
        measure(&users, budget, |_, (c, a)| {
            std::hint::black_box(permdb_docs(c).find(&permdb_queries(a, None)).unwrap());
        }),
    );
    report.put(
        n,
        p,
        "first page",
        &sys("permdb key"),
        measure(&users, budget, |_, (_, a)| {
            std::hint::black_box(key_docs.find(&permdb_queries(a, None)).unwrap());
        }),
    );
    // The fetch floor: the same 25 documents read by sequence in one call, no permission work.
    report.put(
        n,
        p,
        "first page",
        &sys("fetch floor"),
        measure(&users, budget, |i, _| {
            let seqs: Vec<u64> = pages[i].iter().map(|(_, seq)| *seq).collect();
            std::hint::black_box(key_docs.get_by_sequences(&seqs).unwrap());
        }),
    );
    report.put(
        n,
        p,
        "page after cursor",
        &sys("permdb user"),
        measure(&users, budget, |i, (c, a)| {
            if let Some((last, _)) = pages[i].last() {
                std::hint::black_box(permdb_docs(c).find(&permdb_queries(a, Some(last))).unwrap());
            }
        }),
    );
    // "count": the user's role-set memo holds the union's size (a repeated count).
    report.put(
        n,
        p,
        "count",
        &sys("permdb user"),
        measure(&users, budget, |_, (c, a)| {
            std::hint::black_box(permdb_docs(c).count(&permdb_filter(a)).unwrap());
        }),
    );
    // Permission index size: logical bytes on disk, and its values (its size in memory
    // when fully cached), per document; what the sampled users' pages and counts cached,
    // taken before the write rows below (each of those forgets the bitmaps and memo
    // entries of the role it writes to, so after them little is left).
    let stats = pdb.db.stats().unwrap();
    let perm = stats.trees.iter().find(|t| t.tree == "perm_index").unwrap();
    let per_doc = |b: u64| b as f64 / f64::from(n);
    let index_sizes = json!({
        "docs": n, "profile": p, "system": sys("permdb"),
        "perm_index_disk_bytes_per_doc": per_doc(perm.key_bytes + perm.value_bytes + perm.checksum_bytes),
        "perm_index_value_bytes_per_doc": per_doc(perm.value_bytes),
        "cached_bitmap_bytes_per_doc": per_doc(stats.cached_bitmap_bytes),
        // The document cache after the rows above (its bound: `document_cache_bytes`).
        "cached_documents": stats.cached_documents.documents,
        "cached_document_bytes": stats.cached_documents.document_bytes,
    });
    println!("permission index: {index_sizes}");
    report.extra.push(index_sizes);
    {
        let writer = permdb_docs(&pdb.db.root());
        let mut written = 0u64;
        // A document readable by `reader` in place of the one written before.
        let mut write = |reader: permdb::Role| {
            if written > 0 {
                writer.delete(&format!("w{}", written - 1)).unwrap();
            }
            let perms = vec![permdb::Permission::read(reader)];
            writer
                .create(&format!("w{written}"), json!({"n": 0}), Some(perms))
                .unwrap();
            written += 1;
        };
        let other = || permdb::Role::user("writer");
        // After another user's write: this user's cached bitmaps and memo stay.
        report.put(
            n,
            p,
            "first page after a write",
            &sys("permdb user"),
            measure_prepared(
                &users,
                budget,
                |_| write(other()),
                |_, (c, a)| {
                    std::hint::black_box(permdb_docs(c).find(&permdb_queries(a, None)).unwrap());
                },
            ),
        );
        report.put(
            n,
            p,
            "first page after a write",
            &sys("permdb key"),
            measure_prepared(
                &users,
                budget,
                |_| write(other()),
                |_, (_, a)| {
                    std::hint::black_box(key_docs.find(&permdb_queries(a, None)).unwrap());
                },
            ),
        );
        report.put(
            n,
            p,
            "count after another user's write",
            &sys("permdb user"),
            measure_prepared(
                &users,
                budget,
                |_| write(other()),
                |_, (c, a)| {
                    std::hint::black_box(permdb_docs(c).count(&permdb_filter(a)).unwrap());
                },
            ),
        );
        // After a write to the user's own role: its bitmap and the memo of its role set
        // are dropped, so the union of the user's role bitmaps is computed again.
        report.put(
            n,
            p,
            "count after a write to the user's role",
            &sys("permdb user"),
            measure_prepared(
                &users,
                budget,
                |i| write(permdb::Role::user(format!("u{}", sampled[i]))),
                |_, (c, a)| {
                    std::hint::black_box(permdb_docs(c).count(&permdb_filter(a)).unwrap());
                },
            ),
        );
        if written > 0 {
            writer.delete(&format!("w{}", written - 1)).unwrap();
        }
    } // `writer` holds the store open: dropped before the reopen below.
    report.put(
        n,
        p,
        "get by id",
        &sys("permdb user"),
        measure(&users, budget, |i, (c, _)| {
            if let Some((id, _)) = pages[i].first() {
                std::hint::black_box(permdb_docs(c).get(id).unwrap());
            }
        }),
    );
    let asks: Vec<Ask> = users.into_iter().map(|(_, a)| a).collect();
    drop((key_docs, pdb));
    // Open time of the existing store (the median of `OPENS` opens after a clean close:
    // one open is about a millisecond on redb, within this machine's noise), and the
    // first query after the first open (cold caches).
    let mut opens = Vec::with_capacity(OPENS);
    let mut cold_ms = 0.0;
    for round in 0..OPENS {
        let t = Instant::now();
        let db = Db::open_with(&permdb_dir, peers::permdb_options()).unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1e3);
        if round == 0 {
            let t = Instant::now();
            let first = db.root().impersonate(&format!("u{}", sampled[0])).unwrap();
            std::hint::black_box(permdb_docs(&first).find(&[Query::limit(25)]).unwrap());
            cold_ms = t.elapsed().as_secs_f64() * 1e3;
        }
    }
    opens.sort_by(f64::total_cmp);
    let open_ms = opens[OPENS / 2];
    // The same first pages and fetches with the document cache off: every document read
    // from the store and decoded (warm in the engine's page cache), as before the cache.
    {
        let db =
            Db::open_with(&permdb_dir, peers::permdb_options().document_cache_bytes(0)).unwrap();
        let key = db
            .root()
            .keys()
            .create("bench", &[permdb::Scope::DocumentsRead])
            .unwrap();
        let key_docs = permdb_docs(&db.client().set_key(&key.secret).unwrap());
        let users: Vec<permdb::Client> = sampled
            .iter()
            .map(|u| db.root().impersonate(&format!("u{u}")).unwrap())
            .collect();
        let op = "first page, document cache off";
        report.put(
            n,
            p,
            op,
            &sys("permdb user"),
            measure(&asks, budget, |i, a| {
                std::hint::black_box(
                    permdb_docs(&users[i])
                        .find(&permdb_queries(a, None))
                        .unwrap(),
                );
            }),
        );
        report.put(
            n,
            p,
            op,
            &sys("permdb key"),
            measure(&asks, budget, |_, a| {
                std::hint::black_box(key_docs.find(&permdb_queries(a, None)).unwrap());
            }),
        );
        report.put(
            n,
            p,
            op,
            &sys("fetch floor"),
            measure(&asks, budget, |i, _| {
                let seqs: Vec<u64> = pages[i].iter().map(|(_, seq)| *seq).collect();
                std::hint::black_box(key_docs.get_by_sequences(&seqs).unwrap());
            }),
        );
        assert_eq!(db.cache_stats().documents, 0, "the cache is off");
    }
    // Resident memory of a fresh process that opens the store and queries as the users.
    let probe = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--rss-probe",
            &permdb_dir.display().to_string(),
            &args.users.to_string(),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&probe.stdout);
    let mut parts = out
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let (rss0, rss1) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let rss = json!({"docs": n, "profile": p, "system": sys("permdb"), "rss_growth_bytes_per_doc": rss1.saturating_sub(rss0) as f64 / f64::from(n), "rss_after_bytes": rss1});
    println!("resident memory: {rss}");
    report.extra.push(rss);
    let (disk_bytes, file_len) = dir_sizes(&permdb_dir);
    report.extra.push(json!({"docs": n, "profile": p, "system": sys("permdb"), "open_ms": open_ms, "first_query_after_open_ms": cold_ms, "disk_bytes": disk_bytes, "disk_bytes_per_doc": disk_bytes as f64 / f64::from(n), "file_length_bytes": file_len}));
    println!(
        "{}: open {open_ms:.1} ms, first query after open {cold_ms:.1} ms, disk {disk_bytes} bytes allocated ({file_len} bytes of file length)",
        sys("permdb")
    );
    PermdbRun {
        asks,
        pages,
        open_ms,
        disk_bytes,
    }
}

/// Opens of each store timed for the `open` figure (its median).
const OPENS: usize = 5;

/// `--live`: write and delivery latency with each number of live subscribers.
fn run_live(counts: &[u32], writes: u32) {
    let dir = std::env::temp_dir().join("permdb-bench-live");
    println!(
        "| subscribers | single create median (µs) | p99 (µs) | batched insert (docs/s) | delivery median (µs) | delivery p99 (µs) | subscription visits |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in counts {
        eprintln!("== {n} live subscribers");
        let r = live::run(&dir, n, writes);
        let f = |k: &str| r[k].as_f64().map_or("-".to_string(), |v| format!("{v:.1}"));
        println!(
            "| {n} | {} | {} | {:.0} | {} | {} | {} |",
            f("single_create_median_us"),
            f("single_create_p99_us"),
            r["batched_insert_docs_per_s"].as_f64().unwrap_or(0.0),
            f("delivery_median_us"),
            f("delivery_p99_us"),
            r["subscription_visits"]
        );
        eprintln!("{r}");
    }
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    if let Some(probe) = &cli.rss_probe {
        rss_probe(&probe[0], probe[1].parse().expect("--rss-probe DIR USERS"));
        return;
    }
    if let Some(l) = &cli.page_loop {
        page_loop(
            &l[0],
            l[1].parse()
                .expect("--page-loop DIR USERS SECONDS: USERS is a number"),
            l[2].parse()
                .expect("--page-loop DIR USERS SECONDS: SECONDS is a number"),
            l.get(3).map(String::as_str),
        );
        return;
    }
    if let Some(dir) = &cli.charts {
        // Draw DIR/page-P*.svg again from DIR/results.json.
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        let report = Report::from_json(&results);
        for p in ["P1", "P2", "P3", "P4"] {
            std::fs::write(dir.join(format!("page-{p}.svg")), report.svg(p)).unwrap();
        }
        return;
    }
    if let Some(rounds) = cli.writes {
        writes::run(rounds.unwrap_or(3));
        return;
    }
    if let Some(live_args) = &cli.live {
        // `--live 0,100,10000 [writes]`: write and delivery latency with live subscribers.
        let counts: Vec<u32> = live_args[0]
            .split(',')
            .map(|v| v.parse().expect("--live takes numbers"))
            .collect();
        let writes = live_args.get(1).map_or(2000, |w| {
            w.parse().expect("--live N,N WRITES: WRITES is a number")
        });
        run_live(&counts, writes);
        return;
    }
    let args = Args::from(cli);
    let command = format!(
        "cargo run --release -p permdb-bench -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let data_dir = args.out.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut report = Report::default();
    let budget = Duration::from_millis(1500);
    for &n in &args.docs {
        for profile in args.profiles.clone() {
            let stored = profile.data();
            let tag = format!("{}-{n}", stored.name());
            let p = profile.name();
            // permdb on each engine; the peers answer as the users the first one sampled,
            // with the roles permdb computed for them, and fetch the same first pages.
            let mut sampled = None;
            let mut opens = json!({});
            let mut sizes = json!({});
            for &engine in &args.backends {
                eprintln!(
                    "== {p} at {n} on {}: building or reusing stores",
                    engine_name(engine)
                );
                let run = permdb_rows(&mut report, &args, &data_dir, engine, profile, n, budget);
                opens[report::system("permdb", engine)] = json!(run.open_ms);
                sizes[report::system("permdb", engine)] = json!(run.disk_bytes);
                sampled.get_or_insert((run.asks, run.pages));
            }
            let Some((asks, pages)) = sampled else {
                continue;
            };
            let sqlite = args.sqlite.then(|| {
                let (c, built) = peers::sqlite_build(&data_dir.join(format!("sqlite-{tag}.db")), stored, n);
                if let Some(s) = built {
                    report.extra.push(json!({"docs": n, "profile": stored.name(), "system": "sqlite", "batched_insert_docs_per_s": f64::from(n) / s, "durability": "WAL, synchronous=NORMAL, 10,000 rows a transaction"}));
                }
                c
            });
            let sled = args.sled.then(|| {
                let (db, built) = peers::sled_build(&data_dir.join(format!("sled-{tag}")), stored, n);
                if let Some(s) = built {
                    report.extra.push(json!({"docs": n, "profile": stored.name(), "system": "sled scan", "batched_insert_docs_per_s": f64::from(n) / s, "durability": "sled batches, one final flush"}));
                }
                db
            });
            if let Some(c) = &sqlite {
                report.put(
                    n,
                    p,
                    "first page",
                    "sqlite",
                    measure(&asks, budget, |_, a| {
                        std::hint::black_box(peers::sqlite_page(c, a, None));
                    }),
                );
                let lasts: Vec<Option<i64>> = asks
                    .iter()
                    .map(|a| peers::sqlite_page(c, a, None).1)
                    .collect();
                report.put(
                    n,
                    p,
                    "page after cursor",
                    "sqlite",
                    measure(&asks, budget, |i, a| {
                        std::hint::black_box(peers::sqlite_page(c, a, lasts[i]));
                    }),
                );
                report.put(
                    n,
                    p,
                    "count",
                    "sqlite",
                    measure(&asks, budget, |_, a| {
                        std::hint::black_box(peers::sqlite_count(c, a));
                    }),
                );
                report.put(
                    n,
                    p,
                    "get by id",
                    "sqlite",
                    measure(&asks, budget, |i, a| {
                        if let Some((id, _)) = pages[i].first() {
                            std::hint::black_box(peers::sqlite_get(c, a, id));
                        }
                    }),
                );
            }
            if let Some(db) = &sled {
                report.put(
                    n,
                    p,
                    "first page",
                    "sled scan",
                    measure(&asks, budget, |_, a| {
                        std::hint::black_box(peers::sled_page(db, a, None));
                    }),
                );
                report.put(
                    n,
                    p,
                    "page after cursor",
                    "sled scan",
                    measure(&asks, budget, |i, a| {
                        std::hint::black_box(peers::sled_page(
                            db,
                            a,
                            pages[i].last().map(|(id, _)| id.as_str()),
                        ));
                    }),
                );
                report.put(
                    n,
                    p,
                    "count",
                    "sled scan",
                    measure(&asks, budget, |_, a| {
                        std::hint::black_box(peers::sled_count(db, a));
                    }),
                );
                report.put(
                    n,
                    p,
                    "get by id",
                    "sled scan",
                    measure(&asks, budget, |i, a| {
                        if let Some((id, _)) = pages[i].first() {
                            std::hint::black_box(peers::sled_get(db, a, id));
                        }
                    }),
                );
            }
            drop((sled, sqlite));
            // The peers' own open times and sizes, for scale.
            if args.sled {
                let t = Instant::now();
                let s = sled::open(data_dir.join(format!("sled-{tag}"))).unwrap();
                opens["sled scan"] = json!(t.elapsed().as_secs_f64() * 1e3);
                drop(s);
                sizes["sled scan"] = json!(dir_bytes(&data_dir.join(format!("sled-{tag}"))));
            }
            if args.sqlite {
                let t = Instant::now();
                let c = peers::sqlite_open(&data_dir.join(format!("sqlite-{tag}.db")));
                // Opening is lazy: read the schema so the file is really opened.
                let tables: i64 = c
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                    .unwrap();
                std::hint::black_box(tables);
                opens["sqlite"] = json!(t.elapsed().as_secs_f64() * 1e3);
                sizes["sqlite"] = json!(dir_bytes(&data_dir.join(format!("sqlite-{tag}.db"))));
            }
            report
                .extra
                .push(json!({"docs": n, "profile": p, "open_ms": opens, "disk_bytes": sizes}));
            println!("{}", report.markdown(n, p));
            println!("open ms {opens}; disk bytes {sizes}");
        }
    }
    // Single inserts, each its own write, beside SQLite's.
    let tmp = args.out.join("single");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut singles = json!({});
    for &engine in &args.backends {
        let name = engine_name(engine);
        let periodic = peers::permdb_single_inserts(
            &tmp.join(format!("permdb-{name}-periodic")),
            Durability::Periodic { every_ms: 500 },
            2000,
            engine,
        );
        let immediate = peers::permdb_single_inserts(
            &tmp.join(format!("permdb-{name}-immediate")),
            Durability::Immediate,
            200,
            engine,
        );
        singles[format!("permdb_{name}_periodic_us")] = json!(periodic * 1e6);
        singles[format!("permdb_{name}_immediate_fsync_us")] = json!(immediate * 1e6);
    }
    if args.sqlite {
        singles["sqlite_normal_us"] =
            json!(peers::sqlite_single_inserts(&tmp.join("sqlite.db"), 2000) * 1e6);
    }
    println!("\nsingle inserts (µs each): {singles}");
    report.extra.push(json!({"single_inserts": singles}));
    for e in &report.extra {
        if e.get("batched_insert_docs_per_s").is_some() {
            println!("batched insert: {e}");
        }
    }
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&report.json(&command)).unwrap(),
    )
    .unwrap();
    for p in &args.profiles {
        std::fs::write(
            args.out.join(format!("page-{}.svg", p.name())),
            report.svg(p.name()),
        )
        .unwrap();
    }
    println!(
        "\nwrote {}/results.json and page-P*.svg",
        args.out.display()
    );
}
