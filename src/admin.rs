//! Server-side management: users, teams and memberships (root or scoped API keys),
//! API keys and token signing keys (root only).

use time::OffsetDateTime;

use serde_json::{Map, Value};

use crate::auth::keys::{self as api_keys, ApiKey};
use crate::auth::prefs::{self, Owner};
use crate::auth::sessions;
use crate::auth::teams::{self, Membership, Team};
use crate::auth::users::{self, AccountChange, User};
use crate::client::Client;
use crate::error::{Denial, Result};
use crate::perm::Scope;
use crate::revoke::{Revoked, revoke_grants};
use crate::token::PublicKeys;
use crate::token::TokenKind;
use crate::token::issue::{self, Jwt};

/// Manages users. Reads need `users.read`, changes `users.write` (or root).
#[derive(Debug, Clone)]
pub struct Users {
    pub(crate) client: Client,
}

impl Users {
    fn db(&self) -> &crate::db::DbInner {
        &self.client.db.inner
    }

    /// Creates a user, as sign-up does.
    pub fn create(
        &self,
        id: &str,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<User> {
        let _acting = self.client.require(Scope::UsersWrite, "creating users")?;
        users::create_user(self.db(), id, email, password, name)
    }

    /// User `id`.
    pub fn get(&self, id: &str) -> Result<User> {
        let _acting = self.client.require(Scope::UsersRead, "reading users")?;
        Ok(users::require_user(&self.db().store, id)?.public())
    }

    /// Every user, by id.
    pub fn list(&self) -> Result<Vec<User>> {
        let _acting = self.client.require(Scope::UsersRead, "reading users")?;
        users::list_users(self.db())
    }

    /// User `id`'s preferences: a JSON object, empty until set.
    pub fn prefs(&self, id: &str) -> Result<Map<String, Value>> {
        let _acting = self.client.require(Scope::UsersRead, "reading users")?;
        users::require_user(&self.db().store, id)?;
        prefs::load(&self.db().store, Owner::User(id))
    }

    /// Replaces user `id`'s preferences (at most 64 KiB as JSON, 32 levels deep).
    pub fn update_prefs(&self, id: &str, prefs: Map<String, Value>) -> Result<Map<String, Value>> {
        let _acting = self.client.require(Scope::UsersWrite, "updating users")?;
        prefs::replace(self.db(), Owner::User(id), prefs)
    }

    /// A token to act as user `id` (what [`crate::Account::create_jwt`] gives the user),
    /// made from one of their live sessions: `session_id`, or their most recent with
    /// `None`, so that ending the session ends the token (deleting the key does not: the
    /// token is the user's). Valid for `ttl` (1 s to [`crate::MAX_JWT_TTL`];
    /// `Options::jwt_ttl` when `None`). Needs `users.write`, `documents.read` and
    /// `documents.write`: everything the token may do. A
    /// blocked user is refused; a user without a live session is `NotFound` (permdb
    /// mints no token without a session, where Appwrite would).
    pub fn create_jwt(
        &self,
        id: &str,
        session_id: Option<&str>,
        ttl: Option<time::Duration>,
    ) -> Result<Jwt> {
        // A token acts as the user in full: documents included. A key may mint one only if
        // it could do all of that itself (the rule impersonation follows).
        let _acting = self.client.require(Scope::UsersWrite, "creating tokens")?;
        let _reads = self
            .client
            .require(Scope::DocumentsRead, "creating tokens")?;
        let _writes = self
            .client
            .require(Scope::DocumentsWrite, "creating tokens")?;
        if let Some(ttl) = ttl
            && !(time::Duration::SECOND..=crate::MAX_JWT_TTL).contains(&ttl)
        {
            return Err(crate::Error::InvalidArgument(format!(
                "a token lasts 1 s to {} s",
                crate::MAX_JWT_TTL.whole_seconds()
            )));
        }
        let db = self.db();
        let user = users::require_user(&db.store, id)?;
        if user.blocked {
            return Err(crate::Error::unauthorized(
                Denial::UserBlocked,
                crate::auth::sessions::USER_BLOCKED,
            ));
        }
        let now = crate::timefmt::to_millis(db.options.clock.now());
        let live = sessions::list_sessions(db, id, None)?
            .into_iter()
            .filter(|s| crate::timefmt::to_millis(s.expire) > now);
        let session = match session_id {
            Some(wanted) => live.into_iter().find(|s| s.id == wanted),
            None => live.max_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id))),
        }
        .ok_or_else(|| {
            crate::Error::not_found(
                crate::ResourceKind::Session,
                session_id.unwrap_or("recent()"),
            )
        })?;
        issue::create(db, &db.keyring, id, &session.id, TokenKind::Access, ttl)
    }

    /// Blocks (`false`) or unblocks (`true`) a user. A blocked user's sessions and
    /// tokens are refused at once.
    pub fn update_status(&self, id: &str, active: bool) -> Result<User> {
        let _acting = self.client.require(Scope::UsersWrite, "updating users")?;
        users::update_user(self.db(), id, |u| {
            u.blocked = !active;
            Ok(())
        })
    }

    /// Replaces the user's labels (letters and digits, at most 36 each, 100 in all).
    pub fn update_labels(&self, id: &str, labels: &[&str]) -> Result<User> {
        let _acting = self.client.require(Scope::UsersWrite, "updating users")?;
        let labels = users::check_labels(labels)?;
        users::update_user(self.db(), id, |u| {
            u.labels = labels;
            Ok(())
        })
    }

    /// Renames user `id` (at most 128 characters).
    pub fn update_name(&self, id: &str, name: &str) -> Result<User> {
        self.change(id, AccountChange::Name(name))
    }

    /// Changes user `id`'s email (unique in any case); it is unverified from then on.
    pub fn update_email(&self, id: &str, email: &str) -> Result<User> {
        self.change(id, AccountChange::Email(email))
    }

    /// Sets user `id`'s password; every session of the user ends, with its tokens.
    pub fn update_password(&self, id: &str, password: &str) -> Result<User> {
        self.change(id, AccountChange::Password(password))
    }

    fn change(&self, id: &str, change: AccountChange<'_>) -> Result<User> {
        let _acting = self.client.require(Scope::UsersWrite, "updating users")?;
        users::change_account(self.db(), &self.db().sign_in, id, change, None, None)
    }

    /// Marks the user's email verified or not (changes `users/verified` and friends).
    pub fn update_email_verification(&self, id: &str, verified: bool) -> Result<User> {
        let _acting = self.client.require(Scope::UsersWrite, "updating users")?;
        users::update_user(self.db(), id, |u| {
            u.email_verified = verified;
            Ok(())
        })
    }

    /// Deletes a user with their sessions and memberships, and revokes every grant to
    /// the user's own roles (`user:ID` and its verified and unverified forms) from every
    /// document and collection, in one atomic write: a new account given the same id
    /// later inherits nothing. The documents themselves stay.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _acting = self.client.require(Scope::UsersWrite, "deleting users")?;
        let db = self.db();
        db.write(|store, batch| {
            users::remove_user(store, batch, id)?;
            let revoked = Revoked {
                roles: &users::own_roles(id),
                prefix: None,
            };
            revoke_grants(store, batch, revoked, db.options.limits)
        })
    }
}

