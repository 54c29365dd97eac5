//! `Document`: what callers get back, with Appwrite's JSON shape; and `DocRecord`,
//! what is stored for it (the sequence, collection and schema live in the key).

mod cache;

use std::fmt;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::quote;
use crate::options::Limits;
use crate::perm::{Grant, Permission};
use crate::store::{Store, Tree, WriteBatch, codec, keys};
use crate::timefmt;
use crate::value::{self, Node};

pub(crate) use cache::{DecodedDocument, DocumentCache, Loaded, Ticket};

/// A stored document, as a client sees it. Cloning is cheap: the permissions and the
/// attributes are shared (with the document cache too) until one of them is changed.
#[derive(Clone, PartialEq)]
pub struct Document {
    pub(crate) id: String,
    pub(crate) sequence: u64,
    pub(crate) collection_id: String,
    pub(crate) database_id: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) permissions: Arc<[Permission]>,
    pub(crate) data: Arc<Map<String, Value>>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id)
            .field("sequence", &self.sequence)
            .field("permissions", &self.permissions)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl Document {
    /// A document that is not stored (yet): what a write staged in a transaction
    /// answers, as Appwrite does, before the commit gives it a sequence. Created and
    /// updated at `at`; `$sequence` is 0.
    #[must_use]
    pub fn unsaved(
        schema: &str,
        collection: &str,
        id: &str,
        data: Map<String, Value>,
        permissions: Vec<Permission>,
        at: OffsetDateTime,
    ) -> Document {
        Document {
            id: id.to_owned(),
            sequence: 0,
            collection_id: collection.to_owned(),
            database_id: schema.to_owned(),
            created_at: at,
            updated_at: at,
            permissions: permissions.into(),
            data: Arc::new(data),
        }
    }

    /// `$id`
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
    /// `$sequence`: dense per collection, in creation order, never reused.
    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
    /// `$collectionId`
    #[must_use]
    pub fn collection_id(&self) -> &str {
        &self.collection_id
    }
    /// `$databaseId`: the schema the collection is in.
    #[must_use]
    pub fn database_id(&self) -> &str {
        &self.database_id
    }
    /// `$permissions`, with `write` expanded into update and delete.
    #[must_use]
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }
    /// `$createdAt`
    #[must_use]
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
    /// `$updatedAt`
    #[must_use]
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }
    /// An attribute's value; `None` when the document does not have it.
    #[must_use]
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.data.get(field)
    }
    /// All attributes (system fields excluded).
    #[must_use]
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }
}

const SYSTEM_FIELDS: [&str; 7] = [
    "$id",
    "$sequence",
    "$collectionId",
    "$databaseId",
    "$createdAt",
    "$updatedAt",
    "$permissions",
];

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(SYSTEM_FIELDS.len() + self.data.len()))?;
        map.serialize_entry("$id", &self.id)?;
        // A decimal string, as Appwrite sends it (its SDKs type `$sequence` as a string).
        map.serialize_entry("$sequence", &self.sequence.to_string())?;
        map.serialize_entry("$collectionId", &self.collection_id)?;
        map.serialize_entry("$databaseId", &self.database_id)?;
        map.serialize_entry("$createdAt", &timefmt::format(self.created_at))?;
        map.serialize_entry("$updatedAt", &timefmt::format(self.updated_at))?;
        map.serialize_entry("$permissions", &*self.permissions)?;
        for (k, v) in self.data.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let mut take = |field: &str| {
            map.remove(field)
                .ok_or_else(|| D::Error::custom(format!("missing field {field}")))
        };
        let string = |v: Value, field: &str| match v {
            Value::String(s) => Ok(s),
            _ => Err(D::Error::custom(format!("{field} must be a string"))),
        };
        let id = string(take("$id")?, "$id")?;
        let sequence = match take("$sequence")? {
            Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<u64>().ok(),
            Value::String(_) => None,
            other => other.as_u64(),
        }
        .ok_or_else(|| {
            D::Error::custom("$sequence must be an unsigned integer or its decimal string")
        })?;
        let collection_id = string(take("$collectionId")?, "$collectionId")?;
        let database_id = string(take("$databaseId")?, "$databaseId")?;
        let created_at = timefmt::parse(&string(take("$createdAt")?, "$createdAt")?)
            .map_err(D::Error::custom)?;
        let updated_at = timefmt::parse(&string(take("$updatedAt")?, "$updatedAt")?)
            .map_err(D::Error::custom)?;
        let permissions =
            Vec::<Permission>::deserialize(take("$permissions")?).map_err(D::Error::custom)?;
        Ok(Document {
            id,
            sequence,
            collection_id,
            database_id,
            created_at,
            updated_at,
            permissions: permissions.into(),
            data: Arc::new(map),
        })
    }
}

/// The page a `find` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentList {
    /// How many documents match the filters, ignoring limit, offset and cursor.
    pub total: u64,
    /// The page of documents.
    pub documents: Vec<Document>,
}

