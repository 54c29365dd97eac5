//! Schemas (Appwrite "databases") and collections: their stored records, the
//! public views of them, and create / get / list / update / delete.

use serde::{Deserialize, Serialize};

use crate::attribute::{AttributeRecord, AttributeSpec, MAX_ATTRIBUTES};
use crate::attribute::{QuerySchema, ValueKind};
use crate::document::DocRecord;
use crate::engine::Engine;
use crate::error::{Error, ResourceKind, Result};
use crate::id::{check_id, quote};
use crate::index::attr::{IndexRecord, IndexSpec, IndexType, MAX_INDEXES};
use crate::index::{Contribution, IndexEdits};
use crate::perm::decide::CollectionRules;
use crate::perm::{Permission, Target, normalize};
use crate::store::{Direction, Store, Tree, WriteBatch, codec, keys};
use crate::text::check_name;
use crate::timefmt;

/// How many keys one purge step deletes in a single atomic batch.
const PURGE_STEP: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SchemaRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CollectionRecord {
    /// Internal collection number, never reused: the prefix of the collection's data keys.
    pub(crate) cid: u32,
    pub(crate) schema_id: String,
    pub(crate) id: String,
    pub(crate) name: String,
    /// Canonical collection permissions (see `perm::normalize`), stored as their strings
    /// and parsed once, when the record is decoded.
    pub(crate) permissions: CollectionPermissions,
    pub(crate) document_security: bool,
    pub(crate) enabled: bool,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
    /// Declared attributes; empty means schemaless.
    pub(crate) attributes: Vec<AttributeRecord>,
    /// Declared indexes.
    pub(crate) indexes: Vec<IndexRecord>,
    /// The number the next index gets (its key prefix); never reused.
    pub(crate) next_index: u16,
}

/// A collection's permissions as decoded: parsed, or, when one of the stored strings does
/// not parse (a store written by a build with looser rules), kept as stored.
///
/// INVARIANT (no-skipped-grant): an unparsable list is never read as a smaller one. Every
/// permission decision on the collection refuses with `Corrupt` (`rules`), while the calls
/// that replace or remove the permissions (updating or deleting the collection or its
/// schema, revoking a deleted user's grants, `verify`) still work, so an admin can mend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CollectionPermissions {
    Parsed(Vec<Permission>),
    Unparsable { stored: Vec<String>, fault: String },
}

impl CollectionPermissions {
    fn parse(stored: Vec<String>) -> CollectionPermissions {
        let parsed: std::result::Result<Vec<Permission>, Error> =
            stored.iter().map(|p| p.parse()).collect();
        match parsed {
            Ok(permissions) => CollectionPermissions::Parsed(permissions),
            Err(e) => CollectionPermissions::Unparsable {
                stored,
                fault: e.to_string(),
            },
        }
    }

    /// The parsed permissions; `Corrupt`, naming the collection, when they do not parse.
    /// The permissions as their strings, parsed or not.
    pub(crate) fn strings(&self) -> Vec<String> {
        match self {
            CollectionPermissions::Parsed(p) => p.iter().map(ToString::to_string).collect(),
            CollectionPermissions::Unparsable { stored, .. } => stored.clone(),
        }
    }

    pub(crate) fn parsed(&self, collection: &str) -> Result<&[Permission]> {
        match self {
            CollectionPermissions::Parsed(p) => Ok(p),
            CollectionPermissions::Unparsable { fault, .. } => Err(Error::corrupt(
                format!("permissions of collection {}", quote(collection)),
                format!("{fault}; set them again with Collections::update"),
            )),
        }
    }

    /// Removes the permissions `gone` says to, returning whether any was; a stored string
    /// that does not parse is kept as it is.
    fn remove(&mut self, gone: impl Fn(&Permission) -> bool) -> bool {
        match self {
            CollectionPermissions::Parsed(p) => {
                let before = p.len();
                p.retain(|p| !gone(p));
                p.len() != before
            }
            CollectionPermissions::Unparsable { stored, .. } => {
                let before = stored.len();
                stored.retain(|s| !s.parse::<Permission>().is_ok_and(|p| gone(&p)));
                stored.len() != before
            }
        }
    }
}

impl Serialize for CollectionPermissions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            CollectionPermissions::Parsed(p) => p.serialize(s),
            CollectionPermissions::Unparsable { stored, .. } => stored.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CollectionPermissions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Vec::<String>::deserialize(d).map(CollectionPermissions::parse)
    }
}

