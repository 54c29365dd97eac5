//! `permdb`: serve a store over Appwrite's REST API, run the seed scenario, inspect a
//! token, create an API key, or run the benchmark runner.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use permdb::{Db, Options, PublicKeys, Scope, StorageEngine, TokenClaims, TokenVerifier};

/// Exit codes, shown under `--help`.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure, with a message on stderr (`permdb: ...`), \
including `verify` finding problems; 2 a usage error (an unknown flag or a missing value). \
Output meant for scripts goes to stdout (`--json` where a script would parse it); progress \
and messages go to stderr.";

#[derive(Parser)]
#[command(
    name = "permdb",
    version,
    about = "An embedded permission engine: tools and server",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a store over HTTP with Appwrite's REST paths under /v1.
    Serve {
        /// The store's directory; it must hold a store unless --create is given.
        #[arg(long)]
        data: PathBuf,
        /// Make a new store in --data when it holds none (without it, a path that holds
        /// no store is refused, so a typo never serves an empty store).
        #[arg(long)]
        create: bool,
        /// Address to listen on; port 0 picks a free one (printed on start).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// The project id tokens are issued for (X-Appwrite-Project).
        #[arg(long, default_value = "default")]
        project: String,
        /// Mark the session cookie Secure (when clients reach the server over TLS).
        #[arg(long)]
        secure_cookies: bool,
        /// Pick the id of every document and user that a request without an API key
        /// creates (such requests must pass "unique()"), so ids cannot be probed.
        #[arg(long)]
        assigned_ids: bool,
        /// Let pages from this origin (scheme://host[:port]) call the server from a
        /// browser, with credentials; repeat for more. Default: no cross-origin access.
        #[arg(long = "cors-origin", value_name = "URL")]
        cors_origins: Vec<String>,
        /// The session cookie's SameSite: strict, lax or none (none, for an app on
        /// another site than the server, also marks it Secure).
        #[arg(long, default_value = "lax")]
        cookie_same_site: String,
        /// The storage engine of a store created here: sled or redb. An existing store
        /// opens with the engine it was made with.
        #[arg(long, default_value = "sled", value_parser = parse_backend)]
        backend: StorageEngine,
        /// The largest request body accepted, in bytes (1 KiB to 1 GiB); larger ones are
        /// answered 413.
        #[arg(long, default_value_t = 4 << 20, value_name = "BYTES",
              value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
        body_limit: u64,
        /// How long a request may run before it is answered 408, in milliseconds (at
        /// least 100). The work of a request answered 408 still finishes: a write may
        /// commit after its client was told it timed out.
        #[arg(long, default_value_t = 30_000, value_name = "MS",
              value_parser = clap::value_parser!(u64).range(100..))]
        timeout_ms: u64,
    },
    /// Run the seed scenario (sign-up, sign-in, token, key, logout, expiry) on a new store.
    Demo {
        /// Where to build the store; a temporary directory when not given.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check a store, changing nothing: every record's checksum, then every index,
    /// counter and id entry of each collection against its documents. Progress on
    /// stderr; exits 1 when problems are found.
    Verify {
        /// The store's directory (it must hold a store).
        #[arg(long)]
        data: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild every index, counter and id entry from the documents, one atomic write per
    /// collection, and print what was wrong before. Progress on stderr.
    Repair {
        /// The store's directory (it must hold a store).
        #[arg(long)]
        data: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Upgrade a store of the previous on-disk format (3) to this build's: every record is
    /// checked and copied into a new store beside it, which then takes its place. The old
    /// store is kept as DIR.format3. Safe to run again after an interruption; a store
    /// already current is left alone. Progress on stderr.
    Upgrade {
        /// The store's directory (it must hold a store, not open elsewhere).
        #[arg(long)]
        data: PathBuf,
    },
    /// Compact a store that is not open: on redb, pack its pages and give the free space
    /// at the end of its file back (each step a crash-safe commit). sled compacts as it
    /// goes: nothing to do. Prints the file's size before and after.
    Compact {
        /// The store's directory (it must hold a store, not open elsewhere).
        #[arg(long)]
        data: PathBuf,
    },
    /// Write a store as a dump (JSON lines, docs/DUMP.md) to stdout or --out: schemas,
    /// collections, documents with permissions, users with password hashes, teams,
    /// memberships, API keys (digests) and token signing keys. The dump holds secrets.
    /// Writes to the store wait while it runs. Progress on stderr.
    Export {
        /// The store's directory (it must hold a store).
        #[arg(long)]
        data: PathBuf,
        /// Write the dump to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read a dump (from stdin or --in) into a new store: across engines and format
    /// versions, or from a backup. Every line is checked; a bad one stops the import,
    /// names its line, and leaves no store. Progress on stderr.
    Import {
        /// The new store's directory (it must not exist, or be empty).
        #[arg(long)]
        data: PathBuf,
        /// Read the dump from this file instead of stdin.
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// The new store's storage engine: sled or redb.
        #[arg(long, default_value = "sled", value_parser = parse_backend)]
        backend: StorageEngine,
    },
    /// Run the benchmark runner (`cargo run --release -p permdb-bench`); needs the source
    /// tree, as the runner and the peers it measures against are a crate of their own.
    Bench {
        /// Arguments for the runner, such as `--docs 10000,100000`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print the store's public token keys as JSON, for `token inspect --public-key` or a
    /// `TokenVerifier` elsewhere (no secret: the signing keys stay in the store). It opens
    /// the store, so stop `serve` first.
    Keys {
        /// The store's directory (it must hold a store).
        #[arg(long)]
        data: PathBuf,
        /// The project id the server issues tokens for (`serve --project`). The keys are
        /// the whole store's; this names the project a verifier checks, so a wrong one
        /// gives keys that verify no token.
        #[arg(long, default_value = "default")]
        project: String,
    },
    /// Print a token's claims without trusting them; with --public-key, verify it too.
    Inspect {
        /// The token text (`pdb1.…`).
        token: String,
        /// A JSON file of the store's public keys (`TokenKeys::public`); verifies the
        /// signature, project and times when given.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key in a store and print its secret (shown once).
    Create {
        /// The store's directory; it must hold a store unless --create is given.
        #[arg(long)]
        data: PathBuf,
        /// Make a new store in --data when it holds none.
        #[arg(long)]
        create: bool,
        /// A name for the key.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, such as `documents.read,documents.write`, or `all`.
        #[arg(long, default_value = "documents.read")]
        scopes: String,
        /// The store's project id.
        #[arg(long, default_value = "default")]
        project: String,
        /// The storage engine of a store created here: sled or redb.
        #[arg(long, default_value = "sled", value_parser = parse_backend)]
        backend: StorageEngine,
        /// Print the key as JSON (`id`, `name`, `secret`, `scopes`) instead of the secret
        /// alone.
        #[arg(long)]
        json: bool,
    },
}

/// Opens the store in `data` with `options`: an existing one, or a new one when `create`
/// is set. A path that holds no store is refused without it, so a typo never makes (and
/// then serves, or holds a key for) an empty store.
///
/// `--create` makes a store only in a missing or empty directory, never among other
/// files (`--create --data ~` must not spread a store over a home directory).
fn open_store(data: &std::path::Path, options: Options, create: bool) -> Result<Db, Failure> {
    if Db::engine_of(data)?.is_none() {
        let mut upgrading = data.components().as_path().as_os_str().to_owned();
        upgrading.push(".upgrading");
        if std::path::Path::new(&upgrading).is_dir() {
            return Err(format!(
                "no store in {0}: an upgrade of it was cut short; `permdb upgrade --data {0}` \
                 finishes it",
                data.display()
            )
            .into());
        }
        if !create {
            return Err(format!(
                "no store in {} (pass --create to make a new one there)",
                data.display()
            )
            .into());
        }
        if std::fs::read_dir(data).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(format!(
                "{} holds other files and no store: --create makes a store only in a new or \
                 empty directory",
                data.display()
            )
            .into());
        }
    }
    Ok(Db::open_with(data, options)?)
}

/// `sled` or `redb`.
fn parse_backend(s: &str) -> Result<StorageEngine, String> {
    match s {
        "sled" => Ok(StorageEngine::Sled),
        "redb" => Ok(StorageEngine::Redb),
        other => Err(format!("{other:?}: sled or redb")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("permdb: {e}");
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

/// `verify` or `repair` (`fix`) of the store in `data`, which must exist: a typo must not
/// check (or create) an empty store.
fn integrity(data: &std::path::Path, json: bool, fix: bool) -> Result<(), Failure> {
    let db = open_store(data, Options::default(), false)?;
    let what = if fix { "repair" } else { "verify" };
    let progress = |p: permdb::IntegrityProgress| {
        eprintln!("{what}: step {}/{}: {}", p.done + 1, p.total, p.step);
    };
    let report = if fix {
        db.repair_with_progress(progress)?
    } else {
        db.verify_with_progress(progress)?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} collection(s), {} document(s): {} problem(s){}",
            report.collections,
            report.documents,
            report.problems,
            if fix && report.problems > 0 {
                " (repaired)"
            } else {
                ""
            }
        );
        for detail in &report.details {
            println!("  {detail}");
        }
    }
    if report.problems > 0 && !fix {
        return Err(format!(
            "{} problem(s) found; `permdb repair` rebuilds the indexes",
            report.problems
        )
        .into());
    }
    Ok(())
}

fn dump_progress(what: &'static str) -> impl FnMut(permdb::DumpProgress) {
    move |p| eprintln!("{what}: {} lines ({})", p.lines, p.step)
}

/// `export` of the store in `data` to `out` (stdout without).
fn export(data: &std::path::Path, out: Option<&std::path::Path>) -> Result<(), Failure> {
    if Db::engine_of(data)?.is_none() {
        return Err(format!("no store in {}", data.display()).into());
    }
    let db = Db::open(data)?;
    let report = match out {
        Some(path) => {
            // The dump holds secrets: readable by its owner only, and never over a file.
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            let file = open
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            let written = db
                .export_with_progress(&file, dump_progress("export"))
                .map_err(Failure::from)
                .and_then(|report| file.sync_all().map(|()| report).map_err(Failure::from));
            if written.is_err() {
                // A dump cut short must not pass for a whole one (nor block a rerun).
                let _ = std::fs::remove_file(path);
            }
            written?
        }
        None => db.export_with_progress(std::io::stdout().lock(), dump_progress("export"))?,
    };
    eprintln!(
        "exported {} lines: {} documents in {} collections, {} users, {} teams",
        report.lines, report.documents, report.collections, report.users, report.teams
    );
    Ok(())
}

/// `import` of a dump from `input` (stdin without) into a new store at `data`.
fn import(
    data: &std::path::Path,
    input: Option<&std::path::Path>,
    backend: StorageEngine,
) -> Result<(), Failure> {
    let options = Options::new().backend(backend);
    let report = match input {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            Db::import_with_progress(
                data,
                &options,
                std::io::BufReader::new(file),
                dump_progress("import"),
            )?
        }
        None => Db::import_with_progress(
            data,
            &options,
            std::io::stdin().lock(),
            dump_progress("import"),
        )?,
    };
    println!(
        "imported {} lines into {}: {} documents in {} collections, {} users, {} teams",
        report.lines,
        data.display(),
        report.documents,
        report.collections,
        report.users,
        report.teams
    );
    Ok(())
}

/// `compact` of the store in `data`.
fn compact(data: &std::path::Path) -> Result<(), Failure> {
    eprintln!("compact: {} ...", data.display());
    let report = Db::compact(data)?;
    match report.bytes {
        Some((before, after)) => println!(
            "compacted {}: {before} bytes before, {after} after ({:.0}%)",
            data.display(),
            after as f64 * 100.0 / before.max(1) as f64
        ),
        None => println!(
            "{} is a sled store: sled compacts as it goes, nothing to do",
            data.display()
        ),
    }
    Ok(())
}

/// `upgrade` of the store in `data`.
fn upgrade(data: &std::path::Path) -> Result<(), Failure> {
    let report = Db::upgrade_with_progress(data, &Options::default(), |p| {
        eprintln!("upgrade: {} records copied ({})", p.records, p.tree);
    })?;
    match &report.kept {
        None => println!(
            "{} is already in format {}: nothing to do",
            data.display(),
            report.to
        ),
        Some(kept) => println!(
            "upgraded {} from format {} to {}: {} records copied, {} re-encoded; the old \
             store is kept in {} (remove it when you no longer need it)",
            data.display(),
            report.from,
            report.to,
            report.records,
            report.recoded,
            kept.display()
        ),
    }
    Ok(())
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve {
            data,
            create,
            addr,
            project,
            secure_cookies,
            assigned_ids,
            cors_origins,
            cookie_same_site,
            backend,
            body_limit,
            timeout_ms,
        } => {
            let mut server = permdb_server::ServerOptions::default()
                .secure_cookies(secure_cookies)
                .same_site(cookie_same_site.parse()?)
                .assigned_ids(assigned_ids)
                .body_limit(usize::try_from(body_limit)?)
                .timeout(std::time::Duration::from_millis(timeout_ms));
            for origin in &cors_origins {
                server = server.cors_origin(origin)?;
            }
            let db = open_store(
                &data,
                Options::new().project(project).backend(backend),
                create,
            )?;
            serve(db, addr, server)
        }
        Command::Demo { data } => match data {
            Some(dir) => {
                permdb::demo::seed_scenario(&dir, &mut std::io::stdout())?;
                println!("store left in {}", dir.display());
                Ok(())
            }
            None => {
                let dir = std::env::temp_dir().join(format!("permdb-demo-{}", std::process::id()));
                let result = permdb::demo::seed_scenario(&dir, &mut std::io::stdout());
                let _ = std::fs::remove_dir_all(&dir);
                result
            }
        },
        Command::Token {
            command: TokenCommand::Inspect { token, public_key },
        } => inspect(&token, public_key),
        Command::Token {
            command: TokenCommand::Keys { data, project },
        } => {
            let db = open_store(&data, Options::new().project(project), false)?;
            let keys = db.root().token_keys().public()?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
            Ok(())
        }
        Command::Verify { data, json } => integrity(&data, json, false),
        Command::Repair { data, json } => integrity(&data, json, true),
        Command::Upgrade { data } => upgrade(&data),
        Command::Compact { data } => compact(&data),
        Command::Export { data, out } => export(&data, out.as_deref()),
        Command::Import {
            data,
            input,
            backend,
        } => import(&data, input.as_deref(), backend),
        Command::Keys {
            command:
                KeysCommand::Create {
                    data,
                    create,
                    name,
                    scopes,
                    project,
                    backend,
                    json,
                },
        } => {
            let scopes = parse_scopes(&scopes)?;
            let db = open_store(
                &data,
                Options::new().project(project).backend(backend),
                create,
            )?;
            let key = db.root().keys().create(&name, &scopes)?;
            let names: Vec<String> = scopes.iter().map(ToString::to_string).collect();
            if json {
                let out = serde_json::json!({
                    "id": key.id, "name": name, "secret": key.secret, "scopes": names,
                });
                println!("{out}");
            } else {
                println!("{}", key.secret);
            }
            eprintln!(
                "key {} created with scopes {}; the secret is shown once",
                key.id,
                names.join(",")
            );
            Ok(())
        }
        Command::Bench { args } => {
            let status = std::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            )
            .args(["run", "--release", "-p", "permdb-bench", "--"])
            .args(&args)
            .status()?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("the benchmark runner failed: {status}").into())
            }
        }
    }
}

