//! Property test for the query language: random documents, permissions and query trees
//! (every filter method, and/or nesting, multi-key orders, cursors, offsets, select) as
//! random principals, against a plain evaluator over all documents written here from the
//! documented semantics: same documents, same order, same total. The queries run again
//! after random updates and deletes, so nothing cached from the first run may linger.
//!
//! Principals: root, a guest (`any`, `guests`), three signed-up users with random email
//! verification, labels and team memberships (with team roles), and a user id without an
//! account. Documents' read permissions and the collection's read grant name any of those
//! roles (`member:M` included); the evaluator computes each principal's roles as
//! docs/ARCHITECTURE.md ("Permission rules") says. Between the two rounds the users' roles change too, and the second
//! round asks through session clients held since the start as well as fresh ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use permdb::{
    AttributeSpec, Client, CollectionSpec, Db, Error, IndexSpec, Permission, Query, Role, TOTAL_CAP,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};

/// The default number of cases, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 96;

/// `cases` from `PROPTEST_CASES` when it is set (and a number), `default` otherwise
/// (`ProptestConfig::with_cases` and struct update syntax both ignore the variable);
/// failures persist to, and are replayed from, `tests/query_oracle.regressions`.
fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

/// Users with accounts.
const USERS: [&str; 3] = ["u1", "u2", "u3"];
/// A user id without an account: impersonation gives it the plain user roles only.
const GHOST: &str = "u4";
const TEAMS: [&str; 2] = ["t1", "t2"];
const TEAM_ROLES: [&str; 2] = ["admin", "editor"];
const LABELS: [&str; 3] = ["vip", "staff", "beta"];
/// Roles permissions may name directly; some are held by nobody.
const ROLE_POOL: [&str; 22] = [
    "any",
    "guests",
    "users",
    "users/verified",
    "users/unverified",
    "user:u1",
    "user:u2",
    "user:u3",
    "user:u4",
    "user:u1/verified",
    "user:u2/unverified",
    "user:u3/verified",
    "user:u4/unverified",
    "team:t1",
    "team:t2",
    "team:t1/admin",
    "team:t1/editor",
    "team:t2/admin",
    "team:t9",
    "label:vip",
    "label:staff",
    "label:beta",
];
/// Reader indexes past the pool: `member:M` of the k-th membership made so far ...
const MEMBER_SLOTS: usize = 4;
/// ... then the k-th role some principal holds now.
const SOMEONE_SLOTS: usize = 8;
const READERS: usize = ROLE_POOL.len() + MEMBER_SLOTS + SOMEONE_SLOTS;
const STRINGS: [&str; 6] = ["apple", "Apple pie", "banana", "band", "cherry tart", ""];
const TAGS: [&str; 3] = ["x", "y", "z"];
const ATTRS: [&str; 5] = ["n", "s", "tags", "flag", "missing"];

#[derive(Debug, Clone)]
struct Doc {
    data: Map<String, Value>,
    /// Reader indexes (see `READERS`), resolved to `resolved` when the document is written.
    readers: Vec<usize>,
    /// The roles its `read` permissions name.
    resolved: Vec<String>,
}

fn field_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => (0..5i64).prop_map(|n| Some(json!(n))),
        1 => (0..5i64).prop_map(|n| Some(json!(n as f64 + 0.5))),
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        field_value(),
        proptest::option::of(proptest::sample::select(&STRINGS[..])),
        proptest::option::of(proptest::sample::subsequence(&TAGS[..], 0..3)),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec(0..READERS, 0..3),
    )
        .prop_map(|(n, s, tags, flag, readers)| {
            let mut data = Map::new();
            if let Some(n) = n {
                data.insert("n".into(), n);
            }
            if let Some(s) = s {
                data.insert("s".into(), json!(s));
            }
            if let Some(t) = tags {
                data.insert("tags".into(), json!(t));
            }
            if let Some(f) = flag {
                data.insert("flag".into(), json!(f));
            }
            Doc {
                data,
                readers,
                resolved: Vec::new(),
            }
        })
}

