//! `/v1/databases`: databases (permdb schemas), collections, attributes, indexes and
//! documents, with `queries[]` in Appwrite's JSON wire form.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::caller;
use super::error::ApiError;
use super::extract::Body;
use super::model::{self, Api};
use std::sync::Arc;

use super::{ServerOptions, blocking};
use crate::{AttributeSpec, CollectionSpec, Db, IndexSpec, Permission, Query};

pub(super) fn routes() -> Router<Db> {
    let coll = "/databases/{db}/collections/{coll}";
    Router::new()
        .route("/databases", post(create_database).get(list_databases))
        .route("/databases/{db}", get(get_database).delete(delete_database))
        .route(
            "/databases/{db}/collections",
            post(create_collection).get(list_collections),
        )
        .route(coll, get(get_collection).delete(delete_collection))
        // POST names the attribute type (`.../attributes/string`); GET and DELETE name the
        // attribute's key.
        .route(
            &format!("{coll}/attributes/{{name}}"),
            post(create_attribute)
                .get(get_attribute)
                .delete(delete_attribute),
        )
        .route(&format!("{coll}/attributes"), get(list_attributes))
        .route(
            &format!("{coll}/indexes"),
            post(create_index).get(list_indexes),
        )
        .route(
            &format!("{coll}/indexes/{{key}}"),
            get(get_index).delete(delete_index),
        )
        .route(
            &format!("{coll}/documents"),
            post(create_document).get(list_documents),
        )
        .route(
            &format!("{coll}/documents/{{id}}"),
            get(get_document)
                .patch(update_document)
                .delete(delete_document),
        )
}

/// A collection in Appwrite's `Collection` shape.
fn collection(db: &Db, info: &crate::CollectionInfo) -> Value {
    model::collection(
        info,
        Api::Databases,
        db.inner.options.limits.max_document_bytes,
    )
}

fn created(value: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn parse_permissions(list: Option<Vec<String>>) -> Result<Option<Vec<Permission>>, ApiError> {
    list.map(|l| {
        l.iter()
            .map(|p| p.parse::<Permission>().map_err(ApiError::from))
            .collect()
    })
    .transpose()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewDatabase {
    database_id: String,
    name: String,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn create_database(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<NewDatabase>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let schemas = caller(&db, &headers)?.client.schemas();
        let mut info = schemas.create(&b.database_id, &b.name)?;
        if b.enabled == Some(false) {
            info = schemas.update(&b.database_id, &b.name, false)?;
        }
        Ok(created(model::database(&info, Api::Databases)))
    })
    .await
}

async fn list_databases(State(db): State<Db>, headers: HeaderMap) -> Result<Response, ApiError> {
    blocking(move || {
        let list = caller(&db, &headers)?.client.schemas().list()?;
        let databases: Vec<Value> = list
            .iter()
            .map(|d| model::database(d, Api::Databases))
            .collect();
        Ok(Json(json!({"total": databases.len(), "databases": databases})).into_response())
    })
    .await
}

async fn get_database(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let info = caller(&db, &headers)?.client.schemas().get(&id)?;
        Ok(Json(model::database(&info, Api::Databases)).into_response())
    })
    .await
}

async fn delete_database(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        caller(&db, &headers)?.client.schemas().delete(&id)?;
        Ok(super::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewCollection {
    collection_id: String,
    name: String,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    document_security: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn create_collection(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(schema): Path<String>,
    Body(b): Body<NewCollection>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let mut spec = CollectionSpec::new(&b.collection_id, &b.name)
            .document_security(b.document_security.unwrap_or(false))
            .enabled(b.enabled.unwrap_or(true));
        if let Some(p) = parse_permissions(b.permissions)? {
            spec = spec.permissions(p);
        }
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().create(spec)?;
        Ok(created(collection(&db, &info)))
    })
    .await
}

async fn list_collections(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(schema): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let list = client.schema(&schema).collections().list()?;
        let collections: Vec<Value> = list.iter().map(|c| collection(&db, c)).collect();
        Ok(Json(json!({"total": collections.len(), "collections": collections})).into_response())
    })
    .await
}

