//! `GET /v1/sandbox/<task id>/<token>/<path>`: one sandbox file of a launched task (a
//! rendered template, the dispatch payload), for the Mesos fetcher.
//!
//! On Mesos the command executor does not unpack `TaskInfo.data`, so the backend turns each
//! sandbox file into a fetcher URI pointing here (`cluster::fetch_urls`). The URL is the
//! capability: its token is the HMAC of the task ID under the data dir's key, so no ACL
//! token is asked for. A wrong token, a task that is not active, a file the task does not
//! have: all answer the same 404, which says nothing about which. The file is rendered
//! again from the stored dispatch (rendering is pure: the same attempt gives the same
//! bytes).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;
use crate::model::Dispatch;
use crate::render::{render_task, RenderInput, SandboxFiles};

pub async fn file(
    State(app): State<AppState>,
    Path((task_id, token, path)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let signed = app
        .security
        .fetch_key
        .as_ref()
        .is_some_and(|key| key.verify(&task_id, &token));
    if !signed {
        return Err(not_found());
    }
    let dispatch = active_dispatch(&app, &task_id)?;
    let payload = if dispatch.payload_len > 0 {
        app.state
            .payload(&dispatch.id)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot read the payload: {e}")))?
    } else {
        None
    };
    let bytes = render_file(&dispatch, &task_id, &path, payload.as_deref())?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Bytes::from(bytes),
    )
        .into_response())
}

fn active_dispatch(app: &AppState, task_id: &str) -> Result<Dispatch, ApiError> {
    let s = app.state.read();
    s.run_of(task_id)
        .map(|(d, _)| d.clone())
        .ok_or_else(not_found)
}

/// The one answer for every URL that does not name an active task's file.
fn not_found() -> ApiError {
    ApiError::NotFound("no such sandbox file".into())
}

fn render_file(
    d: &Dispatch,
    task_id: &str,
    path: &str,
    payload: Option<&[u8]>,
) -> Result<Vec<u8>, ApiError> {
    let run = d
        .runs
        .iter()
        .find(|r| &*r.task_id == task_id)
        .ok_or_else(not_found)?;
    let group = d
        .job
        .task_groups
        .get(run.slot.group as usize)
        .ok_or_else(|| ApiError::Internal("the job has no such group".into()))?;
    let task = group
        .tasks
        .get(run.slot.task as usize)
        .ok_or_else(|| ApiError::Internal("the group has no such task".into()))?;
    let info = render_task(&RenderInput {
        dispatch: d,
        group,
        instance: run.slot.instance,
        task,
        attempt: run.attempt,
        payload,
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let files = match info.data.as_deref() {
        Some(data) => SandboxFiles::decode(data).map_err(ApiError::Internal)?,
        None => SandboxFiles::default(),
    };
    // A file rendered after the fetch has no bytes here: the agent makes it.
    let file = files
        .files
        .iter()
        .find(|f| f.path == path && f.content.is_some())
        .ok_or_else(not_found)?;
    file.bytes().map_err(ApiError::Internal)
}