/// What the docs tree stores for one document (encoded by `store::codec`).
///
/// INVARIANT (record-head): its first fields are those of [`DocHead`], in that order, so
/// that the head decodes from a record's bytes without the attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DocRecord {
    pub(crate) id: String,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
    /// Normalized: sorted, no duplicates (`perm::Grant` holds no create or write).
    pub(crate) permissions: Vec<Grant>,
    /// The attributes object, flattened (see `value`).
    pub(crate) nodes: Vec<Node>,
}

/// A document record's leading fields (INVARIANT record-head): who may read it, without
/// decoding its attributes. What the changes feed needs of a change.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct DocHead {
    pub(crate) id: String,
    _created_ms: i64,
    _updated_ms: i64,
    pub(crate) permissions: Vec<Grant>,
}

impl DocHead {
    /// The head of a decoded record.
    pub(crate) fn of(record: &DocRecord) -> DocHead {
        DocHead {
            id: record.id.clone(),
            _created_ms: record.created_ms,
            _updated_ms: record.updated_ms,
            permissions: record.permissions.clone(),
        }
    }

    /// Decodes the head from a record's bytes (unsealed), naming `what` in an error.
    pub(crate) fn decode(bytes: &[u8], what: impl FnOnce() -> String) -> Result<DocHead> {
        codec::decode_head(bytes, what)
    }
}

/// Longest attribute name, in bytes.
pub const MAX_FIELD_NAME_LEN: usize = 255;

/// Checks a document's attributes as every write does: names of 1 to
/// [`MAX_FIELD_NAME_LEN`] bytes not starting with `$` (system fields), at most
/// `limits.max_fields` of them, nested at most `limits.max_depth` levels.
/// How errors name document `seq` of a collection (a corrupt record, say).
pub(crate) fn describe(seq: u32, schema_id: &str, collection_id: &str) -> String {
    format!("document {seq} of collection {schema_id}/{collection_id}")
}

pub(crate) fn check_object(map: &Map<String, Value>, limits: Limits) -> Result<()> {
    for key in map.keys() {
        if key.is_empty() || key.len() > MAX_FIELD_NAME_LEN {
            return Err(Error::InvalidDocument(format!(
                "attribute name {} must be 1 to {MAX_FIELD_NAME_LEN} bytes",
                quote(key)
            )));
        }
        if key.starts_with('$') {
            return Err(Error::InvalidDocument(format!(
                "attribute {}: names starting with '$' are reserved for system fields",
                quote(key)
            )));
        }
    }
    check_field_count(map, limits)?;
    // The document as a whole is one level: its values may nest `max_depth - 1` more.
    if map
        .values()
        .any(|v| crate::value::too_deep(v, limits.max_depth.saturating_sub(1)))
    {
        return Err(Error::LimitExceeded(format!(
            "document nested deeper than {} levels",
            limits.max_depth
        )));
    }
    Ok(())
}

/// Refuses a document of more top-level attributes than `limits` allow.
pub(crate) fn check_field_count(map: &Map<String, Value>, limits: Limits) -> Result<()> {
    if map.len() > limits.max_fields {
        return Err(Error::LimitExceeded(format!(
            "document has {} attributes, at most {}",
            map.len(),
            limits.max_fields
        )));
    }
    Ok(())
}

/// The record of a document: its attributes flattened (within `limits`' depth) and its
/// permissions as sorted, distinct grants (create and write give none).
pub(crate) fn make_record(
    id: &str,
    created_ms: i64,
    updated_ms: i64,
    permissions: &[Permission],
    data: &Map<String, Value>,
    limits: Limits,
) -> Result<DocRecord> {
    let mut nodes = Vec::new();
    let object = Value::Object(data.clone());
    value::flatten(&object, limits.max_depth, &mut nodes)
        .map_err(|e| Error::LimitExceeded(format!("document {e}")))?;
    let mut stored: Vec<Grant> = permissions
        .iter()
        .filter_map(Grant::of_permission)
        .collect();
    stored.sort();
    stored.dedup();
    Ok(DocRecord {
        id: id.to_owned(),
        created_ms,
        updated_ms,
        permissions: stored,
        nodes,
    })
}

/// Every document of collection `cid` (named `collection` in errors), by sequence: its
/// sequence and record, each checked and decoded.
pub(crate) fn scan_collection<'s>(
    store: &'s Store,
    cid: u32,
    collection: &'s str,
) -> impl Iterator<Item = Result<(u32, DocRecord)>> + 's {
    store
        .scan_prefix(
            Tree::Docs,
            &keys::collection_data(cid),
            crate::store::Direction::Forward,
        )
        .map(move |entry| {
            let (k, v) = entry?;
            let seq = keys::doc_seq(&k)
                .filter(|_| keys::is_doc_key(&k))
                .ok_or_else(|| {
                    Error::corrupt(format!("document key {:02x?}", &*k), "bad length")
                })?;
            let doc = codec::decode(&v, || format!("document {seq} of collection {collection}"))?;
            Ok((seq, doc))
        })
}

