//! `Role`: who a permission is granted to, in Appwrite's string form.
//! Parsing is strict: every accepted string prints back to itself exactly.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::id::{id_fault, is_id_char, quote};

/// Longest team role (the part after `/` in `team:ID/ROLE`).
pub const MAX_TEAM_ROLE_LEN: usize = 81;
/// Longest label name.
pub const MAX_LABEL_LEN: usize = 36;

/// Email verification dimension of `users` and `user:ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verification {
    /// `/verified`
    Verified,
    /// `/unverified`
    Unverified,
}

impl Verification {
    fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Unverified => "unverified",
        }
    }
}

/// A role, as in Appwrite: `any`, `guests`, `users[/verified|/unverified]`,
/// `user:ID[/verified|/unverified]`, `team:ID[/ROLE]`, `member:ID`, `label:NAME`.
///
/// Constructors do not validate; every write path calls [`Role::validate`],
/// and [`FromStr`] validates, so a malformed role never reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Anyone, signed in or not.
    Any,
    /// Clients that are not signed in.
    Guests,
    /// Any signed-in user, optionally only verified or unverified ones.
    Users(Option<Verification>),
    /// One user, optionally only while verified or unverified.
    User {
        /// The user id.
        id: String,
        /// The verification dimension, if any.
        verification: Option<Verification>,
    },
    /// Members of a team, optionally only those holding a team role.
    Team {
        /// The team id.
        id: String,
        /// The team role, if any.
        role: Option<String>,
    },
    /// The holder of one membership.
    Member(String),
    /// Users carrying a label.
    Label(String),
}

impl Role {
    /// `any`
    #[must_use]
    pub fn any() -> Role {
        Role::Any
    }
    /// `guests`
    #[must_use]
    pub fn guests() -> Role {
        Role::Guests
    }
    /// `users`
    #[must_use]
    pub fn users() -> Role {
        Role::Users(None)
    }
    /// `users/verified` or `users/unverified`
    #[must_use]
    pub fn users_with(verification: Verification) -> Role {
        Role::Users(Some(verification))
    }
    /// `user:ID`
    #[must_use]
    pub fn user(id: impl Into<String>) -> Role {
        Role::User {
            id: id.into(),
            verification: None,
        }
    }
    /// `user:ID/verified` or `user:ID/unverified`
    #[must_use]
    pub fn user_with(id: impl Into<String>, verification: Verification) -> Role {
        Role::User {
            id: id.into(),
            verification: Some(verification),
        }
    }
    /// `team:ID`
    #[must_use]
    pub fn team(id: impl Into<String>) -> Role {
        Role::Team {
            id: id.into(),
            role: None,
        }
    }
    /// `team:ID/ROLE`
    #[must_use]
    pub fn team_role(id: impl Into<String>, role: impl Into<String>) -> Role {
        Role::Team {
            id: id.into(),
            role: Some(role.into()),
        }
    }
    /// `member:ID`
    #[must_use]
    pub fn member(id: impl Into<String>) -> Role {
        Role::Member(id.into())
    }
    /// `label:NAME`
    #[must_use]
    pub fn label(name: impl Into<String>) -> Role {
        Role::Label(name.into())
    }

    /// Checks ids, team role and label against the rules; `Err(InvalidRole)` names the fault.
    pub fn validate(&self) -> Result<()> {
        match self.fault() {
            None => Ok(()),
            Some(fault) => Err(Error::InvalidRole(format!(
                "{}: {fault}",
                quote(&self.to_string())
            ))),
        }
    }

    fn fault(&self) -> Option<String> {
        match self {
            Role::Any | Role::Guests | Role::Users(_) => None,
            Role::User { id, .. } | Role::Member(id) => id_fault(id),
            Role::Team { id, role } => {
                id_fault(id).or_else(|| role.as_deref().and_then(team_role_fault))
            }
            Role::Label(name) => label_fault(name),
        }
    }
}

pub(crate) fn team_role_fault(role: &str) -> Option<String> {
    if role.is_empty() {
        Some("empty team role".into())
    } else if role.len() > MAX_TEAM_ROLE_LEN {
        Some(format!(
            "team role longer than {MAX_TEAM_ROLE_LEN} characters"
        ))
    } else {
        role.chars()
            .find(|c| !is_id_char(*c))
            .map(|c| format!("character {c:?} not allowed in a team role"))
    }
}

