//! `/v1/users` and `/v1/teams`: user and team management for API keys with the
//! `users.*` and `teams.*` scopes.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::caller;
use crate::blocking;
use crate::error::ApiError;
use crate::extract::Body;
use crate::{list, model};
use permdb::Db;

pub(super) fn routes() -> Router<Db> {
    Router::new()
        .route("/users", post(create_user).get(list_users))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/users/{id}/status", patch(update_status))
        .route("/users/{id}/name", patch(update_user_name))
        .route("/users/{id}/verification", patch(update_user_verification))
        .route("/users/{id}/email", patch(update_user_email))
        .route("/users/{id}/password", patch(update_user_password))
        .route("/users/{id}/labels", put(update_labels))
        .route(
            "/users/{id}/prefs",
            get(get_user_prefs).patch(update_user_prefs),
        )
        .route("/users/{id}/jwts", post(create_user_jwt))
        .route("/teams", post(create_team).get(list_teams))
        .route("/teams/{id}", get(get_team).delete(delete_team))
        .route(
            "/teams/{id}/prefs",
            get(get_team_prefs).put(update_team_prefs),
        )
        .route(
            "/teams/{id}/memberships",
            post(create_membership).get(list_memberships),
        )
        .route("/teams/{id}/memberships/{mid}", delete(delete_membership))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewUser {
    user_id: String,
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_user(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<NewUser>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let users = caller(&db, &headers)?.client.users();
        let user = users.create(&b.user_id, &b.email, &b.password, b.name.as_deref())?;
        Ok((StatusCode::CREATED, Json(model::user_of(&db, &user)?)).into_response())
    })
    .await
}

async fn list_users(
    State(db): State<Db>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), true)?;
        let all = caller(&db, &headers)?.client.users().list()?;
        // Preferences (up to 64 KiB each, and queries cannot name them) are read for the
        // page only, after paging.
        let users = all.iter().map(|u| model::user(u, Map::new())).collect();
        let mut answer = list::answer(users, &params, &list::USERS, "users")?;
        if let Some(page) = answer.get_mut("users") {
            model::fill_prefs(&db, page, model::PrefsOf::User)?;
        }
        Ok(Json(answer).into_response())
    })
    .await
}

