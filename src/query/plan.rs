//! Validates a query list into a `QueryPlan`: the filter tree, orders, page, cursor and
//! selection. Every fault is `InvalidQuery` naming the method and what is wrong.

use serde_json::Value;

use super::eval::{Cond, Filter};
use super::{
    DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERIES, MAX_QUERY_DEPTH, MAX_QUERY_VALUES, Method, Query,
};
use crate::error::{Error, Result};
use crate::id::quote;
use crate::store::Direction;

/// System attributes a query may name.
pub(crate) const SYSTEM_ATTRIBUTES: [&str; 4] = ["$id", "$sequence", "$createdAt", "$updatedAt"];

pub(crate) use crate::attribute::{QuerySchema, ValueKind};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub(crate) id: String,
    pub(crate) before: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryPlan {
    /// All top-level filters, as one `And` (or `None` without filters).
    pub(crate) filter: Option<Filter>,
    /// Sort keys in order; empty means `$sequence` ascending.
    pub(crate) orders: Vec<(String, Direction)>,
    pub(crate) limit: u64,
    pub(crate) offset: u64,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) select: Option<Vec<String>>,
}

impl QueryPlan {
    /// The direction when the order is `$sequence` alone (the streaming path), else `None`.
    pub(crate) fn sequence_order(&self) -> Option<Direction> {
        match self.orders.as_slice() {
            [] => Some(Direction::Forward),
            [(attribute, dir)] if attribute == "$sequence" => Some(*dir),
            _ => None,
        }
    }
}

fn invalid(msg: String) -> Error {
    Error::InvalidQuery(msg)
}

fn kind_of(v: &Value) -> Option<ValueKind> {
    match v {
        Value::String(_) => Some(ValueKind::String),
        Value::Number(_) => Some(ValueKind::Number),
        Value::Bool(_) => Some(ValueKind::Bool),
        _ => None,
    }
}

struct Planner<'a> {
    schema: &'a QuerySchema,
    count: usize,
}