fn scalar_for(attr: &'static str) -> BoxedStrategy<Value> {
    match attr {
        "n" => prop_oneof![
            (0..5i64).prop_map(|n| json!(n)),
            (0..5i64).prop_map(|n| json!(n as f64 + 0.5))
        ]
        .boxed(),
        "s" => {
            proptest::sample::select(&["apple", "b", "band", "c", "Apple pie", "an", "t", ""][..])
                .prop_map(|s| json!(s))
                .boxed()
        }
        "tags" => proptest::sample::select(&TAGS[..])
            .prop_map(|s| json!(s))
            .boxed(),
        "flag" => any::<bool>().prop_map(|b| json!(b)).boxed(),
        _ => (0..3i64).prop_map(|n| json!(n)).boxed(),
    }
}

fn leaf() -> impl Strategy<Value = Query> {
    (proptest::sample::select(&ATTRS[..]), 0..14u8).prop_flat_map(|(attr, m)| {
        let v = scalar_for(attr);
        let vs = proptest::collection::vec(scalar_for(attr), 1..3);
        let text = proptest::sample::select(&["a", "b", "ap", "an", "t", "pie", "x"][..]);
        match m {
            0 => vs.prop_map(move |v| Query::equal(attr, v)).boxed(),
            1 => v.prop_map(move |v| Query::not_equal(attr, v)).boxed(),
            2 => v.prop_map(move |v| Query::less_than(attr, v)).boxed(),
            3 => v.prop_map(move |v| Query::less_than_equal(attr, v)).boxed(),
            4 => v.prop_map(move |v| Query::greater_than(attr, v)).boxed(),
            5 => v
                .prop_map(move |v| Query::greater_than_equal(attr, v))
                .boxed(),
            6 => (v.clone(), v)
                .prop_map(move |(a, b)| Query::between(attr, a, b))
                .boxed(),
            7 => (scalar_for(attr), scalar_for(attr))
                .prop_map(move |(a, b)| Query::not_between(attr, a, b))
                .boxed(),
            8 => (text, any::<bool>())
                .prop_map(move |(t, not)| {
                    if not {
                        Query::not_starts_with(attr, t)
                    } else {
                        Query::starts_with(attr, t)
                    }
                })
                .boxed(),
            9 => (text, any::<bool>())
                .prop_map(move |(t, not)| {
                    if not {
                        Query::not_ends_with(attr, t)
                    } else {
                        Query::ends_with(attr, t)
                    }
                })
                .boxed(),
            10 => (vs, any::<bool>())
                .prop_map(move |(v, not)| {
                    if not {
                        Query::not_contains(attr, v)
                    } else {
                        Query::contains(attr, v)
                    }
                })
                .boxed(),
            11 => Just(Query::is_null(attr)).boxed(),
            12 => (
                proptest::sample::select(&["apple", "pie", "band", "tart x", "nope"][..]),
                any::<bool>(),
            )
                .prop_map(|(t, not)| {
                    if not {
                        Query::not_search("s", t)
                    } else {
                        Query::search("s", t)
                    }
                })
                .boxed(),
            _ => Just(Query::is_not_null(attr)).boxed(),
        }
    })
}

fn filter_tree() -> impl Strategy<Value = Query> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..3).prop_map(Query::and),
            proptest::collection::vec(inner, 1..3).prop_map(Query::or),
        ]
    })
}

#[derive(Debug, Clone)]
struct Shape {
    filters: Vec<Query>,
    orders: Vec<(&'static str, bool)>,
    limit: u64,
    offset: u64,
    cursor: Option<(usize, bool)>,
    select: bool,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        proptest::collection::vec(filter_tree(), 0..3),
        proptest::collection::vec(
            (
                proptest::sample::select(&["n", "s", "flag", "tags", "$sequence", "$id"][..]),
                any::<bool>(),
            ),
            0..3,
        ),
        0..6u64,
        prop_oneof![3 => Just(0u64), 1 => 1..3u64],
        proptest::option::of((0..12usize, any::<bool>())),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(filters, orders, limit, offset, cursor, select)| Shape {
            filters,
            orders,
            limit,
            offset,
            cursor,
            select,
        })
}

