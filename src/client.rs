//! `Client`: a principal bound to a store, and the handles it hands out:
//! `Schemas`, `Schema`, `Collections` and `Collection`.

use std::fmt;
use std::sync::Arc;

use crate::account::Account;
use crate::admin::{Keys, Teams, TokenKeys, Users};
use crate::attribute::AttributeSpec;
use crate::auth::users::{self, load_user};
use crate::auth::{keys, sessions};
use crate::catalog::{self, CollectionInfo, CollectionSpec, SchemaInfo};
use crate::collection::Collection;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::check_id;
use crate::index::attr::IndexSpec;
use crate::perm::{Principal, Role, Scope, UserAuth, UserFacts};

/// Acts on a store as one principal: root, an API key, a guest, or a user.
/// A client is a snapshot of its principal's roles: build one per request.
#[derive(Clone)]
pub struct Client {
    pub(crate) db: Db,
    pub(crate) principal: Arc<Principal>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &*self.principal {
            Principal::Root => "root".to_string(),
            Principal::Key { id, .. } => format!("api key {id}"),
            Principal::Guest(_) => "guest".to_string(),
            Principal::User { id, .. } => format!("user {id}"),
        };
        f.debug_struct("Client")
            .field("principal", &who)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(db: Db, principal: Principal) -> Client {
        Client {
            db,
            principal: Arc::new(principal),
        }
    }

    /// A client acting as user `user_id` with that user's roles: root, or a key with
    /// `users.read`. A user id with no account is allowed and gets `any`, `users`,
    /// `user:ID` and the unverified forms of both, so services with their own sign-in
    /// can use the permission engine; a blocked account is refused.
    pub fn impersonate(&self, user_id: &str) -> Result<Client> {
        self.require(Scope::UsersRead, "impersonating a user")?;
        check_id("user id", user_id)?;
        let facts = match load_user(&self.db.inner.store, user_id)? {
            Some(user) if user.blocked => {
                return Err(Error::Unauthorized("the user is blocked".into()));
            }
            Some(user) => users::facts(&self.db.inner.store, &user)?,
            None => UserFacts {
                id: user_id.to_owned(),
                ..UserFacts::default()
            },
        };
        Ok(self.with(Principal::user(&facts, UserAuth::Impersonated)))
    }

    /// A client for the session whose secret `create_email_password_session` returned.
    pub fn set_session(&self, secret: &str) -> Result<Client> {
        let (session, user) = sessions::authenticate(&self.db.inner, secret)?;
        let facts = users::facts(&self.db.inner.store, &user)?;
        Ok(self.with(Principal::user(&facts, UserAuth::Session(session.id))))
    }

    /// A client acting as the user a token was issued to, with the user's roles as they
    /// are now (memberships and labels are read from the store, not from the token).
    /// Refusals are `Error::InvalidToken` with the reason.
    pub fn set_jwt(&self, token: &str) -> Result<Client> {
        let (claims, user) = crate::token::issue::verify(&self.db.inner, token)?;
        let facts = users::facts(&self.db.inner.store, &user)?;
        Ok(self.with(Principal::user(&facts, UserAuth::Token(claims.session_id))))
    }

    /// A client for an API key: skips the permission filter, limited to the key's scopes.
    pub fn set_key(&self, secret: &str) -> Result<Client> {
        let key = keys::authenticate(&self.db.inner, secret)?;
        let expires = key.expires();
        Ok(self.with(Principal::Key {
            id: key.id,
            scopes: key.scopes,
            expires,
        }))
    }

    fn with(&self, principal: Principal) -> Client {
        Client::new(self.db.clone(), principal)
    }

    /// The signed-in user's own account: sign-up, sessions, tokens.
    #[must_use]
    pub fn account(&self) -> Account {
        Account {
            client: self.clone(),
        }
    }

    /// User management (root, or a key with `users.read` / `users.write`).
    #[must_use]
    pub fn users(&self) -> Users {
        Users {
            client: self.clone(),
        }
    }