/// Manages teams and memberships. Reads need `teams.read`, changes `teams.write` (or root).
#[derive(Debug, Clone)]
pub struct Teams {
    pub(crate) client: Client,
}

impl Teams {
    fn db(&self) -> &crate::db::DbInner {
        &self.client.db.inner
    }

    /// Creates team `id`.
    pub fn create(&self, id: &str, name: &str) -> Result<Team> {
        let _acting = self.client.require(Scope::TeamsWrite, "creating teams")?;
        teams::create_team(self.db(), id, name)
    }

    /// Team `id`.
    pub fn get(&self, id: &str) -> Result<Team> {
        let _acting = self.client.require(Scope::TeamsRead, "reading teams")?;
        teams::get_team(self.db(), id)
    }

    /// Team `id`'s preferences: a JSON object, empty until set.
    pub fn prefs(&self, id: &str) -> Result<Map<String, Value>> {
        let _acting = self.client.require(Scope::TeamsRead, "reading teams")?;
        teams::get_team(self.db(), id)?;
        prefs::load(&self.db().store, Owner::Team(id))
    }

    /// Replaces team `id`'s preferences (at most 64 KiB as JSON, 32 levels deep).
    pub fn update_prefs(&self, id: &str, prefs: Map<String, Value>) -> Result<Map<String, Value>> {
        let _acting = self.client.require(Scope::TeamsWrite, "updating teams")?;
        prefs::replace(self.db(), Owner::Team(id), prefs)
    }

    /// Every team, by id.
    pub fn list(&self) -> Result<Vec<Team>> {
        let _acting = self.client.require(Scope::TeamsRead, "reading teams")?;
        teams::list_teams(self.db())
    }

