//! Replays the committed fuzz corpora (fuzz/corpus/*) through the same checks the
//! fuzz targets make, so `cargo test` catches a regression on any input fuzzing once found.

use std::path::PathBuf;

use crate::perm::{Permission, Role};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "empty corpus {}", dir.display());
    inputs
}

#[test]
fn role_corpus() {
    for input in corpus("role") {
        if let Ok(s) = std::str::from_utf8(&input)
            && let Ok(role) = s.parse::<Role>()
        {
            assert_eq!(role.to_string(), s);
        }
    }
}

#[test]
fn permission_corpus() {
    for input in corpus("permission") {
        if let Ok(s) = std::str::from_utf8(&input)
            && let Ok(p) = s.parse::<Permission>()
        {
            assert_eq!(p.to_string(), s);
        }
    }
}

#[test]
fn stored_document_corpus() {
    // Decodes, serializes, and re-encodes to the same record and document (or is refused).
    for input in corpus("stored_document") {
        crate::fuzzing::DocumentTarget::check_stored_document(&input);
    }
}

#[test]
fn index_container_corpus() {
    // Decodes as the format's rules read it (or is refused), and re-encodes in the
    // smallest form to bytes that decode to the same set.
    for input in corpus("index_container") {
        crate::fuzzing::DocumentTarget::check_container(&input);
    }
}

#[test]
fn token_corpus() {
    use crate::token::{PublicKey, PublicKeys, TokenVerifier};
    // The keys of docs/TOKEN.md's test vectors, as the fuzz target uses them.
    let keys = PublicKeys {
        store_id: "oKGio6SlpqeoqaqrrK2urw".into(),
        project: "default".into(),
        keys: vec![PublicKey {
            key_id: 0x0123_4567_89ab_cdef,
            public_key: "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ".into(),
        }],
    };
    let verifier = TokenVerifier::new(&keys).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap();
    let mut verified = 0;
    let mut signed_verified = 0;
    for input in corpus("token") {
        if let Ok(text) = std::str::from_utf8(&input)
            && let Ok(claims) = verifier.verify(text, now)
        {
            token_holds(text, &claims, now);
            verified += 1;
        }
        // As the fuzz target does: the input's claims signed with the vector key.
        let text = vector_signed(&token_unsigned_part(&input));
        if let Ok(claims) = verifier.verify(&text, now) {
            token_holds(&text, &claims, now);
            signed_verified += 1;
        }
    }
    assert!(verified >= 2, "the two vector tokens verify");
    assert!(
        signed_verified >= 2,
        "re-signed, at least the two vector tokens verify"
    );
}

/// The vector signing key of docs/TOKEN.md (the bytes 01 02 … 20) and store id (a0 … af).
fn vector_key() -> (ed25519_dalek::SigningKey, [u8; 16]) {
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let store_id: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
    (ed25519_dalek::SigningKey::from_bytes(&secret), store_id)
}

/// `pdb1.` and the payload of `header_and_body` signed with the vector key.
fn vector_signed(header_and_body: &[u8]) -> String {
    use ed25519_dalek::Signer as _;
    let (key, store_id) = vector_key();
    let (header, body) = header_and_body.split_at(10.min(header_and_body.len()));
    let input = crate::token::format::signing_input(header, body, &store_id);
    let mut payload = header_and_body.to_vec();
    payload.extend_from_slice(&key.sign(&input).to_bytes());
    format!("pdb1.{}", crate::secret::b64(&payload))
}

