//! `Engine`: the open store beneath every service: storage, options, cached bitmaps, the
//! writer lock and the auth epoch; and `ReadView`, the part a query reads through.

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::document::DocumentCache;
use crate::error::{Error, Result};
use crate::index::BitmapCache;
use crate::options::StorageEngine;
use crate::options::{Durability, Limits, Options};
use crate::store::{RedbBackend, SledBackend, Store, Tree, WriteBatch, keys};

/// Says whether a committed batch may change or revoke a principal (the auth layer's
/// rule: `auth::changes_principals`); the engine moves its auth epoch past such batches.
pub(crate) type PrincipalRule = fn(&WriteBatch) -> bool;

/// What an observer of commits carries from before a batch is applied to after.
pub(crate) type Prepared = Box<dyn Any + Send>;

/// The log sequence numbers of one batch: each document change (in the batch's key
/// order) gets one, from `first`; a batch that may change a principal or a collection's
/// rules gets one more, the last (`rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lsns {
    pub(crate) first: u64,
    pub(crate) documents: u64,
    pub(crate) rules: Option<u64>,
}

impl Lsns {
    /// The last number of the batch, or the one before it when it takes none.
    pub(crate) fn last(&self) -> u64 {
        self.first + self.documents + u64::from(self.rules.is_some()) - 1
    }
}

/// Sees every batch committed, under the writer lock, so in commit order: before it is
/// applied (to read what it replaces, and to add the writes that go with it) and after.
/// It must not block: writers never wait for readers.
pub(crate) trait CommitObserver: Send + Sync {
    /// Before `batch` is applied; may add to it. An error fails the write. What it
    /// returns is handed to [`CommitObserver::committed`].
    fn prepare(
        &self,
        engine: &Engine,
        batch: &mut WriteBatch,
        lsns: Lsns,
    ) -> Result<Option<Prepared>>;
    /// After `batch` was applied.
    fn committed(
        &self,
        engine: &Engine,
        batch: &WriteBatch,
        prepared: Option<Prepared>,
        lsns: Lsns,
    );
}

pub(crate) struct Engine {
    pub(crate) store: Store,
    pub(crate) options: Options,
    /// Role and word bitmaps in memory; see `index::cache`.
    pub(crate) bitmaps: BitmapCache,
    /// Decoded documents in memory; see `document::cache`.
    pub(crate) documents: DocumentCache,
    /// INVARIANT (single-writer): every write takes this lock for its whole
    /// read-check-write, so checks and index containers read inside a write are current.
    writer: Mutex<()>,
    /// Moves past every committed write that can change or revoke a client's principal
    /// (as `principal_rule` says); clients derive their principal again when it moved.
    auth_epoch: AtomicU64,
    principal_rule: PrincipalRule,
    /// The last log sequence number given to a document change (stored at
    /// `keys::last_lsn`); moved under the writer lock only.
    last_lsn: AtomicU64,
    observer: OnceLock<Arc<dyn CommitObserver>>,
    /// INVARIANT (commit-parity): odd while a batch is being applied and the cached
    /// documents and bitmaps it touched dropped, even otherwise; moved only by `commit`, under the
    /// writer lock. A read that saw the same even value before and after it read one state
    /// of the store and of the caches (`consistent`).
    applying: AtomicU64,
}

/// The odd stretch of `Engine::applying` (INVARIANT commit-parity) around applying
/// `batch`: made odd when made; when dropped, a panic in between included, the cached
/// bitmaps and documents the batch touched are dropped, then the counter is even again.
struct Applying<'a> {
    engine: &'a Engine,
    batch: &'a WriteBatch,
}

impl<'a> Applying<'a> {
    fn start(engine: &'a Engine, batch: &'a WriteBatch) -> Applying<'a> {
        engine.applying.fetch_add(1, Ordering::SeqCst);
        Applying { engine, batch }
    }
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        // Documents first: what a read may return past the permission bitmaps.
        self.engine.documents.invalidate(self.batch);
        self.engine.bitmaps.invalidate(self.batch);
        self.engine.applying.fetch_add(1, Ordering::SeqCst);
    }
}

/// How many times [`Engine::consistent`] reads before it takes the writer lock.
const OPTIMISTIC_READS: usize = 4;

