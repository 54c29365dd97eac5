//! `Db`: an open store. Cheap to clone, safe to share between threads; writes are
//! serialized by one writer lock, reads run beside them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::auth::throttle::Throttle;
use crate::catalog;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::index::BitmapCache;
use crate::options::{Durability, Options};
use crate::perm::Principal;
use crate::store::{SledBackend, Store, Tree, WriteBatch, keys};
use crate::token::keyring::KeyRing;

/// An open permdb store.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// What [`Db::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// One entry per tree (`meta`, `docs`, `doc_ids`, `perm_index`, `auth`, `attr_index`).
    pub trees: Vec<TreeStats>,
    /// Bytes of role bitmaps held in memory (their serialized size).
    pub cached_bitmap_bytes: u64,
}

/// Sizes of one tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeStats {
    /// The tree's name.
    pub tree: &'static str,
    /// How many keys it holds.
    pub keys: u64,
    /// Sum of key lengths.
    pub key_bytes: u64,
    /// Sum of value lengths, checksums left out.
    pub value_bytes: u64,
    /// Bytes of the values' checksums (4 per key): stored, but not part of any value.
    pub checksum_bytes: u64,
}

pub(crate) struct DbInner {
    pub(crate) store: Store,
    pub(crate) options: Options,
    pub(crate) keyring: KeyRing,
    /// Role and word bitmaps in memory; see `index::cache`.
    pub(crate) bitmaps: BitmapCache,
    pub(crate) throttle: Throttle,
    /// A password hash that no password matches, with the store's hashing parameters:
    /// checked for unknown emails so that they take as long as wrong passwords, from the
    /// first sign-in on (made at open, without hashing).
    dummy_hash: String,
    /// INVARIANT (single-writer): every write takes this lock for its whole
    /// read-check-write, so checks and index containers read inside a write are current.
    writer: Mutex<()>,
    /// Moves past every committed write that can change or revoke a client's principal
    /// (see `changes_principals`); clients derive their principal again when it moved.
    auth_epoch: AtomicU64,
}

impl Db {
    /// Opens or creates a store in directory `path` with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, Options::default())
    }

    /// Opens or creates a store in directory `path`.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        Db::start(Some(path.as_ref()), options)
    }

    /// A store in a temporary directory, removed when the last handle drops.
    /// Writes are not flushed on commit (nothing survives it anyway).
    pub fn temporary() -> Result<Db> {
        Db::start(
            None,
            Options::default().durability(Durability::Periodic { every_ms: 1000 }),
        )
    }

    /// A temporary store with the given options.
    pub fn temporary_with(options: Options) -> Result<Db> {
        Db::start(None, options)
    }

    fn start(path: Option<&Path>, options: Options) -> Result<Db> {
        options.validate()?;
        let flush_ms = match options.durability {
            Durability::Immediate => None,
            Durability::Periodic { every_ms } => Some(every_ms.max(1)),
        };
        let backend = SledBackend::open(path, options.cache_bytes, flush_ms)?;
        let store = Store::new(Arc::new(backend));
        check_format(&store)?;
        let now_ms = crate::timefmt::to_millis(options.clock.now());
        let (keyring, first_keys) = KeyRing::open(&store, now_ms)?;
        store.apply(&first_keys)?;
        store.flush()?;
        let throttle = Throttle::new(options.sign_in_failures, options.sign_in_window);
        let dummy_hash = crate::auth::password::unmatchable(options.password_hashing)?;
        let db = Db {
            inner: Arc::new(DbInner {
                store,
                options,
                keyring,
                bitmaps: BitmapCache::default(),
                throttle,
                dummy_hash,
                writer: Mutex::new(()),
                auth_epoch: AtomicU64::new(0),
            }),
        };
        catalog::resume_purges(&db.inner)?;
        Ok(db)
    }

    /// The in-process, trusted client: permission checks are skipped.
    #[must_use]
    pub fn root(&self) -> Client {
        Client::new(self.clone(), Principal::Root)
    }

    /// A client without credentials: roles `any` and `guests`.
    #[must_use]
    pub fn client(&self) -> Client {
        Client::new(self.clone(), Principal::guest())
    }

    /// Sizes of the store: per tree, its keys, key bytes, value bytes and checksum bytes
    /// (what is stored, not the engine's file size), and the bytes of bitmaps cached in
    /// memory. Reads every key: for tools and benchmarks, not for hot paths.
    pub fn stats(&self) -> Result<DbStats> {
        let mut trees = Vec::new();
        for tree in Tree::ALL {
            let mut t = TreeStats {
                tree: tree.name(),
                keys: 0,
                key_bytes: 0,
                value_bytes: 0,
                checksum_bytes: 0,
            };
            for entry in self
                .inner
                .store
                .scan_prefix(tree, &[], crate::store::Direction::Forward)
            {
                let (k, v) = entry?;
                t.keys += 1;
                t.key_bytes += k.len() as u64;
                t.value_bytes += v.len() as u64;
                t.checksum_bytes += crate::store::CHECKSUM_LEN as u64;
            }
            trees.push(t);
        }
        Ok(DbStats {
            trees,
            cached_bitmap_bytes: self.inner.bitmaps.bytes() as u64,
        })
    }

    /// The project this store serves (`Options::project`): tokens name it.
    #[must_use]
    pub fn project(&self) -> &str {
        &self.inner.options.project
    }

    /// The store's clock reading (`Options::clock`).
    #[cfg_attr(
        not(feature = "server"),
        allow(dead_code, reason = "used by the server")
    )]
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.inner.options.clock.now()
    }

    /// Makes every write so far durable, whatever the [`Durability`].
    pub fn flush(&self) -> Result<()> {
        self.inner.store.flush()
    }
}

