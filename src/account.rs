//! `Account`: what a client app does for its own user: sign up, sign in, list and
//! end sessions, and trade a session for a short-lived token.

use crate::auth::prefs::{self, Owner};
use crate::auth::sessions::{self, Session};
use crate::auth::users::{self, AccountChange, User};
use crate::client::Client;
use crate::error::{Denial, Error, ResourceKind, Result};
use crate::perm::decide::{Audience, check_scope};
use crate::perm::{Principal, Scope, UserAuth};
use crate::token::TokenKind;
use crate::token::issue::{self, Jwt};

/// The account of the client's own user.
#[derive(Debug, Clone)]
pub struct Account {
    pub(crate) client: Client,
}

impl Account {
    /// The signed-in user and how they signed in; `None` for root, keys and guests.
    /// `scope` is what a user impersonated by an API key needs that key to hold for the call.
    fn signed_in(&self, scope: Scope, what: &str) -> Result<Option<(String, UserAuth)>> {
        let principal = self.client.principal()?;
        Ok(match &*principal {
            Principal::User { id, auth, .. } => {
                check_scope(&principal, scope, what, Audience::Users)?;
                Some((id.clone(), auth.clone()))
            }
            _ => None,
        })
    }

    fn user_id(&self, scope: Scope, what: &str) -> Result<String> {
        self.signed_in(scope, what)?
            .map(|(id, _)| id)
            .ok_or_else(|| {
                Error::unauthorized(Denial::WrongClient, "this call needs a signed-in user")
            })
    }

    /// The signed-in user and the session behind the client, if any.
    fn user_and_session(&self, scope: Scope, what: &str) -> Result<(String, Option<String>)> {
        match self.signed_in(scope, what)? {
            Some((id, UserAuth::Session(s) | UserAuth::Token(s))) => Ok((id, Some(s))),
            Some((id, UserAuth::Impersonated(_))) => Ok((id, None)),
            None => Err(Error::unauthorized(
                Denial::WrongClient,
                "this call needs a signed-in user",
            )),
        }
    }

    fn not_signed_in(&self, what: &str) -> Result<()> {
        match self.signed_in(Scope::UsersWrite, what)? {
            Some(_) => Err(Error::unauthorized(
                Denial::WrongClient,
                format!("{what}: a user is already signed in"),
            )),
            None => Ok(()),
        }
    }

