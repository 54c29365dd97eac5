//! Property test: random collections, documents, permissions, write sequences and role
//! changes (memberships, labels, email verification), checked after every step against a
//! plain model that computes each principal's roles as docs/ARCHITECTURE.md ("Permission rules") says and filters all
//! documents by hand. Users act through fresh impersonation, held session clients and held
//! token clients, so a role change must reach a held `Client` at its next call.
//! A deterministic test past the 5,000 total cap (`TOTAL_CAP`) follows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use permdb::{
    AttributeSpec, Client, CollectionSpec, Db, Durability, Error, IndexSpec, Permission, Query,
    Role, TOTAL_CAP,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;

const IDS: [&str; 8] = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"];
/// Users with accounts: signed up, signed in (a held session client and a held token
/// client each), changed by the role operations.
const USERS: [&str; 3] = ["u1", "u2", "u3"];
/// A user id without an account: impersonation gives it the plain user roles only.
const GHOST: &str = "u4";
/// Teams created in every case; `t9` (in the pool) never exists.
const TEAMS: [&str; 2] = ["t1", "t2"];
const TEAM_ROLES: [&str; 2] = ["admin", "editor"];
const LABELS: [&str; 3] = ["vip", "staff", "beta"];
/// Roles documents and collections may name; some are held by nobody. `member:M` roles
/// come from the memberships made in the case (`RoleRef::Member`).
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

/// The default number of cases, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 40;

/// `cases` from `PROPTEST_CASES` when it is set (and a number), `default` otherwise
/// (`ProptestConfig::with_cases` and struct update syntax both ignore the variable);
/// failures persist to, and are replayed from, `tests/oracle.proptest-regressions`.
fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// How a user's client is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `root().impersonate(id)`, made for the call.
    Fresh,
    /// The client made by `set_session` when the case began (or at the last reopen).
    Session,
    /// The client made by `set_jwt` when the case began (or at the last reopen).
    Jwt,
}

const VIAS: [Via; 3] = [Via::Fresh, Via::Session, Via::Jwt];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Root,
    Guest,
    User(usize, Via),
    Ghost,
}

/// The principals every check runs as (users through each way in turn).
const EVERYONE: [Who; 6] = [
    Who::Root,
    Who::Guest,
    Who::User(0, Via::Fresh),
    Who::User(1, Via::Fresh),
    Who::User(2, Via::Fresh),
    Who::Ghost,
];

impl Who {
    fn via(self, via: Via) -> Who {
        match self {
            Who::User(i, _) => Who::User(i, via),
            other => other,
        }
    }
}

/// A role named by a generated case, resolved when the operation runs.
#[derive(Debug, Clone, Copy)]
enum RoleRef {
    /// `ROLE_POOL[i]`.
    Pool(usize),
    /// `member:M` for the k-th membership made so far (modulo), removed ones included.
    Member(usize),
    /// The k-th (modulo) role the acting principal holds as the model computes them;
    /// `ROLE_POOL` for root.
    Own(usize),
    /// The k-th (modulo) role some principal holds as the model computes them (teams,
    /// members and labels turn up here far more often than in the pool).
    Someone(usize),
}

fn role_ref() -> impl Strategy<Value = RoleRef> {
    prop_oneof![
        4 => (0..ROLE_POOL.len()).prop_map(RoleRef::Pool),
        1 => (0..8usize).prop_map(RoleRef::Member),
        3 => (0..16usize).prop_map(RoleRef::Own),
        3 => (0..64usize).prop_map(RoleRef::Someone),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        who: Who,
        id: usize,
        a: i64,
        perms: Option<Vec<(u8, RoleRef)>>,
    },
    Update {
        who: Who,
        id: usize,
        a: Option<i64>,
        perms: Option<Vec<(u8, RoleRef)>>,
    },
    Delete {
        who: Who,
        id: usize,
    },
    Reopen,
    /// `teams().create_membership`: user index 3 is the ghost, team index 2 is `t9`.
    Join {
        user: usize,
        team: usize,
        roles: Vec<usize>,
    },
    /// `teams().delete_membership`.
    Leave {
        user: usize,
        team: usize,
    },
    /// `users().update_labels`.
    Labels {
        user: usize,
        labels: Vec<usize>,
    },
    /// `users().update_email_verification`.
    Verify {
        user: usize,
        verified: bool,
    },
    /// `collections().update`: new collection grants and document security.
    Regrant {
        grants: Vec<(u8, RoleRef)>,
        document_security: bool,
    },
}

