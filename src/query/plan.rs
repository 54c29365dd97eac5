//! Validates a query list into a `QueryPlan`: filters, direction, page, cursor.
//! Every fault is `InvalidQuery` naming the query and what is wrong with it.

use std::cmp::Ordering;

use serde_json::Value;

use super::{DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERIES, MAX_QUERY_VALUES, Query, QueryKind};
use crate::document::Document;
use crate::error::{Error, Result};
use crate::id::quote;
use crate::store::Direction;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Equal(String, Vec<Value>),
    NotEqual(String, Value),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub(crate) id: String,
    pub(crate) before: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryPlan {
    pub(crate) filters: Vec<Filter>,
    pub(crate) order: Direction,
    pub(crate) limit: u64,
    pub(crate) offset: u64,
    pub(crate) cursor: Option<Cursor>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidQuery(msg)
}

fn check_attribute(method: &str, attribute: &str) -> Result<()> {
    const SYSTEM: [&str; 4] = ["$id", "$sequence", "$createdAt", "$updatedAt"];
    if attribute.is_empty() {
        return Err(invalid(format!("{method}: empty attribute name")));
    }
    if attribute.starts_with('$') && !SYSTEM.contains(&attribute) {
        return Err(invalid(format!(
            "{method}: unknown system attribute {} (filterable: $id, $sequence, $createdAt, $updatedAt)",
            quote(attribute)
        )));
    }
    Ok(())
}

fn check_value(method: &str, attribute: &str, v: &Value) -> Result<()> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        _ => Err(invalid(format!(
            "{method} on {}: values must be strings, numbers or booleans, got {v}",
            quote(attribute)
        ))),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<()> {
    if slot.is_some() {
        return Err(invalid(format!("{what} given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

/// Validates `queries` into a plan.
pub(crate) fn plan(queries: &[Query]) -> Result<QueryPlan> {
    if queries.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "{} queries, at most {MAX_QUERIES}",
            queries.len()
        )));
    }
    let mut filters = Vec::new();
    let (mut limit, mut offset, mut cursor, mut order) = (None, None, None, None);
    for Query(q) in queries {
        match q {
            QueryKind::Equal(attribute, values) => {
                check_attribute("equal", attribute)?;
                if values.is_empty() {
                    return Err(invalid(format!("equal on {}: no values", quote(attribute))));
                }
                if values.len() > MAX_QUERY_VALUES {
                    return Err(invalid(format!(
                        "equal on {}: {} values, at most {MAX_QUERY_VALUES}",
                        quote(attribute),
                        values.len()
                    )));
                }
                values
                    .iter()
                    .try_for_each(|v| check_value("equal", attribute, v))?;
                filters.push(Filter::Equal(attribute.clone(), values.clone()));
            }
            QueryKind::NotEqual(attribute, value) => {
                check_attribute("notEqual", attribute)?;
                check_value("notEqual", attribute, value)?;
                filters.push(Filter::NotEqual(attribute.clone(), value.clone()));
            }
            QueryKind::Limit(n) => {
                if *n > MAX_LIMIT {
                    return Err(invalid(format!("limit {n} is more than {MAX_LIMIT}")));
                }
                set_once(&mut limit, *n, "limit")?;
            }
            QueryKind::Offset(n) => set_once(&mut offset, *n, "offset")?,
            QueryKind::CursorAfter(id) | QueryKind::CursorBefore(id) => {
                let before = matches!(q, QueryKind::CursorBefore(_));
                set_once(
                    &mut cursor,
                    Cursor {
                        id: id.clone(),
                        before,
                    },
                    "cursor",
                )?;
            }
            QueryKind::OrderAsc(attribute) | QueryKind::OrderDesc(attribute) => {
                if attribute != "$sequence" {
                    return Err(invalid(format!(
                        "ordering by {} is not supported yet: only $sequence",
                        quote(attribute)
                    )));
                }
                let dir = if matches!(q, QueryKind::OrderAsc(_)) {
                    Direction::Forward
                } else {
                    Direction::Reverse
                };
                set_once(&mut order, dir, "order")?;
            }
        }
    }
    Ok(QueryPlan {
        filters,
        order: order.unwrap_or(Direction::Forward),
        limit: limit.unwrap_or(DEFAULT_LIMIT),
        offset: offset.unwrap_or(0),
        cursor,
    })
}

/// Compares two scalars; numbers compare by value whatever their JSON form (1 == 1.0).
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(i), Some(j), _, _) => i == j,
                (_, _, Some(i), Some(j)) => i == j,
                _ => x
                    .as_f64()
                    .zip(y.as_f64())
                    .is_some_and(|(p, q)| p.partial_cmp(&q) == Some(Ordering::Equal)),
            }
        }
        _ => a == b,
    }
}

/// The value of `attribute` in `doc`, system attributes included.
fn field(doc: &Document, attribute: &str) -> Option<Value> {
    match attribute {
        "$id" => Some(Value::from(doc.id())),
        "$sequence" => Some(Value::from(doc.sequence())),
        "$createdAt" => Some(Value::from(crate::timefmt::format(doc.created_at()))),
        "$updatedAt" => Some(Value::from(crate::timefmt::format(doc.updated_at()))),
        _ => doc.get(attribute).cloned(),
    }
}

impl Filter {
    /// Whether `doc` passes. A missing or null attribute matches neither `equal` nor `not_equal`.
    pub(crate) fn matches(&self, doc: &Document) -> bool {
        match self {
            Filter::Equal(attribute, values) => {
                field(doc, attribute).is_some_and(|v| values.iter().any(|w| scalar_eq(&v, w)))
            }
            Filter::NotEqual(attribute, value) => {
                field(doc, attribute).is_some_and(|v| !v.is_null() && !scalar_eq(&v, value))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = plan(&[]).unwrap();
        assert_eq!((p.limit, p.offset, p.order), (25, 0, Direction::Forward));
        assert!(p.cursor.is_none());
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(scalar_eq(&Value::from(1), &Value::from(1.0)));
        assert!(!scalar_eq(&Value::from(1), &Value::from("1")));
        assert!(scalar_eq(&Value::from(u64::MAX), &Value::from(u64::MAX)));
    }

    #[test]
    fn bad_queries_name_the_fault() {
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
            (vec![Query::order_asc("name")], "not supported yet"),
            (vec![Query::equal("name", Vec::<Value>::new())], "no values"),
            (
                vec![Query::equal("name", vec![Value::Null])],
                "must be strings",
            ),
            (
                vec![Query::equal("name", vec![serde_json::json!([1])])],
                "must be strings",
            ),
            (
                vec![Query::equal("name", (0..101).map(Value::from))],
                "at most 100",
            ),
            (vec![Query::equal("", ["x"])], "empty attribute"),
            (
                vec![Query::equal("$secret", ["x"])],
                "unknown system attribute",
            ),
            (vec![Query::not_equal("a", Value::Null)], "must be strings"),
            ((0..101).map(|_| Query::offset(0)).collect(), "at most 100"),
        ];
        for (queries, fault) in cases {
            match plan(&queries) {
                Err(Error::InvalidQuery(msg)) => {
                    assert!(msg.contains(fault), "{msg:?} lacks {fault:?}")
                }
                other => panic!("{queries:?} gave {other:?}"),
            }
        }
    }
}
