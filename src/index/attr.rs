//! Attribute indexes. Key and unique indexes keep one entry per document in the
//! `attr_index` tree, keyed `cid index tuple seq`, where the tuple encoding preserves
//! order, so equality, ranges, prefixes and ordered walks are all range scans; the
//! bitmap of one first value is also kept in memory between writes (`IndexRecord::equal`).
//! Fulltext indexes keep one bitmap per word, in the container layout of the permission index.
//!
//! Tuple encoding, per value (type order as `query::eval::sort_cmp`):
//! ```text
//! missing/null  00
//! false / true  01 / 02
//! number        03 f64-order(8) exact(16)   integral values also by their exact i128
//! string        04 bytes (00 escaped as 00 ff) 00 00
//! other         05
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{BitmapCache, Counters, IndexKind};
use crate::error::{Error, ResourceKind, Result};
use crate::id::quote;
use crate::store::{Direction, Scan, Store, Tree, WriteBatch, keys};
use crate::text::words;

/// Longest word a fulltext index keeps (bytes); longer words are cut to it.
pub const MAX_INDEXED_WORD: usize = 64;

/// Most indexes one collection may have (MariaDB's limit, which Appwrite's inherits).
pub const MAX_INDEXES: usize = 64;

/// What an index is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexType {
    /// Equality, ranges, prefixes and order on its first attribute.
    Key,
    /// As `Key`, and no two documents may share the same values (missing or null values excepted).
    Unique,
    /// Words of one string attribute, for `search`.
    Fulltext,
}

/// A declared index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// The index's name (an id).
    pub key: String,
    /// What it is for.
    #[serde(rename = "type")]
    pub kind: IndexType,
    /// The attributes it covers, in order.
    pub attributes: Vec<String>,
}

