//! `/v1/databases` and `/v1/tablesdb`: databases (permdb schemas), collections or tables,
//! attributes or columns, indexes, documents or rows, with `queries[]` in Appwrite's form.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::caller;
use crate::error::ApiError;
use crate::extract::Body;
use crate::list;
use crate::model::{self, Api};
use std::sync::Arc;

use crate::transactions::{self, BulkDocument, Registry, StagedOp, Target};
use crate::{ServerOptions, blocking};
use permdb::{AttributeSpec, CollectionSpec, Db, IndexSpec, Permission, TextKind};

/// The Databases API under `/databases` and TablesDB under `/tablesdb`: one set of
/// handlers, told apart by their [`Flavor`].
pub(super) fn routes() -> Router<Db> {
    routes_of::<Legacy>()
        .merge(routes_of::<Tables>())
        .merge(document_routes::<Nuvix>())
        .merge(transactions::all_routes())
        .layer(axum::middleware::from_fn(transaction_in_query))
}

/// A write naming `transactionId` in its query string is refused: the SDKs send it in
/// the JSON body, and a write that ignored it would land at once instead of being staged.
async fn transaction_in_query(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Any spelling a client might use (`transactionid`, `transactionId[]`) counts.
    let named = request.method() != axum::http::Method::GET
        && form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .any(|(k, _)| k.to_ascii_lowercase().starts_with("transactionid"));
    if named {
        return ApiError::bad_request("transactionId goes in the JSON body of a write")
            .into_response();
    }
    next.run(request).await
}

/// The document routes alone: all Nuvix's client uses.
fn document_routes<F: Flavor>() -> Router<Db> {
    let (dbs, colls, docs) = (F::ROOT, F::COLLECTIONS, F::DOCUMENTS);
    let coll = format!("/{dbs}/{{db}}/{colls}/{{coll}}");
    Router::new()
        .route(
            &format!("{coll}/{docs}"),
            post(create_document::<F>).get(list_documents::<F>),
        )
        .route(
            &format!("{coll}/{docs}/{{id}}"),
            get(get_document::<F>)
                .patch(update_document::<F>)
                .delete(delete_document::<F>),
        )
}

fn routes_of<F: Flavor>() -> Router<Db> {
    let (dbs, colls, attrs, docs) = (F::ROOT, F::COLLECTIONS, F::ATTRIBUTES, F::DOCUMENTS);
    let coll = format!("/{dbs}/{{db}}/{colls}/{{coll}}");
    Router::new()
        .route(
            &format!("/{dbs}"),
            post(create_database::<F>).get(list_databases::<F>),
        )
        .route(
            &format!("/{dbs}/{{db}}"),
            get(get_database::<F>)
                .put(update_database::<F>)
                .delete(delete_database::<F>),
        )
        .route(
            &format!("/{dbs}/{{db}}/{colls}"),
            post(create_collection::<F>).get(list_collections::<F>),
        )
        .route(
            &coll,
            get(get_collection::<F>)
                .put(update_collection::<F>)
                .delete(delete_collection::<F>),
        )
        // POST names the attribute type (`.../attributes/string`); GET and DELETE name the
        // attribute's key.
        .route(
            &format!("{coll}/{attrs}/{{name}}"),
            post(create_attribute::<F>)
                .get(get_attribute::<F>)
                .delete(delete_attribute::<F>),
        )
        .route(&format!("{coll}/{attrs}"), get(list_attributes::<F>))
        .route(
            &format!("{coll}/indexes"),
            post(create_index::<F>).get(list_indexes::<F>),
        )
        .route(
            &format!("{coll}/indexes/{{key}}"),
            get(get_index::<F>).delete(delete_index::<F>),
        )
        .route(
            &format!("{coll}/{docs}"),
            post(create_document::<F>)
                .get(list_documents::<F>)
                .put(upsert_documents::<F>)
                .patch(update_documents::<F>)
                .delete(delete_documents::<F>),
        )
        .route(
            &format!("{coll}/{docs}/{{id}}"),
            get(get_document::<F>)
                .patch(update_document::<F>)
                .put(upsert_document::<F>)
                .delete(delete_document::<F>),
        )
        .route(
            &format!("{coll}/{docs}/{{id}}/{{attribute}}/increment"),
            axum::routing::patch(increment_document::<F>),
        )
        .route(
            &format!("{coll}/{docs}/{{id}}/{{attribute}}/decrement"),
            axum::routing::patch(decrement_document::<F>),
        )
}