// ---- principals and their roles -------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    Guest,
    User(usize),
    Ghost,
}

const PRINCIPALS: [Who; 6] = [
    Who::Root,
    Who::Guest,
    Who::User(0),
    Who::User(1),
    Who::User(2),
    Who::Ghost,
];

/// What a user's roles follow from.
#[derive(Debug, Clone, Default)]
struct Facts {
    verified: bool,
    labels: BTreeSet<String>,
    /// team -> (membership id, team roles)
    memberships: BTreeMap<String, (String, BTreeSet<String>)>,
}

/// The users' facts as the test set them, and every membership id made.
#[derive(Debug, Default)]
struct People {
    users: Vec<Facts>,
    memberships_ever: Vec<String>,
}

impl People {
    /// The roles of docs/ARCHITECTURE.md ("Permission rules"); `None` for root.
    fn roles(&self, who: Who) -> Option<BTreeSet<String>> {
        let plain = |id: &str, verified: bool| -> BTreeSet<String> {
            let v = if verified { "verified" } else { "unverified" };
            [
                "any".to_string(),
                "users".into(),
                format!("users/{v}"),
                format!("user:{id}"),
                format!("user:{id}/{v}"),
            ]
            .into()
        };
        match who {
            Who::Root => None,
            Who::Guest => Some(["any", "guests"].map(String::from).into()),
            Who::Ghost => Some(plain(GHOST, false)),
            Who::User(i) => {
                let f = &self.users[i];
                let mut roles = plain(USERS[i], f.verified);
                for (team, (membership, team_roles)) in &f.memberships {
                    roles.insert(format!("team:{team}"));
                    roles.insert(format!("member:{membership}"));
                    roles.extend(team_roles.iter().map(|r| format!("team:{team}/{r}")));
                }
                roles.extend(f.labels.iter().map(|l| format!("label:{l}")));
                Some(roles)
            }
        }
    }

    /// The role reader index `r` names now.
    fn resolve(&self, r: usize) -> String {
        if let Some(role) = ROLE_POOL.get(r) {
            return role.to_string();
        }
        let k = r - ROLE_POOL.len();
        if k < MEMBER_SLOTS {
            return match self.memberships_ever.len() {
                0 => "member:none0".into(),
                n => format!("member:{}", self.memberships_ever[k % n]),
            };
        }
        let all: BTreeSet<String> = PRINCIPALS
            .into_iter()
            .filter_map(|who| self.roles(who))
            .flatten()
            .collect();
        all.iter().nth(k % all.len()).unwrap().clone()
    }

    /// Read permissions for `d`'s readers, which are resolved into `d.resolved`.
    fn permissions(&self, d: &mut Doc) -> Vec<Permission> {
        d.resolved = d.readers.iter().map(|&r| self.resolve(r)).collect();
        d.resolved
            .iter()
            .map(|r| Permission::read(r.parse::<Role>().unwrap()))
            .collect()
    }
}

/// A change to a user's roles (user index 3 is the ghost, which has no account).
#[derive(Debug, Clone)]
enum Change {
    Join {
        user: usize,
        team: usize,
        roles: Vec<usize>,
    },
    Leave {
        user: usize,
        team: usize,
    },
    Labels {
        user: usize,
        labels: Vec<usize>,
    },
    Verify {
        user: usize,
        verified: bool,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (
            0..4usize,
            0..TEAMS.len(),
            proptest::collection::vec(0..TEAM_ROLES.len(), 0..3)
        )
            .prop_map(|(user, team, roles)| Change::Join { user, team, roles }),
        (0..4usize, 0..TEAMS.len()).prop_map(|(user, team)| Change::Leave { user, team }),
        (0..4usize, proptest::collection::vec(0..LABELS.len(), 0..3))
            .prop_map(|(user, labels)| Change::Labels { user, labels }),
        (0..4usize, any::<bool>()).prop_map(|(user, verified)| Change::Verify { user, verified }),
    ]
}

