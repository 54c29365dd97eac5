//! The parameters of Appwrite's list calls (`queries[]`, `search`, `total`) and the
//! management lists (users, teams, ...) paged in memory with them.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use permdb::wire::{ValueKind, page_records};
use permdb::{Query, ResourceKind};

/// What a list call asks for.
#[derive(Debug, Default)]
pub(crate) struct ListParams {
    /// `queries[]=`, `queries[N]=` or `queries=`: each one query in Appwrite's JSON form.
    pub(crate) queries: Vec<Query>,
    /// `search=`: words to find in the list's searchable attributes.
    pub(crate) search: Option<String>,
    /// `total=false` skips the count (the answer's `total` is 0), as Appwrite.
    pub(crate) total: bool,
}

/// Parses a list call's query string. `search` is taken only where `searchable`; any other
/// parameter, and `search` or `total` given twice, is a 400 naming it.
pub(crate) fn params(raw: Option<&str>, searchable: bool) -> Result<ListParams, ApiError> {
    let mut out = ListParams {
        total: true,
        ..ListParams::default()
    };
    let mut seen_total = false;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let is_queries = key == "queries"
            || key
                .strip_prefix("queries[")
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()));
        match &*key {
            _ if is_queries => out.queries.push(Query::from_json(&value)?),
            "search" if searchable && out.search.is_none() => out.search = Some(value.into_owned()),
            "total" if !seen_total => {
                seen_total = true;
                out.total = match &*value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(ApiError::bad_request("total must be true or false")),
                };
            }
            // Appwrite's cache lifetime for list results: permdb answers every list fresh,
            // which any lifetime allows, so a valid one is taken and changes nothing.
            "ttl" if value.parse::<u32>().is_ok_and(|t| t <= 86_400) => {}
            "ttl" => {
                return Err(ApiError::bad_request("ttl must be 0 to 86400 seconds"));
            }
            "total" => {
                return Err(ApiError::bad_request("total given more than once"));
            }
            "search" if searchable => {
                return Err(ApiError::bad_request("search given more than once"));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {key:?}: lists take queries[]{}, total and ttl",
                    if searchable { ", search" } else { "" }
                )));
            }
        }
    }
    Ok(out)
}

/// A management list: which attributes its queries may name, which `search` looks in,
/// and what a missing cursor is.
pub(crate) struct ListKind {
    pub(crate) attributes: &'static [(&'static str, ValueKind)],
    pub(crate) searchable: &'static [&'static str],
    pub(crate) missing: ResourceKind,
}

use ValueKind::{Bool, Number, String as Text};

pub(crate) const USERS: ListKind = ListKind {
    attributes: &[
        ("name", Text),
        ("email", Text),
        ("phone", Text),
        ("status", Bool),
        ("passwordUpdate", Text),
        ("registration", Text),
        ("emailVerification", Bool),
        ("phoneVerification", Bool),
        ("labels", Text),
    ],
    searchable: &["name", "email"],
    missing: ResourceKind::User,
};

pub(crate) const TEAMS: ListKind = ListKind {
    attributes: &[("name", Text), ("total", Number)],
    searchable: &["name"],
    missing: ResourceKind::Team,
};

pub(crate) const MEMBERSHIPS: ListKind = ListKind {
    attributes: &[
        ("userId", Text),
        ("teamId", Text),
        ("invited", Text),
        ("joined", Text),
        ("confirm", Bool),
        ("roles", Text),
        ("userName", Text),
        ("userEmail", Text),
    ],
    // Empty in the answers of a caller who may not read users: nothing to find there.
    searchable: &["userName", "userEmail"],
    missing: ResourceKind::Membership,
};

/// The answer to a management list: `{total, <key>: [...]}` with the page `params` ask
/// for, over every record in `models`.
pub(crate) fn answer(
    models: Vec<Value>,
    params: &ListParams,
    kind: &ListKind,
    key: &str,
) -> Result<Value, ApiError> {
    let mut queries = params.queries.clone();
    if let Some(text) = params
        .search
        .as_deref()
        .filter(|t| !t.trim().is_empty() && !kind.searchable.is_empty())
    {
        let mut each: Vec<Query> = kind
            .searchable
            .iter()
            .map(|a| Query::search(a, text))
            .collect();
        queries.push(if each.len() == 1 {
            each.swap_remove(0)
        } else {
            Query::or(each)
        });
    }
    let models: Vec<Map<String, Value>> = models
        .into_iter()
        .filter_map(|m| match m {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .collect();
    let (page, total) = page_records(
        models,
        &queries,
        kind.attributes,
        kind.searchable,
        kind.missing,
    )?;
    Ok(json!({
        "total": if params.total { total } else { 0 },
        key: page,
    }))
}

pub(crate) const DATABASES: ListKind = ListKind {
    attributes: &[("name", Text), ("enabled", Bool)],
    searchable: &["name"],
    missing: ResourceKind::Schema,
};

pub(crate) const COLLECTIONS: ListKind = ListKind {
    attributes: &[
        ("name", Text),
        ("enabled", Bool),
        ("documentSecurity", Bool),
    ],
    searchable: &["name"],
    missing: ResourceKind::Collection,
};

pub(crate) const TABLES: ListKind = ListKind {
    attributes: &[("name", Text), ("enabled", Bool), ("rowSecurity", Bool)],
    searchable: &["name"],
    missing: ResourceKind::Collection,
};

pub(crate) const ATTRIBUTES: ListKind = ListKind {
    attributes: &[
        ("key", Text),
        ("type", Text),
        ("size", Number),
        ("required", Bool),
        ("array", Bool),
        ("status", Text),
        ("error", Text),
    ],
    searchable: &[],
    missing: ResourceKind::Attribute,
};

pub(crate) const INDEXES: ListKind = ListKind {
    attributes: &[
        ("key", Text),
        ("type", Text),
        ("status", Text),
        ("attributes", Text),
        ("error", Text),
    ],
    searchable: &[],
    missing: ResourceKind::Index,
};

pub(crate) const COLUMN_INDEXES: ListKind = ListKind {
    attributes: &[
        ("key", Text),
        ("type", Text),
        ("status", Text),
        ("columns", Text),
        ("error", Text),
    ],
    searchable: &[],
    missing: ResourceKind::Index,
};
