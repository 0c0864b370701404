//! Agent and cluster status endpoints Nomad clients call before anything else.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::query::{json_reply, Query};
use super::AppState;

/// The leader's `host:port`; `""` while none leads (an election is under way).
pub async fn leader(State(app): State<AppState>) -> Response {
    let leader = match &app.role {
        None => app.advertise.to_string(),
        Some(role) => role
            .borrow()
            .leader
            .as_ref()
            .map(|p| p.address.clone())
            .unwrap_or_default(),
    };
    json_reply(&leader, app.state.committed_index(), false)
}

/// Every server seen recently on the shared store (`host:port`), this one included.
pub async fn peers(State(app): State<AppState>) -> Response {
    let peers: Vec<String> = match &app.role {
        None => vec![app.advertise.to_string()],
        Some(role) => role
            .borrow()
            .peers
            .iter()
            .map(|p| p.address.clone())
            .collect(),
    };
    json_reply(&peers, app.state.committed_index(), false)
}

/// `leader` or `standby`.
fn role_name(app: &AppState) -> &'static str {
    match app.leading() {
        None | Some(true) => "leader",
        Some(false) => "standby",
    }
}

pub async fn agent_self(State(app): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let pretty = Query::parse(raw.as_deref()).flag("pretty").unwrap_or(false);
    let body = json!({
        "config": {
            "Region": "global",
            "Datacenter": "dc1",
            "NodeName": app.node_name,
            "Version": {"Version": env!("CARGO_PKG_VERSION"), "VersionMetadata": "dispatch"},
            "UI": {"ShowCLIHints": false},
            "Dispatch": dispatch_block(&app),
        },
        "member": {
            "Name": format!("{}.global", app.node_name),
            "Addr": app.advertise.ip().to_string(),
            "Port": app.advertise.port(),
            "Status": "alive",
            "Tags": {"role": "nomad", "region": "global", "dc": "dc1", "build": env!("CARGO_PKG_VERSION")},
        },
        "Role": role_name(&app),
        "stats": {
            "dispatch": {"index": app.state.committed_index().to_string()},
        },
    });
    json_reply(&body, app.state.committed_index(), pretty)
}

/// The backend's own description, and its capabilities.
fn dispatch_block(app: &AppState) -> serde_json::Value {
    let Some(cluster) = app.cluster.get() else {
        if app.leading() == Some(true) {
            return json!({"Backend": "starting (this server was just elected)"});
        }
        return json!({"Backend": "none (this server stands by; the leader runs the backend)"});
    };
    let mut block = cluster.status.describe();
    block.insert(
        "Capabilities".into(),
        serde_json::to_value(&cluster.capabilities).unwrap_or_default(),
    );
    block.insert("Security".into(), security_block(&app.security));
    block.into()
}

/// How the server is protected, as an operator checks it.
fn security_block(security: &super::Security) -> serde_json::Value {
    let mut block = json!({
        "TLS": security.tls.is_some(),
        "VerifyClients": security.tls.unwrap_or(false),
        "DriverAllowlist": security.drivers.allowed(),
        "MaxPending": security.backpressure.max_pending,
        "DispatchRate": security.backpressure.dispatch_rate.map(|r| r.to_string()),
        "Open": security.open,
    });
    if security.open {
        block["Warning"] = json!(
            "THE API IS OPEN: it listens beyond this machine with ACLs off \
             (-acl-enabled=false); anyone who can reach it can register and run jobs"
        );
    }
    block
}

pub async fn health(State(app): State<AppState>) -> Response {
    json_reply(
        &json!({"server": {"ok": true, "message": "ok"}}),
        app.state.committed_index(),
        false,
    )
}

/// `PUT /v1/search {"Prefix", "Context"}`: prefix search over jobs and evaluations.
pub async fn search(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid search request: {e}")))?;
    let prefix = super::jobs::field(&req, "Prefix")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    const LIMIT: usize = 20;
    let state = app.state.read();
    let jobs: Vec<String> = super::jobs::stubs_with_prefix(&state, &prefix, false)
        .take(LIMIT + 1)
        .map(|s| s.id)
        .collect();
    let evals: Vec<String> = state
        .all_evals()
        .map(|(u, _)| u.to_string())
        .filter(|id| id.starts_with(&prefix) && !prefix.is_empty())
        .take(LIMIT + 1)
        .collect();
    let truncated_jobs = jobs.len() > LIMIT;
    let truncated_evals = evals.len() > LIMIT;
    let body = json!({
        "Matches": {
            "jobs": jobs.into_iter().take(LIMIT).collect::<Vec<_>>(),
            "evals": evals.into_iter().take(LIMIT).collect::<Vec<_>>(),
            "allocs": [], "nodes": [], "deployments": [],
        },
        "Truncations": {"jobs": truncated_jobs, "evals": truncated_evals},
    });
    Ok(json_reply(&body, state.index(), false))
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "Invalid URL {:?}: no such endpoint; see README.md for the API",
        uri.path()
    ))
}
