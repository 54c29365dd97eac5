//! Appwrite's realtime channels and event names: which collections a subscribed channel
//! reaches, and the channels and event names of one document change.
//!
//! Ids may contain dots, so a channel is never split on them: it is compared with the
//! prefixes of the collections that exist (`databases.D.collections.C.documents`, ...),
//! and an event reaches a subscription when one of its channels equals one of the
//! subscription's, as in Appwrite.

use std::collections::HashMap;

/// The actions a channel or an event name may end with.
pub(crate) const ACTIONS: [&str; 4] = ["create", "update", "upsert", "delete"];

/// What one subscribed channel reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The documents of every collection (`documents`, `rows`).
    Everything,
    /// The documents of one collection (all of them, or the one a `….ID` channel names:
    /// an event reaches a row only when one of its channels is the row's, so the
    /// collection's watch serves both).
    Collection {
        database: String,
        collection: String,
    },
    /// The account channel: changes to the connection's own account.
    Account,
    /// A well-formed document channel naming no collection that exists, or a channel of
    /// Appwrite's that permdb has nothing for (files, functions, teams, ...): it never
    /// matches, as in Appwrite, and does not spoil the other channels of a `subscribe`.
    Nothing,
}

/// Appwrite's channel families permdb has no resources for.
const UNSERVED: [&str; 7] = [
    "files",
    "buckets",
    "executions",
    "functions",
    "teams",
    "memberships",
    "presences",
];

/// The collections that exist, by each spelling of their document channel
/// (`databases.D.collections.C.documents`, ...), so that a channel is matched by a few
/// lookups however many collections there are.
pub(crate) struct Catalog {
    by_prefix: HashMap<String, (String, String)>,
    all: Vec<(String, String)>,
}

impl Catalog {
    /// The catalog of `collections`, as `(database, collection)`.
    pub(crate) fn new(collections: Vec<(String, String)>) -> Catalog {
        let mut by_prefix = HashMap::with_capacity(collections.len() * 3);
        for (d, c) in &collections {
            for prefix in prefixes(d, c) {
                by_prefix.insert(prefix, (d.clone(), c.clone()));
            }
        }
        Catalog {
            by_prefix,
            all: collections,
        }
    }

    /// Every collection.
    pub(crate) fn all(&self) -> &[(String, String)] {
        &self.all
    }
}

/// What `channel` reaches among the collections of `catalog`; `Err` with Appwrite-style
/// words for a string that is no channel of Appwrite's.
pub(crate) fn reach(channel: &str, catalog: &Catalog) -> Result<Vec<Reach>, String> {
    let bare = strip_action(channel);
    if bare == "documents" || bare == "rows" {
        return Ok(vec![Reach::Everything]);
    }
    if channel == "account" || channel.starts_with("account.") {
        return Ok(vec![Reach::Account]);
    }
    let family = channel.split('.').next().unwrap_or_default();
    if UNSERVED.contains(&family) {
        return Ok(vec![Reach::Nothing]);
    }
    // The collection's own channel, or one with `.ID`, `.ID.action` or `.action` after it:
    // look the channel up cut at each dot (ids may hold dots, so every cut is tried).
    let mut found = Vec::new();
    let cuts = channel
        .match_indices('.')
        .map(|(i, _)| i)
        .chain(std::iter::once(channel.len()));
    for cut in cuts {
        let (head, rest) = channel.split_at(cut);
        if !(rest.is_empty() || rest.len() > 1) {
            continue;
        }
        if let Some((database, collection)) = catalog.by_prefix.get(head) {
            let reach = Reach::Collection {
                database: database.clone(),
                collection: collection.clone(),
            };
            if !found.contains(&reach) {
                found.push(reach);
            }
        }
    }
    if !found.is_empty() {
        return Ok(found);
    }
    if is_document_channel(channel) {
        return Ok(vec![Reach::Nothing]);
    }
    Err(format!(
        "channel {} is not one of Appwrite's: permdb serves documents, rows, \
         databases.D.collections.C.documents[.ID], databases.D.tables.T.rows[.ID], \
         tablesdb.D.tables.T.rows[.ID] (each optionally with .create, .update, .upsert or \
         .delete) and account",
        permdb::wire::quote(channel)
    ))
}

/// `channel` without a trailing `.create`, `.update`, `.upsert` or `.delete`.
fn strip_action(channel: &str) -> &str {
    ACTIONS
        .iter()
        .find_map(|a| channel.strip_suffix(a).and_then(|c| c.strip_suffix('.')))
        .unwrap_or(channel)
}

/// The three spellings of a collection's document channel.
fn prefixes(database: &str, collection: &str) -> [String; 3] {
    [
        format!("databases.{database}.collections.{collection}.documents"),
        format!("databases.{database}.tables.{collection}.rows"),
        format!("tablesdb.{database}.tables.{collection}.rows"),
    ]
}

/// Whether `channel` has the shape of a document channel (whatever collection it names):
/// `databases.D.collections.C.documents[.…]` or a rows spelling, D and C not empty.
fn is_document_channel(channel: &str) -> bool {
    let shaped = |start: &str, middle: &str, item: &str| {
        let Some(rest) = channel.strip_prefix(start) else {
            return false;
        };
        let Some(at) = rest.find(middle).filter(|at| *at > 0) else {
            return false;
        };
        let after = rest.get(at + middle.len()..).unwrap_or_default();
        let ending = format!(".{item}");
        (after.ends_with(&ending) && after.len() > ending.len())
            || after.find(&format!("{ending}.")).is_some_and(|i| i > 0)
    };
    shaped("databases.", ".collections.", "documents")
        || shaped("databases.", ".tables.", "rows")
        || shaped("tablesdb.", ".tables.", "rows")
}

