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
mod forward;
mod job;
mod jobs;
pub mod metrics;
mod query;
mod sandbox;
mod system;
pub mod wire;

pub use error::ApiError;

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
    /// For forwarding to the leader.
    pub http: reqwest::Client,
}

impl AppState {
    /// The backend, or 503 on a standby.
    pub fn cluster(&self) -> Result<crate::cluster::ClusterView, ApiError> {
        self.cluster.get().ok_or_else(|| {
            ApiError::Unavailable(
                "this server stands by and runs no backend; ask the leader (/v1/status/leader)"
                    .into(),
            )
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
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            forward::to_leader,
        ))
        .layer(axum::middleware::from_fn(metrics::track_http))
        .with_state(app)
}
