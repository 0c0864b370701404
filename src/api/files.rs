//! A dispatch's logs and sandbox files (Nomad's `alloc logs` / `alloc fs`, mesos-cli's
//! `read` / `list`), served from the local runner's sandboxes or, on Mesos, read through the
//! agents' files API (`cluster::mesos::agent_files`): the same endpoints on both backends.
//!
//! `GET /v1/job/<dispatch>/logs?task=T&type=stdout|stderr&tail=N&follow=true` streams a
//! task's output (the latest attempt's). `GET /v1/job/<dispatch>/fs?path=P` lists a
//! directory (Nomad's `AllocFileInfo` fields) or returns a file. Paths: `<task>/...` is that
//! task's sandbox (latest attempt), `alloc/...` the directory its group shares.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::query::{json_reply, Query};
use super::AppState;
use crate::cluster::local::task_sandbox;
use crate::cluster::mesos::agent_files::{sandbox_candidates, AgentFile, AgentFiles};
use crate::model::{Dispatch, TaskRun};
use crate::render::executor_id;

/// A task's sandbox (or a path in it): on this machine, or on a Mesos agent.
#[derive(Clone)]
enum Sandbox {
    Local(PathBuf),
    Agent {
        files: AgentFiles,
        /// The agent's base URL.
        agent: String,
        /// Path on the agent (virtual sandbox path + relative part).
        path: String,
    },
}

impl Sandbox {
    /// A path inside this sandbox, refusing anything that climbs out.
    fn join(&self, rel: &str) -> Result<Sandbox, ApiError> {
        match self {
            Sandbox::Local(dir) => join_inside(dir, rel).map(Sandbox::Local),
            Sandbox::Agent { files, agent, path } => {
                let checked = join_inside(Path::new("/"), rel)?;
                let rel = checked.to_string_lossy();
                let rel = rel.trim_start_matches('/');
                Ok(Sandbox::Agent {
                    files: files.clone(),
                    agent: agent.clone(),
                    path: if rel.is_empty() {
                        path.clone()
                    } else {
                        format!("{path}/{rel}")
                    },
                })
            }
        }
    }

    /// The file's bytes from `offset` (empty when it does not exist yet).
    async fn read_from(&self, offset: u64) -> Vec<u8> {
        match self {
            Sandbox::Local(path) => read_from(path, offset).await,
            Sandbox::Agent { files, agent, path } => files
                .read_from(agent, path, offset)
                .await
                .unwrap_or_default(),
        }
    }

    /// A directory listing, or `None` when this is a file.
    async fn entries(&self, rel: &str, id: &str) -> Result<Option<Vec<FileInfo>>, ApiError> {
        match self {
            Sandbox::Local(target) => {
                let meta = tokio::fs::metadata(target)
                    .await
                    .map_err(|e| ApiError::NotFound(format!("{rel:?} in {id:?}: {e}")))?;
                if !meta.is_dir() {
                    return Ok(None);
                }
                let mut entries = Vec::new();
                let mut rd = tokio::fs::read_dir(target)
                    .await
                    .map_err(|e| ApiError::Internal(format!("listing {rel:?}: {e}")))?;
                while let Ok(Some(entry)) = rd.next_entry().await {
                    let Ok(m) = tokio::fs::metadata(entry.path()).await else {
                        continue;
                    };
                    entries.push(file_info(
                        entry.file_name().to_string_lossy().into_owned(),
                        &m,
                    ));
                }
                Ok(Some(entries))
            }
            Sandbox::Agent { files, agent, path } => {
                let list = files
                    .browse(agent, path)
                    .await
                    .map_err(|e| ApiError::NotFound(format!("{rel:?} in {id:?}: {e}")))?;
                // Browsing a file answers that one file.
                if list.len() == 1 && list[0].path == *path && !list[0].is_dir() {
                    return Ok(None);
                }
                Ok(Some(list.iter().map(agent_file_info).collect()))
            }
        }
    }
}

fn agent_file_info(f: &AgentFile) -> FileInfo {
    FileInfo {
        name: f.name().to_string(),
        is_dir: f.is_dir(),
        size: f.size,
        file_mode: f.mode.clone(),
        mod_time: crate::clock::rfc3339((f.mtime * 1e9) as i64),
    }
}

/// How often a followed log is checked for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct FileInfo {
    name: String,
    is_dir: bool,
    size: u64,
    file_mode: String,
    mod_time: String,
}

fn dispatch(app: &AppState, id: &str) -> Result<Dispatch, ApiError> {
    app.state
        .read()
        .dispatch(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("dispatched job {id:?} not found")))
}

/// The sandbox of the latest attempt of `task` (by name; the only task when `None`).
async fn task_dir(
    app: &AppState,
    d: &Dispatch,
    task: Option<&str>,
) -> Result<(Sandbox, String), ApiError> {
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
    Ok((run_sandbox(app, d, run, false).await?, name))
}

