//! The `document_json` fuzz check, shared by the fuzz target and the corpus replay:
//! any JSON as a document is stored and read back whole, or refused as bad input.

use serde_json::Value;

use crate::{AttributeSpec, Collection, CollectionSpec, Db, Error};

/// A temporary store with a typed and a schemaless collection to write documents into.
#[derive(Debug)]
pub struct DocumentTarget {
    typed: Collection,
    loose: Collection,
}

impl DocumentTarget {
    /// Makes the store. Fails only if a temporary store cannot be made.
    pub fn new() -> crate::Result<DocumentTarget> {
        let db = Db::temporary()?;
        let root = db.root();
        root.schemas().create("s", "S")?;
        let collections = root.schema("s").collections();
        collections.create(CollectionSpec::new("typed", "Typed"))?;
        collections.create(CollectionSpec::new("loose", "Loose"))?;
        for spec in [
            AttributeSpec::string("name", 20),
            AttributeSpec::integer("age"),
            AttributeSpec::float("score"),
            AttributeSpec::boolean("ok"),
            AttributeSpec::datetime("when"),
            AttributeSpec::email("mail"),
            AttributeSpec::enumeration("kind", ["a", "b"]),
            AttributeSpec::string("tags", 10).array(true),
        ] {
            collections.create_attribute("typed", spec)?;
        }
        Ok(DocumentTarget {
            typed: root.schema("s").collection("typed"),
            loose: root.schema("s").collection("loose"),
        })
    }

    /// Feeds `bytes`, when they are JSON, as a document to both collections. A refusal
    /// must be a bad-input error; an accepted document must read back as it was stored
    /// (in the schemaless collection: exactly as given) and be deletable.
    #[allow(clippy::panic, reason = "a fuzz check fails by panicking")]
    pub fn check(&self, bytes: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        for (c, exact) in [(&self.typed, false), (&self.loose, true)] {
            match c.create("d", value.clone(), None) {
                Ok(created) => {
                    let read = match c.get("d") {
                        Ok(doc) => doc,
                        Err(e) => panic!("stored document does not read back: {e}"),
                    };
                    assert!(read.data() == created.data(), "read back differs");
                    if exact {
                        assert!(
                            Some(read.data()) == value.as_object(),
                            "schemaless document changed"
                        );
                    }
                    if let Err(e) = c.delete("d") {
                        panic!("stored document does not delete: {e}");
                    }
                }
                Err(
                    Error::InvalidDocument(_) | Error::LimitExceeded(_) | Error::InvalidArgument(_),
                ) => {}
                Err(e) => panic!("not a bad-input refusal: {e:?}"),
            }
        }
    }
}
