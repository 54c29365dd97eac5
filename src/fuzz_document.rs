//! The fuzz checks that need the crate's internals, shared by the fuzz targets and the
//! corpus replay (`corpus_replay.rs`): `document_json` (any JSON as a document is stored
//! and read back whole, or refused as bad input), `stored_document` and `index_container`.
//! The last two hang off [`DocumentTarget`] as associated functions because it is the one
//! item of this module that `crate::fuzzing` re-exports.

use roaring::RoaringBitmap;
use serde_json::Value;

use crate::document::DocRecord;
use crate::perm::Grant;
use crate::store::codec;
use crate::{AttributeSpec, Collection, CollectionSpec, Db, Error};

/// Nesting limit the stored-document check decodes with (as `fuzzing::decode_document`).
const MAX_DEPTH: usize = 32;

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

    /// The `stored_document` check: a stored document record read back from arbitrary
    /// bytes is an error, or a document that serializes and that re-encodes (as a write
    /// would store it) to a record which decodes back to the same record and document.
    #[allow(clippy::panic, reason = "a fuzz check fails by panicking")]
    pub fn check_stored_document(bytes: &[u8]) {
        let Ok(record) = codec::decode::<DocRecord>(bytes, || "document".into()) else {
            return;
        };
        let Ok(doc) = record
            .clone()
            .into_document(1, "s", "c", MAX_DEPTH, || "document".into())
        else {
            return;
        };
        // A decoded document always serializes.
        if let Err(e) = serde_json::to_string(&doc) {
            panic!("decoded document does not serialize: {e}");
        }
        // Re-encoding what decoded must succeed and give back the same record and document.
        let mut nodes = Vec::new();
        if let Err(e) =
            crate::value::flatten(&Value::Object((*doc.data).clone()), MAX_DEPTH, &mut nodes)
        {
            panic!("decoded attributes do not flatten again: {e}");
        }
        let permissions: Vec<Grant> = doc
            .permissions
            .iter()
            .map(|p| match Grant::of_permission(p) {
                Some(grant) => grant,
                None => panic!("stored permission decoded to {p}, which documents do not hold"),
            })
            .collect();
        assert!(
            permissions == record.permissions,
            "permissions re-encode as {permissions:?}, stored as {:?}",
            record.permissions
        );
        let again = DocRecord {
            id: doc.id.clone(),
            created_ms: crate::timefmt::to_millis(doc.created_at),
            updated_ms: crate::timefmt::to_millis(doc.updated_at),
            permissions,
            nodes,
        };
        assert!(
            (again.created_ms, again.updated_ms) == (record.created_ms, record.updated_ms),
            "times re-encode as {:?}, stored as {:?}",
            (again.created_ms, again.updated_ms),
            (record.created_ms, record.updated_ms)
        );
        let encoded = match codec::encode(&again) {
            Ok(encoded) => encoded,
            Err(e) => panic!("decoded document does not encode again: {e}"),
        };
        let back = match codec::decode::<DocRecord>(&encoded, || "re-encoded document".into()) {
            Ok(back) => back,
            Err(e) => panic!("re-encoded record does not decode: {e}"),
        };
        assert!(back == again, "record changed through encode and decode");
        match back.into_document(1, "s", "c", MAX_DEPTH, || "re-encoded document".into()) {
            Ok(doc2) => assert!(
                doc2 == doc,
                "document changed through re-encoding: {doc:?} became {doc2:?}"
            ),
            Err(e) => panic!("re-encoded record does not convert to a document: {e}"),
        }
    }

    /// The `index_container` check: stored container bytes decode to an error, or to a
    /// non-empty set of low 16-bit values that the format's rules (module doc of
    /// `index::container`) also read from those bytes, that moves with the key's high
    /// bits, and that encodes, in the smallest form, to bytes that decode to the same set.
    #[allow(clippy::panic, reason = "a fuzz check fails by panicking")]
    pub fn check_container(bytes: &[u8]) {
        let decoded = crate::index::decode_container_bytes(bytes);
        let expected = container_by_the_rules(bytes);
        let values = match (decoded, expected) {
            (Ok(values), Some(expected)) => {
                assert!(
                    values == expected,
                    "decoded {values:?}, the format's rules read {expected:?}"
                );
                values
            }
            (Err(_), None) => return,
            (Ok(values), None) => panic!("decoded {values:?} from bytes the format refuses"),
            (Err(e), Some(expected)) => {
                panic!("refused ({e}) bytes the format reads as {expected:?}")
            }
        };
        assert!(!values.is_empty(), "decoded an empty container");
        assert!(
            values.max().is_some_and(|max| max <= 0xFFFF),
            "a value outside the container's 16-bit range: {values:?}"
        );
        let count = values.iter().count();
        assert!(
            u64::try_from(count).ok() == Some(values.len()),
            "len() is {} but iteration yields {count}",
            values.len()
        );
        // Re-encoding: smallest form, decodes to the same set, and the same bytes when the
        // input already had the form the encoder picks (each form has one encoding per set).
        let encoded = crate::index::encode_container(&values);
        match crate::index::decode_container_bytes(&encoded) {
            Ok(again) => assert!(
                again == values,
                "re-encoded {values:?} decodes to {again:?}"
            ),
            Err(e) => panic!("re-encoded {values:?} does not decode: {e}"),
        }
        let (form, size) = smallest_form(&values);
        assert!(
            (encoded.first().copied(), encoded.len()) == (Some(form), size),
            "encoded as form {:?} in {} bytes; the smallest is form {form} in {size}",
            encoded.first(),
            encoded.len()
        );
        if bytes.first() == encoded.first() {
            assert!(
                bytes == encoded.as_slice(),
                "one set, one form, two encodings"
            );
        }
        // The high bits are in the key, not the bytes: the same lows under high bits 7
        // encode the same.
        let moved: RoaringBitmap = values.iter().map(|v| (7 << 16) | v).collect();
        assert!(
            crate::index::encode_container(&moved) == encoded,
            "the encoding depends on the high bits"
        );
    }
}