    /// Signs up: creates user `id` (or a fresh id for [`crate::UNIQUE_ID`]) with `email`
    /// (unique, any case) and `password` (8 to 256 characters, stored as an Argon2id hash).
    /// Not for a signed-in client.
    pub fn create(
        &self,
        id: &str,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<User> {
        self.not_signed_in("sign-up")?;
        users::create_user(&self.client.db.inner, id, email, password, name)
    }

    /// Signs in. A wrong email and a wrong password give the same `Unauthorized`;
    /// repeated failures for one email give `TooManyRequests` (see `Options::sign_in_limit`).
    /// The returned session's `secret` is shown this once.
    pub fn create_email_password_session(&self, email: &str, password: &str) -> Result<Session> {
        self.not_signed_in("sign-in")?;
        let db = &self.client.db.inner;
        sessions::create_session(db, &db.sign_in, email, password)
    }

    /// The signed-in user.
    pub fn get(&self) -> Result<User> {
        let id = self.user_id(Scope::UsersRead, "reading the account")?;
        users::load_user(&self.client.db.inner.store, &id)?
            .map(|u| u.public())
            .ok_or_else(|| Error::not_found(ResourceKind::User, &id))
    }

    /// The signed-in user's preferences: a JSON object, empty until set.
    pub fn prefs(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        let id = self.user_id(Scope::UsersRead, "reading preferences")?;
        prefs::load(&self.client.db.inner.store, Owner::User(&id))
    }

    /// Replaces the signed-in user's preferences with `prefs` (at most 64 KiB as JSON,
    /// 32 levels deep); returns them.
    pub fn update_prefs(
        &self,
        prefs: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let id = self.user_id(Scope::UsersWrite, "updating preferences")?;
        let _acting = self
            .client
            .require_own(Scope::UsersWrite, "updating preferences")?;
        prefs::replace(&self.client.db.inner, Owner::User(&id), prefs)
    }

    /// Renames the signed-in user (at most 128 characters).
    pub fn update_name(&self, name: &str) -> Result<User> {
        self.change(AccountChange::Name(name), None, "updating the name")
    }

    /// Changes the signed-in user's email, proven by their current `password`. The new
    /// email is unverified until verified again (`users/verified` roles are lost), and
    /// must not be another account's (any case).
    pub fn update_email(&self, email: &str, password: &str) -> Result<User> {
        self.change(
            AccountChange::Email(email),
            Some(password),
            "updating the email",
        )
    }

    /// Changes the signed-in user's password, proven by the current one (`old_password`).
    /// Every other session of the user ends, with the tokens made from them; the client's
    /// own session stays. Wrong old passwords are throttled as sign-ins are.
    pub fn update_password(&self, password: &str, old_password: &str) -> Result<User> {
        self.change(
            AccountChange::Password(password),
            Some(old_password),
            "updating the password",
        )
    }

    fn change(&self, change: AccountChange<'_>, proof: Option<&str>, what: &str) -> Result<User> {
        let (id, session) = self.user_and_session(Scope::UsersWrite, what)?;
        let _acting = self.client.require_own(Scope::UsersWrite, what)?;
        users::change_account(
            &self.client.db.inner,
            &self.client.db.inner.sign_in,
            &id,
            change,
            proof,
            session.as_deref(),
        )
    }

    /// The user's sessions (without secrets); `current` marks the client's own.
    pub fn list_sessions(&self) -> Result<Vec<Session>> {
        let (user, current) = self.user_and_session(Scope::UsersRead, "listing sessions")?;
        sessions::list_sessions(&self.client.db.inner, &user, current.as_deref())
    }

    /// Ends session `id`, or the client's own with `"current"`. Tokens made from it are
    /// refused from then on.
    pub fn delete_session(&self, id: &str) -> Result<()> {
        let (user, current) = self.user_and_session(Scope::UsersWrite, "ending a session")?;
        let _acting = self
            .client
            .require_own(Scope::UsersWrite, "ending a session")?;
        let id = match id {
            "current" => current.ok_or_else(|| {
                Error::unauthorized(Denial::WrongClient, "this client has no current session")
            })?,
            other => other.to_owned(),
        };
        sessions::delete_session(&self.client.db.inner, &user, &id)
    }

    /// Ends every session of the user.
    pub fn delete_sessions(&self) -> Result<()> {
        let user = self.user_id(Scope::UsersWrite, "ending sessions")?;
        let _acting = self
            .client
            .require_own(Scope::UsersWrite, "ending sessions")?;
        sessions::delete_sessions(&self.client.db.inner, &user)
    }

    /// A token for a backend to act as this user (`Client::set_jwt`), valid for
    /// `Options::jwt_ttl` (15 minutes by default) or until the session ends. Needs a
    /// client made from a session: a token cannot mint another token.
    pub fn create_jwt(&self) -> Result<Jwt> {
        self.issue(TokenKind::Access, None)
    }

    /// As [`Account::create_jwt`], valid for `ttl` (1 s to [`crate::MAX_JWT_TTL`]) instead
    /// of `Options::jwt_ttl`; still never past the session.
    pub fn create_jwt_lasting(&self, ttl: time::Duration) -> Result<Jwt> {
        if !(time::Duration::SECOND..=crate::MAX_JWT_TTL).contains(&ttl) {
            return Err(Error::InvalidArgument(format!(
                "a token lasts 1 s to {} s",
                crate::MAX_JWT_TTL.whole_seconds()
            )));
        }
        self.issue(TokenKind::Access, Some(ttl))
    }

    /// As [`Account::create_jwt`], but accepted only once.
    pub fn create_one_time_jwt(&self) -> Result<Jwt> {
        self.issue(TokenKind::OneTime, None)
    }

    fn issue(&self, kind: TokenKind, ttl: Option<time::Duration>) -> Result<Jwt> {
        match self.signed_in(Scope::UsersWrite, "creating a token")? {
            Some((user, UserAuth::Session(session))) => issue::create(
                &self.client.db.inner,
                &self.client.db.inner.keyring,
                &user,
                &session,
                kind,
                ttl,
            ),
            Some((_, UserAuth::Token(_))) => Err(Error::unauthorized(
                Denial::WrongClient,
                "a client authenticated by a token cannot create tokens",
            )),
            _ => Err(Error::unauthorized(
                Denial::WrongClient,
                "creating a token needs a client made from a session",
            )),
        }
    }
}

impl Client {
    /// The signed-in user's own account: sign-up, sessions, tokens.
    #[must_use]
    pub fn account(&self) -> Account {
        Account {
            client: self.clone(),
        }
    }
}
