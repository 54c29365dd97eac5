//! Cost tests: the work counters of `find_explained` prove that a user's page costs
//! what the user sees and the page size, not the size of the collection. No timings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use permdb::{Collection, CollectionSpec, Db, Explain, Permission, Plan, Query, Role};
use serde_json::json;

/// A collection of `n` documents of which user u1 may read exactly 100, spread evenly;
/// the rest are readable by 500 other users.
fn collection(n: u32) -> (Db, Collection) {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(
        &db,
        "s",
        CollectionSpec::new("c", "C").document_security(true),
    );
    let every = n / 100;
    let ids: Vec<u32> = (0..n).collect();
    for chunk in ids.chunks(10_000) {
        coll.create_many(chunk.iter().map(|&i| {
            let reader = if i % every == 0 {
                "u1".to_string()
            } else {
                format!("other{}", i % 500)
            };
            (
                format!("d{i}"),
                json!({"i": i, "even": i % 2 == 0}),
                Some(vec![Permission::read(Role::user(reader))]),
            )
        }))
        .unwrap();
    }
    (db, coll)
}

fn as_u1(db: &Db) -> Collection {
    db.root()
        .impersonate("u1")
        .unwrap()
        .schema("s")
        .collection("c")
}

fn explain(coll: &Collection, queries: &[Query]) -> (u64, usize, Explain) {
    let (list, explain) = coll.find_explained(queries).unwrap();
    (list.total, list.documents.len(), explain)
}

#[test]
fn a_users_page_costs_the_same_at_1_000_and_100_000_documents() {
    let (small_db, _) = collection(1_000);
    let (big_db, _) = collection(100_000);
    let u1_roles = big_db.root().impersonate("u1").unwrap().roles().len() as u64;
    let mut work = Vec::new();
    for db in [&small_db, &big_db] {
        let (total, shown, e) = explain(&as_u1(db), &[Query::limit(25)]);
        assert_eq!((total, shown), (100, 25));
        assert_eq!(
            e.plan,
            Plan::RoleMerge {
                roles: u1_roles as usize
            }
        );
        assert!(e.documents_decoded <= 25, "{e:?}");
        assert!(e.bitmaps_read <= u1_roles, "{e:?}");
        // The page and its (capped) total come from one lazy merge of u1's role bitmaps;
        // u1's 100 documents span at most two 65,536-wide containers per role.
        assert!(e.containers_read <= 2 * u1_roles, "{e:?}");
        work.push((e.documents_decoded, e.bitmaps_read, e.candidates_considered));
    }
    assert_eq!(work[0], work[1], "same work at 1,000 and 100,000 documents");
}

#[test]
fn offsets_cursors_and_descending_order_decode_only_the_page() {
    let (db, _) = collection(100_000);
    let coll = as_u1(&db);
    let page1 = coll.find(&[Query::limit(25)]).unwrap();
    let last = page1.documents.last().unwrap().id().to_string();
    for queries in [
        vec![Query::offset(50), Query::limit(25)],
        vec![Query::cursor_after(&last), Query::limit(25)],
        vec![Query::cursor_before(&last), Query::limit(10)],
        vec![Query::order_desc("$sequence"), Query::limit(25)],
    ] {
        let (total, _, e) = explain(&coll, &queries);
        assert_eq!(total, 100);
        assert!(e.documents_decoded <= 25, "{queries:?}: {e:?}");
    }
    // A filter on an attribute without an index decodes at most what u1 can see.
    let (total, _, e) = explain(&coll, &[Query::equal("even", [true]), Query::limit(25)]);
    assert_eq!(total, 100, "every 1,000th index is even");
    assert!(e.documents_decoded <= 100, "{e:?}");
}

#[test]
fn root_pages_read_one_container_and_decode_the_page() {
    let (db, coll) = collection(100_000);
    let (total, shown, e) = explain(&coll, &[Query::limit(25)]);
    // A page's total is capped (TOTAL_CAP, as Appwrite's); count is exact.
    assert_eq!((total, shown), (permdb::TOTAL_CAP, 25));
    assert_eq!(coll.count(&[]).unwrap(), 100_000);
    assert_eq!(e.plan, Plan::AllDocuments);
    assert_eq!(e.documents_decoded, 25);
    // The walk stops at the page: the total comes from the bitmap, not from walking on.
    assert_eq!(e.candidates_considered, 25, "{e:?}");
    assert_eq!((e.bitmaps_read, e.containers_read), (1, 1));
    let (_, _, e) = explain(
        &coll,
        &[
            Query::order_desc("$sequence"),
            Query::offset(1000),
            Query::limit(25),
        ],
    );
    assert_eq!(e.documents_decoded, 25);
    assert_eq!(
        e.candidates_considered, 1025,
        "the offset, then the page: {e:?}"
    );
    drop(db);
}