/// What differs between the two APIs: paths, list keys, a document's collection field,
/// and error types (`row_not_found` for `document_not_found`, and so on).
pub(super) trait Flavor: Send + Sync + 'static {
    /// Which API, for the response models.
    const API: Api;
    /// The path under `/v1`.
    const ROOT: &'static str;
    /// Collections or tables: the path segment and list key.
    const COLLECTIONS: &'static str;
    /// Attributes or columns.
    const ATTRIBUTES: &'static str;
    /// Documents or rows.
    const DOCUMENTS: &'static str;
    /// The key of a document list.
    const DOCUMENT_LIST: &'static str;
    /// What list queries on collections (tables) may name.
    const COLLECTION_LIST: &'static list::ListKind;
    /// What list queries on indexes may name.
    const INDEX_LIST: &'static list::ListKind;

    /// A document in this API's model (`Document` or `Row`).
    fn document(doc: &permdb::Document) -> Result<Value, ApiError>;

    /// An error with this API's type.
    fn error(e: ApiError) -> ApiError;
}

/// `/v1/databases`: collections, attributes, documents.
pub(super) struct Legacy;

impl Flavor for Legacy {
    const API: Api = Api::Databases;
    const ROOT: &'static str = "databases";
    const COLLECTIONS: &'static str = "collections";
    const ATTRIBUTES: &'static str = "attributes";
    const DOCUMENTS: &'static str = "documents";
    const DOCUMENT_LIST: &'static str = "documents";
    const COLLECTION_LIST: &'static list::ListKind = &list::COLLECTIONS;
    const INDEX_LIST: &'static list::ListKind = &list::INDEXES;

    fn document(doc: &permdb::Document) -> Result<Value, ApiError> {
        serde_json::to_value(doc).map_err(|e| ApiError::internal(e.to_string()))
    }

    fn error(e: ApiError) -> ApiError {
        e
    }
}

/// `/v1/tablesdb`: tables, columns, rows.
pub(super) struct Tables;

impl Flavor for Tables {
    const API: Api = Api::Tables;
    const ROOT: &'static str = "tablesdb";
    const COLLECTIONS: &'static str = "tables";
    const ATTRIBUTES: &'static str = "columns";
    const DOCUMENTS: &'static str = "rows";
    const DOCUMENT_LIST: &'static str = "rows";
    const COLLECTION_LIST: &'static list::ListKind = &list::TABLES;
    const INDEX_LIST: &'static list::ListKind = &list::COLUMN_INDEXES;

    fn document(doc: &permdb::Document) -> Result<Value, ApiError> {
        let mut value = Legacy::document(doc)?;
        if let Value::Object(map) = &mut value
            && let Some(table) = map.remove("$collectionId")
        {
            map.insert("$tableId".to_owned(), table);
        }
        Ok(value)
    }

    fn error(mut e: ApiError) -> ApiError {
        e.kind = match e.kind {
            "document_not_found" => "row_not_found",
            "document_already_exists" => "row_already_exists",
            "document_invalid_structure" => "row_invalid_structure",
            "collection_not_found" => "table_not_found",
            "collection_already_exists" => "table_already_exists",
            "attribute_not_found" => "column_not_found",
            "attribute_already_exists" => "column_already_exists",
            other => other,
        };
        e
    }
}

/// A collection in Appwrite's `Collection` (or `Table`) shape.
fn collection<F: Flavor>(db: &Db, info: &permdb::CollectionInfo) -> Value {
    model::collection(info, F::API, db.limits().max_document_bytes)
}

