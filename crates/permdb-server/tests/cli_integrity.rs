//! `permdb verify` and `permdb repair` as a script would run them: progress on stderr,
//! the report on stdout (text or `--json`), exit codes, and no store made by a typo.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::process::Command;

fn permdb(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_permdb"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn verify_and_repair_report_with_progress_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    for backend in ["sled", "redb"] {
        let dir = tmp.path().join(backend);
        let data = dir.to_str().unwrap();
        let (ok, _, err) = permdb(&[
            "keys",
            "create",
            "--create",
            "--data",
            data,
            "--name",
            "k",
            "--backend",
            backend,
        ]);
        assert!(ok, "{err}");
        // A store with a collection and documents, made through the library.
        {
            let db = permdb::Db::open(&dir).unwrap();
            let root = db.root();
            root.schemas().create("db", "Db").unwrap();
            root.schema("db")
                .collections()
                .create(permdb::CollectionSpec::new("notes", "Notes"))
                .unwrap();
            let notes = root.schema("db").collection("notes");
            for i in 0..5 {
                notes
                    .create(&format!("n{i}"), serde_json::json!({"i": i}), None)
                    .unwrap();
            }
        }
        let (ok, out, err) = permdb(&["verify", "--data", data]);
        assert!(ok, "{out}{err}");
        assert_eq!(out.trim(), "1 collection(s), 5 document(s): 0 problem(s)");
        assert!(err.contains("verify: step 1/2: checksums"), "{err}");
        assert!(
            err.contains("verify: step 2/2: collection db/notes"),
            "{err}"
        );
        let (ok, out, err) = permdb(&["repair", "--data", data, "--json"]);
        assert!(ok, "{err}");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["problems"], 0, "{out}");
        assert_eq!(report["documents"], 5, "{out}");
        assert!(
            err.contains("repair: step 1/1: collection db/notes"),
            "{err}"
        );
    }
    // A directory that holds no store is refused, and none is made.
    let typo = tmp.path().join("typo");
    let (ok, _, err) = permdb(&["verify", "--data", typo.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no store in"), "{err}");
    assert!(!typo.exists());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// `permdb upgrade` on the library's format-3 fixtures: the store is refused before,
/// upgraded with progress on stderr, verified clean after, and left alone the second time.
#[test]
fn upgrade_takes_a_format3_store_to_the_current_format() {
    let tmp = tempfile::tempdir().unwrap();
    for backend in ["sled", "redb"] {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(format!("format3-{backend}/store"));
        let dir = tmp.path().join(backend);
        copy_dir(&fixture, &dir);
        let data = dir.to_str().unwrap();
        let (ok, _, err) = permdb(&["verify", "--data", data]);
        assert!(!ok && err.contains("permdb upgrade --data"), "{err}");
        let (ok, out, err) = permdb(&["upgrade", "--data", data]);
        assert!(ok, "{out}{err}");
        assert!(err.contains("records copied (docs)"), "{err}");
        assert!(out.contains("from format 3 to 4"), "{out}");
        assert!(out.contains(&format!("{backend}.format3")), "{out}");
        let (ok, out, err) = permdb(&["verify", "--data", data]);
        assert!(ok && out.contains("0 problem(s)"), "{out}{err}");
        let (ok, out, _) = permdb(&["upgrade", "--data", data]);
        assert!(ok && out.contains("already in format 4"), "{out}");
        let (ok, out, err) = permdb(&["compact", "--data", data]);
        let said = if backend == "redb" {
            "bytes before"
        } else {
            "compacts as it goes"
        };
        assert!(ok && out.contains(said), "{out}{err}");
        let (ok, out, err) = permdb(&["verify", "--data", data]);
        assert!(ok && out.contains("0 problem(s)"), "{out}{err}");
        let (ok, _, err) = permdb(&[
            "upgrade",
            "--data",
            tmp.path().join("nothing").to_str().unwrap(),
        ]);
        assert!(!ok && err.contains("holds no permdb store"), "{err}");
    }
}

/// `permdb export` and `permdb import`: the upgraded sled fixture goes to a redb store
/// through a file and back through stdin, with identical dumps; a bad dump is refused
/// by line and leaves no store.
#[test]
fn export_and_import_move_a_store_between_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/format3-sled/store");
    let sled = tmp.path().join("sled");
    copy_dir(&fixture, &sled);
    let (ok, out, err) = permdb(&["upgrade", "--data", sled.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let dump_a = tmp.path().join("a.jsonl");
    let (ok, _, err) = permdb(&[
        "export",
        "--data",
        sled.to_str().unwrap(),
        "--out",
        dump_a.to_str().unwrap(),
    ]);
    assert!(ok && err.contains("exported 182 lines"), "{err}");
    assert!(err.contains("lines (collection app/notes)"), "{err}");
    let redb = tmp.path().join("redb");
    let (ok, out, err) = permdb(&[
        "import",
        "--data",
        redb.to_str().unwrap(),
        "--in",
        dump_a.to_str().unwrap(),
        "--backend",
        "redb",
    ]);
    assert!(ok && out.contains("imported 182 lines"), "{out}{err}");
    assert!(redb.join("permdb.redb").is_file());
    let (ok, dump_b, err) = permdb(&["export", "--data", redb.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(dump_b, std::fs::read_to_string(&dump_a).unwrap());

    // Through stdin, into sled again.
    let again = tmp.path().join("again");
    let child = Command::new(env!("CARGO_BIN_EXE_permdb"))
        .args(["import", "--data", again.to_str().unwrap()])
        .stdin(std::fs::File::open(&dump_a).unwrap())
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let (ok, out, err) = permdb(&["verify", "--data", again.to_str().unwrap()]);
    assert!(ok && out.contains("0 problem(s)"), "{out}{err}");

    // A dump cut short is refused, naming the line, and leaves no store.
    let cut = tmp.path().join("cut.jsonl");
    let text = std::fs::read_to_string(&dump_a).unwrap();
    std::fs::write(
        &cut,
        text.lines().take(20).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let none = tmp.path().join("none");
    let (ok, _, err) = permdb(&[
        "import",
        "--data",
        none.to_str().unwrap(),
        "--in",
        cut.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("invalid dump at line 21"), "{err}");
    assert!(!none.exists());
    // Not into a store.
    let (ok, _, err) = permdb(&[
        "import",
        "--data",
        sled.to_str().unwrap(),
        "--in",
        dump_a.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("not empty"), "{err}");
}
