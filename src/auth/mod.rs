//! Accounts: users and their passwords, sessions, API keys, teams and memberships,
//! and the throttle on failed sign-ins. Records live in the `auth` tree (see store::keys).

pub(crate) mod keys;
pub(crate) mod password;
pub(crate) mod prefs;
pub(crate) mod sessions;
pub(crate) mod teams;
pub(crate) mod throttle;
pub(crate) mod users;

use serde::Serialize;
use serde::de::DeserializeOwned;

use std::collections::BTreeSet;

use crate::error::Result;
use crate::store::keys::AuthTag;
use crate::store::{Direction, Store, Tree, WriteBatch, codec};

/// Reads and decodes one auth record.
pub(crate) fn load<T: DeserializeOwned>(store: &Store, key: &[u8]) -> Result<Option<T>> {
    match store.get(Tree::Auth, key)? {
        Some(b) => Ok(Some(codec::decode(&b, || {
            format!("auth record {}", String::from_utf8_lossy(key))
        })?)),
        None => Ok(None),
    }
}

pub(crate) fn put<T: Serialize>(batch: &mut WriteBatch, key: Vec<u8>, value: &T) -> Result<()> {
    batch.put(Tree::Auth, key, codec::encode(value)?);
    Ok(())
}

/// Every record under `prefix`, decoded.
pub(crate) fn scan<T: DeserializeOwned>(store: &Store, prefix: &[u8]) -> Result<Vec<T>> {
    store
        .scan_prefix(Tree::Auth, prefix, Direction::Forward)
        .map(|entry| {
            let (k, v) = entry?;
            codec::decode(&v, || {
                format!("auth record {}", String::from_utf8_lossy(&k))
            })
        })
        .collect()
}

/// The last `/`-separated part of every key under `prefix` (ids listed under a parent).
pub(crate) fn child_ids(store: &Store, prefix: &[u8]) -> Result<Vec<String>> {
    store
        .scan_prefix(Tree::Auth, prefix, Direction::Forward)
        .map(|entry| {
            let (k, _) = entry?;
            Ok(String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned())
        })
        .collect()
}

/// The auth layer's epoch rule (`engine::PrincipalRule`): whether a batch may change or
/// revoke a principal. Any write to users, API keys, teams, memberships or signing keys,
/// and the removal of a session; new sessions and one-time token bookkeeping change no
/// existing principal.
pub(crate) fn changes_principals(batch: &WriteBatch) -> bool {
    batch.ops().any(|(tree, key, value)| {
        tree == Tree::Auth
            && match AuthTag::of(key) {
                Some(AuthTag::Session | AuthTag::UserSession) => value.is_none(),
                Some(AuthTag::Email | AuthTag::UsedToken | AuthTag::TokenExpiry) => false,
                // Every other kind, and a key of no kind: fail closed.
                _ => true,
            }
    })
}

/// Whose principals a committed batch may have changed: [`changes_principals`] narrowed
/// to the users its keys name, so that live subscriptions of others are not rechecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Affected {
    Nobody,
    Users(BTreeSet<String>),
    /// API keys, token signing keys, a key of no kind, or a membership whose user the
    /// batch does not name: every principal (fail closed).
    Everyone,
}

/// Who `batch` may have changed the principal of (see [`Affected`]).
pub(crate) fn affected_principals(batch: &WriteBatch) -> Affected {
    let mut users = BTreeSet::new();
    let (mut memberships, mut named_memberships) = (0usize, 0usize);
    let (mut ended_sessions, mut named_sessions) = (0usize, 0usize);
    for (tree, key, value) in batch.ops() {
        if tree != Tree::Auth {
            continue;
        }
        let rest = || String::from_utf8_lossy(key.get(1..).unwrap_or_default()).into_owned();
        let parent = || {
            let rest = key.get(1..).unwrap_or_default();
            let end = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
            String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned()
        };
        match AuthTag::of(key) {
            Some(AuthTag::User | AuthTag::Incarnation) => {
                users.insert(rest());
            }
            Some(AuthTag::UserSession) if value.is_none() => {
                named_sessions += 1;
                users.insert(parent());
            }
            Some(AuthTag::Session) if value.is_none() => ended_sessions += 1,
            Some(AuthTag::UserMembership) => {
                named_memberships += 1;
                users.insert(parent());
            }
            Some(AuthTag::Membership) => memberships += 1,
            Some(
                AuthTag::Session
                | AuthTag::UserSession
                | AuthTag::Email
                | AuthTag::UsedToken
                | AuthTag::TokenExpiry
                | AuthTag::UserPrefs
                | AuthTag::TeamPrefs
                | AuthTag::Team
                | AuthTag::TeamMembership,
            ) => {}
            Some(AuthTag::ApiKey | AuthTag::SigningKey) | None => return Affected::Everyone,
        }
    }
    if memberships > named_memberships || ended_sessions > named_sessions {
        Affected::Everyone
    } else if users.is_empty() {
        Affected::Nobody
    } else {
        Affected::Users(users)
    }
}

/// What sign-ins share across calls: the throttle on failed attempts, and a password
/// hash that no password matches, with the store's hashing parameters, checked for
/// unknown emails so that they take as long as wrong passwords from the first sign-in on
/// (made at open, without hashing).
pub(crate) struct SignIn {
    pub(crate) throttle: throttle::Throttle,
    pub(crate) dummy_hash: String,
}

impl SignIn {
    pub(crate) fn new(options: &crate::options::Options) -> Result<SignIn> {
        Ok(SignIn {
            throttle: throttle::Throttle::new(options.sign_in_failures, options.sign_in_window),
            dummy_hash: password::unmatchable(options.password_hashing)?,
        })
    }
}