impl CollectionRecord {
    /// What the query planner needs to know of this collection.
    pub(crate) fn query_schema(&self, max_depth: usize) -> Result<QuerySchema> {
        let specs = self.attribute_specs(max_depth)?;
        Ok(QuerySchema {
            attributes: (!specs.is_empty()).then(|| {
                specs
                    .iter()
                    .map(|a| (a.key.clone(), a.value_kind()))
                    .collect()
            }),
            fulltext: self
                .indexes
                .iter()
                .filter(|i| i.kind == IndexType::Fulltext)
                .filter_map(|i| i.attributes.first().cloned())
                .collect(),
        })
    }

    /// The declared attributes in their public form.
    pub(crate) fn attribute_specs(&self, max_depth: usize) -> Result<Vec<AttributeSpec>> {
        self.attributes
            .iter()
            .map(|a| a.to_spec(max_depth))
            .collect()
    }

    /// What `perm::decide` needs of the collection; `Corrupt` when its stored
    /// permissions do not parse (INVARIANT no-skipped-grant).
    pub(crate) fn rules(&self) -> Result<CollectionRules<'_>> {
        Ok(CollectionRules {
            id: &self.id,
            permissions: self.permissions.parsed(&self.id)?,
            document_security: self.document_security,
        })
    }
}

/// A schema, as returned by the schema calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaInfo {
    /// `$id`
    #[serde(rename = "$id")]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether clients may use it.
    pub enabled: bool,
    /// `$createdAt`, Appwrite's format.
    #[serde(rename = "$createdAt")]
    pub created_at: String,
    /// `$updatedAt`, Appwrite's format.
    #[serde(rename = "$updatedAt")]
    pub updated_at: String,
}

/// A collection, as returned by the collection calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionInfo {
    /// `$id`
    #[serde(rename = "$id")]
    pub id: String,
    /// The schema it is in.
    pub database_id: String,
    /// Display name.
    pub name: String,
    /// Collection-level permissions, `write` expanded.
    #[serde(rename = "$permissions")]
    pub permissions: Vec<Permission>,
    /// Whether document permissions are honoured.
    pub document_security: bool,
    /// Whether clients other than root may use it.
    pub enabled: bool,
    /// `$createdAt`, Appwrite's format.
    #[serde(rename = "$createdAt")]
    pub created_at: String,
    /// `$updatedAt`, Appwrite's format.
    #[serde(rename = "$updatedAt")]
    pub updated_at: String,
    /// Declared attributes (none: schemaless).
    pub attributes: Vec<AttributeSpec>,
    /// Declared indexes.
    pub indexes: Vec<IndexSpec>,
}

/// What a collection should be: used to create one and to update one.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    id: String,
    name: String,
    permissions: Vec<Permission>,
    document_security: bool,
    enabled: bool,
}

impl CollectionSpec {
    /// A collection `id` named `name`, with no permissions, document security off, enabled.
    #[must_use]
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> CollectionSpec {
        CollectionSpec {
            id: id.into(),
            name: name.into(),
            permissions: Vec::new(),
            document_security: false,
            enabled: true,
        }
    }

    /// Collection-level permissions (read, create, update, delete, write). Default none:
    /// only root sees or changes anything.
    #[must_use]
    pub fn permissions(
        mut self,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> CollectionSpec {
        self.permissions = permissions.into_iter().collect();
        self
    }

    /// Whether each document's own permissions also grant access. Default `false`.
    #[must_use]
    pub fn document_security(mut self, on: bool) -> CollectionSpec {
        self.document_security = on;
        self
    }

    /// Whether clients other than root may use the collection. Default `true`.
    #[must_use]
    pub fn enabled(mut self, on: bool) -> CollectionSpec {
        self.enabled = on;
        self
    }
}

fn schema_info(r: &SchemaRecord) -> Result<SchemaInfo> {
    Ok(SchemaInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        enabled: r.enabled,
        created_at: timefmt::format(
            timefmt::from_millis(r.created_ms).map_err(|e| Error::corrupt("schema", e))?,
        ),
        updated_at: timefmt::format(
            timefmt::from_millis(r.updated_ms).map_err(|e| Error::corrupt("schema", e))?,
        ),
    })
}

/// The public view of a collection record; `max_depth` is the store's nesting limit,
/// with which attribute defaults were stored.
pub(crate) fn collection_info(r: &CollectionRecord, max_depth: usize) -> Result<CollectionInfo> {
    let where_ = || format!("collection {}/{}", r.schema_id, r.id);
    let ts = |ms| {
        timefmt::from_millis(ms)
            .map(timefmt::format)
            .map_err(|e| Error::corrupt(where_(), e))
    };
    Ok(CollectionInfo {
        id: r.id.clone(),
        database_id: r.schema_id.clone(),
        name: r.name.clone(),
        permissions: r.permissions.parsed(&r.id)?.to_vec(),
        document_security: r.document_security,
        enabled: r.enabled,
        created_at: ts(r.created_ms)?,
        updated_at: ts(r.updated_ms)?,
        attributes: r.attribute_specs(max_depth)?,
        indexes: r.indexes.iter().map(IndexRecord::public).collect(),
    })
}