async fn get_collection(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        Ok(Json(collection(&db, &info)).into_response())
    })
    .await
}

async fn delete_collection(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        client.schema(&schema).collections().delete(&coll)?;
        Ok(super::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAttribute {
    key: String,
    #[serde(default)]
    size: Option<u32>,
    #[serde(default)]
    required: Option<bool>,
    #[serde(default, rename = "default")]
    default_value: Option<Value>,
    #[serde(default)]
    array: Option<bool>,
    #[serde(default)]
    elements: Option<Vec<String>>,
    // Appwrite's `min`, `max` and `encrypt` are not offered: sent, they are refused as
    // unknown fields rather than silently ignored.
}

fn attribute_spec(kind: &str, b: &NewAttribute) -> Result<AttributeSpec, ApiError> {
    let spec = match kind {
        "string" => AttributeSpec::string(
            &b.key,
            b.size
                .ok_or_else(|| ApiError::bad_request("a string attribute needs `size`"))?,
        ),
        "integer" => AttributeSpec::integer(&b.key),
        "float" => AttributeSpec::float(&b.key),
        "boolean" => AttributeSpec::boolean(&b.key),
        "datetime" => AttributeSpec::datetime(&b.key),
        "email" => AttributeSpec::email(&b.key),
        "enum" => AttributeSpec::enumeration(
            &b.key,
            b.elements
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("an enum attribute needs `elements`"))?
                .iter()
                .map(String::as_str),
        ),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown attribute type {other:?}: string, integer, float, boolean, datetime, email or enum"
            )));
        }
    };
    let mut spec = spec
        .required(b.required.unwrap_or(false))
        .array(b.array.unwrap_or(false));
    if let Some(d) = b.default_value.clone().filter(|d| !d.is_null()) {
        spec = spec.default(d);
    }
    Ok(spec)
}

async fn create_attribute(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, kind)): Path<(String, String, String)>,
    Body(b): Body<NewAttribute>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let spec = attribute_spec(&kind, &b)?;
        let client = caller(&db, &headers)?.client;
        let info = client
            .schema(&schema)
            .collections()
            .create_attribute(&coll, spec)?;
        let attribute = info
            .attributes
            .iter()
            .find(|a| a.key == b.key)
            .map(|a| model::attribute(a, &info))
            .unwrap_or(Value::Null);
        Ok((StatusCode::ACCEPTED, Json(attribute)).into_response())
    })
    .await
}

async fn list_attributes(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        let attributes: Vec<Value> = info
            .attributes
            .iter()
            .map(|a| model::attribute(a, &info))
            .collect();
        Ok(Json(json!({"total": attributes.len(), "attributes": attributes})).into_response())
    })
    .await
}

async fn get_attribute(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        let attribute = info
            .attributes
            .iter()
            .find(|a| a.key == key)
            .ok_or_else(|| crate::Error::not_found(crate::ResourceKind::Attribute, &key))?;
        Ok(Json(model::attribute(attribute, &info)).into_response())
    })
    .await
}