fn who() -> impl Strategy<Value = Who> {
    let via = proptest::sample::select(&VIAS[..]);
    prop_oneof![
        1 => Just(Who::Root),
        1 => Just(Who::Guest),
        4 => (0..USERS.len(), via).prop_map(|(i, v)| Who::User(i, v)),
        1 => Just(Who::Ghost),
    ]
}

/// Document permissions: (action code 0 read, 1 update, 2 delete, 3 write; role).
fn perms() -> impl Strategy<Value = Option<Vec<(u8, RoleRef)>>> {
    proptest::option::of(proptest::collection::vec((0..4u8, role_ref()), 0..5))
}

/// Collection grants: (action 0 read, 1 create, 2 update, 3 delete, 4 write; role).
fn grants() -> impl Strategy<Value = Vec<(u8, RoleRef)>> {
    proptest::collection::vec((0..5u8, role_ref()), 0..4)
}

/// A change to a user's roles: membership, labels, verification.
fn role_change() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize, 0..3usize, proptest::collection::vec(0..TEAM_ROLES.len(), 0..3))
            .prop_map(|(user, team, roles)| Op::Join { user, team, roles }),
        1 => (0..4usize, 0..3usize).prop_map(|(user, team)| Op::Leave { user, team }),
        2 => (0..4usize, proptest::collection::vec(0..LABELS.len(), 0..3))
            .prop_map(|(user, labels)| Op::Labels { user, labels }),
        2 => (0..4usize, any::<bool>()).prop_map(|(user, verified)| Op::Verify { user, verified }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (who(), 0..IDS.len(), 0..3i64, perms()).prop_map(|(who, id, a, perms)| Op::Create { who, id, a, perms }),
        3 => (who(), 0..IDS.len(), proptest::option::of(0..3i64), perms())
            .prop_map(|(who, id, a, perms)| Op::Update { who, id, a, perms }),
        2 => (who(), 0..IDS.len()).prop_map(|(who, id)| Op::Delete { who, id }),
        1 => Just(Op::Reopen),
        5 => role_change(),
        1 => (grants(), any::<bool>())
            .prop_map(|(grants, document_security)| Op::Regrant { grants, document_security }),
    ]
}

