//! `Grant`: one permission a document carries, in the form stored and indexed:
//! a document action (read, update or delete) and the role's key string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::perm::{Action, Permission};

/// A document's grant of `action` to the role whose key is `role`.
///
/// INVARIANT (document-actions): `action` is read, update or delete; documents hold no
/// create or write (`write` is expanded when stored). Built only by
/// [`Grant::of_permission`] and by decoding, which refuses any other action code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Grant {
    action: Action,
    role: String,
}

/// The stored action codes: the only place they are written.
const CODES: [(u8, Action); 3] = [(1, Action::Read), (2, Action::Update), (3, Action::Delete)];

impl Grant {
    /// The grant a permission stands for on a document; `None` for create and write.
    pub(crate) fn of_permission(permission: &Permission) -> Option<Grant> {
        matches!(
            permission.action(),
            Action::Read | Action::Update | Action::Delete
        )
        .then(|| Grant {
            action: permission.action(),
            role: permission.role().to_string(),
        })
    }

    /// Read, update or delete.
    pub(crate) fn action(&self) -> Action {
        self.action
    }

    /// The role's key string, as the permission index is keyed.
    pub(crate) fn role(&self) -> &str {
        &self.role
    }

    /// The permission this stands for; an error names a malformed role.
    pub(crate) fn to_permission(&self) -> crate::error::Result<Permission> {
        Ok(Permission::new(self.action, self.role.parse()?))
    }

    fn code(&self) -> u8 {
        CODES
            .iter()
            .find(|(_, a)| *a == self.action)
            .map_or(0, |(c, _)| *c)
    }
}

impl Serialize for Grant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.code(), &self.role).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (code, role) = <(u8, String)>::deserialize(deserializer)?;
        let action = CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, a)| *a)
            .ok_or_else(|| crate::error::refuse(format!("unknown action code {code}")))?;
        Ok(Grant { action, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perm::Role;

    #[test]
    fn only_document_actions_become_grants() {
        let role = Role::user("u");
        for (action, kept) in [
            (Action::Read, true),
            (Action::Update, true),
            (Action::Delete, true),
            (Action::Create, false),
            (Action::Write, false),
        ] {
            let grant = Grant::of_permission(&Permission::new(action, role.clone()));
            assert_eq!(grant.is_some(), kept, "{action:?}");
            if let Some(g) = grant {
                assert_eq!((g.action(), g.role()), (action, "user:u"));
                assert_eq!(
                    g.to_permission().unwrap(),
                    Permission::new(action, role.clone())
                );
            }
        }
    }

    #[test]
    fn grants_are_stored_as_the_code_and_role_tuple_and_unknown_codes_are_refused() {
        for (action, code) in [
            (Action::Read, 1u8),
            (Action::Update, 2),
            (Action::Delete, 3),
        ] {
            let g = Grant::of_permission(&Permission::new(action, Role::team("t1"))).unwrap();
            let bytes = crate::store::codec::encode(&g).unwrap();
            assert_eq!(
                bytes,
                crate::store::codec::encode(&(code, "team:t1".to_string())).unwrap(),
                "the bytes the format stores"
            );
            let back: Grant = crate::store::codec::decode(&bytes, || "grant".into()).unwrap();
            assert_eq!(back, g);
        }
        for code in [0u8, 4, 255] {
            let bytes = crate::store::codec::encode(&(code, "any".to_string())).unwrap();
            let err = crate::store::codec::decode::<Grant>(&bytes, || "grant".into()).unwrap_err();
            assert!(err.to_string().contains("unknown action code"), "{err}");
        }
    }

    #[test]
    fn grants_sort_as_their_stored_code_and_role_tuples_do() {
        let perms = [
            Permission::delete(Role::any()),
            Permission::read(Role::user("z")),
            Permission::update(Role::team("t")),
            Permission::read(Role::any()),
            Permission::delete(Role::guests()),
            Permission::update(Role::any()),
        ];
        let mut grants: Vec<Grant> = perms.iter().filter_map(Grant::of_permission).collect();
        grants.sort();
        let mut tuples: Vec<(u8, String)> = perms
            .iter()
            .filter_map(Grant::of_permission)
            .map(|g| (g.code(), g.role().to_owned()))
            .collect();
        tuples.sort();
        let sorted: Vec<(u8, String)> = grants
            .iter()
            .map(|g| (g.code(), g.role().to_owned()))
            .collect();
        assert_eq!(sorted, tuples);
    }
}
