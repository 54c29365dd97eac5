//! Token text through the whole offline verification order (size, prefix, base64,
//! header, key, signature, claims, project, time): an error or claims, never a panic.
//! Keys and seeds are the test vectors of docs/TOKEN.md.
//!
//! A fuzzer cannot forge a signature, so each input is also turned into a header and body
//! that are signed with the vector's published signing key (the bytes `01 02 … 20`):
//! - input that is token text with a payload: its header and body (signature replaced);
//! - other input whose first byte is even: the rest XORed onto the vector's header and
//!   body (longer input appends), so each input byte mutates one byte of the claims;
//! - other input whose first byte is odd: the vector header (type from bit 1 of the first
//!   byte) followed by the rest as the body.
//!
//! That token is verified too, and must get exactly the answer docs/TOKEN.md's rules give
//! (`answer_by_the_rules`). Whatever verifies, either way, must hold what a verified token
//! holds (`verified`).
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use libfuzzer_sys::fuzz_target;
use permdb::{
    MAX_TOKEN_LEN, PublicKey, PublicKeys, TokenClaims, TokenError, TokenKind, TokenVerifier,
};
use time::OffsetDateTime;

const KEY_ID: u64 = 0x0123_4567_89ab_cdef;
const PROJECT: &str = "default";
const STORE_ID: [u8; 16] = [
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
];
const PUBLIC_KEY: &str = "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ";
/// Verification time: 100 s after the vectors' issue time.
const NOW: i64 = 1_700_000_100;
/// `TokenVerifier`'s default leeway, in seconds.
const LEEWAY: i64 = 60;
const HEADER_LEN: usize = 10;
const SIGNATURE_LEN: usize = 64;

fn verifier() -> &'static TokenVerifier {
    static V: OnceLock<TokenVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = PublicKeys {
            store_id: URL_SAFE_NO_PAD.encode(STORE_ID),
            project: PROJECT.into(),
            keys: vec![PublicKey {
                key_id: KEY_ID,
                public_key: PUBLIC_KEY.into(),
            }],
        };
        TokenVerifier::new(&keys).expect("vector keys")
    })
}

/// The vector signing key (docs/TOKEN.md, "Test vectors").
fn signing_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| {
        let key = SigningKey::from_bytes(&std::array::from_fn(|i| i as u8 + 1));
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            PUBLIC_KEY,
            "the vector signing key's public key"
        );
        key
    })
}

