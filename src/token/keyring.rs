//! Token signing keys: kept in the store, identified by a random 64-bit key id,
//! decoded once into a cache at open and on rotation, never per request.

use std::collections::BTreeMap;
use std::sync::RwLock;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::TokenError;
use super::format::{self, Parts, TokenClaims};
use crate::error::{Error, Result};
use crate::store::keys::AuthTag;
use crate::store::{Direction, Store, Tree, WriteBatch, codec, keys};

/// A token signing key as stored.
///
/// INVARIANT (signing-secret-wiped): `secret` is overwritten with zeros when the record
/// drops (`Drop` below), so a decoded key does not linger in freed memory. The
/// `SigningKey` made from it wipes its own copy (ed25519-dalek's `zeroize` feature).
#[derive(Serialize, Deserialize)]
pub(crate) struct SigningKeyRecord {
    pub(crate) key_id: u64,
    pub(crate) secret: [u8; 32],
    pub(crate) created_ms: i64,
}

impl SigningKeyRecord {
    /// Overwrites the secret with zeros.
    fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

impl Drop for SigningKeyRecord {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeyRecord({:016x}, secret redacted)", self.key_id)
    }
}

pub(crate) fn key_key(key_id: u64) -> Vec<u8> {
    keys::signing_key(key_id)
}

/// An exported verifying key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// The key id tokens name in their header.
    pub key_id: u64,
    /// The Ed25519 public key, base64url without padding.
    pub public_key: String,
}

/// What an offline [`super::TokenVerifier`] needs: the store id and project that tokens
/// are bound to, and the verifying keys. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// The store's id, base64url without padding (signed into every token, never sent in one).
    pub store_id: String,
    /// The project tokens are issued for.
    pub project: String,
    /// Every key that still verifies, oldest first.
    pub keys: Vec<PublicKey>,
}

struct Ring {
    /// The newest key signs; every key verifies until retired.
    signing: Option<(u64, SigningKey)>,
    /// When the newest key installed was made (ms).
    newest_ms: i64,
    verifying: BTreeMap<u64, VerifyingKey>,
}

/// The cache of signing and verifying keys of one store.
pub(crate) struct KeyRing {
    pub(crate) store_id: [u8; 16],
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(redacted)")
    }
}

impl KeyRing {
    /// Loads every key of the store (a handful), creating the store id and the first
    /// key when the store is new. Runs at open, under the writer lock's exclusion.
    pub(crate) fn open(store: &Store, now_ms: i64) -> Result<(KeyRing, WriteBatch)> {
        let mut batch = WriteBatch::default();
        let store_id = match store.get(Tree::Meta, keys::STORE_ID)? {
            Some(b) => {
                <[u8; 16]>::try_from(&*b).map_err(|_| Error::corrupt("store id", "not 16 bytes"))?
            }
            None => {
                let id: [u8; 16] = crate::secret::random_bytes();
                batch.put(Tree::Meta, keys::STORE_ID.to_vec(), id.to_vec());
                id
            }
        };
        let mut records = Vec::new();
        for entry in store.scan_prefix(
            Tree::Auth,
            &AuthTag::SigningKey.prefix(),
            Direction::Forward,
        ) {
            let (k, v) = entry?;
            let r: SigningKeyRecord =
                codec::decode(&v, || format!("token signing key {:02x?}", &*k))?;
            records.push(r);
        }
        if records.is_empty() {
            let r = new_record(now_ms);
            batch.put(Tree::Auth, key_key(r.key_id), codec::encode(&r)?);
            records.push(r);
        }
        let ring = KeyRing {
            store_id,
            ring: RwLock::new(Ring {
                signing: None,
                newest_ms: i64::MIN,
                verifying: BTreeMap::new(),
            }),
        };
        records.sort_by_key(|r| (r.created_ms, r.key_id));
        for r in &records {
            ring.install(r);
        }
        Ok((ring, batch))
    }

    fn install(&self, r: &SigningKeyRecord) {
        let key = SigningKey::from_bytes(&r.secret);
        let mut ring = self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.verifying.insert(r.key_id, key.verifying_key());
        ring.signing = Some((r.key_id, key));
        ring.newest_ms = ring.newest_ms.max(r.created_ms);
    }

    fn newest_ms(&self) -> i64 {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .newest_ms
    }

    /// Writes a new signing key into `batch`; [`KeyRing::activate`] it once the batch is applied.
    pub(crate) fn rotate(&self, batch: &mut WriteBatch, now_ms: i64) -> Result<NewKey> {
        // The newest key signs after a restart: a new key is never older than one in the
        // ring (one imported with a later date, or a clock that stepped back).
        let r = new_record(now_ms.max(self.newest_ms().saturating_add(1)));
        batch.put(Tree::Auth, key_key(r.key_id), codec::encode(&r)?);
        Ok(NewKey(r))
    }

