//! permdb's schemas, collections, attributes and indexes in the JSON shapes of Appwrite's
//! response models (as its SDKs define them), for the Databases API and for TablesDB.

use serde_json::{Value, json};

use crate::attribute::{AttributeSpec, AttributeType};
use crate::catalog::{CollectionInfo, SchemaInfo};
use crate::index::attr::{IndexSpec, IndexType};

/// Which of Appwrite's two APIs an answer is for: the same stored thing is a collection
/// of documents with attributes in one and a table of rows with columns in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/v1/databases`: collections, attributes, documents.
    Databases,
    /// `/v1/tablesdb`: tables, columns, rows.
    #[expect(dead_code, reason = "the TablesDB routes are next")]
    Tables,
}

/// Appwrite's `Database`. `type` names the API that answers (the store keeps one kind).
pub(crate) fn database(info: &SchemaInfo, api: Api) -> Value {
    json!({
        "$id": info.id,
        "name": info.name,
        "description": "",
        "$createdAt": info.created_at,
        "$updatedAt": info.updated_at,
        "enabled": info.enabled,
        "type": match api {
            Api::Databases => "legacy",
            Api::Tables => "tablesdb",
        },
    })
}

/// Appwrite's `Collection` or `Table`. `bytesMax` is the store's largest document;
/// `bytesUsed` is 0, as permdb reserves no row width per attribute.
pub(crate) fn collection(info: &CollectionInfo, api: Api, bytes_max: usize) -> Value {
    let attributes: Vec<Value> = info.attributes.iter().map(|a| attribute(a, info)).collect();
    let indexes: Vec<Value> = info.indexes.iter().map(|i| index(i, info, api)).collect();
    let (security, fields) = match api {
        Api::Databases => ("documentSecurity", "attributes"),
        Api::Tables => ("rowSecurity", "columns"),
    };
    json!({
        "$id": info.id,
        "$createdAt": info.created_at,
        "$updatedAt": info.updated_at,
        "$permissions": info.permissions,
        "databaseId": info.database_id,
        "name": info.name,
        "description": "",
        "enabled": info.enabled,
        security: info.document_security,
        fields: attributes,
        "indexes": indexes,
        "bytesMax": bytes_max,
        "bytesUsed": 0,
    })
}

/// Appwrite's flat `Attribute*` (or `Column*`: the same fields): `type` and `format` tell
/// them apart, and the range of a number is the whole of its type (permdb has no `min` or
/// `max`). Attributes carry their collection's times: permdb keeps none of their own.
pub(crate) fn attribute(spec: &AttributeSpec, of: &CollectionInfo) -> Value {
    let mut out = json!({
        "key": spec.key,
        "status": "available",
        "error": "",
        "required": spec.required,
        "array": spec.array,
        "$createdAt": of.created_at,
        "$updatedAt": of.created_at,
        "default": spec.default.clone().unwrap_or(Value::Null),
    });
    let extra = match &spec.kind {
        AttributeType::String { size } => {
            json!({"type": "string", "size": size, "encrypt": false})
        }
        AttributeType::Integer => json!({"type": "integer", "min": i64::MIN, "max": i64::MAX}),
        AttributeType::Float => json!({"type": "double", "min": f64::MIN, "max": f64::MAX}),
        AttributeType::Boolean => json!({"type": "boolean"}),
        AttributeType::Datetime => json!({"type": "datetime", "format": "datetime"}),
        AttributeType::Email => json!({"type": "string", "format": "email"}),
        AttributeType::Enum { elements } => {
            json!({"type": "string", "format": "enum", "elements": elements})
        }
    };
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    out
}

/// Appwrite's `Index` (or `ColumnIndex`, whose attributes are `columns`). Every index is
/// ready once created (`available`): permdb builds it in the write that declares it.
/// `orders` is left out: a permdb index serves both directions.
pub(crate) fn index(spec: &IndexSpec, of: &CollectionInfo, api: Api) -> Value {
    let fields = match api {
        Api::Databases => "attributes",
        Api::Tables => "columns",
    };
    json!({
        "$id": spec.key,
        "$createdAt": of.created_at,
        "$updatedAt": of.created_at,
        "key": spec.key,
        "type": match spec.kind {
            IndexType::Key => "key",
            IndexType::Unique => "unique",
            IndexType::Fulltext => "fulltext",
        },
        "status": "available",
        "error": "",
        fields: spec.attributes,
        "lengths": [],
    })
}
