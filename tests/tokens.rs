//! Tokens end to end: every refusal of the verification order, corruption of any
//! bit or byte, rotation and retirement of keys, and the offline verifier.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use permdb::{Client, Db, Error, TokenError, TokenVerifier};
use proptest::prelude::*;
use time::Duration;

fn setup() -> (Db, permdb::ManualClock) {
    let (options, clock) = common::test_options();
    let db = Db::temporary_with(options).unwrap();
    common::seed(&db);
    (db, clock)
}

fn refusal(r: permdb::Result<Client>) -> TokenError {
    match r {
        Err(Error::InvalidToken(e)) => e,
        Err(other) => panic!("expected a token refusal, got {other:?}"),
        Ok(c) => panic!("token accepted: {c:?}"),
    }
}

fn raw(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.strip_prefix("pdb1.").unwrap())
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    format!("pdb1.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn a_valid_token_acts_as_its_user_with_their_roles() {
    let (db, _) = setup();
    let jwt = common::sign_in(&db, "a").account().create_jwt().unwrap();
    assert!(
        jwt.jwt.starts_with("pdb1.") && jwt.jwt.len() < 300,
        "{}",
        jwt.jwt
    );
    assert!(
        !format!("{jwt:?}").contains(&jwt.jwt),
        "Debug must redact the token"
    );
    let as_user = db.client().set_jwt(&jwt.jwt).unwrap();
    let page = as_user
        .schema("db")
        .collection("birthdays")
        .find(&[])
        .unwrap();
    assert_eq!((page.total, page.documents[0].id()), (1, "doc1"));
    assert_eq!(as_user.account().get().unwrap().id, "user-a");
}

#[test]
fn malformed_text_is_refused_before_any_key_is_looked_up() {
    let (db, _) = setup();
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let c = db.client();
    assert_eq!(
        refusal(c.set_jwt(&"A".repeat(513))),
        TokenError::TooLong { len: 513, max: 512 }
    );
    for bad in ["", "jwt", "Bearer pdb1.x", "pdb.", "pdbx.AAAA", "PDB1.AAAA"] {
        assert_eq!(refusal(c.set_jwt(bad)), TokenError::BadPrefix, "{bad:?}");
    }
    assert_eq!(
        refusal(c.set_jwt("pdb2.AAAA")),
        TokenError::UnsupportedVersion(2)
    );
    assert_eq!(
        refusal(c.set_jwt(&format!("{jwt}="))),
        TokenError::BadEncoding
    );
    assert_eq!(
        refusal(c.set_jwt(&format!("{} ", jwt))),
        TokenError::BadEncoding
    );
    assert_eq!(
        refusal(c.set_jwt(&jwt.replacen('.', ". ", 1))),
        TokenError::BadEncoding
    );
    let std_alphabet = jwt.replace('-', "+").replace('_', "/");
    if std_alphabet != jwt {
        assert_eq!(refusal(c.set_jwt(&std_alphabet)), TokenError::BadEncoding);
    }
    // Non-zero trailing bits: when the payload's length is not a multiple of 3, its last
    // character carries 2 or 4 unused low bits, which must be zero. Issued tokens are a
    // multiple of 3 long, so one and two bytes are added to get both cases.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for extra in [1, 2] {
        let mut bytes = raw(&jwt);
        bytes.extend(std::iter::repeat_n(0u8, extra));
        let clean = text(&bytes);
        assert_ne!(
            (clean.len() - 5) % 4,
            0,
            "{extra} extra bytes leave unused bits"
        );
        // The clean text gets past the encoding check (it fails later, on the signature).
        assert_ne!(refusal(c.set_jwt(&clean)), TokenError::BadEncoding);
        let last = *clean.as_bytes().last().unwrap();
        let i = ALPHABET.iter().position(|c| *c == last).unwrap();
        let mut tweaked = clean.clone();
        tweaked.pop();
        tweaked.push(ALPHABET[i + 1] as char);
        assert_eq!(
            refusal(c.set_jwt(&tweaked)),
            TokenError::BadEncoding,
            "{extra} extra bytes, lowest unused bit set"
        );
    }
    assert_eq!(
        refusal(c.set_jwt(&text(&[1u8; 20]))),
        TokenError::BadLength(20)
    );
    // Header 10, body 46 to 151 (three strings of 1 to 36 bytes with their lengths, the
    // token id, three times), signature 64: 120 to 225 bytes. Either side of each bound.
    let of_len = |n: usize| {
        let mut bytes = raw(&jwt);
        bytes.resize(n, 1);
        refusal(c.set_jwt(&text(&bytes)))
    };
    for n in [119, 226] {
        assert_eq!(of_len(n), TokenError::BadLength(n), "{n} bytes");
    }
    for n in [120, 225] {
        assert!(!matches!(of_len(n), TokenError::BadLength(_)), "{n} bytes");
    }
    let mut bytes = raw(&jwt);
    bytes[0] = 9;
    assert_eq!(
        refusal(c.set_jwt(&text(&bytes))),
        TokenError::UnsupportedVersion(9)
    );
    let mut bytes = raw(&jwt);
    bytes[1] = 7;
    assert_eq!(
        refusal(c.set_jwt(&text(&bytes))),
        TokenError::UnknownType(7)
    );
}

