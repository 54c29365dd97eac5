//! Runs a query plan. Candidates come from the permission bitmaps (or the live set).
//! With `$sequence` order they stream in order until the page is full; any other order
//! decodes and sorts the matching candidates. `find` counts up to `TOTAL_CAP`, `count` exactly.

use std::cmp::Ordering;
use std::sync::Arc;

use roaring::{MultiOps, RoaringBitmap};
use serde_json::Value;

use super::eval::{Filter, field, order_cmp};
use super::indexed;
use super::plan::{QueryPlan, plan};
use super::{Explain, OrderPlan, Plan, Query, TOTAL_CAP};
use crate::catalog::{CollectionRecord, Counters as CollectionCounters};
use crate::document::{DecodedDocument, Document, Loaded, Ticket, describe, seq_of};
use crate::engine::ReadView;
use crate::error::{Denial, Error, ResourceKind, Result};
use crate::id::quote;
use crate::index::attr::IndexRecord;
use crate::index::{BitmapStream, Counters, IndexKind, MeetStream, MergedStream, RoleBitmaps};
use crate::perm::decide::{Access, access, grants_to};
use crate::perm::{Action, Principal, RoleSet};
use crate::store::Direction;

/// What `find` returns before it is split into the public types.
pub(crate) struct Found {
    pub(crate) total: u64,
    pub(crate) documents: Vec<Document>,
    pub(crate) explain: Explain,
    /// The filter the queries planned to (a write by queries checks it again later).
    pub(crate) filter: Option<Filter>,
}

/// Whether the caller wants a page (with a capped total) or only an exact count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Page,
    Count,
}

/// What the client may read: every live document, or the union of its roles' read bitmaps.
enum Visible<'r> {
    All,
    /// The union of the roles' read bitmaps, memoised with the role set
    /// (`BitmapCache::role_union`), and the bitmaps it is the union of.
    Roles {
        union: Arc<RoaringBitmap>,
        set: Arc<RoleBitmaps>,
        roles: &'r RoleSet,
    },
    /// The roles' read bitmaps, never unioned here: pages by `$sequence` merge them
    /// lazily in order, so many roles cost what the page reaches; totals and counts take
    /// the size of their union, memoised with the role set. Only without index narrowing.
    Lazy(Arc<RoleBitmaps>, &'r RoleSet),
}

/// Candidate documents: the visible ones, narrowed by indexes when the filter allows.
struct Source<'r> {
    visible: Visible<'r>,
    /// Documents the indexed part of the filter selects, over the whole collection: a
    /// candidate is in both this and `visible` (met lazily, `MeetStream`).
    narrowed: Option<Arc<RoaringBitmap>>,
    /// Whether `narrowed` is exactly the documents matching the whole filter.
    exact: bool,
    /// Whether `narrowed` is the bitmap cache's own (`indexed::Hit::shared`).
    shared: bool,
}

type SeqIter<'a> = Box<dyn Iterator<Item = Result<u32>> + 'a>;

/// A document read for a query, and, when it came from the store, what keeps it in the
/// document cache if the page takes it ([`Run::take`]).
struct Read {
    doc: Document,
    unkept: Option<(Ticket, Arc<DecodedDocument>)>,
}

struct Run<'a> {
    view: ReadView<'a>,
    coll: &'a CollectionRecord,
    plan: QueryPlan,
    counters: Counters,
}

