//! A dispatch's logs and sandbox files (Nomad's `alloc logs` / `alloc fs`, mesos-cli's
//! `read` / `list`), read through the backend's `cluster::Sandboxes`: the same endpoints
//! whichever backend runs the tasks.
//!
//! `GET /v1/job/<dispatch>/logs?task=T&type=stdout|stderr&tail=N&follow=true` streams a
//! task's output (the latest attempt's). `GET /v1/job/<dispatch>/fs?path=P` lists a
//! directory (Nomad's `AllocFileInfo` fields) or returns a file. Paths: `<task>/...` is that
//! task's sandbox (latest attempt), `alloc/...` the directory its group shares.

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::query::{json_reply, Query};
use super::AppState;
use crate::cluster::{Area, FileEntry, Listing, Location, SandboxError, SandboxRef};
use crate::model::{Dispatch, TaskRun};

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct FileInfo {
    name: String,
    is_dir: bool,
    size: u64,
    file_mode: String,
    mod_time: String,
}

impl FileInfo {
    fn of(e: FileEntry) -> FileInfo {
        FileInfo {
            name: e.name,
            is_dir: e.is_dir,
            size: e.size,
            file_mode: e.mode,
            mod_time: e.modified_ns.map(crate::clock::rfc3339).unwrap_or_default(),
        }
    }
}

fn dispatch(app: &AppState, id: &str) -> Result<Dispatch, ApiError> {
    app.state
        .read()
        .dispatch(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("dispatched job {id:?} not found")))
}

/// The sandbox of the latest attempt of `task` (by name; the only task when `None`).
pub async fn task_dir(
    app: &AppState,
    d: &Dispatch,
    task: Option<&str>,
) -> Result<(Location, String), ApiError> {
    let names: Vec<&str> = d
        .job
        .task_groups
        .iter()
        .flat_map(|g| g.tasks.iter().map(|t| t.name.as_str()))
        .collect();
    let name = match task {
        Some(t) if names.contains(&t) => t.to_string(),
        Some(t) => {
            return Err(ApiError::BadRequest(format!(
                "dispatch {:?} has no task {t:?}; its tasks: {}",
                d.id,
                names.join(", ")
            )))
        }
        None if names.len() == 1 => names[0].to_string(),
        None => {
            return Err(ApiError::BadRequest(format!(
                "dispatch {:?} has several tasks; name one: {}",
                d.id,
                names.join(", ")
            )))
        }
    };
    let run = d
        .runs
        .iter()
        .rev()
        .find(|r| {
            d.job
                .task_groups
                .get(r.slot.group as usize)
                .and_then(|g| g.tasks.get(r.slot.task as usize))
                .is_some_and(|t| t.name == name)
        })
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "task {name:?} of {:?} has not started yet (status {})",
                d.id,
                d.status.as_str()
            ))
        })?;
    Ok((run_sandbox(app, d, run, Area::Task).await?, name))
}

/// The directory of one run (its own, or the `alloc/` its group shares).
async fn run_sandbox(
    app: &AppState,
    d: &Dispatch,
    run: &TaskRun,
    area: Area,
) -> Result<Location, ApiError> {
    let run = SandboxRef::of(d, run);
    app.cluster()?
        .sandboxes
        .locate(&run, area)
        .await
        .map_err(sandbox_error)
}

/// A sandbox path the user named that leaves the sandbox is a bad request; the rest was
/// not found.
pub fn sandbox_error(e: SandboxError) -> ApiError {
    match e {
        SandboxError::BadPath(m) => ApiError::BadRequest(m),
        SandboxError::NotFound(m) | SandboxError::Unreadable(m) => ApiError::NotFound(m),
    }
}

