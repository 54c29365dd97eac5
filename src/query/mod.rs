//! `Query`: Appwrite's query language as typed constructors and as its JSON wire form
//! (`wire`); `plan` validates a query list, `eval` decides matches and order, `exec` runs it.

pub(crate) mod eval;
pub(crate) mod exec;
mod indexed;
pub(crate) mod memory;
pub(crate) mod plan;
mod wire;

use serde_json::Value;

/// Most values one query may carry.
pub const MAX_QUERY_VALUES: usize = 100;
/// Most queries in one list (nested ones included).
pub const MAX_QUERIES: usize = 100;
/// Deepest nesting of `and` / `or`.
pub const MAX_QUERY_DEPTH: usize = 5;
/// Largest page.
pub const MAX_LIMIT: u64 = 5000;
/// Page size when no `limit` is given.
pub const DEFAULT_LIMIT: u64 = 25;
/// `find` counts matches up to this many: a page's `total` is exact below it and
/// equal to it above (as Appwrite's `APP_LIMIT_COUNT`). `count` is always exact.
pub const TOTAL_CAP: u64 = 5000;

/// A query method, with its name in the JSON wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `equal`: the attribute equals one of the values.
    Equal,
    /// `notEqual`: present, not null, and equal to none of the values.
    NotEqual,
    /// `lessThan`
    LessThan,
    /// `lessThanEqual`
    LessThanEqual,
    /// `greaterThan`
    GreaterThan,
    /// `greaterThanEqual`
    GreaterThanEqual,
    /// `between`: inclusive, two values.
    Between,
    /// `notBetween`
    NotBetween,
    /// `startsWith`
    StartsWith,
    /// `notStartsWith`
    NotStartsWith,
    /// `endsWith`
    EndsWith,
    /// `notEndsWith`
    NotEndsWith,
    /// `contains`: an array attribute holds one of the values, or a string attribute contains one.
    Contains,
    /// `notContains`
    NotContains,
    /// `search`: full-text, needs a fulltext index; any word of the text matches.
    Search,
    /// `notSearch`
    NotSearch,
    /// `isNull`: missing or null.
    IsNull,
    /// `isNotNull`
    IsNotNull,
    /// `and`: every nested query matches.
    And,
    /// `or`: one nested query matches.
    Or,
    /// `select`: which attributes documents carry in the page.
    Select,
    /// `orderAsc`
    OrderAsc,
    /// `orderDesc`
    OrderDesc,
    /// `limit`
    Limit,
    /// `offset`
    Offset,
    /// `cursorAfter`
    CursorAfter,
    /// `cursorBefore`
    CursorBefore,
}

impl Method {
    pub(crate) const ALL: [Method; 27] = [
        Method::Equal,
        Method::NotEqual,
        Method::LessThan,
        Method::LessThanEqual,
        Method::GreaterThan,
        Method::GreaterThanEqual,
        Method::Between,
        Method::NotBetween,
        Method::StartsWith,
        Method::NotStartsWith,
        Method::EndsWith,
        Method::NotEndsWith,
        Method::Contains,
        Method::NotContains,
        Method::Search,
        Method::NotSearch,
        Method::IsNull,
        Method::IsNotNull,
        Method::And,
        Method::Or,
        Method::Select,
        Method::OrderAsc,
        Method::OrderDesc,
        Method::Limit,
        Method::Offset,
        Method::CursorAfter,
        Method::CursorBefore,
    ];

    /// The method's name in the wire form, e.g. `lessThanEqual`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Equal => "equal",
            Method::NotEqual => "notEqual",
            Method::LessThan => "lessThan",
            Method::LessThanEqual => "lessThanEqual",
            Method::GreaterThan => "greaterThan",
            Method::GreaterThanEqual => "greaterThanEqual",
            Method::Between => "between",
            Method::NotBetween => "notBetween",
            Method::StartsWith => "startsWith",
            Method::NotStartsWith => "notStartsWith",
            Method::EndsWith => "endsWith",
            Method::NotEndsWith => "notEndsWith",
            Method::Contains => "contains",
            Method::NotContains => "notContains",
            Method::Search => "search",
            Method::NotSearch => "notSearch",
            Method::IsNull => "isNull",
            Method::IsNotNull => "isNotNull",
            Method::And => "and",
            Method::Or => "or",
            Method::Select => "select",
            Method::OrderAsc => "orderAsc",
            Method::OrderDesc => "orderDesc",
            Method::Limit => "limit",
            Method::Offset => "offset",
            Method::CursorAfter => "cursorAfter",
            Method::CursorBefore => "cursorBefore",
        }
    }

    /// Whether the method filters documents (as opposed to ordering, paging or selecting).
    #[must_use]
    pub fn is_filter(self) -> bool {
        !matches!(
            self,
            Method::Select
                | Method::OrderAsc
                | Method::OrderDesc
                | Method::Limit
                | Method::Offset
                | Method::CursorAfter
                | Method::CursorBefore
        )
    }
}

