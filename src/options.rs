//! `Options` for opening a store: durability, cache, limits on input, and the clock.
//! Every default is stated on its setter.

use std::fmt;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

/// Source of the current time. Inject a [`ManualClock`] to test expiry.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    #[must_use]
    pub fn new(start: OffsetDateTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the clock to `t` (forward or back).
    pub fn set(&self, t: OffsetDateTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// When an acknowledged write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every write is flushed (fsync) before it returns: an acknowledged write
    /// survives a crash of the process or the machine.
    Immediate,
    /// sled flushes in the background every `every_ms` milliseconds: a crash can
    /// lose the writes of the last interval, never half a write.
    Periodic {
        /// Flush interval in milliseconds.
        every_ms: u64,
    },
}

/// The storage engine under a store, chosen when the store is created and found again
/// from its files when it is opened (an existing store keeps its engine whatever
/// [`Options::backend`] says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StorageEngine {
    /// sled 0.34: one directory of sled files. The default.
    #[default]
    Sled,
    /// redb: one file, `permdb.redb`, in the store's directory.
    Redb,
}

/// Limits on documents, each checked on create and update with `InvalidDocument` or `LimitExceeded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded document (attributes and permissions), in bytes. Default 1 MiB.
    pub max_document_bytes: usize,
    /// Deepest nesting of arrays and objects, the document's own object included. Default 32.
    pub max_depth: usize,
    /// Most top-level attributes in one document. Default 1,000.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_document_bytes: 1 << 20,
            max_depth: 32,
            max_fields: 1000,
        }
    }
}

/// Longest token lifetime [`Options::jwt_ttl`] accepts.
pub const MAX_JWT_TTL: time::Duration = time::Duration::hours(1);
/// Largest leeway [`Options::token_leeway`] accepts.
pub const MAX_TOKEN_LEEWAY: time::Duration = time::Duration::minutes(5);

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) cache_bytes: u64,
    pub(crate) document_cache_bytes: usize,
    pub(crate) limits: Limits,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) project: String,
    pub(crate) session_ttl: time::Duration,
    pub(crate) jwt_ttl: time::Duration,
    pub(crate) token_leeway: time::Duration,
    pub(crate) password_hashing: PasswordHashing,
    pub(crate) sign_in_failures: u32,
    pub(crate) sign_in_window: time::Duration,
    pub(crate) tombstone_retention: time::Duration,
    pub(crate) max_subscriptions: usize,
    pub(crate) max_subscriptions_per_owner: usize,
    pub(crate) backend: StorageEngine,
    pub(crate) upgrade: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::Immediate,
            cache_bytes: 256 << 20,
            document_cache_bytes: 64 << 20,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            project: "default".into(),
            session_ttl: time::Duration::days(365),
            jwt_ttl: time::Duration::minutes(15),
            token_leeway: time::Duration::seconds(60),
            password_hashing: PasswordHashing::default(),
            sign_in_failures: 10,
            sign_in_window: time::Duration::minutes(15),
            tombstone_retention: time::Duration::days(30),
            max_subscriptions: 100_000,
            max_subscriptions_per_owner: 1_000,
            backend: StorageEngine::Sled,
            upgrade: false,
        }
    }
}

impl Options {
    /// Default options: see each setter.
    #[must_use]
    pub fn new() -> Options {
        Options::default()
    }