/// What a query reads: the committed store, the cached bitmaps and documents and the
/// limits, never a write (nor a view of pending writes: the caches hold committed state).
#[derive(Clone, Copy)]
pub(crate) struct ReadView<'a> {
    pub(crate) store: &'a Store,
    pub(crate) bitmaps: &'a BitmapCache,
    pub(crate) documents: &'a DocumentCache,
    pub(crate) limits: Limits,
}

impl Engine {
    /// Opens the store in `path` (a temporary one without), checking its format version.
    pub(crate) fn open(
        path: Option<&Path>,
        options: Options,
        principal_rule: PrincipalRule,
    ) -> Result<Engine> {
        options.validate()?;
        let flush_ms = match options.durability {
            Durability::Immediate => None,
            Durability::Periodic { every_ms } => Some(every_ms.max(1)),
        };
        let found = match path {
            Some(dir) => crate::store::engine_of(dir)?,
            None => None,
        };
        let engine = found.unwrap_or(options.backend);
        let backend: Arc<dyn crate::store::Backend> = match engine {
            StorageEngine::Sled => {
                Arc::new(SledBackend::open(path, options.cache_bytes, flush_ms)?)
            }
            StorageEngine::Redb => {
                Arc::new(RedbBackend::open(path, options.cache_bytes, flush_ms)?)
            }
        };
        let store = Store::new(backend);
        check_format(&store)?;
        let last_lsn = load_last_lsn(&store)?;
        Ok(Engine {
            store,
            documents: DocumentCache::new(options.document_cache_bytes),
            options,
            bitmaps: BitmapCache::default(),
            writer: Mutex::new(()),
            auth_epoch: AtomicU64::new(0),
            principal_rule,
            last_lsn: AtomicU64::new(last_lsn),
            observer: OnceLock::new(),
            applying: AtomicU64::new(0),
        })
    }

    /// Sets the one observer of commits (at open).
    pub(crate) fn observe(&self, observer: Arc<dyn CommitObserver>) {
        // Set once, at open, before any write: a second call is a bug and changes nothing.
        let _ = self.observer.set(observer);
    }

    /// Runs `f` under the writer lock without writing: no commit falls inside it.
    pub(crate) fn exclusive<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.lock();
        f()
    }

    /// Takes `lsn` as the last number given out: for a write made outside `commit`'s
    /// numbering (the mark of a store older than the feed), under the writer lock.
    pub(crate) fn numbered_up_to(&self, lsn: u64) {
        let _guard = self.lock();
        self.last_lsn.fetch_max(lsn, Ordering::AcqRel);
    }

    /// Runs `read` (which must not write) so that all it reads, from the store and the
    /// cached bitmaps, is one state of the store: a `find`'s page, its total and the
    /// collection's rules agree. Optimistic: `read` runs again when a commit landed while
    /// it ran (see `applying`), at most `OPTIMISTIC_READS` times; then once more under the
    /// writer lock, where no commit can land. Readers never make a writer wait but in that
    /// last case, which only a stream of commits faster than one read can cause.
    pub(crate) fn consistent<T>(&self, mut read: impl FnMut() -> Result<T>) -> Result<T> {
        for _ in 0..OPTIMISTIC_READS {
            let Some(before) = self.settled() else {
                break;
            };
            let out = read();
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.applying.load(Ordering::SeqCst) == before {
                return out;
            }
        }
        let _guard = self.lock();
        read()
    }

    /// The parity counter once no batch is being applied: waits for the one being
    /// applied (a commit, an fsync on redb's `Immediate` at most) without taking a lock;
    /// `None` after about 100 ms of a commit that does not end (the caller takes the lock).
    fn settled(&self) -> Option<u64> {
        for spins in 0..2_064u32 {
            let now = self.applying.load(Ordering::SeqCst);
            if now.is_multiple_of(2) {
                return Some(now);
            }
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
        None
    }

    /// The last log sequence number given to a document change; 0 before the first.
    pub(crate) fn last_lsn(&self) -> u64 {
        self.last_lsn.load(Ordering::Acquire)
    }

    /// The part of the engine a query reads through.
    pub(crate) fn read_view(&self) -> ReadView<'_> {
        ReadView {
            store: &self.store,
            bitmaps: &self.bitmaps,
            documents: &self.documents,
            limits: self.options.limits,
        }
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
        self.commit(batch)?;
        Ok(out)
    }

    /// Like [`Engine::write`], for a write made of steps: each step reads the store as
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
        let Steps { base, done } = steps;
        drop(base);
        self.commit(Arc::unwrap_or_clone(done))?;
        Ok(out)
    }

    /// Applies `batch` (under the writer lock), invalidating what it may have changed.
    /// Its document changes get the next log sequence numbers, one each in key order,
    /// and the last of them is written in the same batch (INVARIANT lsn-atomic: a change
    /// and its number are durable together, so numbers survive a crash and never repeat).
    fn commit(&self, mut batch: WriteBatch) -> Result<()> {
        let documents = batch
            .ops()
            .filter(|(tree, key, _)| *tree == Tree::Docs && keys::is_doc_key(key))
            .count() as u64;
        let first = self.last_lsn() + 1;
        let rules =
            ((self.principal_rule)(&batch) || changes_rules(&batch)).then_some(first + documents);
        let lsns = Lsns {
            first,
            documents,
            rules,
        };
        let observer = self.observer.get();
        let prepared = match observer {
            Some(o) => o.prepare(self, &mut batch, lsns)?,
            None => None,
        };
        let numbered = lsns.last() >= first;
        if numbered {
            batch.put(
                Tree::Docs,
                keys::last_lsn(),
                lsns.last().to_be_bytes().to_vec(),
            );
        }
        let applying = Applying::start(self, &batch);
        let applied = self.store.apply(&batch);
        // Whatever happened to the batch (a panic included), cached bitmaps and documents
        // it touched may be stale now: the guard drops them, then ends the odd stretch.
        drop(applying);
        if (self.principal_rule)(&batch) {
            self.auth_epoch.fetch_add(1, Ordering::AcqRel);
        }
        applied?;
        if numbered {
            self.last_lsn.store(lsns.last(), Ordering::Release);
        }
        let flushed = if self.options.durability == Durability::Immediate && !batch.is_empty() {
            self.store.flush()
        } else {
            Ok(())
        };
        // The batch is applied (a failed flush does not undo it): observers must see it,
        // or a subscription would keep a principal the batch revoked.
        if let Some(observer) = observer {
            observer.committed(self, &batch, prepared, lsns);
        }
        flushed
    }

    /// The count of committed writes that may have changed a principal.
    pub(crate) fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(Ordering::Acquire)
    }

    /// The store's clock reading (`Options::clock`).
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.options.clock.now()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        crate::timefmt::to_millis(self.now())
    }
}

