//! The Nomad-compatible HTTP API (`/v1/...`), served with axum.
//!
//! Handlers are thin: decode the request (case-insensitive keys where Nomad clients rely on
//! it), send a `state::Command` or read a snapshot, encode Nomad's reply shape. Routes live
//! in `router`; errors become status codes only in `error`.
//!
//! Child job IDs contain `/`, so everything under `/v1/job/` is one wildcard route that
//! `job::route` splits by known suffix (`/dispatch`, `/summary`, ...), as Nomad does.

mod acl;
mod agent;
mod allocations;
pub mod auth;
pub mod backpressure;
mod blocking;
mod error;
mod evaluations;
pub mod events;
mod files;
mod forward;
pub use forward::to_leader as forward_to_leader;
pub use forward::Forwarding;
mod job;
mod jobs;
pub mod metrics;
mod query;
mod sandbox;
mod system;
pub mod wire;

pub use error::ApiError;
pub use files::{any_task_dir, sandbox_error, task_dir, task_ended};
pub use job::{decode_payload, render_tasks, submit_dispatch};
pub use query::{query_pairs, Query};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tower::ServiceExt as _;

use std::net::SocketAddr;
use std::sync::Arc;

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
    /// endpoints), and how it describes itself (`/v1/agent/self`). Empty on a standby (only
    /// the leader runs a backend).
    pub cluster: ClusterSlot,
    /// On a store several servers share: who leads (standbys forward writes to it).
    /// `None`: this server is alone and always leads.
    pub role: Option<tokio::sync::watch::Receiver<crate::leadership::Role>>,
    /// For forwarding to the leader, and believing what other servers forward.
    pub forwarding: std::sync::Arc<Forwarding>,
    /// Who may do what, and the limits on it.
    pub security: std::sync::Arc<Security>,
}

impl AppState {
    /// The backend, or 503 on a standby.
    pub fn cluster(&self) -> Result<crate::cluster::ClusterView, ApiError> {
        self.cluster.get().ok_or_else(|| {
            ApiError::Unavailable(if self.leading() == Some(true) {
                "this server was just elected and its backend is starting; retry in a moment".into()
            } else {
                "this server stands by and runs no backend; ask the leader (/v1/status/leader)"
                    .into()
            })
        })
    }

    /// `Some(true)` when this server leads a group of servers, `Some(false)` on a standby,
    /// `None` when it is alone.
    pub fn leading(&self) -> Option<bool> {
        self.role.as_ref().map(|r| r.borrow().leading)
    }
}

/// The backend once it runs (at start, or when this server is elected).
#[derive(Clone, Default)]
pub struct ClusterSlot(Arc<parking_lot::RwLock<Option<crate::cluster::ClusterView>>>);

impl ClusterSlot {
    pub fn with(view: crate::cluster::ClusterView) -> ClusterSlot {
        let slot = ClusterSlot::default();
        slot.set(view);
        slot
    }

    pub fn set(&self, view: crate::cluster::ClusterView) {
        *self.0.write() = Some(view);
    }

    pub fn get(&self) -> Option<crate::cluster::ClusterView> {
        self.0.read().clone()
    }
}

/// The server's security settings as the API applies them.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Task drivers a job may use (checked at registration).
    pub drivers: crate::model::drivers::DriverPolicy,
    pub backpressure: backpressure::Backpressure,
    /// `Some(verifies client certificates)` when the API serves HTTPS.
    pub tls: Option<bool>,
    /// Listening beyond loopback with ACLs off, on purpose.
    pub open: bool,
    /// Every request needs a token (`-acl-enabled`).
    pub acl: bool,
    /// Dispatches per caller (`-dispatch-rate`).
    pub limiter: Option<std::sync::Arc<backpressure::RateLimiter>>,
    /// Signs and checks sandbox file URLs.
    pub fetch_key: Option<crate::cluster::fetch_urls::FetchKey>,
}

/// Decode a dispatch body as `PUT /v1/job/<id>/dispatch` does (the fuzzers use it).
pub fn decode_dispatch(
    id: &str,
    raw_query: Option<&str>,
    body: &[u8],
) -> Result<crate::state::DispatchRequest, ApiError> {
    job::decode_dispatch_body(id, &query::Query::parse(raw_query), body)
}

/// Decode a register body (`{"Job": {...}}`) as `PUT /v1/jobs` does (the fuzzers use it).
pub fn decode_register(body: &[u8]) -> Result<crate::model::Job, ApiError> {
    jobs::decode_register_body(body)
}

/// The largest request body read (axum's default limit, kept).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// All routes of the service.
/// Only what Mesos agents fetch (rendered templates, payloads of active tasks): served on
/// its own listener when the API itself must stay private (`dispatch run -master`).
pub fn sandbox_router(app: AppState) -> Router {
    Router::new()
        .route(SANDBOX_ROUTE, get(sandbox::file))
        .with_state(app)
}

/// Where agents fetch sandbox files: the task, its URL token, the file.
pub const SANDBOX_ROUTE: &str = "/v1/sandbox/{task_id}/{token}/{*path}";

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/v1/jobs", any(jobs::jobs))
        .route("/v1/jobs/parse", any(jobs::parse))
        .route("/v1/job/{*id}", any(job::route))
        .route(SANDBOX_ROUTE, get(sandbox::file))
        .route("/v1/allocations", get(allocations::list))
        .route("/v1/system/gc", put(system::gc))
        .route("/v1/evaluations", get(evaluations::list))
        .route("/v1/evaluation/{*id}", get(evaluations::route))
        .route("/v1/event/stream", get(events::stream))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/status/peers", get(agent::peers))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/health", get(agent::health))
        .route("/v1/search", any(agent::search))
        .route("/metrics", get(metrics::prometheus))
        .route("/v1/metrics", get(metrics::v1))
        .route("/v1/acl/bootstrap", any(acl::bootstrap))
        .route("/v1/acl/policies", get(acl::policies))
        .route("/v1/acl/policy/{name}", any(acl::policy))
        .route("/v1/acl/tokens", get(acl::tokens))
        .route("/v1/acl/token", any(acl::create_token))
        .route("/v1/acl/token/self", get(acl::token_self))
        .route("/v1/acl/token/{accessor}", any(acl::token))
        // the edge: every routed request is authorized here, before its handler
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::edge,
        ))
        .fallback(agent::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            forward::to_leader,
        ))
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
