//! Timestamps: stored as Unix milliseconds, shown in Appwrite's form
//! `2024-05-11T10:00:00.000+00:00` (UTC, millisecond precision).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Unix milliseconds of `t`, saturating outside the i64 range.
pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| format!("timestamp {ms} out of range: {e}"))
}

pub(crate) fn format(t: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+00:00"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| to_millis(t).to_string())
}

pub(crate) fn parse(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("invalid timestamp {s:?}: {e}"))
}

/// Parses a datetime value as Appwrite accepts one: a date (`2012-02-03`, midnight), or a
/// date and a time (`T` or a space between; minutes, seconds and fractions optional) with
/// `Z`, an offset (`+01:00` or `+0100`) or none (UTC). Years 0 to 9999. Anything else
/// (`yesterday`, a bare time, a day 32) is an error naming the value.
pub(crate) fn parse_datetime(s: &str) -> Result<OffsetDateTime, String> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let bad = |why: &str| format!("invalid datetime {s:?}: {why}");
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let part = b.get(from..from + n)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (digits(0, 4), digits(5, 2), digits(8, 2)) else {
        return Err(bad("expected YYYY-MM-DD first"));
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad("expected YYYY-MM-DD first"));
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| bad("no such month"))?;
    let date = i32::try_from(year)
        .ok()
        .zip(u8::try_from(day).ok())
        .and_then(|(y, d)| Date::from_calendar_date(y, month, d).ok())
        .ok_or_else(|| bad("no such day"))?;
    let rest = b.get(10..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(date.midnight().assume_utc());
    }
    if !matches!(rest.first(), Some(b'T' | b't' | b' ')) {
        return Err(bad("expected T or a space after the date"));
    }
    let at = 11;
    let (Some(hour), Some(minute)) = (digits(at, 2), digits(at + 3, 2)) else {
        return Err(bad("expected HH:MM after the date"));
    };
    if b.get(at + 2) != Some(&b':') {
        return Err(bad("expected HH:MM after the date"));
    }
    let mut i = at + 5;
    let mut second = 0;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b':') {
        second = digits(i + 1, 2).ok_or_else(|| bad("expected two digits of seconds"))?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                if i - start < 9 {
                    nanos = nanos * 10 + u32::from(d - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return Err(bad("expected digits after the decimal point"));
            }
            for _ in n..9 {
                nanos *= 10;
            }
        }
    }
    let time = u8::try_from(hour)
        .ok()
        .zip(u8::try_from(minute).ok())
        .zip(u8::try_from(second).ok())
        .and_then(|((h, m), sec)| Time::from_hms_nano(h, m, sec, nanos).ok())
        .ok_or_else(|| bad("no such time of day"))?;
    let zone = b.get(i..).unwrap_or_default();
    let offset = match zone {
        [] | [b'Z' | b'z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), ..] => {
            let (h, m) = match zone.len() {
                6 if zone.get(3) == Some(&b':') => (digits(i + 1, 2), digits(i + 4, 2)),
                5 => (digits(i + 1, 2), digits(i + 3, 2)),
                _ => (None, None),
            };
            let (Some(h @ 0..=23), Some(m @ 0..=59)) = (h, m) else {
                return Err(bad("expected an offset of the form +HH:MM, within a day"));
            };
            let sign = if *sign == b'-' { -1 } else { 1 };
            i8::try_from(h)
                .ok()
                .zip(i8::try_from(m).ok())
                .and_then(|(h, m)| UtcOffset::from_hms(sign * h, sign * m, 0).ok())
                .ok_or_else(|| bad("no such offset"))?
        }
        _ => return Err(bad("unexpected text after the time")),
    };
    // In UTC by arithmetic that cannot overflow (`assume_offset` panics past year 9999).
    PrimitiveDateTime::new(date, time)
        .checked_sub(time::Duration::seconds(i64::from(offset.whole_seconds())))
        .map(PrimitiveDateTime::assume_utc)
        .ok_or_else(|| bad("outside the supported years once in UTC"))
}

/// A datetime value in Appwrite's stored form: UTC, milliseconds
/// (`2012-02-03T00:00:00.000+00:00`), so that comparing the strings compares the times.
/// Times before year 0 or after 9999 once in UTC are refused.
pub(crate) fn normalize_datetime(s: &str) -> Result<String, String> {
    let t = parse_datetime(s)?.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(format!(
            "invalid datetime {s:?}: outside the years 0 to 9999 in UTC"
        ));
    }
    Ok(format(t))
}

/// Serializes a time in Appwrite's format (for `#[serde(serialize_with)]`).
pub(crate) fn serialize<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// As [`serialize`], for an optional time (`null` when absent).
pub(crate) fn serialize_option<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_in_the_forms_appwrite_accepts_normalize_to_utc_milliseconds() {
        for (given, stored) in [
            ("2012-02-03", "2012-02-03T00:00:00.000+00:00"),
            ("2012-02-03T10:20", "2012-02-03T10:20:00.000+00:00"),
            ("2012-02-03 10:20:30", "2012-02-03T10:20:30.000+00:00"),
            ("2012-02-03T10:20:30Z", "2012-02-03T10:20:30.000+00:00"),
            (
                "2012-02-03T10:20:30.5+01:00",
                "2012-02-03T09:20:30.500+00:00",
            ),
            (
                "2012-02-03T10:20:30.123456789-0130",
                "2012-02-03T11:50:30.123+00:00",
            ),
            (
                "2012-02-03T00:30:00.000+01:00",
                "2012-02-02T23:30:00.000+00:00",
            ),
            (
                "2024-02-29T23:59:59.999+00:00",
                "2024-02-29T23:59:59.999+00:00",
            ),
            ("0000-01-01", "0000-01-01T00:00:00.000+00:00"),
            ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999+00:00"),
        ] {
            assert_eq!(normalize_datetime(given).as_deref(), Ok(stored), "{given}");
        }
        for bad in [
            "",
            "yesterday",
            "2012",
            "2012-2-3",
            "2012-02-30",
            "2023-02-29",
            "2012-13-01",
            "2012-02-03T",
            "2012-02-03T25:00",
            "2012-02-03T10",
            "2012-02-03T10:20:3",
            "2012-02-03T10:20:30.",
            "2012-02-03T10:20:30+1",
            "2012-02-03T10:20:30+25:00",
            "2012-02-03T10:20:30 UTC",
            "2012-02-03x",
            "+2012-02-03",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:00:00-01:00",
            "２０１２-02-03",
        ] {
            assert!(normalize_datetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn appwrite_format_round_trips() {
        let t = from_millis(1_715_421_600_123).unwrap();
        let s = format(t);
        assert_eq!(s, "2024-05-11T10:00:00.123+00:00");
        assert_eq!(parse(&s).unwrap(), t);
        assert_eq!(to_millis(t), 1_715_421_600_123);
    }
}
