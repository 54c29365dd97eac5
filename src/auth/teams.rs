//! Teams and memberships. A confirmed membership gives its user `team:T`,
//! `team:T/R` for each of its roles, and `member:M`. Memberships made by root or a key
//! are confirmed at once.

use serde::{Deserialize, Serialize};

use super::users::require_user;
use super::{child_ids, load, put, scan};
use crate::engine::Engine;
use crate::error::{Error, ResourceKind, Result};
use crate::id::{ID, check_id, quote};
use crate::perm::team_role_fault;
use crate::store::keys::AuthTag;
use crate::store::{Store, Tree, WriteBatch, keys};
use crate::timefmt;

/// Most roles one membership may hold.
pub const MAX_MEMBERSHIP_ROLES: usize = 100;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TeamRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created_ms: i64,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MembershipRecord {
    pub(crate) id: String,
    pub(crate) team_id: String,
    pub(crate) user_id: String,
    pub(crate) roles: Vec<String>,
    pub(crate) confirmed: bool,
    pub(crate) created_ms: i64,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    /// `$id`
    #[serde(rename = "$id")]
    pub id: String,
    /// Display name.
    pub name: String,
    /// `$createdAt`, Appwrite's format.
    #[serde(rename = "$createdAt")]
    pub created_at: String,
}

/// A user's membership of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// `$id`: also the role `member:ID`.
    #[serde(rename = "$id")]
    pub id: String,
    /// The team.
    pub team_id: String,
    /// The member.
    pub user_id: String,
    /// Team roles: each grants `team:TEAM/ROLE`.
    pub roles: Vec<String>,
    /// Whether the membership counts (always, when made by root or a key).
    pub confirm: bool,
    /// `$createdAt`, Appwrite's format.
    #[serde(rename = "$createdAt")]
    pub created_at: String,
}

impl Membership {
    /// The membership id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn ts(ms: i64) -> String {
    timefmt::from_millis(ms)
        .map(timefmt::format)
        .unwrap_or_default()
}

impl TeamRecord {
    fn public(&self) -> Team {
        Team {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: ts(self.created_ms),
        }
    }
}

impl MembershipRecord {
    fn public(&self) -> Membership {
        Membership {
            id: self.id.clone(),
            team_id: self.team_id.clone(),
            user_id: self.user_id.clone(),
            roles: self.roles.clone(),
            confirm: self.confirmed,
            created_at: ts(self.created_ms),
        }
    }
}

pub(crate) fn team_key(id: &str) -> Vec<u8> {
    keys::auth(AuthTag::Team, &[id])
}

pub(crate) fn membership_key(id: &str) -> Vec<u8> {
    keys::auth(AuthTag::Membership, &[id])
}

pub(crate) fn require_team(store: &Store, id: &str) -> Result<TeamRecord> {
    load(store, &team_key(id))?.ok_or_else(|| Error::not_found(ResourceKind::Team, id))
}

pub(crate) fn create_team(db: &Engine, id: &str, name: &str) -> Result<Team> {
    check_id("team id", id)?;
    crate::text::check_name("team", name)?;
    let now = db.now_ms();
    db.write(|store, batch| {
        if load::<TeamRecord>(store, &team_key(id))?.is_some() {
            return Err(Error::conflict(
                ResourceKind::Team,
                id,
                format!("team {} already exists", quote(id)),
            ));
        }
        let r = TeamRecord {
            id: id.into(),
            name: name.into(),
            created_ms: now,
        };
        put(batch, team_key(id), &r)?;
        Ok(r.public())
    })
}

pub(crate) fn get_team(db: &Engine, id: &str) -> Result<Team> {
    Ok(require_team(&db.store, id)?.public())
}

pub(crate) fn list_teams(db: &Engine) -> Result<Vec<Team>> {
    Ok(scan::<TeamRecord>(&db.store, &AuthTag::Team.prefix())?
        .iter()
        .map(TeamRecord::public)
        .collect())
}