/// 100,000 documents with attributes `category` (100 values, key index), `score`
/// (key index) and `name` (no index); u1 may read every 1,000th.
fn indexed_collection() -> (Db, Collection) {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(
        &db,
        "s",
        CollectionSpec::new("c", "C").document_security(true),
    );
    let collections = db.root().schema("s").collections();
    collections
        .create_attribute("c", permdb::AttributeSpec::string("category", 10))
        .unwrap();
    collections
        .create_attribute("c", permdb::AttributeSpec::integer("score"))
        .unwrap();
    collections
        .create_attribute("c", permdb::AttributeSpec::string("name", 20))
        .unwrap();
    collections
        .create_index("c", permdb::IndexSpec::key("by_category", ["category"]))
        .unwrap();
    collections
        .create_index("c", permdb::IndexSpec::key("by_score", ["score"]))
        .unwrap();
    let ids: Vec<u32> = (0..100_000).collect();
    for chunk in ids.chunks(10_000) {
        coll.create_many(chunk.iter().map(|&i| {
            let reader = if i % 1000 == 0 { "u1".to_string() } else { format!("other{}", i % 500) };
            let data = json!({"category": format!("c{}", i % 100), "score": (i * 7919) % 100_000, "name": format!("n{i}")});
            (format!("d{i}"), data, Some(vec![Permission::read(Role::user(reader))]))
        }))
        .unwrap();
    }
    (db, coll)
}

