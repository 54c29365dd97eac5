//! Roles, permissions, and the principals that hold roles.
//! Everything here is pure: no storage, no I/O.

mod permission;
mod principal;
mod role;

pub use permission::{Action, MAX_PERMISSIONS, Permission};
pub(crate) use permission::{Scope, normalize};
pub(crate) use principal::{Principal, RoleSet, UserFacts};
pub use role::{MAX_LABEL_LEN, MAX_TEAM_ROLE_LEN, Role, Verification};
