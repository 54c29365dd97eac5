//! Bitmap indexes over document sequences: per collection, the live set and, per
//! action and role, the documents granting it. One stored key per Roaring container.
//!
//! INVARIANT (index-matches-docs): for every collection, `Live` holds exactly the
//! sequences in the docs tree, and `(action, role)` holds exactly the sequences whose
//! stored permissions grant `action` to `role`; the attribute and fulltext indexes hold
//! what `Contribution::of` says each document contributes. Upheld by applying the change
//! of a document's contribution (`Contribution::apply_change`, through `IndexEdits`)
//! in the same `WriteBatch` as the document change.

pub(crate) mod attr;
mod cache;
mod container;
mod contribution;
mod stream;

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::perm::Action;
use crate::store::{Direction, Store, Tree, WriteBatch, keys};

pub(crate) use cache::{BitmapCache, RoleBitmaps};
pub(crate) use contribution::Contribution;
pub(crate) use stream::{BitmapStream, Counters, MeetStream, MergedStream};

/// Which bitmap of a collection. The byte is part of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum IndexKind {
    /// Every live document (role is empty).
    Live = 0,
    Read = 1,
    Update = 2,
    Delete = 3,
    /// Words of a fulltext index (role is `index-number:word`).
    Fulltext = 4,
}

impl IndexKind {
    /// The bitmap kind that indexes grants of `action` (documents grant read, update, delete).
    pub(crate) fn for_action(action: Action) -> Option<IndexKind> {
        match action {
            Action::Read => Some(IndexKind::Read),
            Action::Update => Some(IndexKind::Update),
            Action::Delete => Some(IndexKind::Delete),
            Action::Create | Action::Write => None,
        }
    }
}

/// Prefix of every container key of one bitmap: `cid kind len role` (`store::keys`).
pub(crate) fn bitmap_prefix(cid: u32, kind: IndexKind, role: &str) -> Vec<u8> {
    keys::bitmap_prefix(cid, kind as u8, role)
}

/// The high 16 bits of a sequence: which container holds it.
fn high_bits(seq: u32) -> u16 {
    (seq >> 16) as u16
}

fn decode_container(key: &[u8], prefix_len: usize, bytes: &[u8]) -> Result<RoaringBitmap> {
    let high = container_high(key, prefix_len)?;
    container::decode(bytes, high)
        .map_err(|e| Error::corrupt(format!("index container {key:02x?}"), e))
}

/// The stored form of one container's values (all under one container key).
pub(crate) fn encode_container(values: &RoaringBitmap) -> Vec<u8> {
    container::encode(values)
}

/// Decodes one stored container's bytes as if stored under high bits 0 (for the fuzz targets).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_container_bytes(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    container::decode(bytes, 0)
}

/// The high 16 bits stored at the end of a container key.
fn container_high(key: &[u8], prefix_len: usize) -> Result<u16> {
    keys::container_high(key, prefix_len)
        .ok_or_else(|| Error::corrupt(format!("index key {key:02x?}"), "bad container key length"))
}

/// The container key holding `seq` in bitmap `(cid, kind, role)`.
pub(crate) fn container_key_of(cid: u32, kind: IndexKind, role: &str, seq: u32) -> Vec<u8> {
    keys::container(&bitmap_prefix(cid, kind, role), high_bits(seq))
}

/// Every stored container of collection `cid` (live set, permissions, fulltext words), decoded.
pub(crate) fn stored_containers(
    store: &Store,
    cid: u32,
) -> Result<BTreeMap<Vec<u8>, std::result::Result<RoaringBitmap, String>>> {
    let mut out = BTreeMap::new();
    for entry in store.scan_prefix_keyed(
        Tree::PermIndex,
        &keys::collection_data(cid),
        Direction::Forward,
    ) {
        let (k, v) = entry?;
        // The high bits are the key's last two bytes; the prefix length follows from that.
        let decoded = match (k.len().checked_sub(2), v) {
            (_, Err(e)) => Err(e.to_string()),
            (Some(prefix_len), Ok(v)) => {
                decode_container(&k, prefix_len, &v).map_err(|e| e.to_string())
            }
            (None, Ok(_)) => Err("key too short".into()),
        };
        out.insert(k.to_vec(), decoded);
    }
    Ok(out)
}