fn created(value: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn parse_permissions(list: Option<Vec<String>>) -> Result<Option<Vec<Permission>>, ApiError> {
    Ok(permdb::wire::parse_permissions(list)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewDatabase {
    database_id: String,
    name: String,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn create_database<F: Flavor>(
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
        Ok(created(model::database(&info, F::API)))
    })
    .await
    .map_err(F::error)
}

async fn list_databases<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), true)?;
        let all = caller(&db, &headers)?.client.schemas().list()?;
        let databases: Vec<Value> = all.iter().map(|d| model::database(d, F::API)).collect();
        Ok(Json(list::answer(
            databases,
            &params,
            &list::DATABASES,
            "databases",
        )?)
        .into_response())
    })
    .await
    .map_err(F::error)
}

async fn get_database<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let info = caller(&db, &headers)?.client.schemas().get(&id)?;
        Ok(Json(model::database(&info, F::API)).into_response())
    })
    .await
    .map_err(F::error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DatabaseChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// `PUT /{db}`: a field left out keeps its value.
async fn update_database<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<DatabaseChange>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let schemas = caller(&db, &headers)?.client.schemas();
        let now = schemas.get(&id)?;
        let name = b.name.as_deref().unwrap_or(&now.name);
        let info = schemas.update(&id, name, b.enabled.unwrap_or(now.enabled))?;
        Ok(Json(model::database(&info, F::API)).into_response())
    })
    .await
    .map_err(F::error)
}

async fn delete_database<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        caller(&db, &headers)?.client.schemas().delete(&id)?;
        Ok(crate::no_content())
    })
    .await
    .map_err(F::error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewCollection {
    #[serde(alias = "tableId")]
    collection_id: String,
    name: String,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default, alias = "rowSecurity")]
    document_security: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn create_collection<F: Flavor>(
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
        Ok(created(collection::<F>(&db, &info)))
    })
    .await
    .map_err(F::error)
}

async fn list_collections<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(schema): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), true)?;
        let client = caller(&db, &headers)?.client;
        let all = client.schema(&schema).collections().list()?;
        let collections: Vec<Value> = all.iter().map(|c| collection::<F>(&db, c)).collect();
        let answer = list::answer(collections, &params, F::COLLECTION_LIST, F::COLLECTIONS)?;
        Ok(Json(answer).into_response())
    })
    .await
    .map_err(F::error)
}

async fn get_collection<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        Ok(Json(collection::<F>(&db, &info)).into_response())
    })
    .await
    .map_err(F::error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CollectionChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default, alias = "rowSecurity")]
    document_security: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
    /// Appwrite's cache purge: permdb's caches follow every write, so there is nothing to do.
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for the SDKs; nothing to purge")]
    purge: Option<bool>,
}

/// `PUT .../collections/{id}` (`updateTable`): a field left out keeps its value (where
/// Appwrite would turn document security off and re-enable the collection).
async fn update_collection<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    Body(b): Body<CollectionChange>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let permissions = parse_permissions(b.permissions)?;
        let collections = caller(&db, &headers)?.client.schema(&schema).collections();
        let now = collections.get(&coll)?;
        let spec = CollectionSpec::new(&coll, b.name.as_deref().unwrap_or(&now.name))
            .permissions(permissions.unwrap_or(now.permissions))
            .document_security(b.document_security.unwrap_or(now.document_security))
            .enabled(b.enabled.unwrap_or(now.enabled));
        let info = collections.update(spec)?;
        Ok(Json(collection::<F>(&db, &info)).into_response())
    })
    .await
    .map_err(F::error)
}

async fn delete_collection<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let client = caller(&db, &headers)?.client;
        client.schema(&schema).collections().delete(&coll)?;
        Ok(crate::no_content())
    })
    .await
    .map_err(F::error)
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
        "varchar" => AttributeSpec::varchar(
            &b.key,
            b.size
                .ok_or_else(|| ApiError::bad_request("a varchar attribute needs `size`"))?,
        ),
        "text" => AttributeSpec::text(&b.key, TextKind::Text),
        "mediumtext" => AttributeSpec::text(&b.key, TextKind::Mediumtext),
        "longtext" => AttributeSpec::text(&b.key, TextKind::Longtext),
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
                "unknown attribute type {other:?}: string, varchar, text, mediumtext, longtext, integer, float, boolean, datetime, email or enum"
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