pub async fn logs(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let d = dispatch(app, id)?;
    let (dir, task) = task_dir(app, &d, query.get("task").filter(|t| !t.is_empty())).await?;
    let kind = match query.get("type").unwrap_or("stdout") {
        "stdout" => "stdout",
        "stderr" => "stderr",
        other => {
            return Err(ApiError::BadRequest(format!(
                "log type {other:?}: expected stdout or stderr"
            )))
        }
    };
    let path = dir.join(kind).map_err(sandbox_error)?;
    let sandboxes = app.cluster()?.sandboxes.clone();
    let content = sandboxes.read(&path, 0).await.unwrap_or_default();
    let start = match query.get("tail") {
        Some(n) => {
            let n: usize = n.parse().map_err(|_| {
                ApiError::BadRequest(format!("tail {n:?}: expected a number of lines"))
            })?;
            tail_offset(&content, n)
        }
        None => 0,
    };
    if !query.flag("follow")? {
        return Ok(text(content[start..].to_vec()));
    }
    let state = app.state.clone();
    let id = id.to_string();
    let ended = std::sync::Arc::new(move || task_ended(&state, &id, &task));
    let first = futures_util::stream::once(std::future::ready(content[start..].to_vec()));
    let rest = sandboxes.follow(path, content.len() as u64, ended);
    let stream = futures_util::StreamExt::map(futures_util::StreamExt::chain(first, rest), |b| {
        Ok::<_, std::io::Error>(Bytes::from(b))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// True when the task's latest run is over (or the dispatch is gone).
pub fn task_ended(state: &crate::state::StateHandle, id: &str, task: &str) -> bool {
    let s = state.read();
    let Some(d) = s.dispatch(id) else {
        return true;
    };
    let latest = d.runs.iter().rev().find(|r| {
        d.job
            .task_groups
            .get(r.slot.group as usize)
            .and_then(|g| g.tasks.get(r.slot.task as usize))
            .is_some_and(|t| t.name == task)
    });
    latest.is_none_or(|r| !r.is_active()) && d.status.is_terminal()
}

/// Byte offset where the last `n` lines start.
fn tail_offset(content: &[u8], n: usize) -> usize {
    if n == 0 {
        return content.len();
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

fn text(bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        bytes,
    )
        .into_response()
}

pub async fn fs(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let d = dispatch(app, id)?;
    let rel = query
        .get("path")
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
    let (first, rest) = rel.split_once('/').unwrap_or((rel.as_str(), ""));
    let target = if first.is_empty() {
        // The root: the shared alloc dir and one directory per task.
        let mut entries = vec![FileInfo {
            name: "alloc".into(),
            is_dir: true,
            size: 0,
            file_mode: "drwxr-xr-x".into(),
            mod_time: String::new(),
        }];
        for g in &d.job.task_groups {
            for t in &g.tasks {
                entries.push(FileInfo {
                    name: t.name.clone(),
                    is_dir: true,
                    size: 0,
                    file_mode: "drwxr-xr-x".into(),
                    mod_time: String::new(),
                });
            }
        }
        return Ok(json_reply(&entries, d.modify_index, query.flag("pretty")?));
    } else if first == "alloc" {
        any_task_dir(app, &d).await?.join(rest)
    } else {
        let (dir, _) = task_dir(app, &d, Some(first)).await?;
        dir.join(rest)
    }
    .map_err(sandbox_error)?;
    let sandboxes = &app.cluster()?.sandboxes;
    match sandboxes.browse(&target).await {
        Ok(Listing::Dir(entries)) => {
            let mut entries: Vec<FileInfo> = entries.into_iter().map(FileInfo::of).collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(json_reply(&entries, d.modify_index, query.flag("pretty")?))
        }
        Ok(Listing::File) => sandboxes
            .read(&target, 0)
            .await
            .map(text)
            .map_err(|e| ApiError::Internal(format!("reading {rel:?}: {e}"))),
        Err(SandboxError::NotFound(e)) => {
            Err(ApiError::NotFound(format!("{rel:?} in {id:?}: {e}")))
        }
        Err(e) => Err(ApiError::Internal(format!("listing {rel:?}: {e}"))),
    }
}

/// The directory the dispatch's group shares (`alloc/`), seen from its latest run.
pub async fn any_task_dir(app: &AppState, d: &Dispatch) -> Result<Location, ApiError> {
    let run = d.runs.last().ok_or_else(|| {
        ApiError::NotFound(format!(
            "{:?} has not started yet (status {})",
            d.id,
            d.status.as_str()
        ))
    })?;
    run_sandbox(app, d, run, Area::Alloc).await
}

#[cfg(test)]
mod tests {
    use super::tail_offset;

    #[test]
    fn tail_finds_the_last_lines() {
        let s = b"a\nb\nc\n";
        assert_eq!(&s[tail_offset(s, 2)..], b"b\nc\n");
        assert_eq!(&s[tail_offset(s, 5)..], b"a\nb\nc\n");
        assert_eq!(&s[tail_offset(s, 0)..], b"");
        assert_eq!(&b"x\ny"[tail_offset(b"x\ny", 1)..], b"y");
    }
}