async fn delete_attribute(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        client
            .schema(&schema)
            .collections()
            .delete_attribute(&coll, &key)?;
        Ok(super::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewIndex {
    key: String,
    #[serde(rename = "type")]
    kind: String,
    attributes: Vec<String>,
    #[serde(default)]
    orders: Option<Vec<String>>,
}

async fn create_index(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    Body(b): Body<NewIndex>,
) -> Result<Response, ApiError> {
    blocking(move || {
        // Orders are checked, not kept: a permdb index serves both directions.
        if let Some(orders) = &b.orders {
            if orders.len() > b.attributes.len() {
                return Err(ApiError::bad_request("more orders than attributes"));
            }
            if let Some(bad) = orders
                .iter()
                .find(|o| !matches!(o.as_str(), "ASC" | "DESC"))
            {
                return Err(ApiError::bad_request(format!(
                    "unknown order {}: ASC or DESC",
                    crate::id::quote(bad)
                )));
            }
        }
        let attrs = b.attributes.iter().map(String::as_str);
        let spec = match b.kind.as_str() {
            "key" => IndexSpec::key(&b.key, attrs),
            "unique" => IndexSpec::unique(&b.key, attrs),
            "fulltext" => match b.attributes.as_slice() {
                [one] => IndexSpec::fulltext(&b.key, one),
                _ => {
                    return Err(ApiError::bad_request(
                        "a fulltext index takes exactly one attribute",
                    ));
                }
            },
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown index type {other:?}: key, unique or fulltext"
                )));
            }
        };
        let client = caller(&db, &headers)?.client;
        let info = client
            .schema(&schema)
            .collections()
            .create_index(&coll, spec)?;
        let index = info
            .indexes
            .iter()
            .find(|i| i.key == b.key)
            .map(|i| model::index(i, &info, Api::Databases))
            .unwrap_or(Value::Null);
        Ok((StatusCode::ACCEPTED, Json(index)).into_response())
    })
    .await
}

async fn list_indexes(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        let indexes: Vec<Value> = info
            .indexes
            .iter()
            .map(|i| model::index(i, &info, Api::Databases))
            .collect();
        Ok(Json(json!({"total": indexes.len(), "indexes": indexes})).into_response())
    })
    .await
}

async fn get_index(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        let index = info
            .indexes
            .iter()
            .find(|i| i.key == key)
            .ok_or_else(|| crate::Error::not_found(crate::ResourceKind::Index, &key))?;
        Ok(Json(model::index(index, &info, Api::Databases)).into_response())
    })
    .await
}

async fn delete_index(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        client
            .schema(&schema)
            .collections()
            .delete_index(&coll, &key)?;
        Ok(super::no_content())
    })
    .await
}

/// The `queries` of a query string: `queries[]=`, `queries[N]=` or `queries=`, each one
/// query in Appwrite's JSON wire form. Other parameters are refused.
fn queries_of(raw: Option<&str>) -> Result<Vec<Query>, ApiError> {
    let mut out = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let is_queries = key == "queries"
            || key
                .strip_prefix("queries[")
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()));
        if !is_queries {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {key:?}; documents are listed with queries[]"
            )));
        }
        out.push(Query::from_json(&value)?);
    }
    Ok(out)
}

async fn list_documents(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let queries = queries_of(raw.as_deref())?;
        let client = caller(&db, &headers)?.client;
        let list = client.schema(&schema).collection(&coll).find(&queries)?;
        Ok(Json(list).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewDocument {
    document_id: String,
    data: Map<String, Value>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

async fn create_document(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    Body(b): Body<NewDocument>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let permissions = parse_permissions(b.permissions)?;
        let caller = caller(&db, &headers)?;
        options.check_new_id(&caller, &b.document_id)?;
        let c = caller.client.schema(&schema).collection(&coll);
        Ok(created(c.create(&b.document_id, b.data, permissions)?))
    })
    .await
}

async fn get_document(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        Ok(Json(client.schema(&schema).collection(&coll).get(&id)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentPatch {
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

async fn update_document(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
    Body(b): Body<DocumentPatch>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let permissions = parse_permissions(b.permissions)?;
        let client = caller(&db, &headers)?.client;
        let c = client.schema(&schema).collection(&coll);
        let doc = c.update(&id, b.data.unwrap_or_default(), permissions)?;
        Ok(Json(doc).into_response())
    })
    .await
}

async fn delete_document(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        client.schema(&schema).collection(&coll).delete(&id)?;
        Ok(super::no_content())
    })
    .await
}
