//! The permission rules of DESIGN.md section 3, decided in one place.
//! Fails closed: anything not explicitly granted is denied.

use crate::catalog::CollectionRecord;
use crate::document::{ACTION_DELETE, ACTION_READ, ACTION_UPDATE, DocRecord};
use crate::error::{Error, ResourceKind, Result};
use crate::id::quote;
use crate::perm::{Action, Principal, Role, Scope, UserAuth};

/// Who a call is open to besides root and keys holding its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Admin calls (schemas, users, teams): no user or guest, impersonated or not.
    Admin,
    /// Calls a user makes for themselves (documents, their account): users and guests
    /// pass here and are checked by permissions after; a user impersonated by an API key
    /// passes only if that key also holds the scope.
    Users,
}

/// Whether `principal`'s credential allows work needing `scope`. Root always; an API key
/// with the scope; for [`Audience::Users`], users and guests too, but a user impersonated
/// by a key only within the key's scopes. Expiry is not checked here: a client refuses
/// an expired credential before it hands out its principal.
pub(crate) fn check_scope(
    principal: &Principal,
    scope: Scope,
    what: &str,
    audience: Audience,
) -> Result<()> {
    let allowed = match (principal, audience) {
        (Principal::Root, _) => true,
        (Principal::Key { scopes, .. }, _) => scopes.contains(&scope),
        (_, Audience::Admin) => false,
        (
            Principal::User {
                auth: UserAuth::Impersonated(Some(scopes)),
                ..
            },
            Audience::Users,
        ) => {
            return if scopes.contains(&scope) {
                Ok(())
            } else {
                Err(Error::Unauthorized(format!(
                    "{what} as an impersonated user needs the API key to have scope {scope}"
                )))
            };
        }
        (Principal::User { .. } | Principal::Guest(_), Audience::Users) => true,
    };
    if allowed {
        Ok(())
    } else if matches!(principal, Principal::Key { .. }) {
        Err(Error::Unauthorized(format!(
            "{what} needs an API key with scope {scope}"
        )))
    } else {
        Err(Error::Unauthorized(format!(
            "{what} needs the root client or an API key with scope {scope}"
        )))
    }
}

/// How a principal may perform an action on a collection's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// On every document (root, or a collection-level grant).
    All,
    /// On the documents whose own permissions grant it (document security).
    ByDocument,
    /// On none.
    Denied,
}

pub(crate) fn access(principal: &Principal, coll: &CollectionRecord, action: Action) -> Access {
    match principal.roles() {
        None => Access::All,
        Some(roles) if coll.grants(action, roles) => Access::All,
        Some(_) if coll.document_security => Access::ByDocument,
        Some(_) => Access::Denied,
    }
}

fn code(action: Action) -> u8 {
    match action {
        Action::Update | Action::Write => ACTION_UPDATE,
        Action::Delete => ACTION_DELETE,
        Action::Read | Action::Create => ACTION_READ,
    }
}

fn allowed(principal: &Principal, access: Access, record: &DocRecord, action: Action) -> bool {
    match (access, principal.roles()) {
        (Access::All, _) => true,
        (Access::ByDocument, Some(roles)) => record.grants(code(action), |r| roles.contains_key(r)),
        (Access::ByDocument, None) => true,
        (Access::Denied, _) => false,
    }
}

/// Checks `action` (read, update or delete) on one document.
/// Order matters so that existence never leaks:
/// 1. neither read nor `action` granted anywhere: `Unauthorized`, before the document is looked up;
/// 2. no such document, or one the client can neither read nor act on: `NotFound`;
/// 3. readable but `action` not granted: `Unauthorized`.
pub(crate) fn check_document(
    principal: &Principal,
    coll: &CollectionRecord,
    action: Action,
    id: &str,
    lookup: impl FnOnce() -> Result<Option<DocRecord>>,
) -> Result<DocRecord> {
    let read = access(principal, coll, Action::Read);
    let act = access(principal, coll, action);
    if read == Access::Denied && act == Access::Denied {
        return Err(Error::Unauthorized(format!(
            "collection {} grants no {} to the client's roles",
            quote(&coll.id),
            action.as_str()
        )));
    }
    let record = lookup()?.ok_or_else(|| Error::not_found(ResourceKind::Document, id))?;
    let can_read = allowed(principal, read, &record, Action::Read);
    let can_act = allowed(principal, act, &record, action);
    match (can_read, can_act) {
        (_, true) => Ok(record),
        (false, false) => Err(Error::not_found(ResourceKind::Document, id)),
        (true, false) => Err(Error::Unauthorized(format!(
            "no {} permission on document {}",
            action.as_str(),
            quote(id)
        ))),
    }
}

/// Whether `principal` may read `record` (a document of `coll` as it is after a write):
/// a write answers with the document only then, with its system fields alone otherwise.
/// Needs `documents.read` of a key (or of the key behind an impersonated user) and, for
/// users and guests, the read permission.
pub(crate) fn may_read(principal: &Principal, coll: &CollectionRecord, record: &DocRecord) -> bool {
    check_scope(principal, Scope::DocumentsRead, "", Audience::Users).is_ok()
        && allowed(
            principal,
            access(principal, coll, Action::Read),
            record,
            Action::Read,
        )
}

/// A user or guest may only grant roles they hold; root may grant any.
pub(crate) fn check_grantable<'p>(
    principal: &Principal,
    roles: impl IntoIterator<Item = &'p Role>,
) -> Result<()> {
    let Some(held) = principal.roles() else {
        return Ok(());
    };
    for role in roles {
        if !held.contains(role) {
            return Err(Error::Unauthorized(format!(
                "permissions may only name roles the client holds; it does not hold {}",
                quote(&role.to_string())
            )));
        }
    }
    Ok(())
}