#[test]
fn indexed_queries_decode_at_most_the_page() {
    let (db, root_coll) = indexed_collection();
    let coll = as_u1(&db);
    // Equality on an indexed attribute: the index bitmap meets u1's 100 documents.
    let (list, e) = coll
        .find_explained(&[Query::equal("category", ["c0"]), Query::limit(25)])
        .unwrap();
    assert_eq!(
        (list.total, list.documents.len()),
        (100, 25),
        "every 1,000th is c0"
    );
    assert_eq!(e.indexes_used, ["by_category"]);
    assert!(e.documents_decoded <= 25, "{e:?}");
    let (list, e) = coll
        .find_explained(&[Query::equal("category", ["c1"]), Query::limit(25)])
        .unwrap();
    assert_eq!(
        (list.total, e.documents_decoded),
        (0, 0),
        "u1 sees no c1: nothing decoded"
    );
    // Descending order by an indexed attribute: the index is walked, 25 decoded.
    let (list, e) = coll
        .find_explained(&[Query::order_desc("score"), Query::limit(25)])
        .unwrap();
    assert_eq!(
        e.order,
        permdb::OrderPlan::IndexWalk {
            index: "by_score".into()
        }
    );
    assert_eq!(list.documents.len(), 25);
    assert!(e.documents_decoded <= 25, "{e:?}");
    let scores: Vec<i64> = list
        .documents
        .iter()
        .map(|d| d.get("score").unwrap().as_i64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // The same as root over 100,000: still 25.
    let (_, e) = root_coll
        .find_explained(&[Query::order_desc("score"), Query::limit(25)])
        .unwrap();
    assert_eq!(e.documents_decoded, 25);
    // A range on an indexed attribute.
    let (list, e) = coll
        .find_explained(&[Query::greater_than_equal("score", 50_000), Query::limit(10)])
        .unwrap();
    assert!(
        e.documents_decoded <= 10
            && list
                .documents
                .iter()
                .all(|d| d.get("score").unwrap().as_i64().unwrap() >= 50_000)
    );
    // A filter on an attribute without an index decodes at most what u1 can see, once.
    let (list, e) = coll
        .find_explained(&[Query::starts_with("name", "n1"), Query::limit(25)])
        .unwrap();
    assert!(e.documents_decoded <= 100, "{e:?}");
    assert_eq!(
        list.total,
        coll.count(&[Query::starts_with("name", "n1")]).unwrap()
    );
}

/// The capped total: exact below `TOTAL_CAP`, the cap above it, whether it is counted
/// through the merge or known because one role alone reaches the cap; `count` is exact.
#[test]
fn page_totals_are_exact_below_the_cap_and_capped_above() {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(
        &db,
        "s",
        CollectionSpec::new("c", "C").document_security(true),
    );
    let make = |range: std::ops::Range<u32>| {
        coll.create_many(range.map(|i| {
            let mut perms = Vec::new();
            if i % 2 == 0 {
                perms.push(Permission::read(Role::any()));
            }
            if i % 3 == 0 {
                perms.push(Permission::read(Role::user("u1")));
            }
            (format!("d{i}"), json!({"i": i}), Some(perms))
        }))
        .unwrap();
    };
    make(0..6_000); // u1 sees 3,000 + 2,000 - 1,000 = 4,000: below the cap
    let u1 = as_u1(&db);
    let (list, e) = u1.find_explained(&[Query::limit(25)]).unwrap();
    assert_eq!((list.total, e.plan), (4_000, Plan::RoleMerge { roles: 5 }));
    assert_eq!(
        u1.find(&[Query::cursor_after("d6"), Query::limit(5)])
            .unwrap()
            .total,
        4_000
    );
    make(6_000..12_000); // `any` alone now holds 6,000: above the cap
    let (list, e) = u1.find_explained(&[Query::limit(25)]).unwrap();
    assert_eq!(list.total, permdb::TOTAL_CAP);
    assert!(e.documents_decoded <= 25, "{e:?}");
    assert_eq!(
        u1.find(&[Query::cursor_after("d6"), Query::limit(5)])
            .unwrap()
            .total,
        permdb::TOTAL_CAP
    );
    assert_eq!(u1.count(&[]).unwrap(), 8_000);
    let ids: Vec<&str> = list.documents.iter().map(|d| d.id()).collect();
    assert_eq!(ids[..4], ["d0", "d2", "d3", "d4"]);
}

/// An empty collection with document security and a key index on `category`.
fn category_collection() -> (Db, Collection) {
    let db = common::temporary().unwrap();
    let coll = common::create_collection(
        &db,
        "s",
        CollectionSpec::new("c", "C").document_security(true),
    );
    let collections = db.root().schema("s").collections();
    collections
        .create_attribute("c", permdb::AttributeSpec::string("category", 10))
        .unwrap();
    collections
        .create_index("c", permdb::IndexSpec::key("by_category", ["category"]))
        .unwrap();
    (db, coll)
}

/// A user's page narrowed by an index (the roles' union met with the index's answer):
/// pages, totals, counts and cursors in `$sequence` and sorted orders, exact and not,
/// against the documents worked out by hand. A cursor need not match the filter, only be
/// readable.
#[test]
fn a_users_page_narrowed_by_an_index_answers_pages_totals_and_cursors() {
    let (db, coll) = category_collection();
    // u1 reads through three roles: its own, `users` and `any`.
    let readers = [
        Role::user("u1"),
        Role::users(),
        Role::any(),
        Role::user("u2"),
    ];
    coll.create_many((0..400u32).map(|i| {
        let reader = readers[(i % 4) as usize].clone();
        let category = if i % 3 == 0 { "x" } else { "y" };
        (
            format!("d{i}"),
            json!({"category": category}),
            Some(vec![Permission::read(reader)]),
        )
    }))
    .unwrap();
    let u1 = as_u1(&db);
    let x = || Query::equal("category", ["x"]);
    // Readable by u1: i % 4 != 3; in x: i % 3 == 0.
    let expected: Vec<String> = (0..400u32)
        .filter(|i| i % 4 != 3 && i % 3 == 0)
        .map(|i| format!("d{i}"))
        .collect();
    let (list, e) = u1.find_explained(&[x(), Query::limit(500)]).unwrap();
    let ids: Vec<&str> = list.documents.iter().map(permdb::Document::id).collect();
    assert_eq!(ids, expected);
    assert_eq!(list.total, expected.len() as u64);
    assert_eq!(e.indexes_used, ["by_category"]);
    assert_eq!(u1.count(&[x()]).unwrap(), expected.len() as u64);
    // After d100 (readable: 100 % 4 == 0; not in x: 100 % 3 == 1).
    let after = u1
        .find(&[x(), Query::cursor_after("d100"), Query::limit(3)])
        .unwrap();
    let ids: Vec<&str> = after.documents.iter().map(permdb::Document::id).collect();
    assert_eq!(ids, ["d102", "d105", "d108"]);
    // d103 is u2's: a cursor there is refused as missing.
    assert!(matches!(
        u1.find(&[x(), Query::cursor_after("d103")]),
        Err(permdb::Error::NotFound { .. })
    ));
    assert_eq!(
        e.plan,
        Plan::RoleUnion {
            roles: u1_roles(&db)
        }
    );
    // Before a cursor, with an offset.
    let before = u1
        .find(&[
            x(),
            Query::cursor_before("d100"),
            Query::offset(1),
            Query::limit(2),
        ])
        .unwrap();
    let ids: Vec<&str> = before.documents.iter().map(permdb::Document::id).collect();
    assert_eq!(ids, ["d90", "d93"]);
    // Not exact: the index narrows, an unindexed condition decides; in another order
    // (sorted after decoding), from a cursor outside the filter.
    let odd = || Query::ends_with("category", "x");
    let (list, e) = u1
        .find_explained(&[x(), odd(), Query::order_desc("$id"), Query::limit(500)])
        .unwrap();
    let mut by_id = expected.clone();
    by_id.sort_by(|a, b| b.cmp(a));
    let ids: Vec<&str> = list.documents.iter().map(permdb::Document::id).collect();
    assert_eq!(ids, by_id);
    assert_eq!(list.total, expected.len() as u64);
    assert_eq!(
        e.plan,
        Plan::RoleUnion {
            roles: u1_roles(&db)
        }
    );
    let after = u1
        .find(&[
            x(),
            odd(),
            Query::order_desc("$id"),
            Query::cursor_after("d100"),
            Query::limit(2),
        ])
        .unwrap();
    let ids: Vec<&str> = after.documents.iter().map(permdb::Document::id).collect();
    // In descending `$id` order, what follows "d100" are the smaller strings: "d0" only.
    let follows: Vec<&str> = by_id
        .iter()
        .map(String::as_str)
        .filter(|d| *d < "d100")
        .take(2)
        .collect();
    assert_eq!(ids, follows);
    assert_eq!(ids, ["d0"]);
    assert_eq!(u1.count(&[x(), odd()]).unwrap(), expected.len() as u64);
}

/// A user's page and count narrowed by one indexed value follow every write: to the
/// value's documents, to the user's own role, to its team memberships, and to neither.
/// (The union of the user's roles, and its size within the value, are memoised between
/// writes; a page deep enough to pass the lazy intersection's probe budget is asked too.)
#[test]
fn a_users_narrowed_page_and_count_follow_writes_to_the_value_and_the_roles() {
    let (db, coll) = category_collection();
    db.client()
        .account()
        .create("u1", "u1@example.com", "password-1", None)
        .unwrap();
    db.root().teams().create("t1", "Team").unwrap();
    // (category, reader) of d0..d12000: u1 reads i % 4 != 3 (through its own role,
    // `users` and `any`); x holds i % 3 == 0.
    let readers = ["user:u1", "users", "any", "user:u2"];
    let mut model: Vec<(&str, String)> = (0..12_000usize)
        .map(|i| {
            (
                if i % 3 == 0 { "x" } else { "y" },
                readers[i % 4].to_string(),
            )
        })
        .collect();
    let perms = |reader: &str| Some(vec![Permission::read(reader.parse::<Role>().unwrap())]);
    for chunk in (0..model.len()).collect::<Vec<_>>().chunks(4_000) {
        coll.create_many(chunk.iter().map(|&i| {
            (
                format!("d{i}"),
                json!({"category": model[i].0}),
                perms(&model[i].1),
            )
        }))
        .unwrap();
    }
    let check = |model: &[(&str, String)], roles: &[&str], step: &str| {
        let want: Vec<String> = (0..model.len())
            .filter(|&i| model[i].0 == "x" && roles.contains(&model[i].1.as_str()))
            .map(|i| format!("d{i}"))
            .collect();
        let u1 = as_u1(&db);
        let x = || Query::equal("category", ["x"]);
        assert_eq!(u1.count(&[x()]).unwrap(), want.len() as u64, "count {step}");
        for (offset, limit) in [(0, 25), (2_500, 40)] {
            let list = u1
                .find(&[x(), Query::offset(offset), Query::limit(limit)])
                .unwrap();
            let ids: Vec<&str> = list.documents.iter().map(permdb::Document::id).collect();
            let expected: Vec<&str> = want
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .map(String::as_str)
                .collect();
            assert_eq!(ids, expected, "page at {offset} {step}");
            assert_eq!(list.total, want.len() as u64, "total {step}");
        }
        let list = u1
            .find(&[x(), Query::order_desc("$sequence"), Query::limit(3)])
            .unwrap();
        let ids: Vec<&str> = list.documents.iter().map(permdb::Document::id).collect();
        let last: Vec<&str> = want.iter().rev().take(3).map(String::as_str).collect();
        assert_eq!(ids, last, "last page {step}");
        // From a cursor both ways, deep enough to pass the probe budget after it.
        let at = want.len() / 4;
        let after = u1
            .find(&[
                x(),
                Query::cursor_after(&want[at]),
                Query::offset(2_000),
                Query::limit(5),
            ])
            .unwrap();
        let ids: Vec<&str> = after.documents.iter().map(permdb::Document::id).collect();
        let expected: Vec<&str> = want[at + 1..]
            .iter()
            .skip(2_000)
            .take(5)
            .map(String::as_str)
            .collect();
        assert_eq!(ids, expected, "after a cursor {step}");
        let before = u1
            .find(&[
                x(),
                Query::cursor_before(&want[at + 2_100]),
                Query::offset(2_000),
                Query::limit(5),
            ])
            .unwrap();
        let ids: Vec<&str> = before.documents.iter().map(permdb::Document::id).collect();
        let mut expected: Vec<&str> = want[..at + 2_100]
            .iter()
            .rev()
            .skip(2_000)
            .take(5)
            .map(String::as_str)
            .collect();
        expected.reverse();
        assert_eq!(ids, expected, "before a cursor {step}");
        // Another order (every candidate decoded and sorted, membership probed).
        let list = u1
            .find(&[x(), Query::order_desc("$id"), Query::limit(4)])
            .unwrap();
        let ids: Vec<&str> = list.documents.iter().map(permdb::Document::id).collect();
        let mut by_id: Vec<&str> = want.iter().map(String::as_str).collect();
        by_id.sort_unstable_by(|a, b| b.cmp(a));
        by_id.truncate(4);
        assert_eq!(ids, by_id, "by id {step}");
        assert_eq!(list.total, want.len() as u64, "sorted total {step}");
        // Two values (an answer built for the query, not the cache's own).
        let both = u1.count(&[Query::equal("category", ["x", "z"])]).unwrap();
        assert_eq!(both, want.len() as u64, "two values {step}");
    };
    let mut roles = vec!["user:u1", "users", "any"];
    check(&model, &roles, "at first");
    // Twice with no write: the memoised answers.
    check(&model, &roles, "asked again");
    // A write to u1's own role: d3 (u2's, in x) granted to u1.
    coll.update("d3", json!({}), perms("user:u1")).unwrap();
    model[3].1 = "user:u1".into();
    check(&model, &roles, "after d3 was granted to u1");
    // A write to the value only: d0 (u1's, in x) moves to y.
    coll.update("d0", json!({"category": "y"}), None).unwrap();
    model[0].0 = "y";
    check(&model, &roles, "after d0 left x");
    // A write to the value and to roles u1 does not hold: d7 (u2's, in y) moves to x,
    // for u9. u1's set stays memoised; the value's bitmap is a new one.
    coll.update("d7", json!({"category": "x"}), perms("user:u9"))
        .unwrap();
    model[7] = ("x", "user:u9".into());
    check(&model, &roles, "after d7 joined x for u9");
    // A revocation only: d9 (read by `users`, in x) is now u2's alone.
    coll.update("d9", json!({}), perms("user:u2")).unwrap();
    model[9].1 = "user:u2".into();
    check(&model, &roles, "after d9 was taken from u1");
    // A new membership: u1 now also reads what team t1 reads.
    coll.update("d15", json!({}), perms("team:t1")).unwrap();
    model[15].1 = "team:t1".into();
    check(&model, &roles, "after d15 was granted to t1");
    db.root()
        .teams()
        .create_membership("t1", "u1", &[])
        .unwrap();
    roles.push("team:t1");
    check(&model, &roles, "after u1 joined t1");
    // A delete in x.
    coll.delete("d6").unwrap();
    model[6].0 = "gone";
    check(&model, &roles, "after d6 was deleted");
}

/// How many roles u1 holds (its own, `users`, `any`, and their forms).
fn u1_roles(db: &Db) -> usize {
    db.root().impersonate("u1").unwrap().roles().len()
}
