//! Appwrite's JSON wire form of a query, both ways:
//! `{"method":"equal","attribute":"name","values":["Kevin"]}`; `and` / `or` carry their
//! nested queries as `values`. Parsing is strict (unknown methods and fields are errors)
//! and bounded (nesting deeper than `MAX_QUERY_DEPTH`, more than `MAX_QUERY_VALUES` values).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{MAX_QUERY_DEPTH, MAX_QUERY_VALUES, Method, Query};
use crate::error::{Error, Result};
use crate::id::quote;

fn invalid(msg: String) -> Error {
    Error::InvalidQuery(msg)
}

impl Query {
    /// Parses one query from its JSON wire form.
    pub fn from_json(text: &str) -> Result<Query> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        Query::from_value(&value, 1)
    }

    /// The JSON wire form, fields in Appwrite's order: method, attribute, values.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_value(value: &Value, depth: usize) -> Result<Query> {
        if depth > MAX_QUERY_DEPTH {
            return Err(invalid(format!(
                "queries nested deeper than {MAX_QUERY_DEPTH} levels"
            )));
        }
        let Value::Object(map) = value else {
            return Err(invalid(format!(
                "a query must be a JSON object, got {value}"
            )));
        };
        if let Some(field) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "method" | "attribute" | "values"))
        {
            return Err(invalid(format!(
                "unknown field {} in a query",
                quote(field)
            )));
        }
        let name = match map.get("method") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(invalid("\"method\" must be a string".into())),
            None => return Err(invalid("a query needs a \"method\"".into())),
        };
        let method = Method::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| invalid(format!("unknown method {}", quote(name))))?;
        let attribute = match map.get("attribute") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid(format!("{name}: \"attribute\" must be a string"))),
        };
        let values = match map.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(v)) => v.clone(),
            Some(_) => return Err(invalid(format!("{name}: \"values\" must be an array"))),
        };
        if values.len() > MAX_QUERY_VALUES {
            return Err(invalid(format!(
                "{name}: {} values, at most {MAX_QUERY_VALUES}",
                values.len()
            )));
        }
        let mut query = Query {
            method,
            attribute,
            values: Vec::new(),
            nested: Vec::new(),
        };
        match method {
            Method::And | Method::Or => {
                query.nested = values
                    .iter()
                    .map(|v| Query::from_value(v, depth + 1))
                    .collect::<Result<_>>()?;
            }
            _ => query.values = values,
        }
        Ok(query)
    }
}