    /// Deletes a team and its memberships, and revokes every grant to `team:ID`, to each
    /// `team:ID/ROLE` and to the `member:M` roles of its memberships, from every document
    /// and collection, in one atomic write: a new team given the same id later inherits
    /// nothing.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _acting = self.client.require(Scope::TeamsWrite, "deleting teams")?;
        let db = self.db();
        db.write(|store, batch| {
            let mut roles = teams::remove_team(store, batch, id)?;
            roles.push(crate::perm::Role::team(id).to_string());
            let prefix = format!("{}/", crate::perm::Role::team(id));
            let revoked = Revoked {
                roles: &roles,
                prefix: Some(&prefix),
            };
            revoke_grants(store, batch, revoked, db.options.limits)
        })
    }

    /// Adds user `user_id` to team `team_id` with team `roles`, confirmed at once.
    pub fn create_membership(
        &self,
        team_id: &str,
        user_id: &str,
        roles: &[&str],
    ) -> Result<Membership> {
        let _acting = self
            .client
            .require(Scope::TeamsWrite, "creating memberships")?;
        teams::create_membership(self.db(), team_id, user_id, roles)
    }

    /// The memberships of team `team_id`.
    pub fn list_memberships(&self, team_id: &str) -> Result<Vec<Membership>> {
        let _acting = self
            .client
            .require(Scope::TeamsRead, "reading memberships")?;
        teams::list_memberships(self.db(), team_id)
    }

    /// Removes a membership; the next `set_jwt` or `set_session` no longer gives its roles.
    pub fn delete_membership(&self, team_id: &str, membership_id: &str) -> Result<()> {
        let _acting = self
            .client
            .require(Scope::TeamsWrite, "deleting memberships")?;
        teams::delete_membership(self.db(), team_id, membership_id)
    }
}

/// Manages API keys. Root only.
#[derive(Debug, Clone)]
pub struct Keys {
    pub(crate) client: Client,
}

impl Keys {
    /// Creates a key with `scopes`; its `secret` is shown only in this answer.
    pub fn create(&self, name: &str, scopes: &[Scope]) -> Result<ApiKey> {
        self.create_expiring(name, scopes, None)
    }

    /// As [`Keys::create`], with an expiry after which the key is refused.
    pub fn create_expiring(
        &self,
        name: &str,
        scopes: &[Scope],
        expire: Option<OffsetDateTime>,
    ) -> Result<ApiKey> {
        self.client.require_root("creating API keys")?;
        api_keys::create_key(&self.client.db.inner, name, scopes, expire)
    }

    /// Every key, without secrets.
    pub fn list(&self) -> Result<Vec<ApiKey>> {
        self.client.require_root("listing API keys")?;
        api_keys::list_keys(&self.client.db.inner)
    }

    /// Deletes key `id`; clients made from it are refused from their next call on.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.client.require_root("deleting API keys")?;
        api_keys::delete_key(&self.client.db.inner, id)
    }
}

/// Manages the keys that sign tokens. Root only.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    pub(crate) client: Client,
}

impl TokenKeys {
    /// Adds a new signing key; tokens signed by older keys keep verifying until retired.
    /// Returns the new key id.
    pub fn rotate(&self) -> Result<u64> {
        self.client.require_root("rotating token keys")?;
        let db = &self.client.db.inner;
        let now = db.now_ms();
        let key = db.write(|_, batch| db.keyring.rotate(batch, now))?;
        Ok(db.keyring.activate(key))
    }

    /// Stops key `key_id` from verifying; its tokens are refused as `UnknownKey`.
    pub fn retire(&self, key_id: u64) -> Result<()> {
        self.client.require_root("retiring token keys")?;
        let db = &self.client.db.inner;
        // The key is forgotten inside the write, before the auth epoch moves: a client
        // deriving its principal after the epoch moved must find the key gone
        // (INVARIANT auth-epoch in `client`). Should the write fail, the key stays stored
        // but stops verifying until the store is opened again: closed, not open.
        db.write(|_, batch| {
            db.keyring.retire(batch, key_id)?;
            db.keyring.forget(key_id);
            Ok(())
        })
    }

    /// The public keys, store id and project, for a [`crate::TokenVerifier`] elsewhere.
    pub fn public(&self) -> Result<PublicKeys> {
        self.client.require_root("exporting token keys")?;
        let db = &self.client.db.inner;
        Ok(db.keyring.public(&db.options.project))
    }
}

impl Client {
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
}
