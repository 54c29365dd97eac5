//! Lazy iteration over one stored bitmap: containers are fetched one at a time,
//! in either direction, from a starting sequence, so a page reads only what it shows.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use roaring::RoaringBitmap;

use super::{IndexKind, bitmap_prefix, container_key, decode_container, high_bits};
use crate::error::{Error, Result};
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
                &container_key(&prefix, high),
                &end,
                direction,
            ),
            (Some(high), Direction::Reverse) => {
                let upto = keys::prefix_end(&container_key(&prefix, high)).unwrap_or_default();
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

/// The union of several bitmaps, in `direction` order, without duplicates, merged
/// lazily with a min-heap: a page costs the entries it reaches, not the union of
/// every bitmap (DESIGN §4, many roles).
pub(crate) struct MergedStream<'a> {
    streams: Vec<Box<dyn Iterator<Item = Result<u32>> + 'a>>,
    /// Min-heap of (key, stream): the key orders sequences in `direction`.
    heap: BinaryHeap<Reverse<(u32, usize)>>,
    direction: Direction,
    last: Option<u32>,
    failed: Option<Error>,
}

impl<'a> MergedStream<'a> {
    /// Merges `streams`, each already in `direction` order.
    pub(crate) fn new(
        streams: Vec<Box<dyn Iterator<Item = Result<u32>> + 'a>>,
        direction: Direction,
    ) -> MergedStream<'a> {
        let mut merged = MergedStream {
            streams,
            heap: BinaryHeap::new(),
            direction,
            last: None,
            failed: None,
        };
        for i in 0..merged.streams.len() {
            merged.refill(i);
        }
        merged
    }

    fn key(&self, seq: u32) -> u32 {
        match self.direction {
            Direction::Forward => seq,
            Direction::Reverse => u32::MAX - seq,
        }
    }

    fn refill(&mut self, i: usize) {
        match self.streams.get_mut(i).and_then(Iterator::next) {
            Some(Ok(seq)) => {
                let key = self.key(seq);
                self.heap.push(Reverse((key, i)));
            }
            Some(Err(e)) => self.failed = Some(e),
            None => {}
        }
    }
}

impl Iterator for MergedStream<'_> {
    type Item = Result<u32>;

    fn next(&mut self) -> Option<Result<u32>> {
        loop {
            if let Some(e) = self.failed.take() {
                return Some(Err(e));
            }
            let Reverse((key, i)) = self.heap.pop()?;
            self.refill(i);
            let seq = match self.direction {
                Direction::Forward => key,
                Direction::Reverse => u32::MAX - key,
            };
            if self.last != Some(seq) {
                self.last = Some(seq);
                return Some(Ok(seq));
            }
        }
    }
}
