//! One stored Roaring container: the sequences of one bitmap that share their high
//! 16 bits, stored in roaring's portable format as a one-container bitmap of the full values.

use roaring::RoaringBitmap;

/// Largest encoded container: a full bitmap container plus roaring's headers.
/// Anything larger is corrupt and is refused before it is parsed.
pub(crate) const MAX_CONTAINER_BYTES: usize = 8 * 1024 + 64;

pub(crate) fn encode(values: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = values.serialize_into(&mut out);
    out
}

/// Decodes a container stored under high bits `high`, checking that it is non-empty,
/// that every value has those high bits, and that no bytes trail it.
pub(crate) fn decode(bytes: &[u8], high: u16) -> Result<RoaringBitmap, String> {
    if bytes.len() > MAX_CONTAINER_BYTES {
        return Err(format!(
            "container of {} bytes, at most {MAX_CONTAINER_BYTES}",
            bytes.len()
        ));
    }
    let values = RoaringBitmap::deserialize_from(bytes).map_err(|e| e.to_string())?;
    if values.serialized_size() != bytes.len() {
        return Err("trailing bytes after the container".into());
    }
    match (values.min(), values.max()) {
        (Some(min), Some(max)) if min >> 16 == u32::from(high) && max >> 16 == u32::from(high) => {
            Ok(values)
        }
        (Some(min), Some(max)) => Err(format!(
            "values {min}..={max} outside the container for high bits {high}"
        )),
        _ => Err("empty container".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_faults() {
        let values: RoaringBitmap = [3 << 16, (3 << 16) + 7, (4 << 16) - 1]
            .into_iter()
            .collect();
        let bytes = encode(&values);
        assert_eq!(decode(&bytes, 3).unwrap(), values);
        assert!(decode(&bytes, 2).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long, 3).is_err());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 3).is_err());
        }
        assert!(decode(&encode(&RoaringBitmap::new()), 0).is_err());
        let two: RoaringBitmap = [1u32, 70_000].into_iter().collect();
        assert!(decode(&encode(&two), 0).is_err());
        let full: RoaringBitmap = (0..65536u32).collect();
        assert!(encode(&full).len() <= MAX_CONTAINER_BYTES);
        assert_eq!(decode(&encode(&full), 0).unwrap().len(), 65536);
    }
}
