//! Appwrite's transactions and bulk row writes over HTTP: staged operations are invisible
//! until the commit, commit all or nothing as the committing caller, belong to their
//! owner, expire; bulk writes are key-only; reads inside a transaction are refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::models::assert_model;
use common::server::{Server, appwrite_error, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ROWS: &str = "/v1/tablesdb/db/tables/birthdays/rows";

async fn key(s: &Server, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    s.call(method, path, &[("X-Appwrite-Key", &s.key)], body)
        .await
}

async fn new_tx(s: &Server, headers: &[(&str, &str)]) -> String {
    let (status, tx) = s
        .call(
            Method::POST,
            "/v1/tablesdb/transactions",
            headers,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{tx}");
    assert_model("Transaction", &tx);
    assert_eq!(tx["status"], "pending");
    assert_eq!(tx["operations"], 0);
    tx["$id"].as_str().unwrap().to_owned()
}

async fn names(s: &Server) -> Vec<String> {
    let (status, list) = key(s, Method::GET, ROWS, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut names: Vec<String> = list["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn staged_rows_appear_at_the_commit_only_and_all_together() {
    let s = start().await;
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    let tx = new_tx(&s, &auth).await;
    // Through the row routes with transactionId, and through createOperations.
    let (status, row) = key(
        &s,
        Method::POST,
        ROWS,
        Some(json!({"rowId": "r1", "data": {"name": "Ann", "n": 1}, "transactionId": tx})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    assert_model("Row", &row);
    assert_eq!(row["$id"], "r1");
    let (status, answer) = key(
        &s,
        Method::POST,
        &format!("/v1/tablesdb/transactions/{tx}/operations"),
        Some(json!({"operations": [
            {"action": "increment", "databaseId": "db", "tableId": "birthdays", "rowId": "r1",
             "data": {"column": "n", "value": 5, "max": 10}},
            {"action": "update", "databaseId": "db", "tableId": "birthdays", "rowId": "doc1",
             "data": {"name": "Kevin B."}},
            {"action": "create", "databaseId": "db", "collectionId": "birthdays", "documentId": "r2",
             "data": {"name": "Zed"}},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_model("Transaction", &answer);
    assert_eq!(answer["operations"], 4);
    let (status, _) = key(
        &s,
        Method::PATCH,
        &format!("{ROWS}/r1/n/decrement"),
        Some(json!({"value": 2, "transactionId": tx})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = key(
        &s,
        Method::DELETE,
        &format!("{ROWS}/doc3"),
        Some(json!({"transactionId": tx})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Nothing is written before the commit.
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
    appwrite_error(
        key(&s, Method::GET, &format!("{ROWS}/r1"), None).await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );

    let (status, done) = key(
        &s,
        Method::PATCH,
        &format!("/v1/tablesdb/transactions/{tx}"),
        Some(json!({"commit": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_model("Transaction", &done);
    assert_eq!(done["status"], "committed");
    assert_eq!(done["operations"], 6);
    assert_eq!(names(&s).await, ["Ann", "Kevin B.", "Laura", "Zed"]);
    let (_, r1) = key(&s, Method::GET, &format!("{ROWS}/r1"), None).await;
    assert_eq!(r1["n"], 4, "{r1}");
    // A committed transaction takes no more operations and no second commit.
    appwrite_error(
        key(
            &s,
            Method::PATCH,
            &format!("/v1/tablesdb/transactions/{tx}"),
            Some(json!({"commit": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "transaction_not_ready",
    );
    // Listed, then deleted.
    let (status, list) = key(&s, Method::GET, "/v1/tablesdb/transactions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_model("TransactionList", &list);
    assert_eq!(list["total"], 1);
    let (status, _) = key(
        &s,
        Method::DELETE,
        &format!("/v1/tablesdb/transactions/{tx}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    appwrite_error(
        key(
            &s,
            Method::GET,
            &format!("/v1/tablesdb/transactions/{tx}"),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
}

#[tokio::test]
async fn a_failing_operation_fails_the_commit_and_writes_nothing() {
    let s = start().await;
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    let tx = new_tx(&s, &auth).await;
    let ops = json!({"operations": [
        {"action": "create", "databaseId": "db", "tableId": "birthdays", "rowId": "r1", "data": {"name": "Ann"}},
        {"action": "delete", "databaseId": "db", "tableId": "birthdays", "rowId": "doc2"},
        {"action": "update", "databaseId": "db", "tableId": "birthdays", "rowId": "missing", "data": {"name": "X"}},
    ]});
    let path = format!("/v1/tablesdb/transactions/{tx}/operations");
    assert_eq!(
        key(&s, Method::POST, &path, Some(ops)).await.0,
        StatusCode::CREATED
    );
    let body = appwrite_error(
        key(
            &s,
            Method::PATCH,
            &format!("/v1/tablesdb/transactions/{tx}"),
            Some(json!({"commit": true})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );
    assert!(
        body["message"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
    let (_, t) = key(
        &s,
        Method::GET,
        &format!("/v1/tablesdb/transactions/{tx}"),
        None,
    )
    .await;
    assert_eq!(t["status"], "failed");

    // Rolled back: nothing written, nothing more staged.
    let tx = new_tx(&s, &auth).await;
    let path = format!("/v1/tablesdb/transactions/{tx}/operations");
    let one = json!({"operations": [{"action": "delete", "databaseId": "db", "tableId": "birthdays", "rowId": "doc2"}]});
    assert_eq!(
        key(&s, Method::POST, &path, Some(one.clone())).await.0,
        StatusCode::CREATED
    );
    let (status, t) = key(
        &s,
        Method::PATCH,
        &format!("/v1/tablesdb/transactions/{tx}"),
        Some(json!({"rollback": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["status"], "rolled_back");
    assert_eq!(t["operations"], 1, "what was staged is still counted");
    appwrite_error(
        key(&s, Method::POST, &path, Some(one)).await,
        StatusCode::BAD_REQUEST,
        "transaction_not_ready",
    );
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
}

#[tokio::test]
async fn a_users_transaction_is_theirs_and_checked_as_them_at_commit() {
    let s = start().await;
    let (_, jwt_a) = s.sign_in("a").await;
    let (secret_b, _) = s.sign_in("b").await;
    let a = [("X-Appwrite-JWT", jwt_a.as_str())];
    let b = [("X-Appwrite-Session", secret_b.as_str())];
    let tx = new_tx(&s, &a).await;
    let t_path = format!("/v1/tablesdb/transactions/{tx}");
    let ops_path = format!("{t_path}/operations");

    // Another user, a guest and another API's path name the same registry: b sees nothing.
    appwrite_error(
        s.call(Method::GET, &t_path, &b, None).await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
    appwrite_error(
        s.call(Method::PATCH, &t_path, &b, Some(json!({"commit": true})))
            .await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
    let (_, listed) = s
        .call(Method::GET, "/v1/tablesdb/transactions", &b, None)
        .await;
    assert_eq!(listed["total"], 0, "{listed}");
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/tablesdb/transactions",
            &[],
            Some(json!({})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    // Bulk operations are for keys.
    appwrite_error(
        s.call(
            Method::POST,
            &ops_path,
            &a,
            Some(json!({"operations": [{"action": "bulkDelete", "databaseId": "db", "tableId": "birthdays", "data": {"queries": []}}]})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );

    // Staging takes the operations; the commit checks each as user-a: doc2 is hidden
    // from a, so it is a missing row and nothing lands, not even a's own create.
    let ops = json!({"operations": [
        {"action": "create", "databaseId": "db", "tableId": "birthdays", "rowId": "mine", "data": {"name": "A's"}},
        {"action": "update", "databaseId": "db", "tableId": "birthdays", "rowId": "doc2", "data": {"name": "stolen"}},
    ]});
    assert_eq!(
        s.call(Method::POST, &ops_path, &a, Some(ops)).await.0,
        StatusCode::CREATED
    );
    appwrite_error(
        s.call(Method::PATCH, &t_path, &a, Some(json!({"commit": true})))
            .await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);

    // A permission the user does not hold is refused at commit too.
    let tx = new_tx(&s, &a).await;
    let ops = json!({"operations": [
        {"action": "create", "databaseId": "db", "tableId": "birthdays", "rowId": "x",
         "data": {"name": "X", "$permissions": ["read(\"user:user-b\")"]}},
    ]});
    let path = format!("/v1/tablesdb/transactions/{tx}/operations");
    assert_eq!(
        s.call(Method::POST, &path, &a, Some(ops)).await.0,
        StatusCode::CREATED
    );
    appwrite_error(
        s.call(
            Method::PATCH,
            &format!("/v1/tablesdb/transactions/{tx}"),
            &a,
            Some(json!({"commit": true})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );

    // A session ended between staging and commit: the commit is refused.
    let (secret_c, _) = s.sign_in("c").await;
    let c = [("X-Appwrite-Session", secret_c.as_str())];
    let tx = new_tx(&s, &c).await;
    let path = format!("/v1/tablesdb/transactions/{tx}/operations");
    let ops = json!({"operations": [
        {"action": "create", "databaseId": "db", "tableId": "birthdays", "rowId": "late", "data": {"name": "Late"}},
    ]});
    assert_eq!(
        s.call(Method::POST, &path, &c, Some(ops)).await.0,
        StatusCode::CREATED
    );
    let (status, _) = s
        .call(Method::DELETE, "/v1/account/sessions/current", &c, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/tablesdb/transactions/{tx}"),
            &c,
            Some(json!({"commit": true})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
}

#[tokio::test]
async fn transactions_expire_and_are_bounded() {
    let s = start().await;
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    for ttl in [0, 59, 3601] {
        appwrite_error(
            s.call(
                Method::POST,
                "/v1/tablesdb/transactions",
                &auth,
                Some(json!({"ttl": ttl})),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
    let (_, tx) = s
        .call(
            Method::POST,
            "/v1/databases/transactions",
            &auth,
            Some(json!({"ttl": 60})),
        )
        .await;
    let id = tx["$id"].as_str().unwrap();
    let path = format!("/v1/databases/transactions/{id}/operations");
    let op = json!({"action": "delete", "databaseId": "db", "collectionId": "birthdays", "documentId": "doc1"});
    let many: Vec<Value> = (0..101).map(|_| op.clone()).collect();
    appwrite_error(
        key(&s, Method::POST, &path, Some(json!({"operations": many}))).await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    let hundred: Vec<Value> = (0..100).map(|_| op.clone()).collect();
    assert_eq!(
        key(
            &s,
            Method::POST,
            &path,
            Some(json!({"operations": hundred}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    appwrite_error(
        key(&s, Method::POST, &path, Some(json!({"operations": [op]}))).await,
        StatusCode::BAD_REQUEST,
        "transaction_limit_exceeded",
    );
    for bad in [
        json!({"action": "explode", "databaseId": "db", "tableId": "birthdays"}),
        json!({"action": "update", "databaseId": "db", "tableId": "birthdays"}),
        json!({"action": "create", "databaseId": "db", "tableId": "birthdays", "rowId": "a b"}),
        json!({"action": "increment", "databaseId": "db", "tableId": "birthdays", "rowId": "a", "data": {"column": "n", "min": 1}}),
        json!({"action": "bulkUpdate", "databaseId": "db", "tableId": "birthdays", "data": {"queries": ["nonsense"]}}),
        json!({"action": "create", "databaseId": "db", "tableId": "birthdays", "rowId": "a", "extra": 1}),
    ] {
        let (status, body) = key(
            &s,
            Method::POST,
            &format!("/v1/databases/transactions/{id}/operations"),
            Some(json!({"operations": [bad]})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    s.clock.advance(time::Duration::seconds(61));
    appwrite_error(
        key(
            &s,
            Method::GET,
            &format!("/v1/databases/transactions/{id}"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "transaction_expired",
    );
    appwrite_error(
        key(
            &s,
            Method::GET,
            &format!("/v1/databases/transactions/{id}"),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
    // Reads inside a transaction are refused, not answered from outside it.
    for path in [
        format!("{ROWS}?transactionId=x"),
        format!("{ROWS}/doc1?transactionId=x"),
    ] {
        appwrite_error(
            key(&s, Method::GET, &path, None).await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
}

#[tokio::test]
async fn bulk_upsert_update_and_delete_are_key_only_and_atomic() {
    let s = start().await;
    let (_, jwt_a) = s.sign_in("a").await;
    let a = [("X-Appwrite-JWT", jwt_a.as_str())];
    for (method, body) in [
        (Method::PUT, json!({"rows": []})),
        (Method::PATCH, json!({"data": {"n": 1}})),
        (Method::DELETE, json!({})),
    ] {
        appwrite_error(
            s.call(method, ROWS, &a, Some(body)).await,
            StatusCode::UNAUTHORIZED,
            "user_unauthorized",
        );
    }
    let (status, list) = key(
        &s,
        Method::PUT,
        ROWS,
        Some(json!({"rows": [
            {"$id": "doc1", "name": "Kevin", "n": 1},
            {"$id": "r2", "name": "New", "n": 1, "$permissions": ["read(\"any\")"]},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_model("RowList", &list);
    assert_eq!(list["total"], 2);
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura", "New"]);
    // An upsert needs every $id.
    appwrite_error(
        key(
            &s,
            Method::PUT,
            ROWS,
            Some(json!({"rows": [{"name": "no id"}]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );

    let (status, list) = key(
        &s,
        Method::PATCH,
        ROWS,
        Some(json!({"data": {"n": 7}, "queries": ["{\"method\":\"equal\",\"attribute\":\"n\",\"values\":[1]}"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_model("RowList", &list);
    assert_eq!(list["total"], 2);
    assert!(
        list["rows"].as_array().unwrap().iter().all(|r| r["n"] == 7),
        "{list}"
    );
    // An update that fails for one row (a bad query here) writes nothing.
    appwrite_error(
        key(
            &s,
            Method::PATCH,
            ROWS,
            Some(json!({"data": {"n": 8}, "queries": ["{\"method\":\"nope\"}"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_query_invalid",
    );

    let (status, list) = key(
        &s,
        Method::DELETE,
        ROWS,
        Some(json!({"queries": ["{\"method\":\"equal\",\"attribute\":\"n\",\"values\":[7]}"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_model("RowList", &list);
    let mut deleted: Vec<&str> = list["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["$id"].as_str().unwrap())
        .collect();
    deleted.sort_unstable();
    assert_eq!(deleted, ["doc1", "r2"]);
    assert_eq!(names(&s).await, ["Bob", "Laura"]);
    // Without queries, every row goes (the Databases API spells it documents).
    let (status, list) = key(
        &s,
        Method::DELETE,
        "/v1/databases/db/collections/birthdays/documents",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_model("DocumentList", &list);
    assert_eq!(list["total"], 2);
    assert!(names(&s).await.is_empty());
}

#[tokio::test]
async fn increments_take_only_steps_they_apply_exactly() {
    let s = start().await;
    let (status, _) = key(
        &s,
        Method::POST,
        ROWS,
        Some(json!({"rowId": "c", "data": {"n": 0}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("{ROWS}/c/n/increment");
    // 2^53 + 1 would be rounded to 2^53 by a float: refused, in both ways of staging too.
    for body in [
        json!({"value": 9_007_199_254_740_993_u64}),
        json!({"value": 1, "max": -9_007_199_254_740_993_i64}),
    ] {
        appwrite_error(
            key(&s, Method::PATCH, &path, Some(body)).await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
    let tx = new_tx(&s, &[("X-Appwrite-Key", s.key.as_str())]).await;
    let op = json!({"operations": [{"action": "increment", "databaseId": "db", "tableId": "birthdays",
        "rowId": "c", "data": {"column": "n", "value": 9_007_199_254_740_993_u64}}]});
    appwrite_error(
        key(
            &s,
            Method::POST,
            &format!("/v1/tablesdb/transactions/{tx}/operations"),
            Some(op),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    let (status, row) = key(
        &s,
        Method::PATCH,
        &path,
        Some(json!({"value": 9_007_199_254_740_992_u64})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["n"], 9_007_199_254_740_992_u64);
}

/// Red-team round 1: what staged data may hold, who owns a transaction, and what
/// counts against the limits.
#[tokio::test]
async fn staging_is_bounded_and_owned_by_one_key_or_one_account() {
    let s = start().await;
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    // Checked when staged, not only at commit: data deeper than the store takes.
    let tx = new_tx(&s, &auth).await;
    let ops = format!("/v1/tablesdb/transactions/{tx}/operations");
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "d": deep });
    }
    let (status, body) = key(
        &s,
        Method::POST,
        &ops,
        Some(json!({"operations": [{"action": "update", "databaseId": "db", "tableId": "birthdays", "rowId": "doc1", "data": {"x": deep}}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("nested deeper"),
        "{body}"
    );
    // At most 4 MiB staged in one transaction: 60 KB a request runs into it.
    let big = "x".repeat(60_000);
    let mut refused_at = None;
    for i in 0..100 {
        let (status, body) = key(
            &s,
            Method::POST,
            &ops,
            Some(json!({"operations": [{"action": "update", "databaseId": "db", "tableId": "birthdays", "rowId": "doc1", "data": {"s": big}}]})),
        )
        .await;
        if status != StatusCode::CREATED {
            appwrite_error(
                (status, body),
                StatusCode::TOO_MANY_REQUESTS,
                "transaction_limit_exceeded",
            );
            refused_at = Some(i);
            break;
        }
    }
    let refused_at = refused_at.expect("4 MiB of staged data was taken");
    assert!((60..=75).contains(&refused_at), "refused at {refused_at}");

    // Another key does not see this key's transaction.
    let other =
        s.db.root()
            .keys()
            .create(
                "other",
                &[permdb::Scope::DocumentsRead, permdb::Scope::DocumentsWrite],
            )
            .unwrap()
            .secret;
    let b = [("X-Appwrite-Key", other.as_str())];
    appwrite_error(
        s.call(
            Method::GET,
            &format!("/v1/tablesdb/transactions/{tx}"),
            &b,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
    appwrite_error(
        s.call(Method::POST, &ops, &b, Some(json!({"operations": [{"action": "delete", "databaseId": "db", "tableId": "birthdays", "rowId": "doc1"}]}))).await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
    // Deleted once; a second delete finds nothing.
    let path = format!("/v1/tablesdb/transactions/{tx}");
    assert_eq!(
        key(&s, Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    appwrite_error(
        key(&s, Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );

    // Ended transactions do not count against the 20 pending.
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(new_tx(&s, &auth).await);
    }
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/tablesdb/transactions",
            &auth,
            Some(json!({})),
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "transaction_limit_exceeded",
    );
    let (status, _) = key(
        &s,
        Method::PATCH,
        &format!("/v1/tablesdb/transactions/{}", ids[0]),
        Some(json!({"rollback": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    new_tx(&s, &auth).await;

    // A deleted account's transactions do not pass to a new account with its id.
    let (secret, _) = s.sign_in("b").await;
    let tx = new_tx(&s, &[("X-Appwrite-Session", secret.as_str())]).await;
    assert_eq!(
        key(&s, Method::DELETE, "/v1/users/user-b", None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-b", "email": "b@example.com", "password": "password-b"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (secret, _) = s.sign_in("b").await;
    let new_b = [("X-Appwrite-Session", secret.as_str())];
    appwrite_error(
        s.call(
            Method::GET,
            &format!("/v1/tablesdb/transactions/{tx}"),
            &new_b,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "transaction_not_found",
    );
    let (_, listed) = s
        .call(Method::GET, "/v1/tablesdb/transactions", &new_b, None)
        .await;
    assert_eq!(listed["total"], 0, "{listed}");

    // A transaction id in the query string of a write is refused, not ignored.
    appwrite_error(
        key(
            &s,
            Method::POST,
            &format!("{ROWS}?transactionId={tx}"),
            Some(json!({"rowId": "q", "data": {"name": "Q"}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
    let (status, body) = key(&s, Method::GET, "/v1/tablesdb/transactions?search=a", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown query parameter"),
        "{body}"
    );
}

/// Red-team round 2: staged data counted as the memory it holds, bulk operations read as
/// strictly as the routes, ids shaped when staged, and every spelling of a query-string
/// transaction id refused.
#[tokio::test]
async fn staged_operations_are_read_strictly_and_counted_as_memory() {
    let s = start().await;
    let auth = [("X-Appwrite-Key", s.key.as_str())];
    let tx = new_tx(&s, &auth).await;
    let ops = format!("/v1/tablesdb/transactions/{tx}/operations");
    // 60 KB of `[0,0,...]` holds some 2.4 MB once parsed: the second passes 4 MiB.
    let zeros = vec![0; 30_000];
    let op = json!({"operations": [{"action": "update", "databaseId": "db", "tableId": "birthdays", "rowId": "doc1", "data": {"s": zeros}}]});
    assert_eq!(
        key(&s, Method::POST, &ops, Some(op.clone())).await.0,
        StatusCode::CREATED
    );
    appwrite_error(
        key(&s, Method::POST, &ops, Some(op)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "transaction_limit_exceeded",
    );
    for bad in [
        // A misspelt `queries` would have deleted every row.
        json!({"action": "bulkDelete", "databaseId": "db", "tableId": "birthdays", "data": {"query": []}}),
        json!({"action": "bulkUpdate", "databaseId": "db", "tableId": "birthdays", "data": {"data": {"n": 1}, "bogus": 1}}),
        json!({"action": "delete", "databaseId": "../x", "tableId": "birthdays", "rowId": "doc1"}),
        json!({"action": "delete", "databaseId": "db", "tableId": "a b", "rowId": "doc1"}),
        json!({"action": "increment", "databaseId": "db", "tableId": "birthdays", "rowId": "doc1", "data": {"column": ""}}),
    ] {
        let (status, body) = key(
            &s,
            Method::POST,
            &format!(
                "/v1/tablesdb/transactions/{}/operations",
                new_tx(&s, &auth).await
            ),
            Some(json!({"operations": [bad]})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for query in ["transactionid=x", "transactionId[]=x", "TransactionID=x"] {
        appwrite_error(
            key(&s, Method::DELETE, &format!("{ROWS}/doc1?{query}"), None).await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
    assert_eq!(names(&s).await, ["Bob", "Kevin", "Laura"]);
}

/// The users' totals bound users only: with them reached, a further user is refused and
/// an API key is not; and a transaction is expired at its expiry instant exactly.
#[tokio::test]
async fn the_users_totals_do_not_bind_keys() {
    let (options, clock) = common::test_options();
    let mut limits = permdb_server::TransactionLimits::default();
    limits.max_users_pending = 2;
    let s = common::server::start_with(
        options,
        clock,
        permdb_server::ServerOptions::default().transaction_limits(limits),
    )
    .await;
    let mut txs = Vec::new();
    for letter in ["a", "b"] {
        let (secret, _) = s.sign_in(letter).await;
        txs.push(new_tx(&s, &[("X-Appwrite-Session", secret.as_str())]).await);
    }
    let (secret_c, _) = s.sign_in("c").await;
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/tablesdb/transactions",
            &[("X-Appwrite-Session", secret_c.as_str())],
            Some(json!({})),
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "transaction_limit_exceeded",
    );
    let key_tx = new_tx(&s, &[("X-Appwrite-Key", s.key.as_str())]).await;
    // A second before its expiry (300 s by default) a transaction is there; exactly at
    // it, it is over.
    s.clock.advance(time::Duration::seconds(299));
    let (status, t) = key(
        &s,
        Method::GET,
        &format!("/v1/tablesdb/transactions/{key_tx}"),
        None,
    )
    .await;
    assert_eq!(
        (status, &t["status"]),
        (StatusCode::OK, &json!("pending")),
        "{t}"
    );
    s.clock.advance(time::Duration::seconds(1));
    appwrite_error(
        key(
            &s,
            Method::GET,
            &format!("/v1/tablesdb/transactions/{key_tx}"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "transaction_expired",
    );
}

/// The byte bounds across transactions: one owner's, and all users' together.
#[tokio::test]
async fn staged_bytes_are_bounded_per_owner_and_for_all_users() {
    let (options, clock) = common::test_options();
    let mut limits = permdb_server::TransactionLimits::default();
    limits.max_owner_bytes = 100_000;
    limits.max_users_bytes = 150_000;
    let s = common::server::start_with(
        options,
        clock,
        permdb_server::ServerOptions::default().transaction_limits(limits),
    )
    .await;
    // About 40 KB each, as counted.
    let op = json!({"operations": [{"action": "update", "databaseId": "db", "tableId": "birthdays",
        "rowId": "doc1", "data": {"s": "x".repeat(40_000)}}]});
    let stage = |headers: Vec<(&'static str, String)>| {
        let s = &s;
        let op = op.clone();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let tx = new_tx(s, &h).await;
            let path = format!("/v1/tablesdb/transactions/{tx}/operations");
            s.call(Method::POST, &path, &h, Some(op)).await
        }
    };
    let (secret_a, _) = s.sign_in("a").await;
    let a = vec![("X-Appwrite-Session", secret_a.clone())];
    // Two transactions of user-a hold 80 KB; a third passes the owner's 100 KB.
    assert_eq!(stage(a.clone()).await.0, StatusCode::CREATED);
    assert_eq!(stage(a.clone()).await.0, StatusCode::CREATED);
    appwrite_error(
        stage(a).await,
        StatusCode::TOO_MANY_REQUESTS,
        "transaction_limit_exceeded",
    );
    // user-b's first 40 KB fits all users' 150 KB (120 KB); the second does not.
    let (secret_b, _) = s.sign_in("b").await;
    let b = vec![("X-Appwrite-Session", secret_b)];
    assert_eq!(stage(b.clone()).await.0, StatusCode::CREATED);
    appwrite_error(
        stage(b).await,
        StatusCode::TOO_MANY_REQUESTS,
        "transaction_limit_exceeded",
    );
    // A key counts against itself only.
    assert_eq!(
        stage(vec![("X-Appwrite-Key", s.key.clone())]).await.0,
        StatusCode::CREATED
    );
}
