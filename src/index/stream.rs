//! Lazy iteration: over one stored bitmap, fetching containers one at a time, over the
//! union of in-memory bitmaps, merging them, and over the intersection of two in-memory
//! bitmaps, probing; either direction, from a start sequence.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use roaring::RoaringBitmap;

use super::{IndexKind, bitmap_prefix, decode_container, high_bits};
use crate::error::Result;
use crate::store::{Direction, Scan, Store, Tree, keys};

/// Work done by one query, for `explain` and the cost tests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bitmaps: Cell<u64>,
    pub(crate) containers: Cell<u64>,
    pub(crate) decoded: Cell<u64>,
    pub(crate) candidates: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get().saturating_add(1));
}

impl Counters {
    /// Adds `other`'s counts to these.
    pub(crate) fn add(&self, other: &Counters) {
        for (mine, theirs) in [
            (&self.bitmaps, &other.bitmaps),
            (&self.containers, &other.containers),
            (&self.decoded, &other.decoded),
            (&self.candidates, &other.candidates),
        ] {
            mine.set(mine.get().saturating_add(theirs.get()));
        }
    }

    pub(crate) fn bitmap_opened(&self) {
        bump(&self.bitmaps);
    }
    pub(crate) fn container_read(&self) {
        bump(&self.containers);
    }
    pub(crate) fn document_decoded(&self) {
        bump(&self.decoded);
    }
    pub(crate) fn candidate(&self) {
        bump(&self.candidates);
    }
}

/// The sequences of one stored bitmap, in `direction` order, starting at `start`
/// (inclusive), reading each container only when iteration reaches it.
pub(crate) struct BitmapStream<'a> {
    scan: Scan<'a>,
    prefix_len: usize,
    direction: Direction,
    /// Where iteration starts: values before it (in `direction`) are skipped.
    start: Option<u32>,
    current: Option<roaring::bitmap::IntoIter>,
    counters: &'a Counters,
}

impl<'a> BitmapStream<'a> {
    pub(crate) fn open(
        store: &'a Store,
        cid: u32,
        kind: IndexKind,
        role: &str,
        direction: Direction,
        start: Option<u32>,
        counters: &'a Counters,
    ) -> BitmapStream<'a> {
        counters.bitmap_opened();
        let prefix = bitmap_prefix(cid, kind, role);
        let prefix_len = prefix.len();
        let end = keys::prefix_end(&prefix).unwrap_or_default();
        let scan = match (start.map(high_bits), direction) {
            (None, _) => store.scan_prefix(Tree::PermIndex, &prefix, direction),
            (Some(high), Direction::Forward) => store.scan_range(
                Tree::PermIndex,
                &keys::container(&prefix, high),
                &end,
                direction,
            ),
            (Some(high), Direction::Reverse) => {
                let upto = keys::prefix_end(&keys::container(&prefix, high)).unwrap_or_default();
                store.scan_range(Tree::PermIndex, &prefix, &upto, direction)
            }
        };
        BitmapStream {
            scan,
            prefix_len,
            direction,
            start,
            current: None,
            counters,
        }
    }

    fn next_container(&mut self) -> Result<bool> {
        let Some(entry) = self.scan.next() else {
            return Ok(false);
        };
        let (key, bytes) = entry?;
        self.counters.container_read();
        let values: RoaringBitmap = decode_container(&key, self.prefix_len, &bytes)?;
        let mut iter = values.into_iter();
        if let Some(start) = self.start {
            match self.direction {
                Direction::Forward => iter.advance_to(start),
                Direction::Reverse => iter.advance_back_to(start),
            }
        }
        self.current = Some(iter);
        Ok(true)
    }
}

