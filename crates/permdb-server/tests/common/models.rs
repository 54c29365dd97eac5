//! Checks a JSON answer against Appwrite's response model of the same name, as the pinned
//! SDK declares it (tests/fixtures/appwrite_models.json, made by tools/appwrite_models.py
//! from node-appwrite's models.d.ts): every required field present, every field present
//! of its declared JSON type, lists and nested models checked in turn.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Field {
    #[serde(rename = "type")]
    kind: String,
    required: bool,
    nullable: bool,
    #[serde(default)]
    items: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
pub struct Models {
    pub sdk: String,
    models: BTreeMap<String, BTreeMap<String, Field>>,
}

pub fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let text = include_str!("../fixtures/appwrite_models.json");
        serde_json::from_str(text).expect("tests/fixtures/appwrite_models.json")
    })
}

/// The model an attribute (or column) object is, told apart by `type` and `format` as the
/// SDKs do.
fn attribute_model(value: &Value, prefix: &str) -> String {
    let kind = value["type"].as_str().unwrap_or("");
    let format = value["format"].as_str().unwrap_or("");
    let name = match (kind, format) {
        ("string", "email") => "Email",
        ("string", "enum") => "Enum",
        ("string", _) => "String",
        ("integer", _) => "Integer",
        ("double", _) => "Float",
        ("boolean", _) => "Boolean",
        ("datetime", _) => "Datetime",
        ("varchar", _) => "Varchar",
        ("text", _) => "Text",
        ("mediumtext", _) => "Mediumtext",
        ("longtext", _) => "Longtext",
        _ => "Unknown",
    };
    format!("{prefix}{name}")
}

fn type_ok(kind: &str, value: &Value) -> bool {
    match kind {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

/// Every way `value` differs from model `name`, each as `path: what`.
pub fn problems(name: &str, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(name, value, name, &mut out);
    out
}

fn check(name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(model) = models().models.get(name) else {
        out.push(format!("{path}: no model {name} in the fixture"));
        return;
    };
    let Some(object) = value.as_object() else {
        out.push(format!("{path}: not an object: {value}"));
        return;
    };
    for (field, spec) in model {
        let at = format!("{path}.{field}");
        match object.get(field) {
            None if spec.required => out.push(format!("{at}: missing")),
            None => {}
            Some(Value::Null) if spec.nullable || !spec.required => {}
            Some(v) if !type_ok(&spec.kind, v) => {
                out.push(format!("{at}: {v} is not a {}", spec.kind));
            }
            Some(v) => {
                if let (Some(item), Some(list)) = (&spec.items, v.as_array()) {
                    for (i, each) in list.iter().enumerate() {
                        check(item, each, &format!("{at}[{i}]"), out);
                    }
                } else if let Some(list) = v.as_array()
                    && matches!(field.as_str(), "attributes" | "columns")
                    && !(name.ends_with("Index") || name.ends_with("IndexList"))
                {
                    let prefix = if field == "columns" {
                        "Column"
                    } else {
                        "Attribute"
                    };
                    for (i, each) in list.iter().enumerate() {
                        let model = attribute_model(each, prefix);
                        check(&model, each, &format!("{at}[{i}]"), out);
                    }
                } else if let Some(nested) = &spec.model {
                    check(nested, v, &at, out);
                }
            }
        }
    }
    // The status of attributes and indexes is an enum in the SDKs.
    if let Some(status) = object.get("status").and_then(Value::as_str)
        && (name.starts_with("Attribute") || name.starts_with("Column") || name.ends_with("Index"))
        && !["available", "processing", "deleting", "stuck", "failed"].contains(&status)
    {
        out.push(format!("{path}.status: {status:?} is not a status"));
    }
}

/// Asserts that `value` is model `name`, listing every difference.
#[track_caller]
pub fn assert_model(name: &str, value: &Value) {
    let found = problems(name, value);
    assert!(
        found.is_empty(),
        "not a {name} of {}:\n  {}\n{value:#}",
        models().sdk,
        found.join("\n  ")
    );
}

/// The attribute model of `value` (`AttributeString`, ...), for a single attribute answer.
pub fn assert_attribute(value: &Value) {
    assert_model(&attribute_model(value, "Attribute"), value);
}
