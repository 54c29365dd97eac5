//! `Client`: a principal bound to a store, and the handles it hands out:
//! `Schemas`, `Schema`, `Collections` and `Collection`.

use std::fmt;
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::account::Account;
use crate::admin::{Keys, Teams, TokenKeys, Users};
use crate::attribute::AttributeSpec;
use crate::auth::users::{self, load_user};
use crate::auth::{keys, sessions};
use crate::catalog::{self, CollectionInfo, CollectionSpec, SchemaInfo};
use crate::collection::Collection;
use crate::db::{Db, DbInner};
use crate::error::{Error, Result};
use crate::id::check_id;
use crate::index::attr::IndexSpec;
use crate::perm::{Principal, Role, Scope, UserAuth, UserFacts};
use crate::token::{TokenClaims, TokenError};

/// Acts on a store as one principal: root, an API key, a guest, or a user.
///
/// A client made from a session, a token or a key stays bound to it: every call checks
/// that the credential is still good (a token or session not expired), and after any
/// change to users, sessions, keys or memberships the next call re-reads the user's
/// roles and refuses a session that was deleted, a blocked or deleted user or a deleted
/// key. Holding a client is therefore as safe as building one per request.
#[derive(Clone)]
pub struct Client {
    pub(crate) db: Db,
    state: Arc<ClientState>,
}

/// What a client was made from, so that its principal can be derived again.
#[derive(Debug)]
enum Credential {
    /// Root or a guest: nothing to re-check.
    Fixed,
    Impersonated {
        user_id: String,
    },
    Session {
        id: String,
        expires_ms: i64,
    },
    Token {
        claims: TokenClaims,
        usable_until: OffsetDateTime,
    },
    Key {
        id: String,
    },
}

struct ClientState {
    credential: Credential,
    /// INVARIANT (auth-epoch): the principal was derived when the store's auth epoch was
    /// the number beside it; a client derives it again before acting under a newer epoch.
    current: RwLock<(u64, Arc<Principal>)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &*self.cached() {
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
        Client::bound(db, principal, Credential::Fixed)
    }

    fn bound(db: Db, principal: Principal, credential: Credential) -> Client {
        // The epoch is read after the principal was derived: a change in between is
        // then seen as newer and the principal derived again (never older than its epoch).
        let epoch = db.inner.auth_epoch();
        Client {
            state: Arc::new(ClientState {
                credential,
                current: RwLock::new((epoch, Arc::new(principal))),
            }),
            db,
        }
    }