/// Removes a team and every membership of it into `batch`; returns the `member:M` roles
/// of those memberships, whose grants the caller revokes in the same batch.
pub(crate) fn remove_team(store: &Store, batch: &mut WriteBatch, id: &str) -> Result<Vec<String>> {
    require_team(store, id)?;
    batch.remove(Tree::Auth, team_key(id));
    super::prefs::remove(batch, super::prefs::Owner::Team(id));
    let mut member_roles = Vec::new();
    for m in child_ids(store, &keys::auth_children(AuthTag::TeamMembership, id))? {
        remove_membership(store, batch, &m)?;
        member_roles.push(crate::perm::Role::member(m).to_string());
    }
    Ok(member_roles)
}

pub(crate) fn create_membership(
    db: &Engine,
    team_id: &str,
    user_id: &str,
    roles: &[&str],
) -> Result<Membership> {
    if roles.len() > MAX_MEMBERSHIP_ROLES {
        return Err(Error::LimitExceeded(format!(
            "{} roles, at most {MAX_MEMBERSHIP_ROLES}",
            roles.len()
        )));
    }
    let mut checked: Vec<String> = Vec::with_capacity(roles.len());
    for r in roles {
        if let Some(fault) = team_role_fault(r) {
            return Err(Error::InvalidArgument(format!(
                "team role {}: {fault}",
                quote(r)
            )));
        }
        checked.push((*r).to_owned());
    }
    checked.sort();
    checked.dedup();
    let now = db.now_ms();
    db.write(|store, batch| {
        require_team(store, team_id)?;
        require_user(store, user_id)?;
        if memberships_of(store, user_id)?
            .iter()
            .any(|m| m.team_id == team_id)
        {
            return Err(Error::conflict(
                ResourceKind::Membership,
                user_id,
                format!(
                    "user {} is already a member of team {}",
                    quote(user_id),
                    quote(team_id)
                ),
            ));
        }
        let id = ID::unique();
        let r = MembershipRecord {
            id: id.clone(),
            team_id: team_id.into(),
            user_id: user_id.into(),
            roles: checked.clone(),
            confirmed: true,
            created_ms: now,
        };
        put(batch, membership_key(&id), &r)?;
        batch.put(
            Tree::Auth,
            keys::auth(AuthTag::UserMembership, &[user_id, &id]),
            Vec::new(),
        );
        batch.put(
            Tree::Auth,
            keys::auth(AuthTag::TeamMembership, &[team_id, &id]),
            Vec::new(),
        );
        Ok(r.public())
    })
}

pub(crate) fn list_memberships(db: &Engine, team_id: &str) -> Result<Vec<Membership>> {
    require_team(&db.store, team_id)?;
    let mut out = Vec::new();
    for id in child_ids(
        &db.store,
        &keys::auth_children(AuthTag::TeamMembership, team_id),
    )? {
        if let Some(m) = load::<MembershipRecord>(&db.store, &membership_key(&id))? {
            out.push(m.public());
        }
    }
    Ok(out)
}

pub(crate) fn delete_membership(db: &Engine, team_id: &str, membership_id: &str) -> Result<()> {
    db.write(|store, batch| {
        match load::<MembershipRecord>(store, &membership_key(membership_id))? {
            Some(m) if m.team_id == team_id => remove_membership(store, batch, membership_id),
            _ => Err(Error::not_found(ResourceKind::Membership, membership_id)),
        }
    })
}

/// Removes a membership and its two index entries.
pub(crate) fn remove_membership(store: &Store, batch: &mut WriteBatch, id: &str) -> Result<()> {
    if let Some(m) = load::<MembershipRecord>(store, &membership_key(id))? {
        batch.remove(Tree::Auth, membership_key(id));
        batch.remove(
            Tree::Auth,
            keys::auth(AuthTag::UserMembership, &[&m.user_id, id]),
        );
        batch.remove(
            Tree::Auth,
            keys::auth(AuthTag::TeamMembership, &[&m.team_id, id]),
        );
    }
    Ok(())
}

pub(crate) fn memberships_of(store: &Store, user_id: &str) -> Result<Vec<MembershipRecord>> {
    let mut out = Vec::new();
    for id in child_ids(
        store,
        &keys::auth_children(AuthTag::UserMembership, user_id),
    )? {
        if let Some(m) = load::<MembershipRecord>(store, &membership_key(&id))? {
            out.push(m);
        }
    }
    Ok(out)
}
