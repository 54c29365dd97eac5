//! `Client`: a principal bound to a store, and the handles it hands out:
//! `Schemas`, `Schema`, `Collections` and `Collection`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::attribute::AttributeSpec;
use crate::auth::sessions::SessionRecord;
use crate::auth::users::{self, UserRecord, load_user};
use crate::auth::{keys, sessions};
use crate::catalog::{self, CollectionInfo, CollectionSpec, SchemaInfo};
use crate::db::{Db, DbInner};
use crate::engine::acting::{Acting, acting};
use crate::error::{Denial, Error, Result};
use crate::id::check_id;
use crate::index::attr::IndexSpec;
use crate::perm::decide::{Audience, check_scope};
use crate::perm::{Principal, Role, Scope, UserAuth, UserFacts};
use crate::token::{TokenClaims, TokenError};

impl Db {
    /// The in-process, trusted client: permission checks are skipped.
    #[must_use]
    pub fn root(&self) -> Client {
        Client::new(self.clone(), Principal::Root)
    }

    /// A client without credentials: roles `any` and `guests`.
    #[must_use]
    pub fn client(&self) -> Client {
        Client::new(self.clone(), Principal::guest())
    }
}

/// Acts on a store as one principal: root, an API key, a guest, or a user.
///
/// A client made from a session, a token or a key stays bound to it: every call checks
/// that the credential is still good (the token, its session, the session or the key not
/// expired), and after any change to users, sessions, keys, memberships or signing keys
/// the next call derives the principal again from the store, refusing a deleted session,
/// a blocked or deleted user, a deleted key or a retired signing key. Holding a client is
/// therefore as safe as building one per request.
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
    /// A user acted for by root (`key_id` `None`) or by an API key; `account` tells the
    /// user's account apart from a later one with the same id.
    Impersonated {
        user_id: String,
        key_id: Option<String>,
        account: AccountMark,
    },
    Session {
        id: String,
    },
    Token {
        claims: TokenClaims,
    },
    Key {
        id: String,
    },
}

/// Which account of a user id a client acts for: whether the id had an account, and its
/// incarnation (`auth::users::incarnation`), which no later account with the id shares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AccountMark {
    exists: bool,
    incarnation: Option<Vec<u8>>,
}

impl AccountMark {
    fn load(store: &crate::store::Store, user: Option<&UserRecord>) -> Result<AccountMark> {
        Ok(match user {
            Some(u) => AccountMark {
                exists: true,
                incarnation: users::incarnation(store, &u.id)?,
            },
            None => AccountMark {
                exists: false,
                incarnation: None,
            },
        })
    }
}

/// The moment a credential stops being usable, and which part of it ends then.
#[derive(Debug, Clone, Copy)]
struct Expiry {
    at: OffsetDateTime,
    ends: Ends,
}

#[derive(Debug, Clone, Copy)]
enum Ends {
    Session,
    Token,
    TokenSession,
    Key,
}

impl Expiry {
    fn at_millis(ms: i64, ends: Ends) -> Expiry {
        // A time out of range ends at once: fail closed.
        let at = crate::timefmt::from_millis(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Expiry { at, ends }
    }

    /// The earlier of two expiries.
    fn earlier(self, other: Expiry) -> Expiry {
        if other.at < self.at { other } else { self }
    }

    fn error(self) -> Error {
        match self.ends {
            Ends::Session => Error::unauthorized(Denial::CredentialRefused, "session expired"),
            Ends::Token => TokenError::Expired.into(),
            Ends::TokenSession => TokenError::SessionExpired.into(),
            Ends::Key => Error::unauthorized(Denial::CredentialRefused, "API key expired"),
        }
    }
}

/// A principal as derived from the credential.
#[derive(Debug, Clone)]
struct Derived {
    /// INVARIANT (auth-epoch): the store's auth epoch read *before* the principal was
    /// derived. A revocation committing during the derivation moves the epoch past this
    /// number, so the next call derives again; stamping the epoch read after deriving
    /// would let such a client keep what was revoked.
    epoch: u64,
    principal: Arc<Principal>,
    /// When the credential (or any part of it) expires; every call checks it.
    expiry: Option<Expiry>,
}

struct ClientState {
    credential: Credential,
    current: RwLock<Derived>,
    /// Set once the account an impersonated client was made for is gone (deleted, or an
    /// account took an id that had none): the client never acts again, even should the
    /// store come back to how it was.
    ended: AtomicBool,
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

/// Who a client acts as ([`Client::writer`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Actor {
    /// The root client.
    Root,
    /// An API key.
    Key {
        /// The key's id.
        id: String,
    },
    /// A user, signed in or impersonated.
    User {
        /// The user's id.
        id: String,
        /// Which account holds the id: a later account given the same id differs.
        account: AccountStamp,
    },
    /// No credentials.
    Guest,
}

/// Tells one user account from an earlier or later one given the same id (random bytes
/// written when the account is created). Only comparable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountStamp(Option<Vec<u8>>);

impl Client {
    pub(crate) fn new(db: Db, principal: Principal) -> Client {
        let derived = Derived {
            epoch: db.inner.auth_epoch(),
            principal: Arc::new(principal),
            expiry: None,
        };
        Client::bound(db, Credential::Fixed, derived)
    }

