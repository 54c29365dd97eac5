//! Appwrite's JSON forms, for a front end that speaks its REST API (`permdb-server`):
//! transaction operations, permission lists, exact numbers, datetimes, in-memory lists.

pub use crate::attribute::ValueKind;
pub use crate::id::{new_id, quote};
pub use crate::query::memory::page as page_records;
pub use crate::transaction::wire::{
    BulkDocument, Operation, Target, exact_number, parse_operation, parse_permissions,
    split_bulk_document,
};

/// `t` as Appwrite writes a datetime: UTC, milliseconds, `+00:00`
/// (`2024-01-01T00:00:00.000+00:00`).
#[must_use]
pub fn format_time(t: time::OffsetDateTime) -> String {
    crate::timefmt::format(t)
}