    /// Teams and memberships (root, or a key with `teams.read` / `teams.write`).
    #[must_use]
    pub fn teams(&self) -> Teams {
        Teams {
            client: self.clone(),
        }
    }

    /// API keys (root only).
    #[must_use]
    pub fn keys(&self) -> Keys {
        Keys {
            client: self.clone(),
        }
    }

    /// Token signing keys (root only).
    #[must_use]
    pub fn token_keys(&self) -> TokenKeys {
        TokenKeys {
            client: self.clone(),
        }
    }

    /// The roles this client acts with; empty for root, which skips permission checks.
    #[must_use]
    pub fn roles(&self) -> Vec<Role> {
        self.principal
            .roles()
            .map(|r| r.roles().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether this client skips the permission filter (root or an API key).
    #[must_use]
    pub fn skips_permissions(&self) -> bool {
        self.principal.roles().is_none()
    }

    /// Schema management (root only).
    #[must_use]
    pub fn schemas(&self) -> Schemas {
        Schemas {
            client: self.clone(),
        }
    }

    /// A handle on schema `id`; nothing is read until it is used.
    #[must_use]
    pub fn schema(&self, id: &str) -> Schema {
        Schema {
            client: self.clone(),
            id: id.to_owned(),
        }
    }

    /// Root passes; a key passes with `scope` until it expires; anyone else is refused.
    pub(crate) fn require(&self, scope: Scope, what: &str) -> Result<()> {
        match &*self.principal {
            Principal::Root => Ok(()),
            Principal::Key {
                scopes, expires, ..
            } => {
                if expires.is_some_and(|e| self.db.inner.options.clock.now() > e) {
                    Err(Error::Unauthorized("API key expired".into()))
                } else if scopes.contains(&scope) {
                    Ok(())
                } else {
                    Err(Error::Unauthorized(format!(
                        "{what} needs an API key with scope {scope}"
                    )))
                }
            }
            _ => Err(Error::Unauthorized(format!(
                "{what} needs the root client or an API key with scope {scope}"
            ))),
        }
    }

    /// Document calls: users and guests are checked by permissions, keys by scope.
    pub(crate) fn require_documents(&self, write: bool) -> Result<()> {
        match &*self.principal {
            Principal::Key { .. } if write => {
                self.require(Scope::DocumentsWrite, "writing documents")
            }
            Principal::Key { .. } => self.require(Scope::DocumentsRead, "reading documents"),
            _ => Ok(()),
        }
    }

    pub(crate) fn require_root(&self, what: &str) -> Result<()> {
        match &*self.principal {
            Principal::Root => Ok(()),
            _ => Err(Error::Unauthorized(format!("{what} needs the root client"))),
        }
    }
}

/// Creates, reads, updates and deletes schemas. Every call needs root.
#[derive(Debug, Clone)]
pub struct Schemas {
    client: Client,
}

impl Schemas {
    /// Creates schema `id` named `name`.
    pub fn create(&self, id: &str, name: &str) -> Result<SchemaInfo> {
        self.client
            .require(Scope::SchemasWrite, "creating schemas")?;
        catalog::create_schema(&self.client.db.inner, id, name)
    }

    /// Schema `id`.
    pub fn get(&self, id: &str) -> Result<SchemaInfo> {
        self.client.require(Scope::SchemasRead, "reading schemas")?;
        catalog::get_schema(&self.client.db.inner, id)
    }

    /// Every schema, by id.
    pub fn list(&self) -> Result<Vec<SchemaInfo>> {
        self.client.require(Scope::SchemasRead, "reading schemas")?;
        catalog::list_schemas(&self.client.db.inner)
    }

    /// Renames schema `id` and enables or disables it (a disabled schema is hidden from clients).
    pub fn update(&self, id: &str, name: &str, enabled: bool) -> Result<SchemaInfo> {
        self.client
            .require(Scope::SchemasWrite, "updating schemas")?;
        catalog::update_schema(&self.client.db.inner, id, name, enabled)
    }

    /// Deletes schema `id` with all its collections and documents.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.client
            .require(Scope::SchemasWrite, "deleting schemas")?;
        catalog::delete_schema(&self.client.db.inner, id)
    }
}

/// A handle on one schema.
#[derive(Debug, Clone)]
pub struct Schema {
    client: Client,
    id: String,
}

impl Schema {
    /// Collection management in this schema (root only).
    #[must_use]
    pub fn collections(&self) -> Collections {
        Collections {
            client: self.client.clone(),
            schema_id: self.id.clone(),
        }
    }

