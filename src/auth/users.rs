//! Users: accounts with an email (unique, compared in lowercase), an Argon2id password
//! hash that never leaves this module, status, labels and email verification.

use serde::{Deserialize, Serialize};

use super::{child_ids, load, put, scan};
use crate::engine::Engine;
use crate::error::{Denial, Error, ResourceKind, Result};
use crate::id::quote;
use crate::perm::{Role, UserFacts, Verification, label_fault};
use crate::store::keys::AuthTag;
use crate::store::{Store, Tree, WriteBatch, keys};
use crate::timefmt;

pub use crate::text::MAX_EMAIL_LEN;
pub(crate) use crate::text::check_email;
/// Most labels one user may carry.
pub const MAX_LABELS: usize = 100;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) name: String,
    /// Argon2id PHC string.
    pub(crate) password_hash: String,
    pub(crate) blocked: bool,
    pub(crate) email_verified: bool,
    pub(crate) labels: Vec<String>,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
}

/// A user, as the account and user calls return it. Holds no password material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// `$id`
    #[serde(rename = "$id")]
    pub id: String,
    /// Email address, as given at sign-up.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `true` while active, `false` once blocked (Appwrite's `status`).
    pub status: bool,
    /// Whether the email is verified.
    pub email_verification: bool,
    /// Labels: each grants the role `label:NAME`.
    pub labels: Vec<String>,
    /// `$createdAt`, Appwrite's format.
    #[serde(rename = "$createdAt")]
    pub created_at: String,
    /// `$updatedAt`, Appwrite's format.
    #[serde(rename = "$updatedAt")]
    pub updated_at: String,
}

impl UserRecord {
    pub(crate) fn public(&self) -> User {
        let ts = |ms| {
            timefmt::from_millis(ms)
                .map(timefmt::format)
                .unwrap_or_default()
        };
        User {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            status: !self.blocked,
            email_verification: self.email_verified,
            labels: self.labels.clone(),
            created_at: ts(self.created_ms),
            updated_at: ts(self.updated_ms),
        }
    }
}

pub(crate) fn user_key(id: &str) -> Vec<u8> {
    keys::auth(AuthTag::User, &[id])
}

pub(crate) fn incarnation_key(id: &str) -> Vec<u8> {
    keys::auth(AuthTag::Incarnation, &[id])
}

/// Which account holds user id `id` now: 16 random bytes written when the account is
/// created, so that a later account with the same id is told apart. `None` for an id
/// without an account, and for an account made before this record existed (format 3
/// stores from earlier builds), which a later account with the id still differs from.
pub(crate) fn incarnation(store: &Store, id: &str) -> Result<Option<Vec<u8>>> {
    Ok(store
        .get(Tree::Auth, &incarnation_key(id))?
        .map(|b| b.to_vec()))
}

pub(crate) fn email_key(email: &str) -> Vec<u8> {
    keys::auth(AuthTag::Email, &[&email.to_lowercase()])
}

/// An email a new or changed account may take: [`check_email`], and ASCII only, as
/// Appwrite's validator: lookalike letters (`ı`, full-width `ｋ`) and invisible characters
/// (zero-width space) would let one account pass for another wherever emails are shown.
/// Sign-in still takes any email `check_email` allows, so that accounts made before this
/// rule can sign in.
pub(crate) fn check_new_email(email: &str) -> Result<()> {
    check_email(email)?;
    if !email.is_ascii() {
        return Err(Error::InvalidArgument(
            "invalid email: letters, digits and symbols of ASCII only".into(),
        ));
    }
    Ok(())
}

/// A user's name may be empty (Appwrite's default); otherwise it is a display name.
pub(crate) fn check_user_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Ok(());
    }
    crate::text::check_name("user", name)
}

/// Writes a user record (its email entry is the caller's to keep in step).
pub(crate) fn put_user(batch: &mut WriteBatch, user: &UserRecord) -> Result<()> {
    put(batch, user_key(&user.id), user)
}

pub(crate) fn load_user(store: &Store, id: &str) -> Result<Option<UserRecord>> {
    load(store, &user_key(id))
}