/// The 16 channels of a change to document `id` of `database`/`collection` with
/// `action`: every family's channel, and each again with the action appended.
pub(crate) fn change_channels(
    database: &str,
    collection: &str,
    id: &str,
    action: &str,
) -> Vec<String> {
    let [documents, rows, tablesdb] = prefixes(database, collection);
    let bases = [
        "documents".to_owned(),
        documents.clone(),
        format!("{documents}.{id}"),
        "rows".to_owned(),
        rows.clone(),
        format!("{rows}.{id}"),
        tablesdb.clone(),
        format!("{tablesdb}.{id}"),
    ];
    let mut out = Vec::with_capacity(16);
    out.extend(bases.iter().cloned());
    out.extend(bases.iter().map(|b| format!("{b}.{action}")));
    out
}

/// Appwrite's event names of such a change: each combination of the ids and `*`, in both
/// wordings (collections/documents and tables/rows), with and without the action, then
/// the collection and the database: 42 names, the most specific first.
pub(crate) fn event_names(database: &str, collection: &str, id: &str, action: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(42);
    for (group, item) in [("collections", "documents"), ("tables", "rows")] {
        for with_action in [true, false] {
            for d in [database, "*"] {
                for c in [collection, "*"] {
                    for i in [id, "*"] {
                        let name = format!("databases.{d}.{group}.{c}.{item}.{i}");
                        out.push(if with_action {
                            format!("{name}.{action}")
                        } else {
                            name
                        });
                    }
                }
            }
        }
        for d in [database, "*"] {
            for c in [collection, "*"] {
                out.push(format!("databases.{d}.{group}.{c}"));
            }
        }
    }
    out.push(format!("databases.{database}"));
    out.push("databases.*".to_owned());
    out
}

/// The channels Appwrite reports for a subscription's `channels` (its `convertChannels`):
/// for a signed-in user, `account` also as `account.USER`, `account.ACTION` as
/// `account.USER.ACTION`, and other `account.…` dropped; the rest as given.
pub(crate) fn converted(channels: &[String], user: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for channel in channels {
        match (channel.as_str(), user) {
            ("account", Some(user)) => {
                out.push("account".to_owned());
                out.push(format!("account.{user}"));
            }
            (c, Some(user)) if c.starts_with("account.") => {
                let rest = c.trim_start_matches("account.");
                if ACTIONS.contains(&rest) {
                    out.push(format!("account.{user}.{rest}"));
                }
            }
            _ => out.push(channel.clone()),
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colls() -> Catalog {
        Catalog::new(vec![
            ("db".into(), "notes".into()),
            ("db.v2".into(), "a.b".into()),
        ])
    }

    #[test]
    fn channels_reach_collections_even_with_dotted_ids() {
        let c = colls();
        assert_eq!(reach("documents", &c), Ok(vec![Reach::Everything]));
        assert_eq!(reach("rows.delete", &c), Ok(vec![Reach::Everything]));
        let coll = |d: &str, k: &str| Reach::Collection {
            database: d.into(),
            collection: k.into(),
        };
        for channel in [
            "databases.db.collections.notes.documents",
            "tablesdb.db.tables.notes.rows.update",
            "databases.db.tables.notes.rows.n1",
        ] {
            assert_eq!(
                reach(channel, &c),
                Ok(vec![coll("db", "notes")]),
                "{channel}"
            );
        }
        assert_eq!(
            reach("databases.db.v2.collections.a.b.documents.x.y.delete", &c),
            Ok(vec![coll("db.v2", "a.b")])
        );
        // A collection that does not exist, and Appwrite's families permdb has nothing
        // for: accepted, reaching nothing.
        for nothing in [
            "databases.db.collections.gone.documents.d1",
            "files",
            "buckets.b.files",
            "teams",
            "functions.f",
        ] {
            assert_eq!(reach(nothing, &c), Ok(vec![Reach::Nothing]), "{nothing}");
        }
        assert_eq!(reach("account", &c), Ok(vec![Reach::Account]));
        // Strings that are no channel of Appwrite's are refused with words.
        for bad in [
            "",
            "databases.db",
            "documents2",
            "databases.db.collections.notes.documentsX",
            "databases..collections.notes.documents",
            "nonsense",
        ] {
            let e = reach(bad, &c).expect_err(bad);
            assert!(e.contains("permdb serves documents"), "{e}");
        }
    }

    #[test]
    fn a_change_has_appwrites_channels_and_names() {
        let ch = change_channels("db", "notes", "n1", "create");
        assert_eq!(ch.len(), 16);
        assert!(ch.contains(&"databases.db.collections.notes.documents.n1".to_owned()));
        assert!(ch.contains(&"tablesdb.db.tables.notes.rows.create".to_owned()));
        assert!(ch.contains(&"documents.create".to_owned()));
        let names = event_names("db", "notes", "n1", "create");
        assert_eq!(names.len(), 42);
        assert_eq!(
            names.first().map(String::as_str),
            Some("databases.db.collections.notes.documents.n1.create")
        );
        assert!(names.contains(&"databases.*.collections.*.documents.*.create".to_owned()));
        assert!(names.contains(&"databases.*.tables.*.rows.*".to_owned()));
        assert!(names.contains(&"databases.db.tables.notes".to_owned()));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 42);
    }

    #[test]
    fn account_channels_are_converted_for_a_user() {
        let given = vec![
            "account".to_owned(),
            "account.update".to_owned(),
            "account.x".to_owned(),
        ];
        assert_eq!(
            converted(&given, Some("u1")),
            vec!["account", "account.u1", "account.u1.update"]
        );
        assert_eq!(converted(&given, None), given);
    }
}
