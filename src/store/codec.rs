//! The one place that calls bincode: stored records to bytes and back.
//! Decoding is bounded (no allocation past `DECODE_LIMIT`) and must consume every byte.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Most bytes a decoder may claim for one record. bincode 2.0.1 would otherwise
/// allocate whatever length its input claims.
pub(crate) const DECODE_LIMIT: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    // Little-endian with variable-length integers: bincode's standard, chosen on purpose.
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes a record. Fails only for values serde cannot describe.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| Error::storage("cannot encode record", e))
}

/// Decodes the leading fields of a record of kind `what`: `T` is a struct made of the
/// record's first fields, in their order (bincode writes fields in order, without names,
/// so their bytes are a prefix of the record's). The rest is left unread and unchecked.
pub(crate) fn decode_head<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T> {
    bincode::serde::decode_from_slice::<T, _>(bytes, config())
        .map(|(value, _)| value)
        .map_err(|e| Error::corrupt(what(), e))
}

/// Decodes a record of kind `what` (named in the error), rejecting trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok((_, used)) => Err(Error::corrupt(
            what(),
            format!("{} trailing bytes after the record", bytes.len() - used),
        )),
        Err(e) => Err(Error::corrupt(what(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Rec {
        a: u32,
        b: String,
        c: Vec<u64>,
    }

    #[test]
    fn round_trip() {
        let r = Rec {
            a: 7,
            b: "x".into(),
            c: vec![1, 2, 3],
        };
        let bytes = encode(&r).unwrap();
        assert_eq!(decode::<Rec>(&bytes, || "rec".into()).unwrap(), r);
    }

    #[test]
    fn trailing_bytes_are_corrupt() {
        let mut bytes = encode(&Rec {
            a: 1,
            b: String::new(),
            c: vec![],
        })
        .unwrap();
        bytes.push(0);
        let err = decode::<Rec>(&bytes, || "rec at k".into()).unwrap_err();
        assert!(
            err.to_string().contains("corrupt rec at k: 1 trailing"),
            "{err}"
        );
    }

    /// Regression: nine crafted bytes claiming a huge vector must not allocate it
    /// (bincode 2.0.1 without a limit aborts the process on this input).
    #[test]
    fn huge_length_claims_fail_without_allocating() {
        let crafted = [0u8, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<Rec>(&crafted, || "rec".into()).is_err());
        let crafted = [1u8, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<Rec>(&crafted, || "rec".into()).is_err());
        assert!(
            decode::<Vec<Vec<u8>>>(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], || "v".into())
                .is_err()
        );
    }

    #[test]
    fn truncated_input_is_corrupt() {
        let bytes = encode(&Rec {
            a: 300,
            b: "hello".into(),
            c: vec![9; 10],
        })
        .unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Rec>(&bytes[..cut], || "rec".into()).is_err());
        }
    }
}