/// The sandbox of one run (`alloc`: the directory its group shares instead).
async fn run_sandbox(
    app: &AppState,
    d: &Dispatch,
    run: &TaskRun,
    alloc: bool,
) -> Result<Sandbox, ApiError> {
    let Some(mesos) = &app.mesos else {
        let dir = task_sandbox(&app.sandbox_root, &run.task_id);
        return Ok(Sandbox::Local(if alloc { dir.join("alloc") } else { dir }));
    };
    let framework = mesos
        .framework_id()
        .ok_or_else(|| ApiError::NotFound("not registered with Mesos yet".into()))?;
    let agent = mesos.agent_url(&run.agent_id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "the address of agent {:?} (task {:?}) is not known yet: no offer from it has been seen yet",
            run.agent_id, run.task_id
        ))
    })?;
    // Tasks of a group with several tasks may have been launched as a task group.
    let group = d.job.task_groups.get(run.slot.group as usize);
    let executor = group
        .filter(|g| g.tasks.len() > 1)
        .map(|g| executor_id(&d.id, &g.name, run.slot.instance));
    let files = AgentFiles::new();
    let candidates = sandbox_candidates(&framework, &run.task_id, executor.as_deref());
    let path = files
        .first_existing(&agent, &candidates)
        .await
        .map_err(|e| ApiError::NotFound(format!("sandbox of task {:?}: {e}", run.task_id)))?;
    let path = match (alloc, path.split_once("/tasks/")) {
        // A task group's shared directory is in the executor's sandbox.
        (true, Some((executor_dir, _))) => format!("{executor_dir}/alloc"),
        (true, None) => format!("{path}/alloc"),
        (false, _) => path,
    };
    Ok(Sandbox::Agent { files, agent, path })
}

/// Join a user path under `base`, refusing anything that climbs out.
fn join_inside(base: &Path, rel: &str) -> Result<PathBuf, ApiError> {
    let mut out = base.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "path {rel:?} must stay inside the sandbox (no ..)"
                )))
            }
        }
    }
    Ok(out)
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
    let path = dir.join(kind)?;
    let content = path.read_from(0).await;
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
    let first = Bytes::from(content[start..].to_vec());
    let offset = content.len() as u64;
    let stream = futures_util::stream::unfold(
        (Some(first), offset, false),
        move |(first, mut offset, done)| {
            let path = path.clone();
            let state = state.clone();
            let id = id.clone();
            let task = task.clone();
            async move {
                if let Some(first) = first {
                    return Some((Ok::<_, std::io::Error>(first), (None, offset, false)));
                }
                if done {
                    return None;
                }
                loop {
                    let ended = task_ended(&state, &id, &task);
                    let bytes = path.read_from(offset).await;
                    if !bytes.is_empty() {
                        offset += bytes.len() as u64;
                        return Some((Ok(Bytes::from(bytes)), (None, offset, false)));
                    }
                    if ended {
                        return None;
                    }
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
            }
        },
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// True when the task's latest run is over (or the dispatch is gone).
fn task_ended(state: &crate::state::StateHandle, id: &str, task: &str) -> bool {
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

async fn read_from(path: &Path, offset: u64) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let _ = f.read_to_end(&mut out).await;
    out
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
        any_task_dir(app, &d).await?.join(rest)?
    } else {
        let (dir, _) = task_dir(app, &d, Some(first)).await?;
        dir.join(rest)?
    };
    if let Some(mut entries) = target.entries(&rel, id).await? {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(json_reply(&entries, d.modify_index, query.flag("pretty")?));
    }
    let bytes = match &target {
        Sandbox::Local(path) => tokio::fs::read(path)
            .await
            .map_err(|e| ApiError::Internal(format!("reading {rel:?}: {e}")))?,
        agent => agent.read_from(0).await,
    };
    Ok(text(bytes))
}

/// The directory the dispatch's group shares (`alloc/`), seen from its latest run.
async fn any_task_dir(app: &AppState, d: &Dispatch) -> Result<Sandbox, ApiError> {
    let run = d.runs.last().ok_or_else(|| {
        ApiError::NotFound(format!(
            "{:?} has not started yet (status {})",
            d.id,
            d.status.as_str()
        ))
    })?;
    run_sandbox(app, d, run, true).await
}

fn file_info(name: String, m: &std::fs::Metadata) -> FileInfo {
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode();
    let mut perms = String::from(if m.is_dir() { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let mod_time = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| crate::clock::rfc3339(d.as_nanos() as i64))
        .unwrap_or_default();
    FileInfo {
        name,
        is_dir: m.is_dir(),
        size: m.len(),
        file_mode: perms,
        mod_time,
    }
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