async fn create_attribute<F: Flavor>(
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
    .map_err(F::error)
}

async fn list_attributes<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), false)?;
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        let attributes: Vec<Value> = info
            .attributes
            .iter()
            .map(|a| model::attribute(a, &info))
            .collect();
        let answer = list::answer(attributes, &params, &list::ATTRIBUTES, F::ATTRIBUTES)?;
        Ok(Json(answer).into_response())
    })
    .await
    .map_err(F::error)
}

async fn get_attribute<F: Flavor>(
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
            .ok_or_else(|| permdb::Error::not_found(permdb::ResourceKind::Attribute, &key))?;
        Ok(Json(model::attribute(attribute, &info)).into_response())
    })
    .await
    .map_err(F::error)
}

async fn delete_attribute<F: Flavor>(
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
        Ok(crate::no_content())
    })
    .await
    .map_err(F::error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewIndex {
    key: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(alias = "columns")]
    attributes: Vec<String>,
    #[serde(default)]
    orders: Option<Vec<String>>,
}

async fn create_index<F: Flavor>(
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
                    permdb::wire::quote(bad)
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
            .map(|i| model::index(i, &info, F::API))
            .unwrap_or(Value::Null);
        Ok((StatusCode::ACCEPTED, Json(index)).into_response())
    })
    .await
    .map_err(F::error)
}

async fn list_indexes<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), false)?;
        let client = caller(&db, &headers)?.client;
        let info = client.schema(&schema).collections().get(&coll)?;
        let indexes: Vec<Value> = info
            .indexes
            .iter()
            .map(|i| model::index(i, &info, F::API))
            .collect();
        Ok(Json(list::answer(indexes, &params, F::INDEX_LIST, "indexes")?).into_response())
    })
    .await
    .map_err(F::error)
}

async fn get_index<F: Flavor>(
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
            .ok_or_else(|| permdb::Error::not_found(permdb::ResourceKind::Index, &key))?;
        Ok(Json(model::index(index, &info, F::API)).into_response())
    })
    .await
    .map_err(F::error)
}

async fn delete_index<F: Flavor>(
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
        Ok(crate::no_content())
    })
    .await
    .map_err(F::error)
}

