//! Reading and writing a store's records with its engine itself, under permdb: what the
//! corruption and upgrade tests damage stores with. Not part of `common` (the server's
//! tests share that, without sled and redb): a test includes it by path.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableHandle};

/// Whether the store in `dir` is a redb one (else sled).
fn is_redb(dir: &Path) -> bool {
    dir.join("permdb.redb").exists()
}

/// Every (tree, key, raw value) in the store, read with its engine itself.
pub fn records(dir: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    if is_redb(dir) {
        {
            let db = raw_redb(dir);
            let txn = db.begin_read().unwrap();
            let names: Vec<String> = txn
                .list_tables()
                .unwrap()
                .map(|t| t.name().to_owned())
                .collect();
            for name in names {
                let table = txn.open_table(redb_table(&name)).unwrap();
                for entry in table.iter().unwrap() {
                    let (k, v) = entry.unwrap();
                    out.push((name.clone(), k.value().to_vec(), v.value().to_vec()));
                }
            }
        }
    } else {
        {
            let raw = crate::common::when_unlocked(|| sled::open(dir)).unwrap();
            for name in raw.tree_names() {
                let tree = raw.open_tree(&name).unwrap();
                let name = String::from_utf8(name.to_vec()).unwrap();
                for entry in tree.iter() {
                    let (k, v) = entry.unwrap();
                    out.push((name.clone(), k.to_vec(), v.to_vec()));
                }
            }
        }
    }
    out
}

/// The store's redb file, opened without permdb.
pub fn raw_redb(dir: &Path) -> redb::Database {
    redb::Database::open(dir.join("permdb.redb")).unwrap()
}

pub fn redb_table(name: &str) -> redb::TableDefinition<'_, &'static [u8], &'static [u8]> {
    redb::TableDefinition::new(name)
}

/// Writes (`Some`) or removes (`None`) raw values in `tree`, with the store's engine.
pub fn edit_raw(dir: &Path, tree: &str, edits: &[(&[u8], Option<&[u8]>)]) {
    if is_redb(dir) {
        {
            let db = raw_redb(dir);
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(redb_table(tree)).unwrap();
                for (key, value) in edits {
                    match value {
                        Some(v) => drop(table.insert(*key, *v).unwrap()),
                        None => drop(table.remove(*key).unwrap()),
                    }
                }
            }
            txn.commit().unwrap();
        }
    } else {
        {
            let raw = crate::common::when_unlocked(|| sled::open(dir)).unwrap();
            let t = raw.open_tree(tree).unwrap();
            for (key, value) in edits {
                match value {
                    Some(v) => drop(t.insert(*key, *v).unwrap()),
                    None => drop(t.remove(*key).unwrap()),
                }
            }
            raw.flush().unwrap();
        }
    }
}

/// Moves the record at `key` to `to`, as a damaged key would.
pub fn move_raw(dir: &Path, tree: &str, key: &[u8], to: &[u8]) {
    let value = read_raw(dir, tree, key).unwrap();
    edit_raw(dir, tree, &[(key, None), (to, Some(&value))]);
}

pub fn write_raw(dir: &Path, tree: &str, key: &[u8], value: &[u8]) {
    edit_raw(dir, tree, &[(key, Some(value))]);
}

pub fn read_raw(dir: &Path, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
    if is_redb(dir) {
        {
            let db = raw_redb(dir);
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(redb_table(tree)).unwrap();
            table.get(key).unwrap().map(|v| v.value().to_vec())
        }
    } else {
        {
            let raw = crate::common::when_unlocked(|| sled::open(dir)).unwrap();
            raw.open_tree(tree)
                .unwrap()
                .get(key)
                .unwrap()
                .map(|v| v.to_vec())
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
