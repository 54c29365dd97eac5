//! Token text through the whole offline verification order (size, prefix, base64,
//! header, key, signature, claims, project, time): an error or claims, never a panic.
//! Keys and seeds are the test vectors of docs/TOKEN.md, so inputs can get past the signature.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use permdb::{PublicKey, PublicKeys, TokenVerifier};

fn verifier() -> &'static TokenVerifier {
    static V: OnceLock<TokenVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = PublicKeys {
            store_id: "oKGio6SlpqeoqaqrrK2urw".into(),
            project: "default".into(),
            keys: vec![PublicKey {
                key_id: 0x0123_4567_89ab_cdef,
                public_key: "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ".into(),
            }],
        };
        TokenVerifier::new(&keys).expect("vector keys")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("time");
        if let Ok(claims) = verifier().verify(text, now) {
            assert!(claims.expires_at >= claims.issued_at || claims.expires_at < now);
        }
    }
});
