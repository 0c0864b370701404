//! Controls and counters over HTTP, for a double running in its own process (the
//! `mesos-double` binary, driven by a benchmark): `POST /double/agents` adds agents,
//! `GET /double/counters` says what the framework did. Not part of the Mesos API.

use std::collections::BTreeMap;

use axum::extract::{Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::http::text;
use crate::state::Shared;

/// `POST /double/agents?count=N&cpus=C&mem=MB&disk=MB[&first=K]`: agents `agent-K` ..
/// `agent-(K+N-1)` (K defaults to 1), each with these free resources, offered at once (or
/// at the next allocation cycle). Adding to an existing agent adds to its free resources.
pub(crate) async fn add_agents(
    AxState(st): AxState<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let num = |key: &str, default: f64| -> Result<f64, String> {
        match q.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{key} must be a number >= 0, got {v:?}")),
        }
    };
    let parsed = (|| {
        Ok::<_, String>((
            num("count", 1.0)? as usize,
            num("first", 1.0)? as usize,
            num("cpus", 8.0)?,
            num("mem", 16384.0)?,
            num("disk", 100_000.0)?,
        ))
    })();
    let (count, first, cpus, mem, disk) = match parsed {
        Ok(v) => v,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let mut s = st.lock();
    for i in first..first + count {
        s.add_resources(&format!("agent-{i}"), cpus, mem, disk);
    }
    json_reply(&json!({ "agents": s.agents.len() }))
}

/// `GET /double/counters`: calls answered 2xx by type, events sent by type, status updates
/// sent by state (resends included), offers sent, tasks launched, acknowledgements, and
/// violations, as one JSON object.
pub(crate) async fn counters(AxState(st): AxState<Shared>) -> Response {
    let s = st.lock();
    let mut calls: BTreeMap<&str, u64> = BTreeMap::new();
    for c in s.calls.iter().filter(|c| c.status / 100 == 2) {
        *calls
            .entry(c.call_type.as_deref().unwrap_or("?"))
            .or_default() += 1;
    }
    let body: Value = json!({
        "calls": calls,
        "events": s.counts.events,
        "updates": s.counts.updates,
        "offers_sent": s.counts.offers,
        "tasks_launched": s.launched.len(),
        "acks": s.acks.len(),
        "violations": s.violations.len(),
    });
    json_reply(&body)
}

fn json_reply(body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
