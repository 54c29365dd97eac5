//! Document values in their stored form: a JSON tree flattened into a pre-order
//! list of nodes, so that reading stored bytes never recurses (no stack overflow on crafted input).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// One node of a flattened value. `Array(n)` is followed by its `n` items,
/// `Object(n)` by `n` pairs of a `Str` key and a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Array(u32),
    Object(u32),
}

/// Flattens `value`, refusing nesting deeper than `max_depth` containers.
pub(crate) fn flatten(value: &Value, max_depth: usize, out: &mut Vec<Node>) -> Result<(), String> {
    flatten_at(value, 0, max_depth, out)
}

/// Whether `value` nests containers deeper than `max_depth`, as [`flatten`] would refuse
/// it (without building anything).
pub(crate) fn too_deep(value: &Value, max_depth: usize) -> bool {
    fn at(value: &Value, depth: usize, max_depth: usize) -> bool {
        match value {
            Value::Array(items) => {
                depth >= max_depth || items.iter().any(|v| at(v, depth + 1, max_depth))
            }
            Value::Object(map) => {
                depth >= max_depth || map.values().any(|v| at(v, depth + 1, max_depth))
            }
            _ => false,
        }
    }
    at(value, 0, max_depth)
}

fn flatten_at(
    value: &Value,
    depth: usize,
    max_depth: usize,
    out: &mut Vec<Node>,
) -> Result<(), String> {
    let nested = matches!(value, Value::Array(_) | Value::Object(_));
    if nested && depth >= max_depth {
        return Err(format!("nested deeper than {max_depth} levels"));
    }
    match value {
        Value::Null => out.push(Node::Null),
        Value::Bool(b) => out.push(Node::Bool(*b)),
        Value::Number(n) => out.push(number_node(n)),
        Value::String(s) => out.push(Node::Str(s.clone())),
        Value::Array(items) => {
            out.push(Node::Array(count(items.len())?));
            for item in items {
                flatten_at(item, depth + 1, max_depth, out)?;
            }
        }
        Value::Object(map) => {
            out.push(Node::Object(count(map.len())?));
            for (k, v) in map {
                out.push(Node::Str(k.clone()));
                flatten_at(v, depth + 1, max_depth, out)?;
            }
        }
    }
    Ok(())
}

fn count(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| "too many items".to_string())
}

fn number_node(n: &Number) -> Node {
    if let Some(i) = n.as_i64() {
        Node::Int(i)
    } else if let Some(u) = n.as_u64() {
        Node::UInt(u)
    } else {
        Node::Float(n.as_f64().unwrap_or(0.0))
    }
}

enum Frame {
    Array {
        left: u32,
        items: Vec<Value>,
    },
    Object {
        left: u32,
        map: Map<String, Value>,
        key: Option<String>,
    },
}

/// Rebuilds a value from nodes without recursion. Every fault of the node list
/// (counts that overrun, keys that are not strings, duplicate keys, non-finite
/// floats, nodes left over, nesting past `max_depth`) is an error naming it.
pub(crate) fn rebuild(nodes: Vec<Node>, max_depth: usize) -> Result<Value, String> {
    let total = nodes.len();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    for (pos, node) in nodes.into_iter().enumerate() {
        if root.is_some() {
            return Err(format!("{} nodes left over after the value", total - pos));
        }
        if let Some(Frame::Object {
            key: key @ None, ..
        }) = stack.last_mut()
        {
            match node {
                Node::Str(k) => *key = Some(k),
                _ => return Err(format!("node {pos}: object key is not a string")),
            }
            continue;
        }
        let mut value = match node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Int(i) => Value::from(i),
            Node::UInt(u) => Value::from(u),
            Node::Float(f) => Value::Number(
                Number::from_f64(f).ok_or_else(|| format!("node {pos}: non-finite number"))?,
            ),
            Node::Str(s) => Value::String(s),
            Node::Array(n) | Node::Object(n) => {
                let is_array = matches!(node, Node::Array(_));
                if stack.len() >= max_depth {
                    return Err(format!("node {pos}: nested deeper than {max_depth} levels"));
                }
                if n as usize > total - pos - 1 {
                    return Err(format!("node {pos}: claims {n} items, more than remain"));
                }
                match (n, is_array) {
                    (0, true) => Value::Array(Vec::new()),
                    (0, false) => Value::Object(Map::new()),
                    (_, true) => {
                        stack.push(Frame::Array {
                            left: n,
                            items: Vec::new(),
                        });
                        continue;
                    }
                    (_, false) => {
                        stack.push(Frame::Object {
                            left: n,
                            map: Map::new(),
                            key: None,
                        });
                        continue;
                    }
                }
            }
        };
        // Attach the finished value to its parent, closing every parent it completes.
        loop {
            let Some(frame) = stack.last_mut() else {
                root = Some(value);
                break;
            };
            let done = match frame {
                Frame::Array { left, items } => {
                    items.push(value);
                    *left -= 1;
                    *left == 0
                }
                Frame::Object { left, map, key } => {
                    let k = key.take().unwrap_or_default();
                    if map.insert(k, value).is_some() {
                        return Err(format!("node {pos}: duplicate object key"));
                    }
                    *left -= 1;
                    *left == 0
                }
            };
            if !done {
                break;
            }
            value = match stack.pop() {
                Some(Frame::Array { items, .. }) => Value::Array(items),
                Some(Frame::Object { map, .. }) => Value::Object(map),
                None => break,
            };
        }
    }
    root.ok_or_else(|| "value ends early".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round(v: &Value) -> Value {
        let mut nodes = Vec::new();
        flatten(v, 32, &mut nodes).unwrap();
        rebuild(nodes, 32).unwrap()
    }

    #[test]
    fn values_round_trip() {
        for v in [
            json!(null),
            json!({}),
            json!({"a": [1, -2, 3.5, "x", true, null, [], {}], "b": {"c": {"d": [u64::MAX]}}}),
            json!([[[[1]]], {"k": []}]),
        ] {
            assert_eq!(round(&v), v);
        }
    }

    #[test]
    fn depth_limit_applies_both_ways() {
        let mut v = json!(1);
        for _ in 0..5 {
            v = json!([v]);
        }
        let mut nodes = Vec::new();
        assert!(flatten(&v, 4, &mut nodes).is_err());
        nodes.clear();
        flatten(&v, 5, &mut nodes).unwrap();
        assert!(rebuild(nodes.clone(), 4).is_err());
        assert_eq!(rebuild(nodes, 5).unwrap(), v);
    }

    #[test]
    fn malformed_node_lists_are_errors() {
        use Node::*;
        let bad: Vec<Vec<Node>> = vec![
            vec![],
            vec![Array(2), Null],
            vec![Object(1), Int(1), Null],
            vec![Object(2), Str("a".into()), Null, Str("a".into()), Null],
            vec![Null, Null],
            vec![Float(f64::NAN)],
            vec![Array(u32::MAX)],
            vec![Object(1), Str("a".into())],
        ];
        for nodes in bad {
            assert!(rebuild(nodes.clone(), 32).is_err(), "{nodes:?}");
        }
        // Deep nesting in stored bytes is refused, not recursed into.
        let deep: Vec<Node> = (0..100_000).map(|_| Array(1)).chain([Null]).collect();
        assert!(rebuild(deep, 32).is_err());
    }
}
