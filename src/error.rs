//! The one error type of permdb and its typed families.
//! Messages are lowercase, name what was wrong and where, and never carry secrets.

use std::fmt;

/// What kind of thing was not found, for [`Error::NotFound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceKind {
    /// A schema (Appwrite "database").
    Schema,
    /// A collection inside a schema.
    Collection,
    /// A document inside a collection.
    Document,
    /// A user account.
    User,
    /// A session of a user.
    Session,
    /// An API key.
    ApiKey,
    /// A team.
    Team,
    /// A team membership.
    Membership,
    /// An attribute of a collection.
    Attribute,
    /// An index of a collection.
    Index,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Schema => "schema",
            ResourceKind::Collection => "collection",
            ResourceKind::Document => "document",
            ResourceKind::User => "user",
            ResourceKind::Session => "session",
            ResourceKind::ApiKey => "api key",
            ResourceKind::Team => "team",
            ResourceKind::Membership => "membership",
            ResourceKind::Attribute => "attribute",
            ResourceKind::Index => "index",
        })
    }
}

/// Why a call was refused as [`Error::Unauthorized`]; the message says more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// The client's roles are not granted the action (collection or document
    /// permissions), or a permission names a role the client does not hold.
    NotGranted,
    /// The credential lacks a scope the call needs (an API key, or the key behind an
    /// impersonated user), or the call is for the root client only.
    MissingScope,
    /// A wrong email or password (the two are never told apart).
    InvalidCredentials,
    /// The user is blocked.
    UserBlocked,
    /// A session secret or API key that is not valid, or a credential that has ended:
    /// expired, deleted, or its user gone.
    CredentialRefused,
    /// The call needs another kind of client (a signed-in user, no user, a session).
    WrongClient,
}