fn parse_scopes(text: &str) -> Result<Vec<Scope>, Failure> {
    if text == "all" {
        return Ok(Scope::ALL.to_vec());
    }
    text.split(',')
        .map(|s| {
            Scope::ALL
                .iter()
                .copied()
                .find(|scope| scope.to_string() == s.trim())
                .ok_or_else(|| {
                    let valid: Vec<String> = Scope::ALL.iter().map(ToString::to_string).collect();
                    format!(
                        "unknown scope {s:?}; the scopes are {}, or all",
                        valid.join(", ")
                    )
                    .into()
                })
        })
        .collect()
}

fn inspect(token: &str, public_key: Option<PathBuf>) -> Result<(), Failure> {
    let claims = TokenClaims::decode_unverified(token)?;
    println!("claims (not verified):");
    println!("  kind        {:?}", claims.kind);
    println!("  key id      {:#018x}", claims.key_id);
    println!("  project     {}", claims.project);
    println!("  user        {}", claims.user_id);
    println!("  session     {}", claims.session_id);
    println!("  issued at   {}", claims.issued_at);
    println!("  not before  {}", claims.not_before);
    println!("  expires at  {}", claims.expires_at);
    if let Some(path) = public_key {
        let keys: PublicKeys = serde_json::from_slice(&std::fs::read(&path)?)?;
        let verifier = TokenVerifier::new(&keys)?;
        let now = time::OffsetDateTime::now_utc();
        match verifier.verify(token, now) {
            Ok(_) => println!(
                "verified: signature, project and times are good (session liveness is not known offline)"
            ),
            Err(e) => return Err(format!("not verified: {e}").into()),
        }
    }
    Ok(())
}