pub(crate) fn load_schema(store: &Store, id: &str) -> Result<Option<SchemaRecord>> {
    match store.get(Tree::Meta, &keys::schema(id))? {
        Some(b) => Ok(Some(codec::decode(&b, || {
            format!("schema record {}", quote(id))
        })?)),
        None => Ok(None),
    }
}

fn require_schema(store: &Store, id: &str) -> Result<SchemaRecord> {
    load_schema(store, id)?.ok_or_else(|| Error::not_found(ResourceKind::Schema, id))
}

/// Collection `collection_id` of schema `schema_id` as a client finds it: a disabled
/// schema or collection is hidden (`NotFound`) from every client but a `privileged`
/// one (root and API keys, which skip permissions). The one home of that rule: reads,
/// writes and live subscriptions all resolve through it.
pub(crate) fn resolve_collection(
    store: &Store,
    schema_id: &str,
    collection_id: &str,
    privileged: bool,
) -> Result<CollectionRecord> {
    if !load_schema(store, schema_id)?.is_some_and(|s| privileged || s.enabled) {
        return Err(Error::not_found(ResourceKind::Schema, schema_id));
    }
    load_collection(store, schema_id, collection_id)?
        .filter(|c| privileged || c.enabled)
        .ok_or_else(|| Error::not_found(ResourceKind::Collection, collection_id))
}

pub(crate) fn load_collection(
    store: &Store,
    schema_id: &str,
    id: &str,
) -> Result<Option<CollectionRecord>> {
    match store.get(Tree::Meta, &keys::collection(schema_id, id))? {
        Some(b) => Ok(Some(codec::decode(&b, || {
            format!("collection record {}/{}", quote(schema_id), quote(id))
        })?)),
        None => Ok(None),
    }
}

/// Every collection of every schema.
pub(crate) fn all_collections(store: &Store) -> Result<Vec<CollectionRecord>> {
    store
        .scan_prefix(Tree::Meta, keys::COLLECTIONS_PREFIX, Direction::Forward)
        .map(|entry| {
            let (k, v) = entry?;
            codec::decode(&v, || {
                format!("collection record {}", String::from_utf8_lossy(&k))
            })
        })
        .collect()
}

/// Writes `coll` again without the permissions whose role `revoked` names, if it has any.
pub(crate) fn drop_grants(
    batch: &mut WriteBatch,
    coll: &CollectionRecord,
    revoked: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut r = coll.clone();
    if !r
        .permissions
        .remove(|p: &Permission| revoked(&p.role().to_string()))
    {
        return Ok(());
    }
    batch.put(
        Tree::Meta,
        keys::collection(&r.schema_id, &r.id),
        codec::encode(&r)?,
    );
    Ok(())
}

/// The collection, or `NotFound` for a missing schema or collection.
pub(crate) fn require_collection(
    store: &Store,
    schema_id: &str,
    id: &str,
) -> Result<CollectionRecord> {
    require_schema(store, schema_id)?;
    load_collection(store, schema_id, id)?
        .ok_or_else(|| Error::not_found(ResourceKind::Collection, id))
}

pub(crate) fn create_schema(db: &Engine, id: &str, name: &str) -> Result<SchemaInfo> {
    check_id("schema id", id)?;
    check_name("schema", name)?;
    let now = db.now_ms();
    db.write(|store, batch| {
        if load_schema(store, id)?.is_some() {
            return Err(Error::conflict(
                ResourceKind::Schema,
                id,
                format!("schema {} already exists", quote(id)),
            ));
        }
        let r = SchemaRecord {
            id: id.into(),
            name: name.into(),
            enabled: true,
            created_ms: now,
            updated_ms: now,
        };
        batch.put(Tree::Meta, keys::schema(id), codec::encode(&r)?);
        schema_info(&r)
    })
}

/// A schema record as a dump gives it, checked as `create_schema` checks its arguments
/// (the importer writes into a new store, so uniqueness is its to check).
pub(crate) fn import_schema(r: SchemaRecord) -> Result<(Vec<u8>, Vec<u8>)> {
    check_id("schema id", &r.id)?;
    check_name("schema", &r.name)?;
    Ok((keys::schema(&r.id), codec::encode(&r)?))
}

