//! permdb's schemas, collections, attributes, indexes, users, teams, memberships and
//! sessions in the JSON shapes of Appwrite's response models (as its SDKs define them).

use serde_json::{Map, Value, json};

use permdb::wire::format_time;
use permdb::{
    AttributeSpec, AttributeType, CollectionInfo, Db, Error, IndexSpec, IndexType, Membership,
    SchemaInfo, Session, Team, TextKind, User,
};

/// Which of Appwrite's two APIs an answer is for: the same stored thing is a collection
/// of documents with attributes in one and a table of rows with columns in the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/v1/databases`: collections, attributes, documents.
    Databases,
    /// `/v1/tablesdb`: tables, columns, rows.
    Tables,
}

/// Appwrite's `Database`. `type` names the API that answers (the store keeps one kind).
pub(crate) fn database(info: &SchemaInfo, api: Api) -> Value {
    json!({
        "$id": info.id,
        "name": info.name,
        "description": "",
        "$createdAt": info.created_at,
        "$updatedAt": info.updated_at,
        "enabled": info.enabled,
        "type": match api {
            Api::Databases => "legacy",
            Api::Tables => "tablesdb",
        },
    })
}

/// Appwrite's `Collection` or `Table`. `bytesMax` is the store's largest document;
/// `bytesUsed` is 0, as permdb reserves no row width per attribute.
pub(crate) fn collection(info: &CollectionInfo, api: Api, bytes_max: usize) -> Value {
    let attributes: Vec<Value> = info.attributes.iter().map(|a| attribute(a, info)).collect();
    let indexes: Vec<Value> = info.indexes.iter().map(|i| index(i, info, api)).collect();
    let (security, fields) = match api {
        Api::Databases => ("documentSecurity", "attributes"),
        Api::Tables => ("rowSecurity", "columns"),
    };
    json!({
        "$id": info.id,
        "$createdAt": info.created_at,
        "$updatedAt": info.updated_at,
        "$permissions": info.permissions,
        "databaseId": info.database_id,
        "name": info.name,
        "description": "",
        "enabled": info.enabled,
        security: info.document_security,
        fields: attributes,
        "indexes": indexes,
        "bytesMax": bytes_max,
        "bytesUsed": 0,
    })
}

/// Appwrite's flat `Attribute*` (or `Column*`: the same fields): `type` and `format` tell
/// them apart, and the range of a number is the whole of its type (permdb has no `min` or
/// `max`). Attributes carry their collection's times: permdb keeps none of their own.
pub(crate) fn attribute(spec: &AttributeSpec, of: &CollectionInfo) -> Value {
    let mut out = json!({
        "key": spec.key,
        "status": "available",
        "error": "",
        "required": spec.required,
        "array": spec.array,
        "$createdAt": of.created_at,
        "$updatedAt": of.created_at,
        "default": spec.default.clone().unwrap_or(Value::Null),
    });
    let extra = match &spec.kind {
        AttributeType::String { size } => {
            json!({"type": "string", "size": size, "encrypt": false})
        }
        AttributeType::Integer => json!({"type": "integer", "min": i64::MIN, "max": i64::MAX}),
        AttributeType::Float => json!({"type": "double", "min": f64::MIN, "max": f64::MAX}),
        AttributeType::Boolean => json!({"type": "boolean"}),
        AttributeType::Datetime => json!({"type": "datetime", "format": "datetime"}),
        AttributeType::Email => json!({"type": "string", "format": "email"}),
        AttributeType::Enum { elements } => {
            json!({"type": "string", "format": "enum", "elements": elements})
        }
        AttributeType::Text {
            kind: TextKind::Varchar,
            size,
        } => json!({"type": "varchar", "size": size, "encrypt": false}),
        AttributeType::Text { kind, .. } => json!({"type": kind.as_str(), "encrypt": false}),
        // `AttributeType` may grow (it is non-exhaustive): a type this server does not
        // know yet shows the common fields only.
        _ => json!({}),
    };
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    out
}

/// Appwrite's `Index` (or `ColumnIndex`, whose attributes are `columns`). Every index is
/// ready once created (`available`): permdb builds it in the write that declares it.
/// `orders` is left out: a permdb index serves both directions.
pub(crate) fn index(spec: &IndexSpec, of: &CollectionInfo, api: Api) -> Value {
    let fields = match api {
        Api::Databases => "attributes",
        Api::Tables => "columns",
    };
    json!({
        "$id": spec.key,
        "$createdAt": of.created_at,
        "$updatedAt": of.created_at,
        "key": spec.key,
        "type": match spec.kind {
            IndexType::Key => "key",
            IndexType::Unique => "unique",
            IndexType::Fulltext => "fulltext",
        },
        "status": "available",
        "error": "",
        fields: spec.attributes,
        "lengths": [],
    })
}

/// Appwrite's `User`. permdb keeps no phone, MFA, messaging targets or last access:
/// `phone` and `accessedAt` are empty, `mfa` and `phoneVerification` false, `targets`
/// empty. `registration` is the creation time; so is `passwordUpdate`, as the user record
/// does not keep when the password last changed (a format change, left to the storage
/// work that brings format upgrades).
pub(crate) fn user(user: &User, prefs: Map<String, Value>) -> Value {
    json!({
        "$id": user.id,
        "$createdAt": user.created_at,
        "$updatedAt": user.updated_at,
        "name": user.name,
        "registration": user.created_at,
        "status": user.status,
        "labels": user.labels,
        "passwordUpdate": user.created_at,
        "email": user.email,
        "phone": "",
        "emailVerification": user.email_verification,
        "phoneVerification": false,
        "mfa": false,
        "prefs": prefs,
        "targets": [],
        "accessedAt": "",
    })
}