/// Index changes gathered for one write, grouped by container.
#[derive(Debug, Default)]
pub(crate) struct IndexEdits {
    /// container key -> (prefix length, sequences to add, sequences to remove)
    edits: BTreeMap<Vec<u8>, (usize, Vec<u32>, Vec<u32>)>,
}

impl IndexEdits {
    fn entry(
        &mut self,
        cid: u32,
        kind: IndexKind,
        role: &str,
        seq: u32,
    ) -> &mut (usize, Vec<u32>, Vec<u32>) {
        let prefix = bitmap_prefix(cid, kind, role);
        let prefix_len = prefix.len();
        let key = keys::container(&prefix, high_bits(seq));
        self.edits
            .entry(key)
            .or_insert_with(|| (prefix_len, Vec::new(), Vec::new()))
    }

    pub(crate) fn add(&mut self, cid: u32, kind: IndexKind, role: &str, seq: u32) {
        self.entry(cid, kind, role, seq).1.push(seq);
    }

    pub(crate) fn remove(&mut self, cid: u32, kind: IndexKind, role: &str, seq: u32) {
        self.entry(cid, kind, role, seq).2.push(seq);
    }

    /// Reads each touched container, applies the edits and puts the result in `batch`.
    /// Must run under the store's write lock, so no other write changes the containers meanwhile.
    pub(crate) fn write(self, store: &Store, batch: &mut WriteBatch) -> Result<()> {
        for (key, (prefix_len, add, remove)) in self.edits {
            let mut values = match store.get(Tree::PermIndex, &key)? {
                Some(bytes) => decode_container(&key, prefix_len, &bytes)?,
                None => RoaringBitmap::new(),
            };
            for seq in remove {
                values.remove(seq);
            }
            for seq in add {
                values.insert(seq);
            }
            if values.is_empty() {
                batch.remove(Tree::PermIndex, key);
            } else {
                batch.put(Tree::PermIndex, key, container::encode(&values));
            }
        }
        Ok(())
    }
}

/// The roles starting with `prefix` that have a bitmap of `kind` in collection `cid`.
/// Reads every container key of that kind (keys only): for rare calls, such as deleting
/// a team, whose roles are not known one by one.
pub(crate) fn roles_with_prefix(
    store: &Store,
    cid: u32,
    kind: IndexKind,
    prefix: &str,
) -> Result<Vec<String>> {
    let mut of_kind = keys::collection_data(cid).to_vec();
    of_kind.push(kind as u8);
    let mut roles: Vec<String> = Vec::new();
    for entry in store.scan_prefix_keyed(Tree::PermIndex, &of_kind, Direction::Forward) {
        let (key, _) = entry?;
        let role = key
            .get(..key.len().saturating_sub(2))
            .and_then(keys::bitmap_parts)
            .map(|(_, _, role)| role);
        if let Some(role) = role.filter(|r| r.starts_with(prefix))
            && roles.last().is_none_or(|last| last != role)
        {
            roles.push(role.to_owned());
        }
    }
    Ok(roles)
}

/// Loads a whole bitmap (every container), counting the work in `counters`.
pub(crate) fn load_bitmap(
    store: &Store,
    cid: u32,
    kind: IndexKind,
    role: &str,
    counters: &Counters,
) -> Result<RoaringBitmap> {
    counters.bitmap_opened();
    let prefix = bitmap_prefix(cid, kind, role);
    let mut out = RoaringBitmap::new();
    for entry in store.scan_prefix(Tree::PermIndex, &prefix, Direction::Forward) {
        let (key, bytes) = entry?;
        counters.container_read();
        // Containers hold disjoint ranges, so this union only adds containers.
        out |= decode_container(&key, prefix.len(), &bytes)?;
    }
    Ok(out)
}