/// The steps of one write under the writer lock; see [`Engine::write_steps`].
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

/// The permission check of the client a call acts for, kept per thread while the call
/// runs, so that [`Engine::write`] makes it again under the writer lock.
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

/// Whether `batch` writes a schema or collection record (rules that decide who reads).
fn changes_rules(batch: &WriteBatch) -> bool {
    batch.ops().any(|(tree, key, _)| {
        tree == Tree::Meta
            && (key.starts_with(keys::COLLECTIONS_PREFIX) || key.starts_with(keys::SCHEMA_PREFIX))
    })
}

/// The last log sequence number a store gave out (0 for a store without one).
fn load_last_lsn(store: &Store) -> Result<u64> {
    match store.get(Tree::Docs, &keys::last_lsn())? {
        None => Ok(0),
        Some(bytes) => bytes
            .first_chunk::<8>()
            .filter(|_| bytes.len() == 8)
            .map(|b| u64::from_be_bytes(*b))
            .ok_or_else(|| Error::corrupt("the last log sequence number", "not 8 bytes")),
    }
}

/// Checks the stored format version, writing it into a new store.
fn check_format(store: &Store) -> Result<()> {
    match crate::store::stored_version(store)? {
        Some(version) if version == keys::FORMAT_VERSION => Ok(()),
        Some(found) => Err(Error::UpgradeRequired {
            found,
            expected: keys::FORMAT_VERSION,
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_another_format_version_asks_for_an_upgrade() {
        let store = Store::new(Arc::new(SledBackend::open(None, 1 << 20, None).unwrap()));
        check_format(&store).unwrap();
        check_format(&store).expect("a store of this build's format opens again");
        let mut batch = WriteBatch::default();
        let older = keys::FORMAT_VERSION - 1;
        batch.put(
            Tree::Meta,
            keys::VERSION.to_vec(),
            older.to_le_bytes().to_vec(),
        );
        store.apply(&batch).unwrap();
        match check_format(&store) {
            Err(Error::UpgradeRequired { found, expected }) => {
                assert_eq!((found, expected), (older, keys::FORMAT_VERSION));
            }
            other => panic!("expected UpgradeRequired, got {other:?}"),
        }
    }
}