pub(crate) fn label_fault(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("empty label".into())
    } else if name.len() > MAX_LABEL_LEN {
        Some(format!("label longer than {MAX_LABEL_LEN} characters"))
    } else {
        name.chars()
            .find(|c| !c.is_ascii_alphanumeric())
            .map(|c| format!("character {c:?} not allowed in a label (letters and digits only)"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Any => f.write_str("any"),
            Role::Guests => f.write_str("guests"),
            Role::Users(None) => f.write_str("users"),
            Role::Users(Some(v)) => write!(f, "users/{}", v.as_str()),
            Role::User {
                id,
                verification: None,
            } => write!(f, "user:{id}"),
            Role::User {
                id,
                verification: Some(v),
            } => write!(f, "user:{id}/{}", v.as_str()),
            Role::Team { id, role: None } => write!(f, "team:{id}"),
            Role::Team { id, role: Some(r) } => write!(f, "team:{id}/{r}"),
            Role::Member(id) => write!(f, "member:{id}"),
            Role::Label(name) => write!(f, "label:{name}"),
        }
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        let fail = |fault: &str| Error::InvalidRole(format!("{}: {fault}", quote(s)));
        if s.is_empty() {
            return Err(fail("empty"));
        }
        let (head, dimension) = match s.split_once('/') {
            Some((h, d)) => (h, Some(d)),
            None => (s, None),
        };
        let (kind, id) = match head.split_once(':') {
            Some((k, i)) => (k, Some(i)),
            None => (head, None),
        };
        let role = match (kind, id) {
            ("any", None) | ("guests", None) => {
                if dimension.is_some() {
                    return Err(fail(&format!("role {kind:?} takes no dimension")));
                }
                if kind == "any" {
                    Role::Any
                } else {
                    Role::Guests
                }
            }
            ("users", None) => Role::Users(parse_verification(dimension).map_err(|m| fail(&m))?),
            ("any" | "guests" | "users", Some(_)) => {
                return Err(fail(&format!("role {kind:?} takes no id")));
            }
            ("user", Some(id)) => Role::User {
                id: id.to_owned(),
                verification: parse_verification(dimension).map_err(|m| fail(&m))?,
            },
            ("team", Some(id)) => Role::Team {
                id: id.to_owned(),
                role: dimension.map(str::to_owned),
            },
            ("member" | "label", Some(_)) if dimension.is_some() => {
                return Err(fail(&format!("role {kind:?} takes no dimension")));
            }
            ("member", Some(id)) => Role::Member(id.to_owned()),
            ("label", Some(name)) => Role::Label(name.to_owned()),
            ("user" | "team" | "member" | "label", None) => {
                return Err(fail(&format!("role {kind:?} needs an id after ':'")));
            }
            (other, _) => return Err(fail(&format!("unknown role type {}", quote(other)))),
        };
        match role.fault() {
            None => Ok(role),
            Some(fault) => Err(fail(&fault)),
        }
    }
}

fn parse_verification(
    dimension: Option<&str>,
) -> std::result::Result<Option<Verification>, String> {
    match dimension {
        None => Ok(None),
        Some("verified") => Ok(Some(Verification::Verified)),
        Some("unverified") => Ok(Some(Verification::Unverified)),
        Some(other) => Err(format!(
            "dimension {} must be \"verified\" or \"unverified\"",
            quote(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strings_round_trip() {
        for s in [
            "any",
            "guests",
            "users",
            "users/verified",
            "users/unverified",
            "user:user-a",
            "user:user-a/verified",
            "user:u1/unverified",
            "team:t1",
            "team:t1/admin",
            "team:t1/a.b_c-d",
            "member:m1",
            "label:vip",
        ] {
            let role: Role = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(role.to_string(), s);
        }
    }

    #[test]
    fn constructors_print_appwrite_strings() {
        assert_eq!(Role::user("user-a").to_string(), "user:user-a");
        assert_eq!(Role::team_role("t1", "admin").to_string(), "team:t1/admin");
        assert_eq!(
            Role::users_with(Verification::Verified).to_string(),
            "users/verified"
        );
        assert_eq!(Role::label("vip").to_string(), "label:vip");
        assert!(Role::user("bad id").validate().is_err());
    }

    #[test]
    fn malformed_roles_are_rejected_with_the_fault_named() {
        let cases = [
            ("", "empty"),
            ("nobody", "unknown role type"),
            ("admin:x", "unknown role type"),
            ("user:", "empty id"),
            ("user", "needs an id"),
            ("team", "needs an id"),
            ("any:x", "takes no id"),
            ("any/x", "no dimension"),
            ("users/admin", "must be \"verified\""),
            ("user:a/admin", "must be \"verified\""),
            ("user:a/", "must be \"verified\""),
            ("team:t1/", "empty team role"),
            ("member:m/x", "no dimension"),
            ("label:vip-1", "not allowed in a label"),
            ("label:", "empty label"),
            ("user:_a", "may not start"),
            ("user:a b", "not allowed in an id"),
            ("user:a:b", "not allowed in an id"),
            ("user:a\"", "not allowed in an id"),
            ("USERS", "unknown role type"),
            (" any", "unknown role type"),
        ];
        for (input, fault) in cases {
            match input.parse::<Role>() {
                Err(Error::InvalidRole(msg)) => {
                    assert!(msg.contains(fault), "{input:?}: {msg:?} lacks {fault:?}")
                }
                other => panic!("{input:?} gave {other:?}"),
            }
        }
        let long = format!("user:{}", "a".repeat(37));
        assert!(long.parse::<Role>().is_err());
        let long_team_role = format!("team:t/{}", "a".repeat(82));
        assert!(long_team_role.parse::<Role>().is_err());
        let ok_team_role = format!("team:t/{}", "a".repeat(81));
        assert!(ok_team_role.parse::<Role>().is_ok());
    }
}