async fn list_documents<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        refuse_read_in_transaction(raw.as_deref())?;
        let params = list::params(raw.as_deref(), false)?;
        let client = caller(&db, &headers)?.client;
        let found = client
            .schema(&schema)
            .collection(&coll)
            .find(&params.queries)?;
        let documents = found
            .documents
            .iter()
            .map(F::document)
            .collect::<Result<Vec<_>, _>>()?;
        let total = if params.total { found.total } else { 0 };
        Ok(Json(json!({"total": total, F::DOCUMENT_LIST: documents})).into_response())
    })
    .await
    .map_err(F::error)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewDocument {
    #[serde(alias = "rowId")]
    document_id: String,
    data: Map<String, Value>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// One document, or Appwrite's bulk form: `documents` (or `rows`), each an object with its
/// fields, `$id` (or `unique()` when missing) and optional `$permissions`.
enum NewDocuments {
    One(NewDocument),
    Many(Bulk),
}

impl<'de> Deserialize<'de> for NewDocuments {
    /// By its keys: `documents` or `rows` is the bulk form, anything else one document
    /// (so each form's errors name its own fields).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let bulk = map.contains_key("documents") || map.contains_key("rows");
        let value = Value::Object(map);
        if bulk {
            Bulk::deserialize(value)
                .map(NewDocuments::Many)
                .map_err(D::Error::custom)
        } else {
            NewDocument::deserialize(value)
                .map(NewDocuments::One)
                .map_err(D::Error::custom)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Bulk {
    #[serde(alias = "rows")]
    documents: Vec<Map<String, Value>>,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// Most documents one bulk create may carry.
const MAX_BULK: usize = 1000;

async fn create_document<F: Flavor>(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    Body(body): Body<NewDocuments>,
) -> Result<Response, ApiError> {
    let b = match body {
        NewDocuments::One(b) => b,
        NewDocuments::Many(bulk) => {
            return create_documents::<F>(db, registry, headers, (schema, coll), bulk).await;
        }
    };
    blocking(move || {
        let permissions = parse_permissions(b.permissions)?;
        let caller = caller(&db, &headers)?;
        options.check_new_id(&caller, &b.document_id)?;
        if let Some(tx) = &b.transaction_id {
            let id = permdb::wire::new_id("document id", &b.document_id)?;
            let preview = staged::<F>(&db, (&schema, &coll), &id, &b.data, &permissions)?;
            let op = StagedOp::Create(target(schema, coll), id, b.data, permissions);
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(created(preview));
        }
        let c = caller.client.schema(&schema).collection(&coll);
        Ok(created(F::document(&c.create(
            &b.document_id,
            b.data,
            permissions,
        )?)?))
    })
    .await
    .map_err(F::error)
}

/// A number of an increment (see `transaction::wire::exact_number`).
fn exact_number(n: &serde_json::Number, what: &str) -> Result<f64, ApiError> {
    Ok(permdb::wire::exact_number(n, what)?)
}

/// Reads inside a transaction (`transactionId` on `getRow` and `listRows`) would have to
/// see its staged writes; permdb does not serve them, and says so rather than answer
/// from outside the transaction.
fn refuse_read_in_transaction(raw: Option<&str>) -> Result<(), ApiError> {
    let named =
        form_urlencoded::parse(raw.unwrap_or("").as_bytes()).any(|(k, _)| k == "transactionId");
    if named {
        return Err(ApiError::bad_request(
            "reads inside a transaction are not served: read before staging or after the commit",
        ));
    }
    Ok(())
}

fn target(schema: String, collection: String) -> Target {
    Target { schema, collection }
}

/// What a write staged in a transaction answers, as Appwrite: the document as given (no
/// sequence yet, the time of staging), since nothing is written before the commit.
fn staged<F: Flavor>(
    db: &Db,
    (schema, coll): (&str, &str),
    id: &str,
    data: &Map<String, Value>,
    permissions: &Option<Vec<Permission>>,
) -> Result<Value, ApiError> {
    F::document(&permdb::Document::unsaved(
        schema,
        coll,
        id,
        data.clone(),
        permissions.clone().unwrap_or_default(),
        db.now(),
    ))
}

/// A document of a bulk body (see `permdb::wire::split_bulk_document`).
pub(super) fn split_bulk_document(doc: Map<String, Value>) -> Result<BulkDocument, ApiError> {
    Ok(permdb::wire::split_bulk_document(doc)?)
}

/// The caller of a bulk write: API keys only, as Appwrite.
fn bulk_caller(db: &Db, headers: &HeaderMap) -> Result<crate::auth::Caller, ApiError> {
    let caller = caller(db, headers)?;
    if caller.via != crate::auth::Via::Key {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "user_unauthorized",
            "bulk writes need an API key",
        ));
    }
    Ok(caller)
}

/// The documents of a bulk body, at most [`MAX_BULK`].
fn bulk_documents(documents: Vec<Map<String, Value>>) -> Result<Vec<BulkDocument>, ApiError> {
    if documents.len() > MAX_BULK {
        return Err(ApiError::bad_request(format!(
            "{} documents in one bulk write, at most {MAX_BULK}",
            documents.len()
        )));
    }
    documents.into_iter().map(split_bulk_document).collect()
}

/// `{total, documents}` (or `rows`) for written documents.
fn bulk_answer<F: Flavor>(
    docs: &[permdb::Document],
    status: StatusCode,
) -> Result<Response, ApiError> {
    let list = docs
        .iter()
        .map(F::document)
        .collect::<Result<Vec<_>, _>>()?;
    let answer = json!({"total": list.len(), F::DOCUMENT_LIST: list});
    Ok((status, Json(answer)).into_response())
}

/// What a bulk write staged in a transaction answers, as Appwrite: its count, no documents.
fn bulk_staged<F: Flavor>(count: usize, status: StatusCode) -> Response {
    let answer = json!({"total": count, F::DOCUMENT_LIST: []});
    (status, Json(answer)).into_response()
}

/// The bulk create (`createDocuments`, `createRows`): API keys only, as Appwrite; all the
/// documents in one atomic write, or none. Answers `{total, documents}` (or `rows`).
async fn create_documents<F: Flavor>(
    db: Db,
    registry: Arc<Registry>,
    headers: HeaderMap,
    (schema, coll): (String, String),
    bulk: Bulk,
) -> Result<Response, ApiError> {
    blocking(move || {
        let caller = bulk_caller(&db, &headers)?;
        let mut docs = bulk_documents(bulk.documents)?;
        if let Some(tx) = &bulk.transaction_id {
            for doc in &mut docs {
                doc.0 = permdb::wire::new_id("document id", &doc.0)?;
            }
            let count = docs.len();
            let op = StagedOp::BulkCreate(target(schema, coll), docs);
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(bulk_staged::<F>(count, StatusCode::CREATED));
        }
        let c = caller.client.schema(&schema).collection(&coll);
        bulk_answer::<F>(&c.create_many(docs)?, StatusCode::CREATED)
    })
    .await
    .map_err(F::error)
}

/// `PUT .../documents` (`upsertDocuments`, `upsertRows`): API keys only; every document
/// created or updated in one atomic write, or none.
async fn upsert_documents<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    Body(bulk): Body<Bulk>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let caller = bulk_caller(&db, &headers)?;
        let docs = bulk_documents(bulk.documents)?;
        if docs.iter().any(|d| d.0 == permdb::UNIQUE_ID) {
            return Err(ApiError::bad_request(
                "an upsert names each document: give every one an $id",
            ));
        }
        if let Some(tx) = &bulk.transaction_id {
            let count = docs.len();
            let op = StagedOp::BulkUpsert(target(schema, coll), docs);
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(bulk_staged::<F>(count, StatusCode::OK));
        }
        let mut tx = caller.client.transaction();
        {
            let mut c = tx.collection(&schema, &coll);
            for (id, data, permissions) in &docs {
                c.upsert(id, data, permissions.clone())?;
            }
        }
        let written: Vec<permdb::Document> = tx
            .commit()?
            .into_iter()
            .filter_map(|o| match o {
                permdb::Outcome::Written(d) => Some(d),
                _ => None,
            })
            .collect();
        bulk_answer::<F>(&written, StatusCode::OK)
    })
    .await
    .map_err(F::error)
}

