//! Every answer of the routes permdb serves, checked against Appwrite's response model of
//! the same name as the pinned SDK declares it (see `common::models`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

mod common;

use common::models::{assert_attribute, assert_model, problems};
use common::server::start;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The checker itself catches what the SDKs choke on.
#[test]
fn the_checker_catches_what_sdks_refuse() {
    let doc = json!({"$id": "d", "$sequence": "1", "$collectionId": "c", "$databaseId": "db",
        "$createdAt": "2025-01-01T00:00:00.000+00:00", "$updatedAt": "2025-01-01T00:00:00.000+00:00",
        "$permissions": [], "name": "x"});
    assert_model("Document", &doc);
    let mut number = doc.clone();
    number["$sequence"] = json!(1);
    assert_eq!(
        problems("Document", &number).len(),
        1,
        "$sequence as a number"
    );
    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("$databaseId");
    assert_eq!(problems("Document", &missing).len(), 1);
    let list = json!({"total": 1, "documents": [number]});
    assert_eq!(
        problems("DocumentList", &list).len(),
        1,
        "items are checked"
    );
    let attribute = json!({"key": "n", "type": "string", "status": "ready", "error": "",
        "required": false, "$createdAt": "", "$updatedAt": "", "size": 5});
    assert_eq!(
        problems("AttributeString", &attribute).len(),
        1,
        "status enum"
    );
    let user = json!({"$id": "u"});
    assert!(problems("User", &user).iter().any(|p| p.contains("prefs")));
}

#[tokio::test]
async fn every_databases_answer_is_appwrites_model() {
    let s = start().await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let call = |method: Method, path: String, body: Option<Value>| {
        let s = &s;
        async move { s.call(method, &path, &key, body).await }
    };
    let ok = |(status, body): (StatusCode, Value), want: StatusCode| {
        assert_eq!(status, want, "{body}");
        body
    };
    let db = "/v1/databases";
    let d = ok(
        call(
            Method::POST,
            db.into(),
            Some(json!({"databaseId": "shop", "name": "Shop"})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Database", &d);
    assert_eq!(d["type"], "legacy");
    assert_model(
        "Database",
        &ok(
            call(Method::GET, format!("{db}/shop"), None).await,
            StatusCode::OK,
        ),
    );
    let list = ok(call(Method::GET, db.into(), None).await, StatusCode::OK);
    assert_model("DatabaseList", &list);
    assert_eq!(list["total"], 2, "db and shop");

    let colls = format!("{db}/shop/collections");
    let c = ok(
        call(
            Method::POST,
            colls.clone(),
            Some(
                json!({"collectionId": "items", "name": "Items", "documentSecurity": true,
                "permissions": ["read(\"any\")"]}),
            ),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Collection", &c);
    assert_eq!(c["documentSecurity"], true);
    assert_eq!(c["$permissions"], json!(["read(\"any\")"]));
    let items = format!("{colls}/items");
    // One attribute of each type permdb has, each answered as its own model.
    let attributes = [
        (
            "string",
            json!({"key": "title", "size": 100, "required": true}),
        ),
        (
            "integer",
            json!({"key": "stock", "required": false, "default": 0}),
        ),
        ("float", json!({"key": "price", "required": false})),
        (
            "boolean",
            json!({"key": "sold", "required": false, "array": true}),
        ),
        ("datetime", json!({"key": "since", "required": false})),
        ("email", json!({"key": "seller", "required": false})),
        (
            "enum",
            json!({"key": "size", "elements": ["s", "m"], "required": false}),
        ),
    ];
    for (kind, body) in &attributes {
        let a = ok(
            call(
                Method::POST,
                format!("{items}/attributes/{kind}"),
                Some(body.clone()),
            )
            .await,
            StatusCode::ACCEPTED,
        );
        assert_attribute(&a);
        assert_eq!(a["key"], body["key"]);
        assert_eq!(a["status"], "available");
    }
    let one = ok(
        call(Method::GET, format!("{items}/attributes/price"), None).await,
        StatusCode::OK,
    );
    assert_model("AttributeFloat", &one);
    assert_eq!(one["type"], "double");
    assert_model(
        "AttributeEnum",
        &ok(
            call(Method::GET, format!("{items}/attributes/size"), None).await,
            StatusCode::OK,
        ),
    );
    assert_model(
        "AttributeEmail",
        &ok(
            call(Method::GET, format!("{items}/attributes/seller"), None).await,
            StatusCode::OK,
        ),
    );
    let listed = ok(
        call(Method::GET, format!("{items}/attributes"), None).await,
        StatusCode::OK,
    );
    assert_model("AttributeList", &listed);
    assert_eq!(listed["total"], attributes.len());

    let i = ok(
        call(
            Method::POST,
            format!("{items}/indexes"),
            Some(json!({"key": "by_title", "type": "key", "attributes": ["title"], "orders": ["ASC"]})),
        )
        .await,
        StatusCode::ACCEPTED,
    );
    assert_model("Index", &i);
    assert_eq!(i["attributes"], json!(["title"]));
    assert_model(
        "Index",
        &ok(
            call(Method::GET, format!("{items}/indexes/by_title"), None).await,
            StatusCode::OK,
        ),
    );
    let indexes = ok(
        call(Method::GET, format!("{items}/indexes"), None).await,
        StatusCode::OK,
    );
    assert_model("IndexList", &indexes);
    assert_eq!(indexes["total"], 1);
    let c = ok(call(Method::GET, items.clone(), None).await, StatusCode::OK);
    assert_model("Collection", &c);
    assert_eq!(c["attributes"].as_array().unwrap().len(), attributes.len());
    assert_model(
        "CollectionList",
        &ok(call(Method::GET, colls.clone(), None).await, StatusCode::OK),
    );

    let docs = format!("{items}/documents");
    let doc = ok(
        call(
            Method::POST,
            docs.clone(),
            Some(json!({"documentId": "i1", "data": {"title": "Lamp", "price": 9.5}})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Document", &doc);
    assert_eq!(doc["$sequence"], "1");
    assert_eq!(doc["stock"], 0, "the default");
    assert_model(
        "Document",
        &ok(
            call(Method::GET, format!("{docs}/i1"), None).await,
            StatusCode::OK,
        ),
    );
    let patched = ok(
        call(
            Method::PATCH,
            format!("{docs}/i1"),
            Some(json!({"data": {"stock": 3}})),
        )
        .await,
        StatusCode::OK,
    );
    assert_model("Document", &patched);
    let list = ok(call(Method::GET, docs.clone(), None).await, StatusCode::OK);
    assert_model("DocumentList", &list);
    assert_eq!(list["total"], 1);

    // What is not there answers 404 with the type naming it.
    for (path, kind) in [
        (format!("{items}/attributes/nothing"), "attribute_not_found"),
        (format!("{items}/indexes/nothing"), "index_not_found"),
        (
            format!("{colls}/nothing/attributes"),
            "collection_not_found",
        ),
        (format!("{colls}/nothing/indexes"), "collection_not_found"),
    ] {
        common::server::appwrite_error(
            call(Method::GET, path, None).await,
            StatusCode::NOT_FOUND,
            kind,
        );
    }
    // Orders are checked.
    common::server::appwrite_error(
        call(
            Method::POST,
            format!("{items}/indexes"),
            Some(json!({"key": "bad", "type": "key", "attributes": ["title"], "orders": ["UP"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
}