impl Run<'_> {
    fn candidates<'s>(
        &'s self,
        source: &'s Source<'_>,
        dir: Direction,
        start: Option<u32>,
    ) -> SeqIter<'s> {
        if let Some(bitmap) = &source.narrowed {
            return match &source.visible {
                Visible::Roles { union: visible, .. } => {
                    Box::new(MeetStream::new(bitmap, visible, dir, start).map(Ok))
                }
                Visible::All => iter_bitmap(bitmap, dir, start),
                // Never built (`find` narrows only a whole union), but met all the same.
                Visible::Lazy(set, _) => Box::new(
                    iter_bitmap(bitmap, dir, start)
                        .filter(|seq| seq.as_ref().map_or(true, |s| in_any(set, *s))),
                ),
            };
        }
        match &source.visible {
            Visible::All => Box::new(BitmapStream::open(
                self.view.store,
                self.coll.cid,
                IndexKind::Live,
                "",
                dir,
                start,
                &self.counters,
            )),
            Visible::Roles { union, .. } => iter_bitmap(union, dir, start),
            Visible::Lazy(set, _) => Box::new(
                MergedStream::new(set.bitmaps().iter().map(AsRef::as_ref), dir, start).map(Ok),
            ),
        }
    }

    /// Whether `seq` is a candidate (for walks over an index).
    fn is_candidate(&self, source: &Source<'_>, seq: u32) -> bool {
        match (&source.narrowed, &source.visible) {
            (Some(b), Visible::Roles { union, .. }) => b.contains(seq) && union.contains(seq),
            (Some(b), Visible::All) => b.contains(seq),
            (Some(b), Visible::Lazy(set, _)) => b.contains(seq) && in_any(set, seq),
            (None, Visible::Roles { union, .. }) => union.contains(seq),
            (None, Visible::All | Visible::Lazy(..)) => true,
        }
    }

    /// Document `seq` (decoded, or from the document cache), if it is still there and,
    /// for a role source, still grants read: its own permissions are checked again, so a
    /// document a stale bitmap still lists is skipped (fail closed), undecoded.
    fn decoded(&self, source: &Source<'_>, seq: u32) -> Result<(Loaded, Option<Ticket>)> {
        let coll = self.coll;
        let roles = match &source.visible {
            Visible::Roles { roles, .. } | Visible::Lazy(_, roles) => Some(*roles),
            Visible::All => None,
        };
        self.view.documents.load(
            self.view.store,
            (coll.cid, seq),
            self.view.limits.max_depth,
            || describe(seq, &coll.schema_id, &coll.id),
            |grants| roles.is_none_or(|roles| grants_to(grants, Action::Read, roles)),
        )
    }

    /// Document `seq` as [`Run::decoded`] finds it, in its public form; kept in the
    /// document cache only once [`Run::take`] puts it on the page.
    fn load(&self, source: &Source<'_>, seq: u32) -> Result<Option<Read>> {
        let (Loaded::Readable(decoded), ticket) = self.decoded(source, seq)? else {
            return Ok(None); // deleted since the bitmap was read, or no longer readable
        };
        self.counters.document_decoded();
        let doc = decoded.to_document(seq, &self.coll.schema_id, &self.coll.id);
        Ok(Some(Read {
            doc,
            unkept: ticket.map(|ticket| (ticket, decoded)),
        }))
    }

    /// The document of `read`, for the page: kept in the document cache when it was read
    /// from the store (a filter's misses, a sort's and a count's are not).
    fn take(&self, read: Read) -> Document {
        if let Some((ticket, decoded)) = read.unkept {
            self.view.documents.keep(ticket, &decoded);
        }
        read.doc
    }

    fn passes(&self, doc: &Document) -> bool {
        self.plan.filter.as_ref().is_none_or(|f| f.matches(doc))
    }

    /// The cursor document's sequence; `NotFound` unless it exists and the client may read it.
    fn cursor_seq(&self, source: &Source<'_>, id: &str) -> Result<u32> {
        let not_found = || Error::not_found(ResourceKind::Document, id);
        let seq = seq_of(self.view.store, self.coll.cid, id)?.ok_or_else(not_found)?;
        match &source.visible {
            Visible::All => Ok(seq),
            Visible::Roles { union, .. } if union.contains(seq) => Ok(seq),
            Visible::Roles { .. } => Err(not_found()),
            Visible::Lazy(..) => match self.decoded(source, seq)?.0 {
                Loaded::Readable(_) => Ok(seq),
                _ => Err(not_found()),
            },
        }
    }

    /// `$sequence` order: stream candidates from the cursor, stop when the page is full.
    /// Without a cursor, a filter that needs decoding is counted in the same pass (up to
    /// `TOTAL_CAP`), so each candidate is decoded once; that total is returned too.
    fn page_in_sequence(
        &self,
        source: &Source<'_>,
        order: Direction,
    ) -> Result<(Vec<Document>, Option<u64>)> {
        let plan = &self.plan;
        let mut page = Vec::new();
        // The cursor is resolved even for an empty page: a bad cursor is always an error.
        let (dir, start) = match &plan.cursor {
            None => (order, None),
            Some(cursor) => {
                let seq = self.cursor_seq(source, &cursor.id)?;
                let dir = if cursor.before { flip(order) } else { order };
                match step(seq, dir) {
                    Some(s) => (dir, Some(s)),
                    None => return Ok((page, None)),
                }
            }
        };
        if plan.limit == 0 {
            return Ok((page, None));
        }
        let decode_to_match = plan.filter.is_some() && !source.exact;
        // Without decoding, the total comes from the bitmaps afterwards (`total`).
        let counting = plan.cursor.is_none() && decode_to_match;
        let (mut skipped, mut matched) = (0u64, 0u64);
        for seq in self.candidates(source, dir, start) {
            let full = page.len() as u64 >= plan.limit;
            if full && (!counting || matched >= TOTAL_CAP) {
                break;
            }
            let seq = seq?;
            self.counters.candidate();
            if !decode_to_match {
                // Every candidate matches: count it, skip the offset, decode only the page.
                matched += 1;
                if skipped < plan.offset {
                    skipped += 1;
                } else if !full && let Some(read) = self.load(source, seq)? {
                    page.push(self.take(read));
                }
                continue;
            }
            let Some(read) = self.load(source, seq)? else {
                continue;
            };
            if !self.passes(&read.doc) {
                continue;
            }
            matched += 1;
            if skipped < plan.offset {
                skipped += 1;
                continue;
            }
            if !full {
                page.push(self.take(read));
            }
        }
        if plan.cursor.as_ref().is_some_and(|c| c.before) {
            page.reverse();
        }
        let total = counting.then_some(matched.min(TOTAL_CAP));
        Ok((page, total))
    }

    /// Order by a single-attribute key index: walk its entries in order from the cursor,
    /// keep candidates, decode them, stop when the page is full.
    fn page_by_index(
        &self,
        source: &Source<'_>,
        index: &IndexRecord,
        order: Direction,
    ) -> Result<Vec<Document>> {
        let plan = &self.plan;
        let (dir, after) = match &plan.cursor {
            None => (order, None),
            Some(c) => {
                let seq = self.cursor_seq(source, &c.id)?;
                let doc = self
                    .load(source, seq)?
                    .map(|read| self.take(read))
                    .ok_or_else(|| Error::not_found(ResourceKind::Document, &c.id))?;
                (
                    if c.before { flip(order) } else { order },
                    Some(index.entry_of(self.coll.cid, doc.data(), seq)),
                )
            }
        };
        let mut page = Vec::new();
        if plan.limit == 0 {
            return Ok(page);
        }
        let mut skipped = 0u64;
        for entry in index.walk(self.view.store, self.coll.cid, dir, after.as_deref()) {
            let seq = IndexRecord::seq(&entry?.0)?;
            if !self.is_candidate(source, seq) {
                continue;
            }
            self.counters.candidate();
            let Some(read) = self.load(source, seq)? else {
                continue;
            };
            if !self.passes(&read.doc) {
                continue;
            }
            if skipped < plan.offset {
                skipped += 1;
                continue;
            }
            page.push(self.take(read));
            if page.len() as u64 >= plan.limit {
                break;
            }
        }
        if plan.cursor.as_ref().is_some_and(|c| c.before) {
            page.reverse();
        }
        Ok(page)
    }

    fn sort_key(&self, doc: &Document) -> Vec<Option<Value>> {
        self.plan
            .orders
            .iter()
            .map(|(a, _)| field(doc, a))
            .collect()
    }

    fn key_cmp(&self, a: &(Vec<Option<Value>>, u64), b: &(Vec<Option<Value>>, u64)) -> Ordering {
        order_cmp(&self.plan.orders, a, b)
    }

    /// Any other order: decode every matching candidate, sort, then cursor, offset, limit.
    /// Returns the page and the exact number of matches.
    fn page_sorted(&self, source: &Source<'_>) -> Result<(Vec<Document>, u64)> {
        let plan = &self.plan;
        let cursor = match &plan.cursor {
            Some(c) => {
                let seq = self.cursor_seq(source, &c.id)?;
                let doc = self
                    .load(source, seq)?
                    .map(|read| self.take(read))
                    .ok_or_else(|| Error::not_found(ResourceKind::Document, &c.id))?;
                Some(((self.sort_key(&doc), doc.sequence()), c.before))
            }
            None => None,
        };
        let mut all = Vec::new();
        for seq in self.candidates(source, Direction::Forward, None) {
            let seq = seq?;
            self.counters.candidate();
            if let Some(Read { doc, .. }) = self.load(source, seq)?
                && self.passes(&doc)
            {
                all.push(((self.sort_key(&doc), doc.sequence()), doc));
            }
        }
        let total = all.len() as u64;
        all.sort_by(|a, b| self.key_cmp(&a.0, &b.0));
        let take = |it: &mut dyn Iterator<Item = Document>| -> Vec<Document> {
            it.skip(usize::try_from(plan.offset).unwrap_or(usize::MAX))
                .take(usize::try_from(plan.limit).unwrap_or(usize::MAX))
                .collect()
        };
        let page = match cursor {
            None => take(&mut all.into_iter().map(|(_, d)| d)),
            Some((key, false)) => take(
                &mut all
                    .into_iter()
                    .filter(|(k, _)| self.key_cmp(k, &key) == Ordering::Greater)
                    .map(|(_, d)| d),
            ),
            Some((key, true)) => {
                let mut before = take(
                    &mut all
                        .into_iter()
                        .rev()
                        .filter(|(k, _)| self.key_cmp(k, &key) == Ordering::Less)
                        .map(|(_, d)| d),
                );
                before.reverse();
                before
            }
        };
        Ok((page, total))
    }

    /// Matches among the candidates, stopping at `cap`.
    fn total(&self, source: &Source<'_>, cap: u64) -> Result<u64> {
        if self.plan.filter.is_none() {
            let n = match &source.visible {
                Visible::All => CollectionCounters::load(self.view.store, self.coll.cid)?.live,
                Visible::Roles { union, .. } => union.len(),
                Visible::Lazy(set, _) => union_len(set, cap),
            };
            return Ok(n.min(cap));
        }
        if let (true, Some(b)) = (source.exact, &source.narrowed) {
            let n = match &source.visible {
                Visible::Roles { union, set, .. } if source.shared => set.met_len(union, b),
                Visible::Roles { union, .. } => b.intersection_len(union),
                Visible::All => b.len(),
                Visible::Lazy(set, _) => set
                    .bitmaps()
                    .iter()
                    .map(AsRef::as_ref)
                    .union()
                    .intersection_len(b),
            };
            return Ok(n.min(cap));
        }
        let mut total = 0u64;
        for seq in self.candidates(source, Direction::Forward, None) {
            if total >= cap {
                break;
            }
            let seq = seq?;
            self.counters.candidate();
            if let Some(read) = self.load(source, seq)?
                && self.passes(&read.doc)
            {
                total += 1;
            }
        }
        Ok(total)
    }
}