/// The set docs of `index::container` describe for `bytes` (under high bits 0), value by
/// value and independently of the decoder; `None` when the bytes break a rule.
fn container_by_the_rules(bytes: &[u8]) -> Option<RoaringBitmap> {
    const BITMAP_BYTES: usize = 8192;
    // Anything larger than the tag and a full bitmap is corrupt.
    if bytes.len() > 1 + BITMAP_BYTES {
        return None;
    }
    let (&tag, body) = bytes.split_first()?;
    let u16s = || {
        body.chunks_exact(2).map(|c| {
            u32::from(u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ]))
        })
    };
    let mut lows: Vec<u32> = Vec::new();
    match tag {
        // 1 to 4,096 values, strictly increasing.
        1 if body.len() % 2 == 0 && body.len() <= BITMAP_BYTES => {
            for v in u16s() {
                if lows.last().is_some_and(|last| *last >= v) {
                    return None;
                }
                lows.push(v);
            }
        }
        // Bit i, LSB first.
        2 if body.len() == BITMAP_BYTES => {
            for (i, byte) in body.iter().enumerate() {
                for bit in 0..8 {
                    if byte & (1 << bit) != 0 {
                        lows.push(u32::try_from(i * 8 + bit).ok()?);
                    }
                }
            }
        }
        // (start, extra) pairs: start..=start+extra, increasing, apart, inside 0..=0xFFFF.
        3 if body.len() % 4 == 0 => {
            let pairs: Vec<u32> = u16s().collect();
            for run in pairs.chunks_exact(2) {
                let (start, extra) = (run.first().copied()?, run.get(1).copied()?);
                let end = start + extra;
                if end > 0xFFFF || lows.last().is_some_and(|last| last + 1 >= start) {
                    return None;
                }
                lows.extend(start..=end);
            }
        }
        _ => return None,
    }
    if lows.is_empty() {
        return None;
    }
    Some(lows.into_iter().collect())
}

/// The form (tag) and encoded size the format's rule asks for: runs when strictly
/// smaller than both others, else the array when it is no larger than the bitmap.
fn smallest_form(values: &RoaringBitmap) -> (u8, usize) {
    const BITMAP_BYTES: usize = 8192;
    let mut runs = 0usize;
    let mut previous: Option<u32> = None;
    for v in values {
        if previous.is_none_or(|p| p + 1 != v) {
            runs += 1;
        }
        previous = Some(v);
    }
    let array = 2 * usize::try_from(values.len()).unwrap_or(usize::MAX / 2);
    let (runs, bitmap) = (4 * runs, BITMAP_BYTES);
    if runs < array.min(bitmap) {
        (3, 1 + runs)
    } else if array <= bitmap {
        (1, 1 + array)
    } else {
        (2, 1 + bitmap)
    }
}
