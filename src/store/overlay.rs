//! A read view of a store with a pending batch laid over it: what a multi-step write
//! reads after its earlier steps, before anything is applied.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use super::{Backend, Bytes, Direction, Scan, Tree, WriteBatch};
use crate::error::{Error, Result};

/// `base` as it will be once `pending` is applied. Read-only: applying to it is refused,
/// so a step cannot write around the batch it belongs to.
pub(crate) struct Overlay {
    pub(crate) base: Arc<dyn Backend>,
    pub(crate) pending: Arc<WriteBatch>,
}

impl Backend for Overlay {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Bytes>> {
        match self.pending.ops.get(&(tree, key.to_vec())) {
            Some(Some(value)) => Ok(Some(Bytes::new(value.as_slice().into()))),
            Some(None) => Ok(None),
            None => self.base.get(tree, key),
        }
    }

    fn range<'a>(
        &'a self,
        tree: Tree,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        direction: Direction,
    ) -> Scan<'a> {
        let start = match from {
            Bound::Included(k) => Bound::Included((tree, k.to_vec())),
            Bound::Excluded(k) => Bound::Excluded((tree, k.to_vec())),
            Bound::Unbounded => Bound::Included((tree, Vec::new())),
        };
        let pending = self
            .pending
            .ops
            .range((start, Bound::Unbounded))
            .take_while(|((t, k), _)| {
                *t == tree
                    && match to {
                        Bound::Included(end) => k.as_slice() <= end,
                        Bound::Excluded(end) => k.as_slice() < end,
                        Bound::Unbounded => true,
                    }
            })
            .map(|((_, k), v)| (k.as_slice(), v.as_deref()));
        let mut pending: Vec<_> = pending.collect();
        if direction == Direction::Reverse {
            pending.reverse();
        }
        if pending.is_empty() {
            return self.base.range(tree, from, to, direction);
        }
        Box::new(Merged {
            base: self.base.range(tree, from, to, direction).peekable(),
            pending: pending.into_iter().peekable(),
            direction,
        })
    }

    fn apply(&self, _batch: &WriteBatch) -> Result<()> {
        Err(Error::internal(
            "a step of a multi-step write cannot apply a batch of its own",
        ))
    }

    fn flush(&self) -> Result<()> {
        self.base.flush()
    }
}

/// Two key-ordered streams merged in `direction` order; on equal keys the pending write
/// wins, and a pending removal hides the base entry.
struct Merged<'a, P: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>> {
    base: std::iter::Peekable<Scan<'a>>,
    pending: std::iter::Peekable<P>,
    direction: Direction,
}

impl<'a, P: Iterator<Item = (&'a [u8], Option<&'a [u8]>)>> Iterator for Merged<'a, P> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.pending.peek()) {
                (None, None) => return None,
                // An error ends the scan as the base's would.
                (Some(Err(_)), _) | (Some(Ok(_)), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok((base_key, _))), Some((key, _))) => {
                    let order = (**base_key).cmp(key);
                    match self.direction {
                        Direction::Forward => order,
                        Direction::Reverse => order.reverse(),
                    }
                }
            };
            if order == Ordering::Less {
                return self.base.next();
            }
            if order == Ordering::Equal {
                self.base.next();
            }
            let (key, value) = self.pending.next()?;
            if let Some(value) = value {
                return Some(Ok((Bytes::new(key.into()), Bytes::new(value.into()))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SledBackend, Store};

    fn keys(scan: Scan<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        scan.map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn reads_see_pending_puts_and_removals_in_both_directions() {
        let base: Arc<dyn Backend> = Arc::new(SledBackend::open(None, 1 << 20, None).unwrap());
        let store = Store::new(base.clone());
        let mut committed = WriteBatch::default();
        for k in [b"a1", b"a3", b"a5", b"b1"] {
            committed.put(Tree::Docs, k.to_vec(), k.to_vec());
        }
        store.apply(&committed).unwrap();

        let mut pending = WriteBatch::default();
        pending.put(Tree::Docs, b"a2".to_vec(), b"new".to_vec());
        pending.put(Tree::Docs, b"a3".to_vec(), b"changed".to_vec());
        pending.remove(Tree::Docs, b"a5".to_vec());
        pending.put(Tree::Meta, b"a4".to_vec(), b"other tree".to_vec());
        let view = Store::new(Arc::new(Overlay {
            base,
            pending: Arc::new(pending),
        }));

        let forward = keys(view.scan_prefix(Tree::Docs, b"a", Direction::Forward));
        let expected: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a1".to_vec(), b"a1".to_vec()),
            (b"a2".to_vec(), b"new".to_vec()),
            (b"a3".to_vec(), b"changed".to_vec()),
        ];
        assert_eq!(forward, expected);
        let mut reverse = keys(view.scan_prefix(Tree::Docs, b"a", Direction::Reverse));
        reverse.reverse();
        assert_eq!(reverse, expected);
        assert_eq!(
            keys(view.scan_range(Tree::Docs, b"a2", b"a3", Direction::Forward)),
            vec![(b"a2".to_vec(), b"new".to_vec())]
        );
        assert!(view.get(Tree::Docs, b"a5").unwrap().is_none());
        assert_eq!(&*view.get(Tree::Docs, b"a3").unwrap().unwrap(), b"changed");
        assert_eq!(&*view.get(Tree::Docs, b"b1").unwrap().unwrap(), b"b1");
        assert!(
            view.apply(&WriteBatch::default()).is_ok(),
            "empty batches are no-ops"
        );
        let mut one = WriteBatch::default();
        one.put(Tree::Docs, b"z".to_vec(), b"z".to_vec());
        assert!(view.apply(&one).is_err());
    }
}
