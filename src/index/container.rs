//! One stored Roaring container: the sequences of one bitmap that share their high 16
//! bits (which are in the key), stored as their low 16 bits in the smallest of three forms.
//!
//! ```text
//! 0x01 low:u16LE ...                 array: 1 to 4,096 values, strictly increasing
//! 0x02 8,192 bytes                   bitmap: bit i (LSB first) set when low value i is present
//! 0x03 (start:u16LE extra:u16LE)...  runs: start..=start+extra, increasing, apart
//! ```
//! Roaring's portable format spent 16 bytes of headers on every one-container value;
//! one tag byte is enough here (format 3).

use roaring::RoaringBitmap;

const ARRAY: u8 = 1;
const BITMAP: u8 = 2;
const RUNS: u8 = 3;
const BITMAP_BYTES: usize = 8192;

/// Largest encoded container: the tag and a full bitmap.
/// Anything larger is corrupt and is refused before it is parsed.
pub(crate) const MAX_CONTAINER_BYTES: usize = 1 + BITMAP_BYTES;

/// Encodes the low 16 bits of `values`, which all share their high 16 bits
/// (INVARIANT one-container: callers pass the values of one container key).
pub(crate) fn encode(values: &RoaringBitmap) -> Vec<u8> {
    let lows = || values.iter().map(|v| (v & 0xFFFF) as u16);
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for low in lows() {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(low) => *last = low,
            _ => runs.push((low, low)),
        }
    }
    let array_len = 2 * lows().count();
    let runs_len = 4 * runs.len();
    if runs_len < array_len.min(BITMAP_BYTES) {
        let mut out = Vec::with_capacity(1 + runs_len);
        out.push(RUNS);
        for (start, last) in runs {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&(last - start).to_le_bytes());
        }
        out
    } else if array_len <= BITMAP_BYTES {
        let mut out = Vec::with_capacity(1 + array_len);
        out.push(ARRAY);
        for low in lows() {
            out.extend_from_slice(&low.to_le_bytes());
        }
        out
    } else {
        let mut out = vec![0u8; 1 + BITMAP_BYTES];
        if let Some(tag) = out.first_mut() {
            *tag = BITMAP;
        }
        for low in lows() {
            let i = 1 + usize::from(low / 8);
            if let Some(byte) = out.get_mut(i) {
                *byte |= 1 << (low % 8);
            }
        }
        out
    }
}

fn u16s(body: &[u8]) -> impl Iterator<Item = u16> + '_ {
    body.chunks_exact(2).map(|c| {
        u16::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
    })
}

/// Decodes a container stored under high bits `high`: a known form, the exact length
/// that form needs, values in order, and not empty.
pub(crate) fn decode(bytes: &[u8], high: u16) -> Result<RoaringBitmap, String> {
    if bytes.len() > MAX_CONTAINER_BYTES {
        return Err(format!(
            "container of {} bytes, at most {MAX_CONTAINER_BYTES}",
            bytes.len()
        ));
    }
    let base = u32::from(high) << 16;
    let (tag, body) = bytes.split_first().ok_or("empty container")?;
    let values = match *tag {
        ARRAY if body.len() % 2 == 0 && body.len() <= BITMAP_BYTES => {
            RoaringBitmap::from_sorted_iter(u16s(body).map(|low| base | u32::from(low)))
                .map_err(|_| "array values not strictly increasing".to_string())?
        }
        BITMAP if body.len() == BITMAP_BYTES => RoaringBitmap::from_lsb0_bytes(base, body),
        RUNS if body.len() % 4 == 0 => {
            let mut values = RoaringBitmap::new();
            let mut next_free: u32 = 0;
            let mut pairs = u16s(body);
            while let (Some(start), Some(extra)) = (pairs.next(), pairs.next()) {
                let (start, end) = (u32::from(start), u32::from(start) + u32::from(extra));
                if start < next_free || end > 0xFFFF {
                    return Err("runs overlap, touch or leave the container".into());
                }
                values.insert_range(base | start..=base | end);
                next_free = end + 2;
            }
            values
        }
        ARRAY | BITMAP | RUNS => {
            return Err(format!(
                "container form {tag} with a body of {} bytes",
                body.len()
            ));
        }
        other => return Err(format!("unknown container form {other}")),
    };
    if values.is_empty() {
        return Err("empty container".into());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &RoaringBitmap, high: u16) -> Vec<u8> {
        let bytes = encode(values);
        assert_eq!(&decode(&bytes, high).unwrap(), values);
        bytes
    }

    #[test]
    fn each_form_round_trips_and_is_the_smallest() {
        let sparse: RoaringBitmap = [3 << 16, (3 << 16) + 7, (4 << 16) - 1]
            .into_iter()
            .collect();
        let bytes = round_trip(&sparse, 3);
        assert_eq!((bytes[0], bytes.len()), (ARRAY, 7));
        let dense: RoaringBitmap = (0..65536u32).filter(|v| v % 3 != 0).collect();
        let bytes = round_trip(&dense, 0);
        assert_eq!((bytes[0], bytes.len()), (BITMAP, 8193));
        let full: RoaringBitmap = (0..65536u32).collect();
        let bytes = round_trip(&full, 0);
        assert_eq!((bytes[0], bytes.len()), (RUNS, 5));
        let runs: RoaringBitmap = (10..2000u32)
            .chain(3000..3001)
            .chain(65000..65536)
            .collect();
        assert_eq!(round_trip(&runs, 0)[0], RUNS);
        let one: RoaringBitmap = [(7 << 16) + 65535].into_iter().collect();
        assert_eq!(round_trip(&one, 7).len(), 3);
    }

    #[test]
    fn faults_are_refused() {
        let values: RoaringBitmap = [5u32, 9, 300].into_iter().collect();
        let bytes = encode(&values);
        // The high bits come from the key: decoding elsewhere moves the values.
        assert_eq!(decode(&bytes, 2).unwrap().min(), Some((2 << 16) + 5));
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long, 0).is_err());
        // A cut inside a value breaks the form. (A cut between values leaves a shorter
        // valid array: stored values are guarded against that by their checksum.)
        for cut in [0, 1, 2, 4, 6] {
            assert!(decode(&bytes[..cut], 0).is_err(), "cut at {cut}");
        }
        assert!(decode(&[ARRAY, 9, 0, 5, 0], 0).is_err(), "not increasing");
        assert!(decode(&[ARRAY, 5, 0, 5, 0], 0).is_err(), "repeated");
        assert!(
            decode(&[RUNS, 0xFF, 0xFF, 1, 0], 0).is_err(),
            "run past the container"
        );
        assert!(
            decode(&[RUNS, 0, 0, 3, 0, 2, 0, 0, 0], 0).is_err(),
            "runs overlap"
        );
        assert!(
            decode(&[RUNS, 0, 0, 3, 0, 4, 0, 0, 0], 0).is_err(),
            "runs touch"
        );
        assert!(decode(&[BITMAP, 1], 0).is_err());
        let mut empty_bitmap = vec![0u8; 1 + BITMAP_BYTES];
        empty_bitmap[0] = BITMAP;
        assert!(decode(&empty_bitmap, 0).is_err(), "empty bitmap");
        assert!(decode(&[9, 0, 0], 0).is_err(), "unknown form");
        assert!(decode(&vec![ARRAY; MAX_CONTAINER_BYTES + 1], 0).is_err());
    }
}