    fn bound(db: Db, credential: Credential, derived: Derived) -> Client {
        Client {
            state: Arc::new(ClientState {
                credential,
                current: RwLock::new(derived),
                ended: AtomicBool::new(false),
            }),
            db,
        }
    }

    fn current(&self) -> Derived {
        match self.state.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The principal as last derived, without checks: for `Debug` and `roles`.
    fn cached(&self) -> Arc<Principal> {
        self.current().principal
    }

    /// The principal to act as now: derived again from the store when users, sessions,
    /// keys, memberships or signing keys changed since it last was, then checked for expiry.
    pub(crate) fn principal(&self) -> Result<Arc<Principal>> {
        let db = &self.db.inner;
        if let Credential::Fixed = self.state.credential {
            return Ok(self.cached());
        }
        // INVARIANT (auth-epoch): read before deriving.
        let epoch = db.auth_epoch();
        let mut current = self.current();
        if current.epoch != epoch {
            if self.state.ended.load(Ordering::Acquire) {
                return Err(account_ended(&self.state.credential));
            }
            current = derive(db, &self.state.credential, epoch).inspect_err(|_| {
                if let Credential::Impersonated {
                    user_id, account, ..
                } = &self.state.credential
                    && account_changed(db, user_id, account).unwrap_or(false)
                {
                    self.state.ended.store(true, Ordering::Release);
                }
            })?;
            if let Ok(mut guard) = self.state.current.write()
                && guard.epoch < epoch
            {
                *guard = current.clone();
            }
        }
        if let Some(expiry) = current.expiry
            && db.options.clock.now() > expiry.at
        {
            return Err(expiry.error());
        }
        Ok(current.principal)
    }

    /// A client acting as user `user_id` with that user's roles: root, or a key with
    /// `users.read`. A user id with no account is allowed and gets `any`, `users`,
    /// `user:ID` and the unverified forms of both, so services with their own sign-in
    /// can use the permission engine; a blocked account is refused.
    ///
    /// A client impersonated by a key stays bound to it: it ends when the key is deleted
    /// or expires, and may do only what both the user's permissions and the key's scopes
    /// allow (documents need `documents.read` or `documents.write`, account changes
    /// `users.write`).
    pub fn impersonate(&self, user_id: &str) -> Result<Client> {
        let epoch = self.db.inner.auth_epoch();
        let by = self.principal()?;
        check_scope(
            &by,
            Scope::UsersRead,
            "impersonating a user",
            Audience::Admin,
        )?;
        check_id("user id", user_id)?;
        let key_id = match &*by {
            Principal::Key { id, .. } => Some(id.clone()),
            _ => None,
        };
        let store = &self.db.inner.store;
        let account = AccountMark::load(store, load_user(store, user_id)?.as_ref())?;
        let credential = Credential::Impersonated {
            user_id: user_id.to_owned(),
            key_id,
            account,
        };
        let derived = derive(&self.db.inner, &credential, epoch)?;
        Ok(Client::bound(self.db.clone(), credential, derived))
    }

    /// A client for the session whose secret `create_email_password_session` returned.
    pub fn set_session(&self, secret: &str) -> Result<Client> {
        let db = &self.db.inner;
        let epoch = db.auth_epoch();
        let (session, user) = sessions::authenticate(db, secret)?;
        let credential = Credential::Session {
            id: session.id.clone(),
        };
        let derived = session_principal(db, epoch, session, &user)?;
        Ok(Client::bound(self.db.clone(), credential, derived))
    }

    /// A client acting as the user a token was issued to, with the user's roles as they
    /// are now (memberships and labels are read from the store, not from the token).
    /// Refusals are `Error::InvalidToken` with the reason.
    pub fn set_jwt(&self, token: &str) -> Result<Client> {
        let db = &self.db.inner;
        let epoch = db.auth_epoch();
        let (claims, session, user) = crate::token::issue::verify(db, &db.keyring, token)?;
        let derived = token_principal(db, epoch, &claims, &session, &user)?;
        Ok(Client::bound(
            self.db.clone(),
            Credential::Token { claims },
            derived,
        ))
    }

    /// A client for an API key: skips the permission filter, limited to the key's scopes.
    pub fn set_key(&self, secret: &str) -> Result<Client> {
        let epoch = self.db.inner.auth_epoch();
        let key = keys::authenticate(&self.db.inner, secret)?;
        let credential = Credential::Key { id: key.id.clone() };
        Ok(Client::bound(
            self.db.clone(),
            credential,
            key_principal(epoch, key),
        ))
    }

    /// The roles this client acts with now (derived again, as a call would, after a change
    /// to users, memberships or labels); empty for root and keys, which skip permission
    /// checks, and for a client whose credential no longer holds (it can act with none).
    #[must_use]
    pub fn roles(&self) -> Vec<Role> {
        match self.principal() {
            Ok(principal) => principal
                .roles()
                .map(|r| r.roles().cloned().collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether this client skips the permission filter (root or a live API key).
    #[must_use]
    pub fn skips_permissions(&self) -> bool {
        self.principal()
            .is_ok_and(|p| crate::perm::decide::skips_permissions(&p))
    }

    /// Who this client writes documents as, checked now, as every document write checks
    /// it: its credential (expiry, revocation) and, for an API key or a user
    /// impersonated by one, the key's `documents.write` scope. A server that holds work
    /// for a caller across requests (staged transactions) keys it by this.
    pub fn writer(&self) -> Result<Actor> {
        let principal = self.require_documents(true)?;
        Ok(match &*principal {
            Principal::Root => Actor::Root,
            Principal::Key { id, .. } => Actor::Key { id: id.clone() },
            Principal::User { id, .. } => Actor::User {
                id: id.clone(),
                account: AccountStamp(users::incarnation(&self.db.inner.store, id)?),
            },
            Principal::Guest(_) => Actor::Guest,
        })
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

    /// Root passes; a key passes with `scope`; anyone else is refused. The guard makes
    /// the check again under the writer lock for every write of the call (INVARIANT
    /// write-as-of-commit in `db`), so hold it for the whole call.
    pub(crate) fn require(&self, scope: Scope, what: &str) -> Result<Acting> {
        check_scope(&*self.principal()?, scope, what, Audience::Admin)?;
        let client = self.clone();
        let what = what.to_owned();
        Ok(acting(move || {
            check_scope(&*client.principal()?, scope, &what, Audience::Admin)
        }))
    }

    /// For a write a user makes to their own account: the guard of [`Client::require`],
    /// with users and guests allowed (a user impersonated by a key needs the key to hold
    /// `scope`), so a revoked credential stops the write under the lock.
    pub(crate) fn require_own(&self, scope: Scope, what: &str) -> Result<Acting> {
        check_scope(&*self.principal()?, scope, what, Audience::Users)?;
        let client = self.clone();
        let what = what.to_owned();
        Ok(acting(move || {
            check_scope(&*client.principal()?, scope, &what, Audience::Users)
        }))
    }

    /// Document calls: users and guests are checked by permissions after this, keys (and
    /// users impersonated by keys) by scope here. Returns the principal to act as for the
    /// rest of the call.
    pub(crate) fn require_documents(&self, write: bool) -> Result<Arc<Principal>> {
        let principal = self.principal()?;
        let (scope, what) = if write {
            (Scope::DocumentsWrite, "writing documents")
        } else {
            (Scope::DocumentsRead, "reading documents")
        };
        check_scope(&principal, scope, what, Audience::Users)?;
        Ok(principal)
    }

    pub(crate) fn require_root(&self, what: &str) -> Result<()> {
        match &*self.principal()? {
            Principal::Root => Ok(()),
            _ => Err(Error::unauthorized(
                Denial::MissingScope,
                format!("{what} needs the root client"),
            )),
        }
    }
}

/// Derives the principal of `credential` from the store as it is now; `epoch` must have
/// been read before this is called (INVARIANT auth-epoch).
fn derive(db: &DbInner, credential: &Credential, epoch: u64) -> Result<Derived> {
    match credential {
        // Root and guests never change; `principal` does not call this for them.
        Credential::Fixed => Err(Error::internal("a fixed principal is not derived")),
        Credential::Impersonated {
            user_id,
            key_id,
            account,
        } => {
            let key = match key_id {
                Some(id) => {
                    let key = keys::reload(db, id)?;
                    let by = key_principal(epoch, key.clone());
                    check_scope(
                        &by.principal,
                        Scope::UsersRead,
                        "impersonating a user",
                        Audience::Admin,
                    )?;
                    Some(key)
                }
                None => None,
            };
            impersonated(db, epoch, user_id, account, key)
        }
        Credential::Session { id } => {
            let (session, user) = sessions::reload(db, id)?;
            session_principal(db, epoch, session, &user)
        }
        Credential::Token { claims } => {
            // The key that signed the token must still verify: retiring it ends the client.
            if !db.keyring.knows(claims.key_id) {
                return Err(TokenError::UnknownKey(claims.key_id).into());
            }
            let (session, user) = crate::token::issue::live_user(db, claims)?;
            token_principal(db, epoch, claims, &session, &user)
        }
        Credential::Key { id } => Ok(key_principal(epoch, keys::reload(db, id)?)),
    }
}

fn session_principal(
    db: &DbInner,
    epoch: u64,
    session: SessionRecord,
    user: &UserRecord,
) -> Result<Derived> {
    let facts = users::facts(&db.store, user)?;
    let expiry = Expiry::at_millis(session.expires_ms, Ends::Session);
    Ok(Derived {
        epoch,
        principal: Arc::new(Principal::user(&facts, UserAuth::Session(session.id))),
        expiry: Some(expiry),
    })
}

fn token_principal(
    db: &DbInner,
    epoch: u64,
    claims: &TokenClaims,
    session: &SessionRecord,
    user: &UserRecord,
) -> Result<Derived> {
    let facts = users::facts(&db.store, user)?;
    let token_ends = Expiry {
        at: claims
            .expires_at
            .checked_add(db.options.token_leeway)
            .unwrap_or(claims.expires_at),
        ends: Ends::Token,
    };
    let session_ends = Expiry::at_millis(session.expires_ms, Ends::TokenSession);
    let auth = UserAuth::Token(claims.session_id.clone());
    Ok(Derived {
        epoch,
        principal: Arc::new(Principal::user(&facts, auth)),
        expiry: Some(token_ends.earlier(session_ends)),
    })
}

fn account_gone(account: &AccountMark) -> Error {
    Error::unauthorized(
        Denial::CredentialRefused,
        if account.exists {
            "the impersonated user no longer exists"
        } else {
            "the impersonated user id now belongs to an account"
        },
    )
}

/// The refusal of a client whose account has ended (see `ClientState::ended`).
fn account_ended(credential: &Credential) -> Error {
    match credential {
        Credential::Impersonated { account, .. } => account_gone(account),
        _ => Error::unauthorized(Denial::CredentialRefused, "the client's account has ended"),
    }
}

/// Whether user id `user_id` no longer has the account `account` describes.
fn account_changed(db: &DbInner, user_id: &str, account: &AccountMark) -> Result<bool> {
    let user = load_user(&db.store, user_id)?;
    Ok(AccountMark::load(&db.store, user.as_ref())? != *account)
}

/// The principal of user `user_id` as root (`key` `None`) or a key acts for it; a blocked
/// user is refused, and so is any account but `account` (the one the client was made
/// for): a client made for a user ends with the user's deletion, and one made for an id
/// without an account ends when an account takes the id.
fn impersonated(
    db: &DbInner,
    epoch: u64,
    user_id: &str,
    account: &AccountMark,
    key: Option<keys::ApiKeyRecord>,
) -> Result<Derived> {
    let user = load_user(&db.store, user_id)?;
    if AccountMark::load(&db.store, user.as_ref())? != *account {
        return Err(account_gone(account));
    }
    let facts = match user {
        Some(user) if user.blocked => {
            return Err(Error::unauthorized(
                Denial::UserBlocked,
                crate::auth::sessions::USER_BLOCKED,
            ));
        }
        Some(user) => users::facts(&db.store, &user)?,
        None => UserFacts {
            id: user_id.to_owned(),
            ..UserFacts::default()
        },
    };
    let expiry = key
        .as_ref()
        .and_then(|k| k.expires_ms)
        .map(|ms| Expiry::at_millis(ms, Ends::Key));
    let auth = UserAuth::Impersonated(key.map(|k| k.scopes));
    Ok(Derived {
        epoch,
        principal: Arc::new(Principal::user(&facts, auth)),
        expiry,
    })
}

fn key_principal(epoch: u64, key: keys::ApiKeyRecord) -> Derived {
    let expiry = key.expires_ms.map(|ms| Expiry::at_millis(ms, Ends::Key));
    Derived {
        epoch,
        principal: Arc::new(Principal::Key {
            id: key.id,
            scopes: key.scopes,
        }),
        expiry,
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
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "creating schemas")?;
        catalog::create_schema(&self.client.db.inner, id, name)
    }

    /// Schema `id`.
    pub fn get(&self, id: &str) -> Result<SchemaInfo> {
        let _acting = self.client.require(Scope::SchemasRead, "reading schemas")?;
        catalog::get_schema(&self.client.db.inner, id)
    }

    /// Every schema, by id.
    pub fn list(&self) -> Result<Vec<SchemaInfo>> {
        let _acting = self.client.require(Scope::SchemasRead, "reading schemas")?;
        catalog::list_schemas(&self.client.db.inner)
    }

    /// Renames schema `id` and enables or disables it (a disabled schema is hidden from clients).
    pub fn update(&self, id: &str, name: &str, enabled: bool) -> Result<SchemaInfo> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "updating schemas")?;
        catalog::update_schema(&self.client.db.inner, id, name, enabled)
    }

    /// Deletes schema `id` with all its collections and documents.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "deleting schemas")?;
        catalog::delete_schema(&self.client.db.inner, id)
    }
}

/// A handle on one schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub(crate) client: Client,
    pub(crate) id: String,
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
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "creating collections")?;
        catalog::create_collection(&self.client.db.inner, &self.schema_id, &spec)
    }

    /// Collection `id`.
    pub fn get(&self, id: &str) -> Result<CollectionInfo> {
        let _acting = self
            .client
            .require(Scope::SchemasRead, "reading collections")?;
        catalog::get_collection(&self.client.db.inner, &self.schema_id, id)
    }

    /// Every collection of the schema, by id.
    pub fn list(&self) -> Result<Vec<CollectionInfo>> {
        let _acting = self
            .client
            .require(Scope::SchemasRead, "reading collections")?;
        catalog::list_collections(&self.client.db.inner, &self.schema_id)
    }

    /// Replaces the name, permissions, document security and enabled flag of the
    /// collection `spec` names. Documents are untouched.
    pub fn update(&self, spec: CollectionSpec) -> Result<CollectionInfo> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "updating collections")?;
        catalog::update_collection(&self.client.db.inner, &self.schema_id, &spec)
    }

    /// Declares attribute `spec` on collection `id`. Existing documents are not rewritten.
    pub fn create_attribute(&self, id: &str, spec: AttributeSpec) -> Result<CollectionInfo> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "creating attributes")?;
        catalog::create_attribute(&self.client.db.inner, &self.schema_id, id, &spec)
    }

    /// Removes attribute `key` of collection `id`, its values from every document (one
    /// atomic write over the whole collection) and the indexes that use it.
    pub fn delete_attribute(&self, id: &str, key: &str) -> Result<()> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "deleting attributes")?;
        catalog::delete_attribute(&self.client.db.inner, &self.schema_id, id, key)
    }

    /// Creates index `spec` on collection `id` and fills it from the existing documents.
    pub fn create_index(&self, id: &str, spec: IndexSpec) -> Result<CollectionInfo> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "creating indexes")?;
        catalog::create_index(&self.client.db.inner, &self.schema_id, id, &spec)
    }

    /// Drops index `key` of collection `id` and frees its entries.
    pub fn delete_index(&self, id: &str, key: &str) -> Result<()> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "deleting indexes")?;
        catalog::delete_index(&self.client.db.inner, &self.schema_id, id, key)
    }

    /// Deletes collection `id` with all its documents and indexes.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _acting = self
            .client
            .require(Scope::SchemasWrite, "deleting collections")?;
        catalog::delete_collection(&self.client.db.inner, &self.schema_id, id)
    }
}