    /// A handle on collection `id` of this schema; nothing is read until it is used.
    #[must_use]
    pub fn collection(&self, id: &str) -> Collection {
        Collection {
            client: self.client.clone(),
            schema_id: self.id.clone(),
            id: id.to_owned(),
        }
    }
}

/// Creates, reads, updates and deletes the collections of one schema. Every call needs root.
#[derive(Debug, Clone)]
pub struct Collections {
    client: Client,
    schema_id: String,
}

impl Collections {
    /// Creates a collection as `spec` says.
    pub fn create(&self, spec: CollectionSpec) -> Result<CollectionInfo> {
        self.client
            .require(Scope::SchemasWrite, "creating collections")?;
        catalog::create_collection(&self.client.db.inner, &self.schema_id, &spec)
    }

    /// Collection `id`.
    pub fn get(&self, id: &str) -> Result<CollectionInfo> {
        self.client
            .require(Scope::SchemasRead, "reading collections")?;
        catalog::get_collection(&self.client.db.inner, &self.schema_id, id)
    }

    /// Every collection of the schema, by id.
    pub fn list(&self) -> Result<Vec<CollectionInfo>> {
        self.client
            .require(Scope::SchemasRead, "reading collections")?;
        catalog::list_collections(&self.client.db.inner, &self.schema_id)
    }

    /// Replaces the name, permissions, document security and enabled flag of the
    /// collection `spec` names. Documents are untouched.
    pub fn update(&self, spec: CollectionSpec) -> Result<CollectionInfo> {
        self.client
            .require(Scope::SchemasWrite, "updating collections")?;
        catalog::update_collection(&self.client.db.inner, &self.schema_id, &spec)
    }

    /// Declares attribute `spec` on collection `id`. Existing documents are not rewritten.
    pub fn create_attribute(&self, id: &str, spec: AttributeSpec) -> Result<CollectionInfo> {
        self.client
            .require(Scope::SchemasWrite, "creating attributes")?;
        catalog::create_attribute(&self.client.db.inner, &self.schema_id, id, &spec)
    }

    /// Removes attribute `key` of collection `id`, its values from every document (one
    /// atomic write over the whole collection) and the indexes that use it.
    pub fn delete_attribute(&self, id: &str, key: &str) -> Result<()> {
        self.client
            .require(Scope::SchemasWrite, "deleting attributes")?;
        catalog::delete_attribute(&self.client.db.inner, &self.schema_id, id, key)
    }

    /// Creates index `spec` on collection `id` and fills it from the existing documents.
    pub fn create_index(&self, id: &str, spec: IndexSpec) -> Result<CollectionInfo> {
        self.client
            .require(Scope::SchemasWrite, "creating indexes")?;
        catalog::create_index(&self.client.db.inner, &self.schema_id, id, &spec)
    }

    /// Drops index `key` of collection `id` and frees its entries.
    pub fn delete_index(&self, id: &str, key: &str) -> Result<()> {
        self.client
            .require(Scope::SchemasWrite, "deleting indexes")?;
        catalog::delete_index(&self.client.db.inner, &self.schema_id, id, key)
    }

    /// Deletes collection `id` with all its documents and indexes.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.client
            .require(Scope::SchemasWrite, "deleting collections")?;
        catalog::delete_collection(&self.client.db.inner, &self.schema_id, id)
    }
}
