//! Every stored value ends in a CRC-32 of its tree, key and value, so a damaged,
//! truncated or misplaced record reads as `Error::Corrupt`, never as a wrong answer.

use super::{Bytes, Tree};
use crate::error::{Error, Result};

/// Bytes the checksum adds to every stored value.
pub(crate) const CHECKSUM_LEN: usize = 4;

fn checksum(tree: Tree, key: &[u8], value: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = crc32fast::Hasher::new();
    h.update(tree.name().as_bytes());
    h.update(&u64::try_from(key.len()).unwrap_or(u64::MAX).to_le_bytes());
    h.update(key);
    h.update(value);
    h.finalize().to_le_bytes()
}

/// Appends the checksum of (`tree`, `key`, `value`) to `value`.
pub(crate) fn seal(tree: Tree, key: &[u8], value: &mut Vec<u8>) {
    let sum = checksum(tree, key, value);
    value.extend_from_slice(&sum);
}

/// Checks and strips the checksum of a value read from `tree` at `key`.
pub(crate) fn unseal(tree: Tree, key: &[u8], raw: Bytes) -> Result<Bytes> {
    let what = || format!("{} record at key {key:02x?}", tree.name());
    let Some(len) = raw.len().checked_sub(CHECKSUM_LEN) else {
        return Err(Error::corrupt(
            what(),
            format!("{} bytes, shorter than its checksum", raw.len()),
        ));
    };
    let (value, stored) = raw.split_at(len);
    if checksum(tree, key, value) != stored {
        return Err(Error::corrupt(what(), "checksum mismatch"));
    }
    Ok(raw.truncated(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: &[u8]) -> Bytes {
        Bytes::new(sled::IVec::from(v))
    }

    #[test]
    fn sealed_values_unseal_to_themselves() {
        let mut v = b"hello".to_vec();
        seal(Tree::Docs, b"k", &mut v);
        assert_eq!(v.len(), 5 + CHECKSUM_LEN);
        assert_eq!(&*unseal(Tree::Docs, b"k", raw(&v)).unwrap(), b"hello");
        let mut empty = Vec::new();
        seal(Tree::Meta, b"", &mut empty);
        assert!(unseal(Tree::Meta, b"", raw(&empty)).unwrap().is_empty());
    }

    #[test]
    fn any_flipped_bit_truncation_or_move_is_corrupt() {
        let mut v = b"a stored record".to_vec();
        seal(Tree::Auth, b"key", &mut v);
        for i in 0..v.len() * 8 {
            let mut bad = v.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let err = unseal(Tree::Auth, b"key", raw(&bad)).unwrap_err();
            assert!(err.to_string().contains("checksum mismatch"), "{err}");
        }
        for len in 0..v.len() {
            assert!(unseal(Tree::Auth, b"key", raw(&v[..len])).is_err());
        }
        let short = unseal(Tree::Auth, b"key", raw(&v[..3])).unwrap_err();
        assert!(
            short
                .to_string()
                .contains("auth record at key [6b, 65, 79]: 3 bytes, shorter"),
            "{short}"
        );
        // The same bytes under another key or in another tree are not accepted.
        assert!(unseal(Tree::Auth, b"kez", raw(&v)).is_err());
        assert!(unseal(Tree::Docs, b"key", raw(&v)).is_err());
    }
}