    /// When writes reach the disk. Default [`Durability::Immediate`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Options {
        self.durability = durability;
        self
    }

    /// The storage engine of a store this opens that does not exist yet. Default
    /// [`StorageEngine::Sled`]. An existing store opens with the engine it was made with.
    #[must_use]
    pub fn backend(mut self, engine: StorageEngine) -> Options {
        self.backend = engine;
        self
    }

    /// Whether opening a store of the previous on-disk format upgrades it first, as
    /// [`crate::Db::upgrade`] does (keeping the old store beside it). Default `false`: such
    /// a store is refused with [`crate::Error::UpgradeRequired`], so that no build rewrites
    /// a store its owner did not ask it to.
    #[must_use]
    pub fn upgrade(mut self, on: bool) -> Options {
        self.upgrade = on;
        self
    }

    /// The storage engine's page cache size in bytes (sled's or redb's). Default 256 MiB.
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Options {
        self.cache_bytes = bytes;
        self
    }

    /// The most memory, in bytes (estimated), of decoded documents kept for reads:
    /// a page or fetch of documents read before skips the store and the decoding. Every
    /// write drops the documents it changed; the least recently read go first when it is
    /// full. 0 keeps none. Default 64 MiB.
    #[must_use]
    pub fn document_cache_bytes(mut self, bytes: usize) -> Options {
        self.document_cache_bytes = bytes;
        self
    }

    /// Limits on documents. Default [`Limits::default`].
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Options {
        self.limits = limits;
        self
    }

    /// The clock used for timestamps and expiry. Default [`SystemClock`].
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Options {
        self.clock = clock;
        self
    }

    /// The project id tokens are issued for and checked against (an id). Default `"default"`.
    #[must_use]
    pub fn project(mut self, project: impl Into<String>) -> Options {
        self.project = project.into();
        self
    }

    /// How long a session lasts. Default one year.
    #[must_use]
    pub fn session_ttl(mut self, ttl: time::Duration) -> Options {
        self.session_ttl = ttl;
        self
    }

    /// How long the changes feed keeps the tombstones of deleted documents; a
    /// `Collection::changes` from before the oldest kept is `ResyncRequired`. At least a
    /// second. Default 30 days.
    #[must_use]
    pub fn tombstone_retention(mut self, retention: time::Duration) -> Options {
        self.tombstone_retention = retention;
        self
    }

    /// Most live subscriptions (`Collection::watch`) open at once in the store, and per
    /// user or API key; past either, `watch` is `LimitExceeded`. Each holds up to
    /// `WATCH_QUEUE` events in memory. Default 100,000 and 1,000.
    #[must_use]
    pub fn max_subscriptions(mut self, total: usize, per_owner: usize) -> Options {
        self.max_subscriptions = total;
        self.max_subscriptions_per_owner = per_owner;
        self
    }

    /// How long a token lasts, at most [`MAX_JWT_TTL`]; opening fails above it. Default 15 minutes.
    #[must_use]
    pub fn jwt_ttl(mut self, ttl: time::Duration) -> Options {
        self.jwt_ttl = ttl;
        self
    }

    /// Clock skew tolerated on a token's issue and expiry times, at most
    /// [`MAX_TOKEN_LEEWAY`]. Default 60 seconds.
    #[must_use]
    pub fn token_leeway(mut self, leeway: time::Duration) -> Options {
        self.token_leeway = leeway;
        self
    }

    /// Argon2id cost of new password hashes. Default [`PasswordHashing::default`].
    #[must_use]
    pub fn password_hashing(mut self, cost: PasswordHashing) -> Options {
        self.password_hashing = cost;
        self
    }

    /// After `failures` failed sign-ins for one email within `window`, further attempts
    /// for it are refused with `TooManyRequests` until the window has passed.
    /// Default 10 per 15 minutes.
    #[must_use]
    pub fn sign_in_limit(mut self, failures: u32, window: time::Duration) -> Options {
        self.sign_in_failures = failures;
        self.sign_in_window = window;
        self
    }

    /// Refuses values no store should run with.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |msg: String| Err(crate::Error::InvalidArgument(msg));
        crate::id::check_id("project", &self.project)?;
        if self.jwt_ttl <= time::Duration::ZERO || self.jwt_ttl > MAX_JWT_TTL {
            return bad(format!(
                "jwt_ttl must be above zero and at most {MAX_JWT_TTL}"
            ));
        }
        if self.tombstone_retention < time::Duration::SECOND {
            return bad("tombstone_retention must be at least a second".into());
        }
        if self.token_leeway < time::Duration::ZERO || self.token_leeway > MAX_TOKEN_LEEWAY {
            return bad(format!("token_leeway must be 0 to {MAX_TOKEN_LEEWAY}"));
        }
        let cost = self.password_hashing;
        if cost.memory_kib > MAX_HASH_MEMORY_KIB
            || cost.iterations > MAX_HASH_ITERATIONS
            || cost.parallelism > MAX_HASH_PARALLELISM
        {
            return bad(format!(
                "password_hashing must stay within m={MAX_HASH_MEMORY_KIB} KiB, \
                 t={MAX_HASH_ITERATIONS}, p={MAX_HASH_PARALLELISM}"
            ));
        }
        if self.session_ttl <= time::Duration::ZERO {
            return bad("session_ttl must be above zero".into());
        }
        if self.sign_in_failures == 0 {
            return bad("sign_in_limit needs at least one failure".into());
        }
        Ok(())
    }
}

/// Argon2id cost for new password hashes (an option of the store: defined here, used by
/// `auth::password`, which re-exports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    /// Memory in KiB. Default 19,456 (19 MiB, OWASP's recommendation).
    pub memory_kib: u32,
    /// Passes over memory. Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub parallelism: u32,
}

/// Most memory (KiB) a password hash may ask for: 1 GiB, 50 times the default. A stored
/// hash past any of these caps never verifies (it may come from an import), so a store's
/// own cost must stay within them.
pub(crate) const MAX_HASH_MEMORY_KIB: u32 = 1 << 20;
/// Most passes a password hash may ask for.
pub(crate) const MAX_HASH_ITERATIONS: u32 = 16;
/// Most lanes a password hash may ask for.
pub(crate) const MAX_HASH_PARALLELISM: u32 = 16;

impl Default for PasswordHashing {
    fn default() -> PasswordHashing {
        PasswordHashing {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}