fn to_permission(action: u8, role: &str, collection_level: bool) -> Permission {
    let role: Role = role.parse().unwrap();
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

/// What a user's roles follow from.
#[derive(Debug, Clone, Default)]
struct UserState {
    verified: bool,
    labels: BTreeSet<String>,
    /// team -> (membership id, team roles)
    memberships: BTreeMap<String, (String, BTreeSet<String>)>,
}

#[derive(Debug)]
struct Model {
    grants: BTreeSet<(String, String)>,
    document_security: bool,
    docs: BTreeMap<u32, ModelDoc>,
    next_seq: u32,
    users: Vec<UserState>,
    /// Every membership id made in the case, in order (for `RoleRef::Member`).
    memberships_ever: Vec<String>,
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
        Err(Error::Unauthorized { .. }) => Outcome::Unauthorized,
        Err(Error::Conflict { .. }) => Outcome::Conflict,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Document permissions as (action, role) pairs; `write` is update and delete.
fn expand(perms: &[(u8, String)]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (a, role) in perms {
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

/// Collection grants as (action, role) pairs; `write` is create, update and delete.
fn expand_grants(grants: &[(u8, String)]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (a, role) in grants {
        let actions: &[&str] = match a {
            0 => &["read"],
            1 => &["create"],
            2 => &["update"],
            3 => &["delete"],
            _ => &["create", "update", "delete"],
        };
        for act in actions {
            out.insert((act.to_string(), role.clone()));
        }
    }
    out
}

/// The plain user roles of docs/ARCHITECTURE.md ("Permission rules") for a user with no memberships or labels.
fn plain_user_roles(id: &str, verified: bool) -> BTreeSet<String> {
    let v = if verified { "verified" } else { "unverified" };
    [
        "any".to_string(),
        "users".into(),
        format!("users/{v}"),
        format!("user:{id}"),
        format!("user:{id}/{v}"),
    ]
    .into()
}

impl Model {
    /// The roles the model believes `who` holds (docs/ARCHITECTURE.md ("Permission rules")); `None` for root.
    fn roles(&self, who: Who) -> Option<BTreeSet<String>> {
        match who {
            Who::Root => None,
            Who::Guest => Some(["any", "guests"].map(String::from).into()),
            Who::Ghost => Some(plain_user_roles(GHOST, false)),
            Who::User(i, _) => {
                let u = &self.users[i];
                let mut roles = plain_user_roles(USERS[i], u.verified);
                for (team, (membership, team_roles)) in &u.memberships {
                    roles.insert(format!("team:{team}"));
                    roles.insert(format!("member:{membership}"));
                    for r in team_roles {
                        roles.insert(format!("team:{team}/{r}"));
                    }
                }
                for l in &u.labels {
                    roles.insert(format!("label:{l}"));
                }
                Some(roles)
            }
        }
    }

    fn resolve(&self, r: RoleRef, acting: Who) -> String {
        match r {
            RoleRef::Pool(i) => ROLE_POOL[i].to_string(),
            RoleRef::Member(_) if self.memberships_ever.is_empty() => "member:none0".into(),
            RoleRef::Member(k) => format!(
                "member:{}",
                self.memberships_ever[k % self.memberships_ever.len()]
            ),
            RoleRef::Own(k) => match self.roles(acting) {
                Some(roles) => roles.iter().nth(k % roles.len()).unwrap().clone(),
                None => ROLE_POOL[k % ROLE_POOL.len()].to_string(),
            },
            RoleRef::Someone(k) => {
                let all: BTreeSet<String> = EVERYONE
                    .into_iter()
                    .filter_map(|who| self.roles(who))
                    .flatten()
                    .collect();
                all.iter().nth(k % all.len()).unwrap().clone()
            }
        }
    }

    fn resolve_all(&self, refs: &[(u8, RoleRef)], acting: Who) -> Vec<(u8, String)> {
        refs.iter()
            .map(|&(a, r)| (a, self.resolve(r, acting)))
            .collect()
    }

    fn access(&self, who: Who, action: &str) -> Access {
        match self.roles(who) {
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
                let roles = self.roles(who).unwrap_or_default();
                doc.perms
                    .iter()
                    .any(|(a, r)| a == action && roles.contains(r))
            }
        }
    }

    fn seq_of(&self, id: &str) -> Option<u32> {
        self.docs.iter().find(|(_, d)| d.id == id).map(|(s, _)| *s)
    }

    fn holds_all(&self, who: Who, perms: &BTreeSet<(String, String)>) -> bool {
        match self.roles(who) {
            None => true,
            Some(roles) => perms.iter().all(|(_, r)| roles.contains(r)),
        }
    }

    fn create(&mut self, who: Who, id: &str, a: i64, perms: Option<&[(u8, String)]>) -> Outcome {
        let perms = match (perms, who) {
            (Some(p), _) => expand(p),
            (None, Who::User(i, _)) => ["read", "update", "delete"]
                .iter()
                .map(|act| (act.to_string(), format!("user:{}", USERS[i])))
                .collect(),
            (None, Who::Ghost) => ["read", "update", "delete"]
                .iter()
                .map(|act| (act.to_string(), format!("user:{GHOST}")))
                .collect(),
            (None, _) => BTreeSet::new(),
        };
        if !self.holds_all(who, &perms) {
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
        perms: Option<&[(u8, String)]>,
    ) -> Outcome {
        let perms = perms.map(expand);
        if let Some(p) = &perms
            && !self.holds_all(who, p)
        {
            return Outcome::Unauthorized;
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
    let options = common::test_options()
        .0
        .durability(Durability::Periodic { every_ms: 10_000 });
    common::when_unlocked(|| Db::open_with(dir, options.clone())).unwrap()
}

fn email(user: &str) -> String {
    format!("{user}@example.com")
}

fn password(user: &str) -> String {
    format!("password-{user}")
}

/// The store and the clients held across operations.
struct World {
    db: Db,
    /// Per user: the session secret and the token, to build the held clients again after a reopen.
    secrets: Vec<(String, String)>,
    /// Per user: (session client, token client), made once and kept.
    held: Vec<(Client, Client)>,
}

impl World {
    fn new(dir: &std::path::Path) -> World {
        let db = open(dir);
        let mut secrets = Vec::new();
        for u in USERS {
            db.client()
                .account()
                .create(u, &email(u), &password(u), None)
                .unwrap();
            let session = db
                .client()
                .account()
                .create_email_password_session(&email(u), &password(u))
                .unwrap();
            let signed_in = db.client().set_session(&session.secret).unwrap();
            let jwt = signed_in.account().create_jwt().unwrap();
            secrets.push((session.secret.clone(), jwt.jwt.clone()));
        }
        for t in TEAMS {
            db.root().teams().create(t, t).unwrap();
        }
        let mut world = World {
            db,
            secrets,
            held: Vec::new(),
        };
        world.hold();
        world
    }

    fn hold(&mut self) {
        self.held = self
            .secrets
            .iter()
            .map(|(session, jwt)| {
                (
                    self.db.client().set_session(session).unwrap(),
                    self.db.client().set_jwt(jwt).unwrap(),
                )
            })
            .collect();
    }

    /// Closes the store and opens it again. Held clients keep the store open: they are
    /// dropped first, then made again from the same session secrets and tokens.
    fn reopen(self, dir: &std::path::Path) -> World {
        let World { db, secrets, held } = self;
        drop(held);
        drop(db);
        let mut world = World {
            db: open(dir),
            secrets,
            held: Vec::new(),
        };
        world.hold();
        world
    }

    fn client(&self, who: Who) -> Client {
        match who {
            Who::Root => self.db.root(),
            Who::Guest => self.db.client(),
            Who::User(i, Via::Fresh) => self.db.root().impersonate(USERS[i]).unwrap(),
            Who::User(i, Via::Session) => self.held[i].0.clone(),
            Who::User(i, Via::Jwt) => self.held[i].1.clone(),
            Who::Ghost => self.db.root().impersonate(GHOST).unwrap(),
        }
    }
}

/// The roles `client` reports, as strings (empty for root).
fn role_strings(client: &Client) -> BTreeSet<String> {
    client.roles().iter().map(ToString::to_string).collect()
}

fn check_all(world: &World, model: &Model, queries: &[ModelQuery]) {
    let all = ModelQuery {
        equal_a: None,
        not_equal_a: None,
        limit: 25,
        offset: 0,
        desc: false,
        cursor: None,
    };
    for (n, q) in queries.iter().chain([&all]).enumerate() {
        for (k, who) in EVERYONE.into_iter().enumerate() {
            // Users take turns through a fresh, a held session and a held token client.
            let who = who.via(VIAS[(n + k) % VIAS.len()]);
            let client = world.client(who);
            let coll = client.schema("s").collection("c");
            let got = coll.find(&q.queries());
            let want = model.find(who, q);
            // A held client must act with the roles as they are now, not as they were.
            assert_eq!(
                role_strings(&client),
                model.roles(who).unwrap_or_default(),
                "roles of {who:?}"
            );
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

/// Runs one role operation on the store and the model; the two outcomes.
fn role_op(world: &World, model: &mut Model, op: &Op) -> (Outcome, Outcome) {
    let root = world.db.root();
    let user_id = |user: usize| {
        if user < USERS.len() {
            USERS[user]
        } else {
            GHOST
        }
    };
    let team_id = |team: usize| {
        if team < TEAMS.len() {
            TEAMS[team]
        } else {
            "t9"
        }
    };
    let account = |user: usize| user < USERS.len();
    match *op {
        Op::Join {
            user,
            team,
            ref roles,
        } => {
            let names: Vec<&str> = roles.iter().map(|&r| TEAM_ROLES[r]).collect();
            let got = root
                .teams()
                .create_membership(team_id(team), user_id(user), &names);
            let want = if !account(user) || team >= TEAMS.len() {
                Outcome::NotFound
            } else if model.users[user].memberships.contains_key(team_id(team)) {
                Outcome::Conflict
            } else {
                Outcome::Ok
            };
            if let (Ok(m), Outcome::Ok) = (&got, &want) {
                model.memberships_ever.push(m.id().to_string());
                model.users[user].memberships.insert(
                    team_id(team).to_string(),
                    (
                        m.id().to_string(),
                        names.iter().map(ToString::to_string).collect(),
                    ),
                );
            }
            (outcome(&got), want)
        }
        Op::Leave { user, team } => {
            let state = model.users.get(user).cloned().unwrap_or_default();
            let (membership, want) = match state.memberships.get(team_id(team)) {
                Some((m, _)) => (m.clone(), Outcome::Ok),
                // Another team's membership of the user, named with this team: not found.
                None => match state.memberships.values().next() {
                    Some((m, _)) => (m.clone(), Outcome::NotFound),
                    None => ("nobody".to_string(), Outcome::NotFound),
                },
            };
            let got = root.teams().delete_membership(team_id(team), &membership);
            if want == Outcome::Ok {
                model.users[user].memberships.remove(team_id(team));
            }
            (outcome(&got), want)
        }
        Op::Labels { user, ref labels } => {
            let names: Vec<&str> = labels.iter().map(|&l| LABELS[l]).collect();
            let got = root.users().update_labels(user_id(user), &names);
            let want = if account(user) {
                model.users[user].labels = names.iter().map(ToString::to_string).collect();
                Outcome::Ok
            } else {
                Outcome::NotFound
            };
            (outcome(&got), want)
        }
        Op::Verify { user, verified } => {
            let got = root
                .users()
                .update_email_verification(user_id(user), verified);
            let want = if account(user) {
                model.users[user].verified = verified;
                Outcome::Ok
            } else {
                Outcome::NotFound
            };
            (outcome(&got), want)
        }
        Op::Regrant {
            ref grants,
            document_security,
        } => {
            let grants = model.resolve_all(grants, Who::Root);
            let spec = CollectionSpec::new("c", "C")
                .permissions(
                    grants
                        .iter()
                        .map(|(a, r)| to_permission(*a, r, true))
                        .collect::<Vec<_>>(),
                )
                .document_security(document_security);
            let got = root.schema("s").collections().update(spec);
            model.grants = expand_grants(&grants);
            model.document_security = document_security;
            (outcome(&got), Outcome::Ok)
        }
        _ => unreachable!("not a role operation"),
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn find_and_count_agree_with_the_model(
        setup in proptest::collection::vec(role_change(), 0..6),
        (grants, document_security) in (grants(), any::<bool>()),
        ops in proptest::collection::vec(op(), 1..30),
        queries in proptest::collection::vec(model_query(), 3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut world = World::new(dir.path());
        let mut model = Model {
            grants: BTreeSet::new(),
            document_security,
            docs: BTreeMap::new(),
            next_seq: 1,
            users: vec![UserState::default(); USERS.len()],
            memberships_ever: Vec::new(),
        };
        // Roles first (checked like any operation), so the collection and the documents
        // can name team, member and label roles from the start.
        for op in &setup {
            let (got, want) = role_op(&world, &mut model, op);
            prop_assert_eq!(got, want, "{:?}", op);
        }
        let grants = model.resolve_all(&grants, Who::Root);
        model.grants = expand_grants(&grants);
        let spec_perms: Vec<Permission> = grants.iter().map(|(a, r)| to_permission(*a, r, true)).collect();
        world.db.root().schemas().create("s", "S").unwrap();
        world.db.root().schema("s").collections().create(
            CollectionSpec::new("c", "C").permissions(spec_perms).document_security(document_security),
        ).unwrap();
        for op in &ops {
            let (got, want) = match op {
                Op::Create { who, id, a, perms } => {
                    let perms = perms.as_ref().map(|p| model.resolve_all(p, *who));
                    let p = perms.as_ref().map(|p| p.iter().map(|(x, r)| to_permission(*x, r, false)).collect());
                    let got = outcome(&world.client(*who).schema("s").collection("c").create(IDS[*id], json!({"a": a, "tag": "t"}), p));
                    (got, model.create(*who, IDS[*id], *a, perms.as_deref()))
                }
                Op::Update { who, id, a, perms } => {
                    let perms = perms.as_ref().map(|p| model.resolve_all(p, *who));
                    let p = perms.as_ref().map(|p| p.iter().map(|(x, r)| to_permission(*x, r, false)).collect());
                    let data = match a { Some(a) => json!({"a": a}), None => json!({}) };
                    let got = outcome(&world.client(*who).schema("s").collection("c").update(IDS[*id], data, p));
                    (got, model.update(*who, IDS[*id], *a, perms.as_deref()))
                }
                Op::Delete { who, id } => {
                    let got = outcome(&world.client(*who).schema("s").collection("c").delete(IDS[*id]));
                    (got, model.delete(*who, IDS[*id]))
                }
                Op::Reopen => {
                    world = world.reopen(dir.path());
                    (Outcome::Ok, Outcome::Ok)
                }
                role => role_op(&world, &mut model, role),
            };
            prop_assert_eq!(got, want, "{:?}", op);
            check_all(&world, &model, &queries);
        }
        // Gets agree too: readable documents come back, the rest are NotFound or Unauthorized.
        for (k, who) in EVERYONE.into_iter().enumerate() {
            for (n, id) in IDS.into_iter().enumerate() {
                let who = who.via(VIAS[(n + k) % VIAS.len()]);
                let got = world.client(who).schema("s").collection("c").get(id);
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

// ---- past the total cap ------------------------------------------------------

/// A document of the cap test's model.
#[derive(Debug, Clone)]
struct CapDoc {
    id: String,
    seq: u64,
    a: i64,
    k: i64,
    readers: BTreeSet<String>,
}

/// A named query part with the model's version of it.
type Named<F> = (&'static str, Vec<Query>, F);
/// The model's filter.
type Keep = fn(&CapDoc) -> bool;
/// The model's order.
type Order = fn(&CapDoc, &CapDoc) -> std::cmp::Ordering;

/// The filters the cap test runs: none, one that needs decoding, one an index answers
/// exactly, and an equality on the indexed attribute.
fn cap_filters() -> Vec<Named<Keep>> {
    vec![
        ("none", vec![], |_| true),
        ("notEqual(a, 0)", vec![Query::not_equal("a", 0)], |d| {
            d.a != 0
        }),
        (
            "greaterThan(k, 0)",
            vec![Query::greater_than("k", 0)],
            |d| d.k > 0,
        ),
        (
            "equal(k, [1, 2, 3])",
            vec![Query::equal("k", [1, 2, 3])],
            |d| (1..=3).contains(&d.k),
        ),
    ]
}

/// The orders the cap test runs (`$sequence` both ways streams, `k` walks its index,
/// `a` decodes and sorts), with the model's comparison: ties go by `$sequence` in the
/// direction of the last order.
fn cap_orders() -> Vec<Named<Order>> {
    vec![
        ("$sequence asc", vec![], |x, y| x.seq.cmp(&y.seq)),
        (
            "$sequence desc",
            vec![Query::order_desc("$sequence")],
            |x, y| y.seq.cmp(&x.seq),
        ),
        ("k asc", vec![Query::order_asc("k")], |x, y| {
            x.k.cmp(&y.k).then(x.seq.cmp(&y.seq))
        }),
        ("a desc", vec![Query::order_desc("a")], |x, y| {
            y.a.cmp(&x.a).then(y.seq.cmp(&x.seq))
        }),
    ]
}

/// How much `check_capped` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Without a filter only.
    Quick,
    /// Every filter and order.
    Full,
    /// `Full`, and a walk through every page with `cursorAfter`.
    Walk,
}

fn ids(docs: &[permdb::Document]) -> Vec<String> {
    docs.iter().map(|d| d.id().to_string()).collect()
}

/// Checks `client` (holding `roles`) against the model on every filter and order: `total`
/// is the number of matches up to `TOTAL_CAP` and exactly `TOTAL_CAP` past it, `count` is
/// exact, and pages (offsets past the cap included) hold the right documents.
/// `depth`: how much of that to run.
fn check_capped(client: &Client, roles: &BTreeSet<String>, docs: &[CapDoc], depth: Depth) {
    let coll = client.schema("s").collection("c");
    let visible: Vec<&CapDoc> = docs
        .iter()
        .filter(|d| d.readers.iter().any(|r| roles.contains(r)))
        .collect();
    for (fname, filter, keep) in cap_filters() {
        if depth == Depth::Quick && !filter.is_empty() {
            continue;
        }
        let matching: Vec<&CapDoc> = visible.iter().copied().filter(|d| keep(d)).collect();
        let n = matching.len() as u64;
        let want_total = n.min(TOTAL_CAP);
        assert_eq!(
            coll.count(&filter).unwrap(),
            n,
            "count {fname} as {roles:?}"
        );
        // `roles()` reports the roles as of the client's last call.
        assert_eq!(&role_strings(client), roles);
        for (oname, order, cmp) in cap_orders() {
            let mut ordered = matching.clone();
            ordered.sort_by(|x, y| cmp(x, y));
            let want_ids = |from: usize, len: usize| -> Vec<String> {
                ordered
                    .iter()
                    .skip(from)
                    .take(len)
                    .map(|d| d.id.clone())
                    .collect()
            };
            for (offset, limit) in [(0u64, 25u64), (4990, 20), (5010, 30)] {
                let mut q = filter.clone();
                q.extend(order.clone());
                q.extend([Query::offset(offset), Query::limit(limit)]);
                let page = coll.find(&q).unwrap();
                let what = format!("{fname}, {oname}, offset {offset} as {roles:?}");
                assert_eq!(page.total, want_total, "total of {what} ({n} match)");
                assert_eq!(
                    ids(&page.documents),
                    want_ids(offset as usize, limit as usize),
                    "{what}"
                );
            }
            if depth == Depth::Walk && fname == "none" {
                // Page through everything: the pages join up to every match, in order,
                // and each one says the same capped total.
                let mut seen: Vec<String> = Vec::new();
                loop {
                    let mut q = order.clone();
                    q.push(Query::limit(1000));
                    if let Some(last) = seen.last() {
                        q.push(Query::cursor_after(last));
                    }
                    let page = coll.find(&q).unwrap();
                    assert_eq!(page.total, want_total, "walk {oname} as {roles:?}");
                    if page.documents.is_empty() {
                        break;
                    }
                    seen.extend(ids(&page.documents));
                }
                assert_eq!(seen, want_ids(0, usize::MAX), "walk {oname} as {roles:?}");
            }
        }
    }
}

/// More than 5,000 documents visible through team, label, member and verification roles:
/// `find`'s total stops at `TOTAL_CAP` (exact below it, equal to it above, as
/// `src/query/mod.rs` documents), `count` stays exact, and paging reaches every document
/// past the cap. Role changes and deletes move principals across the cap, one document
/// at a time at the boundary, and held session clients follow.
#[test]
fn find_total_is_capped_and_pages_go_past_the_cap() {
    const N: usize = 6_500;
    const STAFF: usize = 5_100;
    let db = Db::temporary_with(common::test_options().0).unwrap();
    let root = db.root();
    let mut sessions = Vec::new();
    for u in USERS {
        db.client()
            .account()
            .create(u, &email(u), &password(u), None)
            .unwrap();
        let session = db
            .client()
            .account()
            .create_email_password_session(&email(u), &password(u))
            .unwrap();
        sessions.push(db.client().set_session(&session.secret).unwrap());
    }
    root.teams().create("t1", "T1").unwrap();
    let membership = root
        .teams()
        .create_membership("t1", "u1", &["admin"])
        .unwrap();
    let member = format!("member:{}", membership.id());
    root.users().update_email_verification("u1", true).unwrap();
    root.users().update_labels("u1", &["vip"]).unwrap();
    root.users().update_labels("u3", &["staff"]).unwrap();
    let mut model = Model {
        grants: BTreeSet::new(),
        document_security: true,
        docs: BTreeMap::new(),
        next_seq: 1,
        users: vec![UserState::default(); USERS.len()],
        memberships_ever: vec![membership.id().to_string()],
    };
    model.users[0].verified = true;
    model.users[0].labels.insert("vip".into());
    model.users[0].memberships.insert(
        "t1".into(),
        (membership.id().to_string(), ["admin".to_string()].into()),
    );
    model.users[2].labels.insert("staff".into());

    let coll = common::create_collection(
        &db,
        "s",
        CollectionSpec::new("c", "C").document_security(true),
    );
    let collections = root.schema("s").collections();
    collections
        .create_attribute("c", AttributeSpec::integer("a"))
        .unwrap();
    collections
        .create_attribute("c", AttributeSpec::integer("k"))
        .unwrap();
    collections
        .create_index("c", IndexSpec::key("k_k", ["k"]))
        .unwrap();

    // u1 sees about 87% (a union of roles, none of which reaches the cap alone), u2 about
    // half, u3 the first 5,100 through `label:staff` alone, guests 1 in 16.
    let mut docs = Vec::with_capacity(N);
    for i in 0..N {
        let r = common::mix(i as u64);
        let mut readers = BTreeSet::new();
        let mut grant = |yes: bool, role: &str| {
            if yes {
                readers.insert(role.to_string());
            }
        };
        grant(r & 1 != 0, "team:t1/admin");
        grant(r & 2 != 0, "label:vip");
        grant(r & 12 == 0, &member);
        grant(r & 48 == 0, "users/verified");
        grant(r & 64 != 0, "user:u2");
        grant(r & 0xF00 == 0, "any");
        grant(i < STAFF, "label:staff");
        docs.push(CapDoc {
            id: format!("d{i:05}"),
            seq: 0,
            a: ((r >> 16) % 10) as i64,
            k: ((r >> 24) % 10) as i64,
            readers,
        });
    }
    for chunk in docs.chunks_mut(500) {
        let created = coll
            .create_many(chunk.iter().map(|d| {
                (
                    d.id.clone(),
                    json!({"a": d.a, "k": d.k}),
                    Some(
                        d.readers
                            .iter()
                            .map(|r| Permission::read(r.parse::<Role>().unwrap()))
                            .collect::<Vec<_>>(),
                    ),
                )
            }))
            .unwrap();
        for (d, c) in chunk.iter_mut().zip(created) {
            assert_eq!(d.id, c.id());
            d.seq = c.sequence();
        }
    }

    let roles_of = |model: &Model, who: Who| model.roles(who).unwrap();
    let visible = |roles: &BTreeSet<String>, docs: &[CapDoc]| {
        docs.iter()
            .filter(|d| d.readers.iter().any(|r| roles.contains(r)))
            .count()
    };
    let u = |i: usize| Who::User(i, Via::Session);
    // The layout does what it says.
    let u1 = roles_of(&model, u(0));
    assert!(visible(&u1, &docs) > 5_500, "{}", visible(&u1, &docs));
    for role in &u1 {
        let alone = docs.iter().filter(|d| d.readers.contains(role)).count();
        assert!(alone < 5_000, "{role} alone reaches the cap");
    }
    assert!(visible(&roles_of(&model, u(1)), &docs) < 5_000);
    assert!(visible(&roles_of(&model, u(2)), &docs) > STAFF);

    check_capped(&sessions[0], &u1, &docs, Depth::Walk);
    check_capped(&sessions[1], &roles_of(&model, u(1)), &docs, Depth::Quick);
    check_capped(&sessions[2], &roles_of(&model, u(2)), &docs, Depth::Full);
    check_capped(
        &db.client(),
        &roles_of(&model, Who::Guest),
        &docs,
        Depth::Quick,
    );

    // Without `label:vip` u1 falls under the cap: the held client's total is exact again.
    root.users().update_labels("u1", &[]).unwrap();
    model.users[0].labels.clear();
    let u1 = roles_of(&model, u(0));
    assert!(visible(&u1, &docs) < 5_000, "{}", visible(&u1, &docs));
    check_capped(&sessions[0], &u1, &docs, Depth::Quick);
    // Back over it with the label, then under it again without the team.
    root.users().update_labels("u1", &["vip"]).unwrap();
    model.users[0].labels.insert("vip".into());
    check_capped(&sessions[0], &roles_of(&model, u(0)), &docs, Depth::Quick);
    root.teams()
        .delete_membership("t1", membership.id())
        .unwrap();
    model.users[0].memberships.clear();
    let u1 = roles_of(&model, u(0));
    assert!(visible(&u1, &docs) < 5_000, "{}", visible(&u1, &docs));
    check_capped(&sessions[0], &u1, &docs, Depth::Quick);

    // u3 down to the cap one deleted document at a time: 5,001, 5,000, 4,999 visible.
    let u3 = roles_of(&model, u(2));
    while visible(&u3, &docs) > 4_999 {
        let n = visible(&u3, &docs);
        let at = docs
            .iter()
            .rposition(|d| d.readers.contains("label:staff"))
            .unwrap();
        coll.delete(&docs[at].id).unwrap();
        docs.remove(at);
        if n - 1 <= 5_001 {
            let page = sessions[2].schema("s").collection("c").find(&[]).unwrap();
            assert_eq!(
                page.total,
                (n as u64 - 1).min(TOTAL_CAP),
                "{} visible",
                n - 1
            );
            check_capped(&sessions[2], &u3, &docs, Depth::Quick);
        }
    }
}
