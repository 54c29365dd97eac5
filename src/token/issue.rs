//! Tokens against the store: issuing one from a session, and the full verification
//! order of docs/TOKEN.md, ending with the session, the user and one-time reuse.

use serde::Serialize;
use time::OffsetDateTime;

use super::TokenError;
use super::format::{self, TokenClaims, TokenKind};
use crate::auth::sessions::{SessionRecord, load_session};
use crate::auth::users::{UserRecord, load_user};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::store::keys::{self, AuthTag};
use crate::store::{Direction, Tree};
use crate::token::keyring::KeyRing;

/// Most expired one-time token ids removed by one use of a one-time token.
const CLEANUP_BATCH: usize = 64;

/// A token, as `create_jwt` returns it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Jwt {
    /// The token text, for `Client::set_jwt`.
    pub jwt: String,
    /// When it stops being accepted (plus the leeway).
    #[serde(serialize_with = "crate::timefmt::serialize")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("jwt", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A token for `user_id` made from `session_id`, valid for `ttl` (`Options::jwt_ttl`
/// when `None`). The caller has checked that the session is the user's and live; the
/// token is refused anyway once it is not (verification re-reads the session).
pub(crate) fn create(
    db: &Engine,
    keyring: &KeyRing,
    user_id: &str,
    session_id: &str,
    kind: TokenKind,
    ttl: Option<time::Duration>,
) -> Result<Jwt> {
    let now = db.options.clock.now();
    // Whole seconds, as the format stores them.
    let now = OffsetDateTime::from_unix_timestamp(now.unix_timestamp())
        .map_err(|e| Error::storage("the clock reads a time tokens cannot hold", e))?;
    let expires_at = now
        .checked_add(ttl.unwrap_or(db.options.jwt_ttl))
        .ok_or_else(|| Error::InvalidArgument("token expiry out of range".into()))?;
    let claims = TokenClaims {
        kind,
        key_id: 0,
        project: db.options.project.clone(),
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        token_id: crate::secret::random_bytes(),
        issued_at: now,
        not_before: now,
        expires_at,
    };
    let (jwt, _) = keyring.sign(claims)?;
    Ok(Jwt { jwt, expires_at })
}

/// Verifies `text` in order: size, prefix and version, base64, key, signature, claims,
/// project, time, session, user, and last, atomically, one-time reuse.
pub(crate) fn verify(
    db: &Engine,
    keyring: &KeyRing,
    text: &str,
) -> Result<(TokenClaims, SessionRecord, UserRecord)> {
    let parts = format::split(text)?;
    let claims = keyring.verify(&parts)?;
    if claims.project != db.options.project {
        return Err(TokenError::WrongProject.into());
    }
    let now = db.options.clock.now();
    format::check_time(&claims, now, db.options.token_leeway)?;
    let (session, user) = live_user(db, &claims)?;
    if claims.kind == TokenKind::OneTime {
        record_use(db, &claims, now)?;
    }
    Ok((claims, session, user))
}

/// The token's session still exists for its user and has not expired, and the user
/// exists and is not blocked: checked by `verify`, and again by a client made from the
/// token whenever users or sessions change.
pub(crate) fn live_user(db: &Engine, claims: &TokenClaims) -> Result<(SessionRecord, UserRecord)> {
    let session = load_session(&db.store, &claims.session_id)?
        .filter(|s| s.user_id == claims.user_id)
        .ok_or(TokenError::SessionRevoked)?;
    if db.now_ms() > session.expires_ms {
        return Err(TokenError::SessionExpired.into());
    }
    let user = load_user(&db.store, &claims.user_id)?.ok_or(TokenError::UserDeleted)?;
    if user.blocked {
        return Err(TokenError::UserBlocked.into());
    }
    Ok((session, user))
}

