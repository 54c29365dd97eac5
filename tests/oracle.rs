//! Property test: random collections, documents, permissions and write sequences,
//! checked after every step against a plain model that filters all documents by hand.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use permdb::{Client, CollectionSpec, Db, Durability, Error, Options, Permission, Query, Role};
use proptest::prelude::*;
use serde_json::json;

const IDS: [&str; 8] = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
/// Roles documents and collections may name; some are held by nobody.
const ROLE_POOL: [&str; 9] = [
    "any",
    "guests",
    "users",
    "users/unverified",
    "user:u1",
    "user:u2",
    "user:u3",
    "user:u2/unverified",
    "team:t9",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    Guest,
    User(usize),
}

const EVERYONE: [Who; 5] = [
    Who::Root,
    Who::Guest,
    Who::User(0),
    Who::User(1),
    Who::User(2),
];

impl Who {
    /// The roles the model believes this principal holds; `None` for root.
    fn roles(self) -> Option<BTreeSet<String>> {
        match self {
            Who::Root => None,
            Who::Guest => Some(["any", "guests"].map(String::from).into()),
            Who::User(i) => {
                let u = USERS[i];
                Some(
                    [
                        "any".to_string(),
                        "users".into(),
                        "users/unverified".into(),
                        format!("user:{u}"),
                        format!("user:{u}/unverified"),
                    ]
                    .into(),
                )
            }
        }
    }

    fn client(self, db: &Db) -> Client {
        match self {
            Who::Root => db.root(),
            Who::Guest => db.client(),
            Who::User(i) => db.root().impersonate(USERS[i]).unwrap(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        who: Who,
        id: usize,
        a: i64,
        perms: Option<Vec<(u8, usize)>>,
    },
    Update {
        who: Who,
        id: usize,
        a: Option<i64>,
        perms: Option<Vec<(u8, usize)>>,
    },
    Delete {
        who: Who,
        id: usize,
    },
    Reopen,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        Just(Who::Root),
        Just(Who::Guest),
        (0..3usize).prop_map(Who::User)
    ]
}

/// (action code 0 read, 1 update, 2 delete, 3 write; role index)
fn perms() -> impl Strategy<Value = Option<Vec<(u8, usize)>>> {
    proptest::option::of(proptest::collection::vec(
        (0..4u8, 0..ROLE_POOL.len()),
        0..5,
    ))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (who(), 0..IDS.len(), 0..3i64, perms()).prop_map(|(who, id, a, perms)| Op::Create { who, id, a, perms }),
        3 => (who(), 0..IDS.len(), proptest::option::of(0..3i64), perms())
            .prop_map(|(who, id, a, perms)| Op::Update { who, id, a, perms }),
        2 => (who(), 0..IDS.len()).prop_map(|(who, id)| Op::Delete { who, id }),
        1 => Just(Op::Reopen),
    ]
}

/// Collection grants: (action 0 read, 1 create, 2 update, 3 delete; role index).
fn collection() -> impl Strategy<Value = (Vec<(u8, usize)>, bool)> {
    (
        proptest::collection::vec((0..4u8, 0..6usize), 0..4),
        any::<bool>(),
    )
}

fn to_permission(action: u8, role: usize, collection_level: bool) -> Permission {
    let role: Role = ROLE_POOL[role].parse().unwrap();
    match (action, collection_level) {
        (0, _) => Permission::read(role),
        (1, true) => Permission::create(role),
        (1, false) => Permission::update(role),
        (2, true) => Permission::update(role),
        (2, false) => Permission::delete(role),
        (3, true) => Permission::delete(role),
        _ => Permission::write(role),
    }
}

/// The model's document: attribute `a`, and its permissions as ("read"|"update"|"delete", role).
#[derive(Debug, Clone)]
struct ModelDoc {
    id: String,
    a: i64,
    perms: BTreeSet<(String, String)>,
}

