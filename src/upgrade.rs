//! Upgrading a store of the previous on-disk format (3) to this build's (4): every record
//! is copied, checked and re-encoded into a new store beside the old, then the two swap.
//! The old store is kept, untouched, as `DIR.format3`, until its owner removes it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::options::{Options, StorageEngine};
use crate::store::keys::{self, RecordKind};
use crate::store::{Backend, Direction, Store, Tree, WriteBatch};

/// The format this build upgrades from.
const FROM: u32 = 3;
/// How many records one write of the copy holds.
const BATCH_RECORDS: usize = 4096;

/// What [`crate::Db::upgrade`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeReport {
    /// The format the store had (the current one when there was nothing to do).
    pub from: u32,
    /// The format it has now.
    pub to: u32,
    /// Records copied.
    pub records: u64,
    /// Of those, records re-encoded (the rest were copied as they were).
    pub recoded: u64,
    /// Where the store as it was is kept; `None` when nothing was changed.
    pub kept: Option<PathBuf>,
}

/// How far an upgrade is, told to the `progress` of [`crate::Db::upgrade_with_progress`]
/// after each write of the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpgradeProgress {
    /// Records copied so far.
    pub records: u64,
    /// The tree being copied.
    pub tree: &'static str,
}

/// `DIR` with `suffix` appended to its last component.
pub(crate) fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Refuses a directory given without a name of its own (`.`, `..`, `/`): the work
/// directories beside it would land inside it or nowhere.
pub(crate) fn check_named(dir: &Path) -> Result<()> {
    match dir.file_name() {
        Some(name) if name != "." => Ok(()),
        _ => Err(Error::InvalidArgument(format!(
            "{}: name the store's directory itself (not ., .. or /)",
            dir.display()
        ))),
    }
}

/// Whether `dir` is a directory holding nothing.
fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Whether an upgrade of `dir` was cut short between its two renames (the old store
/// moved aside, the new one not yet in place): opening `dir` must not make a new store.
pub(crate) fn cut_short(dir: &Path) -> bool {
    beside(dir, ".upgrading").is_dir() && beside(dir, &format!(".format{FROM}")).is_dir()
}

/// Runs `f` on the store in `dir` (a maintenance step that opens it alone, as `compact`
/// does) while no upgrade of it runs: refused when one was cut short (the store in `dir`
/// is not the one to work on), and under the upgrade lock when an upgrade made one, so
/// that no upgrade moves the store aside meanwhile.
pub(crate) fn while_not_upgrading<T>(dir: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if cut_short(dir) {
        return Err(Error::UpgradeRequired {
            found: FROM,
            expected: keys::FORMAT_VERSION,
        });
    }
    let lock_path = beside(dir, ".upgrade-lock");
    let lock = match std::fs::OpenOptions::new().write(true).open(&lock_path) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(format!("cannot open {}", lock_path.display()))(e)),
    };
    if let Some(file) = &lock {
        file.lock()
            .map_err(io(format!("cannot lock {}", lock_path.display())))?;
    }
    let out = f();
    drop(lock);
    out
}

/// Makes the durable record of renames in `dir`'s parent.
pub(crate) fn sync_parent(dir: &Path) -> Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", parent.display())))
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::storage(what, e)
}

fn open_backend(dir: &Path, engine: StorageEngine, options: &Options) -> Result<Store> {
    // Writes are not flushed one by one: the copy is flushed once, when complete.
    let backend: std::sync::Arc<dyn Backend> = match engine {
        StorageEngine::Sled => std::sync::Arc::new(crate::store::SledBackend::open(
            Some(dir),
            options.cache_bytes,
            Some(60_000),
        )?),
        StorageEngine::Redb => std::sync::Arc::new(crate::store::RedbBackend::open(
            Some(dir),
            options.cache_bytes,
            Some(60_000),
        )?),
    };
    Ok(Store::new(backend))
}

/// Whether `dir` holds a store already in this build's format (nothing to upgrade).
fn current(dir: &Path, options: &Options) -> Result<bool> {
    match crate::store::engine_of(dir)? {
        Some(engine) => Ok(
            crate::store::stored_version(&open_backend(dir, engine, options)?)?
                == Some(keys::FORMAT_VERSION),
        ),
        None => Ok(false),
    }
}

