//! The HTTP server driven over real HTTP on a loopback port: the seed scenario end to
//! end, the token refusals as statuses and Appwrite error bodies, bad bodies and
//! headers, and the `UserClient` extractor.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::server::{appwrite_error, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_over_http() {
    let s = start().await;
    // Sign-up of a new user, then the seed users sign in.
    let (status, user) = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-d", "email": "d@example.com", "password": "password-d", "name": "Dee"})),
        )
        .await;
    assert_eq!(
        (status, &user["$id"]),
        (StatusCode::CREATED, &json!("user-d"))
    );
    let (a_secret, a_jwt) = s.sign_in("a").await;
    let (_, b_jwt) = s.sign_in("b").await;

    // The backend, with each user's token, sees only that user's document; the key sees all.
    for header in ["X-Appwrite-JWT", "X-Nuvix-JWT"] {
        assert_eq!(
            s.names(&[(header, &a_jwt)]).await,
            (StatusCode::OK, json!({"total": 1, "names": ["Kevin"]}))
        );
    }
    assert_eq!(
        s.names(&[("X-Appwrite-JWT", &b_jwt)]).await,
        (StatusCode::OK, json!({"total": 1, "names": ["Laura"]}))
    );
    assert_eq!(s.names(&[("X-Appwrite-Key", &s.key)]).await.1["total"], 3);
    // queries[] in the JSON wire form, as the SDKs send them (indexed and not).
    let q = r#"{"method":"lessThan","attribute":"birthday","values":["2000-01-01"]}"#;
    let o = r#"{"method":"orderAsc","attribute":"name"}"#;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (status, body) = s
        .call(
            Method::GET,
            &format!(
                "/v1/databases/db/collections/birthdays/documents?queries%5B0%5D={}&queries[]={}",
                enc(q),
                enc(o)
            ),
            &[("X-Appwrite-Key", &s.key)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bob", "Laura"]);

    // The account, by session header and by the web SDK's cookie.
    let (status, me) = s
        .call(
            Method::GET,
            "/v1/account",
            &[("X-Appwrite-Session", &a_secret)],
            None,
        )
        .await;
    assert_eq!((status, &me["$id"]), (StatusCode::OK, &json!("user-a")));
    let cookie = format!("a_session_default={a_secret}");
    let (status, me) = s
        .call(Method::GET, "/v1/account", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!((status, &me["$id"]), (StatusCode::OK, &json!("user-a")));
    let (status, current) = s
        .call(
            Method::GET,
            "/v1/account/sessions/current",
            &[("X-Appwrite-Session", &a_secret)],
            None,
        )
        .await;
    assert_eq!(
        (status, &current["current"]),
        (StatusCode::OK, &json!(true))
    );
    assert_eq!(current["secret"], "", "a listed session shows no secret");

    // A token cannot mint a token.
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/account/jwts",
            &[("X-Appwrite-JWT", &a_jwt)],
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "user_jwt_creation_denied",
    );
    // Logout kills the token.
    let (status, _) = s
        .call(
            Method::DELETE,
            "/v1/account/sessions/current",
            &[("X-Appwrite-Session", &a_secret)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let body = appwrite_error(
        s.names(&[("X-Appwrite-JWT", &a_jwt)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    assert!(
        body["message"].as_str().unwrap().contains("session"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refusals_are_401_with_appwrite_bodies() {
    let s = start().await;
    let (_, jwt) = s.sign_in("a").await;
    let mut tampered = jwt.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        "",
        "not a token",
        "pdb2.AAAA",
        "pdb1.!!!!",
        &tampered,
        &"x".repeat(600),
    ] {
        appwrite_error(
            s.names(&[("X-Appwrite-JWT", bad)]).await,
            StatusCode::UNAUTHORIZED,
            "user_jwt_invalid",
        );
    }
    // A one-time token works once; a deleted user's token not at all.
    let (c_secret, c_jwt) = s.sign_in("c").await;
    let once =
        s.db.client()
            .set_session(&c_secret)
            .unwrap()
            .account()
            .create_one_time_jwt()
            .unwrap()
            .jwt;
    assert_eq!(
        s.names(&[("X-Appwrite-JWT", &once)]).await.0,
        StatusCode::OK
    );
    let body = appwrite_error(
        s.names(&[("X-Appwrite-JWT", &once)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    s.db.root().users().delete("user-c").unwrap();
    appwrite_error(
        s.names(&[("X-Appwrite-JWT", &c_jwt)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    // Blocked user, then expiry.
    s.db.root().users().update_status("user-a", false).unwrap();
    appwrite_error(
        s.names(&[("X-Appwrite-JWT", &jwt)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    s.db.root().users().update_status("user-a", true).unwrap();
    assert_eq!(s.names(&[("X-Appwrite-JWT", &jwt)]).await.0, StatusCode::OK);
    s.clock.advance(time::Duration::minutes(17));
    let body = appwrite_error(
        s.names(&[("X-Appwrite-JWT", &jwt)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // Wrong secrets and keys; a missing read is a 404 for a user, like a missing document.
    appwrite_error(
        s.names(&[("X-Appwrite-Session", "pdbs_x.AAAA")]).await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    appwrite_error(
        s.names(&[("X-Appwrite-Key", "pdbk_x.AAAA")]).await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    let (_, b_jwt) = s.sign_in("b").await;
    let hidden = appwrite_error(
        s.call(
            Method::GET,
            "/v1/databases/db/collections/birthdays/documents/doc1",
            &[("X-Appwrite-JWT", &b_jwt)],
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "document_not_found",
    );
    let absent = appwrite_error(
        s.call(
            Method::GET,
            "/v1/databases/db/collections/birthdays/documents/doc9",
            &[("X-Appwrite-JWT", &b_jwt)],
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "document_not_found",
    );
    assert_eq!(
        hidden["message"].as_str().unwrap().replace("doc1", "ID"),
        absent["message"].as_str().unwrap().replace("doc9", "ID")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_headers_and_routes_are_clear_errors() {
    let s = start().await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let docs = "/v1/databases/db/collections/birthdays/documents";
    // Not JSON, wrong shape, unknown field, wrong type.
    let raw = |body: &'static str| {
        s.http
            .post(format!("{}{docs}", s.base))
            .header("X-Appwrite-Key", &s.key)
            .header("content-type", "application/json")
            .body(body)
    };
    for body in ["{", "[1,2]", "null", "{\"documentId\": 5, \"data\": {}}"] {
        let resp = raw(body).send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        appwrite_error(
            (status, v),
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
    appwrite_error(
        s.call(
            Method::POST,
            docs,
            &key,
            Some(json!({"documentId": "d9", "data": {}, "extra": 1})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    // Bad permission strings and documents are the library's typed errors.
    appwrite_error(
        s.call(
            Method::POST,
            docs,
            &key,
            Some(json!({"documentId": "d9", "data": {}, "permissions": ["read(\"user:)"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    appwrite_error(
        s.call(
            Method::POST,
            docs,
            &key,
            Some(json!({"documentId": "d9", "data": {"$id": 1}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "document_invalid_structure",
    );
    // Over the body limit: 413.
    let big = json!({"documentId": "big", "data": {"pad": "x".repeat(100_000)}});
    let (status, body) = s.call(Method::POST, docs, &key, Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Bad queries.
    appwrite_error(
        s.call(
            Method::GET,
            &format!("{docs}?queries[]=%7Bnope"),
            &key,
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_query_invalid",
    );
    appwrite_error(
        s.call(Method::GET, &format!("{docs}?limit=5"), &key, None)
            .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    // Two credentials at once, a header that is not ASCII, another project.
    appwrite_error(
        s.call(
            Method::GET,
            docs,
            &[("X-Appwrite-Key", &s.key), ("X-Appwrite-JWT", "pdb1.x")],
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    let resp = s
        .http
        .get(format!("{}{docs}", s.base))
        .header(
            "X-Appwrite-JWT",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    let status = resp.status();
    appwrite_error(
        (status, resp.json().await.unwrap()),
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    appwrite_error(
        s.call(Method::GET, docs, &[("X-Appwrite-Project", "other")], None)
            .await,
        StatusCode::NOT_FOUND,
        "project_not_found",
    );
    appwrite_error(
        s.call(Method::GET, "/v1/nothing/here", &key, None).await,
        StatusCode::NOT_FOUND,
        "general_route_not_found",
    );
    // The store is unchanged by all of it.
    assert_eq!(
        s.db.root()
            .schema("db")
            .collection("birthdays")
            .count(&[])
            .unwrap(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_routes_for_keys() {
    let s = start().await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/databases",
            &key,
            Some(json!({"databaseId": "d2", "name": "D2"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/databases/d2/collections",
            &key,
            Some(json!({"collectionId": "c", "name": "C", "permissions": ["read(\"users\")"], "documentSecurity": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/databases/d2/collections/c/attributes/string",
            &key,
            Some(json!({"key": "title", "size": 20, "required": true})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/databases/d2/collections/c/indexes",
            &key,
            Some(json!({"key": "by_title", "type": "key", "attributes": ["title"]})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/databases/d2/collections/c/documents",
            &key,
            Some(json!({"documentId": "x", "data": {}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "document_invalid_structure",
    );
    let (status, doc) = s
        .call(
            Method::POST,
            "/v1/databases/d2/collections/c/documents",
            &key,
            Some(json!({"documentId": "x", "data": {"title": "hello"}})),
        )
        .await;
    assert_eq!(
        (status, &doc["title"]),
        (StatusCode::CREATED, &json!("hello"))
    );
    let (status, doc) = s
        .call(
            Method::PATCH,
            "/v1/databases/d2/collections/c/documents/x",
            &key,
            Some(json!({"data": {"title": "bye"}})),
        )
        .await;
    assert_eq!((status, &doc["title"]), (StatusCode::OK, &json!("bye")));
    // Users and teams.
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/teams",
            &key,
            Some(json!({"teamId": "t1", "name": "T"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, m) = s
        .call(
            Method::POST,
            "/v1/teams/t1/memberships",
            &key,
            Some(json!({"userId": "user-a", "roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    let (status, users) = s.call(Method::GET, "/v1/users", &key, None).await;
    assert_eq!((status, &users["total"]), (StatusCode::OK, &json!(3)));
    // A user is not a key: management routes refuse them, with Appwrite's type for a
    // scope the caller's role lacks.
    let (secret, _) = s.sign_in("a").await;
    appwrite_error(
        s.call(
            Method::GET,
            "/v1/users",
            &[("X-Appwrite-Session", &secret)],
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "general_unauthorized_scope",
    );
    let (status, _) = s
        .call(
            Method::DELETE,
            "/v1/databases/d2/collections/c/documents/x",
            &key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_client_extractor() {
    let s = start().await;
    let (_, jwt) = s.sign_in("a").await;
    let get = |auth: Option<String>| {
        let mut req = s.http.get(format!("{}/api/mine", s.base));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send()
    };
    let resp = get(Some(format!("Bearer {jwt}"))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("user:user-a")),
        "{body}"
    );
    for auth in [
        None,
        Some("Bearer".to_string()),
        Some(format!("Basic {jwt}")),
        Some("Bearer pdb1.AAAA".into()),
    ] {
        let resp = get(auth.clone()).await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {body}");
        assert_eq!(body["code"], 401);
    }
}