/// One query: a method, the attribute it applies to (if any), and its values
/// (nested queries for `and` / `or`). Build with the constructors or parse the wire form.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub(crate) method: Method,
    pub(crate) attribute: String,
    pub(crate) values: Vec<Value>,
    pub(crate) nested: Vec<Query>,
}

fn values<V: Into<Value>>(v: impl IntoIterator<Item = V>) -> Vec<Value> {
    v.into_iter().map(Into::into).collect()
}

impl Query {
    fn new(method: Method, attribute: &str, values: Vec<Value>) -> Query {
        Query {
            method,
            attribute: attribute.to_owned(),
            values,
            nested: Vec::new(),
        }
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> Method {
        self.method
    }

    /// The attribute, empty for methods without one.
    #[must_use]
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// `attribute` equals one of `values` (strings, numbers or booleans).
    #[must_use]
    pub fn equal<V: Into<Value>>(attribute: &str, values: impl IntoIterator<Item = V>) -> Query {
        Query::new(Method::Equal, attribute, self::values(values))
    }
    /// `attribute` is present, not null, and differs from `value`.
    #[must_use]
    pub fn not_equal(attribute: &str, value: impl Into<Value>) -> Query {
        Query::new(Method::NotEqual, attribute, vec![value.into()])
    }
    /// `attribute < value`
    #[must_use]
    pub fn less_than(attribute: &str, value: impl Into<Value>) -> Query {
        Query::new(Method::LessThan, attribute, vec![value.into()])
    }
    /// `attribute <= value`
    #[must_use]
    pub fn less_than_equal(attribute: &str, value: impl Into<Value>) -> Query {
        Query::new(Method::LessThanEqual, attribute, vec![value.into()])
    }
    /// `attribute > value`
    #[must_use]
    pub fn greater_than(attribute: &str, value: impl Into<Value>) -> Query {
        Query::new(Method::GreaterThan, attribute, vec![value.into()])
    }
    /// `attribute >= value`
    #[must_use]
    pub fn greater_than_equal(attribute: &str, value: impl Into<Value>) -> Query {
        Query::new(Method::GreaterThanEqual, attribute, vec![value.into()])
    }
    /// `start <= attribute <= end`
    #[must_use]
    pub fn between(attribute: &str, start: impl Into<Value>, end: impl Into<Value>) -> Query {
        Query::new(Method::Between, attribute, vec![start.into(), end.into()])
    }
    /// `attribute < start || attribute > end` (present and not null)
    #[must_use]
    pub fn not_between(attribute: &str, start: impl Into<Value>, end: impl Into<Value>) -> Query {
        Query::new(
            Method::NotBetween,
            attribute,
            vec![start.into(), end.into()],
        )
    }
    /// A string attribute starting with `prefix`.
    #[must_use]
    pub fn starts_with(attribute: &str, prefix: &str) -> Query {
        Query::new(Method::StartsWith, attribute, vec![prefix.into()])
    }
    /// A string attribute not starting with `prefix`.
    #[must_use]
    pub fn not_starts_with(attribute: &str, prefix: &str) -> Query {
        Query::new(Method::NotStartsWith, attribute, vec![prefix.into()])
    }
    /// A string attribute ending with `suffix`.
    #[must_use]
    pub fn ends_with(attribute: &str, suffix: &str) -> Query {
        Query::new(Method::EndsWith, attribute, vec![suffix.into()])
    }
    /// A string attribute not ending with `suffix`.
    #[must_use]
    pub fn not_ends_with(attribute: &str, suffix: &str) -> Query {
        Query::new(Method::NotEndsWith, attribute, vec![suffix.into()])
    }
    /// An array attribute holding one of `values`, or a string attribute containing one.
    #[must_use]
    pub fn contains<V: Into<Value>>(attribute: &str, values: impl IntoIterator<Item = V>) -> Query {
        Query::new(Method::Contains, attribute, self::values(values))
    }
    /// The negation of [`Query::contains`] (present and not null).
    #[must_use]
    pub fn not_contains<V: Into<Value>>(
        attribute: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Query {
        Query::new(Method::NotContains, attribute, self::values(values))
    }
    /// Full-text search: a word of `text` appears in the attribute (needs a fulltext index).
    #[must_use]
    pub fn search(attribute: &str, text: &str) -> Query {
        Query::new(Method::Search, attribute, vec![text.into()])
    }
    /// No word of `text` appears in the attribute (needs a fulltext index).
    #[must_use]
    pub fn not_search(attribute: &str, text: &str) -> Query {
        Query::new(Method::NotSearch, attribute, vec![text.into()])
    }
    /// The attribute is missing or null.
    #[must_use]
    pub fn is_null(attribute: &str) -> Query {
        Query::new(Method::IsNull, attribute, Vec::new())
    }
    /// The attribute is present and not null.
    #[must_use]
    pub fn is_not_null(attribute: &str) -> Query {
        Query::new(Method::IsNotNull, attribute, Vec::new())
    }
    /// Every query of `queries` matches.
    #[must_use]
    pub fn and(queries: impl IntoIterator<Item = Query>) -> Query {
        Query {
            nested: queries.into_iter().collect(),
            ..Query::new(Method::And, "", Vec::new())
        }
    }
    /// One query of `queries` matches.
    #[must_use]
    pub fn or(queries: impl IntoIterator<Item = Query>) -> Query {
        Query {
            nested: queries.into_iter().collect(),
            ..Query::new(Method::Or, "", Vec::new())
        }
    }
    /// Only these attributes (and the system fields) in the page's documents.
    #[must_use]
    pub fn select<'a>(attributes: impl IntoIterator<Item = &'a str>) -> Query {
        Query::new(
            Method::Select,
            "",
            attributes.into_iter().map(Value::from).collect(),
        )
    }
    /// Ascending order by `attribute`; several orders sort by each in turn, then by `$sequence`.
    #[must_use]
    pub fn order_asc(attribute: &str) -> Query {
        Query::new(Method::OrderAsc, attribute, Vec::new())
    }
    /// Descending order by `attribute`.
    #[must_use]
    pub fn order_desc(attribute: &str) -> Query {
        Query::new(Method::OrderDesc, attribute, Vec::new())
    }
    /// At most `n` documents in the page (default 25, at most 5000).
    #[must_use]
    pub fn limit(n: u64) -> Query {
        Query::new(Method::Limit, "", vec![n.into()])
    }
    /// Skip the first `n` matching documents.
    #[must_use]
    pub fn offset(n: u64) -> Query {
        Query::new(Method::Offset, "", vec![n.into()])
    }
    /// The page that follows document `id` in the query's order.
    #[must_use]
    pub fn cursor_after(id: &str) -> Query {
        Query::new(Method::CursorAfter, "", vec![id.into()])
    }
    /// The page that precedes document `id` in the query's order.
    #[must_use]
    pub fn cursor_before(id: &str) -> Query {
        Query::new(Method::CursorBefore, "", vec![id.into()])
    }
}

/// What a query did: the plan it took and the work counted while running it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explain {
    /// Where the candidates came from.
    pub plan: Plan,
    /// Indexes used to narrow the candidates, by index key.
    pub indexes_used: Vec<String>,
    /// How the page was ordered.
    pub order: OrderPlan,
    /// Documents read and decoded, or found decoded in the document cache (the count
    /// does not tell which, so that it says the same whoever read them before).
    pub documents_decoded: u64,
    /// Stored bitmaps opened (the live set, one per role, one per fulltext word).
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
    /// Every live document: root, an API key, or a collection that grants read to the client.
    AllDocuments,
    /// The union of the read bitmaps of the client's roles (document security),
    /// materialised: for counts, index intersections and orders other than `$sequence`.
    RoleUnion {
        /// How many roles were unioned.
        roles: usize,
    },
    /// The read bitmaps of the client's roles merged lazily in `$sequence` order,
    /// one container at a time: for pages.
    RoleMerge {
        /// How many roles were merged.
        roles: usize,
    },
}

/// How a page was put in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderPlan {
    /// By `$sequence`, streaming candidates in order and stopping at the page.
    Sequence,
    /// By walking the ordered entries of a key index, stopping at the page.
    IndexWalk {
        /// The index walked.
        index: String,
    },
    /// By decoding every matching candidate and sorting them.
    Sort,
}