/// A collection as a dump gives it, checked as creating it, its attributes and its
/// indexes would be, numbered `cid` (indexes numbered from 1 in order). Writes the
/// record and the next collection number into `batch`.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per field of a dump line"
)]
pub(crate) fn import_collection(
    batch: &mut WriteBatch,
    cid: u32,
    schema: &SchemaRecord,
    id: &str,
    name: &str,
    permissions: &[Permission],
    document_security: bool,
    enabled: bool,
    (created_ms, updated_ms): (i64, i64),
    attributes: &[AttributeSpec],
    indexes: &[IndexSpec],
    max_depth: usize,
) -> Result<CollectionRecord> {
    check_id("collection id", id)?;
    check_name("collection", name)?;
    let permissions = normalize(permissions, Target::Collection)?;
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Error::LimitExceeded(format!(
            "at most {MAX_ATTRIBUTES} attributes"
        )));
    }
    let mut records = Vec::with_capacity(attributes.len());
    for (i, spec) in attributes.iter().enumerate() {
        spec.validate()?;
        if attributes.iter().take(i).any(|a| a.key == spec.key) {
            return Err(Error::InvalidArgument(format!(
                "attribute {} appears twice",
                quote(&spec.key)
            )));
        }
        records.push(AttributeRecord::from_spec(spec, max_depth)?);
    }
    if indexes.len() > MAX_INDEXES {
        return Err(Error::LimitExceeded(format!(
            "at most {MAX_INDEXES} indexes"
        )));
    }
    let mut stored = Vec::with_capacity(indexes.len());
    for (i, spec) in indexes.iter().enumerate() {
        check_id("index key", &spec.key)?;
        if indexes.iter().take(i).any(|x| x.key == spec.key) {
            return Err(Error::InvalidArgument(format!(
                "index {} appears twice",
                quote(&spec.key)
            )));
        }
        check_index(spec, attributes)?;
        stored.push(IndexRecord {
            key: spec.key.clone(),
            kind: spec.kind,
            attributes: spec.attributes.clone(),
            number: u16::try_from(i + 1)
                .map_err(|_| Error::LimitExceeded("too many indexes".into()))?,
        });
    }
    let next = cid
        .checked_add(1)
        .filter(|n| *n < u32::MAX)
        .ok_or_else(|| Error::LimitExceeded("collection numbers exhausted".into()))?;
    let next_index = u16::try_from(stored.len() + 1)
        .map_err(|_| Error::LimitExceeded("too many indexes".into()))?;
    let r = CollectionRecord {
        cid,
        schema_id: schema.id.clone(),
        id: id.to_owned(),
        name: name.to_owned(),
        permissions: CollectionPermissions::Parsed(permissions),
        document_security,
        enabled,
        created_ms,
        updated_ms,
        attributes: records,
        indexes: stored,
        next_index,
    };
    batch.put(
        Tree::Meta,
        keys::NEXT_COLLECTION.to_vec(),
        next.to_le_bytes().to_vec(),
    );
    batch.put(
        Tree::Meta,
        keys::collection(&schema.id, id),
        codec::encode(&r)?,
    );
    Ok(r)
}

pub(crate) fn get_schema(db: &Engine, id: &str) -> Result<SchemaInfo> {
    schema_info(&require_schema(&db.store, id)?)
}

pub(crate) fn list_schemas(db: &Engine) -> Result<Vec<SchemaInfo>> {
    let mut out = Vec::new();
    for entry in db
        .store
        .scan_prefix(Tree::Meta, keys::SCHEMA_PREFIX, Direction::Forward)
    {
        let (k, v) = entry?;
        let r: SchemaRecord = codec::decode(&v, || format!("schema record at {:02x?}", &*k))?;
        out.push(schema_info(&r)?);
    }
    Ok(out)
}

pub(crate) fn update_schema(
    db: &Engine,
    id: &str,
    name: &str,
    enabled: bool,
) -> Result<SchemaInfo> {
    check_name("schema", name)?;
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_schema(store, id)?;
        r.name = name.into();
        r.enabled = enabled;
        r.updated_ms = now;
        batch.put(Tree::Meta, keys::schema(id), codec::encode(&r)?);
        schema_info(&r)
    })
}

/// Deletes a schema and every collection in it (their documents and indexes are purged).
pub(crate) fn delete_schema(db: &Engine, id: &str) -> Result<()> {
    let cids = db.write(|store, batch| {
        require_schema(store, id)?;
        batch.remove(Tree::Meta, keys::schema(id));
        let mut cids = Vec::new();
        for entry in store.scan_prefix(Tree::Meta, &keys::collection_prefix(id), Direction::Forward)
        {
            let (k, v) = entry?;
            let r: CollectionRecord =
                codec::decode(&v, || format!("collection record at {:02x?}", &*k))?;
            unlink_collection(batch, &r);
            cids.push(r.cid);
        }
        Ok(cids)
    })?;
    cids.into_iter().try_for_each(|cid| purge(db, cid))
}

