//! What one document contributes to its collection's indexes, and the change between two
//! contributions: the one function behind INVARIANT index-matches-docs.
//!
//! Writes apply the difference between a document's contribution before and after;
//! index creation the difference between one document's contribution under the old and
//! the new index list; `verify` and `repair` rebuild every index from the contributions
//! of all documents. No other code derives index content from documents.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::IndexEdits;
use super::IndexKind;
use super::attr::{IndexRecord, IndexType, check_unique};
use crate::error::Result;
use crate::perm::Grant;
use crate::store::{Store, Tree, WriteBatch};

/// The index content one document accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Contribution {
    /// The bitmaps holding the document, as (kind, role key): the live set, one per
    /// grant, and one per word of each fulltext index.
    pub(crate) bits: BTreeSet<(IndexKind, String)>,
    /// The document's entry in each key and unique index, with the name of its unique
    /// index when the entry takes part in that index's uniqueness (all its values present
    /// and not null: missing and null values are never duplicates, as in SQL).
    pub(crate) entries: BTreeMap<Vec<u8>, Option<String>>,
}

impl Contribution {
    /// What a document with `grants` and attributes `data`, at sequence `seq` of
    /// collection `cid` whose indexes are `indexes`, contributes.
    pub(crate) fn of(
        cid: u32,
        indexes: &[IndexRecord],
        seq: u32,
        grants: &[Grant],
        data: &Map<String, Value>,
    ) -> Contribution {
        let mut c = Contribution::default();
        c.bits.insert((IndexKind::Live, String::new()));
        for grant in grants {
            if let Some(kind) = IndexKind::for_action(grant.action()) {
                c.bits.insert((kind, grant.role().to_owned()));
            }
        }
        for index in indexes {
            match index.kind {
                IndexType::Fulltext => {
                    for word in index.words(data) {
                        c.bits.insert((IndexKind::Fulltext, index.word_role(&word)));
                    }
                }
                IndexType::Key | IndexType::Unique => {
                    let unique = (index.kind == IndexType::Unique
                        && index
                            .attributes
                            .iter()
                            .all(|a| data.get(a).is_some_and(|v| !v.is_null())))
                    .then(|| index.key.clone());
                    c.entries.insert(index.entry_of(cid, data, seq), unique);
                }
            }
        }
        c
    }

