//! The `account` channel: changes to the connection's own account (its fields, its
//! sessions) as Appwrite's `users.*` events, found by reading the account again each
//! second and comparing it with what the connection last saw.
//!
//! Reading the account is also the check that the connection's credential still holds:
//! a failed read ends the connection before anything is sent.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::channels::{self, ACTIONS};
use crate::model;
use permdb::{Client, Db};

/// What a connection last saw of its account: the Account model, and its sessions by id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    pub(crate) user: String,
    account: Value,
    sessions: BTreeMap<String, Value>,
}

/// One account change: Appwrite's event (such as `users.U.update.name`), the action its
/// channels end with, and the payload.
pub(crate) struct Change {
    pub(crate) event: String,
    pub(crate) action: &'static str,
    pub(crate) payload: Value,
}

/// Reads the account `client` acts as (blocking); an error when the credential no longer
/// holds (or the client is no user).
pub(crate) fn read(db: &Db, client: &Client) -> permdb::Result<Seen> {
    let account = client.account();
    let user = account.get()?;
    let sessions = account.list_sessions()?;
    let mut by_id = BTreeMap::new();
    for s in &sessions {
        let mut m = model::session(s, &user.email);
        // Never a secret over the socket (a session's only travels in its cookie).
        if let Some(secret) = m.get_mut("secret") {
            *secret = Value::String(String::new());
        }
        // Which session is the connection's own is the same for every read.
        by_id.insert(s.id.clone(), m);
    }
    Ok(Seen {
        user: user.id.clone(),
        account: model::user_of(db, &user)?,
        sessions: by_id,
    })
}

/// The account fields whose change Appwrite names in the event (`users.U.update.FIELD`).
const FIELDS: [(&str, &str); 7] = [
    ("name", "name"),
    ("email", "email"),
    ("prefs", "prefs"),
    ("status", "status"),
    ("labels", "labels"),
    ("emailVerification", "verification"),
    ("passwordUpdate", "password"),
];

/// What changed from `old` to `new` (the same user), in Appwrite's events.
pub(crate) fn changes(old: &Seen, new: &Seen) -> Vec<Change> {
    let u = &new.user;
    let mut out = Vec::new();
    for (id, session) in &new.sessions {
        if !old.sessions.contains_key(id) {
            out.push(Change {
                event: format!("users.{u}.sessions.{id}.create"),
                action: "create",
                payload: session.clone(),
            });
        }
    }
    for (id, session) in &old.sessions {
        if !new.sessions.contains_key(id) {
            out.push(Change {
                event: format!("users.{u}.sessions.{id}.delete"),
                action: "delete",
                payload: session.clone(),
            });
        }
    }
    if old.account != new.account {
        let changed: Vec<&str> = FIELDS
            .iter()
            .filter(|(field, _)| old.account.get(field) != new.account.get(field))
            .map(|(_, name)| *name)
            .collect();
        let events = if changed.is_empty() {
            vec![format!("users.{u}.update")]
        } else {
            changed
                .iter()
                .map(|name| format!("users.{u}.update.{name}"))
                .collect()
        };
        for event in events {
            out.push(Change {
                event,
                action: "update",
                payload: new.account.clone(),
            });
        }
    }
    out
}

/// The frame of `change` for the rows `subscriptions`, or `None` when none of `rows`
/// (id and channels) names a channel of it.
pub(crate) fn frame<'a>(
    user: &str,
    change: &Change,
    rows: impl Iterator<Item = (&'a String, &'a Vec<String>)>,
    now: &str,
) -> Option<Value> {
    let reached = vec![
        "account".to_owned(),
        format!("account.{user}"),
        format!("account.{user}.{}", change.action),
    ];
    let subscriptions: Vec<&String> = rows
        .filter(|(_, chans)| {
            channels::converted(chans, Some(user))
                .iter()
                .any(|c| reached.contains(c))
        })
        .map(|(id, _)| id)
        .collect();
    if subscriptions.is_empty() {
        return None;
    }
    Some(json!({
        "type": "event",
        "data": {
            "events": event_names(&change.event),
            "channels": reached,
            "timestamp": now,
            "payload": change.payload,
            "subscriptions": subscriptions,
        }
    }))
}

/// Appwrite's names of a `users.…` event: each id replaced by `*` in every combination,
/// then each shorter form (without the action, without the field), most specific first.
fn event_names(event: &str) -> Vec<String> {
    // users.U.update.FIELD | users.U.update | users.U.sessions.S.ACTION
    let parts: Vec<&str> = event.split('.').collect();
    let mut out = Vec::new();
    let mut push = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    match parts.as_slice() {
        ["users", u, "sessions", s, action] if ACTIONS.contains(action) => {
            for tail in [format!(".{action}"), String::new()] {
                for user in [*u, "*"] {
                    for session in [*s, "*"] {
                        push(format!("users.{user}.sessions.{session}{tail}"));
                    }
                }
            }
            for user in [*u, "*"] {
                push(format!("users.{user}"));
            }
        }
        ["users", u, rest @ ..] => {
            let rest = rest.join(".");
            let mut forms = vec![rest.clone()];
            if let Some((shorter, _)) = rest.rsplit_once('.') {
                forms.push(shorter.to_owned());
            }
            for form in forms {
                for user in [*u, "*"] {
                    push(format!("users.{user}.{form}"));
                }
            }
            for user in [*u, "*"] {
                push(format!("users.{user}"));
            }
        }
        _ => push(event.to_owned()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, sessions: &[&str]) -> Seen {
        Seen {
            user: "u1".into(),
            account: json!({"$id": "u1", "name": name, "email": "e"}),
            sessions: sessions
                .iter()
                .map(|s| ((*s).to_owned(), json!({"$id": s})))
                .collect(),
        }
    }

    #[test]
    fn changes_are_named_as_appwrite_names_them() {
        let found = changes(&seen("a", &["s1"]), &seen("b", &["s2"]));
        let events: Vec<&str> = found.iter().map(|c| c.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "users.u1.sessions.s2.create",
                "users.u1.sessions.s1.delete",
                "users.u1.update.name"
            ]
        );
        assert!(changes(&seen("a", &["s1"]), &seen("a", &["s1"])).is_empty());
        assert_eq!(
            event_names("users.u1.update.name"),
            [
                "users.u1.update.name",
                "users.*.update.name",
                "users.u1.update",
                "users.*.update",
                "users.u1",
                "users.*"
            ]
        );
        assert_eq!(event_names("users.u1.sessions.s1.create").len(), 10);
    }

    #[test]
    fn a_change_reaches_the_rows_naming_the_account() {
        let change = Change {
            event: "users.u1.update.name".into(),
            action: "update",
            payload: json!({}),
        };
        let (a, b, c) = ("a".to_owned(), "b".to_owned(), "c".to_owned());
        let rows = [
            (&a, &vec!["account".to_owned()]),
            (&b, &vec!["documents".to_owned()]),
            (&c, &vec!["account.update".to_owned()]),
        ];
        let f = frame("u1", &change, rows.iter().map(|(i, c)| (*i, *c)), "now").expect("a frame");
        assert_eq!(f["data"]["subscriptions"], json!(["a", "c"]));
        assert_eq!(
            f["data"]["channels"],
            json!(["account", "account.u1", "account.u1.update"])
        );
        let none = [(&b, &vec!["documents".to_owned()])];
        assert!(frame("u1", &change, none.iter().map(|(i, c)| (*i, *c)), "now").is_none());
    }
}