pub(crate) fn next_cid(store: &Store) -> Result<u32> {
    match store.get(Tree::Meta, keys::NEXT_COLLECTION)? {
        None => Ok(1),
        Some(b) => <[u8; 4]>::try_from(&*b)
            .map(u32::from_le_bytes)
            .map_err(|_| Error::corrupt("collection counter", "not 4 bytes")),
    }
}

pub(crate) fn create_collection(
    db: &Engine,
    schema_id: &str,
    spec: &CollectionSpec,
) -> Result<CollectionInfo> {
    check_id("collection id", &spec.id)?;
    check_name("collection", &spec.name)?;
    let permissions = normalize(&spec.permissions, Target::Collection)?;
    let now = db.now_ms();
    db.write(|store, batch| {
        require_schema(store, schema_id)?;
        if load_collection(store, schema_id, &spec.id)?.is_some() {
            return Err(Error::conflict(
                ResourceKind::Collection,
                &spec.id,
                format!(
                    "collection {} already exists in schema {}",
                    quote(&spec.id),
                    quote(schema_id)
                ),
            ));
        }
        let cid = next_cid(store)?;
        // INVARIANT (feed-prefix): no collection is numbered u32::MAX, the first bytes of
        // every feed record in the docs tree (`keys::FEED`).
        let next = cid
            .checked_add(1)
            .filter(|n| *n < u32::MAX)
            .ok_or_else(|| Error::LimitExceeded("collection numbers exhausted".into()))?;
        batch.put(
            Tree::Meta,
            keys::NEXT_COLLECTION.to_vec(),
            next.to_le_bytes().to_vec(),
        );
        let r = CollectionRecord {
            cid,
            schema_id: schema_id.into(),
            id: spec.id.clone(),
            name: spec.name.clone(),
            permissions: CollectionPermissions::Parsed(permissions),
            document_security: spec.document_security,
            enabled: spec.enabled,
            created_ms: now,
            updated_ms: now,
            attributes: Vec::new(),
            indexes: Vec::new(),
            next_index: 1,
        };
        batch.put(
            Tree::Meta,
            keys::collection(schema_id, &spec.id),
            codec::encode(&r)?,
        );
        collection_info(&r, db.options.limits.max_depth)
    })
}

pub(crate) fn get_collection(db: &Engine, schema_id: &str, id: &str) -> Result<CollectionInfo> {
    collection_info(
        &require_collection(&db.store, schema_id, id)?,
        db.options.limits.max_depth,
    )
}

pub(crate) fn list_collections(db: &Engine, schema_id: &str) -> Result<Vec<CollectionInfo>> {
    require_schema(&db.store, schema_id)?;
    let mut out = Vec::new();
    for entry in db.store.scan_prefix(
        Tree::Meta,
        &keys::collection_prefix(schema_id),
        Direction::Forward,
    ) {
        let (k, v) = entry?;
        let r: CollectionRecord =
            codec::decode(&v, || format!("collection record at {:02x?}", &*k))?;
        out.push(collection_info(&r, db.options.limits.max_depth)?);
    }
    Ok(out)
}

/// Replaces name, permissions, document security and enabled; documents are untouched.
pub(crate) fn update_collection(
    db: &Engine,
    schema_id: &str,
    spec: &CollectionSpec,
) -> Result<CollectionInfo> {
    check_name("collection", &spec.name)?;
    let permissions = normalize(&spec.permissions, Target::Collection)?;
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_collection(store, schema_id, &spec.id)?;
        r.name = spec.name.clone();
        r.permissions = CollectionPermissions::Parsed(permissions);
        r.document_security = spec.document_security;
        r.enabled = spec.enabled;
        r.updated_ms = now;
        batch.put(
            Tree::Meta,
            keys::collection(schema_id, &spec.id),
            codec::encode(&r)?,
        );
        collection_info(&r, db.options.limits.max_depth)
    })
}

/// Declares a new attribute. Existing documents are not rewritten: they lack it.
pub(crate) fn create_attribute(
    db: &Engine,
    schema_id: &str,
    id: &str,
    spec: &AttributeSpec,
) -> Result<CollectionInfo> {
    spec.validate()?;
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_collection(store, schema_id, id)?;
        if r.attributes.iter().any(|a| a.key() == spec.key) {
            return Err(Error::conflict(
                ResourceKind::Attribute,
                &spec.key,
                format!("attribute {} already exists", quote(&spec.key)),
            ));
        }
        if r.attributes.len() >= MAX_ATTRIBUTES {
            return Err(Error::LimitExceeded(format!(
                "at most {MAX_ATTRIBUTES} attributes"
            )));
        }
        r.attributes.push(AttributeRecord::from_spec(
            spec,
            db.options.limits.max_depth,
        )?);
        r.updated_ms = now;
        batch.put(
            Tree::Meta,
            keys::collection(schema_id, id),
            codec::encode(&r)?,
        );
        collection_info(&r, db.options.limits.max_depth)
    })
}