async fn get_user(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?.client.users().get(&id)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

async fn delete_user(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        caller(&db, &headers)?.client.users().delete(&id)?;
        Ok(crate::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Status {
    status: bool,
}

async fn update_status(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Status>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?
            .client
            .users()
            .update_status(&id, b.status)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Verification {
    email_verification: bool,
}

/// `PATCH /users/{id}/verification`: marks the email verified or not (the
/// `users/verified` and `user:ID/verified` roles follow).
async fn update_user_verification(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Verification>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?
            .client
            .users()
            .update_email_verification(&id, b.email_verification)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserName {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEmail {
    email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPassword {
    password: String,
}

async fn update_user_name(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<UserName>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?
            .client
            .users()
            .update_name(&id, &b.name)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

async fn update_user_email(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<UserEmail>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?
            .client
            .users()
            .update_email(&id, &b.email)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

/// `PATCH /users/{id}/password`: every session of the user ends.
async fn update_user_password(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<UserPassword>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let user = caller(&db, &headers)?
            .client
            .users()
            .update_password(&id, &b.password)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Labels {
    labels: Vec<String>,
}

async fn update_labels(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Labels>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let labels: Vec<&str> = b.labels.iter().map(String::as_str).collect();
        let user = caller(&db, &headers)?
            .client
            .users()
            .update_labels(&id, &labels)?;
        Ok(Json(model::user_of(&db, &user)?).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewTeam {
    team_id: String,
    name: String,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

async fn create_team(
    State(db): State<Db>,
    headers: HeaderMap,
    Body(b): Body<NewTeam>,
) -> Result<Response, ApiError> {
    blocking(move || {
        if b.roles.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::bad_request(
                "team roles for the creator are not supported: create memberships instead",
            ));
        }
        let team = caller(&db, &headers)?
            .client
            .teams()
            .create(&b.team_id, &b.name)?;
        Ok((StatusCode::CREATED, Json(model::team_of(&db, &team, true)?)).into_response())
    })
    .await
}

async fn list_teams(
    State(db): State<Db>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), true)?;
        let all = caller(&db, &headers)?.client.teams().list()?;
        let teams = all
            .iter()
            .map(|t| model::team_of(&db, t, false))
            .collect::<permdb::Result<Vec<_>>>()?;
        let mut answer = list::answer(teams, &params, &list::TEAMS, "teams")?;
        if let Some(page) = answer.get_mut("teams") {
            model::fill_prefs(&db, page, model::PrefsOf::Team)?;
        }
        Ok(Json(answer).into_response())
    })
    .await
}

async fn get_team(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let team = caller(&db, &headers)?.client.teams().get(&id)?;
        Ok(Json(model::team_of(&db, &team, true)?).into_response())
    })
    .await
}

async fn delete_team(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        caller(&db, &headers)?.client.teams().delete(&id)?;
        Ok(crate::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewMembership {
    user_id: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn create_membership(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(team): Path<String>,
    Body(b): Body<NewMembership>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let roles: Vec<&str> = b.roles.iter().map(String::as_str).collect();
        let client = caller(&db, &headers)?.client;
        let m = client
            .teams()
            .create_membership(&team, &b.user_id, &roles)?;
        Ok((
            StatusCode::CREATED,
            Json(model::membership_of(
                &client,
                &m,
                &db.root().teams().get(&team)?.name,
            )),
        )
            .into_response())
    })
    .await
}

async fn list_memberships(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(team): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    blocking(move || {
        let params = list::params(raw.as_deref(), true)?;
        let client = caller(&db, &headers)?.client;
        let all = client.teams().list_memberships(&team)?;
        // One team: its name is read once.
        let name = db.root().teams().get(&team)?.name;
        let memberships = all
            .iter()
            .map(|m| model::membership_of(&client, m, &name))
            .collect();
        let answer = list::answer(memberships, &params, &list::MEMBERSHIPS, "memberships")?;
        Ok(Json(answer).into_response())
    })
    .await
}

async fn delete_membership(
    State(db): State<Db>,
    headers: HeaderMap,
    Path((team, mid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        caller(&db, &headers)?
            .client
            .teams()
            .delete_membership(&team, &mid)?;
        Ok(crate::no_content())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prefs {
    prefs: Map<String, Value>,
}

async fn get_user_prefs(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || Ok(Json(caller(&db, &headers)?.client.users().prefs(&id)?).into_response()))
        .await
}

async fn update_user_prefs(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Prefs>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let prefs = caller(&db, &headers)?
            .client
            .users()
            .update_prefs(&id, b.prefs)?;
        Ok(Json(prefs).into_response())
    })
    .await
}

async fn get_team_prefs(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || Ok(Json(caller(&db, &headers)?.client.teams().prefs(&id)?).into_response()))
        .await
}

async fn update_team_prefs(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<Prefs>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let prefs = caller(&db, &headers)?
            .client
            .teams()
            .update_prefs(&id, b.prefs)?;
        Ok(Json(prefs).into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewJwt {
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    duration: Option<u32>,
}

/// `POST /v1/users/{id}/jwts`: a token for the user from their session `sessionId` (the
/// most recent with `recent()` or none), for `duration` seconds (default 900).
async fn create_user_jwt(
    State(db): State<Db>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<NewJwt>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let session = b.session_id.as_deref().filter(|s| *s != "recent()");
        let ttl = b.duration.map(|d| time::Duration::seconds(i64::from(d)));
        let jwt = caller(&db, &headers)?
            .client
            .users()
            .create_jwt(&id, session, ttl)?;
        Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({"jwt": jwt.jwt})),
        )
            .into_response())
    })
    .await
}