/// Remembers a one-time token's id until it expires; refuses one seen before.
/// Also forgets a few ids whose tokens have expired.
fn record_use(db: &Engine, claims: &TokenClaims, now: OffsetDateTime) -> Result<()> {
    let forget_after = claims
        .expires_at
        .checked_add(db.options.token_leeway)
        .unwrap_or(claims.expires_at);
    let forget_after = forget_after.unix_timestamp();
    db.write(|store, batch| {
        // Either record of a use refuses the token: losing one of them (a damaged store)
        // must not make a used token usable again.
        let used = store
            .get(Tree::Auth, &keys::used_token(&claims.token_id))?
            .is_some()
            || store
                .get(
                    Tree::Auth,
                    &keys::token_expiry(forget_after, &claims.token_id),
                )?
                .is_some();
        if used {
            return Err(TokenError::Reused.into());
        }
        for entry in store
            .scan_prefix(
                Tree::Auth,
                &AuthTag::TokenExpiry.prefix(),
                Direction::Forward,
            )
            .take(CLEANUP_BATCH)
        {
            let (key, _) = entry?;
            let expires = key
                .get(1..9)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_be_bytes);
            let id = key.get(9..25).and_then(|b| <[u8; 16]>::try_from(b).ok());
            match (expires, id) {
                (Some(e), Some(id)) if e < now.unix_timestamp() => {
                    batch.remove(Tree::Auth, key.to_vec());
                    batch.remove(Tree::Auth, keys::used_token(&id));
                }
                (Some(_), Some(_)) => break,
                _ => {
                    return Err(Error::corrupt(
                        format!("one-time token entry {:02x?}", &*key),
                        "bad key",
                    ));
                }
            }
        }
        batch.put(
            Tree::Auth,
            keys::used_token(&claims.token_id),
            forget_after.to_le_bytes().to_vec(),
        );
        batch.put(
            Tree::Auth,
            keys::token_expiry(forget_after, &claims.token_id),
            Vec::new(),
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::password::PasswordHashing;
    use crate::{Db, ManualClock, Options};

    fn store() -> (Db, ManualClock, crate::Client) {
        let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000));
        let options = Options::new()
            .clock(Arc::new(clock.clone()))
            .password_hashing(PasswordHashing {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            });
        let db = Db::temporary_with(options).unwrap_or_else(|e| panic!("{e}"));
        let account = db.client().account();
        account
            .create("u", "u@example.com", "password-u", None)
            .unwrap_or_else(|e| panic!("{e}"));
        let session = account
            .create_email_password_session("u@example.com", "password-u")
            .unwrap_or_else(|e| panic!("{e}"));
        let client = db
            .client()
            .set_session(&session.secret)
            .unwrap_or_else(|e| panic!("{e}"));
        (db, clock, client)
    }

    fn once(client: &crate::Client) -> String {
        client
            .account()
            .create_one_time_jwt()
            .unwrap_or_else(|e| panic!("{e}"))
            .jwt
    }

    fn reused(db: &Db, token: &str) -> bool {
        matches!(
            db.client().set_jwt(token),
            Err(Error::InvalidToken(TokenError::Reused))
        )
    }

    fn auth_keys(db: &Db, tag: AuthTag) -> usize {
        db.inner
            .store
            .scan_prefix(Tree::Auth, &tag.prefix(), Direction::Forward)
            .count()
    }

    /// Each one-time token is used once, independently of the others, and stays refused
    /// while the cleanup of expired ones runs beside it, to the last second it could verify.
    #[test]
    fn one_time_tokens_are_each_used_once_until_they_expire() {
        let (db, clock, client) = store();
        let (a, b) = (once(&client), once(&client));
        db.client().set_jwt(&a).unwrap_or_else(|e| panic!("{e}"));
        db.client().set_jwt(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(reused(&db, &a) && reused(&db, &b));
        assert_eq!(
            (
                auth_keys(&db, AuthTag::UsedToken),
                auth_keys(&db, AuthTag::TokenExpiry)
            ),
            (2, 2)
        );
        // The last second `a` verifies: 15 minutes and the 60 s leeway after its issue.
        clock.advance(time::Duration::minutes(16));
        let c = once(&client);
        db.client().set_jwt(&c).unwrap_or_else(|e| panic!("{e}"));
        assert!(reused(&db, &a), "cleaned up while it could still verify");
        // Past it, the cleanup run by the next use forgets both, and only them.
        clock.advance(time::Duration::seconds(1));
        let d = once(&client);
        db.client().set_jwt(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                auth_keys(&db, AuthTag::UsedToken),
                auth_keys(&db, AuthTag::TokenExpiry)
            ),
            (2, 2),
            "c and d"
        );
        assert!(matches!(
            db.client().set_jwt(&a),
            Err(Error::InvalidToken(TokenError::Expired))
        ));
        assert!(reused(&db, &c) && reused(&db, &d));
    }

    /// Either record of a use refuses the token (a store that lost one is not reopened
    /// to reuse).
    #[test]
    fn either_record_of_a_use_refuses_the_token() {
        for tag in [AuthTag::UsedToken, AuthTag::TokenExpiry] {
            let (db, _, client) = store();
            let token = once(&client);
            db.client()
                .set_jwt(&token)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut batch = crate::store::WriteBatch::default();
            for entry in db
                .inner
                .store
                .scan_prefix(Tree::Auth, &tag.prefix(), Direction::Forward)
            {
                let (k, _) = entry.unwrap_or_else(|e| panic!("{e}"));
                batch.remove(Tree::Auth, k.to_vec());
            }
            db.inner
                .store
                .apply(&batch)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(reused(&db, &token), "with the {tag:?} record gone");
        }
    }

    #[test]
    fn debug_shows_no_token() {
        let (_, _, client) = store();
        let jwt = client
            .account()
            .create_jwt()
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{jwt:?}");
        assert!(
            shown.starts_with("Jwt {") && shown.contains("expires_at"),
            "{shown}"
        );
        assert!(!shown.contains(&jwt.jwt[5..]), "{shown}");
    }
}