    /// Makes a key written by [`KeyRing::rotate`] the signing key. Returns its id.
    pub(crate) fn activate(&self, key: NewKey) -> u64 {
        self.install(&key.0);
        key.0.key_id
    }

    /// Removes key `key_id` in `batch`; [`KeyRing::forget`] it before the batch is applied
    /// (see `TokenKeys::retire`).
    /// The signing key cannot be retired.
    pub(crate) fn retire(&self, batch: &mut WriteBatch, key_id: u64) -> Result<()> {
        let ring = self
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.signing.as_ref().is_some_and(|(id, _)| *id == key_id) {
            return Err(Error::InvalidArgument(
                "the current signing key cannot be retired; rotate first".into(),
            ));
        }
        if !ring.verifying.contains_key(&key_id) {
            return Err(Error::InvalidArgument(format!(
                "no token key {key_id:016x}"
            )));
        }
        batch.remove(Tree::Auth, key_key(key_id));
        Ok(())
    }

    /// Whether key `key_id` still verifies tokens.
    pub(crate) fn knows(&self, key_id: u64) -> bool {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .verifying
            .contains_key(&key_id)
    }

    /// Stops key `key_id` from verifying.
    pub(crate) fn forget(&self, key_id: u64) {
        let mut ring = self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ring.verifying.remove(&key_id);
    }

    /// Signs claims with the current key; returns the token text.
    pub(crate) fn sign(&self, mut claims: TokenClaims) -> Result<(String, TokenClaims)> {
        let ring = self
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (key_id, key) = ring
            .signing
            .as_ref()
            .ok_or_else(|| Error::internal("no token signing key"))?;
        claims.key_id = *key_id;
        Ok((encode(&claims, key, &self.store_id), claims))
    }

    /// Key lookup and signature, then the claims: steps 4 to 6 of the verification order.
    pub(crate) fn verify(&self, parts: &Parts) -> std::result::Result<TokenClaims, TokenError> {
        let ring = self
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = ring
            .verifying
            .get(&parts.header.key_id)
            .ok_or(TokenError::UnknownKey(parts.header.key_id))?;
        verify_parts(parts, key, &self.store_id)
    }

    pub(crate) fn public(&self, project: &str) -> PublicKeys {
        let ring = self
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        PublicKeys {
            store_id: crate::secret::b64(&self.store_id),
            project: project.to_owned(),
            keys: ring
                .verifying
                .iter()
                .map(|(id, k)| PublicKey {
                    key_id: *id,
                    public_key: crate::secret::b64(k.as_bytes()),
                })
                .collect(),
        }
    }
}

/// A signing key written but not yet in use.
#[derive(Debug)]
pub(crate) struct NewKey(SigningKeyRecord);

fn new_record(now_ms: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        key_id: u64::from_le_bytes(crate::secret::random_bytes()),
        secret: crate::secret::random_bytes(),
        created_ms: now_ms,
    }
}

/// Encodes and signs `claims` (whose `key_id` names `key`).
pub(crate) fn encode(claims: &TokenClaims, key: &SigningKey, store_id: &[u8; 16]) -> String {
    let header = format::encode_header(claims.kind, claims.key_id);
    let body = format::encode_body(claims);
    let signature: Signature = key.sign(&format::signing_input(&header, &body, store_id));
    let mut bytes = Vec::with_capacity(header.len() + body.len() + format::SIGNATURE_LEN);
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&signature.to_bytes());
    format!("{}{}", format::PREFIX, crate::secret::b64(&bytes))
}

/// `verify_strict` over the signing input, then the body.
pub(crate) fn verify_parts(
    parts: &Parts,
    key: &VerifyingKey,
    store_id: &[u8; 16],
) -> std::result::Result<TokenClaims, TokenError> {
    let input = format::signing_input(&parts.header_bytes, &parts.body, store_id);
    let signature = Signature::from_bytes(&parts.signature);
    key.verify_strict(&input, &signature)
        .map_err(|_| TokenError::BadSignature)?;
    format::decode_body(parts.header, &parts.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_secret_is_wiped_when_its_record_drops() {
        // Without the `Drop` impl the record (plain integers and bytes) would need no drop.
        assert!(std::mem::needs_drop::<SigningKeyRecord>());
        let mut record = new_record(0);
        assert_ne!(record.secret, [0; 32]);
        record.wipe();
        assert_eq!(record.secret, [0; 32]);
    }

    #[test]
    fn debug_redacts_the_secret_keys() {
        let record = new_record(0);
        let shown = format!("{record:?}");
        assert_eq!(
            shown,
            format!("SigningKeyRecord({:016x}, secret redacted)", record.key_id)
        );
        let ring = KeyRing {
            store_id: [0; 16],
            ring: RwLock::new(Ring {
                signing: None,
                newest_ms: i64::MIN,
                verifying: BTreeMap::new(),
            }),
        };
        ring.install(&record);
        assert_eq!(format!("{ring:?}"), "KeyRing(redacted)");
    }
}
