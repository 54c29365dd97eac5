//! The seed's backend: one process serves permdb's Appwrite API under `/v1` (sign-up,
//! sessions, tokens) and its own route, `GET /api/user-data`, which acts as the calling
//! user through the `UserClient` extractor and returns their account and documents.
//!
//! ```sh
//! cargo run -p permdb-server --example backend -- 127.0.0.1:8080 [--cors-origin URL]
//! ```
//! then drive it with the curl lines it prints (also in README.md).

use axum::routing::get;
use axum::{Json, Router};
use permdb::{CollectionSpec, Db, Permission, Query, Role};
use permdb_server::{ApiError, ServerOptions, UserClient};
use serde_json::{Value, json};

/// The calling user's account and the birthdays they may read: nothing more.
async fn user_data(UserClient(client): UserClient) -> Result<Json<Value>, ApiError> {
    let work = move || -> Result<Value, ApiError> {
        let account = client.account().get()?;
        let docs = client
            .schema("db")
            .collection("birthdays")
            .find(&[Query::limit(25)])?;
        Ok(json!({"account": account, "documents": docs}))
    };
    let value = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))??;
    Ok(Json(value))
}

/// The seed's collection and documents, when the store is new.
fn seed(db: &Db) -> permdb::Result<()> {
    let root = db.root();
    if root.schemas().get("db").is_ok() {
        return Ok(());
    }
    root.schemas().create("db", "Database")?;
    root.schema("db").collections().create(
        CollectionSpec::new("birthdays", "Birthdays")
            .permissions([Permission::create(Role::users())])
            .document_security(true),
    )?;
    let birthdays = root.schema("db").collection("birthdays");
    for (id, name, user) in [("doc1", "Kevin", "user-a"), ("doc2", "Laura", "user-b")] {
        let perms = vec![Permission::read(Role::user(user))];
        birthdays.create(id, json!({"name": name}), Some(perms))?;
    }
    Ok(())
}

/// `backend [ADDR] [--data DIR] [--cors-origin URL]...`: the address to listen on
/// (127.0.0.1:8080), the store's directory (a fixed one under the temporary directory),
/// and the origins whose pages may call it from a browser.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8080".to_owned();
    let mut dir = std::env::temp_dir().join("permdb-backend-example");
    let mut options = ServerOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => dir = args.next().ok_or("--data needs a directory")?.into(),
            "--cors-origin" => {
                options = options.cors_origin(&args.next().ok_or("--cors-origin needs a URL")?)?;
            }
            other => addr = other.to_owned(),
        }
    }
    let db = Db::open(&dir)?;
    seed(&db)?;
    let own = Router::new().route("/api/user-data", get(user_data));
    let app = permdb_server::router_with_routes(db.clone(), options, own);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("listening on {base} (store in {})", dir.display());
    // The session secret reaches a client only in its cookie (or, for a request with an
    // API key, in the answer): curl keeps it in a cookie jar.
    println!(
        r#"
curl -s -X POST {base}/v1/account -H 'X-Appwrite-Project: default' -H 'content-type: application/json' \
  -d '{{"userId":"user-a","email":"a@example.com","password":"password-a"}}'
curl -s -c jar -X POST {base}/v1/account/sessions/email -H 'X-Appwrite-Project: default' \
  -H 'content-type: application/json' -d '{{"email":"a@example.com","password":"password-a"}}'
JWT=$(curl -s -b jar -X POST {base}/v1/account/jwts -H 'X-Appwrite-Project: default' \
  | sed 's/.*"jwt":"\([^"]*\)".*/\1/')
curl -s {base}/api/user-data -H "Authorization: Bearer $JWT""#
    );
    axum::serve(listener, app).await?;
    Ok(())
}
