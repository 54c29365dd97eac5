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
///
/// Works run by run (`Iter::next_range`), not value by value, and stops collecting runs
/// once they cannot be the smallest form: a write to a dense container (a role like
/// `any`) costs its runs, not its 65,536 values.
pub(crate) fn encode(values: &RoaringBitmap) -> Vec<u8> {
    let array_len = usize::try_from(values.len()).map_or(usize::MAX, |n| n.saturating_mul(2));
    let limit = array_len.min(BITMAP_BYTES);
    let low = |v: u32| (v & 0xFFFF) as u16;
    let mut runs: Vec<(u16, u16)> = Vec::new();
    let mut ranges = values.iter();
    let mut runs_win = true;
    while let Some(range) = ranges.next_range() {
        if 4 * (runs.len() + 1) >= limit {
            runs_win = false;
            break;
        }
        runs.push((low(*range.start()), low(*range.end())));
    }
    if runs_win {
        let mut out = Vec::with_capacity(1 + 4 * runs.len());
        out.push(RUNS);
        for (start, last) in runs {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&(last - start).to_le_bytes());
        }
        out
    } else if array_len <= BITMAP_BYTES {
        let mut out = Vec::with_capacity(1 + array_len);
        out.push(ARRAY);
        for v in values {
            out.extend_from_slice(&low(v).to_le_bytes());
        }
        out
    } else {
        let mut out = vec![0u8; 1 + BITMAP_BYTES];
        if let Some(tag) = out.first_mut() {
            *tag = BITMAP;
        }
        if let Some(bits) = out.get_mut(1..) {
            let mut ranges = values.iter();
            while let Some(range) = ranges.next_range() {
                set_bits(bits, low(*range.start()), low(*range.end()));
            }
        }
        out
    }
}

/// Sets bits `first..=last` (LSB first) of `bits`, whole bytes at a time in the middle.
fn set_bits(bits: &mut [u8], first: u16, last: u16) {
    let (mut at, last) = (usize::from(first), usize::from(last));
    while at <= last {
        let byte = at / 8;
        let (from, to) = (at % 8, if last / 8 == byte { last % 8 } else { 7 });
        if let Some(b) = bits.get_mut(byte) {
            // Bits from..=to of this byte.
            *b |= (0xFFu8 >> (7 - to)) & (0xFFu8 << from);
        }
        at = byte * 8 + to + 1;
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

    /// The encoded size the format's rule asks for, counted value by value.
    fn smallest_size(values: &RoaringBitmap) -> usize {
        let lows: Vec<u32> = values.iter().map(|v| v & 0xFFFF).collect();
        let runs = lows
            .iter()
            .enumerate()
            .filter(|(i, v)| *i == 0 || lows[i - 1] + 1 != **v)
            .count();
        let (array, runs) = (2 * lows.len(), 4 * runs);
        1 + if runs < array.min(BITMAP_BYTES) {
            runs
        } else {
            array.min(BITMAP_BYTES)
        }
    }

    #[test]
    fn every_density_and_run_shape_takes_the_smallest_form() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for per_mille in [1u64, 10, 60, 62, 63, 100, 500, 900, 999, 1000] {
            for run_len in [1u32, 2, 3, 8, 100] {
                let high = (next() % 5) as u32;
                let mut values = RoaringBitmap::new();
                let mut low = 0u32;
                while low < 65536 {
                    if next() % 1000 < per_mille {
                        values.insert_range(
                            (high << 16) + low..(high << 16) + (low + run_len).min(65536),
                        );
                    }
                    low += run_len;
                }
                if values.is_empty() {
                    continue;
                }
                let bytes = round_trip(&values, high as u16);
                assert_eq!(
                    bytes.len(),
                    smallest_size(&values),
                    "{per_mille}‰ runs of {run_len}"
                );
            }
        }
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
