//! Helpers shared by the integration tests.

use permdb::{Collection, CollectionSpec, Db};

/// Creates schema `schema` (if missing) and the collection `spec` describes in it;
/// returns the root client's handle on the collection.
pub fn create_collection(db: &Db, schema: &str, spec: CollectionSpec) -> Collection {
    let root = db.root();
    if root.schemas().get(schema).is_err() {
        root.schemas().create(schema, schema).unwrap();
    }
    let id = root.schema(schema).collections().create(spec).unwrap().id;
    root.schema(schema).collection(&id)
}
