//! Typed attributes of a collection and the validation of documents against them.
//! A collection without attributes is schemaless; once it has one, every field of a
//! document must be declared and of its declared type.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::id::{check_id, quote};
use crate::value::{self, Node};

/// Largest `size` of a string attribute, in characters.
pub const MAX_STRING_SIZE: u32 = 1 << 20;
/// Most attributes one collection may declare.
pub const MAX_ATTRIBUTES: usize = 200;

/// The type of an attribute's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AttributeType {
    /// Text of at most `size` characters.
    String {
        /// Most characters.
        size: u32,
    },
    /// A whole number that fits i64.
    Integer,
    /// Any number.
    Float,
    /// `true` or `false`.
    Boolean,
    /// A date and time, stored as Appwrite's `2024-05-11T10:00:00.000+00:00` (UTC).
    Datetime,
    /// An email address.
    Email,
    /// One of `elements`.
    Enum {
        /// The allowed strings.
        elements: Vec<String>,
    },
    /// Text of at most `size` characters declared with one of TablesDB's text types, kept
    /// to be answered back: `varchar` takes its size; `text` holds 65,535 characters,
    /// `mediumtext` and `longtext` permdb's largest string, [`MAX_STRING_SIZE`].
    Text {
        /// Which of the text types.
        kind: TextKind,
        /// Most characters.
        size: u32,
    },
}

/// TablesDB's text column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TextKind {
    /// `varchar`: a size given when declared.
    Varchar,
    /// `text`: 65,535 characters.
    Text,
    /// `mediumtext`: [`MAX_STRING_SIZE`] characters.
    Mediumtext,
    /// `longtext`: [`MAX_STRING_SIZE`] characters.
    Longtext,
}

impl TextKind {
    /// Its name in Appwrite's API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TextKind::Varchar => "varchar",
            TextKind::Text => "text",
            TextKind::Mediumtext => "mediumtext",
            TextKind::Longtext => "longtext",
        }
    }
}

/// A declared attribute: key, type, whether it is required or an array, and a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// The attribute's name (an id).
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Whether every document must have it (not null). Default `false`.
    pub required: bool,
    /// Whether the value is an array of the type. Default `false`.
    pub array: bool,
    /// Value used on create when the document has none. Not allowed with `required`.
    pub default: Option<Value>,
}