impl IndexSpec {
    /// A key index on `attributes`.
    #[must_use]
    pub fn key<'a>(key: &str, attributes: impl IntoIterator<Item = &'a str>) -> IndexSpec {
        IndexSpec::new(key, IndexType::Key, attributes)
    }
    /// A unique index on `attributes`.
    #[must_use]
    pub fn unique<'a>(key: &str, attributes: impl IntoIterator<Item = &'a str>) -> IndexSpec {
        IndexSpec::new(key, IndexType::Unique, attributes)
    }
    /// A fulltext index on one string attribute.
    #[must_use]
    pub fn fulltext(key: &str, attribute: &str) -> IndexSpec {
        IndexSpec::new(key, IndexType::Fulltext, [attribute])
    }
    fn new<'a>(
        key: &str,
        kind: IndexType,
        attributes: impl IntoIterator<Item = &'a str>,
    ) -> IndexSpec {
        IndexSpec {
            key: key.to_owned(),
            kind,
            attributes: attributes.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// An index as stored in its collection's record; `number` is its key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexRecord {
    pub(crate) key: String,
    pub(crate) kind: IndexType,
    pub(crate) attributes: Vec<String>,
    pub(crate) number: u16,
}

impl IndexRecord {
    pub(crate) fn public(&self) -> IndexSpec {
        IndexSpec {
            key: self.key.clone(),
            kind: self.kind,
            attributes: self.attributes.clone(),
        }
    }

    pub(crate) fn prefix(&self, cid: u32) -> Vec<u8> {
        keys::attr_index(cid, self.number)
    }

    /// The ordered entry of a document, or `None` for a fulltext index.
    fn entry(&self, cid: u32, data: &Map<String, Value>, seq: u32) -> Option<Vec<u8>> {
        if self.kind == IndexType::Fulltext {
            return None;
        }
        let mut k = self.prefix(cid);
        for a in &self.attributes {
            encode_value(data.get(a), &mut k);
        }
        k.extend_from_slice(&seq.to_be_bytes());
        Some(k)
    }

    pub(crate) fn word_role(&self, word: &str) -> String {
        format!("{}:{word}", self.number)
    }

    pub(crate) fn words(&self, data: &Map<String, Value>) -> BTreeSet<String> {
        match self
            .attributes
            .first()
            .and_then(|a| data.get(a))
            .and_then(Value::as_str)
        {
            Some(text) => words(text).map(|w| cut(&w)).collect(),
            None => BTreeSet::new(),
        }
    }
}

fn cut(word: &str) -> String {
    let mut end = word.len().min(MAX_INDEXED_WORD);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    word.get(..end).unwrap_or_default().to_owned()
}

/// Appends the order-preserving encoding of one value.
pub(crate) fn encode_value(v: Option<&Value>, out: &mut Vec<u8>) {
    match v {
        None | Some(Value::Null) => out.push(0x00),
        Some(Value::Bool(b)) => out.push(if *b { 0x02 } else { 0x01 }),
        Some(Value::Number(n)) => {
            out.push(0x03);
            let f = n.as_f64().unwrap_or(0.0);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
            let exact: i128 = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i128::from(i),
                (None, Some(u)) => i128::from(u),
                // Integral floats compare equal to integers (1.0 == 1); others are unique per f64.
                _ if f.fract() == 0.0 && f.abs() < 1e36 => f as i128,
                _ => 0,
            };
            out.extend_from_slice(&((exact as u128) ^ (1 << 127)).to_be_bytes());
        }
        Some(Value::String(s)) => {
            out.push(0x04);
            for b in s.bytes() {
                out.push(b);
                if b == 0 {
                    out.push(0xff);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Some(_) => out.push(0x05),
    }
}

/// The length of the first encoded value at the start of `tuple` (see the module's
/// table), or `None` when the bytes do not start with one.
fn first_value_len(tuple: &[u8]) -> Option<usize> {
    match tuple.first()? {
        0x00 | 0x01 | 0x02 | 0x05 => Some(1),
        0x03 => (tuple.len() >= 25).then_some(25),
        0x04 => {
            let mut at = 1;
            loop {
                match (tuple.get(at)?, tuple.get(at + 1)) {
                    (0, Some(0)) => return Some(at + 2),
                    (0, Some(0xff)) => at += 2,
                    (0, _) => return None,
                    _ => at += 1,
                }
            }
        }
        _ => None,
    }
}

const ENTRY_PREFIX_LEN: usize = keys::ATTR_ENTRY_PREFIX_LEN;

/// The equality key of an entry: its index prefix and first value, the key under which
/// the bitmap cache keeps the documents having that value (`IndexRecord::equal`).
pub(crate) fn equality_key(entry: &[u8]) -> Option<&[u8]> {
    let values = entry.get(ENTRY_PREFIX_LEN..)?;
    entry.get(..ENTRY_PREFIX_LEN + first_value_len(values)?)
}

/// The sequence at the end of an entry key.
fn entry_seq(key: &[u8]) -> Result<u32> {
    keys::attr_entry_seq(key)
        .ok_or_else(|| Error::corrupt(format!("index entry {key:02x?}"), "too short"))
}

/// Refuses the new `entry` of document `seq` in unique index `index` when another
/// document's entry has the same values: in the store and not removed by `batch`, or put
/// by `batch`. The caller leaves out entries with a missing or null value
/// (`Contribution::of`).
pub(crate) fn check_unique(
    store: &Store,
    batch: &WriteBatch,
    index: &str,
    entry: &[u8],
    (id, seq): (&str, u32),
) -> Result<()> {
    let prefix = entry
        .len()
        .checked_sub(4)
        .and_then(|at| entry.get(..at))
        .ok_or_else(|| Error::corrupt(format!("index entry {entry:02x?}"), "too short"))?;
    let conflict = || {
        Error::conflict(
            ResourceKind::Document,
            id,
            format!(
                "unique index {}: another document has the same values",
                quote(index)
            ),
        )
    };
    for found in store.scan_prefix(Tree::AttrIndex, prefix, Direction::Forward) {
        let (k, _) = found?;
        // The key must be exactly prefix + seq, and not removed by this same batch.
        if k.len() == prefix.len() + 4
            && entry_seq(&k)? != seq
            && !batch.removes(Tree::AttrIndex, &k)
        {
            return Err(conflict());
        }
    }
    if batch.puts_with_prefix(Tree::AttrIndex, prefix, seq) {
        return Err(conflict());
    }
    Ok(())
}

/// The bound of a range scan on an index's first attribute.
#[derive(Debug, Clone)]
pub(crate) enum Bound {
    /// Every entry whose first value starts with these bytes.
    Prefix(Vec<u8>),
    /// Entries with first values in `[from, to)` (encoded).
    Range(Vec<u8>, Vec<u8>),
}

impl IndexRecord {
    /// Scans the entries selected by `bound`, in `direction`.
    pub(crate) fn scan<'a>(
        &self,
        store: &'a Store,
        cid: u32,
        bound: &Bound,
        direction: Direction,
    ) -> Scan<'a> {
        let base = self.prefix(cid);
        let cat = |b: &[u8]| {
            let mut k = base.clone();
            k.extend_from_slice(b);
            k
        };
        match bound {
            Bound::Prefix(p) => store.scan_prefix(Tree::AttrIndex, &cat(p), direction),
            Bound::Range(from, to) => {
                store.scan_range(Tree::AttrIndex, &cat(from), &cat(to), direction)
            }
        }
    }

    /// The sequences of the entries `bound` selects.
    pub(crate) fn bitmap(&self, store: &Store, cid: u32, bound: &Bound) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for entry in self.scan(store, cid, bound, Direction::Forward) {
            out.insert(entry_seq(&entry?.0)?);
        }
        Ok(out)
    }

    /// The documents whose first indexed value is `encoded` (one whole value, as
    /// [`encode_value`] writes it), kept in `cache` between writes to its entries.
    pub(crate) fn equal(
        &self,
        cache: &BitmapCache,
        store: &Store,
        cid: u32,
        encoded: &[u8],
    ) -> Result<Arc<RoaringBitmap>> {
        let mut key = self.prefix(cid);
        key.extend_from_slice(encoded);
        debug_assert_eq!(equality_key(&key), Some(key.as_slice()));
        cache.equality(key, || {
            self.bitmap(store, cid, &Bound::Prefix(encoded.to_vec()))
        })
    }

    /// The entry key document `seq` with `data` has (or would have) in this index.
    pub(crate) fn entry_of(&self, cid: u32, data: &Map<String, Value>, seq: u32) -> Vec<u8> {
        self.entry(cid, data, seq).unwrap_or_default()
    }

    /// Every entry in `direction`, strictly after the entry key `after` when given.
    pub(crate) fn walk<'a>(
        &self,
        store: &'a Store,
        cid: u32,
        direction: Direction,
        after: Option<&[u8]>,
    ) -> Scan<'a> {
        let base = self.prefix(cid);
        let end = keys::prefix_end(&base).unwrap_or_else(|| vec![0xff; 8]);
        match (after, direction) {
            (None, _) => store.scan_prefix(Tree::AttrIndex, &base, direction),
            (Some(k), Direction::Forward) => {
                let mut from = k.to_vec();
                from.push(0);
                store.scan_range(Tree::AttrIndex, &from, &end, direction)
            }
            (Some(k), Direction::Reverse) => store.scan_range(Tree::AttrIndex, &base, k, direction),
        }
    }

    /// The sequence of an entry key from [`IndexRecord::scan`].
    pub(crate) fn seq(key: &[u8]) -> Result<u32> {
        entry_seq(key)
    }

    /// Documents whose indexed text has one of the words of `text` (word bitmaps are
    /// kept in `cache` between writes to them).
    pub(crate) fn search(
        &self,
        cache: &BitmapCache,
        store: &Store,
        cid: u32,
        text: &str,
        counters: &Counters,
    ) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        let wanted: BTreeSet<String> = words(text).map(|w| cut(&w)).collect();
        for w in wanted {
            out |= cache
                .get(
                    store,
                    cid,
                    IndexKind::Fulltext,
                    &self.word_role(&w),
                    counters,
                )?
                .as_ref();
        }
        Ok(out)
    }

    /// Deletes every entry of this index into `batch`.
    pub(crate) fn drop_entries(
        &self,
        store: &Store,
        cid: u32,
        batch: &mut WriteBatch,
    ) -> Result<()> {
        if self.kind == IndexType::Fulltext {
            let prefix = [
                keys::collection_data(cid).as_slice(),
                &[IndexKind::Fulltext as u8],
            ]
            .concat();
            let mine = format!("{}:", self.number);
            for entry in store.scan_prefix(Tree::PermIndex, &prefix, Direction::Forward) {
                let (k, _) = entry?;
                let role = k.get(prefix.len() + 1..).unwrap_or_default();
                if role.starts_with(mine.as_bytes()) {
                    batch.remove(Tree::PermIndex, k.to_vec());
                }
            }
        } else {
            for entry in store.scan_prefix(Tree::AttrIndex, &self.prefix(cid), Direction::Forward) {
                batch.remove(Tree::AttrIndex, entry?.0.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(Some(&v), &mut out);
        out
    }

    #[test]
    fn encoding_preserves_order() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(i64::MIN),
            json!(-2.5),
            json!(-1),
            json!(0),
            json!(0.5),
            json!(1),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("a"),
            json!("a\u{0}"),
            json!("ab"),
            json!("b"),
        ];
        for w in ordered.windows(2) {
            assert!(enc(w[0].clone()) < enc(w[1].clone()), "{} < {}", w[0], w[1]);
        }
        assert_eq!(enc(json!(1)), enc(json!(1.0)));
        assert_ne!(enc(json!(i64::MAX)), enc(json!(i64::MAX - 1)));
    }

    #[test]
    fn an_entry_names_the_equality_key_of_its_first_value() {
        let composite = IndexRecord {
            key: "k".into(),
            kind: IndexType::Key,
            attributes: vec!["a".into(), "b".into()],
            number: 258,
        };
        let values = [
            json!(null),
            json!(true),
            json!(-2.5),
            json!(7),
            json!(""),
            json!("a\u{0}\u{0}b"),
            json!("\u{0}"),
            json!([1]),
        ];
        for first in &values {
            for second in [json!("z\u{0}"), json!(3)] {
                let data = json!({"a": first, "b": second});
                let entry = composite.entry_of(9, data.as_object().unwrap(), 0x0102_0304);
                let mut want = composite.prefix(9);
                want.extend(enc(first.clone()));
                assert_eq!(equality_key(&entry), Some(want.as_slice()), "{first}");
            }
        }
        // Bytes that do not start with an encoded value have no key.
        for bad in [
            &[0u8, 0, 0, 9, 1, 2][..],
            &[0, 0, 0, 9, 1, 2, 0x09],
            &[0, 0, 0, 9, 1, 2, 0x03, 1],
            &[0, 0, 0, 9, 1, 2, 0x04, b'a', 0],
        ] {
            assert_eq!(equality_key(bad), None, "{bad:?}");
        }
    }
}
