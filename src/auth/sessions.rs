//! Sessions: created by email and password, identified by a secret shown once
//! (`pdbs_<session id>.<32 random bytes>`); only the SHA-256 of its random part is stored.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::users::{UserRecord, find_account_by_email, load_user};
use super::{child_ids, load, put};
use crate::engine::Engine;
use crate::error::{Denial, Error, ResourceKind, Result};
use crate::id::ID;
use crate::secret;
use crate::store::keys::AuthTag;
use crate::store::{Store, Tree, WriteBatch, keys};
use crate::timefmt;

pub(crate) const SECRET_PREFIX: &str = "pdbs_";

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) secret_digest: [u8; 32],
    pub(crate) created_ms: i64,
    pub(crate) expires_ms: i64,
}

/// A session. `secret` is set only in the answer to the call that created it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// `$id`
    #[serde(rename = "$id")]
    pub id: String,
    /// The user signed in.
    pub user_id: String,
    /// `$createdAt`, Appwrite's format.
    #[serde(rename = "$createdAt")]
    pub created_at: String,
    /// When the session expires.
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub expire: OffsetDateTime,
    /// The secret for `Client::set_session`: shown once, never stored.
    pub secret: String,
    /// Whether this is the session the asking client uses.
    pub current: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expire", &self.expire)
            .field("secret", &crate::secret::redacted(&self.secret))
            .field("current", &self.current)
            .finish()
    }
}

impl SessionRecord {
    pub(crate) fn public(&self, secret: String, current: Option<&str>) -> Session {
        Session {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            created_at: timefmt::from_millis(self.created_ms)
                .map(timefmt::format)
                .unwrap_or_default(),
            expire: timefmt::from_millis(self.expires_ms).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            secret,
            current: current == Some(self.id.as_str()),
        }
    }
}

fn session_key(id: &str) -> Vec<u8> {
    keys::auth(AuthTag::Session, &[id])
}

fn by_user_key(user_id: &str, id: &str) -> Vec<u8> {
    keys::auth(AuthTag::UserSession, &[user_id, id])
}

pub(crate) fn load_session(store: &Store, id: &str) -> Result<Option<SessionRecord>> {
    load(store, &session_key(id))
}

/// The refusal of a sign-in whose email or password is wrong (the server maps it to
/// Appwrite's `user_invalid_credentials`).
pub(crate) const INVALID_CREDENTIALS: &str = "invalid email or password";

/// The refusal of anything a blocked user's credentials ask for (Appwrite's
/// `user_blocked`).
pub(crate) const USER_BLOCKED: &str = "the user is blocked";

fn refused() -> Error {
    Error::unauthorized(Denial::InvalidCredentials, INVALID_CREDENTIALS)
}

