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
            Some(json!({"documentId": "i1", "data": {"title": "Lamp", "price": 9.5, "since": "2012-02-03"}})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Document", &doc);
    assert_eq!(doc["$sequence"], "1");
    assert_eq!(doc["stock"], 0, "the default");
    assert_eq!(
        doc["since"], "2012-02-03T00:00:00.000+00:00",
        "Appwrite's stored form"
    );
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

#[tokio::test]
async fn every_account_user_and_team_answer_is_appwrites_model() {
    // The default 4 MiB body limit, so that preferences past their own limit arrive.
    let (options, clock) = common::test_options();
    let s =
        common::server::start_with(options, clock, permdb_server::ServerOptions::default()).await;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let as_key = |method: Method, path: &str, body: Option<Value>| {
        let (s, path) = (&s, path.to_owned());
        async move { s.call(method, &path, &key, body).await }
    };
    let ok = |(status, body): (StatusCode, Value), want: StatusCode| {
        assert_eq!(status, want, "{body}");
        body
    };
    // Sign-up as a guest, sign-in with the key (the secret shown), the account, JWTs.
    let user = ok(
        s.call(
            Method::POST,
            "/v1/account",
            &[],
            Some(json!({"userId": "user-n", "email": "N@example.com", "password": "password-n", "name": "N"})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("User", &user);
    assert_eq!(user["prefs"], json!({}));
    let session = ok(
        as_key(
            Method::POST,
            "/v1/account/sessions/email",
            Some(json!({"email": "n@example.com", "password": "password-n"})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Session", &session);
    assert_eq!(session["providerUid"], "N@example.com");
    assert_eq!(session["userId"], "user-n");
    let secret = session["secret"].as_str().unwrap().to_owned();
    let me = [("X-Appwrite-Session", secret.as_str())];
    let mine = |method: Method, path: &str, body: Option<Value>| {
        let (s, path) = (&s, path.to_owned());
        async move { s.call(method, &path, &me, body).await }
    };
    assert_model(
        "User",
        &ok(mine(Method::GET, "/v1/account", None).await, StatusCode::OK),
    );
    let sessions = ok(
        mine(Method::GET, "/v1/account/sessions", None).await,
        StatusCode::OK,
    );
    assert_model("SessionList", &sessions);
    assert_eq!(sessions["sessions"][0]["current"], true);
    assert_eq!(sessions["sessions"][0]["secret"], "", "never shown again");
    assert_model(
        "Session",
        &ok(
            mine(Method::GET, "/v1/account/sessions/current", None).await,
            StatusCode::OK,
        ),
    );
    assert_model(
        "Jwt",
        &ok(
            mine(Method::POST, "/v1/account/jwts", None).await,
            StatusCode::CREATED,
        ),
    );
    // Preferences: the account's own, replaced whole; a PATCH answers the user.
    assert_eq!(
        ok(
            mine(Method::GET, "/v1/account/prefs", None).await,
            StatusCode::OK
        ),
        json!({})
    );
    let updated = ok(
        mine(
            Method::PATCH,
            "/v1/account/prefs",
            Some(json!({"prefs": {"theme": "dark"}})),
        )
        .await,
        StatusCode::OK,
    );
    assert_model("User", &updated);
    assert_eq!(updated["prefs"], json!({"theme": "dark"}));
    assert_eq!(
        ok(
            mine(Method::GET, "/v1/account/prefs", None).await,
            StatusCode::OK
        ),
        json!({"theme": "dark"})
    );
    // Users, by key.
    let got = ok(
        as_key(Method::GET, "/v1/users/user-n", None).await,
        StatusCode::OK,
    );
    assert_model("User", &got);
    assert_eq!(got["prefs"], json!({"theme": "dark"}));
    let users = ok(as_key(Method::GET, "/v1/users", None).await, StatusCode::OK);
    assert_model("UserList", &users);
    assert_eq!(users["total"], 4);
    let listed = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["$id"] == "user-n")
        .unwrap();
    assert_eq!(
        listed["prefs"],
        json!({"theme": "dark"}),
        "the page's preferences are read"
    );
    assert_model(
        "User",
        &ok(
            as_key(
                Method::PATCH,
                "/v1/users/user-n/status",
                Some(json!({"status": true})),
            )
            .await,
            StatusCode::OK,
        ),
    );
    assert_model(
        "User",
        &ok(
            as_key(
                Method::PUT,
                "/v1/users/user-n/labels",
                Some(json!({"labels": ["vip"]})),
            )
            .await,
            StatusCode::OK,
        ),
    );
    let prefs = ok(
        as_key(
            Method::PATCH,
            "/v1/users/user-a/prefs",
            Some(json!({"prefs": {"lang": "fr"}})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(prefs, json!({"lang": "fr"}), "Preferences, not the user");
    assert_eq!(
        ok(
            as_key(Method::GET, "/v1/users/user-a/prefs", None).await,
            StatusCode::OK
        ),
        prefs
    );
    // Teams, memberships and team preferences, by key.
    let team = ok(
        as_key(
            Method::POST,
            "/v1/teams",
            Some(json!({"teamId": "t1", "name": "Team"})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Team", &team);
    assert_eq!(team["total"], 0);
    let m = ok(
        as_key(
            Method::POST,
            "/v1/teams/t1/memberships",
            Some(json!({"userId": "user-n", "roles": ["editor"]})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Membership", &m);
    assert_eq!(
        (m["teamName"].as_str(), m["userEmail"].as_str()),
        (Some("Team"), Some("N@example.com"))
    );
    assert_eq!(m["roles"], json!(["editor"]));
    let got = ok(
        as_key(Method::GET, "/v1/teams/t1", None).await,
        StatusCode::OK,
    );
    assert_model("Team", &got);
    assert_eq!(got["total"], 1);
    assert_model(
        "TeamList",
        &ok(as_key(Method::GET, "/v1/teams", None).await, StatusCode::OK),
    );
    assert_model(
        "MembershipList",
        &ok(
            as_key(Method::GET, "/v1/teams/t1/memberships", None).await,
            StatusCode::OK,
        ),
    );
    let prefs = ok(
        as_key(
            Method::PUT,
            "/v1/teams/t1/prefs",
            Some(json!({"prefs": {"color": "red"}})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(prefs, json!({"color": "red"}));
    assert_eq!(
        ok(
            as_key(Method::GET, "/v1/teams/t1", None).await,
            StatusCode::OK
        )["prefs"],
        prefs
    );
    // A key that may read teams but not users sees memberships without names or emails.
    let teams_only =
        s.db.root()
            .keys()
            .create("teams", &[permdb::Scope::TeamsRead])
            .unwrap()
            .secret;
    let list = ok(
        s.call(
            Method::GET,
            "/v1/teams/t1/memberships",
            &[("X-Appwrite-Key", &teams_only)],
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_model("MembershipList", &list);
    assert_eq!(
        (
            list["memberships"][0]["userName"].as_str(),
            list["memberships"][0]["userEmail"].as_str()
        ),
        (Some(""), Some(""))
    );
    // Refusals: a user reads no one else's preferences; a teams key none of a user's;
    // a session changes only its own; bad preferences are refused and change nothing.
    use common::server::appwrite_error;
    appwrite_error(
        mine(Method::GET, "/v1/users/user-a/prefs", None).await,
        StatusCode::UNAUTHORIZED,
        "general_unauthorized_scope",
    );
    appwrite_error(
        s.call(
            Method::GET,
            "/v1/users/user-a/prefs",
            &[("X-Appwrite-Key", &teams_only)],
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "general_unauthorized_scope",
    );
    appwrite_error(
        as_key(Method::GET, "/v1/users/nobody/prefs", None).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    appwrite_error(
        as_key(Method::GET, "/v1/teams/nothing/prefs", None).await,
        StatusCode::NOT_FOUND,
        "team_not_found",
    );
    for bad in [
        json!({"prefs": [1]}),
        json!({"prefs": "x"}),
        json!({}),
        json!({"prefs": {}, "more": 1}),
    ] {
        appwrite_error(
            mine(Method::PATCH, "/v1/account/prefs", Some(bad)).await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
    let big = json!({"prefs": {"big": "x".repeat(permdb::MAX_PREFS_BYTES)}});
    appwrite_error(
        mine(Method::PATCH, "/v1/account/prefs", Some(big)).await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    assert_eq!(
        ok(
            mine(Method::GET, "/v1/account/prefs", None).await,
            StatusCode::OK
        ),
        json!({"theme": "dark"}),
        "unchanged"
    );
    appwrite_error(
        s.call(Method::GET, "/v1/account/prefs", &[], None).await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
}

/// TablesDB over the same store: a collection made through one API is a table through the
/// other, rows are documents, and each answer is TablesDB's model and error type.
#[tokio::test]
async fn tablesdb_serves_the_same_data_in_its_own_models() {
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
    use common::server::appwrite_error;
    let list = ok(
        call(Method::GET, "/v1/tablesdb".into(), None).await,
        StatusCode::OK,
    );
    assert_model("DatabaseList", &list);
    assert_eq!(list["databases"][0]["type"], "tablesdb");
    // The seed's collection, as a table; its documents, as rows.
    let t = ok(
        call(Method::GET, "/v1/tablesdb/db/tables/birthdays".into(), None).await,
        StatusCode::OK,
    );
    assert_model("Table", &t);
    assert_eq!(t["rowSecurity"], true);
    let rows = ok(
        call(
            Method::GET,
            "/v1/tablesdb/db/tables/birthdays/rows".into(),
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_model("RowList", &rows);
    assert_eq!(rows["total"], 3);
    assert_eq!(rows["rows"][0]["$tableId"], "birthdays");
    assert!(rows["rows"][0].get("$collectionId").is_none());
    // A table made through TablesDB is a collection through the Databases API.
    let made = ok(
        call(
            Method::POST,
            "/v1/tablesdb/db/tables".into(),
            Some(
                json!({"tableId": "books", "name": "Books", "rowSecurity": false,
                "permissions": ["read(\"users\")", "create(\"users\")"]}),
            ),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Table", &made);
    let base = "/v1/tablesdb/db/tables/books";
    let column = ok(
        call(
            Method::POST,
            format!("{base}/columns/string"),
            Some(json!({"key": "title", "size": 200, "required": true})),
        )
        .await,
        StatusCode::ACCEPTED,
    );
    assert_model("ColumnString", &column);
    // TablesDB's text types, each answered as its own model.
    for (kind, body, model) in [
        (
            "varchar",
            json!({"key": "isbn", "size": 13, "required": false}),
            "ColumnVarchar",
        ),
        (
            "text",
            json!({"key": "blurb", "required": false}),
            "ColumnText",
        ),
        (
            "mediumtext",
            json!({"key": "body", "required": false}),
            "ColumnMediumtext",
        ),
        (
            "longtext",
            json!({"key": "notes", "required": false}),
            "ColumnLongtext",
        ),
    ] {
        let c = ok(
            call(Method::POST, format!("{base}/columns/{kind}"), Some(body)).await,
            StatusCode::ACCEPTED,
        );
        assert_model(model, &c);
        assert_eq!(c["type"], kind);
    }
    appwrite_error(
        call(
            Method::POST,
            format!("{base}/columns/varchar"),
            Some(json!({"key": "nosize", "required": false})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    let long_isbn = ok(
        call(
            Method::POST,
            format!("{base}/rows"),
            Some(json!({"rowId": "b4", "data": {"title": "x", "isbn": "97804410135930"}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        long_isbn["type"], "row_invalid_structure",
        "varchar(13) holds 13 characters"
    );
    assert_model(
        "ColumnList",
        &ok(
            call(Method::GET, format!("{base}/columns"), None).await,
            StatusCode::OK,
        ),
    );
    assert_model(
        "ColumnString",
        &ok(
            call(Method::GET, format!("{base}/columns/title"), None).await,
            StatusCode::OK,
        ),
    );
    let index = ok(
        call(
            Method::POST,
            format!("{base}/indexes"),
            Some(json!({"key": "by_title", "type": "unique", "columns": ["title"]})),
        )
        .await,
        StatusCode::ACCEPTED,
    );
    assert_model("ColumnIndex", &index);
    assert_eq!(index["columns"], json!(["title"]));
    assert_model(
        "ColumnIndexList",
        &ok(
            call(Method::GET, format!("{base}/indexes"), None).await,
            StatusCode::OK,
        ),
    );
    let row = ok(
        call(
            Method::POST,
            format!("{base}/rows"),
            Some(json!({"rowId": "b1", "data": {"title": "Dune", "isbn": "9780441013593"}})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Row", &row);
    assert_eq!(
        (row["$tableId"].as_str(), row["$sequence"].as_str()),
        (Some("books"), Some("1"))
    );
    assert_model(
        "Row",
        &ok(
            call(Method::GET, format!("{base}/rows/b1"), None).await,
            StatusCode::OK,
        ),
    );
    let patched = ok(
        call(
            Method::PATCH,
            format!("{base}/rows/b1"),
            Some(json!({"data": {"title": "Dune II"}})),
        )
        .await,
        StatusCode::OK,
    );
    assert_model("Row", &patched);
    let same = ok(
        call(
            Method::GET,
            "/v1/databases/db/collections/books/documents/b1".into(),
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_model("Document", &same);
    assert_eq!(same["title"], "Dune II");
    let coll = ok(
        call(
            Method::GET,
            "/v1/databases/db/collections/books".into(),
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_model("Collection", &coll);
    assert_eq!(coll["attributes"][0]["key"], "title");
    // Errors in TablesDB's words.
    appwrite_error(
        call(Method::GET, format!("{base}/rows/nothing"), None).await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );
    appwrite_error(
        call(Method::GET, "/v1/tablesdb/db/tables/nothing".into(), None).await,
        StatusCode::NOT_FOUND,
        "table_not_found",
    );
    appwrite_error(
        call(Method::GET, format!("{base}/columns/nothing"), None).await,
        StatusCode::NOT_FOUND,
        "column_not_found",
    );
    appwrite_error(
        call(
            Method::POST,
            format!("{base}/rows"),
            Some(json!({"rowId": "b1", "data": {"title": "x"}})),
        )
        .await,
        StatusCode::CONFLICT,
        "row_already_exists",
    );
    appwrite_error(
        call(
            Method::POST,
            format!("{base}/rows"),
            Some(json!({"rowId": "b2", "data": {"title": "Dune II"}})),
        )
        .await,
        StatusCode::CONFLICT,
        "row_already_exists",
    );
    appwrite_error(
        call(
            Method::POST,
            format!("{base}/rows"),
            Some(json!({"rowId": "b3", "data": {}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "row_invalid_structure",
    );
    appwrite_error(
        call(
            Method::POST,
            "/v1/tablesdb/db/tables".into(),
            Some(json!({"tableId": "books", "name": "x"})),
        )
        .await,
        StatusCode::CONFLICT,
        "table_already_exists",
    );
    appwrite_error(
        call(Method::GET, "/v1/tablesdb/nothing".into(), None).await,
        StatusCode::NOT_FOUND,
        "database_not_found",
    );
    // The same rules: a user reads a row only where the table or row lets them.
    let (_, jwt) = s.sign_in("b").await;
    let as_b = [("X-Appwrite-JWT", jwt.as_str())];
    let seen = ok(
        s.call(
            Method::GET,
            "/v1/tablesdb/db/tables/birthdays/rows",
            &as_b,
            None,
        )
        .await,
        StatusCode::OK,
    );
    assert_model("RowList", &seen);
    let names: Vec<&str> = seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Laura"]);
    appwrite_error(
        s.call(
            Method::GET,
            "/v1/tablesdb/db/tables/birthdays/rows/doc1",
            &as_b,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );
    let b_row = ok(
        s.call(
            Method::POST,
            &format!("{base}/rows"),
            &as_b,
            Some(json!({"rowId": "b9", "data": {"title": "Emma"}})),
        )
        .await,
        StatusCode::CREATED,
    );
    assert_model("Row", &b_row);
    appwrite_error(
        s.call(Method::DELETE, &format!("{base}/rows/b1"), &as_b, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    // Increment and decrement: Row answers; a reader without update is refused, a user
    // who may not read the row finds none.
    s.db.root()
        .schema("db")
        .collections()
        .create_attribute("books", permdb::AttributeSpec::integer("pages"))
        .unwrap();
    let up = ok(
        call(
            Method::PATCH,
            format!("{base}/rows/b1/pages/increment"),
            Some(json!({"value": 5, "max": 10})),
        )
        .await,
        StatusCode::OK,
    );
    assert_model("Row", &up);
    assert_eq!(up["pages"], 5);
    let down = ok(
        call(
            Method::PATCH,
            format!("{base}/rows/b1/pages/decrement"),
            Some(json!({})),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(down["pages"], 4);
    appwrite_error(
        call(
            Method::PATCH,
            format!("{base}/rows/b1/pages/increment"),
            Some(json!({"value": 7, "max": 10})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "row_invalid_structure",
    );
    appwrite_error(
        call(
            Method::PATCH,
            format!("{base}/rows/b1/pages/decrement"),
            Some(json!({"value": -1})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "general_argument_invalid",
    );
    appwrite_error(
        s.call(
            Method::PATCH,
            &format!("{base}/rows/b1/pages/increment"),
            &as_b,
            Some(json!({})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    appwrite_error(
        s.call(
            Method::PATCH,
            "/v1/tablesdb/db/tables/birthdays/rows/doc1/age/increment",
            &as_b,
            Some(json!({})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );
    let legacy = ok(
        call(
            Method::PATCH,
            "/v1/databases/db/collections/books/documents/b1/pages/increment".into(),
            Some(json!({})),
        )
        .await,
        StatusCode::OK,
    );
    assert_model("Document", &legacy);
    assert_eq!(legacy["pages"], 5);
    let (status, _) = call(Method::DELETE, format!("{base}/rows/b1"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// `POST /v1/users/{id}/jwts` (Python SDK 27's `users.create_jwt`): a key with
/// `users.write` mints the user's token from their most recent session.
#[tokio::test]
async fn a_key_mints_a_users_jwt_over_http() {
    let s = start().await;
    use common::server::appwrite_error;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    appwrite_error(
        s.call(Method::POST, "/v1/users/user-a/jwts", &key, Some(json!({})))
            .await,
        StatusCode::NOT_FOUND,
        "user_session_not_found",
    );
    s.sign_in("a").await;
    let (status, jwt) = s
        .call(
            Method::POST,
            "/v1/users/user-a/jwts",
            &key,
            Some(json!({"sessionId": "recent()", "duration": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{jwt}");
    assert_model("Jwt", &jwt);
    let token = jwt["jwt"].as_str().unwrap();
    let (status, names) = s.names(&[("X-Appwrite-JWT", token)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names["names"], json!(["Kevin"]));
    // It lasts the duration asked for.
    s.clock.advance(time::Duration::seconds(61 + 5 * 60));
    appwrite_error(
        s.names(&[("X-Appwrite-JWT", token)]).await,
        StatusCode::UNAUTHORIZED,
        "user_jwt_invalid",
    );
    // A key without the document scopes (a token reads and writes documents), and bad
    // bodies, are refused.
    let reader =
        s.db.root()
            .keys()
            .create(
                "reader",
                &[permdb::Scope::UsersRead, permdb::Scope::UsersWrite],
            )
            .unwrap()
            .secret;
    appwrite_error(
        s.call(
            Method::POST,
            "/v1/users/user-a/jwts",
            &[("X-Appwrite-Key", &reader)],
            Some(json!({})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "general_unauthorized_scope",
    );
    for bad in [
        json!({"duration": 7200}),
        json!({"duration": -1}),
        json!({"scopes": []}),
    ] {
        appwrite_error(
            s.call(Method::POST, "/v1/users/user-a/jwts", &key, Some(bad))
                .await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
}

/// Bulk create (`createRows`, `createDocuments`): API keys only, all in one write or none.
#[tokio::test]
async fn bulk_creates_are_for_keys_and_all_or_nothing() {
    let s = start().await;
    use common::server::appwrite_error;
    let key = [("X-Appwrite-Key", s.key.as_str())];
    let rows = "/v1/tablesdb/db/tables/birthdays/rows";
    let (status, made) = s
        .call(
            Method::POST,
            rows,
            &key,
            Some(json!({"rows": [
                {"$id": "b1", "name": "Ada", "$permissions": ["read(\"user:user-b\")"]},
                {"name": "Bea"}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_model("RowList", &made);
    assert_eq!(made["total"], 2);
    assert_eq!(
        made["rows"][0]["$permissions"],
        json!(["read(\"user:user-b\")"])
    );
    let legacy = "/v1/databases/db/collections/birthdays/documents";
    let (status, docs) = s
        .call(
            Method::POST,
            legacy,
            &key,
            Some(json!({"documents": [{"$id": "d9", "name": "Cy"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{docs}");
    assert_model("DocumentList", &docs);
    // One bad document (a taken id) and nothing is written.
    appwrite_error(
        s.call(
            Method::POST,
            rows,
            &key,
            Some(json!({"rows": [{"$id": "n1", "name": "x"}, {"$id": "doc1"}]})),
        )
        .await,
        StatusCode::CONFLICT,
        "row_already_exists",
    );
    appwrite_error(
        s.call(Method::GET, &format!("{rows}/n1"), &key, None).await,
        StatusCode::NOT_FOUND,
        "row_not_found",
    );
    // Not for users, whatever they may create one by one; system fields are refused.
    let (_, jwt) = s.sign_in("a").await;
    appwrite_error(
        s.call(
            Method::POST,
            rows,
            &[("X-Appwrite-JWT", &jwt)],
            Some(json!({"rows": [{"name": "x"}]})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "user_unauthorized",
    );
    for bad in [
        json!({"rows": [{"$sequence": "9", "name": "x"}]}),
        json!({"rows": [{"$id": 5}]}),
        json!({"rows": [{"$permissions": "read(\"any\")"}]}),
        json!({"rows": [], "more": 1}),
    ] {
        appwrite_error(
            s.call(Method::POST, rows, &key, Some(bad)).await,
            StatusCode::BAD_REQUEST,
            "general_argument_invalid",
        );
    }
    let (_, all) = s.call(Method::GET, rows, &key, None).await;
    assert_eq!(all["total"], 6, "three seeded, three made in bulk");
}

/// `PUT .../rows/{id}` and `.../documents/{id}`: Appwrite's upsert, a Row or Document.
#[tokio::test]
async fn upsert_over_http() {
    let s = start().await;
    use common::server::appwrite_error;
    let (_, jwt) = s.sign_in("a").await;
    let as_a = [("X-Appwrite-JWT", jwt.as_str())];
    let rows = "/v1/tablesdb/db/tables/birthdays/rows";
    let (status, made) = s
        .call(
            Method::PUT,
            &format!("{rows}/mine"),
            &as_a,
            Some(json!({"data": {"name": "Zed"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_model("Row", &made);
    let (_, changed) = s
        .call(
            Method::PUT,
            &format!("{rows}/mine"),
            &as_a,
            Some(json!({"data": {"birthday": "2001-01-01"}})),
        )
        .await;
    assert_eq!(
        (&changed["name"], &changed["birthday"]),
        (&json!("Zed"), &json!("2001-01-01"))
    );
    // Laura's row is hidden from user-a: not updated, a conflict as a create's.
    appwrite_error(
        s.call(
            Method::PUT,
            &format!("{rows}/doc2"),
            &as_a,
            Some(json!({"data": {"name": "x"}})),
        )
        .await,
        StatusCode::CONFLICT,
        "row_already_exists",
    );
    let (_, laura) = s
        .call(
            Method::GET,
            &format!("{rows}/doc2"),
            &[("X-Appwrite-Key", s.key.as_str())],
            None,
        )
        .await;
    assert_eq!(laura["name"], "Laura");
    let (status, doc) = s
        .call(
            Method::PUT,
            "/v1/databases/db/collections/birthdays/documents/mine",
            &as_a,
            Some(json!({"data": {"name": "Zoe"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_model("Document", &doc);
    assert_eq!(doc["name"], "Zoe");
}