/// How long requests in flight may run on after a stop signal before the server stops
/// anyway (a second signal stops it at once). Under `docker stop`'s 10 s default.
const GRACE: std::time::Duration = std::time::Duration::from_secs(8);

/// Serves `db` on `addr` until SIGINT or SIGTERM, then stops taking connections and
/// lets the requests in flight finish (at most [`GRACE`]) before the store closes.
fn serve(db: Db, addr: SocketAddr, server: permdb_server::ServerOptions) -> Result<(), Failure> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let stop = stop_signal("permdb: stopping: finishing the requests in flight")?;
        println!("listening on http://{}", listener.local_addr()?);
        let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
        let told = std::sync::Arc::clone(&stopping);
        let serving = axum::serve(listener, permdb_server::router_with(db, server))
            .with_graceful_shutdown(async move {
                stop.await;
                told.notify_one();
            });
        tokio::select! {
            served = serving => served?,
            () = async {
                stopping.notified().await;
                match stop_signal("permdb: a second signal: stopping now") {
                    Ok(again) => tokio::select! {
                        () = tokio::time::sleep(GRACE) => eprintln!(
                            "permdb: requests still running after {} s: stopping anyway",
                            GRACE.as_secs()
                        ),
                        () = again => {}
                    },
                    Err(_) => tokio::time::sleep(GRACE).await,
                }
            } => {}
        }
        eprintln!("permdb: stopped");
        Ok::<(), Failure>(())
    })
}

/// A future that resolves at the next SIGINT (Ctrl-C) or SIGTERM (what `kill`, systemd
/// and container runtimes send), saying `message`. The handlers are installed here, before the future is
/// first polled, so a signal that comes right after "listening on" is printed is not
/// lost to the default action (being killed).
#[cfg(unix)]
fn stop_signal(message: &'static str) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        eprintln!("{message}");
    })
}

/// A future that resolves at the next Ctrl-C, saying `message`.
#[cfg(not(unix))]
fn stop_signal(message: &'static str) -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async move {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("{message}");
    })
}
