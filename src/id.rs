//! Ids of schemas, collections, documents and users: validation and generation.
//! The rule is Appwrite's: 1 to 36 of `[A-Za-z0-9._-]`, not starting with `.`, `_` or `-`.

use crate::error::{Error, Result};

/// Longest id permdb accepts, in bytes (all id characters are ASCII).
pub const MAX_ID_LEN: usize = 36;

/// Generator of fresh ids, as Appwrite's `ID.unique()`.
#[derive(Debug, Clone, Copy)]
pub struct ID;

impl ID {
    /// A fresh 20-character id: 13 hex digits of the current time in
    /// microseconds (so ids sort roughly by creation) and 7 random hex digits.
    #[must_use]
    pub fn unique() -> String {
        let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
        let random: u32 = rand::random::<u32>() & 0x0fff_ffff;
        format!("{:013x}{:07x}", micros & 0x000f_ffff_ffff_ffff, random)
    }
}

/// The id to pass for a fresh one chosen by permdb, as in Appwrite: a document or user
/// created with this id gets [`ID::unique`]'s.
pub const UNIQUE_ID: &str = "unique()";

/// The id a new document or user gets: a fresh one for [`UNIQUE_ID`], else `id` checked.
pub fn new_id(what: &str, id: &str) -> Result<String> {
    if id == UNIQUE_ID {
        return Ok(ID::unique());
    }
    check_id(what, id)?;
    Ok(id.to_owned())
}

/// True for the characters an id may contain.
pub(crate) fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Why `s` is not a valid id, or `None` when it is.
pub(crate) fn id_fault(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("empty id".into());
    }
    if s.len() > MAX_ID_LEN {
        return Some(format!("id longer than {MAX_ID_LEN} characters"));
    }
    if let Some(c) = s.chars().find(|c| !is_id_char(*c)) {
        return Some(format!("character {c:?} not allowed in an id"));
    }
    if s.starts_with(['.', '_', '-']) {
        return Some("id may not start with '.', '_' or '-'".into());
    }
    None
}

/// Checks an id, naming what it identifies in the error.
pub(crate) fn check_id(what: &str, s: &str) -> Result<()> {
    match id_fault(s) {
        None => Ok(()),
        Some(fault) => Err(Error::InvalidId(format!("{what} {}: {fault}", quote(s)))),
    }
}

/// Quotes untrusted text for an error message, cut to 64 characters.
pub fn quote(s: &str) -> String {
    const SHOWN: usize = 64;
    match s.char_indices().nth(SHOWN) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_valid_and_distinct() {
        let a = ID::unique();
        let b = ID::unique();
        assert_eq!(a.len(), 20);
        assert_eq!(id_fault(&a), None);
        assert_ne!(a, b);
    }

    #[test]
    fn id_rule() {
        assert_eq!(id_fault("doc1"), None);
        assert_eq!(id_fault("a.b-c_d"), None);
        assert_eq!(id_fault(&"a".repeat(36)), None);
        assert!(id_fault("").is_some());
        assert!(id_fault(&"a".repeat(37)).is_some());
        assert!(id_fault("_a").is_some());
        assert!(id_fault("-a").is_some());
        assert!(id_fault(".a").is_some());
        assert!(id_fault("a b").is_some());
        assert!(id_fault("a:b").is_some());
        assert!(id_fault("é").is_some());
    }

    #[test]
    fn quote_cuts_long_text() {
        let q = quote(&"x".repeat(1000));
        assert!(q.len() < 80, "{q}");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
