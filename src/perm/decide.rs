//! The permission rules of docs/ARCHITECTURE.md ("Permission rules"), decided here and
//! only here: scopes, collection grants, document grants. Fails closed: anything not
//! explicitly granted is denied.

use crate::error::{Denial, Error, ResourceKind, Result};
use crate::id::quote;
use crate::perm::{Action, Grant, Permission, Principal, Role, RoleSet, Scope, UserAuth};

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
                Err(Error::unauthorized(
                    Denial::MissingScope,
                    format!(
                        "{what} as an impersonated user needs the API key to have scope {scope}"
                    ),
                ))
            };
        }
        (Principal::User { .. } | Principal::Guest(_), Audience::Users) => true,
    };
    if allowed {
        Ok(())
    } else if matches!(principal, Principal::Key { .. }) {
        Err(Error::unauthorized(
            Denial::MissingScope,
            format!("{what} needs an API key with scope {scope}"),
        ))
    } else {
        Err(Error::unauthorized(
            Denial::MissingScope,
            format!("{what} needs the root client or an API key with scope {scope}"),
        ))
    }
}

/// What the rules need of a collection: its id (for messages), its permissions, parsed
/// when its record was decoded, and whether document permissions count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CollectionRules<'a> {
    pub(crate) id: &'a str,
    pub(crate) permissions: &'a [Permission],
    pub(crate) document_security: bool,
}

impl CollectionRules<'_> {
    /// Whether the collection grants `action` to one of `roles`.
    fn grants(&self, action: Action, roles: &RoleSet) -> bool {
        self.permissions
            .iter()
            .any(|p| p.action() == action && roles.contains(p.role()))
    }
}

/// How a principal may perform an action on a collection's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// On every document (root, or a collection-level grant).
    All,
    /// On the documents whose own grants allow it to one of these roles (document
    /// security).
    ByDocument,
    /// On none.
    Denied,
}

/// How `principal` may perform `action` on the documents of `coll`.
pub(crate) fn access(principal: &Principal, coll: CollectionRules<'_>, action: Action) -> Access {
    match principal.roles() {
        None => Access::All,
        Some(roles) if coll.grants(action, roles) => Access::All,
        Some(_) if coll.document_security => Access::ByDocument,
        Some(_) => Access::Denied,
    }
}

/// Whether a document's own `grants` allow `action` to one of `roles`: the one
/// comparison of roles against document grants, which [`allows`] and the query path's
/// re-check of documents read through role bitmaps both make.
pub(crate) fn grants_to(grants: &[Grant], action: Action, roles: &RoleSet) -> bool {
    let action = match action {
        // A document holds update and delete; `write` asks for update.
        Action::Write => Action::Update,
        a => a,
    };
    grants
        .iter()
        .any(|g| g.action() == action && roles.contains_key(g.role()))
}

/// Whether `principal`, whose access to the collection is `access`, may perform `action`
/// on a document carrying `grants`.
pub(crate) fn allows(
    principal: &Principal,
    access: Access,
    grants: &[Grant],
    action: Action,
) -> bool {
    match (access, principal.roles()) {
        (Access::All, _) => true,
        (Access::ByDocument, Some(roles)) => grants_to(grants, action, roles),
        (Access::ByDocument, None) => true,
        (Access::Denied, _) => false,
    }
}

/// Checks `action` (read, update or delete) on one document, which `lookup` finds and
/// `grants_of` tells the grants of. Order matters so that existence never leaks:
/// 1. neither read nor `action` granted anywhere: `Unauthorized`, before the document is looked up;
/// 2. no such document, or one the client can neither read nor act on: `NotFound`;
/// 3. readable but `action` not granted: `Unauthorized`.
pub(crate) fn check_document<D>(
    principal: &Principal,
    coll: CollectionRules<'_>,
    action: Action,
    id: &str,
    lookup: impl FnOnce() -> Result<Option<D>>,
    grants_of: impl Fn(&D) -> &[Grant],
) -> Result<D> {
    let read = access(principal, coll, Action::Read);
    let act = access(principal, coll, action);
    if read == Access::Denied && act == Access::Denied {
        return Err(Error::unauthorized(
            Denial::NotGranted,
            format!(
                "collection {} grants no {} to the client's roles",
                quote(coll.id),
                action.as_str()
            ),
        ));
    }
    let doc = lookup()?.ok_or_else(|| Error::not_found(ResourceKind::Document, id))?;
    let can_read = allows(principal, read, grants_of(&doc), Action::Read);
    let can_act = allows(principal, act, grants_of(&doc), action);
    match (can_read, can_act) {
        (_, true) => Ok(doc),
        (false, false) => Err(Error::not_found(ResourceKind::Document, id)),
        (true, false) => Err(Error::unauthorized(
            Denial::NotGranted,
            format!(
                "no {} permission on document {}",
                action.as_str(),
                quote(id)
            ),
        )),
    }
}

/// Whether `principal` may read a document of `coll` carrying `grants` (as it is after a
/// write): a write answers with the document only then, with its system fields alone
/// otherwise. Needs `documents.read` of a key (or of the key behind an impersonated
/// user) and, for users and guests, the read permission.
pub(crate) fn may_read(principal: &Principal, coll: CollectionRules<'_>, grants: &[Grant]) -> bool {
    check_scope(principal, Scope::DocumentsRead, "", Audience::Users).is_ok()
        && allows(
            principal,
            access(principal, coll, Action::Read),
            grants,
            Action::Read,
        )
}

/// Whether `principal` skips permissions: root and API keys (whose scopes
/// [`check_scope`] checks). Only they reach disabled schemas and collections, which
/// answer as missing to everyone else.
pub(crate) fn skips_permissions(principal: &Principal) -> bool {
    principal.roles().is_none()
}

/// Checks that `principal` may create documents in `coll`: root, or a collection grant
/// of create (document permissions never grant create).
pub(crate) fn check_create(principal: &Principal, coll: CollectionRules<'_>) -> Result<()> {
    if principal.roles().is_none() || access(principal, coll, Action::Create) == Access::All {
        Ok(())
    } else {
        Err(Error::unauthorized(
            Denial::NotGranted,
            format!(
                "collection {} grants no create to the client's roles",
                quote(coll.id)
            ),
        ))
    }
}

/// A user or guest may only grant roles they hold; root and keys may grant any.
pub(crate) fn check_grantable<'p>(
    principal: &Principal,
    roles: impl IntoIterator<Item = &'p Role>,
) -> Result<()> {
    let Some(held) = principal.roles() else {
        return Ok(());
    };
    for role in roles {
        if !held.contains(role) {
            return Err(Error::unauthorized(
                Denial::NotGranted,
                format!(
                    "permissions may only name roles the client holds; it does not hold {}",
                    quote(&role.to_string())
                ),
            ));
        }
    }
    Ok(())
}
