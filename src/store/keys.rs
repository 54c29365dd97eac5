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
//! `index::container`'s compact forms instead of roaring's portable format. Format 4
//! encodes the records marked (codec) with postcard instead of bincode ([`record_kind`]
//! names them); nothing else changed.

/// Version of the on-disk format written by this build.
pub(crate) const FORMAT_VERSION: u32 = 4;

/// The records `store::codec` encodes, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    Schema,
    Collection,
    Document,
    FeedEntry,
    Tombstone,
    User,
    Session,
    ApiKey,
    Team,
    Membership,
    SigningKey,
}

#[cfg(all(feature = "format3-upgrade", any(test, feature = "fuzzing")))]
impl RecordKind {
    /// Every kind.
    pub(crate) const ALL: [RecordKind; 11] = [
        RecordKind::Schema,
        RecordKind::Collection,
        RecordKind::Document,
        RecordKind::FeedEntry,
        RecordKind::Tombstone,
        RecordKind::User,
        RecordKind::Session,
        RecordKind::ApiKey,
        RecordKind::Team,
        RecordKind::Membership,
        RecordKind::SigningKey,
    ];
}

/// The kind of codec record stored at `key` in `tree`; `None` for a value of any other
/// layout (integers, bitmaps, ids, JSON text, nothing).
///
/// INVARIANT (every-record-kind): every value written through `codec::encode` is stored
/// at a key this names, so that an upgrade re-encodes all of them (the format-3 fixtures
/// in tests/upgrade.rs read every kind back after an upgrade).
pub(crate) fn record_kind(tree: super::Tree, key: &[u8]) -> Option<RecordKind> {
    use super::Tree;
    match tree {
        Tree::Meta if key.starts_with(SCHEMA_PREFIX) => Some(RecordKind::Schema),
        Tree::Meta if key.starts_with(COLLECTIONS_PREFIX) => Some(RecordKind::Collection),
        Tree::Docs if key.starts_with(&FEED) => match key.get(FEED.len() + 4) {
            Some(&t) if t == ChangeTag::Doc as u8 => Some(RecordKind::FeedEntry),
            Some(&t) if t == ChangeTag::Tombstone as u8 => Some(RecordKind::Tombstone),
            _ => None,
        },
        Tree::Docs => Some(RecordKind::Document),
        Tree::Auth => match AuthTag::of(key)? {
            AuthTag::User => Some(RecordKind::User),
            AuthTag::Session => Some(RecordKind::Session),
            AuthTag::ApiKey => Some(RecordKind::ApiKey),
            AuthTag::Team => Some(RecordKind::Team),
            AuthTag::Membership => Some(RecordKind::Membership),
            AuthTag::SigningKey => Some(RecordKind::SigningKey),
            AuthTag::Email
            | AuthTag::Incarnation
            | AuthTag::UserSession
            | AuthTag::UserMembership
            | AuthTag::TeamMembership
            | AuthTag::UsedToken
            | AuthTag::TokenExpiry
            | AuthTag::UserPrefs
            | AuthTag::TeamPrefs => None,
        },
        Tree::Meta | Tree::DocIds | Tree::PermIndex | Tree::AttrIndex => None,
    }
}

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

/// Prefix of every collection record of every schema.
pub(crate) const COLLECTIONS_PREFIX: &[u8] = b"c";

pub(crate) fn collection_prefix(schema_id: &str) -> Vec<u8> {
    let mut k = cat(COLLECTIONS_PREFIX, schema_id.as_bytes());
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

/// The kinds of record in the auth tree, by the tag byte their keys start with: the only
/// place these bytes are written or read (`AuthTag::of` decodes a key's tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum AuthTag {
    /// `u` user_id -> UserRecord
    User = b'u',
    /// `e` lowercase email -> user id
    Email = b'e',
    /// `a` user_id -> the account's incarnation
    Incarnation = b'a',
    /// `s` session_id -> SessionRecord
    Session = b's',
    /// `S` user_id `/` session_id -> (empty)
    UserSession = b'S',
    /// `k` api_key_id -> ApiKeyRecord
    ApiKey = b'k',
    /// `t` team_id -> TeamRecord
    Team = b't',
    /// `m` membership_id -> MembershipRecord
    Membership = b'm',
    /// `M` user_id `/` membership_id -> (empty)
    UserMembership = b'M',
    /// `T` team_id `/` membership_id -> (empty)
    TeamMembership = b'T',
    /// `K` key_id:u64BE -> SigningKeyRecord
    SigningKey = b'K',
    /// `o` token_id:16 -> expires-at i64 LE
    UsedToken = b'o',
    /// `O` expires:i64BE token_id:16 -> (empty)
    TokenExpiry = b'O',
    /// `p` user_id -> the user's preferences
    UserPrefs = b'p',
    /// `P` team_id -> the team's preferences
    TeamPrefs = b'P',
}