/// Removes an attribute and its values from every document, in one atomic write.
pub(crate) fn delete_attribute(db: &Engine, schema_id: &str, id: &str, key: &str) -> Result<()> {
    let now = db.now_ms();
    let max_depth = db.options.limits.max_depth;
    db.write(|store, batch| {
        let mut r = require_collection(store, schema_id, id)?;
        let before = r.attributes.len();
        r.attributes.retain(|a| a.key() != key);
        if r.attributes.len() == before {
            return Err(Error::not_found(ResourceKind::Attribute, key));
        }
        r.updated_ms = now;
        batch.put(
            Tree::Meta,
            keys::collection(schema_id, id),
            codec::encode(&r)?,
        );
        for entry in store.scan_prefix(
            Tree::Docs,
            &keys::collection_data(r.cid),
            Direction::Forward,
        ) {
            let (k, v) = entry?;
            let mut doc: DocRecord = codec::decode(&v, || format!("document at {:02x?}", &*k))?;
            if let Some(stripped) = doc.without_field(key, max_depth)? {
                doc.nodes = stripped;
                batch.put(Tree::Docs, k.to_vec(), codec::encode(&doc)?);
            }
        }
        Ok(())
    })
}

/// Creates an index and fills it from the collection's documents, in one atomic write.
pub(crate) fn create_index(
    db: &Engine,
    schema_id: &str,
    id: &str,
    spec: &IndexSpec,
) -> Result<CollectionInfo> {
    check_id("index key", &spec.key)?;
    let max_depth = db.options.limits.max_depth;
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_collection(store, schema_id, id)?;
        if r.indexes.iter().any(|i| i.key == spec.key) {
            return Err(Error::conflict(
                ResourceKind::Index,
                &spec.key,
                format!("index {} already exists", quote(&spec.key)),
            ));
        }
        if r.indexes.len() >= MAX_INDEXES {
            return Err(Error::LimitExceeded(format!(
                "at most {MAX_INDEXES} indexes"
            )));
        }
        let specs = r.attribute_specs(max_depth)?;
        check_index(spec, &specs)?;
        let number = r.next_index;
        r.next_index = number.checked_add(1).ok_or_else(|| {
            Error::LimitExceeded("index numbers of the collection exhausted".into())
        })?;
        let index = IndexRecord {
            key: spec.key.clone(),
            kind: spec.kind,
            attributes: spec.attributes.clone(),
            number,
        };
        let with_new: Vec<IndexRecord> = r.indexes.iter().cloned().chain([index]).collect();
        let mut edits = IndexEdits::default();
        for entry in store.scan_prefix(
            Tree::Docs,
            &keys::collection_data(r.cid),
            Direction::Forward,
        ) {
            let (k, v) = entry?;
            let seq = keys::doc_seq(&k).ok_or_else(|| {
                Error::corrupt(format!("document key {:02x?}", &*k), "bad length")
            })?;
            let doc: DocRecord = codec::decode(&v, || format!("document at {:02x?}", &*k))?;
            let data = doc.data(max_depth)?;
            // The new index's part: what the document contributes under the new index
            // list beyond what it contributes under the old one.
            Contribution::apply_change(
                store,
                batch,
                &mut edits,
                r.cid,
                (&doc.id, seq),
                &Contribution::of(r.cid, &r.indexes, seq, doc.grants(), &data),
                &Contribution::of(r.cid, &with_new, seq, doc.grants(), &data),
            )?;
        }
        edits.write(store, batch)?;
        r.indexes = with_new;
        r.updated_ms = now;
        batch.put(
            Tree::Meta,
            keys::collection(schema_id, id),
            codec::encode(&r)?,
        );
        collection_info(&r, db.options.limits.max_depth)
    })
}

fn check_index(spec: &IndexSpec, attributes: &[AttributeSpec]) -> Result<()> {
    let bad = |m: String| {
        Err(Error::InvalidArgument(format!(
            "index {}: {m}",
            quote(&spec.key)
        )))
    };
    if spec.attributes.is_empty() || spec.attributes.len() > 8 {
        return bad("needs 1 to 8 attributes".into());
    }
    if spec.kind == IndexType::Fulltext && spec.attributes.len() != 1 {
        return bad("a fulltext index covers exactly one attribute".into());
    }
    for a in &spec.attributes {
        let Some(attr) = attributes.iter().find(|x| &x.key == a) else {
            return bad(format!(
                "attribute {} is not in the collection's schema",
                quote(a)
            ));
        };
        if attr.array {
            return bad(format!(
                "attribute {} is an array; arrays cannot be indexed",
                quote(a)
            ));
        }
        if spec.kind == IndexType::Fulltext && attr.value_kind() != ValueKind::String {
            return bad(format!("attribute {} is not a string", quote(a)));
        }
    }
    Ok(())
}

