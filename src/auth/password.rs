//! Password hashing with Argon2id. The PHC string stored records algorithm, version
//! and parameters, so stronger parameters apply to new hashes without breaking old ones.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (bytes), as Appwrite.
pub const MAX_PASSWORD_LEN: usize = 256;

pub use crate::options::PasswordHashing;

pub(crate) fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(Error::InvalidArgument(format!(
            "password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt into a PHC string.
pub(crate) fn hash(password: &str, cost: PasswordHashing) -> Result<String> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| Error::InvalidArgument(format!("password hashing parameters: {e}")))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt_bytes: [u8; 16] = crate::secret::random_bytes();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| Error::internal(format!("salt: {e}")))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// A PHC string that no password matches, with the parameters of `cost`: verifying a
/// password against it does the same work as against a real hash made with `cost`.
/// Made without hashing anything (a random salt and a random 32-byte output, the length
/// `hash` produces), so it can be ready from the moment a store opens.
pub(crate) fn unmatchable(cost: PasswordHashing) -> Result<String> {
    // Checks the parameters as `hash` would.
    Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| Error::InvalidArgument(format!("password hashing parameters: {e}")))?;
    let salt: [u8; 16] = crate::secret::random_bytes();
    let output: [u8; 32] = crate::secret::random_bytes();
    let b64 = |bytes: &[u8]| {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, bytes)
    };
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        cost.memory_kib,
        cost.iterations,
        cost.parallelism,
        b64(&salt),
        b64(&output)
    ))
}

/// Whether a stored hash was made with other parameters than `cost` (or another
/// algorithm): it is hashed again at the next successful sign-in, so that sign-ins of
/// every account cost what an unknown email's does.
pub(crate) fn needs_rehash(phc: &str, cost: PasswordHashing) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
        || (params.m_cost(), params.t_cost(), params.p_cost())
            != (cost.memory_kib, cost.iterations, cost.parallelism)
}

// A hash may come from outside through an import; its parameters are what a sign-in
// attempt, by anyone, makes the process spend. `Options::validate` keeps a store's own
// cost within the same caps.
use crate::options::{MAX_HASH_ITERATIONS, MAX_HASH_MEMORY_KIB, MAX_HASH_PARALLELISM};

/// Checks a stored PHC string: Argon2 (id, i or d, any version `verify` reads, as older
/// accounts may hold), parameters within the caps above, with a salt and an output. An
/// import refuses any other; `verify` never runs one.
pub(crate) fn check_stored_hash(phc: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidArgument(format!("password hash: {why}")));
    let Ok(parsed) = PasswordHash::new(phc) else {
        return bad("not a PHC string");
    };
    if Algorithm::try_from(parsed.algorithm).is_err() {
        return bad("Argon2 expected");
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return bad("bad Argon2 parameters");
    };
    if params.m_cost() > MAX_HASH_MEMORY_KIB
        || params.t_cost() > MAX_HASH_ITERATIONS
        || params.p_cost() > MAX_HASH_PARALLELISM
    {
        return bad(&format!(
            "parameters past m={MAX_HASH_MEMORY_KIB}, t={MAX_HASH_ITERATIONS}, \
             p={MAX_HASH_PARALLELISM}"
        ));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return bad("no salt or no output");
    }
    Ok(())
}

/// Whether `password` matches the stored PHC string (with the parameters it records).
/// A malformed stored hash, or one past the caps of [`check_stored_hash`], never matches.
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    if check_stored_hash(phc).is_err() {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_records_parameters_and_verifies() {
        let cost = PasswordHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        let h = hash("correct horse", cost).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(h, hash("correct horse", cost).unwrap(), "salted");
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(257)).is_err());
        assert!(check_password("eight ch").is_ok());
    }

    #[test]
    fn the_unmatchable_hash_has_a_real_hashs_shape_and_cost() {
        let cost = PasswordHashing {
            memory_kib: 1024,
            iterations: 2,
            parallelism: 1,
        };
        let real = hash("correct horse", cost).unwrap();
        let dummy = unmatchable(cost).unwrap();
        let (real, dummy) = (
            PasswordHash::new(&real).unwrap(),
            PasswordHash::new(&dummy).unwrap(),
        );
        assert_eq!(
            (real.algorithm, real.version, real.params.to_string()),
            (dummy.algorithm, dummy.version, dummy.params.to_string())
        );
        assert_eq!(
            real.hash.map(|h| h.len()),
            dummy.hash.map(|h| h.len()),
            "same output length"
        );
        assert_eq!(
            real.salt.map(|s| s.as_str().len()),
            dummy.salt.map(|s| s.as_str().len())
        );
        assert!(!verify("correct horse", &dummy.to_string()));
        assert_ne!(unmatchable(cost).unwrap(), unmatchable(cost).unwrap());
    }

    #[test]
    fn a_hash_of_other_parameters_needs_rehashing() {
        let cost = PasswordHashing {
            memory_kib: 1024,
            iterations: 2,
            parallelism: 1,
        };
        let h = hash("correct horse", cost).unwrap();
        assert!(!needs_rehash(&h, cost));
        for other in [
            PasswordHashing {
                memory_kib: 2048,
                ..cost
            },
            PasswordHashing {
                iterations: 3,
                ..cost
            },
            PasswordHashing {
                parallelism: 2,
                ..cost
            },
        ] {
            assert!(needs_rehash(&h, other), "{other:?}");
        }
        assert!(needs_rehash("not a hash", cost));
        // The same parameters with another algorithm or version.
        let params = Params::new(1024, 2, 1, None).unwrap();
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        for (algorithm, version) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            let other = Argon2::new(algorithm, version, params.clone())
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            assert!(verify("correct horse", &other), "{other}");
            assert!(needs_rehash(&other, cost), "{other}");
        }
    }

    /// A hash asking for 4 TiB or 4 billion passes is refused before argon2 sees it.
    #[test]
    fn hashes_past_the_caps_are_refused_and_never_verified() {
        let cost = PasswordHashing {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let good = hash("correct horse", cost).unwrap();
        check_stored_hash(&good).unwrap();
        assert!(verify("correct horse", &good));
        let salt_and_output = good.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let (output, salt) = (salt_and_output[0], salt_and_output[1]);
        for params in [
            "m=4294967295,t=1,p=1",
            "m=256,t=4294967295,p=1",
            "m=256,t=1,p=255",
        ] {
            let hostile = format!("$argon2id$v=19${params}${salt}${output}");
            assert!(check_stored_hash(&hostile).is_err(), "{hostile}");
            assert!(!verify("correct horse", &hostile));
        }
        let scrypt = good.replacen("argon2id", "scrypt", 1);
        assert!(check_stored_hash(&scrypt).is_err());
        assert!(check_stored_hash("plain text").is_err());
    }

    /// A store's own cost stays within the caps, or its hashes would never verify.
    #[test]
    fn a_cost_past_the_caps_is_refused_at_open() {
        for cost in [
            PasswordHashing {
                memory_kib: (1 << 20) + 1,
                iterations: 1,
                parallelism: 1,
            },
            PasswordHashing {
                memory_kib: 256,
                iterations: 17,
                parallelism: 1,
            },
            PasswordHashing {
                memory_kib: 256,
                iterations: 1,
                parallelism: 17,
            },
        ] {
            let opened = crate::Db::temporary_with(crate::Options::new().password_hashing(cost));
            assert!(
                matches!(opened, Err(Error::InvalidArgument(ref m)) if m.contains("password_hashing")),
                "{cost:?}"
            );
        }
    }
}