/// Signs in. A wrong email and a wrong password give the same error and take the same
/// time (an unknown email is checked against a dummy hash with the same parameters).
/// Attempts are throttled per email, counted as they begin (see `throttle`).
pub(crate) fn create_session(
    db: &Engine,
    sign_in: &super::SignIn,
    email: &str,
    password: &str,
) -> Result<Session> {
    // The email's form first: a bounded key for the throttle, and no work for garbage.
    // (Whether an email has an account is not part of this check.)
    super::users::check_email(email)?;
    let now = db.options.clock.now();
    let attempt = sign_in.throttle.begin(&email.to_lowercase(), now)?;
    let account = find_account_by_email(&db.store, email)?;
    let ok = match &account {
        Some((_, u)) => super::password::verify(password, &u.password_hash),
        None => {
            let _ = super::password::verify(password, &sign_in.dummy_hash);
            false
        }
    };
    let Some((incarnation, user)) = account.filter(|_| ok) else {
        return Err(refused());
    };
    sign_in.throttle.succeeded(attempt);
    // A hash made with other parameters (the cost was changed since) is made again now,
    // while the password is at hand.
    let cost = db.options.password_hashing;
    let rehashed = match super::password::needs_rehash(&user.password_hash, cost) {
        true => Some(super::password::hash(password, cost)?),
        false => None,
    };
    if user.blocked {
        return Err(Error::unauthorized(Denial::UserBlocked, USER_BLOCKED));
    }
    let id = ID::unique();
    let issued = secret::issue(SECRET_PREFIX, &id);
    // The session starts now, after the password check (which takes a while).
    let now_ms = db.now_ms();
    let ttl_ms = i64::try_from(db.options.session_ttl.whole_milliseconds()).unwrap_or(i64::MAX);
    let record = SessionRecord {
        id: id.clone(),
        user_id: user.id.clone(),
        secret_digest: issued.digest,
        created_ms: now_ms,
        expires_ms: now_ms.saturating_add(ttl_ms),
    };
    db.write(|store, batch| {
        // While the password was checked, the user may have been deleted (and its id
        // taken by a new account, with another incarnation) or blocked.
        let same_account = super::users::incarnation(store, &user.id)? == incarnation;
        match load_user(store, &user.id)? {
            Some(u) if same_account && !u.blocked => {
                // INVARIANT (sign-in-as-of-commit): a session is made only for the password
                // the account has when the session is written. The password may have
                // changed while it was checked (the change ends the sessions it finds, not
                // this one, which is not written yet): then the new hash must take the
                // password too. Checked under the lock only in that rare case (another
                // sign-in's re-hash changes the hash, not the password).
                if u.password_hash != user.password_hash
                    && !super::password::verify(password, &u.password_hash)
                {
                    return Err(refused());
                }
                // Another sign-in may have re-hashed it meanwhile: then that hash stays.
                if let Some(h) = rehashed.filter(|_| u.password_hash == user.password_hash) {
                    let u = UserRecord {
                        password_hash: h,
                        ..u
                    };
                    super::users::put_user(batch, &u)?;
                }
            }
            Some(_) if same_account => {
                return Err(Error::unauthorized(Denial::UserBlocked, USER_BLOCKED));
            }
            _ => return Err(refused()),
        }
        put(batch, session_key(&id), &record)?;
        batch.put(Tree::Auth, by_user_key(&user.id, &id), Vec::new());
        Ok(())
    })?;
    Ok(record.public(issued.text, Some(&id)))
}

/// Checks a session secret: the session exists, the secret matches (constant time),
/// it has not expired, and its user exists and is not blocked.
pub(crate) fn authenticate(db: &Engine, text: &str) -> Result<(SessionRecord, UserRecord)> {
    let invalid = || Error::unauthorized(Denial::CredentialRefused, "invalid session secret");
    let (id, digest) = secret::split(SECRET_PREFIX, text).ok_or_else(invalid)?;
    let session = load_session(&db.store, &id)?.ok_or_else(invalid)?;
    if !secret::ct_eq(&session.secret_digest, &digest) {
        return Err(invalid());
    }
    live(db, session)
}

/// Session `id` again, for a client made from it: it still exists and is live.
pub(crate) fn reload(db: &Engine, id: &str) -> Result<(SessionRecord, UserRecord)> {
    let session = load_session(&db.store, id)?.ok_or_else(|| {
        Error::unauthorized(Denial::CredentialRefused, "the session no longer exists")
    })?;
    live(db, session)
}

/// A session is live while it has not expired and its user exists and is not blocked.
fn live(db: &Engine, session: SessionRecord) -> Result<(SessionRecord, UserRecord)> {
    if db.now_ms() > session.expires_ms {
        return Err(Error::unauthorized(
            Denial::CredentialRefused,
            "session expired",
        ));
    }
    let user = load_user(&db.store, &session.user_id)?.ok_or_else(|| {
        Error::unauthorized(Denial::CredentialRefused, "the user no longer exists")
    })?;
    if user.blocked {
        return Err(Error::unauthorized(Denial::UserBlocked, USER_BLOCKED));
    }
    Ok((session, user))
}