/// `PAE("permdb-token-v1", header, body, store_id)`, as docs/TOKEN.md specifies.
fn signing_input(header: &[u8], body: &[u8]) -> Vec<u8> {
    let pieces: [&[u8]; 4] = [b"permdb-token-v1", header, body, &STORE_ID];
    let mut out = (pieces.len() as u64).to_le_bytes().to_vec();
    for p in pieces {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn signature(header: &[u8], body: &[u8]) -> [u8; SIGNATURE_LEN] {
    signing_key().sign(&signing_input(header, body)).to_bytes()
}

/// `pdb1.` and the base64url of `header || body || signature`, signed with the vector key.
fn signed_token(header_and_body: &[u8]) -> String {
    let (header, body) = header_and_body.split_at(HEADER_LEN.min(header_and_body.len()));
    let mut payload = header_and_body.to_vec();
    payload.extend_from_slice(&signature(header, body));
    format!("pdb1.{}", URL_SAFE_NO_PAD.encode(payload))
}

/// Header and body of `claims`, encoded as docs/TOKEN.md's table lays them out.
fn unsigned_bytes(claims: &TokenClaims) -> Vec<u8> {
    let code = match claims.kind {
        TokenKind::Access => 1,
        TokenKind::OneTime => 2,
    };
    let mut out = vec![1, code];
    out.extend_from_slice(&claims.key_id.to_le_bytes());
    for s in [&claims.project, &claims.user_id, &claims.session_id] {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&claims.token_id);
    for t in [claims.issued_at, claims.not_before, claims.expires_at] {
        out.extend_from_slice(&t.unix_timestamp().to_le_bytes());
    }
    out
}

/// The access token vector's header and body.
fn vector_unsigned() -> &'static [u8] {
    static V: OnceLock<Vec<u8>> = OnceLock::new();
    V.get_or_init(|| {
        let at = |s| OffsetDateTime::from_unix_timestamp(s).expect("vector time");
        unsigned_bytes(&TokenClaims {
            kind: TokenKind::Access,
            key_id: KEY_ID,
            project: PROJECT.into(),
            user_id: "user-a".into(),
            session_id: "session-1".into(),
            token_id: std::array::from_fn(|i| 0x10 + i as u8),
            issued_at: at(1_700_000_000),
            not_before: at(1_700_000_000),
            expires_at: at(1_700_000_900),
        })
    })
}

/// The unsigned part (header and body) the input stands for (see the module doc).
fn unsigned_part(data: &[u8]) -> Vec<u8> {
    if let Some(payload) = std::str::from_utf8(data)
        .ok()
        .and_then(|text| text.split_once('.'))
        .and_then(|(_, payload)| URL_SAFE_NO_PAD.decode(payload).ok())
        .filter(|payload| payload.len() >= HEADER_LEN + SIGNATURE_LEN)
    {
        return payload[..payload.len() - SIGNATURE_LEN].to_vec();
    }
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    if mode & 1 == 0 {
        let mut out = vector_unsigned().to_vec();
        for (i, b) in rest.iter().enumerate() {
            match out.get_mut(i) {
                Some(byte) => *byte ^= b,
                None => out.push(*b),
            }
        }
        return out;
    }
    let mut out = vector_unsigned()[..HEADER_LEN].to_vec();
    out[1] = 1 + ((mode >> 1) & 1);
    out.extend_from_slice(rest);
    out
}

fn is_id(s: &[u8]) -> bool {
    (1..=36).contains(&s.len())
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !matches!(s.first(), Some(b'.' | b'_' | b'-'))
}

/// The body's claims by docs/TOKEN.md's table: three ids, the token id, three times in
/// the calendar's range, nothing after. `None` when it breaks a rule.
fn claims_by_the_rules(kind: TokenKind, key_id: u64, body: &[u8]) -> Option<TokenClaims> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        (rest.len() >= n).then(|| {
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            head
        })
    }
    fn id(rest: &mut &[u8]) -> Option<String> {
        let len = usize::from(*take(rest, 1)?.first()?);
        let s = take(rest, len)?;
        is_id(s).then(|| String::from_utf8_lossy(s).into_owned())
    }
    fn at(rest: &mut &[u8]) -> Option<OffsetDateTime> {
        let secs = i64::from_le_bytes(take(rest, 8)?.try_into().ok()?);
        OffsetDateTime::from_unix_timestamp(secs).ok()
    }
    let mut rest = body;
    let claims = TokenClaims {
        kind,
        key_id,
        project: id(&mut rest)?,
        user_id: id(&mut rest)?,
        session_id: id(&mut rest)?,
        token_id: take(&mut rest, 16)?.try_into().ok()?,
        issued_at: at(&mut rest)?,
        not_before: at(&mut rest)?,
        expires_at: at(&mut rest)?,
    };
    rest.is_empty().then_some(claims)
}

