//! permdb's own signed tokens: the byte format (`format`), the signing keys kept in
//! the store (`keyring`), and the offline verifier. The layout is written up in docs/TOKEN.md.

pub(crate) mod format;
pub(crate) mod issue;
pub(crate) mod keyring;
#[cfg(test)]
mod vectors;
mod verifier;

pub use format::{MAX_TOKEN_LEN, TokenClaims, TokenKind};
pub use issue::Jwt;
pub use keyring::{PublicKey, PublicKeys};
pub use verifier::TokenVerifier;

/// Why a token was refused. Each check of the verification order has its own variant;
/// messages help the caller and never contain the token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The text is longer than any token permdb issues.
    #[error("token is {len} bytes, at most {max}")]
    TooLong {
        /// Length of the text given.
        len: usize,
        /// The limit, [`MAX_TOKEN_LEN`].
        max: usize,
    },
    /// The text does not start with `pdb<version>.`.
    #[error("not a permdb token (expected the prefix \"pdb1.\")")]
    BadPrefix,
    /// A permdb token of a version this build does not read.
    #[error("unsupported token version {0}")]
    UnsupportedVersion(u32),
    /// The payload is not canonical base64url without padding.
    #[error("token payload is not canonical base64url without padding")]
    BadEncoding,
    /// The payload is too short or too long for a token.
    #[error("token payload of {0} bytes has the wrong length")]
    BadLength(usize),
    /// The header names a token type this build does not know.
    #[error("unknown token type {0}")]
    UnknownType(u8),
    /// No verifying key with the header's key id (unknown, retired, or another store's).
    #[error("token signed by unknown key {0:016x}")]
    UnknownKey(u64),
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
    /// Signed claims that do not decode (only a broken signer produces these).
    #[error("token claims malformed: {0}")]
    BadClaims(String),
    /// Issued for another project.
    #[error("token was issued for another project")]
    WrongProject,
    /// Past its expiry (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Issued in the future, or not valid yet (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// The session it was issued for has been deleted.
    #[error("the token's session no longer exists")]
    SessionRevoked,
    /// The session it was issued for has expired.
    #[error("the token's session has expired")]
    SessionExpired,
    /// The user has been deleted.
    #[error("the token's user no longer exists")]
    UserDeleted,
    /// The user has been blocked.
    #[error("the token's user is blocked")]
    UserBlocked,
    /// A one-time token used before.
    #[error("one-time token already used")]
    Reused,
}