pub(crate) fn require_user(store: &Store, id: &str) -> Result<UserRecord> {
    load_user(store, id)?.ok_or_else(|| Error::not_found(ResourceKind::User, id))
}

/// The user with this email (any case) and its account's incarnation, read first: should
/// the account be replaced while this runs, the incarnation is the older one, and a later
/// comparison with it refuses.
pub(crate) fn find_account_by_email(
    store: &Store,
    email: &str,
) -> Result<Option<(Option<Vec<u8>>, UserRecord)>> {
    let Some(id) = store.get(Tree::Auth, &email_key(email))? else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    let incarnation = incarnation(store, &id)?;
    Ok(load_user(store, &id)?.map(|u| (incarnation, u)))
}

pub(crate) fn create_user(
    db: &Engine,
    id: &str,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<User> {
    let id = crate::id::new_id("user id", id)?;
    let id = id.as_str();
    check_new_email(email)?;
    super::password::check_password(password)?;
    let name = name.unwrap_or_default();
    check_user_name(name)?;
    // Hash before taking the writer lock: it is the slow part.
    let password_hash = super::password::hash(password, db.options.password_hashing)?;
    let now = db.now_ms();
    db.write(|store, batch| {
        if load_user(store, id)?.is_some() {
            return Err(Error::conflict(
                ResourceKind::User,
                id,
                format!("user {} already exists", quote(id)),
            ));
        }
        if store.get(Tree::Auth, &email_key(email))?.is_some() {
            return Err(Error::conflict(
                ResourceKind::User,
                id,
                "a user with this email already exists",
            ));
        }
        let r = UserRecord {
            id: id.into(),
            email: email.into(),
            name: name.into(),
            password_hash: password_hash.clone(),
            blocked: false,
            email_verified: false,
            labels: Vec::new(),
            created_ms: now,
            updated_ms: now,
        };
        put(batch, user_key(id), &r)?;
        batch.put(Tree::Auth, email_key(email), id.as_bytes().to_vec());
        let incarnation: [u8; 16] = crate::secret::random_bytes();
        batch.put(Tree::Auth, incarnation_key(id), incarnation.to_vec());
        Ok(r.public())
    })
}

pub(crate) fn list_users(db: &Engine) -> Result<Vec<User>> {
    Ok(scan::<UserRecord>(&db.store, &AuthTag::User.prefix())?
        .iter()
        .map(UserRecord::public)
        .collect())
}

/// Changes one user under the writer lock.
pub(crate) fn update_user(
    db: &Engine,
    id: &str,
    change: impl FnOnce(&mut UserRecord) -> Result<()>,
) -> Result<User> {
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_user(store, id)?;
        change(&mut r)?;
        r.updated_ms = now;
        put(batch, user_key(id), &r)?;
        Ok(r.public())
    })
}

