//! Revocation of a deleted user's or team's grants: removed from every collection's
//! permissions and every document's, so that a new account with the same id inherits nothing.

use serde_json::Map;

use crate::catalog::{all_collections, drop_grants};
use crate::document::{load_record, put_record};
use crate::error::{Error, Result};
use crate::index::{Contribution, IndexEdits, IndexKind, load_bitmap, roles_with_prefix};
use crate::options::Limits;
use crate::perm::Grant;
use crate::store::{Store, WriteBatch};

/// Grants to revoke: exact roles, and every role starting with a prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Revoked<'a> {
    pub(crate) roles: &'a [String],
    pub(crate) prefix: Option<&'a str>,
}

impl Revoked<'_> {
    pub(crate) fn names(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role) || self.prefix.is_some_and(|p| role.starts_with(p))
    }
}

/// Removes every grant to a revoked role from every collection's permissions and every
/// document's, with their permission index entries, into `batch` (under the writer lock).
/// Used when a user or a team is deleted, so that a new one with the same id inherits
/// nothing. The documents concerned are found through the permission index, so the work
/// grows with them (and, for a prefix, with the collection's index keys), not with the store.
pub(crate) fn revoke_grants(
    store: &Store,
    batch: &mut WriteBatch,
    revoked: Revoked<'_>,
    limits: Limits,
) -> Result<()> {
    for coll in all_collections(store)? {
        drop_grants(batch, &coll, |role| revoked.names(role))?;
        let mut edits = IndexEdits::default();
        let mut seqs = roaring::RoaringBitmap::new();
        let work = crate::index::Counters::default();
        for kind in [IndexKind::Read, IndexKind::Update, IndexKind::Delete] {
            let mut roles = revoked.roles.to_vec();
            if let Some(prefix) = revoked.prefix {
                roles.extend(roles_with_prefix(store, coll.cid, kind, prefix)?);
            }
            for role in &roles {
                seqs |= load_bitmap(store, coll.cid, kind, role, &work)?;
            }
        }
        for seq in seqs {
            let mut record = load_record(store, coll.cid, seq)?.ok_or_else(|| {
                Error::corrupt(
                    format!("permission index of collection {}", coll.id),
                    format!("names sequence {seq}, which has no document"),
                )
            })?;
            // Only grants change: the contributions of the grants alone (no index, no
            // data) differ exactly as the whole ones do, without decoding the data.
            let before = Contribution::of(coll.cid, &[], seq, record.grants(), &Map::new());
            record
                .permissions
                .retain(|grant: &Grant| !revoked.names(grant.role()));
            let after = Contribution::of(coll.cid, &[], seq, record.grants(), &Map::new());
            Contribution::apply_change(
                store,
                batch,
                &mut edits,
                coll.cid,
                (&record.id, seq),
                &before,
                &after,
            )?;
            put_record(batch, coll.cid, seq, &record, limits)?;
        }
        edits.write(store, batch)?;
    }
    Ok(())
}
