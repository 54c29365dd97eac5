//! Byte layouts of every key permdb stores. Integers in keys are big-endian so
//! that byte order is numeric order; integers in values are little-endian.
//!
//! ```text
//! meta       "v"                              -> format version, u32 LE
//! meta       "g"                              -> next collection number, u32 LE
//! meta       "s" schema_id                    -> SchemaRecord (codec)
//! meta       "c" schema_id "/" collection_id  -> CollectionRecord (codec)
//! meta       "n" cid:u32BE                    -> next sequence u32 LE, live documents u64 LE
//! meta       "p" cid:u32BE                    -> (empty) collection waiting to be purged
//! docs       cid:u32BE seq:u32BE              -> DocRecord (codec)
//! doc_ids    cid:u32BE document_id            -> seq u32 BE
//! perm_index cid:u32BE kind:u8 len:u8 role hi:u16BE -> one Roaring container (see index)
//! meta       "i"                              -> store id, 16 random bytes (signed into tokens)
//! attr_index cid:u32BE index:u16BE tuple seq:u32BE -> (empty) key/unique index entry (see index::attr)
//! perm_index cid kind=4 len "index:word" hi     -> fulltext word bitmap container
//! auth       "u" user_id                      -> UserRecord
//! auth       "e" lowercase email              -> user id
//! auth       "a" user_id                      -> 16 random bytes: the account's incarnation
//! auth       "s" session_id                   -> SessionRecord
//! auth       "S" user_id "/" session_id       -> (empty) sessions of a user
//! auth       "k" api_key_id                   -> ApiKeyRecord
//! auth       "t" team_id                      -> TeamRecord
//! auth       "m" membership_id                -> MembershipRecord
//! auth       "M" user_id "/" membership_id    -> (empty) memberships of a user
//! auth       "T" team_id "/" membership_id    -> (empty) memberships of a team
//! auth       "K" key_id:u64BE                 -> SigningKeyRecord
//! auth       "o" token_id:16                  -> expires-at i64 LE: one-time token used
//! auth       "O" expires:i64BE token_id:16    -> (empty) the same, by expiry, for cleanup
//! auth       "p" user_id                      -> the user's preferences, JSON object text
//! auth       "P" team_id                      -> the team's preferences, JSON object text
//! ```
//! Ids never contain `/` (see `id`), so `"c" schema_id "/"` is an exact prefix.
//!
//! Every value above is stored followed by a 4-byte CRC-32 of (tree, key, value) (since
//! format 2; see `frame`), checked on every read. Format 3 stores index containers in
//! `index::container`'s compact forms instead of roaring's portable format.

/// Version of the on-disk format written by this build.
pub(crate) const FORMAT_VERSION: u32 = 3;

pub(crate) const VERSION: &[u8] = b"v";
pub(crate) const NEXT_COLLECTION: &[u8] = b"g";

pub(crate) fn schema(id: &str) -> Vec<u8> {
    cat(b"s", id.as_bytes())
}

pub(crate) const SCHEMA_PREFIX: &[u8] = b"s";

pub(crate) fn collection(schema_id: &str, id: &str) -> Vec<u8> {
    let mut k = collection_prefix(schema_id);
    k.extend_from_slice(id.as_bytes());
    k
}

pub(crate) fn collection_prefix(schema_id: &str) -> Vec<u8> {
    let mut k = cat(b"c", schema_id.as_bytes());
    k.push(b'/');
    k
}

pub(crate) fn counters(cid: u32) -> Vec<u8> {
    cat(b"n", &cid.to_be_bytes())
}

pub(crate) fn purge(cid: u32) -> Vec<u8> {
    cat(b"p", &cid.to_be_bytes())
}

pub(crate) const PURGE_PREFIX: &[u8] = b"p";

pub(crate) const STORE_ID: &[u8] = b"i";

/// `tag` followed by `parts` joined with `/` (ids never contain `/`).
pub(crate) fn auth(tag: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![tag];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// Prefix of every `tag parent "/" ...` key.
pub(crate) fn auth_children(tag: u8, parent: &str) -> Vec<u8> {
    let mut k = auth(tag, &[parent]);
    k.push(b'/');
    k
}

/// Key of a document in the docs tree.
pub(crate) fn doc(cid: u32, seq: u32) -> Vec<u8> {
    cat(&cid.to_be_bytes(), &seq.to_be_bytes())
}

/// The sequence in a docs-tree key.
pub(crate) fn doc_seq(key: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = key.get(4..8)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Key of a document id in the doc_ids tree.
pub(crate) fn doc_id(cid: u32, id: &str) -> Vec<u8> {
    cat(&cid.to_be_bytes(), id.as_bytes())
}

/// Prefix shared by every key of one collection in docs, doc_ids and perm_index.
pub(crate) fn collection_data(cid: u32) -> [u8; 4] {
    cid.to_be_bytes()
}

/// The smallest key greater than every key that starts with `prefix`, if any.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len());
    k.extend_from_slice(a);
    k.extend_from_slice(b);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn doc_keys_sort_by_sequence() {
        assert!(doc(1, 255) < doc(1, 256));
        assert!(doc(1, u32::MAX) < doc(2, 0));
    }

    #[test]
    fn collection_prefix_is_exact() {
        assert!(!collection("db2", "x").starts_with(&collection_prefix("db")));
        assert!(collection("db", "x").starts_with(&collection_prefix("db")));
    }
}
