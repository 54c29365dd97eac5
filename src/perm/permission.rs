//! `Permission`: an action granted to a role, as `read("user:user-a")`.
//! `write` is shorthand: create + update + delete on a collection, update + delete on a document.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::id::quote;
use crate::perm::Role;

/// Most permissions one document or collection may carry.
pub const MAX_PERMISSIONS: usize = 100;

/// What a permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read the document (get, find, count).
    Read,
    /// Create documents (collection level only).
    Create,
    /// Change the document.
    Update,
    /// Delete the document.
    Delete,
    /// Shorthand, expanded when stored: see the module docs.
    Write,
}

impl Action {
    /// The action's name in permission strings.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Write => "write",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "read" => Action::Read,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            "write" => Action::Write,
            _ => return None,
        })
    }
}

/// An action granted to a role: `read("user:user-a")`, `write("team:t1/admin")`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    action: Action,
    role: Role,
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({self})")
    }
}

impl Permission {
    /// A permission of any action.
    #[must_use]
    pub fn new(action: Action, role: Role) -> Permission {
        Permission { action, role }
    }
    /// `read("ROLE")`
    #[must_use]
    pub fn read(role: Role) -> Permission {
        Permission::new(Action::Read, role)
    }
    /// `create("ROLE")`
    #[must_use]
    pub fn create(role: Role) -> Permission {
        Permission::new(Action::Create, role)
    }
    /// `update("ROLE")`
    #[must_use]
    pub fn update(role: Role) -> Permission {
        Permission::new(Action::Update, role)
    }
    /// `delete("ROLE")`
    #[must_use]
    pub fn delete(role: Role) -> Permission {
        Permission::new(Action::Delete, role)
    }
    /// `write("ROLE")`
    #[must_use]
    pub fn write(role: Role) -> Permission {
        Permission::new(Action::Write, role)
    }
    /// The action granted.
    #[must_use]
    pub fn action(&self) -> Action {
        self.action
    }
    /// The role it is granted to.
    #[must_use]
    pub fn role(&self) -> &Role {
        &self.role
    }
}

/// Where a permission list is used: decides which actions are allowed and what `write` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Collection,
    Document,
}

/// Validates a permission list for `target` and expands `write`, returning the
/// canonical list (sorted, without duplicates) that is stored and reported.
pub(crate) fn normalize(perms: &[Permission], target: Target) -> Result<Vec<Permission>> {
    if perms.len() > MAX_PERMISSIONS {
        return Err(Error::LimitExceeded(format!(
            "{} permissions given, at most {MAX_PERMISSIONS} allowed",
            perms.len()
        )));
    }
    let mut out = Vec::with_capacity(perms.len());
    for p in perms {
        p.role.validate()?;
        match (p.action, target) {
            (Action::Create, Target::Document) => {
                return Err(Error::InvalidPermission(format!(
                    "{}: documents take read, update, delete and write; create is granted on the collection",
                    quote(&p.to_string())
                )));
            }
            (Action::Write, Target::Collection) => {
                for a in [Action::Create, Action::Update, Action::Delete] {
                    out.push(Permission::new(a, p.role.clone()));
                }
            }
            (Action::Write, Target::Document) => {
                for a in [Action::Update, Action::Delete] {
                    out.push(Permission::new(a, p.role.clone()));
                }
            }
            _ => out.push(p.clone()),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(\"{}\")", self.action.as_str(), self.role)
    }
}

impl FromStr for Permission {
    type Err = Error;

    fn from_str(s: &str) -> Result<Permission> {
        let fail = |fault: &str| Error::InvalidPermission(format!("{}: {fault}", quote(s)));
        let Some((action, rest)) = s.split_once('(') else {
            return Err(fail("expected ACTION(\"ROLE\")"));
        };
        let action = Action::parse(action).ok_or_else(|| {
            fail(&format!(
                "unknown action {} (read, create, update, delete, write)",
                quote(action)
            ))
        })?;
        let Some(quoted) = rest.strip_prefix('"') else {
            return Err(fail("the role must be in double quotes"));
        };
        let Some(role) = quoted.strip_suffix("\")") else {
            return Err(fail("expected '\")' at the end"));
        };
        if role.contains('"') {
            return Err(fail("unbalanced quotes"));
        }
        let role: Role = role.parse()?;
        Ok(Permission { action, role })
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(crate::error::refuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_appwrite_strings() {
        for s in [
            "read(\"user:user-a\")",
            "write(\"team:t1/admin\")",
            "read(\"label:vip\")",
            "create(\"users\")",
            "update(\"any\")",
            "delete(\"member:m1\")",
            "read(\"users/verified\")",
        ] {
            let p: Permission = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            Permission::read(Role::user("user-a")).to_string(),
            "read(\"user:user-a\")"
        );
    }

    #[test]
    fn malformed_permissions_are_rejected() {
        let cases = [
            ("", "expected ACTION"),
            ("read", "expected ACTION"),
            ("read(user:a)", "double quotes"),
            ("read(\"user:a\"", "at the end"),
            ("read(\"user:a)", "at the end"),
            ("read(\"user:a\"))", "at the end"),
            ("read(\"user:a\") ", "at the end"),
            ("read(\"user:a\")x", "at the end"),
            ("read(\"us\"er:a\")", "unbalanced"),
            ("reed(\"any\")", "unknown action"),
            ("READ(\"any\")", "unknown action"),
            (" read(\"any\")", "unknown action"),
            ("read('any')", "double quotes"),
        ];
        for (input, fault) in cases {
            match input.parse::<Permission>() {
                Err(Error::InvalidPermission(msg)) => {
                    assert!(msg.contains(fault), "{input:?}: {msg:?} lacks {fault:?}")
                }
                other => panic!("{input:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            "read(\"user:\")".parse::<Permission>(),
            Err(Error::InvalidRole(_))
        ));
        assert!(matches!(
            "read(\"\")".parse::<Permission>(),
            Err(Error::InvalidRole(_))
        ));
    }
}
