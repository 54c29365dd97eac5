//! Who is acting, and the roles they act with. The role computation lives here
//! and only here, so sessions, tokens, teams and labels all feed the same function.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::perm::{Role, Scope, Verification};

/// Facts about a user from which their roles follow.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserFacts {
    pub(crate) id: String,
    pub(crate) email_verified: bool,
    /// Confirmed memberships: (membership id, team id, team roles).
    pub(crate) memberships: Vec<(String, String, Vec<String>)>,
    pub(crate) labels: Vec<String>,
}

/// The roles a principal holds, as role values and as the strings the index is keyed by.
///
/// INVARIANT (role-set-fingerprint): `keys` and `fingerprint` follow from `roles`, set
/// once in `from_roles`; a set is never changed afterwards (no `&mut self` methods).
/// The bitmap cache's per-set memo relies on it (`index::cache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleSet {
    roles: BTreeSet<Role>,
    /// Shared, so a memo can hold the set's keys without copying them.
    keys: Arc<BTreeSet<String>>,
    /// A hash of `keys`, to find the set's memo entries without hashing every role.
    fingerprint: u64,
}

impl RoleSet {
    fn from_roles(roles: impl IntoIterator<Item = Role>) -> RoleSet {
        let roles: BTreeSet<Role> = roles.into_iter().collect();
        let keys: BTreeSet<String> = roles.iter().map(Role::to_string).collect();
        let mut hasher = std::hash::DefaultHasher::new();
        keys.hash(&mut hasher);
        RoleSet {
            roles,
            keys: Arc::new(keys),
            fingerprint: hasher.finish(),
        }
    }

    /// A hash of the role keys: equal sets have equal fingerprints (not conversely).
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The role keys, shared.
    pub(crate) fn shared_keys(&self) -> &Arc<BTreeSet<String>> {
        &self.keys
    }

    /// This set with another fingerprint, to test what a collision does.
    #[cfg(test)]
    pub(crate) fn with_fingerprint(mut self, fingerprint: u64) -> RoleSet {
        self.fingerprint = fingerprint;
        self
    }

    /// Guests: `any` and `guests`.
    pub(crate) fn guest() -> RoleSet {
        RoleSet::from_roles([Role::Any, Role::Guests])
    }

    /// A signed-in user: `any`, `users`, `user:ID`, their verification forms,
    /// `team:T` and `team:T/R` per membership, `member:M`, `label:L`. Never `guests`.
    pub(crate) fn user(facts: &UserFacts) -> RoleSet {
        let v = if facts.email_verified {
            Verification::Verified
        } else {
            Verification::Unverified
        };
        let mut roles = vec![
            Role::Any,
            Role::users(),
            Role::users_with(v),
            Role::user(facts.id.clone()),
            Role::user_with(facts.id.clone(), v),
        ];
        for (membership, team, team_roles) in &facts.memberships {
            roles.push(Role::team(team.clone()));
            roles.push(Role::member(membership.clone()));
            roles.extend(
                team_roles
                    .iter()
                    .map(|r| Role::team_role(team.clone(), r.clone())),
            );
        }
        roles.extend(facts.labels.iter().map(|l| Role::label(l.clone())));
        RoleSet::from_roles(roles)
    }

    pub(crate) fn contains(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }

    pub(crate) fn contains_key(&self, role: &str) -> bool {
        self.keys.contains(role)
    }

    /// How many roles the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The role strings, sorted: the keys of the permission index.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    pub(crate) fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter()
    }
}

/// How a user principal was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserAuth {
    /// By root (`None`), or by an API key (`Some`, its scopes): then the client may do
    /// only what both the user's permissions and the key's scopes allow (`decide::check_scope`).
    Impersonated(Option<BTreeSet<Scope>>),
    /// By a session secret: the session id.
    Session(String),
    /// By a token: the session it was created from.
    Token(String),
}

/// The identity behind a client.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// In-process and trusted: permission checks are skipped.
    Root,
    /// An API key: permission checks skipped, limited to its scopes. Its expiry is the
    /// client's to check (`client::Expiry`), as every credential's is.
    Key { id: String, scopes: BTreeSet<Scope> },
    /// No credentials.
    Guest(RoleSet),
    /// A user.
    User {
        id: String,
        roles: RoleSet,
        auth: UserAuth,
    },
}

impl Principal {
    pub(crate) fn guest() -> Principal {
        Principal::Guest(RoleSet::guest())
    }

    pub(crate) fn user(facts: &UserFacts, auth: UserAuth) -> Principal {
        Principal::User {
            id: facts.id.clone(),
            roles: RoleSet::user(facts),
            auth,
        }
    }

    /// The roles to check against, or `None` when checks are skipped.
    pub(crate) fn roles(&self) -> Option<&RoleSet> {
        match self {
            Principal::Root | Principal::Key { .. } => None,
            Principal::Guest(roles) | Principal::User { roles, .. } => Some(roles),
        }
    }

    pub(crate) fn user_id(&self) -> Option<&str> {
        match self {
            Principal::User { id, .. } => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_roles() {
        let guest = RoleSet::guest();
        let keys: Vec<&str> = guest.keys().collect();
        assert_eq!(keys, ["any", "guests"]);
    }

    #[test]
    fn user_roles_include_teams_members_and_labels_but_not_guests() {
        let facts = UserFacts {
            id: "u1".into(),
            email_verified: true,
            memberships: vec![("m1".into(), "t1".into(), vec!["admin".into()])],
            labels: vec!["vip".into()],
        };
        let set = RoleSet::user(&facts);
        let keys: Vec<&str> = set.keys().collect();
        assert_eq!(
            keys,
            [
                "any",
                "label:vip",
                "member:m1",
                "team:t1",
                "team:t1/admin",
                "user:u1",
                "user:u1/verified",
                "users",
                "users/verified"
            ]
        );
        assert!(!set.contains(&Role::Guests));
        assert!(set.contains(&Role::user("u1")));
    }
}
