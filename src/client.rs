//! `Client`: a principal bound to a store, and the handles it hands out:
//! `Schemas`, `Schema`, `Collections` and `Collection`.

use std::fmt;
use std::sync::Arc;

use crate::catalog::{self, CollectionInfo, CollectionSpec, SchemaInfo};
use crate::collection::Collection;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::id::check_id;
use crate::perm::{Principal, Role, UserFacts};

/// Acts on a store as one principal: root, a guest, or a user.
#[derive(Clone)]
pub struct Client {
    pub(crate) db: Db,
    pub(crate) principal: Arc<Principal>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &*self.principal {
            Principal::Root => "root".to_string(),
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

    /// A client acting as user `user_id` with that user's roles. Root only.
    /// The user needs no permdb account: services with their own sign-in get
    /// `any`, `users`, `user:ID` and the unverified forms of both.
    pub fn impersonate(&self, user_id: &str) -> Result<Client> {
        self.require_root("impersonating a user")?;
        check_id("user id", user_id)?;
        let facts = UserFacts {
            id: user_id.to_owned(),
            ..UserFacts::default()
        };
        Ok(Client::new(self.db.clone(), Principal::user(&facts)))
    }

    /// The roles this client acts with; empty for root, which skips permission checks.
    #[must_use]
    pub fn roles(&self) -> Vec<Role> {
        self.principal
            .roles()
            .map(|r| r.roles().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether this client skips permission checks.
    #[must_use]
    pub fn is_root(&self) -> bool {
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

    fn require_root(&self, what: &str) -> Result<()> {
        if self.is_root() {
            Ok(())
        } else {
            Err(Error::Unauthorized(format!("{what} needs the root client")))
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
        self.client.require_root("managing schemas")?;
        catalog::create_schema(&self.client.db.inner, id, name)
    }

    /// Schema `id`.
    pub fn get(&self, id: &str) -> Result<SchemaInfo> {
        self.client.require_root("managing schemas")?;
        catalog::get_schema(&self.client.db.inner, id)
    }

    /// Every schema, by id.
    pub fn list(&self) -> Result<Vec<SchemaInfo>> {
        self.client.require_root("managing schemas")?;
        catalog::list_schemas(&self.client.db.inner)
    }

    /// Renames schema `id` and enables or disables it (a disabled schema is hidden from clients).
    pub fn update(&self, id: &str, name: &str, enabled: bool) -> Result<SchemaInfo> {
        self.client.require_root("managing schemas")?;
        catalog::update_schema(&self.client.db.inner, id, name, enabled)
    }

    /// Deletes schema `id` with all its collections and documents.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.client.require_root("managing schemas")?;
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
        self.client.require_root("managing collections")?;
        catalog::create_collection(&self.client.db.inner, &self.schema_id, &spec)
    }

    /// Collection `id`.
    pub fn get(&self, id: &str) -> Result<CollectionInfo> {
        self.client.require_root("managing collections")?;
        catalog::get_collection(&self.client.db.inner, &self.schema_id, id)
    }

    /// Every collection of the schema, by id.
    pub fn list(&self) -> Result<Vec<CollectionInfo>> {
        self.client.require_root("managing collections")?;
        catalog::list_collections(&self.client.db.inner, &self.schema_id)
    }

    /// Replaces the name, permissions, document security and enabled flag of the
    /// collection `spec` names. Documents are untouched.
    pub fn update(&self, spec: CollectionSpec) -> Result<CollectionInfo> {
        self.client.require_root("managing collections")?;
        catalog::update_collection(&self.client.db.inner, &self.schema_id, &spec)
    }

    /// Deletes collection `id` with all its documents and indexes.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.client.require_root("managing collections")?;
        catalog::delete_collection(&self.client.db.inner, &self.schema_id, id)
    }
}
