//! The wire form of a transaction operation: Appwrite's operation objects
//! (`{action, databaseId, tableId, rowId, data}`), read into writes a `Transaction` stages.

use serde_json::{Map, Value};

use super::Transaction;
use crate::error::{Error, Result};
use crate::perm::Permission;
use crate::query::Query;

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// Permission strings, parsed.
pub fn parse_permissions(list: Option<Vec<String>>) -> Result<Option<Vec<Permission>>> {
    list.map(|l| l.iter().map(|p| p.parse::<Permission>()).collect())
        .transpose()
}

/// A document of a bulk body: `$id` (`unique()` when missing), optional `$permissions`,
/// and its fields; no other `$` key.
pub fn split_bulk_document(mut doc: Map<String, Value>) -> Result<BulkDocument> {
    let id = match doc.remove("$id") {
        None => crate::UNIQUE_ID.to_owned(),
        Some(Value::String(id)) => id,
        Some(other) => return Err(invalid(format!("$id must be a string, not {other}"))),
    };
    let permissions = match doc.remove("$permissions") {
        None | Some(Value::Null) => None,
        Some(list) => parse_permissions(Some(
            serde_json::from_value::<Vec<String>>(list)
                .map_err(|_| invalid("$permissions must be a list of strings"))?,
        ))?,
    };
    if let Some(system) = doc.keys().find(|k| k.starts_with('$')) {
        return Err(invalid(format!(
            "{system} cannot be set: a document sets only $id and $permissions"
        )));
    }
    Ok((id, doc, permissions))
}

/// A number of an increment as an `f64`, refused when it is an integer the `f64` would
/// round (past 2^53): the step or bound applied must be the one sent.
pub fn exact_number(n: &serde_json::Number, what: &str) -> Result<f64> {
    const EXACT: u64 = 1 << 53;
    let exact = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => i.unsigned_abs() <= EXACT,
        (None, Some(u)) => u <= EXACT,
        (None, None) => true,
    };
    match n.as_f64() {
        Some(f) if exact && f.is_finite() => Ok(f),
        _ => Err(invalid(format!(
            "{what} must be a number within ±2^53 (9007199254740992), so that it applies exactly"
        ))),
    }
}

/// One operation, checked for shape when read; everything else is checked when the
/// transaction it is staged into commits.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Create a document: target, id (or `unique()`), fields, permissions.
    Create(Target, String, Map<String, Value>, Option<Vec<Permission>>),
    /// Create or replace a document: target, id, fields, permissions.
    Upsert(Target, String, Map<String, Value>, Option<Vec<Permission>>),
    /// Update fields of a document: target, id, fields, permissions.
    Update(Target, String, Map<String, Value>, Option<Vec<Permission>>),
    /// Add `by` to a numeric field, refused past `limit`.
    Increment {
        /// Where the document is.
        target: Target,
        /// The document's id.
        id: String,
        /// The numeric field.
        attribute: String,
        /// What to add (negative to decrement).
        by: f64,
        /// The bound the result may not pass.
        limit: Option<f64>,
    },
    /// Delete a document: target, id.
    Delete(Target, String),
    /// Create several documents.
    BulkCreate(Target, Vec<BulkDocument>),
    /// Create or replace several documents.
    BulkUpsert(Target, Vec<BulkDocument>),
    /// Update the given fields of every document the queries match.
    UpdateWhere(Target, Vec<Query>, Map<String, Value>),
    /// Delete every document the queries match.
    DeleteWhere(Target, Vec<Query>),
}

/// A document of a bulk operation: id, fields, permissions.
pub type BulkDocument = (String, Map<String, Value>, Option<Vec<Permission>>);

/// The database (schema) and collection (table) an operation writes to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The database (schema) id.
    pub schema: String,
    /// The collection (table) id.
    pub collection: String,
}

/// What one parsed JSON value costs beyond its text: the `Value` itself and its slot in
/// a map (key, hash bucket) or vector, rounded up.
const NODE_BYTES: usize = 80;

/// The memory `value` holds, estimated from above (see [`NODE_BYTES`]).
fn memory(value: &Value) -> usize {
    NODE_BYTES
        + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(memory).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + memory(v)).sum(),
            _ => 0,
        }
}