/// The permission check of the client a call acts for, kept per thread while the call
/// runs, so that [`DbInner::write`] makes it again under the writer lock.
pub(crate) mod acting {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::error::Result;

    type Check = Rc<dyn Fn() -> Result<()>>;

    thread_local! {
        static CHECKS: RefCell<Vec<Check>> = const { RefCell::new(Vec::new()) };
    }

    /// While held, writes on this thread make `check` again under the writer lock.
    #[must_use = "the check applies only while the guard is held"]
    pub(crate) struct Acting(());

    impl Drop for Acting {
        fn drop(&mut self) {
            CHECKS.with(|c| {
                c.borrow_mut().pop();
            });
        }
    }

    /// Registers `check` for the writes this thread makes until the guard drops.
    pub(crate) fn acting(check: impl Fn() -> Result<()> + 'static) -> Acting {
        CHECKS.with(|c| c.borrow_mut().push(Rc::new(check)));
        Acting(())
    }

    /// Makes the innermost registered check, if any.
    pub(crate) fn check_again() -> Result<()> {
        let check = CHECKS.with(|c| c.borrow().last().cloned());
        match check {
            Some(check) => check(),
            None => Ok(()),
        }
    }
}

/// Whether a batch may change or revoke a principal: any write to users, API keys, teams,
/// memberships or signing keys, and the removal of a session. New sessions and
/// one-time token bookkeeping change no existing principal.
fn changes_principals(batch: &WriteBatch) -> bool {
    batch.ops().any(|(tree, key, value)| {
        tree == Tree::Auth
            && match key.first() {
                Some(b's' | b'S') => value.is_none(),
                Some(b'e' | b'o' | b'O') => false,
                _ => true,
            }
    })
}

