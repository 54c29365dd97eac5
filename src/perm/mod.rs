//! Roles, permissions, the principals that hold roles, and the one module that decides
//! what a principal may do (`decide`). Everything here is pure: no storage, no I/O.

pub(crate) mod decide;
mod grant;
mod permission;
mod principal;
mod role;
mod scope;

pub(crate) use grant::Grant;
pub use permission::{Action, MAX_PERMISSIONS, Permission};
pub(crate) use permission::{Target, normalize};
pub(crate) use principal::{Principal, RoleSet, UserAuth, UserFacts};
pub use role::{MAX_LABEL_LEN, MAX_TEAM_ROLE_LEN, Role, Verification};
pub(crate) use role::{label_fault, team_role_fault};
pub use scope::Scope;