/// Makes `change` through `root.users()` / `root.teams()` and in `people`; checks the
/// outcome (a ghost is not found, a second membership of one team is a conflict).
fn apply(db: &Db, people: &mut People, change: &Change) {
    let root = db.root();
    let user_id = |u: usize| USERS.get(u).copied().unwrap_or(GHOST);
    let account = |u: usize| u < USERS.len();
    let result: Result<(), Error> = match *change {
        Change::Join {
            user,
            team,
            ref roles,
        } => {
            let names: Vec<&str> = roles.iter().map(|&r| TEAM_ROLES[r]).collect();
            let got = root
                .teams()
                .create_membership(TEAMS[team], user_id(user), &names);
            match &got {
                Ok(m) => {
                    people.memberships_ever.push(m.id().to_string());
                    people.users[user].memberships.insert(
                        TEAMS[team].to_string(),
                        (
                            m.id().to_string(),
                            names.iter().map(ToString::to_string).collect(),
                        ),
                    );
                }
                Err(Error::Conflict { .. })
                    if account(user)
                        && people.users[user].memberships.contains_key(TEAMS[team]) =>
                {
                    return;
                }
                Err(_) => {}
            }
            got.map(drop)
        }
        Change::Leave { user, team } => {
            let membership = people
                .users
                .get_mut(user)
                .and_then(|f| f.memberships.remove(TEAMS[team]))
                .map_or("nobody".to_string(), |(m, _)| m);
            let got = root.teams().delete_membership(TEAMS[team], &membership);
            if membership == "nobody" {
                assert!(matches!(got, Err(Error::NotFound { .. })), "{got:?}");
                return;
            }
            got
        }
        Change::Labels { user, ref labels } => {
            let names: Vec<&str> = labels.iter().map(|&l| LABELS[l]).collect();
            if account(user) {
                people.users[user].labels = names.iter().map(ToString::to_string).collect();
            }
            root.users().update_labels(user_id(user), &names).map(drop)
        }
        Change::Verify { user, verified } => {
            if account(user) {
                people.users[user].verified = verified;
            }
            root.users()
                .update_email_verification(user_id(user), verified)
                .map(drop)
        }
    };
    match result {
        Ok(()) => assert!(
            account_of(change),
            "{change:?} succeeded for a user without an account"
        ),
        Err(Error::NotFound { .. }) if !account_of(change) => {}
        Err(e) => panic!("{change:?}: {e}"),
    }
}

fn account_of(change: &Change) -> bool {
    match *change {
        Change::Join { user, .. }
        | Change::Leave { user, .. }
        | Change::Labels { user, .. }
        | Change::Verify { user, .. } => user < USERS.len(),
    }
}

// ---- the plain evaluator -------------------------------------------------

fn get(data: &Map<String, Value>, id: &str, seq: u64, attr: &str) -> Option<Value> {
    let v = match attr {
        "$id" => json!(id),
        "$sequence" => json!(seq),
        _ => data.get(attr)?.clone(),
    };
    if v.is_null() { None } else { Some(v) }
}