/// Drops an index and frees its entries, in one atomic write.
pub(crate) fn delete_index(db: &Engine, schema_id: &str, id: &str, key: &str) -> Result<()> {
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_collection(store, schema_id, id)?;
        let pos = r
            .indexes
            .iter()
            .position(|i| i.key == key)
            .ok_or_else(|| Error::not_found(ResourceKind::Index, key))?;
        let index = r.indexes.remove(pos);
        index.drop_entries(store, r.cid, batch)?;
        r.updated_ms = now;
        batch.put(
            Tree::Meta,
            keys::collection(schema_id, id),
            codec::encode(&r)?,
        );
        Ok(())
    })
}

pub(crate) fn delete_collection(db: &Engine, schema_id: &str, id: &str) -> Result<()> {
    let cid = db.write(|store, batch| {
        let r = require_collection(store, schema_id, id)?;
        unlink_collection(batch, &r);
        Ok(r.cid)
    })?;
    purge(db, cid)
}

/// Makes a collection unreachable at once and marks its data for purging.
fn unlink_collection(batch: &mut WriteBatch, r: &CollectionRecord) {
    batch.remove(Tree::Meta, keys::collection(&r.schema_id, &r.id));
    batch.remove(Tree::Meta, keys::counters(r.cid));
    batch.put(Tree::Meta, keys::purge(r.cid), Vec::new());
}

/// Deletes an unlinked collection's documents and indexes in bounded steps, then its purge mark.
/// Safe to interrupt: the data is unreachable (collection numbers are never reused) and
/// `resume_purges` finishes the job on the next open.
fn purge(db: &Engine, cid: u32) -> Result<()> {
    loop {
        let done = db.write(|store, batch| {
            let mut n = 0;
            let data = keys::collection_data(cid).to_vec();
            let parts = [
                (Tree::PermIndex, data.clone()),
                (Tree::Docs, data.clone()),
                (Tree::DocIds, data.clone()),
                (Tree::AttrIndex, data),
                // The changes feed's records of the collection.
                (Tree::Docs, keys::feed_of(cid)),
            ];
            for (tree, prefix) in parts {
                for entry in store.scan_prefix(tree, &prefix, Direction::Forward) {
                    if n >= PURGE_STEP {
                        return Ok(false);
                    }
                    batch.remove(tree, entry?.0.to_vec());
                    n += 1;
                }
            }
            batch.remove(Tree::Meta, keys::purge(cid));
            Ok(true)
        })?;
        if done {
            return Ok(());
        }
    }
}

/// Finishes purges interrupted by a crash. Reads only the purge marks, not the data.
pub(crate) fn resume_purges(db: &Engine) -> Result<()> {
    let mut cids = Vec::new();
    for entry in db
        .store
        .scan_prefix(Tree::Meta, keys::PURGE_PREFIX, Direction::Forward)
    {
        let (k, _) = entry?;
        let cid = k
            .get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| Error::corrupt(format!("purge mark {:02x?}", &*k), "bad key length"))?;
        cids.push(cid);
    }
    cids.into_iter().try_for_each(|cid| purge(db, cid))
}

/// Per-collection counters: the next sequence to assign and the number of live documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) next_seq: u32,
    pub(crate) live: u64,
}

impl Counters {
    pub(crate) fn load(store: &Store, cid: u32) -> Result<Counters> {
        match store.get(Tree::Meta, &keys::counters(cid))? {
            None => Ok(Counters {
                next_seq: 1,
                live: 0,
            }),
            Some(b) => {
                let bytes: [u8; 12] = (*b).try_into().map_err(|_| {
                    Error::corrupt(format!("counters of collection {cid}"), "not 12 bytes")
                })?;
                let (seq, live) = bytes.split_at(4);
                Ok(Counters {
                    next_seq: u32::from_le_bytes(seq.try_into().unwrap_or_default()),
                    live: u64::from_le_bytes(live.try_into().unwrap_or_default()),
                })
            }
        }
    }

    pub(crate) fn put(self, batch: &mut WriteBatch, cid: u32) {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&self.next_seq.to_le_bytes());
        v.extend_from_slice(&self.live.to_le_bytes());
        batch.put(Tree::Meta, keys::counters(cid), v);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::perm::{Action, Role};
    use crate::{Db, Error};

    fn record(permissions: CollectionPermissions) -> CollectionRecord {
        CollectionRecord {
            cid: 7,
            schema_id: "s".into(),
            id: "c".into(),
            name: "c".into(),
            permissions,
            document_security: true,
            enabled: true,
            created_ms: 0,
            updated_ms: 0,
            attributes: Vec::new(),
            indexes: Vec::new(),
            next_index: 0,
        }
    }

