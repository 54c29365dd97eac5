//! `Query`: filters, order, paging and cursors, as typed constructors. `plan`
//! validates a query list; `exec` runs it over the permission bitmaps.

pub(crate) mod exec;
pub(crate) mod plan;

use serde_json::Value;

/// Most values one query may carry.
pub const MAX_QUERY_VALUES: usize = 100;
/// Most queries in one list.
pub const MAX_QUERIES: usize = 100;
/// Largest page.
pub const MAX_LIMIT: u64 = 5000;
/// Page size when no `limit` is given.
pub const DEFAULT_LIMIT: u64 = 25;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QueryKind {
    Equal(String, Vec<Value>),
    NotEqual(String, Value),
    Limit(u64),
    Offset(u64),
    CursorAfter(String),
    CursorBefore(String),
    OrderAsc(String),
    OrderDesc(String),
}

/// One query: a filter, an order, a page size, an offset or a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Query(pub(crate) QueryKind);

impl Query {
    /// Documents whose `attribute` equals one of `values` (strings, numbers or booleans).
    #[must_use]
    pub fn equal<V: Into<Value>>(attribute: &str, values: impl IntoIterator<Item = V>) -> Query {
        Query(QueryKind::Equal(
            attribute.to_owned(),
            values.into_iter().map(Into::into).collect(),
        ))
    }

    /// Documents whose `attribute` is present, not null, and differs from `value`.
    #[must_use]
    pub fn not_equal(attribute: &str, value: impl Into<Value>) -> Query {
        Query(QueryKind::NotEqual(attribute.to_owned(), value.into()))
    }

    /// At most `n` documents in the page (default 25, at most 5000).
    #[must_use]
    pub fn limit(n: u64) -> Query {
        Query(QueryKind::Limit(n))
    }

    /// Skip the first `n` matching documents.
    #[must_use]
    pub fn offset(n: u64) -> Query {
        Query(QueryKind::Offset(n))
    }

    /// The page that follows document `id` in the query's order.
    #[must_use]
    pub fn cursor_after(id: &str) -> Query {
        Query(QueryKind::CursorAfter(id.to_owned()))
    }

    /// The page that precedes document `id` in the query's order.
    #[must_use]
    pub fn cursor_before(id: &str) -> Query {
        Query(QueryKind::CursorBefore(id.to_owned()))
    }

    /// Ascending order by `attribute` (only `$sequence` for now, the default).
    #[must_use]
    pub fn order_asc(attribute: &str) -> Query {
        Query(QueryKind::OrderAsc(attribute.to_owned()))
    }

    /// Descending order by `attribute` (only `$sequence` for now).
    #[must_use]
    pub fn order_desc(attribute: &str) -> Query {
        Query(QueryKind::OrderDesc(attribute.to_owned()))
    }
}

/// What a query did: the plan it took and the work counted while running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explain {
    /// Where the candidates came from.
    pub plan: Plan,
    /// Documents read from the store and decoded.
    pub documents_decoded: u64,
    /// Stored bitmaps opened (the live set, or one per role).
    pub bitmaps_read: u64,
    /// Roaring containers fetched from the store.
    pub containers_read: u64,
    /// Candidate sequences considered.
    pub candidates_considered: u64,
}

/// The source of candidate documents a query used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plan {
    /// Every live document: root, or a collection that grants read to the client.
    AllDocuments,
    /// The union of the read bitmaps of the client's roles (document security).
    RoleUnion {
        /// How many roles were unioned.
        roles: usize,
    },
}
