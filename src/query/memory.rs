//! Queries over records held whole in memory (users, teams, memberships, schemas and
//! collections: management lists), with the planner, filters and order `find` uses.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::eval::{field, order_cmp};
use super::plan::{QuerySchema, ValueKind, plan};
use super::{Query, TOTAL_CAP};
use crate::document::Document;
use crate::error::{Error, ResourceKind, Result};

/// The page of `models` (Appwrite's JSON of each record, with `$id` and `$createdAt`)
/// that `queries` ask for, and how many match in all (up to `TOTAL_CAP`, as `find`).
/// Records count in creation order (then by id): that is their `$sequence`, the order
/// without `orderAsc`/`orderDesc`. Queries may name only `attributes` (and the system
/// attributes); `search` works on those in `searchable`. A cursor naming no record is
/// `NotFound` of `kind`.
pub fn page(
    models: Vec<Map<String, Value>>,
    queries: &[Query],
    attributes: &[(&str, ValueKind)],
    searchable: &[&str],
    kind: ResourceKind,
) -> Result<(Vec<Map<String, Value>>, u64)> {
    let schema = QuerySchema {
        attributes: Some(
            attributes
                .iter()
                .map(|(name, kind)| ((*name).to_owned(), *kind))
                .collect::<BTreeMap<_, _>>(),
        ),
        fulltext: searchable.iter().map(|s| (*s).to_owned()).collect(),
    };
    let plan = plan(queries, &schema)?;
    if plan.select.is_some() {
        return Err(Error::InvalidQuery(
            "select is not offered on this list".into(),
        ));
    }
    let time = |model: &Map<String, Value>, name: &str| {
        model
            .get(name)
            .and_then(Value::as_str)
            .and_then(|t| crate::timefmt::parse(t).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let mut docs: Vec<Document> = models
        .into_iter()
        .map(|model| Document {
            id: model
                .get("$id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            sequence: 0,
            collection_id: String::new(),
            database_id: String::new(),
            created_at: time(&model, "$createdAt"),
            updated_at: time(&model, "$updatedAt"),
            permissions: Vec::new().into(),
            data: std::sync::Arc::new(model),
        })
        .collect();
    docs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    for (i, d) in docs.iter_mut().enumerate() {
        d.sequence = i as u64 + 1;
    }
    let key = |d: &Document| {
        let values: Vec<Option<Value>> = plan.orders.iter().map(|(a, _)| field(d, a)).collect();
        (values, d.sequence)
    };
    let cursor = match &plan.cursor {
        Some(c) => {
            let doc = docs
                .iter()
                .find(|d| d.id == c.id)
                .ok_or_else(|| Error::not_found(kind, &c.id))?;
            Some((key(doc), c.before))
        }
        None => None,
    };
    let mut matching: Vec<_> = docs
        .into_iter()
        .filter(|d| plan.filter.as_ref().is_none_or(|f| f.matches(d)))
        .map(|d| (key(&d), d))
        .collect();
    let total = (matching.len() as u64).min(TOTAL_CAP);
    matching.sort_by(|a, b| order_cmp(&plan.orders, &a.0, &b.0));
    let skip = usize::try_from(plan.offset).unwrap_or(usize::MAX);
    let take = usize::try_from(plan.limit).unwrap_or(usize::MAX);
    let page: Vec<Document> = match cursor {
        None => matching
            .into_iter()
            .map(|(_, d)| d)
            .skip(skip)
            .take(take)
            .collect(),
        Some((at, false)) => matching
            .into_iter()
            .filter(|(k, _)| order_cmp(&plan.orders, k, &at).is_gt())
            .map(|(_, d)| d)
            .skip(skip)
            .take(take)
            .collect(),
        Some((at, true)) => {
            let mut before: Vec<Document> = matching
                .into_iter()
                .rev()
                .filter(|(k, _)| order_cmp(&plan.orders, k, &at).is_lt())
                .map(|(_, d)| d)
                .skip(skip)
                .take(take)
                .collect();
            before.reverse();
            before
        }
    };
    Ok((
        page.into_iter()
            .map(|d| std::sync::Arc::unwrap_or_clone(d.data))
            .collect(),
        total,
    ))
}