    /// Applies the change from `old` to `new` for document `doc_id` (sequence `seq`) of
    /// collection `cid`:
    /// bitmap memberships into `edits`, attribute entries removed and put in `batch`.
    /// A new entry of a unique index is first checked against the store and `batch`
    /// (`Conflict` when another document has the same values).
    pub(crate) fn apply_change(
        store: &Store,
        batch: &mut WriteBatch,
        edits: &mut IndexEdits,
        cid: u32,
        (doc_id, seq): (&str, u32),
        old: &Contribution,
        new: &Contribution,
    ) -> Result<()> {
        for (kind, role) in old.bits.difference(&new.bits) {
            edits.remove(cid, *kind, role, seq);
        }
        for (kind, role) in new.bits.difference(&old.bits) {
            edits.add(cid, *kind, role, seq);
        }
        for key in old.entries.keys() {
            if !new.entries.contains_key(key) {
                batch.remove(Tree::AttrIndex, key.clone());
            }
        }
        for (key, unique) in &new.entries {
            if old.entries.contains_key(key) {
                continue;
            }
            if let Some(index) = unique {
                check_unique(store, batch, index, key, (doc_id, seq))?;
            }
            batch.put(Tree::AttrIndex, key.clone(), Vec::new());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::perm::{Action, Permission, Role};

    fn index(key: &str, kind: IndexType, attributes: &[&str], number: u16) -> IndexRecord {
        IndexRecord {
            key: key.into(),
            kind,
            attributes: attributes.iter().map(|a| (*a).into()).collect(),
            number,
        }
    }

    fn grants(perms: &[Permission]) -> Vec<Grant> {
        perms.iter().filter_map(Grant::of_permission).collect()
    }

    #[test]
    fn a_document_contributes_its_live_bit_grants_words_and_entries() {
        let indexes = [
            index("by_name", IndexType::Key, &["name"], 0),
            index("one_email", IndexType::Unique, &["email"], 1),
            index("text", IndexType::Fulltext, &["bio"], 2),
        ];
        let data = json!({"name": "Ann", "email": "a@x", "bio": "Likes cats, likes dogs"});
        let c = Contribution::of(
            9,
            &indexes,
            5,
            &grants(&[
                Permission::read(Role::any()),
                Permission::update(Role::user("u")),
                Permission::delete(Role::team("t")),
            ]),
            data.as_object().unwrap(),
        );
        let bits: Vec<(IndexKind, &str)> = c.bits.iter().map(|(k, r)| (*k, r.as_str())).collect();
        assert_eq!(
            bits,
            [
                (IndexKind::Live, ""),
                (IndexKind::Read, "any"),
                (IndexKind::Update, "user:u"),
                (IndexKind::Delete, "team:t"),
                (IndexKind::Fulltext, "2:cats"),
                (IndexKind::Fulltext, "2:dogs"),
                (IndexKind::Fulltext, "2:likes"),
            ]
        );
        let obj = data.as_object().unwrap();
        let entries: Vec<(Vec<u8>, Option<String>)> = c.entries.into_iter().collect();
        assert_eq!(
            entries,
            [
                (indexes[0].entry_of(9, obj, 5), None),
                (indexes[1].entry_of(9, obj, 5), Some("one_email".into())),
            ]
        );
    }

    #[test]
    fn missing_or_null_values_take_no_part_in_uniqueness() {
        let indexes = [index("pair", IndexType::Unique, &["a", "b"], 0)];
        for data in [json!({"a": 1}), json!({"a": 1, "b": null})] {
            let c = Contribution::of(1, &indexes, 1, &[], data.as_object().unwrap());
            assert_eq!(c.entries.values().collect::<Vec<_>>(), [&None], "{data}");
        }
        let c = Contribution::of(
            1,
            &indexes,
            1,
            &[],
            json!({"a": 1, "b": 2}).as_object().unwrap(),
        );
        assert_eq!(
            c.entries.values().collect::<Vec<_>>(),
            [&Some("pair".to_string())]
        );
    }

    #[test]
    fn a_change_edits_only_the_difference() {
        let indexes = [index("by_name", IndexType::Key, &["name"], 0)];
        let read = grants(&[Permission::new(Action::Read, Role::any())]);
        let old = Contribution::of(
            1,
            &indexes,
            3,
            &read,
            json!({"name": "a"}).as_object().unwrap(),
        );
        let new = Contribution::of(
            1,
            &indexes,
            3,
            &[],
            json!({"name": "b"}).as_object().unwrap(),
        );
        let backend = crate::store::SledBackend::open(None, 1 << 20, None).unwrap();
        let store = crate::store::Store::new(std::sync::Arc::new(backend));
        let mut batch = WriteBatch::default();
        let mut edits = IndexEdits::default();
        Contribution::apply_change(&store, &mut batch, &mut edits, 1, ("d", 3), &old, &new)
            .unwrap();
        let ops: Vec<(Tree, Vec<u8>, bool)> = batch
            .ops()
            .map(|(t, k, v)| (t, k.to_vec(), v.is_some()))
            .collect();
        let old_entry = old.entries.keys().next().unwrap().clone();
        let new_entry = new.entries.keys().next().unwrap().clone();
        assert_eq!(
            ops,
            [
                (Tree::AttrIndex, old_entry, false),
                (Tree::AttrIndex, new_entry, true)
            ]
        );
        assert_eq!(
            edits.edits.len(),
            1,
            "only the read bit changes: the live bit stays"
        );
    }
}