impl AuthTag {
    const ALL: [AuthTag; 15] = [
        AuthTag::User,
        AuthTag::Email,
        AuthTag::Incarnation,
        AuthTag::Session,
        AuthTag::UserSession,
        AuthTag::ApiKey,
        AuthTag::Team,
        AuthTag::Membership,
        AuthTag::UserMembership,
        AuthTag::TeamMembership,
        AuthTag::SigningKey,
        AuthTag::UsedToken,
        AuthTag::TokenExpiry,
        AuthTag::UserPrefs,
        AuthTag::TeamPrefs,
    ];

    /// The kind of record an auth-tree key belongs to; `None` for a key of no kind.
    pub(crate) fn of(key: &[u8]) -> Option<AuthTag> {
        let first = *key.first()?;
        AuthTag::ALL.into_iter().find(|t| *t as u8 == first)
    }

    /// The prefix every key of this kind starts with.
    pub(crate) fn prefix(self) -> [u8; 1] {
        [self as u8]
    }
}

/// `tag` followed by `parts` joined with `/` (ids never contain `/`).
pub(crate) fn auth(tag: AuthTag, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![tag as u8];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// Prefix of every `tag parent "/" ...` key.
pub(crate) fn auth_children(tag: AuthTag, parent: &str) -> Vec<u8> {
    let mut k = auth(tag, &[parent]);
    k.push(b'/');
    k
}

/// Key of token signing key `key_id`.
pub(crate) fn signing_key(key_id: u64) -> Vec<u8> {
    cat(&AuthTag::SigningKey.prefix(), &key_id.to_be_bytes())
}

/// Key recording that one-time token `token_id` was used.
pub(crate) fn used_token(token_id: &[u8; 16]) -> Vec<u8> {
    cat(&AuthTag::UsedToken.prefix(), token_id)
}

/// Key of the same record by expiry, so that expired ones are found in order.
pub(crate) fn token_expiry(expires: i64, token_id: &[u8; 16]) -> Vec<u8> {
    let mut k = cat(&AuthTag::TokenExpiry.prefix(), &expires.to_be_bytes());
    k.extend_from_slice(token_id);
    k
}

/// Prefix of every container key of one bitmap in perm_index: `cid kind len role`.
/// (`kind` is `index::IndexKind`'s byte.)
pub(crate) fn bitmap_prefix(cid: u32, kind: u8, role: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + role.len());
    k.extend_from_slice(&collection_data(cid));
    k.push(kind);
    // Roles are at most 5 + 36 + 1 + 81 bytes, so the length fits one byte.
    k.push(u8::try_from(role.len()).unwrap_or(u8::MAX));
    k.extend_from_slice(role.as_bytes());
    k
}

/// The (collection, kind byte, role) a bitmap prefix names, as [`bitmap_prefix`] lays
/// them out; `None` for bytes of another shape.
pub(crate) fn bitmap_parts(prefix: &[u8]) -> Option<(u32, u8, &str)> {
    let cid = key_collection(prefix)?;
    let (kind, rest) = prefix.get(4..)?.split_first()?;
    let (len, role) = rest.split_first()?;
    (role.len() == usize::from(*len))
        .then(|| std::str::from_utf8(role).ok())
        .flatten()
        .map(|role| (cid, *kind, role))
}

/// Key of the container `high` (a sequence's high 16 bits) of the bitmap `prefix`.
pub(crate) fn container(prefix: &[u8], high: u16) -> Vec<u8> {
    cat(prefix, &high.to_be_bytes())
}

