//! The Nomad-compatible HTTP API (`/v1/...`), served with axum.
//!
//! Handlers are thin: decode the request (case-insensitive keys where Nomad clients rely on
//! it), send a `state::Command` or read a snapshot, encode Nomad's reply shape. Routes live
//! in `router`; errors become status codes only in `error`.
//!
//! Child job IDs contain `/`, so everything under `/v1/job/` is one wildcard route that
//! `job::route` splits by known suffix (`/dispatch`, `/summary`, ...), as Nomad does.

mod agent;
mod allocations;
mod blocking;
mod error;
mod evaluations;
mod files;
mod job;
mod jobs;
pub mod metrics;
mod query;
mod sandbox;
mod system;
pub mod wire;

pub use error::ApiError;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tower::ServiceExt as _;

use std::net::SocketAddr;

use axum::routing::{any, get, put};
use axum::Router;

use crate::state::StateHandle;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub state: StateHandle,
    /// The server's clock (times in answers, garbage collection on request).
    pub clock: crate::clock::Clock,
    /// The address the API listens on (for `/v1/status/leader`, `/v1/agent/self`).
    pub advertise: SocketAddr,
    pub node_name: String,
    /// The backend: its capabilities (what a job may use), task sandboxes (logs and files
    /// endpoints), and how it describes itself (`/v1/agent/self`).
    pub cluster: crate::cluster::ClusterView,
}

/// All routes of the service.
/// Only what Mesos agents fetch (rendered templates, payloads of active tasks): served on
/// its own listener when the API itself must stay private (`dispatch run -master`).
pub fn sandbox_router(app: AppState) -> Router {
    Router::new()
        .route("/v1/sandbox/{task_id}/{*path}", get(sandbox::file))
        .with_state(app)
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/v1/jobs", any(jobs::jobs))
        .route("/v1/jobs/parse", any(jobs::parse))
        .route("/v1/job/{*id}", any(job::route))
        .route("/v1/sandbox/{task_id}/{*path}", get(sandbox::file))
        .route("/v1/allocations", get(allocations::list))
        .route("/v1/system/gc", put(system::gc))
        .route("/v1/evaluations", get(evaluations::list))
        .route("/v1/evaluation/{*id}", get(evaluations::route))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/status/peers", get(agent::peers))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/health", get(agent::health))
        .route("/v1/search", any(agent::search))
        .route("/metrics", get(metrics::prometheus))
        .route("/v1/metrics", get(metrics::v1))
        .fallback(agent::not_found)
        .layer(axum::middleware::from_fn(metrics::track_http))
        .with_state(app)
}

/// The API from the moment the server binds, before its state is loaded: every request is
/// answered `503` with `Retry-After` (and `/v1/agent/health` says "loading") until a router
/// is sent on the returned channel; from then on every request goes to that router.
pub fn starting_router(what: &str) -> (watch::Sender<Option<Router>>, Router) {
    let (tx, rx) = watch::channel(None::<Router>);
    let what = what.to_string();
    let router = Router::new().fallback(move |request: Request| {
        let current = rx.borrow().clone();
        let what = what.clone();
        async move {
            match current {
                Some(router) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => loading(request.uri().path(), &what),
            }
        }
    });
    (tx, router)
}

/// The answer while loading: Nomad's health shape with `ok: false` on `/v1/agent/health`,
/// a plain 503 elsewhere; both with `Retry-After`.
fn loading(path: &str, what: &str) -> Response {
    let error = ApiError::Loading(what.to_string());
    if path != "/v1/agent/health" {
        return error.into_response();
    }
    let body = serde_json::json!({"server": {"ok": false, "message": "loading"}});
    let mut response = (error.status(), axum::Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(error::LOADING_RETRY_AFTER_SECONDS),
    );
    response
}