/// The fuzz target's header and body for `input`: those of its token text, else the
/// rest XORed onto the access vector's (first byte even) or the vector header followed
/// by the rest (first byte odd, type from bit 1).
fn token_unsigned_part(input: &[u8]) -> Vec<u8> {
    use crate::token::format;
    if let Some(payload) = std::str::from_utf8(input)
        .ok()
        .and_then(|text| text.split_once('.'))
        .and_then(|(_, payload)| crate::secret::b64_decode(payload))
        .filter(|payload| payload.len() >= 10 + 64)
    {
        return payload[..payload.len() - 64].to_vec();
    }
    let at = |s| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let vector = crate::token::TokenClaims {
        kind: crate::token::TokenKind::Access,
        key_id: 0x0123_4567_89ab_cdef,
        project: "default".into(),
        user_id: "user-a".into(),
        session_id: "session-1".into(),
        token_id: std::array::from_fn(|i| 0x10 + i as u8),
        issued_at: at(1_700_000_000),
        not_before: at(1_700_000_000),
        expires_at: at(1_700_000_900),
    };
    let mut out = format::encode_header(vector.kind, vector.key_id).to_vec();
    let (mode, rest) = input.split_first().unwrap_or((&0, &[]));
    if mode & 1 == 0 {
        out.extend_from_slice(&format::encode_body(&vector));
        for (i, b) in rest.iter().enumerate() {
            match out.get_mut(i) {
                Some(byte) => *byte ^= b,
                None => out.push(*b),
            }
        }
    } else {
        out[1] = 1 + ((mode >> 1) & 1);
        out.extend_from_slice(rest);
    }
    out
}

/// What must hold of a token `text` that verified at `now` to `claims` (the fuzz target's
/// post-verify assertions).
fn token_holds(text: &str, claims: &crate::token::TokenClaims, now: time::OffsetDateTime) {
    use crate::token::format;
    let payload = crate::secret::b64_decode(text.strip_prefix("pdb1.").unwrap()).unwrap();
    let (header_and_body, signature) = payload.split_at(payload.len() - 64);
    assert_eq!(
        vector_signed(header_and_body),
        text,
        "verified a signature the vector key did not make"
    );
    let mut expected = format::encode_header(claims.kind, claims.key_id).to_vec();
    expected.extend_from_slice(&format::encode_body(claims));
    assert_eq!(
        header_and_body, expected,
        "verified claims are not the signed bytes"
    );
    assert_eq!(signature.len(), 64);
    assert_eq!(claims.key_id, 0x0123_4567_89ab_cdef);
    assert_eq!(claims.project, "default");
    // max(issued at, not before) - leeway <= now <= expires at + leeway (a bound past
    // the calendar is no bound).
    let leeway = time::Duration::seconds(60);
    let start = claims.issued_at.max(claims.not_before);
    assert!(
        start
            .checked_sub(leeway)
            .is_none_or(|earliest| earliest <= now),
        "not valid yet: {claims:?}"
    );
    assert!(
        claims
            .expires_at
            .checked_add(leeway)
            .is_none_or(|latest| now <= latest),
        "expired: {claims:?}"
    );
    assert!(
        start <= claims.expires_at,
        "ends before it starts: {claims:?}"
    );
    assert_eq!(
        crate::token::TokenClaims::decode_unverified(text).as_ref(),
        Ok(claims)
    );
}

#[test]
fn query_json_corpus() {
    use crate::query::Query;
    for input in corpus("query_json") {
        if let Ok(text) = std::str::from_utf8(&input)
            && let Ok(q) = Query::from_json(text)
        {
            assert_eq!(Query::from_json(&q.to_json()).unwrap(), q);
        }
    }
}

#[test]
fn document_json_corpus() {
    let target = crate::fuzzing::DocumentTarget::new().unwrap();
    for input in corpus("document_json") {
        target.check(&input);
    }
}

#[cfg(feature = "format3-upgrade")]
#[test]
fn format3_record_corpus() {
    // Refused, or re-encoded to bytes that read back as written; the seeds (records of
    // the format-3 fixture) are accepted.
    let mut accepted = 0;
    for input in corpus("format3_record") {
        if let Some((kind, record)) = input.split_first()
            && crate::fuzzing::recode_format3(*kind, record)
        {
            accepted += 1;
        }
    }
    assert!(accepted >= 11, "{accepted} accepted");
}

#[test]
fn dump_import_corpus() {
    // Refused or accepted, never a panic; the empty dump is accepted.
    let accepted = corpus("dump_import")
        .iter()
        .filter(|input| crate::fuzzing::import_dump(input))
        .count();
    assert!(accepted >= 1, "{accepted} accepted");
}