/// Upgrades the store in `dir` (see the module's comment). Idempotent: a store already
/// in this build's format is left as it is, and an upgrade cut short (a crash, a full
/// disk) is started again, or finished when only the final rename was missing.
pub(crate) fn upgrade(
    dir: &Path,
    options: &Options,
    progress: &mut dyn FnMut(UpgradeProgress),
) -> Result<UpgradeReport> {
    check_named(dir)?;
    let fresh = beside(dir, ".upgrading");
    let kept = beside(dir, &format!(".format{FROM}"));
    if !cut_short(dir) && crate::store::engine_of(dir)?.is_none() {
        return Err(Error::InvalidArgument(format!(
            "{} holds no permdb store",
            dir.display()
        )));
    }
    if !cut_short(dir) && current(dir, options)? {
        return Ok(UpgradeReport {
            from: keys::FORMAT_VERSION,
            to: keys::FORMAT_VERSION,
            records: 0,
            recoded: 0,
            kept: None,
        });
    }
    // One upgrade of a store at a time, across processes, from its first look to its
    // last rename. The lock file stays (empty) beside the store.
    let lock_path = beside(dir, ".upgrade-lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io(format!("cannot create {}", lock_path.display())))?;
    lock.lock()
        .map_err(io(format!("cannot lock {}", lock_path.display())))?;
    let exists = |p: &Path| {
        p.try_exists()
            .map_err(io(format!("cannot look at {}", p.display())))
    };
    if (!exists(dir)? || is_empty_dir(dir)) && exists(&kept)? && exists(&fresh)? {
        // Cut short between the two renames: the copy is complete when it has its version.
        if exists(dir)? {
            std::fs::remove_dir(dir).map_err(io(format!("cannot remove {}", dir.display())))?;
        }
        return finish_rename(dir, &fresh, &kept, options);
    }
    let Some(engine) = crate::store::engine_of(dir)? else {
        return Err(Error::InvalidArgument(format!(
            "{} holds no permdb store",
            dir.display()
        )));
    };
    let source = open_backend(dir, engine, options)?;
    let version = crate::store::stored_version(&source)?.ok_or_else(|| {
        Error::corrupt(
            "format version",
            "missing: not a store permdb finished creating",
        )
    })?;
    if version == keys::FORMAT_VERSION {
        return Ok(UpgradeReport {
            from: version,
            to: version,
            records: 0,
            recoded: 0,
            kept: None,
        });
    }
    if version != FROM {
        return Err(Error::InvalidArgument(format!(
            "the store has format version {version}: this build upgrades format {FROM} only \
             (open it with the build that wrote it and export it)"
        )));
    }
    if exists(&kept)? {
        return Err(Error::InvalidArgument(format!(
            "{} exists: move it away (an earlier upgrade's copy of the old store?)",
            kept.display()
        )));
    }
    if exists(&fresh)? {
        std::fs::remove_dir_all(&fresh)
            .map_err(io(format!("cannot remove {}", fresh.display())))?;
    }
    let copied = open_backend(&fresh, engine, options).and_then(|target| {
        let counts = copy(&source, &target, progress)?;
        let mut last = WriteBatch::default();
        last.put(
            Tree::Meta,
            keys::VERSION.to_vec(),
            keys::FORMAT_VERSION.to_le_bytes().to_vec(),
        );
        target.apply(&last)?;
        target.flush()?;
        drop(target);
        // Many commits leave redb's file with free pages: given back before it is in place.
        crate::store::compact(&fresh)?;
        Ok(counts)
    });
    let (records, recoded) = match copied {
        Ok(counts) => counts,
        Err(e) => {
            // Best effort: a copy left behind is replaced by the next attempt anyway.
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(e);
        }
    };
    drop(source);
    // The copy's files are durable (flushed above); its directory entry must be before
    // the old store moves aside.
    sync_parent(dir)?;
    std::fs::rename(dir, &kept).map_err(io(format!(
        "cannot rename {} to {}",
        dir.display(),
        kept.display()
    )))?;
    let mut report = finish_rename(dir, &fresh, &kept, options)?;
    report.records = records;
    report.recoded = recoded;
    Ok(report)
}

/// The last step: the complete copy at `fresh` becomes `dir`.
fn finish_rename(
    dir: &Path,
    fresh: &Path,
    kept: &Path,
    options: &Options,
) -> Result<UpgradeReport> {
    let engine = crate::store::engine_of(fresh)?
        .ok_or_else(|| Error::corrupt(format!("{}", fresh.display()), "holds no store"))?;
    let version = crate::store::stored_version(&open_backend(fresh, engine, options)?)?;
    if version != Some(keys::FORMAT_VERSION) {
        return Err(Error::corrupt(
            format!("the upgrade's copy at {}", fresh.display()),
            "incomplete: move it away and upgrade the store kept at the other path again",
        ));
    }
    std::fs::rename(fresh, dir).map_err(io(format!(
        "cannot rename {} to {}",
        fresh.display(),
        dir.display()
    )))?;
    // The renames are durable once the directory holding them is.
    sync_parent(dir)?;
    Ok(UpgradeReport {
        from: FROM,
        to: keys::FORMAT_VERSION,
        records: 0,
        recoded: 0,
        kept: Some(kept.to_path_buf()),
    })
}

/// Copies every record of `source` but its version into `target`, checking each one's
/// checksum and re-encoding the codec's records. Returns (records, re-encoded).
fn copy(
    source: &Store,
    target: &Store,
    progress: &mut dyn FnMut(UpgradeProgress),
) -> Result<(u64, u64)> {
    let (mut records, mut recoded) = (0u64, 0u64);
    for tree in Tree::ALL {
        let mut batch = WriteBatch::default();
        let mut in_batch = 0usize;
        for entry in source.scan_prefix(tree, b"", Direction::Forward) {
            let (key, value) = entry?;
            if tree == Tree::Meta && &*key == keys::VERSION {
                continue;
            }
            let value = match keys::record_kind(tree, &key) {
                Some(kind) => {
                    recoded += 1;
                    recode(kind, &value, || {
                        format!("{} record at key {:02x?}", tree.name(), &*key)
                    })?
                }
                None => value.to_vec(),
            };
            batch.put(tree, key.to_vec(), value);
            records += 1;
            in_batch += 1;
            if in_batch == BATCH_RECORDS {
                target.apply(&std::mem::take(&mut batch))?;
                in_batch = 0;
                progress(UpgradeProgress {
                    records,
                    tree: tree.name(),
                });
            }
        }
        target.apply(&batch)?;
        progress(UpgradeProgress {
            records,
            tree: tree.name(),
        });
    }
    Ok((records, recoded))
}

/// A format-3 record of `kind`, encoded as this build encodes it.
#[cfg(feature = "format3-upgrade")]
fn recode(kind: RecordKind, bytes: &[u8], what: impl FnOnce() -> String) -> Result<Vec<u8>> {
    use crate::store::codec;
    fn again<T: serde::Serialize + serde::de::DeserializeOwned>(
        bytes: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<Vec<u8>> {
        codec::encode(&codec::format3::decode::<T>(bytes, what)?)
    }
    match kind {
        RecordKind::Schema => again::<crate::catalog::SchemaRecord>(bytes, what),
        RecordKind::Collection => again::<crate::catalog::CollectionRecord>(bytes, what),
        RecordKind::Document => again::<crate::document::DocRecord>(bytes, what),
        RecordKind::FeedEntry => again::<crate::changes::DocEntry>(bytes, what),
        RecordKind::Tombstone => again::<crate::changes::Tombstone>(bytes, what),
        RecordKind::User => again::<crate::auth::users::UserRecord>(bytes, what),
        RecordKind::Session => again::<crate::auth::sessions::SessionRecord>(bytes, what),
        RecordKind::ApiKey => again::<crate::auth::keys::ApiKeyRecord>(bytes, what),
        RecordKind::Team => again::<crate::auth::teams::TeamRecord>(bytes, what),
        RecordKind::Membership => again::<crate::auth::teams::MembershipRecord>(bytes, what),
        RecordKind::SigningKey => again::<crate::token::keyring::SigningKeyRecord>(bytes, what),
    }
}

/// Re-encodes `bytes` as a format-3 record of `kind`, as `upgrade` does, and checks that
/// what it wrote reads back in this build's format and re-encodes to the same bytes; the
/// fuzz target `format3_record` runs it. `None` when the bytes were refused.
#[cfg(all(feature = "format3-upgrade", any(test, feature = "fuzzing")))]
pub(crate) fn check_recode(kind: RecordKind, bytes: &[u8]) -> Option<Vec<u8>> {
    use crate::store::codec;
    fn same<T: serde::Serialize + serde::de::DeserializeOwned>(new: &[u8]) -> Vec<u8> {
        match codec::decode::<T>(new, || "recoded".into()) {
            Ok(value) => codec::encode(&value).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }
    let new = recode(kind, bytes, || "fuzzed".into()).ok()?;
    let again = match kind {
        RecordKind::Schema => same::<crate::catalog::SchemaRecord>(&new),
        RecordKind::Collection => same::<crate::catalog::CollectionRecord>(&new),
        RecordKind::Document => same::<crate::document::DocRecord>(&new),
        RecordKind::FeedEntry => same::<crate::changes::DocEntry>(&new),
        RecordKind::Tombstone => same::<crate::changes::Tombstone>(&new),
        RecordKind::User => same::<crate::auth::users::UserRecord>(&new),
        RecordKind::Session => same::<crate::auth::sessions::SessionRecord>(&new),
        RecordKind::ApiKey => same::<crate::auth::keys::ApiKeyRecord>(&new),
        RecordKind::Team => same::<crate::auth::teams::TeamRecord>(&new),
        RecordKind::Membership => same::<crate::auth::teams::MembershipRecord>(&new),
        RecordKind::SigningKey => same::<crate::token::keyring::SigningKeyRecord>(&new),
    };
    assert_eq!(again, new, "a recoded {kind:?} must read back as written");
    Some(new)
}

#[cfg(not(feature = "format3-upgrade"))]
fn recode(_: RecordKind, _: &[u8], _: impl FnOnce() -> String) -> Result<Vec<u8>> {
    Err(Error::InvalidArgument(
        "this build of permdb was made without the feature format3-upgrade, which reads \
         format 3's records"
            .into(),
    ))
}

#[cfg(all(test, feature = "format3-upgrade"))]
mod tests {
    use super::*;
    use crate::store::codec;

    #[test]
    fn beside_appends_to_the_last_component() {
        assert_eq!(beside(Path::new("/a/data"), ".x"), Path::new("/a/data.x"));
        assert_eq!(beside(Path::new("data"), ".x"), Path::new("data.x"));
    }

    /// A record of every kind re-encodes to what this build reads; a damaged one is named.
    #[test]
    fn every_kind_recodes_and_damage_is_refused() {
        let schema = crate::catalog::SchemaRecord {
            id: "s".into(),
            name: "S".into(),
            enabled: true,
            created_ms: 5,
            updated_ms: 6,
        };
        let old = codec::format3::encode(&schema);
        let new = recode(RecordKind::Schema, &old, || "schema".into()).unwrap();
        let back: crate::catalog::SchemaRecord = codec::decode(&new, || "s".into()).unwrap();
        assert_eq!(back, schema);
        let err = recode(RecordKind::Schema, &old[..old.len() - 1], || {
            "schema at k".into()
        })
        .unwrap_err();
        assert!(err.to_string().contains("corrupt schema at k"), "{err}");
    }

    /// Bytes of no record, and a huge length claim, are refused for every kind.
    #[test]
    fn garbage_is_refused_for_every_kind() {
        let huge = [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        for kind in RecordKind::ALL {
            for bytes in [&[][..], &[0xff; 3], &huge] {
                assert!(check_recode(kind, bytes).is_none(), "{kind:?} {bytes:?}");
            }
        }
        let schema = crate::catalog::SchemaRecord {
            id: "s".into(),
            name: "S".into(),
            enabled: false,
            created_ms: -1,
            updated_ms: i64::MAX,
        };
        let old = codec::format3::encode(&schema);
        assert!(check_recode(RecordKind::Schema, &old).is_some());
    }
}