/// Appwrite's `Team`: `total` is its number of memberships. Teams are never renamed, so
/// `$updatedAt` is the creation time.
pub(crate) fn team(team: &Team, total: usize, prefs: Map<String, Value>) -> Value {
    json!({
        "$id": team.id,
        "$createdAt": team.created_at,
        "$updatedAt": team.created_at,
        "name": team.name,
        "total": total,
        "prefs": prefs,
    })
}

/// Appwrite's `Membership`. `member` is the user's name and email when the caller may
/// read users, else empty (as Appwrite's privacy settings hide them). Memberships made by
/// root or a key are joined when made.
pub(crate) fn membership(m: &Membership, team_name: &str, member: Option<&User>) -> Value {
    json!({
        "$id": m.id,
        "$createdAt": m.created_at,
        "$updatedAt": m.created_at,
        "userId": m.user_id,
        "userName": member.map_or("", |u| u.name.as_str()),
        "userEmail": member.map_or("", |u| u.email.as_str()),
        "teamId": m.team_id,
        "teamName": team_name,
        "invited": m.created_at,
        "joined": if m.confirm { m.created_at.as_str() } else { "" },
        "confirm": m.confirm,
        "mfa": false,
        "roles": m.roles,
        "userPhone": "",
        "userAccessedAt": "",
    })
}

/// Appwrite's `Session` for an email and password sign-in. permdb records nothing of the
/// client (address, device, browser, place): those fields are empty. `email` is the
/// account's, Appwrite's `providerUid` for this provider.
pub(crate) fn session(s: &Session, email: &str) -> Value {
    let mut out = json!({
        "$id": s.id,
        "$createdAt": s.created_at,
        "$updatedAt": s.created_at,
        "userId": s.user_id,
        "expire": format_time(s.expire),
        "provider": "email",
        "providerUid": email,
        "providerAccessToken": "",
        "providerAccessTokenExpiry": "",
        "providerRefreshToken": "",
        "factors": ["password"],
        "secret": s.secret,
        "mfaUpdatedAt": "",
        "current": s.current,
    });
    if let Value::Object(map) = &mut out {
        for empty in [
            "ip",
            "osCode",
            "osName",
            "osVersion",
            "clientType",
            "clientCode",
            "clientName",
            "clientVersion",
            "clientEngine",
            "clientEngineVersion",
            "deviceName",
            "deviceBrand",
            "deviceModel",
            "countryCode",
            "countryName",
        ] {
            map.insert(empty.to_owned(), Value::String(String::new()));
        }
    }
    out
}

/// The preferences of `of` read as root, after the caller's own call on it succeeded;
/// empty if it is gone since (a list's page may name a user deleted meanwhile).
fn prefs_of(db: &Db, of: PrefsOf, id: &str) -> permdb::Result<Map<String, Value>> {
    let root = db.root();
    let prefs = match of {
        PrefsOf::User => root.users().prefs(id),
        PrefsOf::Team => root.teams().prefs(id),
    };
    match prefs {
        Err(Error::NotFound { .. }) => Ok(Map::new()),
        other => other,
    }
}

/// [`user`] with the user's stored preferences. Called after the caller's own call on the
/// user succeeded: it shows nothing of another user.
pub(crate) fn user_of(db: &Db, u: &User) -> permdb::Result<Value> {
    Ok(user(u, prefs_of(db, PrefsOf::User, &u.id)?))
}

/// [`team`] with its membership count, and its preferences when `with_prefs` (lists
/// fill them for their page only: [`fill_prefs`]), after the caller's own call on the
/// team succeeded.
pub(crate) fn team_of(db: &Db, t: &Team, with_prefs: bool) -> permdb::Result<Value> {
    let total = db.root().teams().list_memberships(&t.id)?.len();
    let prefs = if with_prefs {
        prefs_of(db, PrefsOf::Team, &t.id)?
    } else {
        Map::new()
    };
    Ok(team(t, total, prefs))
}

/// Whose preferences [`fill_prefs`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PrefsOf {
    User,
    Team,
}

/// Sets `prefs` of every model in `page` (a JSON array of users or teams) from the store.
pub(crate) fn fill_prefs(db: &Db, page: &mut Value, of: PrefsOf) -> permdb::Result<()> {
    for model in page.as_array_mut().into_iter().flatten() {
        let Some(model) = model.as_object_mut() else {
            continue;
        };
        let id = model
            .get("$id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let prefs = prefs_of(db, of, &id)?;
        model.insert("prefs".to_owned(), Value::Object(prefs));
    }
    Ok(())
}

/// [`membership`] of a team named `team_name`, with the member's name and email only if
/// `client` may read users.
pub(crate) fn membership_of(client: &permdb::Client, m: &Membership, team_name: &str) -> Value {
    let member = client.users().get(&m.user_id).ok();
    membership(m, team_name, member.as_ref())
}

/// The email of account `user_id` (empty if it is gone), for [`session`]: read as root
/// after the caller's own call on the account's sessions succeeded.
pub(crate) fn account_email(db: &Db, user_id: &str) -> permdb::Result<String> {
    match db.root().users().get(user_id) {
        Ok(u) => Ok(u.email),
        Err(Error::NotFound { .. }) => Ok(String::new()),
        Err(e) => Err(e),
    }
}