impl AttributeSpec {
    fn new(key: &str, kind: AttributeType) -> AttributeSpec {
        AttributeSpec {
            key: key.to_owned(),
            kind,
            required: false,
            array: false,
            default: None,
        }
    }
    /// A string attribute of at most `size` characters.
    #[must_use]
    pub fn string(key: &str, size: u32) -> AttributeSpec {
        AttributeSpec::new(key, AttributeType::String { size })
    }
    /// An integer attribute.
    #[must_use]
    pub fn integer(key: &str) -> AttributeSpec {
        AttributeSpec::new(key, AttributeType::Integer)
    }
    /// A float attribute.
    #[must_use]
    pub fn float(key: &str) -> AttributeSpec {
        AttributeSpec::new(key, AttributeType::Float)
    }
    /// A boolean attribute.
    #[must_use]
    pub fn boolean(key: &str) -> AttributeSpec {
        AttributeSpec::new(key, AttributeType::Boolean)
    }
    /// A `varchar` attribute of at most `size` characters (TablesDB's name for a string).
    #[must_use]
    pub fn varchar(key: &str, size: u32) -> AttributeSpec {
        AttributeSpec::new(
            key,
            AttributeType::Text {
                kind: TextKind::Varchar,
                size,
            },
        )
    }
    /// A `text` (65,535 characters), `mediumtext` or `longtext` ([`MAX_STRING_SIZE`])
    /// attribute; a `varchar` is made with [`AttributeSpec::varchar`].
    #[must_use]
    pub fn text(key: &str, kind: TextKind) -> AttributeSpec {
        let size = match kind {
            TextKind::Text => 65_535,
            TextKind::Varchar | TextKind::Mediumtext | TextKind::Longtext => MAX_STRING_SIZE,
        };
        AttributeSpec::new(key, AttributeType::Text { kind, size })
    }
    /// A datetime attribute: values as Appwrite takes them (`2012-02-03`,
    /// `2012-02-03 10:00`, RFC 3339 with any offset), stored in UTC with milliseconds
    /// (`2012-02-03T00:00:00.000+00:00`).
    #[must_use]
    pub fn datetime(key: &str) -> AttributeSpec {
        AttributeSpec::new(key, AttributeType::Datetime)
    }
    /// An email attribute.
    #[must_use]
    pub fn email(key: &str) -> AttributeSpec {
        AttributeSpec::new(key, AttributeType::Email)
    }
    /// An enum attribute: one of `elements`.
    #[must_use]
    pub fn enumeration<'a>(
        key: &str,
        elements: impl IntoIterator<Item = &'a str>,
    ) -> AttributeSpec {
        AttributeSpec::new(
            key,
            AttributeType::Enum {
                elements: elements.into_iter().map(str::to_owned).collect(),
            },
        )
    }
    /// Required or not. Default `false`.
    #[must_use]
    pub fn required(mut self, required: bool) -> AttributeSpec {
        self.required = required;
        self
    }
    /// An array of the type, or a single value. Default `false`.
    #[must_use]
    pub fn array(mut self, array: bool) -> AttributeSpec {
        self.array = array;
        self
    }
    /// The default value on create. Default none.
    #[must_use]
    pub fn default(mut self, value: impl Into<Value>) -> AttributeSpec {
        self.default = Some(value.into());
        self
    }

    /// The kind of value queries compare this attribute with.
    pub(crate) fn value_kind(&self) -> ValueKind {
        match self.kind {
            AttributeType::Integer | AttributeType::Float => ValueKind::Number,
            AttributeType::Boolean => ValueKind::Bool,
            AttributeType::Datetime => ValueKind::Datetime,
            _ => ValueKind::String,
        }
    }

    /// The value as stored: a datetime (or each of an array's) in UTC with milliseconds;
    /// other types unchanged. Call on a value [`Self::check_value`] accepted.
    fn normalize(&self, v: &mut Value) {
        if self.kind != AttributeType::Datetime {
            return;
        }
        let one = |v: &mut Value| {
            if let Some(stored) = v
                .as_str()
                .and_then(|s| crate::timefmt::normalize_datetime(s).ok())
            {
                *v = Value::String(stored);
            }
        };
        match v {
            Value::Array(items) => items.iter_mut().for_each(one),
            other => one(other),
        }
    }

    /// Checks the declaration itself.
    pub(crate) fn validate(&self) -> Result<()> {
        check_id("attribute key", &self.key)?;
        let bad = |m: String| {
            Err(Error::InvalidArgument(format!(
                "attribute {}: {m}",
                quote(&self.key)
            )))
        };
        match &self.kind {
            AttributeType::String { size } | AttributeType::Text { size, .. }
                if *size == 0 || *size > MAX_STRING_SIZE =>
            {
                return bad(format!("size must be 1 to {MAX_STRING_SIZE}"));
            }
            AttributeType::Enum { elements } if elements.is_empty() || elements.len() > 100 => {
                return bad("an enum needs 1 to 100 elements".into());
            }
            _ => {}
        }
        if self.required && self.default.is_some() {
            return bad("a required attribute cannot have a default".into());
        }
        if let Some(d) = &self.default {
            self.check_value(d)
                .map_err(|e| Error::InvalidArgument(format!("default: {e}")))?;
        }
        Ok(())
    }

    fn check_scalar(&self, v: &Value) -> std::result::Result<(), String> {
        let ok = match (&self.kind, v) {
            (
                AttributeType::String { size } | AttributeType::Text { size, .. },
                Value::String(s),
            ) => {
                if s.chars().count() > *size as usize {
                    return Err(format!("longer than {size} characters"));
                }
                true
            }
            (AttributeType::Integer, Value::Number(n)) => n.as_i64().is_some(),
            (AttributeType::Float, Value::Number(_)) | (AttributeType::Boolean, Value::Bool(_)) => {
                true
            }
            // The fault, not the value: a document's values are never quoted back.
            (AttributeType::Datetime, Value::String(s)) => {
                crate::timefmt::normalize_datetime(s).is_ok()
            }
            (AttributeType::Email, Value::String(s)) => crate::text::check_email(s).is_ok(),
            (AttributeType::Enum { elements }, Value::String(s)) => {
                if !elements.contains(s) {
                    return Err(format!("not one of the elements {elements:?}"));
                }
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "not a valid {} (a {} was given)",
                self.type_name(),
                json_kind(v)
            ))
        }
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            AttributeType::String { .. } => "string",
            AttributeType::Integer => "integer",
            AttributeType::Float => "float",
            AttributeType::Boolean => "boolean",
            AttributeType::Datetime => "datetime",
            AttributeType::Email => "email",
            AttributeType::Enum { .. } => "enum value",
            AttributeType::Text { kind, .. } => kind.as_str(),
        }
    }

    /// Checks one non-null value against the declaration.
    fn check_value(&self, v: &Value) -> std::result::Result<(), String> {
        match (self.array, v) {
            (true, Value::Array(items)) => items.iter().try_for_each(|i| self.check_scalar(i)),
            (true, _) => Err(format!("not an array (a {} was given)", json_kind(v))),
            (false, _) => self.check_scalar(v),
        }
    }
}

