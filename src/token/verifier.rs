//! `TokenVerifier`: checks permdb tokens in another process, from exported public keys,
//! without the store. It checks format, key, signature, project and time only:
//! whether the session is still live or the user still active is unknown to it.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use time::OffsetDateTime;

use super::TokenError;
use super::format::{self, TokenClaims};
use super::keyring::{PublicKeys, verify_parts};
use crate::error::{Error, Result};

/// Verifies tokens offline. Session liveness, blocked users and one-time reuse are
/// NOT checked here: only a `Db` knows them (`Client::set_jwt` checks all of it).
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    store_id: [u8; 16],
    project: String,
    keys: BTreeMap<u64, VerifyingKey>,
    leeway: time::Duration,
}

impl TokenVerifier {
    /// A verifier for the keys a store exported (`Client::token_keys().public()`),
    /// with a 60-second leeway on times.
    pub fn new(public: &PublicKeys) -> Result<TokenVerifier> {
        let bad = |what: &str| Error::InvalidArgument(format!("public keys: {what}"));
        let store_id = crate::secret::b64_decode(&public.store_id)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| bad("store_id is not 16 bytes of base64url"))?;
        let mut keys = BTreeMap::new();
        for k in &public.keys {
            let bytes = crate::secret::b64_decode(&k.public_key)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| bad("a public_key is not 32 bytes of base64url"))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad("a public_key is not an Ed25519 point"))?;
            keys.insert(k.key_id, key);
        }
        Ok(TokenVerifier {
            store_id,
            project: public.project.clone(),
            keys,
            leeway: time::Duration::seconds(60),
        })
    }

    /// The same verifier with another leeway on issue and expiry times.
    #[must_use]
    pub fn leeway(mut self, leeway: time::Duration) -> TokenVerifier {
        self.leeway = leeway;
        self
    }

    /// Checks `token` at time `now` and returns its claims.
    pub fn verify(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> std::result::Result<TokenClaims, TokenError> {
        let parts = format::split(token)?;
        let key = self
            .keys
            .get(&parts.header.key_id)
            .ok_or(TokenError::UnknownKey(parts.header.key_id))?;
        let claims = verify_parts(&parts, key, &self.store_id)?;
        if claims.project != self.project {
            return Err(TokenError::WrongProject);
        }
        format::check_time(&claims, now, self.leeway)?;
        Ok(claims)
    }
}