    /// The record as format 3 wrote it before permissions were parsed at decode: the
    /// same fields, the permissions as strings.
    #[derive(Serialize)]
    struct StoredAsStrings {
        cid: u32,
        schema_id: String,
        id: String,
        name: String,
        permissions: Vec<String>,
        document_security: bool,
        enabled: bool,
        created_ms: i64,
        updated_ms: i64,
        attributes: Vec<AttributeRecord>,
        indexes: Vec<IndexRecord>,
        next_index: u16,
    }

    fn as_strings(permissions: &[&str]) -> Vec<u8> {
        codec::encode(&StoredAsStrings {
            cid: 7,
            schema_id: "s".into(),
            id: "c".into(),
            name: "c".into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            document_security: true,
            enabled: true,
            created_ms: 0,
            updated_ms: 0,
            attributes: Vec::new(),
            indexes: Vec::new(),
            next_index: 0,
        })
        .unwrap()
    }

    #[test]
    fn parsed_permissions_are_stored_exactly_as_their_strings_were() {
        let perms = vec![
            Permission::new(Action::Create, Role::users()),
            Permission::new(Action::Read, Role::any()),
        ];
        let bytes = codec::encode(&record(CollectionPermissions::Parsed(perms.clone()))).unwrap();
        assert_eq!(bytes, as_strings(&["create(\"users\")", "read(\"any\")"]));
        let back: CollectionRecord = codec::decode(&bytes, || "collection".into()).unwrap();
        assert_eq!(
            back.permissions,
            CollectionPermissions::Parsed(perms.clone())
        );
        assert_eq!(back.rules().unwrap().permissions, perms.as_slice());
    }

    #[test]
    fn an_unparsable_permission_is_kept_as_stored_and_refuses_every_decision() {
        let bytes = as_strings(&["read(\"any\")", "reed(\"any\")"]);
        let back: CollectionRecord = codec::decode(&bytes, || "collection".into()).unwrap();
        assert!(matches!(
            back.permissions,
            CollectionPermissions::Unparsable { .. }
        ));
        let err = back
            .rules()
            .expect_err("never read as the smaller list [read(any)]");
        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
        assert_eq!(
            codec::encode(&back).unwrap(),
            bytes,
            "written back as it was stored"
        );
    }

    /// A store holding such a record: documents are refused, and the admin can still see
    /// it in `verify`, delete users (revocation) and set the permissions again.
    #[test]
    fn an_admin_mends_a_collection_whose_permissions_do_not_parse() {
        let db = Db::temporary().unwrap();
        let root = db.root();
        root.schemas().create("s", "S").unwrap();
        let spec = CollectionSpec::new("c", "C")
            .permissions([Permission::read(Role::user("u1"))])
            .document_security(true);
        root.schema("s").collections().create(spec.clone()).unwrap();
        let c = root.schema("s").collection("c");
        c.create("d", json!({"a": 1}), None).unwrap();
        root.users()
            .create("u1", "u1@example.com", "password-u1", None)
            .unwrap();
        // Damage that passes the checksum: a permission this build does not parse.
        let engine = &db.inner;
        engine
            .write(|store, batch| {
                let mut r = require_collection(store, "s", "c")?;
                r.permissions = CollectionPermissions::Unparsable {
                    stored: vec!["read(\"user:u1\")".into(), "reed(\"any\")".into()],
                    fault: String::new(),
                };
                batch.put(Tree::Meta, keys::collection("s", "c"), codec::encode(&r)?);
                Ok(())
            })
            .unwrap();
        let u1 = root.impersonate("u1").unwrap();
        let refused = u1.schema("s").collection("c").find(&[]);
        assert!(matches!(refused, Err(Error::Corrupt { .. })), "{refused:?}");
        assert!(matches!(c.get("d"), Err(Error::Corrupt { .. })));
        let report = db.verify().unwrap();
        assert_eq!(report.problems, 1, "{:?}", report.details);
        assert!(
            report.details.iter().any(|d| d.contains("s/c")),
            "{:?}",
            report.details
        );
        // Revocation drops the grant it can read and keeps the one it cannot.
        root.users().delete("u1").unwrap();
        let r = require_collection(&db.inner.store, "s", "c").unwrap();
        match &r.permissions {
            CollectionPermissions::Unparsable { stored, .. } => {
                assert_eq!(stored, &["reed(\"any\")"]);
            }
            other => panic!("expected the unparsable list, got {other:?}"),
        }
        // Setting the permissions again mends it.
        root.schema("s").collections().update(spec).unwrap();
        assert_eq!(c.get("d").unwrap().id(), "d");
        assert_eq!(db.verify().unwrap().problems, 0);
    }
}