/// How many documents the union of a role set's bitmaps holds, up to `cap`: at once
/// when one bitmap alone reaches it, otherwise the union's size, computed once per set
/// until a write touches one of its roles (`RoleBitmaps::union_len`).
fn union_len(set: &RoleBitmaps, cap: u64) -> u64 {
    if set.bitmaps().iter().any(|b| b.len() >= cap) {
        return cap;
    }
    set.union_len().min(cap)
}

/// Whether one of `set`'s bitmaps holds `seq`.
fn in_any(set: &RoleBitmaps, seq: u32) -> bool {
    set.bitmaps().iter().any(|b| b.contains(seq))
}

fn iter_bitmap(bitmap: &RoaringBitmap, dir: Direction, start: Option<u32>) -> SeqIter<'_> {
    match (dir, start) {
        (Direction::Forward, None) => Box::new(bitmap.iter().map(Ok)),
        (Direction::Forward, Some(s)) => Box::new(bitmap.range(s..).map(Ok)),
        (Direction::Reverse, None) => Box::new(bitmap.iter().rev().map(Ok)),
        (Direction::Reverse, Some(s)) => Box::new(bitmap.range(..=s).rev().map(Ok)),
    }
}

fn flip(d: Direction) -> Direction {
    match d {
        Direction::Forward => Direction::Reverse,
        Direction::Reverse => Direction::Forward,
    }
}