fn cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap().partial_cmp(&y.as_f64().unwrap())
        }
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn positive(method: &str, v: &Value, values: &[Value]) -> bool {
    let first = || &values[0];
    match method {
        "equal" => values.iter().any(|w| cmp(v, w) == Some(Ordering::Equal)),
        "lessThan" => cmp(v, first()) == Some(Ordering::Less),
        "lessThanEqual" => matches!(cmp(v, first()), Some(Ordering::Less | Ordering::Equal)),
        "greaterThan" => cmp(v, first()) == Some(Ordering::Greater),
        "greaterThanEqual" => matches!(cmp(v, first()), Some(Ordering::Greater | Ordering::Equal)),
        "between" => {
            matches!(
                cmp(v, &values[0]),
                Some(Ordering::Greater | Ordering::Equal)
            ) && matches!(cmp(v, &values[1]), Some(Ordering::Less | Ordering::Equal))
        }
        "startsWith" => {
            matches!((v, first()), (Value::String(s), Value::String(p)) if s.starts_with(p.as_str()))
        }
        "endsWith" => {
            matches!((v, first()), (Value::String(s), Value::String(p)) if s.ends_with(p.as_str()))
        }
        "contains" => match v {
            Value::Array(items) => items
                .iter()
                .any(|i| values.iter().any(|w| cmp(i, w) == Some(Ordering::Equal))),
            Value::String(s) => values
                .iter()
                .any(|w| w.as_str().is_some_and(|w| s.contains(w))),
            _ => false,
        },
        "search" => {
            let words = |t: &str| -> Vec<String> {
                t.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_lowercase)
                    .collect()
            };
            match (v, first()) {
                (Value::String(text), Value::String(q)) => {
                    let wanted = words(q);
                    words(text).iter().any(|w| wanted.contains(w))
                }
                _ => false,
            }
        }
        other => panic!("no positive form {other}"),
    }
}

fn eval(q: &Value, data: &Map<String, Value>, id: &str, seq: u64) -> bool {
    let method = q["method"].as_str().unwrap();
    let values: Vec<Value> = q
        .get("values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match method {
        "and" => values.iter().all(|n| eval(n, data, id, seq)),
        "or" => values.iter().any(|n| eval(n, data, id, seq)),
        _ => {
            let v = get(data, id, seq, q["attribute"].as_str().unwrap());
            match (method, v) {
                ("isNull", v) => v.is_none(),
                (_, None) => false,
                ("isNotNull", Some(_)) => true,
                (m, Some(v)) if m.starts_with("not") => {
                    let p = format!("{}{}", m[3..4].to_lowercase(), &m[4..]);
                    !positive(&p, &v, &values)
                }
                (m, Some(v)) => positive(m, &v, &values),
            }
        }
    }
}

fn rank(v: &Option<Value>) -> u8 {
    match v {
        None => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        _ => 4,
    }
}

fn order_cmp(a: &Option<Value>, b: &Option<Value>) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Some(x), Some(y)) => cmp(x, y).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    })
}

/// Whether permdb must refuse `q` as an invalid query, given the schema and indexes.
fn invalid(q: &Value, schema: bool, fulltext: bool) -> bool {
    let method = q["method"].as_str().unwrap();
    let values: Vec<Value> = q
        .get("values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match method {
        "and" | "or" => values.iter().any(|n| invalid(n, schema, fulltext)),
        "search" | "notSearch" => !fulltext,
        "startsWith" | "notStartsWith" | "endsWith" | "notEndsWith" => {
            schema && !matches!(q["attribute"].as_str(), Some("s" | "tags"))
        }
        _ => false,
    }
}

/// The collection's schema and indexes for one case.
#[derive(Debug, Clone)]
struct Setup {
    schema: bool,
    fulltext: bool,
    key_n: bool,
    key_s: bool,
    unique_s: bool,
    composite: bool,
    indexes_after_docs: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (any::<bool>(), any::<[bool; 6]>()).prop_map(|(schema, f)| Setup {
        schema,
        fulltext: schema && f[0],
        key_n: schema && f[1],
        key_s: schema && f[2],
        unique_s: schema && f[3] && !f[2],
        composite: schema && f[4],
        indexes_after_docs: f[5],
    })
}

