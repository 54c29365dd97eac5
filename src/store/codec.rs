//! The one place that encodes stored records: postcard (a specified, stable wire format)
//! since format 4; bincode only to read format 3's records during an upgrade.
//! Decoding is bounded (no record past `DECODE_LIMIT`) and must consume every byte.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// `e`, in words: for a value a stored type refused, why it did.
fn explain(e: postcard::Error) -> String {
    match (e, crate::error::take_refusal()) {
        (postcard::Error::SerdeDeCustom, Some(why)) => why,
        (e, _) => e.to_string(),
    }
}

fn forget_refusal() {
    let _ = crate::error::take_refusal();
}

/// Most bytes one record may have. postcard reads from the record's bytes and never
/// allocates more than a small multiple of them (a claimed length past the bytes left
/// fails before allocating), so this bounds what a decode can allocate.
pub(crate) const DECODE_LIMIT: usize = 64 << 20;

/// Encodes a record. Fails only for values serde cannot describe.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::storage("cannot encode record", e))
}

/// The error for a record of `len` bytes, past [`DECODE_LIMIT`].
fn too_long(what: String, len: usize) -> Error {
    Error::corrupt(what, format!("{len} bytes, more than a record may have"))
}

/// Decodes the leading fields of a record of kind `what`: `T` is a struct made of the
/// record's first fields, in their order (postcard writes fields in order, without names,
/// so their bytes are a prefix of the record's). The rest is left unread and unchecked.
pub(crate) fn decode_head<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T> {
    if bytes.len() > DECODE_LIMIT {
        return Err(too_long(what(), bytes.len()));
    }
    forget_refusal();
    postcard::take_from_bytes::<T>(bytes)
        .map(|(value, _)| value)
        .map_err(|e| Error::corrupt(what(), explain(e)))
}

/// Decodes a record of kind `what` (named in the error), rejecting trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T> {
    if bytes.len() > DECODE_LIMIT {
        return Err(too_long(what(), bytes.len()));
    }
    forget_refusal();
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::corrupt(
            what(),
            format!("{} trailing bytes after the record", rest.len()),
        )),
        Err(e) => Err(Error::corrupt(what(), explain(e))),
    }
}

/// Format 3's codec, read only by `upgrade`: bincode 2.0.1, standard configuration
/// (little-endian, variable-length integers), with the same limit and the same refusal of
/// trailing bytes.
#[cfg(feature = "format3-upgrade")]
pub(crate) mod format3 {
    use serde::de::DeserializeOwned;

    use super::DECODE_LIMIT;
    use crate::error::{Error, Result};

    fn config() -> impl bincode::config::Config {
        bincode::config::standard().with_limit::<DECODE_LIMIT>()
    }

    /// Decodes a format-3 record of kind `what`, rejecting trailing bytes.
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

    /// Encodes as format 3 did: for the tests that build format-3 records.
    #[cfg(test)]
    pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, config()).unwrap_or_default()
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

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Head {
        a: u32,
        b: String,
    }

    fn rec() -> Rec {
        Rec {
            a: 300,
            b: "hello".into(),
            c: vec![9; 10],
        }
    }

    #[test]
    fn round_trip() {
        let r = rec();
        let bytes = encode(&r).unwrap();
        assert_eq!(decode::<Rec>(&bytes, || "rec".into()).unwrap(), r);
        let head: Head = decode_head(&bytes, || "rec".into()).unwrap();
        assert_eq!((head.a, head.b.as_str()), (300, "hello"));
    }

    /// The wire format is postcard's, byte for byte: a change of codec or of its settings
    /// is a change of the on-disk format and must fail here.
    #[test]
    fn bytes_are_postcards() {
        let bytes = encode(&Rec {
            a: 300,
            b: "hi".into(),
            c: vec![1, 128],
        })
        .unwrap();
        // 300 as a varint, "hi" with its length, two u64 varints with the count.
        assert_eq!(bytes, [0xac, 0x02, 2, b'h', b'i', 2, 1, 0x80, 0x01]);
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

    /// Crafted bytes claiming a huge string or vector fail without allocating it.
    #[test]
    fn huge_length_claims_fail_without_allocating() {
        // a = 0, then a string of 2^63 bytes.
        let crafted = [0u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(decode::<Rec>(&crafted, || "rec".into()).is_err());
        // a = 1, "", then 2^32 - 1 u64s.
        let crafted = [1u8, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode::<Rec>(&crafted, || "rec".into()).is_err());
        assert!(decode::<Vec<Vec<u8>>>(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0], || "v".into()).is_err());
    }

    #[test]
    fn truncated_input_is_corrupt() {
        let bytes = encode(&rec()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Rec>(&bytes[..cut], || "rec".into()).is_err());
        }
    }

    #[test]
    fn records_past_the_limit_are_corrupt_unread() {
        let big = vec![0u8; DECODE_LIMIT + 1];
        let err = decode::<Vec<u8>>(&big, || "big".into()).unwrap_err();
        assert!(
            err.to_string().contains("more than a record may have"),
            "{err}"
        );
    }

    #[cfg(feature = "format3-upgrade")]
    #[test]
    fn format3_records_read_back_and_differ_from_format4() {
        let r = rec();
        let old = format3::encode(&r);
        assert_eq!(format3::decode::<Rec>(&old, || "rec".into()).unwrap(), r);
        assert_ne!(
            old,
            encode(&r).unwrap(),
            "the two formats must be told apart"
        );
        let mut trailing = old.clone();
        trailing.push(7);
        assert!(format3::decode::<Rec>(&trailing, || "rec".into()).is_err());
        // bincode 2.0.1 without its limit aborts the process on these bytes.
        let crafted = [0u8, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(format3::decode::<Rec>(&crafted, || "rec".into()).is_err());
    }
}