/// A change to an account's name, email or password.
#[derive(Clone, Copy)]
pub(crate) enum AccountChange<'a> {
    Name(&'a str),
    Email(&'a str),
    Password(&'a str),
}

/// Changes user `id`'s name, email or password.
///
/// With `proof` (a user changing their own account), the current password is checked
/// first, throttled as a sign-in for the account's email is, and the change is refused if
/// the password changed meanwhile. A new email is unverified (the user loses the
/// `users/verified` roles until it is verified again). A new password ends every session
/// of the user except `keep` (the caller's own), and the tokens made from them.
pub(crate) fn change_account(
    db: &Engine,
    sign_in: &super::SignIn,
    id: &str,
    change: AccountChange<'_>,
    proof: Option<&str>,
    keep: Option<&str>,
) -> Result<User> {
    match change {
        AccountChange::Name(name) => check_user_name(name)?,
        AccountChange::Email(email) => check_new_email(email)?,
        AccountChange::Password(password) => super::password::check_password(password)?,
    }
    let proven_hash = match proof {
        None => None,
        Some(password) => {
            let user = require_user(&db.store, id)?;
            let attempt = sign_in
                .throttle
                .begin(&user.email.to_lowercase(), db.options.clock.now())?;
            if !super::password::verify(password, &user.password_hash) {
                return Err(Error::unauthorized(
                    Denial::InvalidCredentials,
                    super::sessions::INVALID_CREDENTIALS,
                ));
            }
            sign_in.throttle.succeeded(attempt);
            Some(user.password_hash)
        }
    };
    // Hash before taking the writer lock: it is the slow part.
    let new_hash = match change {
        AccountChange::Password(password) => Some(super::password::hash(
            password,
            db.options.password_hashing,
        )?),
        _ => None,
    };
    let now = db.now_ms();
    db.write(|store, batch| {
        let mut r = require_user(store, id)?;
        if proven_hash.as_ref().is_some_and(|h| *h != r.password_hash) {
            return Err(Error::unauthorized(
                Denial::InvalidCredentials,
                super::sessions::INVALID_CREDENTIALS,
            ));
        }
        match change {
            AccountChange::Name(name) => r.name = name.to_owned(),
            AccountChange::Email(email) => {
                let taken = store
                    .get(Tree::Auth, &email_key(email))?
                    .is_some_and(|owner| *owner != *id.as_bytes());
                if taken {
                    return Err(Error::conflict(
                        ResourceKind::User,
                        id,
                        "a user with this email already exists",
                    ));
                }
                batch.remove(Tree::Auth, email_key(&r.email));
                batch.put(Tree::Auth, email_key(email), id.as_bytes().to_vec());
                if r.email.to_lowercase() != email.to_lowercase() {
                    r.email_verified = false;
                }
                r.email = email.to_owned();
            }
            AccountChange::Password(_) => {
                if let Some(hash) = &new_hash {
                    r.password_hash = hash.clone();
                }
                super::sessions::remove_all_but(store, batch, id, keep)?;
            }
        }
        r.updated_ms = now;
        put(batch, user_key(id), &r)?;
        Ok(r.public())
    })
}

pub(crate) fn check_labels(labels: &[&str]) -> Result<Vec<String>> {
    if labels.len() > MAX_LABELS {
        return Err(Error::LimitExceeded(format!(
            "{} labels, at most {MAX_LABELS}",
            labels.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        if let Some(fault) = label_fault(l) {
            return Err(Error::InvalidArgument(format!(
                "label {}: {fault}",
                quote(l)
            )));
        }
        out.push((*l).to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Removes a user with their sessions and memberships into `batch`. The grants naming
/// the user are the caller's to revoke in the same batch (`collection::revoke_grants`).
pub(crate) fn remove_user(store: &Store, batch: &mut WriteBatch, id: &str) -> Result<()> {
    let r = require_user(store, id)?;
    batch.remove(Tree::Auth, user_key(id));
    batch.remove(Tree::Auth, email_key(&r.email));
    batch.remove(Tree::Auth, incarnation_key(id));
    super::prefs::remove(batch, super::prefs::Owner::User(id));
    super::sessions::remove_all(store, batch, id)?;
    for m in child_ids(store, &keys::auth_children(AuthTag::UserMembership, id))? {
        super::teams::remove_membership(store, batch, &m)?;
    }
    Ok(())
}

/// The roles only user `id` holds: `user:ID` and its verified and unverified forms.
pub(crate) fn own_roles(id: &str) -> Vec<String> {
    [
        Role::user(id),
        Role::user_with(id, Verification::Verified),
        Role::user_with(id, Verification::Unverified),
    ]
    .iter()
    .map(Role::to_string)
    .collect()
}

/// What the user's roles follow from: verification, confirmed memberships, labels.
pub(crate) fn facts(store: &Store, user: &UserRecord) -> Result<UserFacts> {
    let memberships = super::teams::memberships_of(store, &user.id)?
        .into_iter()
        .filter(|m| m.confirmed)
        .map(|m| (m.id, m.team_id, m.roles))
        .collect();
    Ok(UserFacts {
        id: user.id.clone(),
        email_verified: user.email_verified,
        memberships,
        labels: user.labels.clone(),
    })
}