/// The body of an update or delete by queries.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ByQueries {
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    queries: Option<Vec<String>>,
    #[serde(default)]
    transaction_id: Option<String>,
}

impl ByQueries {
    fn queries(&self) -> Result<Vec<permdb::Query>, ApiError> {
        self.queries
            .iter()
            .flatten()
            .map(|q| permdb::Query::from_json(q).map_err(ApiError::from))
            .collect()
    }
}

/// `PATCH .../documents` (`updateDocuments`, `updateRows`): API keys only; `data` written
/// to every document `queries` find, in one atomic write (`Collection::update_where`).
async fn update_documents<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    Body(b): Body<ByQueries>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let caller = bulk_caller(&db, &headers)?;
        let queries = b.queries()?;
        let data = b.data.unwrap_or_default();
        if let Some(tx) = &b.transaction_id {
            let op = StagedOp::UpdateWhere(target(schema, coll), queries, data);
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(bulk_staged::<F>(0, StatusCode::OK));
        }
        let c = caller.client.schema(&schema).collection(&coll);
        bulk_answer::<F>(&c.update_where(&queries, data)?, StatusCode::OK)
    })
    .await
    .map_err(F::error)
}

/// `DELETE .../documents` (`deleteDocuments`, `deleteRows`): API keys only; every
/// document `queries` find deleted in one atomic write. Answers the deleted documents.
async fn delete_documents<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: ByQueries = optional_body(&body)?.unwrap_or(ByQueries {
        data: None,
        queries: None,
        transaction_id: None,
    });
    blocking(move || {
        let caller = bulk_caller(&db, &headers)?;
        if b.data.is_some() {
            return Err(ApiError::bad_request("a delete takes no data"));
        }
        let queries = b.queries()?;
        if let Some(tx) = &b.transaction_id {
            let op = StagedOp::DeleteWhere(target(schema, coll), queries);
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(bulk_staged::<F>(0, StatusCode::OK));
        }
        let c = caller.client.schema(&schema).collection(&coll);
        bulk_answer::<F>(&c.delete_where(&queries)?, StatusCode::OK)
    })
    .await
    .map_err(F::error)
}