/// Every error permdb returns. Match on the variant; the message is for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing does not exist, or the client may not know that it exists.
    #[error("{kind} \"{id}\" not found")]
    NotFound {
        /// What was looked up.
        kind: ResourceKind,
        /// The id that was asked for.
        id: String,
    },
    /// The client may not make the call: [`Denial`] says why.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// Why.
        reason: Denial,
        /// What was refused, for people.
        message: String,
    },
    /// A permission string or value is malformed.
    #[error("invalid permission {0}")]
    InvalidPermission(String),
    /// A role string is malformed.
    #[error("invalid role {0}")]
    InvalidRole(String),
    /// A query is malformed or not supported.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A document body is malformed or breaks a limit.
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    /// An id (schema, collection, document, user) is malformed.
    #[error("invalid id {0}")]
    InvalidId(String),
    /// A token was refused: the variant says why.
    #[error("invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// An argument is malformed (email, password, name, option value, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Too many failed attempts; try again later.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// The thing already exists (an id, an email, a membership, or a unique index's
    /// values).
    #[error("conflict: {message}")]
    Conflict {
        /// What already exists: a document for a unique index's values too.
        kind: ResourceKind,
        /// The id the call tried to create or write: for a taken email, the user being
        /// created or changed; for a unique index's values, the document being written;
        /// for a membership, the user already a member. Never the other holder's id.
        id: String,
        /// What conflicted, for people.
        message: String,
    },
    /// A configured or built-in limit would be exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// Stored bytes could not be decoded: names what and where.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// The record or index entry that failed to decode, with its location.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The store was written in another format version than this build reads.
    #[error(
        "the store has format version {found}; this build reads version {expected}: upgrade it \
         with `permdb upgrade --data DIR` (or `Db::upgrade`, or `Options::upgrade`)"
    )]
    UpgradeRequired {
        /// The store's format version.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// A dump given to `Db::import` is not one this build can read, at `line` (counting
    /// from 1): bad JSON, an unknown or misplaced line, a value a write would refuse, or a
    /// dump cut short. Nothing is imported.
    #[error("invalid dump at line {line}: {message}")]
    InvalidDump {
        /// The line, counting from 1.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The changes feed cannot answer from `since`: the client must read its view again
    /// with `find` (then follow the feed from the number that read started at).
    #[error("resync needed from {since}: {reason}")]
    ResyncRequired {
        /// The `since` asked for.
        since: u64,
        /// Why: tombstones purged, the client's roles or the collection's rules changed.
        reason: String,
    },
    /// The storage engine or the system under it failed (I/O, a lock, encoding);
    /// [`std::error::Error::source`] gives the underlying error.
    #[error("storage error: {message}")]
    Storage {
        /// What failed, for people, ending with the underlying error's message (or, where
        /// that message is raw, such as a lock held by another process, what it means).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A promise between two parts of permdb was broken: a bug, reported instead of a
    /// panic.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result type of every fallible permdb call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `NotFound` of resource `kind` with id `id`.
    #[must_use]
    pub fn not_found(kind: ResourceKind, id: &str) -> Self {
        Error::NotFound {
            kind,
            id: id.to_owned(),
        }
    }

    pub(crate) fn conflict(kind: ResourceKind, id: &str, message: impl Into<String>) -> Self {
        Error::Conflict {
            kind,
            id: id.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(reason: Denial, message: impl Into<String>) -> Self {
        Error::Unauthorized {
            reason,
            message: message.into(),
        }
    }

    /// A storage failure caused by `source`, described by `message`. The message
    /// repeats the source's own, so that printing the error alone loses nothing.
    pub(crate) fn storage(
        message: impl fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Storage {
            message: format!("{message}: {source}"),
            source: Some(Box::new(source)),
        }
    }

    /// A failure of permdb's own logic with no underlying error (a broken promise between
    /// two parts of permdb, reported instead of a panic).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// Why a token was refused (defined here, beside [`Error`], so that errors depend on
/// nothing; `token` re-exports it). Each check of the verification order has its own variant;
/// messages help the caller and never contain the token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The text is longer than any token permdb issues.
    #[error("token is {len} bytes, at most {max}")]
    TooLong {
        /// Length of the text given.
        len: usize,
        /// The limit, [`crate::MAX_TOKEN_LEN`].
        max: usize,
    },
    /// The text does not start with `pdb<version>.`.
    #[error("not a permdb token (expected the prefix \"pdb1.\")")]
    BadPrefix,
    /// A permdb token of a version this build does not read.
    #[error("unsupported token version {0}")]
    UnsupportedVersion(u32),
    /// The payload is not canonical base64url without padding.
    #[error("token payload is not canonical base64url without padding")]
    BadEncoding,
    /// The payload is too short or too long for a token.
    #[error("token payload of {0} bytes has the wrong length")]
    BadLength(usize),
    /// The header names a token type this build does not know.
    #[error("unknown token type {0}")]
    UnknownType(u8),
    /// No verifying key with the header's key id (unknown, retired, or another store's).
    #[error("token signed by unknown key {0:016x}")]
    UnknownKey(u64),
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// Signed claims that do not decode (only a broken signer produces these).
    #[error("token claims malformed: {0}")]
    BadClaims(String),
    /// Issued for another project.
    #[error("token was issued for another project")]
    WrongProject,
    /// Past its expiry (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Issued in the future, or not valid yet (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// The session it was issued for has been deleted.
    #[error("the token's session no longer exists")]
    SessionRevoked,
    /// The session it was issued for has expired.
    #[error("the token's session has expired")]
    SessionExpired,
    /// The user has been deleted.
    #[error("the token's user no longer exists")]
    UserDeleted,
    /// The user has been blocked.
    #[error("the token's user is blocked")]
    UserBlocked,
    /// A one-time token used before.
    #[error("one-time token already used")]
    Reused,
}

thread_local! {
    /// Why the last value a type's own check refused was refused (see [`refuse`]).
    static REFUSAL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The error a type's `Deserialize` returns when its own check refuses a value, keeping
/// `why` for `store::codec`'s error: postcard drops the text of custom errors, and a
/// refused stored value must still say what was wrong. Harmless under serde_json.
pub(crate) fn refuse<E: serde::de::Error>(why: impl fmt::Display) -> E {
    let why = why.to_string();
    REFUSAL.with(|r| *r.borrow_mut() = Some(why.clone()));
    E::custom(why)
}

/// Takes the words [`refuse`] kept last on this thread.
pub(crate) fn take_refusal() -> Option<String> {
    REFUSAL.with(|r| r.borrow_mut().take())
}