/// Checks the stored format version, writing it into a new store.
fn check_format(store: &Store) -> Result<()> {
    // Format 1 stored the version as 4 bytes without a checksum: such a store is named as an
    // older format rather than called corrupt.
    let stored = match store.get(Tree::Meta, keys::VERSION) {
        Ok(v) => v.map(|v| v.to_vec()),
        Err(e) => match store.get_unverified(Tree::Meta, keys::VERSION)? {
            Some(raw) if raw.len() == 4 => Some(raw.to_vec()),
            _ => return Err(e),
        },
    };
    match stored {
        Some(v) => {
            let version = <[u8; 4]>::try_from(v.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| Error::corrupt("format version", "not 4 bytes"))?;
            if version != keys::FORMAT_VERSION {
                return Err(Error::Storage(format!(
                    "store has format version {version}, this build reads {}",
                    keys::FORMAT_VERSION
                )));
            }
            Ok(())
        }
        None => {
            let mut batch = WriteBatch::default();
            batch.put(
                Tree::Meta,
                keys::VERSION.to_vec(),
                keys::FORMAT_VERSION.to_le_bytes().to_vec(),
            );
            store.apply(&batch)
        }
    }
}

/// The steps of one write under the writer lock; see [`DbInner::write_steps`].
pub(crate) struct Steps {
    base: Store,
    /// What the steps so far wrote, applied by nobody yet.
    done: Arc<WriteBatch>,
}

impl Steps {
    /// Runs one step: `f` reads the store with the earlier steps' writes laid over it and
    /// fills a batch of its own, which joins theirs when `f` succeeds.
    pub(crate) fn step<R>(
        &mut self,
        f: impl FnOnce(&Store, &mut WriteBatch) -> Result<R>,
    ) -> Result<R> {
        let view = if self.done.is_empty() {
            self.base.clone()
        } else {
            self.base.with_pending(self.done.clone())
        };
        let mut batch = WriteBatch::default();
        let out = f(&view, &mut batch)?;
        drop(view);
        // The view is gone, so this copies nothing unless `f` kept a clone of it.
        Arc::make_mut(&mut self.done).extend(batch);
        Ok(out)
    }
}

impl DbInner {
    pub(crate) fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` under the writer lock and applies the batch it fills atomically,
    /// flushing first when durability is immediate. Nothing is written if `f` fails.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Store, &mut WriteBatch) -> Result<T>,
    ) -> Result<T> {
        let _guard = self.lock();
        // INVARIANT (write-as-of-commit): the check of the client this thread acts for is
        // made again here, under the lock the auth epoch moves under, so a write that
        // began before its credential was revoked is refused rather than committed.
        acting::check_again()?;
        let mut batch = WriteBatch::default();
        let out = f(&self.store, &mut batch)?;
        self.commit(&batch)?;
        Ok(out)
    }

    /// Like [`DbInner::write`], for a write made of steps: each step reads the store as
    /// the earlier steps left it (through [`Steps::step`]), and all of them are applied
    /// as one batch, or none when any step fails.
    pub(crate) fn write_steps<T>(&self, f: impl FnOnce(&mut Steps) -> Result<T>) -> Result<T> {
        let _guard = self.lock();
        // INVARIANT (write-as-of-commit), as in `write`.
        acting::check_again()?;
        let mut steps = Steps {
            base: self.store.clone(),
            done: Arc::new(WriteBatch::default()),
        };
        let out = f(&mut steps)?;
        self.commit(&steps.done)?;
        Ok(out)
    }

    /// Applies `batch` (under the writer lock), invalidating what it may have changed.
    fn commit(&self, batch: &WriteBatch) -> Result<()> {
        let applied = self.store.apply(batch);
        // Whatever happened to the batch, cached bitmaps it touched may be stale now,
        // and clients must not keep a principal it may have changed.
        self.bitmaps.invalidate(batch);
        if changes_principals(batch) {
            self.auth_epoch.fetch_add(1, Ordering::AcqRel);
        }
        applied?;
        if self.options.durability == Durability::Immediate && !batch.is_empty() {
            self.store.flush()?;
        }
        Ok(())
    }

    /// The count of committed writes that may have changed a principal.
    pub(crate) fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(Ordering::Acquire)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        crate::timefmt::to_millis(self.options.clock.now())
    }
}