/// The head of document `seq` of collection `cid`, if it exists (its checksum is checked
/// as for the whole record).
pub(crate) fn load_head(store: &Store, cid: u32, seq: u32) -> Result<Option<DocHead>> {
    match store.get(Tree::Docs, &keys::doc(cid, seq))? {
        Some(bytes) => Ok(Some(DocHead::decode(&bytes, || {
            format!("document record {seq} of collection {cid}")
        })?)),
        None => Ok(None),
    }
}

impl DocRecord {
    /// The document's grants, for `perm::decide`.
    pub(crate) fn grants(&self) -> &[Grant] {
        &self.permissions
    }

    /// The attributes as a JSON map.
    pub(crate) fn data(&self, max_depth: usize) -> Result<Map<String, Value>> {
        let where_ = || format!("document {}", quote(&self.id));
        match value::rebuild(self.nodes.clone(), max_depth)
            .map_err(|e| Error::corrupt(where_(), e))?
        {
            Value::Object(map) => Ok(map),
            _ => Err(Error::corrupt(where_(), "attributes are not an object")),
        }
    }

    /// The node list without top-level field `key`, or `None` when the document lacks it.
    pub(crate) fn without_field(&self, key: &str, max_depth: usize) -> Result<Option<Vec<Node>>> {
        let where_ = || format!("document {}", quote(&self.id));
        let mut data = self.data(max_depth)?;
        if data.remove(key).is_none() {
            return Ok(None);
        }
        let mut nodes = Vec::new();
        value::flatten(&Value::Object(data), max_depth, &mut nodes)
            .map_err(|e| Error::corrupt(where_(), e))?;
        Ok(Some(nodes))
    }

    /// Converts to the public form; `seq`, collection and schema come from the key and context.
    pub(crate) fn into_document(
        self,
        sequence: u32,
        database_id: &str,
        collection_id: &str,
        max_depth: usize,
        where_: impl Fn() -> String,
    ) -> Result<Document> {
        Ok(
            DecodedDocument::of_record(self, max_depth, where_)?.to_document(
                sequence,
                database_id,
                collection_id,
            ),
        )
    }
}

/// Reads and decodes the record of document `seq` in collection `cid`.
pub(crate) fn load_record(store: &Store, cid: u32, seq: u32) -> Result<Option<DocRecord>> {
    match store.get(Tree::Docs, &keys::doc(cid, seq))? {
        Some(bytes) => Ok(Some(codec::decode(&bytes, || {
            format!("document record {seq} of collection {cid}")
        })?)),
        None => Ok(None),
    }
}

/// The sequence of document `id` in collection `cid`.
pub(crate) fn seq_of(store: &Store, cid: u32, id: &str) -> Result<Option<u32>> {
    match store.get(Tree::DocIds, &keys::doc_id(cid, id))? {
        Some(bytes) => <[u8; 4]>::try_from(&*bytes)
            .map(|b| Some(u32::from_be_bytes(b)))
            .map_err(|_| {
                Error::corrupt(
                    format!("document id entry {} of collection {cid}", quote(id)),
                    "not 4 bytes",
                )
            }),
        None => Ok(None),
    }
}

/// Encodes `record` into `batch` as document `seq` of collection `cid`, refusing one
/// larger than `limits.max_document_bytes` encoded.
pub(crate) fn put_record(
    batch: &mut WriteBatch,
    cid: u32,
    seq: u32,
    record: &DocRecord,
    limits: Limits,
) -> Result<()> {
    let bytes = codec::encode(record)?;
    if bytes.len() > limits.max_document_bytes {
        return Err(Error::LimitExceeded(format!(
            "document is {} bytes encoded, at most {}",
            bytes.len(),
            limits.max_document_bytes
        )));
    }
    batch.put(Tree::Docs, keys::doc(cid, seq), bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perm::{Permission, Role};

    /// INVARIANT record-head: the head decodes from a whole record's bytes and equals the
    /// record's own fields (a field added before `permissions` breaks this test).
    #[test]
    fn a_record_head_decodes_from_the_records_bytes() {
        let permissions: Vec<Grant> = [Role::user("u1"), Role::any()]
            .into_iter()
            .filter_map(|r| Grant::of_permission(&Permission::read(r)))
            .collect();
        let record = DocRecord {
            id: "d1".into(),
            created_ms: 1,
            updated_ms: 2,
            permissions,
            nodes: vec![
                Node::Object(1),
                Node::Str("k".into()),
                Node::Str("v".into()),
            ],
        };
        let bytes = codec::encode(&record).expect("encodes");
        let head = DocHead::decode(&bytes, || "test".into()).expect("decodes");
        assert_eq!(head, DocHead::of(&record));
        assert_eq!(head.permissions.len(), 2);
        // A record cut inside its head is refused, not misread.
        let cut = bytes.get(..5).unwrap_or_default();
        assert!(DocHead::decode(cut, || "test".into()).is_err());
    }
}
