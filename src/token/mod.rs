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

pub use crate::error::TokenError;