/// What `verify` must answer, at `NOW`, for `text`, the vector-key-signed token of
/// `header_and_body`, by the verification order of docs/TOKEN.md (steps 1 to 9).
fn answer_by_the_rules(text: &str, header_and_body: &[u8]) -> Result<TokenClaims, TokenError> {
    let payload_len = header_and_body.len() + SIGNATURE_LEN;
    if text.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong {
            len: text.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let body_len = header_and_body.len().checked_sub(HEADER_LEN);
    if !body_len.is_some_and(|n| (3 * 2 + 16 + 24..=3 * 37 + 16 + 24).contains(&n)) {
        return Err(TokenError::BadLength(payload_len));
    }
    let (header, body) = header_and_body.split_at(HEADER_LEN);
    if header[0] != 1 {
        return Err(TokenError::UnsupportedVersion(u32::from(header[0])));
    }
    let kind = match header[1] {
        1 => TokenKind::Access,
        2 => TokenKind::OneTime,
        other => return Err(TokenError::UnknownType(other)),
    };
    let key_id = u64::from_le_bytes(header[2..].try_into().expect("8 bytes"));
    if key_id != KEY_ID {
        return Err(TokenError::UnknownKey(key_id));
    }
    let claims = claims_by_the_rules(kind, key_id, body)
        .ok_or_else(|| TokenError::BadClaims("by the rules".into()))?;
    if claims.project != PROJECT {
        return Err(TokenError::WrongProject);
    }
    let start = claims.issued_at.max(claims.not_before).unix_timestamp();
    if NOW < start - LEEWAY {
        return Err(TokenError::NotYetValid);
    }
    if claims.expires_at.unix_timestamp() < start
        || NOW > claims.expires_at.unix_timestamp() + LEEWAY
    {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// What must hold of `text` and the claims `verify` returned for it at `NOW`.
fn verified(text: &str, claims: &TokenClaims) {
    let payload = text
        .strip_prefix("pdb1.")
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .expect("a verified token is pdb1. and base64url");
    assert!(
        payload.len() >= HEADER_LEN + SIGNATURE_LEN,
        "verified a short payload"
    );
    let (header_and_body, sig) = payload.split_at(payload.len() - SIGNATURE_LEN);
    let (header, body) = header_and_body.split_at(HEADER_LEN);
    // The only key is the vector's, and a fuzzer cannot forge its signatures (Ed25519
    // signing is deterministic, and `verify_strict` takes no other encoding of one).
    assert_eq!(
        sig,
        signature(header, body),
        "verified a signature the key did not make"
    );
    // The claims are exactly what was signed: they re-encode to the header and body.
    for s in [&claims.project, &claims.user_id, &claims.session_id] {
        assert!(is_id(s.as_bytes()), "verified claims hold the non-id {s:?}");
    }
    assert_eq!(
        header_and_body,
        unsigned_bytes(claims),
        "claims {claims:?} are not the signed header and body"
    );
    assert_eq!(claims.key_id, KEY_ID, "verified under an unknown key");
    assert_eq!(
        claims.project, PROJECT,
        "verified a token of another project"
    );
    // max(issued at, not before) - leeway <= now <= expires at + leeway
    let start = claims.issued_at.max(claims.not_before).unix_timestamp();
    assert!(
        start - LEEWAY <= NOW,
        "verified a token not valid yet: {claims:?}"
    );
    assert!(
        NOW <= claims.expires_at.unix_timestamp() + LEEWAY,
        "verified an expired token: {claims:?}"
    );
    assert!(
        start <= claims.expires_at.unix_timestamp(),
        "verified a token that ends before it starts: {claims:?}"
    );
    assert_eq!(
        TokenClaims::decode_unverified(text).as_ref(),
        Ok(claims),
        "inspecting a verified token reads other claims"
    );
}

fuzz_target!(|data: &[u8]| {
    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    // The input as token text: past the signature only as one of the two vector tokens.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(claims) = verifier().verify(text, now) {
            verified(text, &claims);
        }
    }
    // The input's claims, signed with the vector key.
    let header_and_body = unsigned_part(data);
    let text = signed_token(&header_and_body);
    let answer = verifier().verify(&text, now);
    match (&answer, answer_by_the_rules(&text, &header_and_body)) {
        (Ok(claims), Ok(expected)) => {
            assert_eq!(claims, &expected, "verified to other claims than signed");
            verified(&text, claims);
        }
        (Err(TokenError::BadClaims(_)), Err(TokenError::BadClaims(_))) => {}
        (answer, expected) => assert_eq!(
            answer, &expected,
            "signed {header_and_body:02x?}: verify answers {answer:?}, the rules {expected:?}"
        ),
    }
});
