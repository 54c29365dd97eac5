//! permdb: an embedded document store in which every read and write is checked
//! against Appwrite-style permissions such as `read("user:user-a")`.
//!
//! Permissions compile into Roaring bitmap indexes stored beside the documents,
//! so a `find` made as a user costs in proportion to what that user may see, not
//! to the size of the collection. The root client skips the permission filter.
//!
//! # Example: the seed scenario
//!
//! ```
//! use permdb::{CollectionSpec, Db, Permission, Query, Role};
//! use serde_json::json;
//!
//! # fn main() -> permdb::Result<()> {
//! let db = Db::temporary()?;
//! let root = db.root();
//! root.schemas().create("db", "Database")?;
//! root.schema("db").collections().create(
//!     CollectionSpec::new("birthdays", "Birthdays")
//!         .permissions([Permission::create(Role::users())])
//!         .document_security(true),
//! )?;
//! let birthdays = root.schema("db").collection("birthdays");
//! for (id, name, day, user) in [
//!     ("doc1", "Kevin", "2012-02-03", "user-a"),
//!     ("doc2", "Laura", "1999-09-22", "user-b"),
//!     ("doc3", "Bob", "1982-05-11", "user-c"),
//! ] {
//!     let perms = vec![Permission::read(Role::user(user))];
//!     birthdays.create(id, json!({"name": name, "birthday": day}), Some(perms))?;
//! }
//!
//! // As user-a: only Kevin.
//! let alice = root.impersonate("user-a")?;
//! let page = alice.schema("db").collection("birthdays").find(&[Query::limit(25)])?;
//! assert_eq!(page.total, 1);
//! assert_eq!(page.documents[0].get("name"), Some(&json!("Kevin")));
//!
//! // As root: all three.
//! assert_eq!(birthdays.find(&[])?.total, 3);
//! # Ok(())
//! # }
//! ```

mod account;
mod admin;
mod attribute;
mod auth;
mod catalog;
mod changes;
mod client;
mod collection;
#[cfg(test)]
mod corpus_replay;
mod db;
pub mod demo;
mod document;
mod dump;
mod engine;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
mod fuzz_document;
mod id;
mod index;
mod integrity;
mod live;
mod options;
mod perm;
mod query;
mod revoke;
mod secret;
mod store;
mod text;
mod timefmt;
mod token;
mod transaction;
mod upgrade;
mod value;
pub mod wire;

pub use account::Account;
pub use admin::{Keys, Teams, TokenKeys, Users};
pub use attribute::{AttributeSpec, AttributeType, MAX_ATTRIBUTES, MAX_STRING_SIZE, TextKind};
pub use auth::keys::ApiKey;
pub use auth::password::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordHashing};
pub use auth::prefs::{MAX_PREFS_BYTES, MAX_PREFS_DEPTH};
pub use auth::sessions::Session;
pub use auth::teams::{MAX_MEMBERSHIP_ROLES, Membership, Team};
pub use auth::users::{MAX_EMAIL_LEN, MAX_LABELS, User};
pub use catalog::{CollectionInfo, CollectionSpec, SchemaInfo};
pub use changes::Changes;
pub use client::{AccountStamp, Actor, Client, Collections, Schema, Schemas};
pub use collection::{Collection, MAX_FIELD_NAME_LEN};
pub use db::{CacheStats, CompactReport, Db, DbStats, TreeStats};
pub use document::{Document, DocumentList};
pub use dump::{DUMP_VERSION, DumpProgress, DumpReport};
pub use error::{Denial, Error, ResourceKind, Result};
pub use id::{ID, MAX_ID_LEN, UNIQUE_ID};
pub use index::attr::{IndexSpec, IndexType, MAX_INDEXED_WORD, MAX_INDEXES};
pub use integrity::{IntegrityProgress, IntegrityReport};
pub use live::{Event, Subscription, WATCH_QUEUE};
pub use options::{
    Clock, Durability, Limits, MAX_JWT_TTL, MAX_TOKEN_LEEWAY, ManualClock, Options, StorageEngine,
    SystemClock,
};
pub use perm::{
    Action, MAX_LABEL_LEN, MAX_PERMISSIONS, MAX_TEAM_ROLE_LEN, Permission, Role, Scope,
    Verification,
};
pub use query::{
    DEFAULT_LIMIT, Explain, MAX_LIMIT, MAX_QUERIES, MAX_QUERY_DEPTH, MAX_QUERY_VALUES, Method,
    OrderPlan, Plan, Query, TOTAL_CAP,
};
pub use text::MAX_NAME_LEN;
pub use token::{
    Jwt, MAX_TOKEN_LEN, PublicKey, PublicKeys, TokenClaims, TokenError, TokenKind, TokenVerifier,
};
pub use transaction::{MAX_TRANSACTION_OPERATIONS, Outcome, StagedCollection, Transaction};
pub use upgrade::{UpgradeProgress, UpgradeReport};

/// Entry points for the fuzz targets under `fuzz/`: decoders of stored bytes, and the
/// document check. Enabled by the `fuzzing` feature (and in tests); not part of the API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::fuzz_document::DocumentTarget;

    /// Reads `text` as a JSON list of Appwrite's transaction operations; those that parse
    /// are staged (shape checks) and committed as one transaction of `client`. Returns
    /// how many parsed, and whether the commit landed.
    pub fn commit_operations(client: &crate::Client, text: &str) -> (usize, bool) {
        let Ok(serde_json::Value::Array(list)) = serde_json::from_str(text) else {
            return (0, false);
        };
        let mut tx = client.transaction();
        let mut parsed = 0;
        for op in list {
            let serde_json::Value::Object(op) = op else {
                continue;
            };
            if let Ok(op) = crate::transaction::wire::parse_operation(op) {
                parsed += 1;
                if op.stage(&mut tx).is_err() {
                    return (parsed, false);
                }
            }
        }
        (parsed, tx.commit().is_ok())
    }

    /// Decodes a stored document record and converts it to a [`crate::Document`].
    pub fn decode_document(bytes: &[u8]) -> crate::Result<crate::Document> {
        let record: crate::document::DocRecord =
            crate::store::codec::decode(bytes, || "document".into())?;
        record.into_document(1, "s", "c", 32, || "document".into())
    }

    /// Normalizes a datetime value as documents and queries do (`Err` names the fault).
    pub fn normalize_datetime(text: &str) -> Result<String, String> {
        crate::timefmt::normalize_datetime(text)
    }

    /// Re-encodes `bytes` as a format-3 record of kind `kind` (modulo the number of
    /// kinds), as `permdb upgrade` does, checking that the result reads back as written.
    /// Whether the bytes were accepted.
    #[cfg(feature = "format3-upgrade")]
    pub fn recode_format3(kind: u8, bytes: &[u8]) -> bool {
        use crate::store::keys::RecordKind;
        RecordKind::ALL
            .get(usize::from(kind) % RecordKind::ALL.len())
            .and_then(|kind| crate::upgrade::check_recode(*kind, bytes))
            .is_some()
    }

    /// Reads `bytes` as a dump into a temporary store, as `Db::import` reads one. Whether
    /// it was accepted.
    pub fn import_dump(bytes: &[u8]) -> bool {
        crate::dump::import_temporary(bytes)
    }

    /// Decodes a stored index container.
    pub fn decode_container(bytes: &[u8]) -> Result<u64, String> {
        crate::index::decode_container_bytes(bytes).map(|b| b.len())
    }
}