/// The first sequence strictly past `seq` in direction `dir`.
fn step(seq: u32, dir: Direction) -> Option<u32> {
    match dir {
        Direction::Forward => seq.checked_add(1),
        Direction::Reverse => seq.checked_sub(1),
    }
}

/// Keeps only the selected attributes (system fields always stay).
fn project(doc: &mut Document, select: &[String]) {
    let kept = doc
        .data
        .iter()
        .filter(|(k, _)| select.iter().any(|s| s == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    doc.data = Arc::new(kept);
}

/// The refusal of a client that may read no document of `coll` (as `find` answers it).
pub(crate) fn no_read(coll: &CollectionRecord) -> Error {
    Error::unauthorized(
        Denial::NotGranted,
        format!(
            "collection {} grants no read to the client's roles and has document security off",
            quote(&coll.id)
        ),
    )
}

/// Runs `queries` on `coll` as `principal`.
pub(crate) fn find(
    view: ReadView<'_>,
    principal: &Principal,
    coll: &CollectionRecord,
    queries: &[Query],
    want: Want,
) -> Result<Found> {
    // Who may read nothing is refused before the queries are looked at: the planner's
    // errors name attributes and indexes, which such a caller must not learn.
    let read = access(principal, coll.rules()?, Action::Read);
    if read == Access::Denied {
        return Err(no_read(coll));
    }
    let schema = coll.query_schema(view.limits.max_depth)?;
    let run = Run {
        view,
        coll,
        plan: plan(queries, &schema)?,
        counters: Counters::default(),
    };
    let mut used = Vec::new();
    // Narrowing reads index bitmaps over the whole collection; its work is reported only
    // to callers who may read every document (below), so that `Explain` does not tell
    // others whether a hidden document holds a value or a word.
    let narrowing = Counters::default();
    let hit = match &run.plan.filter {
        Some(f) => indexed::narrow(view, coll, f, &narrowing, &mut used)?,
        None => None,
    };
    // Counts and `$sequence` pages never need the union itself; other orders and index
    // intersections test membership in it (kept with the role set: `role_union`).
    // (Meeting each role's bitmap with the index's answer instead of one union was
    // measured 3x slower on P3 at 1M: 166 against 54 µs a page, in `ArrayStore`
    // intersections.)
    let lazy_ok = hit.is_none() && (want == Want::Count || run.plan.sequence_order().is_some());
    let visible = match (read, principal.roles()) {
        (Access::All, _) | (Access::ByDocument, None) => Visible::All,
        (Access::ByDocument, Some(roles)) => {
            let bitmaps = view.bitmaps.role_bitmaps(
                view.store,
                coll.cid,
                IndexKind::Read,
                roles,
                &run.counters,
            )?;
            if lazy_ok {
                Visible::Lazy(bitmaps, roles)
            } else {
                let union = view
                    .bitmaps
                    .role_union(roles, coll.cid, IndexKind::Read, &bitmaps);
                Visible::Roles {
                    union,
                    set: bitmaps,
                    roles,
                }
            }
        }
        (Access::Denied, _) => return Err(no_read(coll)),
    };
    if let Visible::All = visible {
        run.counters.add(&narrowing);
    }
    let source = match hit {
        Some(hit) => Source {
            visible,
            narrowed: Some(hit.bitmap),
            exact: hit.exact,
            shared: hit.shared,
        },
        None => Source {
            visible,
            narrowed: None,
            exact: false,
            shared: false,
        },
    };
    let walk = match run.plan.orders.as_slice() {
        [(attribute, dir)] if attribute != "$sequence" => {
            indexed::walkable(coll, attribute).map(|i| (i, *dir))
        }
        _ => None,
    };
    let (mut documents, total, order) = match (want, run.plan.sequence_order(), walk) {
        (Want::Count, _, _) => (
            Vec::new(),
            run.total(&source, u64::MAX)?,
            OrderPlan::Sequence,
        ),
        (Want::Page, Some(dir), _) => {
            let (page, counted) = run.page_in_sequence(&source, dir)?;
            let total = match counted {
                Some(n) => n,
                None => run.total(&source, TOTAL_CAP)?,
            };
            (page, total, OrderPlan::Sequence)
        }
        (Want::Page, None, Some((index, dir))) => {
            let page = run.page_by_index(&source, index, dir)?;
            used.push(index.key.clone());
            (
                page,
                run.total(&source, TOTAL_CAP)?,
                OrderPlan::IndexWalk {
                    index: index.key.clone(),
                },
            )
        }
        (Want::Page, None, None) => {
            let (page, total) = run.page_sorted(&source)?;
            (page, total.min(TOTAL_CAP), OrderPlan::Sort)
        }
    };
    if let Some(select) = &run.plan.select {
        documents.iter_mut().for_each(|d| project(d, select));
    }
    let explain = Explain {
        plan: match &source.visible {
            Visible::All => Plan::AllDocuments,
            Visible::Roles { roles, .. } => Plan::RoleUnion { roles: roles.len() },
            Visible::Lazy(_, roles) => Plan::RoleMerge { roles: roles.len() },
        },
        indexes_used: used,
        order,
        documents_decoded: run.counters.decoded.get(),
        bitmaps_read: run.counters.bitmaps.get(),
        containers_read: run.counters.containers.get(),
        candidates_considered: run.counters.candidates.get(),
    };
    Ok(Found {
        total,
        documents,
        explain,
        filter: run.plan.filter,
    })
}
