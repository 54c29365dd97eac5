//! Runs a query plan: candidates from the permission bitmaps (or the live set),
//! decoded in order until the page is full; the total from bitmap cardinality when no filter applies.

use roaring::RoaringBitmap;

use super::plan::{QueryPlan, plan};
use super::{Explain, Plan, Query};
use crate::catalog::{CollectionRecord, Counters as CollectionCounters};
use crate::db::DbInner;
use crate::document::{ACTION_READ, DocRecord, Document, load_record, seq_of};
use crate::error::{Error, ResourceKind, Result};
use crate::id::quote;
use crate::index::{BitmapStream, Counters, IndexKind, load_bitmap};
use crate::perm::{Action, Principal, RoleSet};
use crate::store::Direction;

/// What `find` returns before it is split into the public types.
pub(crate) struct Found {
    pub(crate) total: u64,
    pub(crate) documents: Vec<Document>,
    pub(crate) explain: Explain,
}

/// Candidate documents: every live one, or those in the union of the roles' read bitmaps.
enum Source<'r> {
    All,
    Roles(RoaringBitmap, &'r RoleSet),
}

type SeqIter<'a> = Box<dyn Iterator<Item = Result<u32>> + 'a>;

struct Run<'a> {
    db: &'a DbInner,
    coll: &'a CollectionRecord,
    counters: Counters,
    limits_depth: usize,
}

impl<'a> Run<'a> {
    fn candidates<'s>(
        &'s self,
        source: &'s Source<'_>,
        dir: Direction,
        start: Option<u32>,
    ) -> SeqIter<'s> {
        match source {
            Source::All => Box::new(BitmapStream::open(
                &self.db.store,
                self.coll.cid,
                IndexKind::Live,
                "",
                dir,
                start,
                &self.counters,
            )),
            Source::Roles(bitmap, _) => match (dir, start) {
                (Direction::Forward, None) => Box::new(bitmap.iter().map(Ok)),
                (Direction::Forward, Some(s)) => Box::new(bitmap.range(s..).map(Ok)),
                (Direction::Reverse, None) => Box::new(bitmap.iter().rev().map(Ok)),
                (Direction::Reverse, Some(s)) => Box::new(bitmap.range(..=s).rev().map(Ok)),
            },
        }
    }

    /// Decodes document `seq` if it is still there and, for a role source, still grants read.
    fn load(&self, source: &Source<'_>, seq: u32) -> Result<Option<Document>> {
        let Some(record) = load_record(&self.db.store, self.coll.cid, seq)? else {
            return Ok(None); // deleted since the bitmap was read
        };
        self.counters.document_decoded();
        if let Source::Roles(_, roles) = source {
            // Fail closed: a document whose own permissions no longer grant read is skipped.
            if !record.grants(ACTION_READ, |r| roles.contains_key(r)) {
                return Ok(None);
            }
        }
        self.to_document(record, seq).map(Some)
    }

    fn to_document(&self, record: DocRecord, seq: u32) -> Result<Document> {
        let coll = self.coll;
        record.into_document(seq, &coll.schema_id, &coll.id, self.limits_depth, || {
            format!(
                "document {seq} of collection {}/{}",
                coll.schema_id, coll.id
            )
        })
    }

    fn page(&self, source: &Source<'_>, plan: &QueryPlan) -> Result<Vec<Document>> {
        let mut page = Vec::new();
        // The cursor is resolved even for an empty page: a bad cursor is always an error.
        let (dir, start) = match &plan.cursor {
            None => (plan.order, None),
            Some(cursor) => {
                let seq = self.cursor_seq(source, &cursor.id)?;
                let dir = if cursor.before {
                    flip(plan.order)
                } else {
                    plan.order
                };
                match step(seq, dir) {
                    Some(s) => (dir, Some(s)),
                    None => return Ok(page),
                }
            }
        };
        if plan.limit == 0 {
            return Ok(page);
        }
        let mut skipped = 0u64;
        for seq in self.candidates(source, dir, start) {
            let seq = seq?;
            self.counters.candidate();
            if plan.filters.is_empty() && skipped < plan.offset {
                skipped += 1;
                continue;
            }
            let Some(doc) = self.load(source, seq)? else {
                continue;
            };
            if !plan.filters.iter().all(|f| f.matches(&doc)) {
                continue;
            }
            if skipped < plan.offset {
                skipped += 1;
                continue;
            }
            page.push(doc);
            if page.len() as u64 >= plan.limit {
                break;
            }
        }
        if plan.cursor.as_ref().is_some_and(|c| c.before) {
            page.reverse();
        }
        Ok(page)
    }

    /// The cursor document's sequence; `NotFound` unless it exists and the client may read it.
    fn cursor_seq(&self, source: &Source<'_>, id: &str) -> Result<u32> {
        let not_found = || Error::not_found(ResourceKind::Document, id);
        let seq = seq_of(&self.db.store, self.coll.cid, id)?.ok_or_else(not_found)?;
        match source {
            Source::All => Ok(seq),
            Source::Roles(bitmap, _) if bitmap.contains(seq) => Ok(seq),
            Source::Roles(..) => Err(not_found()),
        }
    }

    fn total(&self, source: &Source<'_>, plan: &QueryPlan) -> Result<u64> {
        if plan.filters.is_empty() {
            return match source {
                Source::All => Ok(CollectionCounters::load(&self.db.store, self.coll.cid)?.live),
                Source::Roles(bitmap, _) => Ok(bitmap.len()),
            };
        }
        let mut total = 0u64;
        for seq in self.candidates(source, Direction::Forward, None) {
            let seq = seq?;
            self.counters.candidate();
            if let Some(doc) = self.load(source, seq)? {
                if plan.filters.iter().all(|f| f.matches(&doc)) {
                    total += 1;
                }
            }
        }
        Ok(total)
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

/// Runs `queries` on `coll` as `principal`. With `want_page` false only the total is computed.
pub(crate) fn find(
    db: &DbInner,
    principal: &Principal,
    coll: &CollectionRecord,
    queries: &[Query],
    want_page: bool,
) -> Result<Found> {
    let plan = plan(queries)?;
    let run = Run {
        db,
        coll,
        counters: Counters::default(),
        limits_depth: db.options.limits.max_depth,
    };
    let source = match principal.roles() {
        None => Source::All,
        Some(roles) if coll.grants(Action::Read, roles) => Source::All,
        Some(roles) if coll.document_security => {
            let mut union = RoaringBitmap::new();
            for role in roles.keys() {
                union |= load_bitmap(&db.store, coll.cid, IndexKind::Read, role, &run.counters)?;
            }
            Source::Roles(union, roles)
        }
        Some(_) => {
            return Err(Error::Unauthorized(format!(
                "collection {} grants no read to the client's roles and has document security off",
                quote(&coll.id)
            )));
        }
    };
    let documents = if want_page {
        run.page(&source, &plan)?
    } else {
        Vec::new()
    };
    let total = run.total(&source, &plan)?;
    let explain = Explain {
        plan: match &source {
            Source::All => Plan::AllDocuments,
            Source::Roles(_, roles) => Plan::RoleUnion {
                roles: roles.keys().count(),
            },
        },
        documents_decoded: run.counters.decoded.get(),
        bitmaps_read: run.counters.bitmaps.get(),
        containers_read: run.counters.containers.get(),
        candidates_considered: run.counters.candidates.get(),
    };
    Ok(Found {
        total,
        documents,
        explain,
    })
}