impl Iterator for BitmapStream<'_> {
    type Item = Result<u32>;

    fn next(&mut self) -> Option<Result<u32>> {
        loop {
            if let Some(iter) = &mut self.current {
                let next = match self.direction {
                    Direction::Forward => iter.next(),
                    Direction::Reverse => iter.next_back(),
                };
                if next.is_some() {
                    return next.map(Ok);
                }
            }
            match self.next_container() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The union of several in-memory bitmaps, in `direction` order, without duplicates,
/// merged lazily with a min-heap: a page costs the entries it reaches, not the union of
/// every bitmap (many roles: docs/ARCHITECTURE.md, "Reads").
pub(crate) struct MergedStream<'a> {
    iters: Vec<roaring::bitmap::Iter<'a>>,
    /// Min-heap of (key, iterator): the key orders sequences in `direction`.
    heap: BinaryHeap<Reverse<(u32, usize)>>,
    direction: Direction,
    last: Option<u32>,
}

impl<'a> MergedStream<'a> {
    /// Merges `bitmaps` from `start` (inclusive) on, in `direction` order.
    pub(crate) fn new(
        bitmaps: impl IntoIterator<Item = &'a RoaringBitmap>,
        direction: Direction,
        start: Option<u32>,
    ) -> MergedStream<'a> {
        let mut iters: Vec<_> = bitmaps
            .into_iter()
            .map(|b| {
                let mut iter = b.iter();
                match (start, direction) {
                    (None, _) => {}
                    (Some(s), Direction::Forward) => iter.advance_to(s),
                    (Some(s), Direction::Reverse) => iter.advance_back_to(s),
                }
                iter
            })
            .collect();
        let heads = iters
            .iter_mut()
            .enumerate()
            .filter_map(|(i, iter)| Some(Reverse((key(advance(iter, direction)?, direction), i))))
            .collect::<Vec<_>>();
        MergedStream {
            iters,
            heap: BinaryHeap::from(heads),
            direction,
            last: None,
        }
    }
}

/// The next sequence of `iter` in `direction`.
fn advance(iter: &mut roaring::bitmap::Iter<'_>, direction: Direction) -> Option<u32> {
    match direction {
        Direction::Forward => iter.next(),
        Direction::Reverse => iter.next_back(),
    }
}

/// The heap key of `seq`: smaller comes first in `direction`. Its own inverse.
fn key(seq: u32, direction: Direction) -> u32 {
    match direction {
        Direction::Forward => seq,
        Direction::Reverse => u32::MAX - seq,
    }
}

impl Iterator for MergedStream<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        loop {
            let Reverse((head, i)) = self.heap.pop()?;
            if let Some(next) = self
                .iters
                .get_mut(i)
                .and_then(|it| advance(it, self.direction))
            {
                self.heap.push(Reverse((key(next, self.direction), i)));
            }
            let seq = key(head, self.direction);
            if self.last != Some(seq) {
                self.last = Some(seq);
                return Some(seq);
            }
        }
    }
}

/// Probes a [`MeetStream`] makes before it builds the whole intersection instead: a page
/// that fills within them costs its probes; one that does not costs at most this many
/// more than building it up front.
const PROBE_BUDGET: u32 = 2048;

/// The intersection of two in-memory bitmaps, in `direction` order, without building it
/// first: walks the smaller one and keeps what the larger one holds, so a page costs the
/// sequences it passes. Past [`PROBE_BUDGET`] probes (the two rarely meet), it builds the
/// intersection of the whole bitmaps (container by container) and goes on from there.
pub(crate) struct MeetStream<'a> {
    larger: &'a RoaringBitmap,
    smaller: &'a RoaringBitmap,
    direction: Direction,
    state: Meet<'a>,
}

enum Meet<'a> {
    Probing {
        walk: roaring::bitmap::Iter<'a>,
        probes: u32,
        /// The last sequence probed: the built intersection resumes past it.
        last: Option<u32>,
    },
    Built(roaring::bitmap::IntoIter),
    Done,
}

impl<'a> MeetStream<'a> {
    /// The sequences in both `a` and `b`, from `start` (inclusive) on, in `direction`.
    pub(crate) fn new(
        a: &'a RoaringBitmap,
        b: &'a RoaringBitmap,
        direction: Direction,
        start: Option<u32>,
    ) -> MeetStream<'a> {
        let (smaller, larger) = if a.len() <= b.len() { (a, b) } else { (b, a) };
        let mut walk = smaller.iter();
        match (start, direction) {
            (None, _) => {}
            (Some(s), Direction::Forward) => walk.advance_to(s),
            (Some(s), Direction::Reverse) => walk.advance_back_to(s),
        }
        MeetStream {
            larger,
            smaller,
            direction,
            state: Meet::Probing {
                walk,
                probes: 0,
                last: start.and_then(|s| match direction {
                    // Resuming "past" the sequence before `start` is resuming at `start`.
                    Direction::Forward => s.checked_sub(1),
                    Direction::Reverse => s.checked_add(1),
                }),
            },
        }
    }

    /// The whole intersection, from just past `last` on.
    fn built(&self, last: Option<u32>) -> Meet<'a> {
        let mut rest = (self.smaller & self.larger).into_iter();
        match (last, self.direction) {
            (None, _) => {}
            (Some(l), Direction::Forward) => match l.checked_add(1) {
                Some(next) => rest.advance_to(next),
                None => return Meet::Done,
            },
            (Some(l), Direction::Reverse) => match l.checked_sub(1) {
                Some(next) => rest.advance_back_to(next),
                None => return Meet::Done,
            },
        }
        Meet::Built(rest)
    }
}

