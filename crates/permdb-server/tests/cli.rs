//! The command line as a script meets it: a typo never makes a store, a store open
//! elsewhere is named as such, scopes print as they are typed, an unknown scope lists
//! the valid ones, `--json` parses, `token keys` verifies a real token, and `serve`
//! stops cleanly on SIGTERM. Each error case checks the exit code and the message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A child that is killed if the test stops before it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long one `permdb` call may take before the test fails (a command that should
/// refuse, say `serve` on a typo, must not hang the suite by serving).
const DEADLINE: Duration = Duration::from_secs(60);

/// Waits for `child` to end, failing past `limit`.
fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `permdb ARGS`: (exit code, stdout, stderr).
fn permdb(args: &[&str]) -> (i32, String, String) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_permdb"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait(&mut child, DEADLINE);
    let mut out = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn a_path_without_a_store_is_refused_unless_create_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("stroe");
    let typo = typo.to_str().unwrap();
    for args in [
        vec!["keys", "create", "--data", typo, "--name", "k"],
        vec!["serve", "--data", typo, "--addr", "127.0.0.1:0"],
        vec!["token", "keys", "--data", typo],
    ] {
        let (code, out, err) = permdb(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
        assert!(
            err.starts_with("permdb: no store in ") && err.contains("--create"),
            "{args:?}: {err}"
        );
        assert!(!std::path::Path::new(typo).exists(), "{args:?} made {typo}");
    }
    // With --create, a store is made and the key printed; then it opens without it.
    let (code, secret, err) =
        permdb(&["keys", "create", "--data", typo, "--name", "k", "--create"]);
    assert_eq!(code, 0, "{err}");
    assert!(secret.trim().len() > 20, "{secret}");
    let (code, _, err) = permdb(&["keys", "create", "--data", typo, "--name", "k2"]);
    assert_eq!(code, 0, "{err}");
    // --create never spreads a store among other files; an empty directory is fine.
    let busy = tmp.path().join("home");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let busy = busy.to_str().unwrap();
    let (code, _, err) = permdb(&["keys", "create", "--data", busy, "--name", "k", "--create"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds other files and no store"), "{err}");
    assert_eq!(
        std::fs::read_dir(busy).unwrap().count(),
        1,
        "files made in {busy}"
    );
    // Nor do verify and repair make one.
    for command in ["verify", "repair"] {
        let (code, _, err) = permdb(&[command, "--data", busy]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("no store in"), "{command}: {err}");
        assert_eq!(
            std::fs::read_dir(busy).unwrap().count(),
            1,
            "{command} made files"
        );
    }
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = permdb(&[
        "keys",
        "create",
        "--data",
        empty.to_str().unwrap(),
        "--name",
        "k",
        "--create",
    ]);
    assert_eq!(code, 0, "{err}");
    // An upgrade cut short (DIR gone, DIR.upgrading beside it) is named as such.
    let cut = tmp.path().join("cut");
    std::fs::create_dir(tmp.path().join("cut.upgrading")).unwrap();
    let (code, _, err) = permdb(&[
        "keys",
        "create",
        "--data",
        cut.to_str().unwrap(),
        "--name",
        "k",
        "--create",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("upgrade of it was cut short") && err.contains("permdb upgrade --data"),
        "{err}"
    );
    assert!(!cut.exists());
}

#[test]
fn request_limits_out_of_range_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("s");
    let data = data.to_str().unwrap();
    for (flag, value) in [
        ("--body-limit", "0"),
        ("--body-limit", "1073741825"),
        ("--timeout-ms", "0"),
        ("--timeout-ms", "99"),
    ] {
        let (code, out, err) = permdb(&[
            "serve",
            "--create",
            "--data",
            data,
            "--addr",
            "127.0.0.1:0",
            flag,
            value,
        ]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(
            out.is_empty() && err.contains(flag),
            "{flag} {value}: {err}"
        );
    }
}

#[test]
fn scopes_print_as_typed_and_an_unknown_one_lists_the_valid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("s");
    let data = data.to_str().unwrap();
    let (code, out, err) = permdb(&[
        "keys",
        "create",
        "--data",
        data,
        "--create",
        "--name",
        "app",
        "--scopes",
        "documents.read,documents.write",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(key["name"], "app");
    assert_eq!(
        key["scopes"],
        serde_json::json!(["documents.read", "documents.write"])
    );
    assert!(key["secret"].as_str().unwrap().len() > 20);
    assert!(key["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        err.contains("with scopes documents.read,documents.write;"),
        "{err}"
    );
    assert!(!err.contains("DocumentsRead"), "{err}");

    let (code, out, err) = permdb(&[
        "keys",
        "create",
        "--data",
        data,
        "--name",
        "x",
        "--scopes",
        "documents.raed",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("unknown scope \"documents.raed\"")
            && err.contains("documents.read, documents.write")
            && err.contains("or all"),
        "{err}"
    );
    // A usage error is exit code 2 (clap's).
    let (code, _, err) = permdb(&["keys", "create", "--data", data]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_store_open_elsewhere_is_named_as_such_on_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    for backend in [permdb::StorageEngine::Sled, permdb::StorageEngine::Redb] {
        let dir = tmp.path().join(format!("{backend:?}"));
        let db = permdb::Db::open_with(&dir, permdb::Options::new().backend(backend)).unwrap();
        let (code, out, err) = permdb(&[
            "keys",
            "create",
            "--data",
            dir.to_str().unwrap(),
            "--name",
            "k",
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty());
        assert!(
            err.contains("is open elsewhere: another process"),
            "{backend:?}: {err}"
        );
        // Not the OS error's debug form.
        assert!(
            !err.contains("Os {") && !err.contains("WouldBlock"),
            "{backend:?}: {err}"
        );
        drop(db);
    }
}

#[test]
fn token_keys_prints_the_public_keys_that_verify_a_real_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let token = {
        let db = permdb::Db::open(&dir).unwrap();
        let account = db.client().account();
        account
            .create("user-a", "a@example.com", "password-a", None)
            .unwrap();
        let session = account
            .create_email_password_session("a@example.com", "password-a")
            .unwrap();
        db.root()
            .users()
            .create_jwt("user-a", Some(&session.id), None)
            .unwrap()
            .jwt
    };
    let (code, keys, err) = permdb(&["token", "keys", "--data", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Public keys only: no secret material.
    assert!(!keys.to_lowercase().contains("secret"), "{keys}");
    let file = tmp.path().join("keys.json");
    std::fs::write(&file, &keys).unwrap();
    let (code, out, err) = permdb(&[
        "token",
        "inspect",
        &token,
        "--public-key",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("verified: signature, project and times are good"),
        "{out}"
    );
    // Another project's keys do not verify it.
    let (code, other, _) = permdb(&[
        "token",
        "keys",
        "--data",
        dir.to_str().unwrap(),
        "--project",
        "other",
    ]);
    assert_eq!(code, 0);
    std::fs::write(&file, other).unwrap();
    let (code, _, err) = permdb(&[
        "token",
        "inspect",
        &token,
        "--public-key",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not verified"), "{err}");
}

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_permdb"))
            .args(["serve", "--create", "--addr", "127.0.0.1:0", "--data"])
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The signal handlers are in place before this line is printed.
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    // Exit 0 (not 143, killed by the signal), after saying so.
    assert_eq!(status.code(), Some(0), "{status:?}: {err}");
    assert!(
        err.contains("permdb: stopping: finishing the requests in flight")
            && err.contains("permdb: stopped"),
        "{err}"
    );
}
