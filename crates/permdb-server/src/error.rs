//! Appwrite's JSON error body (`message`, `code`, `type`, `version`) and the HTTP status
//! of every permdb error; refusals are traced without secrets.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use permdb::{Denial, Error, ResourceKind};

/// The API version reported in error bodies (Appwrite's response format permdb follows).
pub(crate) const API_VERSION: &str = "1.6.0";

/// An error answered as Appwrite does: a status and a JSON body naming its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Appwrite's error type, such as `document_not_found`.
    pub kind: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, type and message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 400 `general_argument_invalid`: a malformed body, header or parameter.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "general_argument_invalid", message)
    }

    /// 500 `general_unknown`: permdb failed, not the request.
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "general_unknown",
            message,
        )
    }

    /// 404 `general_route_not_found`.
    pub(crate) fn no_route() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "general_route_not_found",
            "The requested route was not found.",
        )
    }

    /// 405 `general_not_implemented`: the path exists, not with this method.
    pub(crate) fn no_method() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "general_not_implemented",
            "This method is not served on this route.",
        )
    }
}

fn not_found_kind(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Schema => "database_not_found",
        ResourceKind::Collection => "collection_not_found",
        ResourceKind::Document => "document_not_found",
        ResourceKind::User => "user_not_found",
        ResourceKind::Session => "user_session_not_found",
        ResourceKind::ApiKey => "key_not_found",
        ResourceKind::Team => "team_not_found",
        ResourceKind::Membership => "membership_not_found",
        ResourceKind::Attribute => "attribute_not_found",
        ResourceKind::Index => "index_not_found",
        // `ResourceKind` may grow (it is non-exhaustive): a kind this server does not
        // know yet is answered as a document's.
        _ => "document_not_found",
    }
}

fn conflict_kind(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Schema => "database_already_exists",
        ResourceKind::Collection => "collection_already_exists",
        ResourceKind::User => "user_already_exists",
        ResourceKind::Team => "team_already_exists",
        ResourceKind::Membership => "team_invite_already_exists",
        ResourceKind::Attribute => "attribute_already_exists",
        ResourceKind::Index => "index_already_exists",
        // A document id, or a unique index's values held by another document.
        _ => "document_already_exists",
    }
}

/// Appwrite's type for each reason of a refusal: a credential without the scope a route
/// needs (an API key without it, or a user or guest on an admin route) is
/// `general_unauthorized_scope`, as Appwrite's scope check answers; permissions not
/// granted, a credential refused and the wrong kind of client are `user_unauthorized`.
fn denial_kind(reason: Denial) -> &'static str {
    match reason {
        Denial::InvalidCredentials => "user_invalid_credentials",
        Denial::UserBlocked => "user_blocked",
        Denial::MissingScope => "general_unauthorized_scope",
        _ => "user_unauthorized",
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let message = e.to_string();
        let (status, kind) = match &e {
            Error::NotFound { kind, .. } => (StatusCode::NOT_FOUND, not_found_kind(*kind)),
            Error::Unauthorized { reason, .. } => (StatusCode::UNAUTHORIZED, denial_kind(*reason)),
            Error::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "user_jwt_invalid"),
            Error::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "general_query_invalid"),
            Error::InvalidDocument(_) => (StatusCode::BAD_REQUEST, "document_invalid_structure"),
            Error::InvalidPermission(_) | Error::InvalidRole(_) => {
                (StatusCode::BAD_REQUEST, "general_argument_invalid")
            }
            Error::InvalidId(_) | Error::InvalidArgument(_) | Error::LimitExceeded(_) => {
                (StatusCode::BAD_REQUEST, "general_argument_invalid")
            }
            Error::TooManyRequests(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "general_rate_limit_exceeded")
            }
            Error::Conflict { kind, .. } => (StatusCode::CONFLICT, conflict_kind(*kind)),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "general_unknown"),
        };
        ApiError::new(status, kind, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), kind = self.kind, message = %self.message, "request failed");
        } else {
            // Messages name ids and faults, never secrets: secrets are redacted where
            // they are parsed, and tokens are never echoed.
            tracing::info!(status = self.status.as_u16(), kind = self.kind, message = %self.message, "request refused");
        }
        let body = json!({
            "message": self.message,
            "code": self.status.as_u16(),
            "type": self.kind,
            "version": API_VERSION,
        });
        (self.status, Json(body)).into_response()
    }
}