impl Iterator for MeetStream<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        loop {
            match &mut self.state {
                Meet::Done => return None,
                Meet::Built(rest) => {
                    return match self.direction {
                        Direction::Forward => rest.next(),
                        Direction::Reverse => rest.next_back(),
                    };
                }
                Meet::Probing { probes, last, .. } if *probes >= PROBE_BUDGET => {
                    let last = *last;
                    self.state = self.built(last);
                }
                Meet::Probing { walk, probes, last } => {
                    let seq = advance(walk, self.direction)?;
                    *probes += 1;
                    *last = Some(seq);
                    if self.larger.contains(seq) {
                        return Some(seq);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(bitmaps: &[RoaringBitmap], direction: Direction, start: Option<u32>) -> Vec<u32> {
        MergedStream::new(bitmaps, direction, start).collect()
    }

    #[test]
    fn merge_is_the_union_in_order_from_start() {
        let bitmaps: Vec<RoaringBitmap> = vec![
            [1, 5, 9, 70_000].into_iter().collect(),
            [5, 6, 200_000].into_iter().collect(),
            RoaringBitmap::new(),
            [0, 9, 70_000, u32::MAX].into_iter().collect(),
        ];
        let union: RoaringBitmap = bitmaps.iter().fold(RoaringBitmap::new(), |a, b| a | b);
        for start in [
            None,
            Some(0),
            Some(5),
            Some(7),
            Some(70_000),
            Some(u32::MAX),
        ] {
            let forward: Vec<u32> = union
                .iter()
                .filter(|s| start.is_none_or(|st| *s >= st))
                .collect();
            assert_eq!(
                merged(&bitmaps, Direction::Forward, start),
                forward,
                "{start:?}"
            );
            let mut reverse: Vec<u32> = union
                .iter()
                .filter(|s| start.is_none_or(|st| *s <= st))
                .collect();
            reverse.reverse();
            assert_eq!(
                merged(&bitmaps, Direction::Reverse, start),
                reverse,
                "{start:?}"
            );
        }
        assert!(merged(&[], Direction::Forward, None).is_empty());
    }

    /// The intersection from `start` in `direction`, as the plain bitmap operation gives it.
    fn expected(
        a: &RoaringBitmap,
        b: &RoaringBitmap,
        dir: Direction,
        start: Option<u32>,
    ) -> Vec<u32> {
        let both = a & b;
        let mut out: Vec<u32> = both
            .iter()
            .filter(|s| match (start, dir) {
                (None, _) => true,
                (Some(st), Direction::Forward) => *s >= st,
                (Some(st), Direction::Reverse) => *s <= st,
            })
            .collect();
        if dir == Direction::Reverse {
            out.reverse();
        }
        out
    }

    #[test]
    fn meet_is_the_intersection_in_order_from_start_before_and_after_the_budget() {
        // Sparse meeting (past the budget, so the built half runs), dense meeting (the
        // page fills while probing), edges at 0 and u32::MAX, and an empty side.
        let evens: RoaringBitmap = (0..20_000u32).map(|i| i * 2).collect();
        let sevens: RoaringBitmap = (0..6_000u32).map(|i| i * 7).collect();
        let rare: RoaringBitmap = (0..10_000u32)
            .map(|i| i * 2 + 1)
            .chain([9_000, 30_000, 39_998])
            .collect();
        let edges: RoaringBitmap = [0, 1, 70_000, u32::MAX - 1, u32::MAX].into_iter().collect();
        let all_edges: RoaringBitmap = [0, 70_000, u32::MAX].into_iter().collect();
        let empty = RoaringBitmap::new();
        let pairs = [
            (&evens, &sevens),
            (&evens, &rare),
            (&rare, &evens),
            (&edges, &all_edges),
            (&evens, &empty),
        ];
        for (a, b) in pairs {
            for dir in [Direction::Forward, Direction::Reverse] {
                for start in [
                    None,
                    Some(0),
                    Some(1),
                    Some(9_000),
                    Some(30_001),
                    Some(70_000),
                    Some(u32::MAX),
                ] {
                    let got: Vec<u32> = MeetStream::new(a, b, dir, start).collect();
                    assert_eq!(got, expected(a, b, dir, start), "{dir:?} from {start:?}");
                }
            }
        }
        // The rare meeting really crossed the budget (so the built half was tested).
        assert!(rare.len() > u64::from(PROBE_BUDGET) && (&evens & &rare).len() < 10);
    }
}
