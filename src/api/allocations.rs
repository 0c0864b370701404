//! `GET /v1/allocations`: allocations across every dispatch, as Nomad lists them.
//!
//! Nomad's `prefix` (allocation ID prefix) and two Dispatch extensions: `job` (a parent or
//! child job ID prefix: one range of the dispatch map, since child IDs start with their
//! parent's) and `active=true` (only running or pending allocations, found through the
//! state's `active` set of dispatches rather than a scan of every dispatch).

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::blocking;
use super::error::ApiError;
use super::query::{json_reply, Query};
use super::wire::Allocation;
use super::AppState;
use crate::model::Dispatch;
use crate::state::State as Snapshot;

pub async fn list(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    let prefix = query.get("prefix").unwrap_or_default().to_string();
    let job = query.get("job").unwrap_or_default().to_string();
    let active = query.flag("active")?;
    let (allocs, index) = blocking::read(&app.state, &query, |state| {
        let allocs: Vec<Allocation> = dispatches(state, &job, active)
            .filter(|d| !d.runs.is_empty())
            .flat_map(Allocation::of_dispatch)
            .filter(|a| !active || matches!(a.client_status.as_str(), "running" | "pending"))
            .filter(|a| a.id.starts_with(&prefix))
            .collect();
        Ok((allocs, state.index()))
    })
    .await?;
    Ok(json_reply(&allocs, index, query.flag("pretty")?))
}

/// The dispatches to look at, in ID order.
fn dispatches<'a>(
    state: &'a Snapshot,
    job: &'a str,
    active: bool,
) -> Box<dyn Iterator<Item = &'a Dispatch> + 'a> {
    if active {
        return Box::new(state.active().filter(move |d| d.id.starts_with(job)));
    }
    Box::new(state.dispatches_with_prefix(job))
}
