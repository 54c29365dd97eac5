//! Secrets: random bytes, the SHA-256 digests stored in their place, constant-time
//! comparison, and strict base64url (no padding, no whitespace, no stray trailing bits).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `N` bytes from the operating system's CSPRNG (through `rand`'s thread RNG, seeded from it).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::fill(&mut out[..]);
    out
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// What `Debug` shows for a secret field: empty stays empty, anything else is redacted.
pub(crate) fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "" } else { "<redacted>" }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; anything else (padding, whitespace,
/// non-zero trailing bits, other alphabets) is `None`.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A secret handed to a caller once: `PREFIX ID "." base64url(32 random bytes)`.
/// Only the SHA-256 of the random part is stored.
pub(crate) struct IssuedSecret {
    pub(crate) text: String,
    pub(crate) digest: [u8; 32],
}

pub(crate) fn issue(prefix: &str, id: &str) -> IssuedSecret {
    let random: [u8; 32] = random_bytes();
    IssuedSecret {
        text: format!("{prefix}{id}.{}", b64(&random)),
        digest: sha256(&random),
    }
}

/// Splits a secret made by [`issue`] into its id and the digest of its random part.
pub(crate) fn split(prefix: &str, text: &str) -> Option<(String, [u8; 32])> {
    let rest = text.strip_prefix(prefix)?;
    let (id, random) = rest.split_once('.')?;
    let random = b64_decode(random)?;
    if random.len() != 32 || crate::id::id_fault(id).is_some() {
        return None;
    }
    Some((id.to_owned(), sha256(&random)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_base64() {
        assert_eq!(b64_decode("AQID"), Some(vec![1, 2, 3]));
        assert_eq!(b64_decode("AQI"), Some(vec![1, 2]));
        assert_eq!(b64_decode("AQJ"), None, "non-zero trailing bits");
        assert_eq!(b64_decode("AQI="), None, "padding");
        assert_eq!(b64_decode("AQ ID"), None, "whitespace");
        assert_eq!(b64_decode("AQ+D"), None, "standard alphabet");
    }

    #[test]
    fn issued_secrets_split_back() {
        let s = issue("pdbs_", "abc");
        assert!(s.text.starts_with("pdbs_abc."));
        assert_eq!(split("pdbs_", &s.text), Some(("abc".to_string(), s.digest)));
        assert_eq!(split("pdbk_", &s.text), None);
        assert_eq!(split("pdbs_", &format!("{}x", s.text)), None);
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
    }

    #[test]
    fn compare_sees_every_byte_and_the_length() {
        let a = issue("pdbs_", "abc").digest;
        assert!(ct_eq(&a, &a));
        // One byte off anywhere, first, middle or last, is unequal.
        for i in [0, 1, 15, 16, 30, 31] {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = a;
                b[i] ^= flip;
                assert!(!ct_eq(&a, &b), "byte {i} ^ {flip:#x}");
            }
        }
        // A prefix, an extension, nothing.
        assert!(!ct_eq(&a, &a[..31]));
        assert!(!ct_eq(&a[..31], &a));
        let mut longer = a.to_vec();
        longer.push(0);
        assert!(!ct_eq(&a, &longer));
        assert!(!ct_eq(&a, &[]));
        assert!(ct_eq(&[], &[]));
    }
}
