//! The one place errors become HTTP status codes.
//!
//! Bodies are `text/plain` with the bare message, as Nomad sends them (clients show or match
//! the text). Codes: 400 for anything the caller can fix (Nomad answers 500 for dispatch
//! validation; we keep its texts and answer 400), 404 for unknown objects, 405 for a wrong
//! method, 503 while the state is still loading at start-up (with `Retry-After`) or shutting
//! down, 500 only for our own faults.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Invalid method")]
    MethodNotAllowed,
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Internal(String),
    /// The server has started but is still loading its state from the data dir.
    #[error("Dispatch is loading its state ({0}); retry shortly")]
    Loading(String),
    /// This server cannot answer now (a standby with no leader to forward to, ...).
    #[error("{0}")]
    Unavailable(String),
}

/// Seconds a client is told to wait (`Retry-After`) while the state loads.
pub const LOADING_RETRY_AFTER_SECONDS: u32 = 1;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Loading(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::State(e) => match e {
                StateError::ParentNotFound | StateError::JobNotFound => StatusCode::NOT_FOUND,
                StateError::WriterGone
                | StateError::NotLeader
                | StateError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                StateError::NotLaunchable(..) => StatusCode::CONFLICT,
                StateError::MissingJobId
                | StateError::NotParameterized(_)
                | StateError::Stopped(_)
                | StateError::PayloadRequired
                | StateError::PayloadForbidden
                | StateError::PayloadTooLarge(_)
                | StateError::UnpermittedMeta(_)
                | StateError::MissingMeta(_)
                | StateError::Priority
                | StateError::CannotUnparameterize
                | StateError::CannotParameterize
                | StateError::ChildIsReadOnly(_)
                | StateError::Invalid(_)
                | StateError::Render(_)
                | StateError::AclBootstrapDone(_)
                | StateError::Acl(_) => StatusCode::BAD_REQUEST,
                StateError::BacklogFull(_) => StatusCode::TOO_MANY_REQUESTS,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, ApiError::Loading(_)) {
            tracing::error!("{self}");
        }
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response();
        if matches!(self, ApiError::Loading(_)) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(LOADING_RETRY_AFTER_SECONDS),
            );
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            // a full backlog drains as tasks launch: ask again in a few seconds
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(super::backpressure::BACKLOG_RETRY_AFTER),
            );
        }
        response
    }
}