/// The high 16 bits at the end of container key `key` of a bitmap whose prefix is
/// `prefix_len` bytes long; `None` for a key of another length.
pub(crate) fn container_high(key: &[u8], prefix_len: usize) -> Option<u16> {
    match key.get(prefix_len..) {
        Some([a, b]) => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// The collection of any key in docs, doc_ids, perm_index or attr_index: its first four
/// bytes.
pub(crate) fn key_collection(key: &[u8]) -> Option<u32> {
    key.first_chunk::<4>().map(|c| u32::from_be_bytes(*c))
}

/// Bytes of an attribute index entry before its values: collection and index number.
pub(crate) const ATTR_ENTRY_PREFIX_LEN: usize = 6;

/// Prefix of every entry of attribute index `number` of collection `cid` in attr_index;
/// an entry continues with its encoded values and ends with the document's sequence.
pub(crate) fn attr_index(cid: u32, number: u16) -> Vec<u8> {
    cat(&collection_data(cid), &number.to_be_bytes())
}

/// The sequence at the end of an attribute index entry; `None` when it is too short.
pub(crate) fn attr_entry_seq(key: &[u8]) -> Option<u32> {
    let at = key.len().checked_sub(4)?;
    key.get(at..)?.try_into().ok().map(u32::from_be_bytes)
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
    fn every_auth_tag_decodes_to_itself_and_tags_are_distinct() {
        let mut bytes = std::collections::BTreeSet::new();
        for tag in AuthTag::ALL {
            assert!(bytes.insert(tag as u8), "{tag:?} shares its byte");
            assert_eq!(AuthTag::of(&auth(tag, &["x"])), Some(tag));
        }
        assert_eq!(AuthTag::of(b""), None);
        assert_eq!(AuthTag::of(b"z"), None);
        assert_eq!(AuthTag::of(&used_token(&[0; 16])), Some(AuthTag::UsedToken));
        assert_eq!(
            AuthTag::of(&token_expiry(5, &[0; 16])),
            Some(AuthTag::TokenExpiry)
        );
        assert_eq!(AuthTag::of(&signing_key(7)), Some(AuthTag::SigningKey));
    }

    #[test]
    fn collection_prefix_is_exact() {
        assert!(!collection("db2", "x").starts_with(&collection_prefix("db")));
        assert!(collection("db", "x").starts_with(&collection_prefix("db")));
    }
}

/// The changes feed's records live in the docs tree (so that a document change writes
/// one tree fewer: each tree a sled transaction spans costs), under this prefix, which
/// no document key has: documents are keyed `cid seq` and no collection is numbered
/// `u32::MAX` (`catalog::next_cid`). Then the collection's number (0 for records of
/// no collection), a tag, and the rest.
pub(crate) const FEED: [u8; 4] = [0xFF; 4];

/// Whether a docs-tree key is a document's (not a feed record's).
pub(crate) fn is_doc_key(key: &[u8]) -> bool {
    key.len() == 8 && !key.starts_with(&FEED)
}

/// The feed record `tag` of collection `cid` (0: of none) with `parts` after it.
pub(crate) fn feed(cid: u32, tag: ChangeTag, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = feed_of(cid);
    k.push(tag as u8);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Prefix of every feed record of collection `cid`.
pub(crate) fn feed_of(cid: u32) -> Vec<u8> {
    let mut k = FEED.to_vec();
    k.extend_from_slice(&cid.to_be_bytes());
    k
}

/// The last log sequence number given to a document change (8 bytes, big-endian),
/// written in the batch of the changes it counts.
pub(crate) fn last_lsn() -> Vec<u8> {
    feed(0, ChangeTag::LastLsn, &[])
}

/// The kinds of feed record, by their tag byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ChangeTag {
    /// `D` cid seq -> (the document's last change number, read roles it lost)
    Doc = b'D',
    /// `C` cid bucket -> bitmap of the live documents whose last change is in the bucket
    Changed = b'C',
    /// `L` cid bucket role -> of those, the ones that lost read for `role`
    Lost = b'L',
    /// `G` cid bucket -> bitmap of the documents deleted in the bucket (tombstones)
    Gone = b'G',
    /// `R` cid bucket role -> of those, the ones `role` could read when deleted
    GoneReaders = b'R',
    /// `M` cid bucket -> when the bucket's last tombstone was made (ms)
    GoneAt = b'M',
    /// `T` cid seq -> tombstone (id, number, ms)
    Tombstone = b'T',
    /// `U` user_id -> the number of the last change of the user's principal
    UserRoles = b'U',
    /// `A` -> the number of the last change of every principal (keys, signing keys)
    AllRoles = b'A',
    /// `Y` cid -> the number of the last change of the collection's rules; `Y` alone: of
    /// every collection's (a schema record changed)
    Rules = b'Y',
    /// `H` cid -> the lowest `since` the feed still answers (tombstones before it were
    /// purged); `H` alone: for every collection (a store older than the feed)
    Horizon = b'H',
    /// `l` -> the last log sequence number given out
    LastLsn = b'l',
}