#[derive(Debug)]
struct Model {
    grants: BTreeSet<(String, String)>,
    document_security: bool,
    docs: BTreeMap<u32, ModelDoc>,
    next_seq: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum Access {
    All,
    ByDoc,
    Denied,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    Unauthorized,
    Conflict,
}

fn outcome<T>(r: &Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(Error::NotFound { .. }) => Outcome::NotFound,
        Err(Error::Unauthorized(_)) => Outcome::Unauthorized,
        Err(Error::Conflict(_)) => Outcome::Conflict,
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn expand(perms: &[(u8, usize)]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for &(a, r) in perms {
        let role = ROLE_POOL[r].to_string();
        let actions: &[&str] = match a {
            0 => &["read"],
            1 => &["update"],
            2 => &["delete"],
            _ => &["update", "delete"],
        };
        for act in actions {
            out.insert((act.to_string(), role.clone()));
        }
    }
    out
}

impl Model {
    fn access(&self, who: Who, action: &str) -> Access {
        match who.roles() {
            None => Access::All,
            Some(roles)
                if roles
                    .iter()
                    .any(|r| self.grants.contains(&(action.into(), r.clone()))) =>
            {
                Access::All
            }
            Some(_) if self.document_security => Access::ByDoc,
            Some(_) => Access::Denied,
        }
    }

    fn doc_allows(&self, who: Who, access: &Access, doc: &ModelDoc, action: &str) -> bool {
        match access {
            Access::All => true,
            Access::Denied => false,
            Access::ByDoc => {
                let roles = who.roles().unwrap_or_default();
                doc.perms
                    .iter()
                    .any(|(a, r)| a == action && roles.contains(r))
            }
        }
    }

    fn seq_of(&self, id: &str) -> Option<u32> {
        self.docs.iter().find(|(_, d)| d.id == id).map(|(s, _)| *s)
    }

    fn holds_all(who: Who, perms: &BTreeSet<(String, String)>) -> bool {
        match who.roles() {
            None => true,
            Some(roles) => perms.iter().all(|(_, r)| roles.contains(r)),
        }
    }

    fn create(&mut self, who: Who, id: &str, a: i64, perms: &Option<Vec<(u8, usize)>>) -> Outcome {
        let perms = match (perms, who) {
            (Some(p), _) => expand(p),
            (None, Who::User(i)) => ["read", "update", "delete"]
                .iter()
                .map(|act| (act.to_string(), format!("user:{}", USERS[i])))
                .collect(),
            (None, _) => BTreeSet::new(),
        };
        if !Model::holds_all(who, &perms) {
            return Outcome::Unauthorized;
        }
        if who != Who::Root && self.access(who, "create") != Access::All {
            return Outcome::Unauthorized;
        }
        if self.seq_of(id).is_some() {
            return Outcome::Conflict;
        }
        self.docs.insert(
            self.next_seq,
            ModelDoc {
                id: id.into(),
                a,
                perms,
            },
        );
        self.next_seq += 1;
        Outcome::Ok
    }

    /// The checks shared by update and delete; `Ok(seq)` when allowed.
    fn check(&self, who: Who, id: &str, action: &str) -> Result<u32, Outcome> {
        let read = self.access(who, "read");
        let act = self.access(who, action);
        if read == Access::Denied && act == Access::Denied {
            return Err(Outcome::Unauthorized);
        }
        let seq = self.seq_of(id).ok_or(Outcome::NotFound)?;
        let doc = &self.docs[&seq];
        match (
            self.doc_allows(who, &read, doc, "read"),
            self.doc_allows(who, &act, doc, action),
        ) {
            (_, true) => Ok(seq),
            (false, false) => Err(Outcome::NotFound),
            (true, false) => Err(Outcome::Unauthorized),
        }
    }

    fn update(
        &mut self,
        who: Who,
        id: &str,
        a: Option<i64>,
        perms: &Option<Vec<(u8, usize)>>,
    ) -> Outcome {
        let perms = perms.as_deref().map(expand);
        if let Some(p) = &perms {
            if !Model::holds_all(who, p) {
                return Outcome::Unauthorized;
            }
        }
        match self.check(who, id, "update") {
            Err(o) => o,
            Ok(seq) => {
                let doc = self.docs.get_mut(&seq).unwrap();
                if let Some(a) = a {
                    doc.a = a;
                }
                if let Some(p) = perms {
                    doc.perms = p;
                }
                Outcome::Ok
            }
        }
    }

    fn delete(&mut self, who: Who, id: &str) -> Outcome {
        match self.check(who, id, "delete") {
            Err(o) => o,
            Ok(seq) => {
                self.docs.remove(&seq);
                Outcome::Ok
            }
        }
    }

    /// (total, page ids) or the error outcome.
    fn find(&self, who: Who, q: &ModelQuery) -> Result<(u64, Vec<String>), Outcome> {
        let read = self.access(who, "read");
        if read == Access::Denied {
            return Err(Outcome::Unauthorized);
        }
        let visible: Vec<(u32, &ModelDoc)> = self
            .docs
            .iter()
            .filter(|(_, d)| self.doc_allows(who, &read, d, "read"))
            .map(|(s, d)| (*s, d))
            .collect();
        let matching: Vec<(u32, &ModelDoc)> = visible
            .iter()
            .filter(|(_, d)| q.equal_a.is_none_or(|a| d.a == a))
            .filter(|(_, d)| q.not_equal_a.is_none_or(|a| d.a != a))
            .copied()
            .collect();
        let total = matching.len() as u64;
        let mut ordered = matching.clone();
        if q.desc {
            ordered.reverse();
        }
        let mut page: Vec<&ModelDoc> = match &q.cursor {
            None => ordered.iter().map(|(_, d)| *d).collect(),
            Some((id, before)) => {
                let seq = self.seq_of(id).ok_or(Outcome::NotFound)?;
                if !visible.iter().any(|(s, _)| *s == seq) {
                    return Err(Outcome::NotFound);
                }
                let after = |s: u32| if q.desc { s < seq } else { s > seq };
                if *before {
                    let mut prior: Vec<&ModelDoc> = ordered
                        .iter()
                        .filter(|(s, _)| *s != seq && !after(*s))
                        .map(|(_, d)| *d)
                        .collect();
                    prior.reverse();
                    prior
                } else {
                    ordered
                        .iter()
                        .filter(|(s, _)| after(*s))
                        .map(|(_, d)| *d)
                        .collect()
                }
            }
        };
        page = page
            .into_iter()
            .skip(q.offset as usize)
            .take(q.limit as usize)
            .collect();
        if matches!(q.cursor, Some((_, true))) {
            page.reverse();
        }
        Ok((total, page.iter().map(|d| d.id.clone()).collect()))
    }
}

#[derive(Debug, Clone)]
struct ModelQuery {
    equal_a: Option<i64>,
    not_equal_a: Option<i64>,
    limit: u64,
    offset: u64,
    desc: bool,
    cursor: Option<(String, bool)>,
}

impl ModelQuery {
    fn queries(&self) -> Vec<Query> {
        let mut q = vec![Query::limit(self.limit), Query::offset(self.offset)];
        if let Some(a) = self.equal_a {
            q.push(Query::equal("a", [a]));
        }
        if let Some(a) = self.not_equal_a {
            q.push(Query::not_equal("a", a));
        }
        if self.desc {
            q.push(Query::order_desc("$sequence"));
        }
        match &self.cursor {
            Some((id, false)) => q.push(Query::cursor_after(id)),
            Some((id, true)) => q.push(Query::cursor_before(id)),
            None => {}
        }
        q
    }
}

fn model_query() -> impl Strategy<Value = ModelQuery> {
    (
        proptest::option::of(0..3i64),
        proptest::option::weighted(0.2, 0..3i64),
        0..5u64,
        prop_oneof![3 => Just(0u64), 1 => 1..3u64],
        any::<bool>(),
        proptest::option::of((0..IDS.len(), any::<bool>())),
    )
        .prop_map(
            |(equal_a, not_equal_a, limit, offset, desc, cursor)| ModelQuery {
                equal_a,
                not_equal_a,
                limit,
                offset,
                desc,
                cursor: cursor.map(|(i, before)| (IDS[i].to_string(), before)),
            },
        )
}

fn open(dir: &std::path::Path) -> Db {
    common::when_unlocked(|| {
        Db::open_with(
            dir,
            Options::new().durability(Durability::Periodic { every_ms: 10_000 }),
        )
    })
    .unwrap()
}

fn check_all(db: &Db, model: &Model, queries: &[ModelQuery]) {
    for who in EVERYONE {
        let coll = who.client(db).schema("s").collection("c");
        for q in queries.iter().chain([&ModelQuery {
            equal_a: None,
            not_equal_a: None,
            limit: 25,
            offset: 0,
            desc: false,
            cursor: None,
        }]) {
            let got = coll.find(&q.queries());
            let want = model.find(who, q);
            match (&got, &want) {
                (Ok(list), Ok((total, ids))) => {
                    let got_ids: Vec<&str> = list.documents.iter().map(|d| d.id()).collect();
                    assert_eq!(
                        (list.total, got_ids),
                        (*total, ids.iter().map(String::as_str).collect()),
                        "{who:?} {q:?}"
                    );
                    for d in &list.documents {
                        let seq = model.seq_of(d.id()).unwrap();
                        assert_eq!(d.get("a"), Some(&json!(model.docs[&seq].a)));
                    }
                }
                (Err(_), Err(o)) => assert_eq!(&outcome(&got), o, "{who:?} {q:?}"),
                _ => panic!("{who:?} {q:?}: permdb {got:?}, model {want:?}"),
            }
            let count = coll.count(&q.queries());
            match want {
                Ok((total, _)) if q.cursor.is_none() => {
                    assert_eq!(count.unwrap(), total, "{who:?} {q:?}")
                }
                Ok(_) => {}
                Err(o) => {
                    if q.cursor.is_none() {
                        assert_eq!(outcome(&count), o)
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 40,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("regressions"))),
        .. ProptestConfig::default()
    })]

    #[test]
    fn find_and_count_agree_with_the_model(
        (grants, document_security) in collection(),
        ops in proptest::collection::vec(op(), 1..30),
        queries in proptest::collection::vec(model_query(), 3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let spec_perms: Vec<Permission> = grants.iter().map(|&(a, r)| to_permission(a, r, true)).collect();
        db.root().schemas().create("s", "S").unwrap();
        db.root().schema("s").collections().create(
            CollectionSpec::new("c", "C").permissions(spec_perms).document_security(document_security),
        ).unwrap();
        let mut model = Model {
            grants: grants
                .iter()
                .map(|&(a, r)| (["read", "create", "update", "delete"][a as usize].to_string(), ROLE_POOL[r].to_string()))
                .collect(),
            document_security,
            docs: BTreeMap::new(),
            next_seq: 1,
        };
        for op in &ops {
            let (got, want) = match op {
                Op::Create { who, id, a, perms } => {
                    let p = perms.as_ref().map(|p| p.iter().map(|&(x, r)| to_permission(x, r, false)).collect());
                    let got = outcome(&who.client(&db).schema("s").collection("c").create(IDS[*id], json!({"a": a, "tag": "t"}), p));
                    (got, model.create(*who, IDS[*id], *a, perms))
                }
                Op::Update { who, id, a, perms } => {
                    let p = perms.as_ref().map(|p| p.iter().map(|&(x, r)| to_permission(x, r, false)).collect());
                    let data = match a { Some(a) => json!({"a": a}), None => json!({}) };
                    let got = outcome(&who.client(&db).schema("s").collection("c").update(IDS[*id], data, p));
                    (got, model.update(*who, IDS[*id], *a, perms))
                }
                Op::Delete { who, id } => {
                    let got = outcome(&who.client(&db).schema("s").collection("c").delete(IDS[*id]));
                    (got, model.delete(*who, IDS[*id]))
                }
                Op::Reopen => {
                    drop(db);
                    db = open(dir.path());
                    (Outcome::Ok, Outcome::Ok)
                }
            };
            prop_assert_eq!(got, want, "{:?}", op);
            check_all(&db, &model, &queries);
        }
        // Gets agree too: readable documents come back, the rest are NotFound or Unauthorized.
        for who in EVERYONE {
            for id in IDS {
                let got = who.client(&db).schema("s").collection("c").get(id);
                let read = model.access(who, "read");
                let want = if read == Access::Denied {
                    Outcome::Unauthorized
                } else {
                    match model.seq_of(id) {
                        Some(seq) if model.doc_allows(who, &read, &model.docs[&seq], "read") => Outcome::Ok,
                        _ => Outcome::NotFound,
                    }
                };
                prop_assert_eq!(outcome(&got), want, "get {} as {:?}", id, who);
            }
        }
    }
}