/// A JSON object body that may be absent (Appwrite's SDKs send DELETE bodies only when
/// they have parameters).
fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("the JSON body does not fit: {e}"))),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(_) => Err(ApiError::bad_request("the body is not JSON")),
    }
}

async fn get_document<F: Flavor>(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        refuse_read_in_transaction(raw.as_deref())?;
        let client = caller(&db, &headers)?.client;
        let doc = client.schema(&schema).collection(&coll).get(&id)?;
        Ok(Json(F::document(&doc)?).into_response())
    })
    .await
    .map_err(F::error)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DocumentPatch {
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    transaction_id: Option<String>,
}

async fn update_document<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
    Body(b): Body<DocumentPatch>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let permissions = parse_permissions(b.permissions)?;
        let caller = caller(&db, &headers)?;
        let data = b.data.unwrap_or_default();
        if let Some(tx) = &b.transaction_id {
            let preview = staged::<F>(&db, (&schema, &coll), &id, &data, &permissions)?;
            let op = StagedOp::Update(target(schema, coll), id, data, permissions);
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(Json(preview).into_response());
        }
        let c = caller.client.schema(&schema).collection(&coll);
        let doc = c.update(&id, data, permissions)?;
        Ok(Json(F::document(&doc)?).into_response())
    })
    .await
    .map_err(F::error)
}

/// `PUT .../{id}`: Appwrite's upsert: create the document, or update it if it exists
/// and the caller may see it (`Collection::upsert`).
async fn upsert_document<F: Flavor>(
    State(db): State<Db>,
    Extension(options): Extension<Arc<ServerOptions>>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
    Body(b): Body<DocumentPatch>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let permissions = parse_permissions(b.permissions)?;
        let caller = caller(&db, &headers)?;
        let data = b.data.unwrap_or_default();
        // With assigned ids, a request without a key names no new document: it updates.
        let update_only = options.assigned_ids && caller.via != crate::auth::Via::Key;
        if let Some(tx) = &b.transaction_id {
            let preview = staged::<F>(&db, (&schema, &coll), &id, &data, &permissions)?;
            let target = target(schema, coll);
            let op = if update_only {
                StagedOp::Update(target, id, data, permissions)
            } else {
                if id == permdb::UNIQUE_ID {
                    return Err(permdb::Error::InvalidId(
                        "an upsert names its document: unique() is for create".into(),
                    )
                    .into());
                }
                StagedOp::Upsert(target, id, data, permissions)
            };
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(Json(preview).into_response());
        }
        let c = caller.client.schema(&schema).collection(&coll);
        let doc = if update_only {
            c.update(&id, data, permissions)?
        } else {
            c.upsert(&id, data, permissions)?
        };
        Ok(Json(F::document(&doc)?).into_response())
    })
    .await
    .map_err(F::error)
}

/// The body a single delete may carry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeleteBody {
    #[serde(default)]
    transaction_id: Option<String>,
}

async fn delete_document<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll, id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: Option<DeleteBody> = optional_body(&body)?;
    blocking(move || {
        let caller = caller(&db, &headers)?;
        if let Some(tx) = b.and_then(|b| b.transaction_id) {
            let op = StagedOp::Delete(target(schema, coll), id);
            registry.stage(&db, &caller, &tx, vec![op])?;
            return Ok(crate::no_content());
        }
        caller
            .client
            .schema(&schema)
            .collection(&coll)
            .delete(&id)?;
        Ok(crate::no_content())
    })
    .await
    .map_err(F::error)
}

/// `/v1/schemas/{schema}/collections/{collection}/documents`: the routes of Nuvix's
/// client (`client.schema(s).collection(c).find()` and the rest). Lists are
/// `{total, data}`; a document names its collection `$collection` and its schema
/// `$schema`, with `$sequence` a number, as Nuvix's server answers. The rules and errors
/// are Appwrite's.
pub(super) struct Nuvix;