    /// The principal as last derived, without checks: for `Debug` and `roles`.
    fn cached(&self) -> Arc<Principal> {
        match self.state.current.read() {
            Ok(guard) => Arc::clone(&guard.1),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().1),
        }
    }

    /// The principal to act as now: the credential checked for expiry, and derived again
    /// from the store when users, sessions, keys or memberships changed since.
    pub(crate) fn principal(&self) -> Result<Arc<Principal>> {
        let db = &self.db.inner;
        let now = db.options.clock.now();
        match &self.state.credential {
            Credential::Session { expires_ms, .. } if db.now_ms() > *expires_ms => {
                return Err(Error::Unauthorized("session expired".into()));
            }
            Credential::Token { usable_until, .. } if now > *usable_until => {
                return Err(TokenError::Expired.into());
            }
            _ => {}
        }
        let epoch = db.auth_epoch();
        let (seen, principal) = match self.state.current.read() {
            Ok(guard) => (guard.0, Arc::clone(&guard.1)),
            Err(poisoned) => {
                let guard = poisoned.into_inner();
                (guard.0, Arc::clone(&guard.1))
            }
        };
        if seen == epoch {
            return Ok(principal);
        }
        let fresh = Arc::new(self.derive()?);
        if let Ok(mut guard) = self.state.current.write()
            && guard.0 < epoch
        {
            *guard = (epoch, Arc::clone(&fresh));
        }
        Ok(fresh)
    }

    /// Derives the principal again from the credential, as the call that made it would.
    fn derive(&self) -> Result<Principal> {
        let db = &self.db.inner;
        match &self.state.credential {
            Credential::Fixed => Ok((*self.cached()).clone()),
            Credential::Impersonated { user_id } => impersonated(db, user_id),
            Credential::Session { id, .. } => {
                let (session, user) = sessions::reload(db, id)?;
                let facts = users::facts(&db.store, &user)?;
                Ok(Principal::user(&facts, UserAuth::Session(session.id)))
            }
            Credential::Token { claims, .. } => {
                let user = crate::token::issue::live_user(db, claims)?;
                let facts = users::facts(&db.store, &user)?;
                Ok(Principal::user(
                    &facts,
                    UserAuth::Token(claims.session_id.clone()),
                ))
            }
            Credential::Key { id } => Ok(key_principal(keys::reload(db, id)?)),
        }
    }

    /// A client acting as user `user_id` with that user's roles: root, or a key with
    /// `users.read`. A user id with no account is allowed and gets `any`, `users`,
    /// `user:ID` and the unverified forms of both, so services with their own sign-in
    /// can use the permission engine; a blocked account is refused.
    pub fn impersonate(&self, user_id: &str) -> Result<Client> {
        self.require(Scope::UsersRead, "impersonating a user")?;
        check_id("user id", user_id)?;
        let principal = impersonated(&self.db.inner, user_id)?;
        Ok(self.with(
            principal,
            Credential::Impersonated {
                user_id: user_id.to_owned(),
            },
        ))
    }

    /// A client for the session whose secret `create_email_password_session` returned.
    pub fn set_session(&self, secret: &str) -> Result<Client> {
        let (session, user) = sessions::authenticate(&self.db.inner, secret)?;
        let facts = users::facts(&self.db.inner.store, &user)?;
        let credential = Credential::Session {
            id: session.id.clone(),
            expires_ms: session.expires_ms,
        };
        Ok(self.with(
            Principal::user(&facts, UserAuth::Session(session.id)),
            credential,
        ))
    }

    /// A client acting as the user a token was issued to, with the user's roles as they
    /// are now (memberships and labels are read from the store, not from the token).
    /// Refusals are `Error::InvalidToken` with the reason.
    pub fn set_jwt(&self, token: &str) -> Result<Client> {
        let db = &self.db.inner;
        let (claims, user) = crate::token::issue::verify(db, token)?;
        let facts = users::facts(&db.store, &user)?;
        let usable_until = claims
            .expires_at
            .checked_add(db.options.token_leeway)
            .unwrap_or(claims.expires_at);
        let principal = Principal::user(&facts, UserAuth::Token(claims.session_id.clone()));
        Ok(self.with(
            principal,
            Credential::Token {
                claims,
                usable_until,
            },
        ))
    }

    /// A client for an API key: skips the permission filter, limited to the key's scopes.
    pub fn set_key(&self, secret: &str) -> Result<Client> {
        let key = keys::authenticate(&self.db.inner, secret)?;
        let id = key.id.clone();
        Ok(self.with(key_principal(key), Credential::Key { id }))
    }

    fn with(&self, principal: Principal, credential: Credential) -> Client {
        Client::bound(self.db.clone(), principal, credential)
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
        self.cached()
            .roles()
            .map(|r| r.roles().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether this client skips the permission filter (root or an API key).
    #[must_use]
    pub fn skips_permissions(&self) -> bool {
        self.cached().roles().is_none()
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
        self.require_of(&*self.principal()?, scope, what)
    }

    /// [`Client::require`] for a principal already derived in this call.
    fn require_of(&self, principal: &Principal, scope: Scope, what: &str) -> Result<()> {
        match principal {
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
    /// Returns the principal to act as for the rest of the call.
    pub(crate) fn require_documents(&self, write: bool) -> Result<Arc<Principal>> {
        let principal = self.principal()?;
        match &*principal {
            Principal::Key { .. } if write => {
                self.require_of(&principal, Scope::DocumentsWrite, "writing documents")?;
            }
            Principal::Key { .. } => {
                self.require_of(&principal, Scope::DocumentsRead, "reading documents")?;
            }
            _ => {}
        }
        Ok(principal)
    }

    pub(crate) fn require_root(&self, what: &str) -> Result<()> {
        match &*self.principal()? {
            Principal::Root => Ok(()),
            _ => Err(Error::Unauthorized(format!("{what} needs the root client"))),
        }
    }
}

/// The principal of user `user_id` as root or a key acts for it; a blocked user is refused.
fn impersonated(db: &DbInner, user_id: &str) -> Result<Principal> {
    let facts = match load_user(&db.store, user_id)? {
        Some(user) if user.blocked => {
            return Err(Error::Unauthorized("the user is blocked".into()));
        }
        Some(user) => users::facts(&db.store, &user)?,
        None => UserFacts {
            id: user_id.to_owned(),
            ..UserFacts::default()
        },
    };
    Ok(Principal::user(&facts, UserAuth::Impersonated))
}

fn key_principal(key: keys::ApiKeyRecord) -> Principal {
    let expires = key.expires();
    Principal::Key {
        id: key.id,
        scopes: key.scopes,
        expires,
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
