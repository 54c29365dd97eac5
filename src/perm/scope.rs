//! `Scope`: what an API key may do. A key skips the permission filter, but only
//! within its scopes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::id::quote;

/// One thing an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// `documents.read`: get, find, count.
    DocumentsRead,
    /// `documents.write`: create, update, delete documents.
    DocumentsWrite,
    /// `schemas.read`: get and list schemas and collections.
    SchemasRead,
    /// `schemas.write`: create, update, delete schemas and collections.
    SchemasWrite,
    /// `users.read`: get and list users; impersonate a user.
    UsersRead,
    /// `users.write`: create, update, delete users.
    UsersWrite,
    /// `teams.read`: get and list teams and memberships.
    TeamsRead,
    /// `teams.write`: create and delete teams and memberships.
    TeamsWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 8] = [
        Scope::DocumentsRead,
        Scope::DocumentsWrite,
        Scope::SchemasRead,
        Scope::SchemasWrite,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::TeamsRead,
        Scope::TeamsWrite,
    ];

    /// The scope's Appwrite-style name, e.g. `documents.read`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::DocumentsRead => "documents.read",
            Scope::DocumentsWrite => "documents.write",
            Scope::SchemasRead => "schemas.read",
            Scope::SchemasWrite => "schemas.write",
            Scope::UsersRead => "users.read",
            Scope::UsersWrite => "users.write",
            Scope::TeamsRead => "teams.read",
            Scope::TeamsWrite => "teams.write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Scope> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown scope {}", quote(s))))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(crate::error::refuse)
    }
}