impl Flavor for Nuvix {
    const API: Api = Api::Databases;
    const ROOT: &'static str = "schemas";
    const COLLECTIONS: &'static str = "collections";
    const ATTRIBUTES: &'static str = "attributes";
    const DOCUMENTS: &'static str = "documents";
    const DOCUMENT_LIST: &'static str = "data";
    const COLLECTION_LIST: &'static list::ListKind = &list::COLLECTIONS;
    const INDEX_LIST: &'static list::ListKind = &list::INDEXES;

    fn document(doc: &permdb::Document) -> Result<Value, ApiError> {
        let mut value = Legacy::document(doc)?;
        if let Value::Object(map) = &mut value {
            for (from, to) in [("$collectionId", "$collection"), ("$databaseId", "$schema")] {
                if let Some(v) = map.remove(from) {
                    map.insert(to.to_owned(), v);
                }
            }
            map.insert("$sequence".to_owned(), Value::from(doc.sequence()));
        }
        Ok(value)
    }

    fn error(e: ApiError) -> ApiError {
        e
    }
}

/// The body of an increment (`max`) or a decrement (`min`): `value` (1 by default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Step {
    #[serde(default)]
    value: Option<serde_json::Number>,
    #[serde(default)]
    max: Option<serde_json::Number>,
    #[serde(default)]
    min: Option<serde_json::Number>,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// `PATCH .../{id}/{attribute}/increment`: adds `value`, refused past `max`.
async fn increment_document<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll, id, attribute)): Path<(String, String, String, String)>,
    Body(b): Body<Step>,
) -> Result<Response, ApiError> {
    step::<F>(
        (db, registry),
        headers,
        (schema, coll, id, attribute),
        b,
        1.0,
    )
    .await
}

/// `PATCH .../{id}/{attribute}/decrement`: subtracts `value`, refused below `min`.
async fn decrement_document<F: Flavor>(
    State(db): State<Db>,
    Extension(registry): Extension<Arc<Registry>>,
    headers: HeaderMap,
    Path((schema, coll, id, attribute)): Path<(String, String, String, String)>,
    Body(b): Body<Step>,
) -> Result<Response, ApiError> {
    step::<F>(
        (db, registry),
        headers,
        (schema, coll, id, attribute),
        b,
        -1.0,
    )
    .await
}

/// Adds `sign` × `value` (`Collection::increment`), bounded by `max` going up and `min`
/// going down; the other bound is refused.
async fn step<F: Flavor>(
    (db, registry): (Db, Arc<Registry>),
    headers: HeaderMap,
    (schema, coll, id, attribute): (String, String, String, String),
    b: Step,
    sign: f64,
) -> Result<Response, ApiError> {
    blocking(move || {
        let exact =
            |n: Option<serde_json::Number>, what| n.map(|n| exact_number(&n, what)).transpose();
        let by = exact(b.value, "value")?.unwrap_or(1.0);
        let (max, min) = (exact(b.max, "max")?, exact(b.min, "min")?);
        if by < 0.0 {
            return Err(ApiError::bad_request(
                "value must not be negative: step the other way instead",
            ));
        }
        let (limit, other) = if sign > 0.0 { (max, min) } else { (min, max) };
        if other.is_some() {
            return Err(ApiError::bad_request(if sign > 0.0 {
                "an increment is bounded by max, not min"
            } else {
                "a decrement is bounded by min, not max"
            }));
        }
        let caller = caller(&db, &headers)?;
        if let Some(tx) = &b.transaction_id {
            let preview = staged::<F>(&db, (&schema, &coll), &id, &Map::new(), &None)?;
            let op = StagedOp::Increment {
                target: target(schema, coll),
                id,
                attribute,
                by: sign * by,
                limit,
            };
            registry.stage(&db, &caller, tx, vec![op])?;
            return Ok(Json(preview).into_response());
        }
        let c = caller.client.schema(&schema).collection(&coll);
        Ok(Json(F::document(&c.increment(
            &id,
            &attribute,
            sign * by,
            limit,
        )?)?)
        .into_response())
    })
    .await
    .map_err(F::error)
}
