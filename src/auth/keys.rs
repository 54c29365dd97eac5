//! API keys: a name, scopes, an optional expiry, and a secret shown once
//! (`pdbk_<key id>.<32 random bytes>`) of which only the SHA-256 is stored.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{load, put, scan};
use crate::engine::Engine;
use crate::error::{Denial, Error, ResourceKind, Result};
use crate::id::ID;
use crate::perm::Scope;
use crate::secret;
use crate::store::keys::AuthTag;
use crate::store::{Tree, keys};
use crate::timefmt;

pub(crate) const SECRET_PREFIX: &str = "pdbk_";

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ApiKeyRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) scopes: BTreeSet<Scope>,
    pub(crate) secret_digest: [u8; 32],
    pub(crate) expires_ms: Option<i64>,
    pub(crate) created_ms: i64,
}

/// An API key. `secret` is set only in the answer to `create`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// `$id`
    #[serde(rename = "$id")]
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// When it stops working, if ever.
    #[serde(serialize_with = "crate::timefmt::serialize_option")]
    pub expire: Option<OffsetDateTime>,
    /// The secret for `Client::set_key`: shown once, never stored.
    pub secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("expire", &self.expire)
            .field("secret", &crate::secret::redacted(&self.secret))
            .finish()
    }
}

impl ApiKeyRecord {
    fn public(&self, secret: String) -> ApiKey {
        ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.iter().copied().collect(),
            expire: self.expires_ms.and_then(|ms| timefmt::from_millis(ms).ok()),
            secret,
        }
    }
}

pub(crate) fn key_key(id: &str) -> Vec<u8> {
    keys::auth(AuthTag::ApiKey, &[id])
}

pub(crate) fn create_key(
    db: &Engine,
    name: &str,
    scopes: &[Scope],
    expire: Option<OffsetDateTime>,
) -> Result<ApiKey> {
    crate::text::check_name("key", name)?;
    let id = ID::unique();
    let issued = secret::issue(SECRET_PREFIX, &id);
    let record = ApiKeyRecord {
        id: id.clone(),
        name: name.to_owned(),
        scopes: scopes.iter().copied().collect(),
        secret_digest: issued.digest,
        expires_ms: expire.map(timefmt::to_millis),
        created_ms: db.now_ms(),
    };
    db.write(|_, batch| put(batch, key_key(&id), &record))?;
    Ok(record.public(issued.text))
}

pub(crate) fn list_keys(db: &Engine) -> Result<Vec<ApiKey>> {
    Ok(scan::<ApiKeyRecord>(&db.store, &AuthTag::ApiKey.prefix())?
        .iter()
        .map(|r| r.public(String::new()))
        .collect())
}

pub(crate) fn delete_key(db: &Engine, id: &str) -> Result<()> {
    db.write(|store, batch| {
        if load::<ApiKeyRecord>(store, &key_key(id))?.is_none() {
            return Err(Error::not_found(ResourceKind::ApiKey, id));
        }
        batch.remove(Tree::Auth, key_key(id));
        Ok(())
    })
}

/// Checks a key secret: known, matching (constant time) and not expired.
pub(crate) fn authenticate(db: &Engine, text: &str) -> Result<ApiKeyRecord> {
    let invalid = || Error::unauthorized(Denial::CredentialRefused, "invalid API key");
    let (id, digest) = secret::split(SECRET_PREFIX, text).ok_or_else(invalid)?;
    let key: ApiKeyRecord = load(&db.store, &key_key(&id))?.ok_or_else(invalid)?;
    if !secret::ct_eq(&key.secret_digest, &digest) {
        return Err(invalid());
    }
    unexpired(db, key)
}

/// Key `id` again, for a client made from it: it still exists and has not expired.
pub(crate) fn reload(db: &Engine, id: &str) -> Result<ApiKeyRecord> {
    let key: ApiKeyRecord = load(&db.store, &key_key(id))?.ok_or_else(|| {
        Error::unauthorized(Denial::CredentialRefused, "the API key no longer exists")
    })?;
    unexpired(db, key)
}

fn unexpired(db: &Engine, key: ApiKeyRecord) -> Result<ApiKeyRecord> {
    if key.expires_ms.is_some_and(|ms| db.now_ms() > ms) {
        return Err(Error::unauthorized(
            Denial::CredentialRefused,
            "API key expired",
        ));
    }
    Ok(key)
}
