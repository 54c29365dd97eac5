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
    fn appwrite_format_round_trips() {
        let t = from_millis(1_715_421_600_123).unwrap();
        let s = format(t);
        assert_eq!(s, "2024-05-11T10:00:00.123+00:00");
        assert_eq!(parse(&s).unwrap(), t);
        assert_eq!(to_millis(t), 1_715_421_600_123);
    }
}
