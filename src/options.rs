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

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) cache_bytes: u64,
    pub(crate) limits: Limits,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::Immediate,
            cache_bytes: 256 << 20,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
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

    /// sled's page cache size in bytes. Default 256 MiB.
    #[must_use]
    pub fn cache_bytes(mut self, bytes: u64) -> Options {
        self.cache_bytes = bytes;
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
}
