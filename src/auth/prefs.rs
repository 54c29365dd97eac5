//! Preferences: one JSON object per user (`auth "p" user_id`) and per team
//! (`auth "P" team_id`), replaced whole on update, as Appwrite's `prefs`.

use serde_json::{Map, Value};

use super::teams::require_team;
use super::users::require_user;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::keys::AuthTag;
use crate::store::{Store, Tree, WriteBatch, keys};

/// Largest preferences object, as JSON text, in bytes (Appwrite's limit: 64 KiB).
pub const MAX_PREFS_BYTES: usize = 65_536;
/// Deepest nesting of arrays and objects in preferences, the object itself included.
pub const MAX_PREFS_DEPTH: usize = 32;

/// Whose preferences: a user's or a team's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    User(&'a str),
    Team(&'a str),
}

impl Owner<'_> {
    fn key(self) -> Vec<u8> {
        match self {
            Owner::User(id) => keys::auth(AuthTag::UserPrefs, &[id]),
            Owner::Team(id) => keys::auth(AuthTag::TeamPrefs, &[id]),
        }
    }

    /// The owner must exist (a user or team not found is `NotFound`).
    fn require(self, store: &Store) -> Result<()> {
        match self {
            Owner::User(id) => require_user(store, id).map(drop),
            Owner::Team(id) => require_team(store, id).map(drop),
        }
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The preferences as stored: JSON text of an object, within the limits.
pub(crate) fn encode(prefs: &Map<String, Value>) -> Result<Vec<u8>> {
    let text = serde_json::to_vec(prefs)
        .map_err(|e| Error::InvalidArgument(format!("preferences: {e}")))?;
    if text.len() > MAX_PREFS_BYTES {
        return Err(Error::LimitExceeded(format!(
            "preferences of {} bytes as JSON, at most {MAX_PREFS_BYTES}",
            text.len()
        )));
    }
    let levels = 1 + prefs.values().map(depth).max().unwrap_or(0);
    if levels > MAX_PREFS_DEPTH {
        return Err(Error::LimitExceeded(format!(
            "preferences nested {levels} levels deep, at most {MAX_PREFS_DEPTH}"
        )));
    }
    Ok(text)
}

/// The owner's preferences: an empty object until set. Stored bytes that are not a JSON
/// object are `Corrupt`.
pub(crate) fn load(store: &Store, owner: Owner<'_>) -> Result<Map<String, Value>> {
    let key = owner.key();
    let Some(bytes) = store.get(Tree::Auth, &key)? else {
        return Ok(Map::new());
    };
    let what = || format!("preferences {}", String::from_utf8_lossy(&key));
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::corrupt(what(), "not a JSON object")),
        Err(e) => Err(Error::corrupt(what(), e)),
    }
}

/// Replaces the owner's preferences (an empty object removes them); returns them.
pub(crate) fn replace(
    db: &Engine,
    owner: Owner<'_>,
    prefs: Map<String, Value>,
) -> Result<Map<String, Value>> {
    let bytes = encode(&prefs)?;
    db.write(|store, batch| {
        owner.require(store)?;
        if prefs.is_empty() {
            batch.remove(Tree::Auth, owner.key());
        } else {
            batch.put(Tree::Auth, owner.key(), bytes.clone());
        }
        Ok(())
    })?;
    Ok(prefs)
}

/// Writes the owner's preferences into `batch`, checked as [`replace`] checks them
/// (nothing for an empty object); the owner is the caller's to check.
pub(crate) fn put(
    batch: &mut WriteBatch,
    owner: Owner<'_>,
    prefs: &Map<String, Value>,
) -> Result<()> {
    if !prefs.is_empty() {
        batch.put(Tree::Auth, owner.key(), encode(prefs)?);
    }
    Ok(())
}

/// Removes the owner's preferences into `batch` (with the user or team).
pub(crate) fn remove(batch: &mut WriteBatch, owner: Owner<'_>) {
    batch.remove(Tree::Auth, owner.key());
}
