//! Which parts of a filter the collection's indexes answer, as bitmaps, and which
//! index can serve an order. Equality, ranges, `between` and `startsWith` on the first
//! attribute of a key or unique index, and `search` on a fulltext index.

use std::sync::Arc;

use roaring::RoaringBitmap;
use serde_json::Value;

use super::Method;
use super::eval::{Cond, Filter};
use crate::catalog::CollectionRecord;
use crate::engine::ReadView;
use crate::error::Result;
use crate::index::Counters;
use crate::index::attr::{Bound, IndexRecord, IndexType, encode_value};
use crate::store::keys::prefix_end;

/// What the indexes answer for a filter.
pub(crate) struct Hit {
    /// The documents selected.
    pub(crate) bitmap: Arc<RoaringBitmap>,
    /// Whether `bitmap` is exactly the documents matching the filter (`false`: a
    /// superset, every candidate must still be checked).
    pub(crate) exact: bool,
    /// Whether `bitmap` is the bitmap cache's own (one value's documents), not built
    /// for this query: its identity then stands for its contents, which never change
    /// (a write to the value replaces it), so sizes computed from it can be memoised.
    pub(crate) shared: bool,
}

impl Hit {
    fn built(bitmap: RoaringBitmap, exact: bool) -> Hit {
        Hit {
            bitmap: Arc::new(bitmap),
            exact,
            shared: false,
        }
    }
}

/// The documents an index selects for `filter`; `None`: no index helps. Names the
/// indexes used in `used`.
pub(crate) fn narrow(
    view: ReadView<'_>,
    coll: &CollectionRecord,
    filter: &Filter,
    counters: &Counters,
    used: &mut Vec<String>,
) -> Result<Option<Hit>> {
    match filter {
        Filter::Cond(c) => condition(view, coll, c, counters, used),
        Filter::And(parts) => {
            let mut found: Vec<Hit> = Vec::new();
            let mut all_exact = true;
            for p in parts {
                match narrow(view, coll, p, counters, used)? {
                    Some(hit) => found.push(hit),
                    None => all_exact = false,
                }
            }
            // Intersect smallest first.
            found.sort_by_key(|hit| hit.bitmap.len());
            let mut iter = found.into_iter();
            let Some(mut acc) = iter.next() else {
                return Ok(None);
            };
            for hit in iter {
                acc = Hit::built(
                    acc.bitmap.as_ref() & hit.bitmap.as_ref(),
                    acc.exact && hit.exact,
                );
            }
            acc.exact &= all_exact;
            Ok(Some(acc))
        }
        Filter::Or(parts) => {
            let mut acc = RoaringBitmap::new();
            let mut exact = true;
            for p in parts {
                match narrow(view, coll, p, counters, used)? {
                    Some(hit) => {
                        acc |= hit.bitmap.as_ref();
                        exact &= hit.exact;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some(Hit::built(acc, exact)))
        }
    }
}

fn key_index<'c>(coll: &'c CollectionRecord, attribute: &str) -> Option<&'c IndexRecord> {
    coll.indexes.iter().find(|i| {
        i.kind != IndexType::Fulltext && i.attributes.first().is_some_and(|a| a == attribute)
    })
}

/// A single-attribute key or unique index on `attribute`, whose order is the query's order.
pub(crate) fn walkable<'c>(coll: &'c CollectionRecord, attribute: &str) -> Option<&'c IndexRecord> {
    coll.indexes.iter().find(|i| {
        i.kind != IndexType::Fulltext
            && i.attributes.len() == 1
            && i.attributes.first().is_some_and(|a| a == attribute)
    })
}

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(Some(v), &mut out);
    out
}

/// The encoded range holding every value of `v`'s type.
fn type_range(v: &Value) -> (Vec<u8>, Vec<u8>) {
    match v {
        Value::Bool(_) => (vec![0x01], vec![0x03]),
        Value::Number(_) => (vec![0x03], vec![0x04]),
        _ => (vec![0x04], vec![0x05]),
    }
}

fn after(v: &Value) -> Vec<u8> {
    prefix_end(&enc(v)).unwrap_or_else(|| vec![0xff])
}

fn bounds(c: &Cond) -> Option<Vec<Bound>> {
    let first = c.values.first()?;
    let (lo, hi) = type_range(first);
    Some(match c.method {
        Method::Equal => c.values.iter().map(|v| Bound::Prefix(enc(v))).collect(),
        Method::LessThan => vec![Bound::Range(lo, enc(first))],
        Method::LessThanEqual => vec![Bound::Range(lo, after(first))],
        Method::GreaterThan => vec![Bound::Range(after(first), hi)],
        Method::GreaterThanEqual => vec![Bound::Range(enc(first), hi)],
        Method::Between => {
            let second = c.values.get(1)?;
            if type_range(second) != (lo, hi) {
                return Some(Vec::new()); // mixed types never match
            }
            vec![Bound::Range(enc(first), after(second))]
        }
        Method::StartsWith => {
            let mut p = enc(first);
            p.truncate(p.len().saturating_sub(2)); // drop the string terminator
            vec![Bound::Prefix(p)]
        }
        _ => return None,
    })
}

fn condition(
    view: ReadView<'_>,
    coll: &CollectionRecord,
    c: &Cond,
    counters: &Counters,
    used: &mut Vec<String>,
) -> Result<Option<Hit>> {
    if c.method == Method::Search {
        let Some(index) = coll
            .indexes
            .iter()
            .find(|i| i.kind == IndexType::Fulltext && i.attributes.first() == Some(&c.attribute))
        else {
            return Ok(None);
        };
        let text = c.values.first().and_then(Value::as_str).unwrap_or_default();
        used.push(index.key.clone());
        let found = index.search(view.bitmaps, view.store, coll.cid, text, counters)?;
        return Ok(Some(Hit::built(found, false)));
    }
    let (Some(index), Some(bounds)) = (key_index(coll, &c.attribute), bounds(c)) else {
        return Ok(None);
    };
    if matches!(c.method, Method::StartsWith) && !c.values.first().is_some_and(Value::is_string) {
        return Ok(None);
    }
    let hit = if let (Method::Equal, [v]) = (c.method, c.values.as_slice()) {
        // One whole value: its bitmap as cached between writes to the index, not a copy.
        Hit {
            bitmap: index.equal(view.bitmaps, view.store, coll.cid, &enc(v))?,
            exact: true,
            shared: true,
        }
    } else if c.method == Method::Equal {
        let mut out = RoaringBitmap::new();
        for v in &c.values {
            out |= index
                .equal(view.bitmaps, view.store, coll.cid, &enc(v))?
                .as_ref();
        }
        Hit::built(out, true)
    } else {
        let mut out = RoaringBitmap::new();
        for b in &bounds {
            out |= index.bitmap(view.store, coll.cid, b)?;
        }
        Hit::built(out, true)
    };
    used.push(index.key.clone());
    Ok(Some(hit))
}