pub(crate) fn list_sessions(
    db: &Engine,
    user_id: &str,
    current: Option<&str>,
) -> Result<Vec<Session>> {
    let mut out = Vec::new();
    for id in child_ids(
        &db.store,
        &keys::auth_children(AuthTag::UserSession, user_id),
    )? {
        if let Some(s) = load_session(&db.store, &id)? {
            out.push(s.public(String::new(), current));
        }
    }
    Ok(out)
}

/// Deletes session `id` of `user_id`; tokens made from it are refused from then on.
pub(crate) fn delete_session(db: &Engine, user_id: &str, id: &str) -> Result<()> {
    db.write(|store, batch| {
        match load_session(store, id)? {
            Some(s) if s.user_id == user_id => {}
            _ => return Err(Error::not_found(ResourceKind::Session, id)),
        }
        batch.remove(Tree::Auth, session_key(id));
        batch.remove(Tree::Auth, by_user_key(user_id, id));
        Ok(())
    })
}

pub(crate) fn delete_sessions(db: &Engine, user_id: &str) -> Result<()> {
    db.write(|store, batch| remove_all(store, batch, user_id))
}

pub(crate) fn remove_all(store: &Store, batch: &mut WriteBatch, user_id: &str) -> Result<()> {
    remove_all_but(store, batch, user_id, None)
}

/// Removes every session of the user except `keep`, into `batch`.
pub(crate) fn remove_all_but(
    store: &Store,
    batch: &mut WriteBatch,
    user_id: &str,
    keep: Option<&str>,
) -> Result<()> {
    for id in child_ids(store, &keys::auth_children(AuthTag::UserSession, user_id))? {
        if keep == Some(id.as_str()) {
            continue;
        }
        batch.remove(Tree::Auth, session_key(&id));
        batch.remove(Tree::Auth, by_user_key(user_id, &id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::PasswordHashing;
    use crate::{Db, Options};

    fn cost(memory_kib: u32) -> PasswordHashing {
        PasswordHashing {
            memory_kib,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Red-team finding: after the hashing cost changed, accounts hashed with the old cost
    /// answered wrong passwords faster than unknown emails did. A successful sign-in now
    /// hashes the password again with the store's parameters.
    #[test]
    fn a_sign_in_rehashes_a_password_made_with_other_parameters() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let stored = |db: &Db| {
            load_user(&db.inner.store, "u")
                .ok()
                .flatten()
                .map(|u| u.password_hash)
                .unwrap_or_default()
        };
        {
            let db = Db::open_with(dir.path(), Options::new().password_hashing(cost(256)))
                .unwrap_or_else(|e| panic!("{e}"));
            db.client()
                .account()
                .create("u", "u@example.com", "password-u", None)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(stored(&db).contains("m=256,"), "{}", stored(&db));
        }
        let db = Db::open_with(dir.path(), Options::new().password_hashing(cost(16 << 10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let wrong = create_session(&db.inner, &db.inner.sign_in, "u@example.com", "password-x");
        assert!(matches!(wrong, Err(Error::Unauthorized { .. })));
        assert!(
            stored(&db).contains("m=256,"),
            "a failed sign-in changes nothing"
        );
        // Two sign-ins at once both re-hash (16 MiB, slow enough to overlap); both
        // succeed, and one of their hashes stays.
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let both: Vec<_> = (0..2)
            .map(|_| {
                let (db, start) = (db.clone(), std::sync::Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    create_session(&db.inner, &db.inner.sign_in, "u@example.com", "password-u")
                        .map(|_| ())
                })
            })
            .collect();
        for sign_in in both {
            let r = sign_in
                .join()
                .unwrap_or_else(|_| panic!("sign-in panicked"));
            assert!(r.is_ok(), "{r:?}");
        }
        assert!(stored(&db).contains("m=16384,"), "{}", stored(&db));
        create_session(&db.inner, &db.inner.sign_in, "u@example.com", "password-u")
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