fn make_indexes(db: &Db, setup: &Setup, stored: &[(String, u64, Doc)]) {
    let collections = db.root().schema("s").collections();
    let mut specs = Vec::new();
    if setup.fulltext {
        specs.push(IndexSpec::fulltext("ft_s", "s"));
    }
    if setup.key_n {
        specs.push(IndexSpec::key("k_n", ["n"]));
    }
    if setup.key_s {
        specs.push(IndexSpec::key("k_s", ["s"]));
    }
    if setup.unique_s {
        specs.push(IndexSpec::unique("u_s", ["s"]));
    }
    if setup.composite {
        specs.push(IndexSpec::key("k_flag_n", ["flag", "n"]));
    }
    for spec in specs {
        let unique = spec.kind == permdb::IndexType::Unique;
        match collections.create_index("c", spec) {
            Ok(_) => {}
            Err(Error::Conflict { .. }) if unique => {
                assert!(has_duplicate_s(stored, None), "conflict without duplicates")
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Whether two stored documents (or `extra` and one stored) share a non-null `s`.
fn has_duplicate_s(stored: &[(String, u64, Doc)], extra: Option<&Doc>) -> bool {
    let values: Vec<&Value> = stored
        .iter()
        .map(|(_, _, d)| &d.data)
        .chain(extra.map(|d| &d.data))
        .filter_map(|d| d.get("s"))
        .filter(|v| !v.is_null())
        .collect();
    values
        .iter()
        .enumerate()
        .any(|(i, v)| values[..i].contains(v))
}

/// (total, page ids) from the model, or the error it expects.
fn model(
    docs: &[(String, u64, Doc)],
    roles: Option<&BTreeSet<String>>,
    collection_read: bool,
    shape: &Shape,
    setup: &Setup,
) -> Result<(u64, Vec<String>), &'static str> {
    let json_filters: Vec<Value> = shape
        .filters
        .iter()
        .map(|q| serde_json::from_str(&q.to_json()).unwrap())
        .collect();
    if json_filters
        .iter()
        .any(|f| invalid(f, setup.schema, setup.fulltext))
    {
        return Err("invalid");
    }
    let visible: Vec<&(String, u64, Doc)> = docs
        .iter()
        .filter(|(_, _, d)| match roles {
            None => true,
            Some(_) if collection_read => true,
            Some(roles) => d.resolved.iter().any(|r| roles.contains(r)),
        })
        .collect();
    let filters: Vec<Value> = shape
        .filters
        .iter()
        .map(|q| serde_json::from_str(&q.to_json()).unwrap())
        .collect();
    let mut matching: Vec<&(String, u64, Doc)> = visible
        .iter()
        .copied()
        .filter(|(id, seq, d)| filters.iter().all(|f| eval(f, &d.data, id, *seq)))
        .collect();
    let key = |(id, seq, d): &(String, u64, Doc)| -> Vec<Option<Value>> {
        shape
            .orders
            .iter()
            .map(|(a, _)| get(&d.data, id, *seq, a))
            .collect()
    };
    let full_cmp = |a: &(String, u64, Doc), b: &(String, u64, Doc)| -> Ordering {
        for ((x, y), (_, desc)) in key(a).iter().zip(key(b).iter()).zip(&shape.orders) {
            let o = order_cmp(x, y);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        match shape.orders.last() {
            Some((_, true)) => b.1.cmp(&a.1),
            _ => a.1.cmp(&b.1),
        }
    };
    matching.sort_by(|a, b| full_cmp(a, b));
    let total = matching.len() as u64;
    let page: Vec<&(String, u64, Doc)> = match shape.cursor {
        None => matching
            .iter()
            .copied()
            .skip(shape.offset as usize)
            .take(shape.limit as usize)
            .collect(),
        Some((i, before)) => {
            let Some(c) = docs.iter().find(|(id, _, _)| *id == format!("d{i}")) else {
                return Err("not found");
            };
            if !visible.iter().any(|v| v.0 == c.0) {
                return Err("not found");
            }
            if before {
                let mut p: Vec<_> = matching
                    .iter()
                    .rev()
                    .copied()
                    .filter(|d| full_cmp(d, c) == Ordering::Less)
                    .skip(shape.offset as usize)
                    .take(shape.limit as usize)
                    .collect();
                p.reverse();
                p
            } else {
                matching
                    .iter()
                    .copied()
                    .filter(|d| full_cmp(d, c) == Ordering::Greater)
                    .skip(shape.offset as usize)
                    .take(shape.limit as usize)
                    .collect()
            }
        }
    };
    Ok((total, page.iter().map(|(id, _, _)| id.clone()).collect()))
}

/// Signs up the users, creates the teams and gives the users their first roles; returns
/// the model of their roles and a session client per user, held for the whole case.
fn people(db: &Db, first: &[Change]) -> (People, Vec<Client>) {
    let mut held = Vec::new();
    for u in USERS {
        let (email, password) = (format!("{u}@example.com"), format!("password-{u}"));
        db.client()
            .account()
            .create(u, &email, &password, None)
            .unwrap();
        let session = db
            .client()
            .account()
            .create_email_password_session(&email, &password)
            .unwrap();
        held.push(db.client().set_session(&session.secret).unwrap());
    }
    for t in TEAMS {
        db.root().teams().create(t, t).unwrap();
    }
    let mut people = People {
        users: vec![Facts::default(); USERS.len()],
        memberships_ever: Vec::new(),
    };
    for c in first {
        apply(db, &mut people, c);
    }
    (people, held)
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn queries_agree_with_the_plain_evaluator(
        mut docs in proptest::collection::vec(doc(), 0..12),
        collection_read in proptest::option::weighted(0.2, 0..READERS),
        shapes in proptest::collection::vec(shape(), 1..6),
        setup in setup(),
        mut edits in proptest::collection::vec((0..12usize, proptest::option::of(doc())), 0..6),
        roles in (proptest::collection::vec(change(), 0..8), proptest::collection::vec(change(), 0..4)),
    ) {
        let (first_roles, role_changes) = roles;
        let db = Db::temporary_with(common::test_options().0).unwrap();
        let (mut people, held) = people(&db, &first_roles);
        let mut spec = CollectionSpec::new("c", "C").document_security(true);
        // The role the collection grants read to, if any.
        let collection_read = collection_read.map(|r| people.resolve(r));
        if let Some(role) = &collection_read {
            spec = spec.permissions([Permission::read(role.parse::<Role>().unwrap())]);
        }
        let coll = common::create_collection(&db, "s", spec);
        if setup.schema {
            let collections = db.root().schema("s").collections();
            for a in [
                AttributeSpec::float("n"),
                AttributeSpec::string("s", 20),
                AttributeSpec::string("tags", 5).array(true),
                AttributeSpec::boolean("flag"),
                AttributeSpec::integer("missing"),
            ] {
                collections.create_attribute("c", a).unwrap();
            }
        }
        let mut stored = Vec::new();
        if !setup.indexes_after_docs {
            make_indexes(&db, &setup, &stored);
        }
        let unique_live = setup.unique_s && !setup.indexes_after_docs;
        for (i, d) in docs.iter_mut().enumerate() {
            let perms = people.permissions(d);
            let d = &*d;
            match coll.create(&format!("d{i}"), Value::Object(d.data.clone()), Some(perms)) {
                Ok(created) => stored.push((format!("d{i}"), created.sequence(), d.clone())),
                Err(Error::Conflict { .. }) if unique_live => prop_assert!(has_duplicate_s(&stored, Some(d))),
                Err(e) => panic!("{e}"),
            }
        }
        if setup.indexes_after_docs {
            make_indexes(&db, &setup, &stored);
        }
        // Whether a unique index on `s` exists now.
        let unique_now = setup.unique_s && !has_duplicate_s(&stored, None);
        for round in 0..2 {
        if round == 1 {
            // Update (merging top-level attributes, replacing permissions) or delete.
            for (i, change) in &mut edits {
                let id = format!("d{i}");
                let Some(at) = stored.iter().position(|(sid, _, _)| *sid == id) else { continue };
                match change {
                    None => {
                        coll.delete(&id).unwrap();
                        stored.remove(at);
                    }
                    Some(d) => {
                        let perms = people.permissions(d);
                        let mut merged = stored[at].2.clone();
                        merged.data.extend(d.data.clone());
                        merged.readers.clone_from(&d.readers);
                        merged.resolved.clone_from(&d.resolved);
                        let others: Vec<_> = stored.iter().enumerate().filter(|(j, _)| *j != at).map(|(_, x)| x.clone()).collect();
                        match coll.update(&id, Value::Object(d.data.clone()), Some(perms)) {
                            Ok(_) => stored[at].2 = merged,
                            Err(Error::Conflict { .. }) if unique_now => prop_assert!(has_duplicate_s(&others, Some(&merged))),
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }
            // Then the users' roles change; held clients must follow at their next call.
            for c in &role_changes {
                apply(&db, &mut people, c);
            }
        }
        for (n, shape) in shapes.iter().enumerate() {
            let mut queries = shape.filters.clone();
            for (a, desc) in &shape.orders {
                queries.push(if *desc { Query::order_desc(a) } else { Query::order_asc(a) });
            }
            queries.push(Query::limit(shape.limit));
            queries.push(Query::offset(shape.offset));
            match shape.cursor {
                Some((i, false)) => queries.push(Query::cursor_after(&format!("d{i}"))),
                Some((i, true)) => queries.push(Query::cursor_before(&format!("d{i}"))),
                None => {}
            }
            if shape.select {
                queries.push(Query::select(["n"]));
            }
            for (k, who) in PRINCIPALS.into_iter().enumerate() {
                // Users alternate between the held session client and a fresh one.
                let held_client = (k + n + round) % 2 == 0;
                let client = match who {
                    Who::Root => db.root(),
                    Who::Guest => db.client(),
                    Who::User(u) if held_client => held[u].clone(),
                    Who::User(u) => db.root().impersonate(USERS[u]).unwrap(),
                    Who::Ghost => db.root().impersonate(GHOST).unwrap(),
                };
                let roles = people.roles(who);
                let granted = matches!((&roles, &collection_read), (Some(held), Some(r)) if held.contains(r));
                let c = client.schema("s").collection("c");
                let got = c.find(&queries);
                // The client acts with the roles as they are now (`roles()` tells them as of its last call).
                let have: BTreeSet<String> = client.roles().iter().map(ToString::to_string).collect();
                prop_assert_eq!(&have, &roles.clone().unwrap_or_default(), "roles of {:?} (held: {})", who, held_client);
                let want = model(&stored, roles.as_ref(), granted, shape, &setup);
                match (&got, &want) {
                    (Ok(list), Ok((total, ids))) => {
                        let got_ids: Vec<&str> = list.documents.iter().map(|d| d.id()).collect();
                        prop_assert_eq!(&got_ids, ids, "{:?} as {:?}", queries, who);
                        // `find` counts up to `TOTAL_CAP` (never reached with a dozen documents).
                        prop_assert_eq!(list.total, (*total).min(TOTAL_CAP), "total of {:?} as {:?}", queries, who);
                        if shape.select {
                            prop_assert!(list.documents.iter().all(|d| d.data().keys().all(|k| k == "n")));
                        }
                    }
                    (Err(Error::NotFound { .. }), Err("not found")) => {}
                    (Err(Error::InvalidQuery(_)), Err("invalid")) => {}
                    _ => prop_assert!(false, "{:?} as {:?}: permdb {:?}, model {:?}", queries, who, got, want),
                }
                let count = c.count(&shape.filters);
                let expected = model(&stored, roles.as_ref(), granted, &Shape { cursor: None, limit: 5000, offset: 0, ..shape.clone() }, &setup);
                match (count, expected) {
                    (Ok(n), Ok((m, _))) => prop_assert_eq!(n, m, "count {:?} as {:?}", shape.filters, who),
                    (Err(Error::InvalidQuery(_)), Err("invalid")) => {}
                    (got, want) => prop_assert!(false, "count {:?} as {:?}: {:?} vs {:?}", shape.filters, who, got, want),
                }
            }
        }
        }
    }
}
