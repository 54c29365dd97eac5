//! What a filter matches and how documents order: the semantics of every method,
//! decided here once. A missing attribute and `null` are the same; the `not` forms
//! match only documents where the attribute is present and not null (as in SQL).

use std::cmp::Ordering;

use serde_json::Value;

use super::Method;
use crate::document::Document;
use crate::store::Direction;

/// A validated filter tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Cond(Cond),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

/// One condition on one attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cond {
    pub(crate) method: Method,
    pub(crate) attribute: String,
    pub(crate) values: Vec<Value>,
}

/// The value of `attribute` in `doc`, system attributes included; `None` when missing.
pub(crate) fn field(doc: &Document, attribute: &str) -> Option<Value> {
    let v = match attribute {
        "$id" => Value::from(doc.id()),
        "$sequence" => Value::from(doc.sequence()),
        "$createdAt" => Value::from(crate::timefmt::format(doc.created_at())),
        "$updatedAt" => Value::from(crate::timefmt::format(doc.updated_at())),
        _ => doc.get(attribute)?.clone(),
    };
    (!v.is_null()).then_some(v)
}

/// Compares two scalars of the same kind: numbers by value (1 == 1.0), strings by
/// bytes, booleans false < true. Other pairs are not comparable.
pub(crate) fn scalar_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                Some(i.cmp(&j))
            } else if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
                Some(i.cmp(&j))
            } else {
                x.as_f64()?.partial_cmp(&y.as_f64()?)
            }
        }
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    scalar_cmp(a, b) == Some(Ordering::Equal)
}

pub(crate) use crate::text::words;

fn contains(field: &Value, values: &[Value]) -> bool {
    match field {
        Value::Array(items) => items.iter().any(|i| values.iter().any(|v| eq(i, v))),
        Value::String(s) => values
            .iter()
            .any(|v| v.as_str().is_some_and(|v| s.contains(v))),
        _ => false,
    }
}

fn search(field: &Value, values: &[Value]) -> bool {
    let (Some(text), Some(Value::String(query))) = (field.as_str(), values.first()) else {
        return false;
    };
    let wanted: Vec<String> = words(query).collect();
    words(text).any(|w| wanted.contains(&w))
}

fn string_test(field: &Value, values: &[Value], test: fn(&str, &str) -> bool) -> bool {
    match (field.as_str(), values.first().and_then(Value::as_str)) {
        (Some(f), Some(v)) => test(f, v),
        _ => false,
    }
}

fn compare_with(field: &Value, values: &[Value], ok: fn(Ordering) -> bool) -> bool {
    values
        .first()
        .and_then(|v| scalar_cmp(field, v))
        .is_some_and(ok)
}

fn between(field: &Value, values: &[Value]) -> bool {
    match values {
        [lo, hi] => {
            scalar_cmp(field, lo).is_some_and(|o| o != Ordering::Less)
                && scalar_cmp(field, hi).is_some_and(|o| o != Ordering::Greater)
        }
        _ => false,
    }
}

/// The positive form of a negated method, if it is one.
fn positive(method: Method) -> Option<Method> {
    Some(match method {
        Method::NotEqual => Method::Equal,
        Method::NotBetween => Method::Between,
        Method::NotStartsWith => Method::StartsWith,
        Method::NotEndsWith => Method::EndsWith,
        Method::NotContains => Method::Contains,
        Method::NotSearch => Method::Search,
        _ => return None,
    })
}

impl Cond {
    fn test(method: Method, field: &Value, values: &[Value]) -> bool {
        match method {
            Method::Equal => values.iter().any(|v| eq(field, v)),
            Method::LessThan => compare_with(field, values, |o| o == Ordering::Less),
            Method::LessThanEqual => compare_with(field, values, |o| o != Ordering::Greater),
            Method::GreaterThan => compare_with(field, values, |o| o == Ordering::Greater),
            Method::GreaterThanEqual => compare_with(field, values, |o| o != Ordering::Less),
            Method::Between => between(field, values),
            Method::StartsWith => string_test(field, values, |f, v| f.starts_with(v)),
            Method::EndsWith => string_test(field, values, |f, v| f.ends_with(v)),
            Method::Contains => contains(field, values),
            Method::Search => search(field, values),
            Method::IsNotNull => true,
            _ => false,
        }
    }

    pub(crate) fn matches(&self, doc: &Document) -> bool {
        let value = field(doc, &self.attribute);
        match (self.method, value) {
            (Method::IsNull, v) => v.is_none(),
            (_, None) => false,
            (method, Some(v)) => match positive(method) {
                Some(p) => !Cond::test(p, &v, &self.values),
                None => Cond::test(method, &v, &self.values),
            },
        }
    }
}

impl Filter {
    pub(crate) fn matches(&self, doc: &Document) -> bool {
        match self {
            Filter::Cond(c) => c.matches(doc),
            Filter::And(all) => all.iter().all(|f| f.matches(doc)),
            Filter::Or(any) => any.iter().any(|f| f.matches(doc)),
        }
    }
}

fn rank(v: &Option<Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Object(_)) => 5,
    }
}

/// A total order for sorting: missing/null < booleans < numbers < strings < arrays < objects;
/// within a kind, [`scalar_cmp`]; arrays and objects tie.
pub(crate) fn sort_cmp(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Some(x), Some(y)) => scalar_cmp(x, y).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    })
}

/// The order of two sort keys (the values of `orders`' attributes, and the `$sequence`):
/// by each order in turn, ties by `$sequence` in the direction of the last order (as an
/// index walk yields them), ascending without orders.
pub(crate) fn order_cmp(
    orders: &[(String, Direction)],
    a: &(Vec<Option<Value>>, u64),
    b: &(Vec<Option<Value>>, u64),
) -> Ordering {
    for ((x, y), (_, dir)) in a.0.iter().zip(&b.0).zip(orders) {
        let o = sort_cmp(x, y);
        let o = if *dir == Direction::Reverse {
            o.reverse()
        } else {
            o
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    match orders.last() {
        Some((_, Direction::Reverse)) => b.1.cmp(&a.1),
        _ => a.1.cmp(&b.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_kinds_do_not_mix() {
        assert_eq!(scalar_cmp(&json!(1), &json!(1.0)), Some(Ordering::Equal));
        assert_eq!(
            scalar_cmp(&json!(u64::MAX), &json!(u64::MAX)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            scalar_cmp(&json!(-1), &json!(u64::MAX)),
            Some(Ordering::Less)
        );
        assert_eq!(scalar_cmp(&json!("1"), &json!(1)), None);
        assert_eq!(sort_cmp(&None, &Some(json!(false))), Ordering::Less);
        assert_eq!(sort_cmp(&Some(json!(9)), &Some(json!("a"))), Ordering::Less);
    }

    #[test]
    fn words_are_lowercase_alphanumeric_runs() {
        let w: Vec<String> = words("Hello, World! rust-db 2024").collect();
        assert_eq!(w, ["hello", "world", "rust", "db", "2024"]);
    }
}