#[test]
fn unknown_keys_and_bad_signatures_are_refused() {
    let (db, _) = setup();
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let mut bytes = raw(&jwt);
    bytes[2] ^= 1;
    assert!(matches!(
        refusal(db.client().set_jwt(&text(&bytes))),
        TokenError::UnknownKey(_)
    ));
    let mut bytes = raw(&jwt);
    let n = bytes.len();
    bytes[n - 70] ^= 1; // the last byte of the expiry
    assert_eq!(
        refusal(db.client().set_jwt(&text(&bytes))),
        TokenError::BadSignature
    );
    // Another store never accepts this store's tokens.
    let (other, _) = setup();
    assert!(matches!(
        refusal(other.client().set_jwt(&jwt)),
        TokenError::UnknownKey(_)
    ));
}

#[test]
fn times_are_checked_with_the_leeway() {
    let (db, clock) = setup();
    let alice = common::sign_in(&db, "a");
    let jwt = alice.account().create_jwt().unwrap();
    assert_eq!(jwt.expires_at - clock_now(&clock), Duration::minutes(15));
    clock.advance(Duration::minutes(15) + Duration::seconds(59));
    db.client().set_jwt(&jwt.jwt).unwrap();
    clock.advance(Duration::seconds(2));
    assert_eq!(refusal(db.client().set_jwt(&jwt.jwt)), TokenError::Expired);
    // Issued in the future: a token made later, checked with the clock set back.
    let later = alice.account().create_jwt().unwrap();
    clock.advance(Duration::minutes(-2));
    assert_eq!(
        refusal(db.client().set_jwt(&later.jwt)),
        TokenError::NotYetValid
    );
    clock.advance(Duration::seconds(61));
    db.client().set_jwt(&later.jwt).unwrap();
}

fn clock_now(clock: &permdb::ManualClock) -> time::OffsetDateTime {
    use permdb::Clock;
    clock.now()
}

#[test]
fn ended_sessions_and_blocked_or_deleted_users_are_refused_at_once() {
    let (db, clock) = setup();
    let alice = common::sign_in(&db, "a");
    let jwt = alice.account().create_jwt().unwrap().jwt;
    db.root().users().update_status("user-a", false).unwrap();
    assert_eq!(refusal(db.client().set_jwt(&jwt)), TokenError::UserBlocked);
    db.root().users().update_status("user-a", true).unwrap();
    db.client().set_jwt(&jwt).unwrap();
    alice.account().delete_session("current").unwrap();
    assert_eq!(
        refusal(db.client().set_jwt(&jwt)),
        TokenError::SessionRevoked
    );

    // Deleting a user deletes their sessions in the same write: the token dies with them.
    let bob = common::sign_in(&db, "b");
    let jwt = bob.account().create_jwt().unwrap().jwt;
    db.root().users().delete("user-b").unwrap();
    assert!(matches!(
        refusal(db.client().set_jwt(&jwt)),
        TokenError::SessionRevoked | TokenError::UserDeleted
    ));

    // A session that expires takes its tokens with it.
    let (options, clock2) = common::test_options();
    let short = Db::temporary_with(options.session_ttl(Duration::minutes(5))).unwrap();
    common::seed(&short);
    let jwt = common::sign_in(&short, "c")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    clock2.advance(Duration::minutes(6));
    assert_eq!(
        refusal(short.client().set_jwt(&jwt)),
        TokenError::SessionExpired
    );
    drop(clock);
}

#[test]
fn one_time_tokens_work_once_and_refusals_do_not_use_them_up() {
    let (db, _) = setup();
    let alice = common::sign_in(&db, "a");
    let once = alice.account().create_one_time_jwt().unwrap().jwt;
    db.root().users().update_status("user-a", false).unwrap();
    assert_eq!(refusal(db.client().set_jwt(&once)), TokenError::UserBlocked);
    db.root().users().update_status("user-a", true).unwrap();
    db.client().set_jwt(&once).unwrap();
    assert_eq!(refusal(db.client().set_jwt(&once)), TokenError::Reused);
    // Access tokens are reusable until they expire.
    let access = alice.account().create_jwt().unwrap().jwt;
    db.client().set_jwt(&access).unwrap();
    db.client().set_jwt(&access).unwrap();
}

#[test]
fn a_token_cannot_mint_a_token() {
    let (db, _) = setup();
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let backend = db.client().set_jwt(&jwt).unwrap();
    let err = backend.account().create_jwt().unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { ref message, .. } if message.contains("token cannot create tokens")),
        "{err}"
    );
    assert!(
        db.root()
            .impersonate("user-a")
            .unwrap()
            .account()
            .create_jwt()
            .is_err()
    );
    assert!(db.client().account().create_jwt().is_err());
}

