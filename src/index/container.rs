//! One stored Roaring container: the low 16 bits of the sequences sharing a high
//! 16 bits, stored in roaring's portable format as a bitmap of values below 2^16.

use roaring::RoaringBitmap;

/// Largest encoded container: a full bitmap container plus roaring's headers.
/// Anything larger is corrupt and is refused before it is parsed.
pub(crate) const MAX_CONTAINER_BYTES: usize = 8 * 1024 + 64;

pub(crate) fn encode(lows: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(lows.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = lows.serialize_into(&mut out);
    out
}

/// Decodes a container, checking it is non-empty, holds only values below 2^16 and has no trailing bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    if bytes.len() > MAX_CONTAINER_BYTES {
        return Err(format!(
            "container of {} bytes, at most {MAX_CONTAINER_BYTES}",
            bytes.len()
        ));
    }
    let lows = RoaringBitmap::deserialize_from(bytes).map_err(|e| e.to_string())?;
    if lows.serialized_size() != bytes.len() {
        return Err("trailing bytes after the container".into());
    }
    match lows.max() {
        None => Err("empty container".into()),
        Some(max) if max > u32::from(u16::MAX) => Err(format!("value {max} does not fit 16 bits")),
        Some(_) => Ok(lows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_faults() {
        let lows: RoaringBitmap = [0u32, 7, 65535].into_iter().collect();
        let bytes = encode(&lows);
        assert_eq!(decode(&bytes).unwrap(), lows);
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
        assert!(decode(&encode(&RoaringBitmap::new())).is_err());
        let wide: RoaringBitmap = [70_000u32].into_iter().collect();
        assert!(decode(&encode(&wide)).is_err());
        let full: RoaringBitmap = (0..65536u32).collect();
        assert!(encode(&full).len() <= MAX_CONTAINER_BYTES);
    }
}