impl Planner<'_> {
    fn attribute_kind(&self, method: &str, attribute: &str) -> Result<Option<ValueKind>> {
        if attribute.is_empty() {
            return Err(invalid(format!("{method}: needs an attribute")));
        }
        if attribute.starts_with('$') {
            return match attribute {
                "$sequence" => Ok(Some(ValueKind::Number)),
                "$createdAt" | "$updatedAt" => Ok(Some(ValueKind::Datetime)),
                a if SYSTEM_ATTRIBUTES.contains(&a) => Ok(Some(ValueKind::String)),
                _ => Err(invalid(format!(
                    "{method}: unknown system attribute {} (queryable: {})",
                    quote(attribute),
                    SYSTEM_ATTRIBUTES.join(", ")
                ))),
            };
        }
        match &self.schema.attributes {
            None => Ok(None),
            Some(attrs) => attrs.get(attribute).copied().map(Some).ok_or_else(|| {
                invalid(format!(
                    "{method}: attribute {} is not in the collection's schema",
                    quote(attribute)
                ))
            }),
        }
    }

    fn filter(&mut self, q: &Query, depth: usize) -> Result<Filter> {
        self.count += 1;
        if self.count > MAX_QUERIES {
            return Err(invalid(format!("more than {MAX_QUERIES} queries")));
        }
        if depth > MAX_QUERY_DEPTH {
            return Err(invalid(format!(
                "queries nested deeper than {MAX_QUERY_DEPTH} levels"
            )));
        }
        let name = q.method.as_str();
        match q.method {
            Method::And | Method::Or => {
                if q.nested.is_empty() {
                    return Err(invalid(format!("{name}: needs at least one nested query")));
                }
                if !q.attribute.is_empty() {
                    return Err(invalid(format!("{name}: takes no attribute")));
                }
                let inner = q
                    .nested
                    .iter()
                    .map(|n| self.filter(n, depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if q.method == Method::And {
                    Filter::And(inner)
                } else {
                    Filter::Or(inner)
                })
            }
            m if !m.is_filter() => Err(invalid(format!("{name}: not allowed inside and/or"))),
            _ => self.condition(q),
        }
    }

    fn condition(&self, q: &Query) -> Result<Filter> {
        let name = q.method.as_str();
        let declared = self.attribute_kind(name, &q.attribute)?;
        let n = q.values.len();
        let arity_ok = match q.method {
            Method::IsNull | Method::IsNotNull => n == 0,
            Method::Between | Method::NotBetween => n == 2,
            Method::Equal | Method::NotEqual | Method::Contains | Method::NotContains => {
                (1..=MAX_QUERY_VALUES).contains(&n)
            }
            _ => n == 1,
        };
        if !arity_ok {
            let wanted = match q.method {
                Method::IsNull | Method::IsNotNull => "no values",
                Method::Between | Method::NotBetween => "exactly 2 values",
                Method::Equal | Method::NotEqual | Method::Contains | Method::NotContains => {
                    "1 to 100 values"
                }
                _ => "exactly 1 value",
            };
            return Err(invalid(format!(
                "{name} on {}: takes {wanted}, got {n}",
                quote(&q.attribute)
            )));
        }
        let stringly = matches!(
            q.method,
            Method::StartsWith
                | Method::NotStartsWith
                | Method::EndsWith
                | Method::NotEndsWith
                | Method::Search
                | Method::NotSearch
        );
        if stringly && declared.is_some_and(|k| k != ValueKind::String) {
            return Err(invalid(format!(
                "{name} on {}: needs a string attribute (wrong type)",
                quote(&q.attribute)
            )));
        }
        let mut values = q.values.clone();
        for v in &mut values {
            let kind = kind_of(v).ok_or_else(|| {
                invalid(format!(
                    "{name} on {}: values must be strings, numbers or booleans, got {v}",
                    quote(&q.attribute)
                ))
            })?;
            let expected = if stringly {
                Some(ValueKind::String)
            } else {
                declared
            };
            // A datetime is compared in its stored form: UTC, milliseconds.
            if expected == Some(ValueKind::Datetime) && kind == ValueKind::String {
                let text = v.as_str().unwrap_or_default();
                let stored = crate::timefmt::normalize_datetime(text)
                    .map_err(|e| invalid(format!("{name} on {}: {e}", quote(&q.attribute))))?;
                *v = Value::String(stored);
                continue;
            }
            if expected.is_some_and(|e| e != kind) {
                return Err(invalid(format!(
                    "{name} on {}: value {v} has the wrong type for the attribute",
                    quote(&q.attribute)
                )));
            }
        }
        if matches!(q.method, Method::Search | Method::NotSearch)
            && !self.schema.fulltext.contains(&q.attribute)
        {
            return Err(invalid(format!(
                "{name} on {} needs a fulltext index on it",
                quote(&q.attribute)
            )));
        }
        Ok(Filter::Cond(Cond {
            method: q.method,
            attribute: q.attribute.clone(),
            values,
        }))
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<()> {
    if slot.is_some() {
        return Err(invalid(format!("{what} given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

fn number(q: &Query) -> Result<u64> {
    match q.values.as_slice() {
        [v] => v.as_u64().ok_or_else(|| {
            invalid(format!(
                "{}: value must be a whole number, got {v}",
                q.method.as_str()
            ))
        }),
        _ => Err(invalid(format!(
            "{}: takes exactly 1 value",
            q.method.as_str()
        ))),
    }
}

/// Validates `queries` against `schema` into a plan.
pub(crate) fn plan(queries: &[Query], schema: &QuerySchema) -> Result<QueryPlan> {
    if queries.len() > MAX_QUERIES {
        return Err(invalid(format!("more than {MAX_QUERIES} queries")));
    }
    let mut planner = Planner { schema, count: 0 };
    let mut filters = Vec::new();
    let mut orders = Vec::new();
    let (mut limit, mut offset, mut cursor, mut select) = (None, None, None, None);
    for q in queries {
        let name = q.method.as_str();
        match q.method {
            Method::Limit => {
                let n = number(q)?;
                if n > MAX_LIMIT {
                    return Err(invalid(format!("limit {n} is more than {MAX_LIMIT}")));
                }
                set_once(&mut limit, n, "limit")?;
            }
            Method::Offset => set_once(&mut offset, number(q)?, "offset")?,
            Method::CursorAfter | Method::CursorBefore => {
                let id = match q.values.as_slice() {
                    [Value::String(id)] => id.clone(),
                    _ => return Err(invalid(format!("{name}: takes one document id"))),
                };
                set_once(
                    &mut cursor,
                    Cursor {
                        id,
                        before: q.method == Method::CursorBefore,
                    },
                    "cursor",
                )?;
            }
            Method::OrderAsc | Method::OrderDesc => {
                planner.count += 1;
                planner.attribute_kind(name, &q.attribute)?;
                let dir = if q.method == Method::OrderAsc {
                    Direction::Forward
                } else {
                    Direction::Reverse
                };
                orders.push((q.attribute.clone(), dir));
            }
            Method::Select => {
                let mut names = Vec::with_capacity(q.values.len());
                for v in &q.values {
                    let a = v.as_str().ok_or_else(|| {
                        invalid(format!("select: attribute names must be strings, got {v}"))
                    })?;
                    if !a.starts_with('$') {
                        planner.attribute_kind(name, a)?;
                    }
                    names.push(a.to_owned());
                }
                set_once(&mut select, names, "select")?;
            }
            _ => filters.push(planner.filter(q, 1)?),
        }
    }
    Ok(QueryPlan {
        filter: (!filters.is_empty()).then_some(Filter::And(filters)),
        orders,
        limit: limit.unwrap_or(DEFAULT_LIMIT),
        offset: offset.unwrap_or(0),
        cursor,
        select,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = plan(&[], &QuerySchema::default()).unwrap();
        assert_eq!(
            (p.limit, p.offset, p.sequence_order()),
            (25, 0, Some(Direction::Forward))
        );
        assert!(p.cursor.is_none() && p.filter.is_none());
    }

    #[test]
    fn bad_queries_name_the_fault() {
        let schema = QuerySchema {
            attributes: Some(
                [
                    ("name".to_string(), ValueKind::String),
                    ("age".into(), ValueKind::Number),
                ]
                .into(),
            ),
            fulltext: std::collections::BTreeSet::new(),
        };
        let mut deep = Query::equal("name", ["x"]);
        for _ in 0..MAX_QUERY_DEPTH {
            deep = Query::and([deep]);
        }
        let cases: Vec<(Vec<Query>, &str)> = vec![
            (vec![Query::limit(5001)], "more than 5000"),
            (
                vec![Query::limit(1), Query::limit(2)],
                "limit given more than once",
            ),
            (
                vec![Query::offset(1), Query::offset(2)],
                "offset given more than once",
            ),
            (
                vec![Query::cursor_after("a"), Query::cursor_before("b")],
                "cursor given more than once",
            ),
            (
                vec![Query::equal("name", Vec::<Value>::new())],
                "1 to 100 values",
            ),
            (
                vec![Query::equal("name", vec![Value::Null])],
                "must be strings",
            ),
            (
                vec![Query::equal("name", (0..101).map(|i| i.to_string()))],
                "1 to 100 values",
            ),
            (vec![Query::equal("", ["x"])], "needs an attribute"),
            (
                vec![Query::equal("$secret", ["x"])],
                "unknown system attribute",
            ),
            (
                vec![Query::equal("nope", ["x"])],
                "not in the collection's schema",
            ),
            (vec![Query::less_than("age", "ten")], "wrong type"),
            (vec![Query::equal("name", [5])], "wrong type"),
            (vec![Query::starts_with("age", "1")], "wrong type"),
            (vec![Query::search("name", "x")], "needs a fulltext index"),
            (
                vec![Query::order_asc("nope")],
                "not in the collection's schema",
            ),
            (
                vec![Query::select(["nope"])],
                "not in the collection's schema",
            ),
            (vec![Query::and([])], "at least one nested"),
            (vec![Query::and([Query::limit(1)])], "not allowed inside"),
            (vec![deep], "nested deeper than 5"),
            (
                (0..101).map(|_| Query::is_null("name")).collect(),
                "more than 100",
            ),
        ];
        for (queries, fault) in cases {
            match plan(&queries, &schema) {
                Err(Error::InvalidQuery(msg)) => {
                    assert!(msg.contains(fault), "{msg:?} lacks {fault:?}")
                }
                other => panic!("{queries:?} gave {other:?}"),
            }
        }
    }
}