impl Serialize for Query {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let nested = matches!(self.method, Method::And | Method::Or);
        let has_values = if nested {
            !self.nested.is_empty()
        } else {
            !self.values.is_empty()
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("method", self.method.as_str())?;
        if !self.attribute.is_empty() {
            map.serialize_entry("attribute", &self.attribute)?;
        }
        if has_values {
            if nested {
                map.serialize_entry("values", &self.nested)?;
            } else {
                map.serialize_entry("values", &self.values)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Query::from_value(&value, 1).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_constructor_round_trips() {
        let all = vec![
            Query::equal("name", ["Kevin", "Laura"]),
            Query::not_equal("name", "Bob"),
            Query::less_than("age", 30),
            Query::less_than_equal("age", 30.5),
            Query::greater_than("birthday", "2000-01-01"),
            Query::greater_than_equal("score", -1),
            Query::between("age", 18, 65),
            Query::not_between("age", 18, 65),
            Query::starts_with("name", "Ke"),
            Query::not_starts_with("name", "Ke"),
            Query::ends_with("name", "in"),
            Query::not_ends_with("name", "in"),
            Query::contains("tags", ["a", "b"]),
            Query::not_contains("tags", ["a"]),
            Query::search("bio", "rust database"),
            Query::not_search("bio", "php"),
            Query::is_null("x"),
            Query::is_not_null("x"),
            Query::and([
                Query::equal("a", [1]),
                Query::or([Query::is_null("b"), Query::greater_than("c", 2)]),
            ]),
            Query::or([Query::equal("a", [true])]),
            Query::select(["name", "birthday"]),
            Query::order_asc("name"),
            Query::order_desc("$sequence"),
            Query::limit(25),
            Query::offset(50),
            Query::cursor_after("doc1"),
            Query::cursor_before("doc3"),
        ];
        let methods: std::collections::HashSet<Method> = all.iter().map(|q| q.method).collect();
        assert_eq!(methods.len(), Method::ALL.len(), "a constructor per method");
        for q in all {
            let text = q.to_json();
            assert_eq!(Query::from_json(&text).unwrap(), q, "{text}");
            let via_serde: Query =
                serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
            assert_eq!(via_serde, q);
        }
    }

    #[test]
    fn appwrite_documentation_examples_parse() {
        let examples = [
            (
                r#"{"method":"equal","attribute":"name","values":["Kevin"]}"#,
                Query::equal("name", ["Kevin"]),
            ),
            (r#"{"method":"limit","values":[25]}"#, Query::limit(25)),
            (
                r#"{"method":"orderAsc","attribute":"name"}"#,
                Query::order_asc("name"),
            ),
            (
                r#"{"method":"orderDesc","attribute":"$createdAt","values":[]}"#,
                Query::order_desc("$createdAt"),
            ),
            (
                r#"{"method":"cursorAfter","values":["62a7...f620"]}"#,
                Query::cursor_after("62a7...f620"),
            ),
            (
                r#"{"method":"select","values":["name","birthday"]}"#,
                Query::select(["name", "birthday"]),
            ),
            (
                r#"{"method":"between","attribute":"price","values":[5,10]}"#,
                Query::between("price", 5, 10),
            ),
            (
                r#"{"method":"search","attribute":"text","values":["keyword1 keyword2"]}"#,
                Query::search("text", "keyword1 keyword2"),
            ),
            (
                r#"{"method":"isNull","attribute":"name"}"#,
                Query::is_null("name"),
            ),
            (
                r#"{"method":"or","values":[{"method":"equal","attribute":"name","values":["Kevin"]},{"method":"lessThan","attribute":"age","values":[20]}]}"#,
                Query::or([Query::equal("name", ["Kevin"]), Query::less_than("age", 20)]),
            ),
        ];
        for (text, want) in examples {
            assert_eq!(Query::from_json(text).unwrap(), want, "{text}");
        }
        assert_eq!(
            Query::limit(25).to_json(),
            r#"{"method":"limit","values":[25]}"#
        );
        assert_eq!(
            Query::order_asc("name").to_json(),
            r#"{"method":"orderAsc","attribute":"name"}"#
        );
    }

    #[test]
    fn malformed_wire_forms_name_the_fault() {
        let mut deep = json!({"method": "equal", "attribute": "a", "values": [1]});
        for _ in 0..MAX_QUERY_DEPTH {
            deep = json!({"method": "and", "values": [deep]});
        }
        let cases = [
            ("nope".to_string(), "not JSON"),
            ("[1]".into(), "must be a JSON object"),
            ("{}".into(), "needs a \"method\""),
            (r#"{"method":1}"#.into(), "must be a string"),
            (
                r#"{"method":"equals","attribute":"a","values":[1]}"#.into(),
                "unknown method \"equals\"",
            ),
            (
                r#"{"method":"equal","attribute":"a","values":[1],"x":1}"#.into(),
                "unknown field \"x\"",
            ),
            (
                r#"{"method":"equal","attribute":5}"#.into(),
                "\"attribute\" must be a string",
            ),
            (
                r#"{"method":"equal","attribute":"a","values":"x"}"#.into(),
                "\"values\" must be an array",
            ),
            (
                format!(
                    r#"{{"method":"equal","attribute":"a","values":{}}}"#,
                    json!((0..101).collect::<Vec<_>>())
                ),
                "at most 100",
            ),
            (
                r#"{"method":"and","values":[5]}"#.into(),
                "must be a JSON object",
            ),
            (deep.to_string(), "nested deeper than 5"),
        ];
        for (text, fault) in cases {
            match Query::from_json(&text) {
                Err(Error::InvalidQuery(m)) => {
                    assert!(m.contains(fault), "{text}: {m:?} lacks {fault:?}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