impl Operation {
    /// The memory this operation holds, estimated from above: every JSON value as a
    /// parsed node (`Value`, its map entry or vector slot) plus its text. Counting JSON
    /// bytes instead let 1 MB of `[0,0,...]` hold some 16 MB (red-team round 2).
    pub fn size(&self) -> usize {
        let json = |m: &Map<String, Value>| {
            m.iter()
                .map(|(k, v)| NODE_BYTES + k.len() + memory(v))
                .sum::<usize>()
        };
        let docs =
            |d: &[BulkDocument]| d.iter().map(|(id, m, _)| id.len() + json(m)).sum::<usize>();
        let target = self.target();
        64 + target.schema.len()
            + target.collection.len()
            + match self {
                Operation::Create(_, id, m, _)
                | Operation::Upsert(_, id, m, _)
                | Operation::Update(_, id, m, _) => id.len() + json(m),
                Operation::Increment { id, attribute, .. } => id.len() + attribute.len(),
                Operation::Delete(_, id) => id.len(),
                Operation::BulkCreate(_, d) | Operation::BulkUpsert(_, d) => docs(d),
                Operation::UpdateWhere(_, q, m) => {
                    json(m) + q.iter().map(|q| q.to_json().len()).sum::<usize>()
                }
                Operation::DeleteWhere(_, q) => q.iter().map(|q| q.to_json().len()).sum(),
            }
    }

    /// Whether this operation writes many documents (bulk and query-wide operations).
    pub fn is_bulk(&self) -> bool {
        matches!(
            self,
            Operation::BulkCreate(..)
                | Operation::BulkUpsert(..)
                | Operation::UpdateWhere(..)
                | Operation::DeleteWhere(..)
        )
    }

    fn target(&self) -> &Target {
        match self {
            Operation::Create(t, ..)
            | Operation::Upsert(t, ..)
            | Operation::Update(t, ..)
            | Operation::Delete(t, _)
            | Operation::BulkCreate(t, _)
            | Operation::BulkUpsert(t, _)
            | Operation::UpdateWhere(t, ..)
            | Operation::DeleteWhere(t, _)
            | Operation::Increment { target: t, .. } => t,
        }
    }

    /// Stages this operation into a library transaction.
    pub fn stage(&self, tx: &mut Transaction) -> crate::Result<()> {
        let t = self.target();
        let mut c = tx.collection(&t.schema, &t.collection);
        match self {
            Operation::Create(_, id, data, p) => c.create(id, data, p.clone())?,
            Operation::Upsert(_, id, data, p) => c.upsert(id, data, p.clone())?,
            Operation::Update(_, id, data, p) => c.update(id, data, p.clone())?,
            Operation::Increment {
                id,
                attribute,
                by,
                limit,
                ..
            } => c.increment(id, attribute, *by, *limit)?,
            Operation::Delete(_, id) => c.delete(id)?,
            Operation::BulkCreate(_, docs) => {
                for (id, data, p) in docs {
                    c.create(id, data, p.clone())?;
                }
                &mut c
            }
            Operation::BulkUpsert(_, docs) => {
                for (id, data, p) in docs {
                    c.upsert(id, data, p.clone())?;
                }
                &mut c
            }
            Operation::UpdateWhere(_, queries, data) => c.update_where(queries, data)?,
            Operation::DeleteWhere(_, queries) => c.delete_where(queries)?,
        };
        Ok(())
    }
}

/// Takes `key`, or its other API's spelling, as a string.
fn text(op: &mut Map<String, Value>, keys: &[&str]) -> Result<Option<String>> {
    let mut found = None;
    for key in keys {
        match op.remove(*key) {
            None => {}
            Some(Value::String(s)) if found.is_none() => found = Some(s),
            Some(Value::String(_)) => {
                return Err(invalid(format!("{} given twice", keys.join(" or "))));
            }
            Some(_) => return Err(invalid(format!("{key} must be a string"))),
        }
    }
    Ok(found)
}

fn object(v: Value, what: &str) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(invalid(format!("{what} must be an object"))),
    }
}

/// A document's fields and permissions.
type Fields = (Map<String, Value>, Option<Vec<Permission>>);

/// The fields of a single operation's `data`, and its `$permissions`.
fn fields(data: Value) -> Result<Fields> {
    let mut fields = match data {
        Value::Null => Map::new(),
        other => object(other, "data")?,
    };
    let permissions = match fields.remove("$permissions") {
        None | Some(Value::Null) => None,
        Some(list) => parse_permissions(Some(
            serde_json::from_value(list)
                .map_err(|_| invalid("$permissions must be a list of strings"))?,
        ))?,
    };
    Ok((fields, permissions))
}

/// Refuses fields left over once an operation's data was read.
fn no_more(data: &Map<String, Value>) -> Result<()> {
    match data.keys().next() {
        Some(extra) => Err(invalid(format!("unknown field data.{extra}"))),
        None => Ok(()),
    }
}

