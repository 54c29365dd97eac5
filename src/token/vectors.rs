//! The test vectors of docs/TOKEN.md, recomputed and checked byte for byte against
//! the document, so the document and the code cannot drift apart.

use ed25519_dalek::SigningKey;
use time::OffsetDateTime;

use super::TokenError;
use super::format::{self, TokenClaims, TokenKind};
use super::keyring::{encode, verify_parts};

const DOC: &str = include_str!("../../docs/TOKEN.md");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fixed inputs of vector `kind`.
fn vector(kind: TokenKind) -> (SigningKey, [u8; 16], TokenClaims) {
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let store_id: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
    let at = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
    let claims = TokenClaims {
        kind,
        key_id: 0x0123_4567_89ab_cdef,
        project: "default".into(),
        user_id: "user-a".into(),
        session_id: "session-1".into(),
        token_id: std::array::from_fn(|i| 0x10 + i as u8),
        issued_at: at(1_700_000_000),
        not_before: at(1_700_000_000),
        expires_at: at(1_700_000_900),
    };
    (SigningKey::from_bytes(&secret), store_id, claims)
}

/// The lines docs/TOKEN.md must hold for one vector.
fn lines(kind: TokenKind) -> Vec<String> {
    let (key, store_id, claims) = vector(kind);
    let header = format::encode_header(kind, claims.key_id);
    let body = format::encode_body(&claims);
    let input = format::signing_input(&header, &body, &store_id);
    let token = encode(&claims, &key, &store_id);
    let raw = crate::secret::b64_decode(token.strip_prefix("pdb1.").unwrap()).unwrap();
    let signature = &raw[raw.len() - 64..];
    vec![
        format!("public key    {}", hex(key.verifying_key().as_bytes())),
        format!("header        {}", hex(&header)),
        format!("body          {}", hex(&body)),
        format!("signing input {}", hex(&input)),
        format!("signature     {}", hex(signature)),
        format!("token         {token}"),
    ]
}

#[test]
fn docs_hold_the_vectors_byte_for_byte() {
    // PERMDB_PRINT_VECTORS=1 prints every line, to write the document after a format change.
    let all: Vec<String> = [TokenKind::Access, TokenKind::OneTime]
        .into_iter()
        .flat_map(lines)
        .collect();
    if std::env::var_os("PERMDB_PRINT_VECTORS").is_some() {
        println!("{}", all.join("\n"));
    }
    for line in all {
        assert!(DOC.contains(&line), "docs/TOKEN.md lacks:\n{line}");
    }
}

#[test]
fn vectors_verify_and_decode_to_their_claims() {
    for kind in [TokenKind::Access, TokenKind::OneTime] {
        let (key, store_id, claims) = vector(kind);
        let token = encode(&claims, &key, &store_id);
        let parts = format::split(&token).unwrap();
        assert_eq!(
            verify_parts(&parts, &key.verifying_key(), &store_id).unwrap(),
            claims
        );
        // Another store's id, or the other token type, never verifies.
        let other_store = [0u8; 16];
        assert_eq!(
            verify_parts(&parts, &key.verifying_key(), &other_store),
            Err(TokenError::BadSignature)
        );
        let mut retyped = format::split(&token).unwrap();
        retyped.header_bytes[1] = if kind == TokenKind::Access { 2 } else { 1 };
        assert_eq!(
            verify_parts(&retyped, &key.verifying_key(), &store_id),
            Err(TokenError::BadSignature)
        );
    }
}