/// The kind of a JSON value, for messages that must not quote the value.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An attribute as stored: the default as a flat node list (see `value`), since the
/// codec cannot carry a JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AttributeRecord {
    key: String,
    kind: AttributeType,
    required: bool,
    array: bool,
    default: Option<Vec<Node>>,
}

impl AttributeRecord {
    pub(crate) fn from_spec(spec: &AttributeSpec, max_depth: usize) -> Result<AttributeRecord> {
        let default = match &spec.default {
            None => None,
            Some(v) => {
                let mut nodes = Vec::new();
                value::flatten(v, max_depth, &mut nodes).map_err(|e| {
                    Error::InvalidArgument(format!("default of {}: {e}", quote(&spec.key)))
                })?;
                Some(nodes)
            }
        };
        Ok(AttributeRecord {
            key: spec.key.clone(),
            kind: spec.kind.clone(),
            required: spec.required,
            array: spec.array,
            default,
        })
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn to_spec(&self, max_depth: usize) -> Result<AttributeSpec> {
        let default = match &self.default {
            None => None,
            Some(nodes) => Some(value::rebuild(nodes.clone(), max_depth).map_err(|e| {
                Error::corrupt(format!("default of attribute {}", quote(&self.key)), e)
            })?),
        };
        Ok(AttributeSpec {
            key: self.key.clone(),
            kind: self.kind.clone(),
            required: self.required,
            array: self.array,
            default,
        })
    }
}

/// Validates `data` against `attributes` (nothing when there are none).
/// `creating` applies defaults and checks required fields of a new document;
/// on update `data` is the merged document and `patch` the fields given.
pub(crate) fn validate(
    attributes: &[AttributeSpec],
    data: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    creating: bool,
) -> Result<()> {
    if attributes.is_empty() {
        return Ok(());
    }
    let invalid =
        |key: &str, m: String| Error::InvalidDocument(format!("attribute {}: {m}", quote(key)));
    let given = if creating { &*data } else { patch };
    if let Some(key) = given
        .keys()
        .find(|k| !attributes.iter().any(|a| &a.key == *k))
    {
        return Err(invalid(key, "not in the collection's schema".into()));
    }
    for a in attributes {
        if creating
            && !data.contains_key(&a.key)
            && let Some(d) = &a.default
        {
            data.insert(a.key.clone(), d.clone());
        }
        match data.get(&a.key) {
            None | Some(Value::Null) if a.required => {
                return Err(invalid(&a.key, "required".into()));
            }
            None | Some(Value::Null) => {}
            Some(_) if !(creating || patch.contains_key(&a.key)) => {}
            Some(v) => {
                a.check_value(v).map_err(|m| invalid(&a.key, m))?;
                if let Some(v) = data.get_mut(&a.key) {
                    a.normalize(v);
                }
            }
        }
    }
    Ok(())
}

/// Checks a stored document's values against `attributes` as a write checked them,
/// without applying defaults or asking for required ones (an attribute added after the
/// document was written may be missing, or null in a document written while the
/// collection was schemaless): what an import accepts.
pub(crate) fn check_stored(attributes: &[AttributeSpec], data: &Map<String, Value>) -> Result<()> {
    if attributes.is_empty() {
        return Ok(());
    }
    for (key, v) in data {
        let Some(a) = attributes.iter().find(|a| &a.key == key) else {
            return Err(Error::InvalidDocument(format!(
                "attribute {}: not in the collection's schema",
                quote(key)
            )));
        };
        if !v.is_null() {
            a.check_value(v)
                .map_err(|m| Error::InvalidDocument(format!("attribute {}: {m}", quote(key))))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(spec: &AttributeSpec, v: Value) -> bool {
        spec.check_value(&v).is_ok()
    }

    #[test]
    fn types() {
        assert!(check(&AttributeSpec::string("s", 3), json!("abc")));
        assert!(!check(&AttributeSpec::string("s", 3), json!("abcd")));
        assert!(check(&AttributeSpec::integer("i"), json!(-5)));
        assert!(!check(&AttributeSpec::integer("i"), json!(1.5)));
        assert!(!check(&AttributeSpec::integer("i"), json!(u64::MAX)));
        assert!(check(&AttributeSpec::float("f"), json!(1)));
        assert!(!check(&AttributeSpec::boolean("b"), json!("true")));
        assert!(check(
            &AttributeSpec::datetime("d"),
            json!("2024-05-11T10:00:00.000+00:00")
        ));
        assert!(!check(&AttributeSpec::datetime("d"), json!("yesterday")));
        assert!(check(&AttributeSpec::email("e"), json!("a@b.c")));
        assert!(!check(&AttributeSpec::email("e"), json!("nope")));
        assert!(check(
            &AttributeSpec::enumeration("x", ["a", "b"]),
            json!("a")
        ));
        assert!(!check(
            &AttributeSpec::enumeration("x", ["a", "b"]),
            json!("c")
        ));
        assert!(check(
            &AttributeSpec::integer("i").array(true),
            json!([1, 2])
        ));
        assert!(!check(
            &AttributeSpec::integer("i").array(true),
            json!([1, "2"])
        ));
        assert!(!check(&AttributeSpec::integer("i").array(true), json!(1)));
        assert!(
            AttributeSpec::integer("i")
                .required(true)
                .default(1)
                .validate()
                .is_err()
        );
        assert!(AttributeSpec::integer("i").default("x").validate().is_err());
        assert!(AttributeSpec::string("s", 0).validate().is_err());
    }
}

/// The kind of value an attribute holds, for checking query values against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A string.
    String,
    /// A number (integer or float).
    Number,
    /// A boolean.
    Bool,
    /// A string holding a datetime: query values are normalized as stored ones are.
    Datetime,
}

/// What the planner knows of a collection: declared attributes (none: schemaless)
/// and which attributes have a fulltext index.
#[derive(Debug, Clone, Default)]
pub(crate) struct QuerySchema {
    pub(crate) attributes: Option<std::collections::BTreeMap<String, ValueKind>>,
    pub(crate) fulltext: std::collections::BTreeSet<String>,
}
