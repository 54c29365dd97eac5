//! What Appwrite's SDKs read from every answer, checked over HTTP: JSON error bodies with
//! their content type (the router's own 404 and 405 too), `ping`, and each conflict's type.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::server::{Server, appwrite_error, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a request; returns the status, the content type and the body text.
async fn raw(s: &Server, method: Method, path: &str) -> (StatusCode, String, String) {
    let resp = s
        .http
        .request(method, format!("{}{path}", s.base))
        .header("X-Appwrite-Project", "default")
        .header("X-Appwrite-Key", &s.key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

/// An Appwrite error answer as the Python SDK reads it: `application/json`, and a body with
/// `message`, `code` (the status), `type` and `version`.
#[track_caller]
fn json_error(got: (StatusCode, String, String), status: StatusCode, kind: &str) {
    let (s, content_type, text) = got;
    assert_eq!(s, status, "{text}");
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?} for {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], status.as_u16(), "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["version"].is_string(), "{body}");
}

#[tokio::test]
async fn the_routers_own_refusals_are_appwrite_json() {
    let s = start().await;
    json_error(
        raw(&s, Method::GET, "/v1/nothing/here").await,
        StatusCode::NOT_FOUND,
        "general_route_not_found",
    );
    json_error(
        raw(&s, Method::GET, "/outside/v1").await,
        StatusCode::NOT_FOUND,
        "general_route_not_found",
    );
    // A served path with a method it does not take.
    json_error(
        raw(
            &s,
            Method::PUT,
            "/v1/databases/db/collections/birthdays/documents",
        )
        .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "general_not_implemented",
    );
    json_error(
        raw(&s, Method::PATCH, "/v1/account/jwts").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "general_not_implemented",
    );
}

#[tokio::test]
async fn ping_answers_pong_as_text() {
    let s = start().await;
    let (status, content_type, body) = raw(&s, Method::GET, "/v1/ping").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(body, "Pong!");
}

#[tokio::test]
async fn each_conflict_names_what_exists() {
    let s = start().await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let post = |path: &'static str, body: Value| {
        let s = &s;
        async move { s.call(Method::POST, path, &key, Some(body)).await }
    };
    let user = json!({"userId": "user-a", "email": "new@example.com", "password": "password-n"});
    appwrite_error(
        post("/v1/users", user).await,
        StatusCode::CONFLICT,
        "user_already_exists",
    );
    let email = json!({"userId": "user-n", "email": "a@example.com", "password": "password-n"});
    appwrite_error(
        post("/v1/users", email).await,
        StatusCode::CONFLICT,
        "user_already_exists",
    );
    // Sign-up through the account service: the same type.
    let (status, _) = s
        .call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-b", "email": "z@example.com", "password": "password-z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let team = json!({"teamId": "t1", "name": "T"});
    assert_eq!(post("/v1/teams", team.clone()).await.0, StatusCode::CREATED);
    appwrite_error(
        post("/v1/teams", team).await,
        StatusCode::CONFLICT,
        "team_already_exists",
    );
    let member = json!({"userId": "user-a", "roles": []});
    assert_eq!(
        post("/v1/teams/t1/memberships", member.clone()).await.0,
        StatusCode::CREATED
    );
    appwrite_error(
        post("/v1/teams/t1/memberships", member).await,
        StatusCode::CONFLICT,
        "team_invite_already_exists",
    );
    appwrite_error(
        post(
            "/v1/databases",
            json!({"databaseId": "db", "name": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "database_already_exists",
    );
    appwrite_error(
        post(
            "/v1/databases/db/collections",
            json!({"collectionId": "birthdays", "name": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "collection_already_exists",
    );
    let attribute = json!({"key": "email", "required": false});
    let attributes = "/v1/databases/db/collections/birthdays/attributes/email";
    assert_eq!(
        post(attributes, attribute.clone()).await.0,
        StatusCode::ACCEPTED
    );
    appwrite_error(
        post(attributes, attribute).await,
        StatusCode::CONFLICT,
        "attribute_already_exists",
    );
    let index = json!({"key": "by_email", "type": "unique", "attributes": ["email"]});
    let indexes = "/v1/databases/db/collections/birthdays/indexes";
    assert_eq!(post(indexes, index.clone()).await.0, StatusCode::ACCEPTED);
    appwrite_error(
        post(indexes, index).await,
        StatusCode::CONFLICT,
        "index_already_exists",
    );
    // A taken document id, and another document's values under a unique index.
    let docs = "/v1/databases/db/collections/birthdays/documents";
    appwrite_error(
        post(docs, json!({"documentId": "doc1", "data": {}})).await,
        StatusCode::CONFLICT,
        "document_already_exists",
    );
    let with_email = |id: &str| json!({"documentId": id, "data": {"email": "k@example.com"}});
    assert_eq!(post(docs, with_email("e1")).await.0, StatusCode::CREATED);
    appwrite_error(
        post(docs, with_email("e2")).await,
        StatusCode::CONFLICT,
        "document_already_exists",
    );
}

#[tokio::test]
async fn a_wrong_email_or_password_is_invalid_credentials() {
    let s = start().await;
    for (email, password) in [
        ("a@example.com", "wrong-password"),
        ("nobody@example.com", "password-a"),
    ] {
        appwrite_error(
            s.call(
                Method::POST,
                "/v1/account/sessions/email",
                &[],
                Some(json!({"email": email, "password": password})),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "user_invalid_credentials",
        );
    }
}