/// Reads one of Appwrite's operation objects.
pub fn parse_operation(mut op: Map<String, Value>) -> Result<Operation> {
    let action = text(&mut op, &["action"])?.ok_or_else(|| invalid("action is missing"))?;
    let schema = text(&mut op, &["databaseId"])?.ok_or_else(|| invalid("databaseId is missing"))?;
    let collection = text(&mut op, &["tableId", "collectionId"])?
        .ok_or_else(|| invalid("tableId (or collectionId) is missing"))?;
    let doc_id = text(&mut op, &["rowId", "documentId"])?;
    let data = op.remove("data").unwrap_or(Value::Null);
    if let Some(extra) = op.keys().next() {
        return Err(invalid(format!("unknown field {extra:?}")));
    }
    crate::id::check_id("database id", &schema)?;
    crate::id::check_id("table id", &collection)?;
    let target = Target { schema, collection };
    let needs_id = || {
        doc_id
            .clone()
            .ok_or_else(|| invalid(format!("a {action} needs rowId (or documentId)")))
    };
    let queries = |v: Option<Value>| -> Result<Vec<Query>> {
        let list: Vec<String> = match v {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v)
                .map_err(|_| invalid("queries must be a list of strings"))?,
        };
        list.iter().map(|q| Query::from_json(q)).collect()
    };
    let docs = |data: Value| -> Result<Vec<BulkDocument>> {
        match data {
            Value::Array(list) => list
                .into_iter()
                .map(|d| split_bulk_document(object(d, "each document")?))
                .collect(),
            _ => Err(invalid("data must be a list of documents")),
        }
    };
    Ok(match action.as_str() {
        "create" => {
            let id = crate::id::new_id("document id", &needs_id()?)?;
            let (fields, p) = fields(data)?;
            Operation::Create(target, id, fields, p)
        }
        "upsert" => {
            let (fields, p) = fields(data)?;
            Operation::Upsert(target, needs_id()?, fields, p)
        }
        "update" => {
            let (fields, p) = fields(data)?;
            Operation::Update(target, needs_id()?, fields, p)
        }
        "delete" => Operation::Delete(target, needs_id()?),
        "increment" | "decrement" => {
            let mut data = object(data, "data")?;
            let attribute = text(&mut data, &["column", "attribute"])?
                .ok_or_else(|| invalid("data.column (or attribute) is missing"))?;
            if attribute.is_empty() || attribute.len() > crate::MAX_FIELD_NAME_LEN {
                return Err(invalid(format!(
                    "a column name is 1 to {} bytes",
                    crate::MAX_FIELD_NAME_LEN
                )));
            }
            let number = |v: Option<Value>, what: &str| -> Result<Option<f64>> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => exact_number(&n, what).map(Some),
                    Some(_) => Err(invalid(format!("{what} must be a number"))),
                }
            };
            let by = number(data.remove("value"), "value")?.unwrap_or(1.0);
            let (bound, other) = if action == "increment" {
                ("max", "min")
            } else {
                ("min", "max")
            };
            let limit = number(data.remove(bound), bound)?;
            if data.remove(other).is_some() {
                return Err(invalid(format!(
                    "a {action} is bounded by {bound}, not {other}"
                )));
            }
            if let Some(extra) = data.keys().next() {
                return Err(invalid(format!("unknown field data.{extra}")));
            }
            if by < 0.0 {
                return Err(invalid(
                    "value must not be negative: step the other way instead",
                ));
            }
            let by = if action == "increment" { by } else { -by };
            Operation::Increment {
                target,
                id: needs_id()?,
                attribute,
                by,
                limit,
            }
        }
        "bulkCreate" => Operation::BulkCreate(target, docs(data)?),
        "bulkUpsert" => Operation::BulkUpsert(target, docs(data)?),
        "bulkUpdate" => {
            let mut data = object(data, "data")?;
            let q = queries(data.remove("queries"))?;
            let fields = match data.remove("data") {
                None | Some(Value::Null) => Map::new(),
                Some(v) => object(v, "data.data")?,
            };
            no_more(&data)?;
            Operation::UpdateWhere(target, q, fields)
        }
        "bulkDelete" => {
            let mut data = match data {
                Value::Null => Map::new(),
                other => object(other, "data")?,
            };
            let q = queries(data.remove("queries"))?;
            // A misspelt `queries` would otherwise delete every row.
            no_more(&data)?;
            Operation::DeleteWhere(target, q)
        }
        other => {
            return Err(invalid(format!(
                "unknown action {other:?}: create, update, upsert, delete, increment, decrement, bulkCreate, bulkUpdate, bulkUpsert or bulkDelete"
            )));
        }
    })
}