#[test]
fn wrong_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (options, _) = common::test_options();
    let jwt = {
        let db = Db::open_with(dir.path(), options.clone().project("p1")).unwrap();
        common::seed(&db);
        common::sign_in(&db, "a")
            .account()
            .create_jwt()
            .unwrap()
            .jwt
    };
    let db =
        common::when_unlocked(|| Db::open_with(dir.path(), options.clone().project("p2"))).unwrap();
    assert_eq!(refusal(db.client().set_jwt(&jwt)), TokenError::WrongProject);
    drop(db);
    let db =
        common::when_unlocked(|| Db::open_with(dir.path(), options.clone().project("p1"))).unwrap();
    db.client().set_jwt(&jwt).unwrap();
}

#[test]
fn rotation_retirement_and_the_offline_verifier() {
    let (db, clock) = setup();
    let alice = common::sign_in(&db, "a");
    let old = alice.account().create_jwt().unwrap().jwt;
    let public = db.root().token_keys().public().unwrap();
    assert_eq!(public.keys.len(), 1);
    let old_key = public.keys[0].key_id;
    let new_key = db.root().token_keys().rotate().unwrap();
    let new = alice.account().create_jwt().unwrap().jwt;
    assert_eq!(raw(&new)[2..10], new_key.to_le_bytes());
    db.client().set_jwt(&old).unwrap();
    db.client().set_jwt(&new).unwrap();

    // Offline: from the exported keys, through JSON, in "another process".
    let exported = serde_json::to_string(&db.root().token_keys().public().unwrap()).unwrap();
    let verifier = TokenVerifier::new(&serde_json::from_str(&exported).unwrap()).unwrap();
    let now = clock_now(&clock);
    let claims = verifier.verify(&new, now).unwrap();
    assert_eq!(
        (claims.user_id.as_str(), claims.key_id),
        ("user-a", new_key)
    );
    verifier.verify(&old, now).unwrap();
    assert_eq!(
        verifier.verify(&new, now + Duration::hours(1)),
        Err(TokenError::Expired)
    );
    // The offline verifier cannot know the session ended: only the store refuses.
    alice.account().delete_session("current").unwrap();
    verifier.verify(&new, now).unwrap();
    assert_eq!(
        refusal(db.client().set_jwt(&new)),
        TokenError::SessionRevoked
    );

    let err = db.root().token_keys().retire(new_key).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)),
        "the signing key cannot be retired"
    );
    db.root().token_keys().retire(old_key).unwrap();
    assert_eq!(
        refusal(db.client().set_jwt(&old)),
        TokenError::UnknownKey(old_key)
    );
    assert!(
        db.root()
            .impersonate("user-a")
            .unwrap()
            .token_keys()
            .rotate()
            .is_err()
    );
    let wrong_project = permdb::PublicKeys {
        project: "other".into(),
        ..serde_json::from_str(&exported).unwrap()
    };
    let alice2 = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    assert_eq!(
        TokenVerifier::new(&wrong_project)
            .unwrap()
            .verify(&alice2, now),
        Err(TokenError::WrongProject)
    );
}

#[test]
fn token_settings_are_bounded() {
    let bad = [
        common::options().jwt_ttl(Duration::hours(2)),
        common::options().jwt_ttl(Duration::ZERO),
        common::options().token_leeway(Duration::minutes(6)),
        common::options().project("bad project"),
    ];
    for options in bad {
        assert!(matches!(
            Db::temporary_with(options),
            Err(Error::InvalidArgument(_) | Error::InvalidId(_))
        ));
    }
}

/// Exhaustive: every single-bit flip of the payload bytes and every single-byte
/// change of the text is refused, never panics.
#[test]
fn every_single_bit_or_byte_change_is_refused() {
    let (db, _) = setup();
    let jwt = common::sign_in(&db, "a")
        .account()
        .create_jwt()
        .unwrap()
        .jwt;
    let c = db.client();
    let bytes = raw(&jwt);
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(c.set_jwt(&text(&b)).is_err(), "bit {bit} of byte {i}");
        }
    }
    for i in 0..jwt.len() {
        for replacement in [b'A', b'_', b'0', b'.', b' ', b'='] {
            let mut t = jwt.clone().into_bytes();
            if t[i] == replacement {
                continue;
            }
            t[i] = replacement;
            let t = String::from_utf8(t).unwrap();
            assert!(
                c.set_jwt(&t).is_err(),
                "byte {i} -> {}",
                replacement as char
            );
        }
    }
    for cut in 0..jwt.len() {
        assert!(c.set_jwt(&jwt[..cut]).is_err(), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn appending_or_splicing_never_verifies(suffix in ".{1,40}", at in 0usize..300, insert in "[A-Za-z0-9_-]{1,8}") {
        let (db, _) = setup();
        let jwt = common::sign_in(&db, "a").account().create_jwt().unwrap().jwt;
        let appended = format!("{jwt}{suffix}");
        prop_assert!(db.client().set_jwt(&appended).is_err());
        let at = at.min(jwt.len());
        let spliced = format!("{}{}{}", &jwt[..at], insert, &jwt[at..]);
        prop_assert!(db.client().set_jwt(&spliced).is_err());
    }
}
