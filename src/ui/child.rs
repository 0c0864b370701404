//! A dispatched child's page: its status and why it waits, its task runs, the meta it got
//! (merged over the job's defaults) and its payload, its logs (followed live by the script
//! while a task runs), its sandbox files, the `TaskInfo`s it runs as; and its two actions,
//! stop and dispatch again.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde::Serialize;

use super::format::{self, Time};
use super::{Live, Ui};
use crate::api::ApiError;
use crate::cluster::{Listing, Location};
use crate::model::Dispatch;
use crate::state::{Command, DispatchRequest};

/// The most of a log or file a page shows (its end); the rest is a download away.
const SHOWN_BYTES: usize = 256 * 1024;

#[derive(Debug, Serialize)]
struct RunRow {
    task: String,
    task_id: String,
    attempt: u32,
    state: &'static str,
    exit_code: String,
    agent: String,
    agent_short: String,
    launched: Time,
    updated: Time,
    message: String,
}

#[derive(Debug, Serialize)]
struct MetaRow {
    key: String,
    value: String,
    from: &'static str,
}

#[derive(Debug, Serialize)]
struct Crumb {
    name: String,
    url: Option<String>,
}

#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    url: String,
    is_dir: bool,
    size: String,
    mode: String,
    modified: String,
}

#[derive(Debug, Default, Serialize)]
struct Files {
    path: String,
    crumbs: Vec<Crumb>,
    entries: Vec<Entry>,
    content: String,
    note: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Logs {
    tasks: Vec<String>,
    task: String,
    kind: &'static str,
    content: String,
    note: String,
    follow_url: Option<String>,
}

fn get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `/v1/job/<id>` with each segment encoded (a child's `/` kept, as the API expects).
fn api_url(id: &str) -> String {
    let segments: Vec<String> = id.split('/').map(format::encode).collect();
    format!("/v1/job/{}", segments.join("/"))
}

fn task_name(d: &Dispatch, r: &crate::model::TaskRun) -> String {
    d.job
        .task_groups
        .get(r.slot.group as usize)
        .and_then(|g| g.tasks.get(r.slot.task as usize))
        .map_or_else(|| r.task_id.to_string(), |t| t.name.clone())
}

fn task_names(d: &Dispatch) -> Vec<String> {
    d.job
        .task_groups
        .iter()
        .flat_map(|g| g.tasks.iter().map(|t| t.name.clone()))
        .collect()
}

/// Text for a page: UTF-8 as it is (lossy), the end of it when long.
fn shown(bytes: &[u8]) -> (String, bool) {
    let cut = bytes.len() > SHOWN_BYTES;
    let tail = if cut {
        &bytes[bytes.len() - SHOWN_BYTES..]
    } else {
        bytes
    };
    (String::from_utf8_lossy(tail).into_owned(), cut)
}

/// Why the child is where it is: the scheduler's note while it waits, how it ended after.
fn why(d: &Dispatch) -> String {
    match (&d.description, d.status) {
        (Some(text), _) => text.to_string(),
        (None, crate::model::DispatchStatus::Pending) if d.runs.is_empty() => {
            "Queued: waiting for an offer that fits.".into()
        }
        _ => String::new(),
    }
}

async fn logs(ui: &Ui, d: &Dispatch, query: &[(String, String)]) -> Logs {
    let tasks = task_names(d);
    let task = get(query, "task")
        .filter(|t| tasks.iter().any(|n| n == t))
        .map(str::to_string)
        .or_else(|| tasks.first().cloned())
        .unwrap_or_default();
    let kind = if get(query, "log") == Some("stderr") {
        "stderr"
    } else {
        "stdout"
    };
    let ended = crate::api::task_ended(&ui.app.state, &d.id, &task);
    let follow_url = (!ended).then(|| {
        format!(
            "{}/logs?task={}&type={kind}&follow=true",
            api_url(&d.id),
            format::encode(&task)
        )
    });
    let (content, note) = match crate::api::task_dir(&ui.app, d, Some(&task)).await {
        Ok((dir, _)) => match dir.join(kind) {
            Ok(path) => {
                let bytes = match ui.app.cluster() {
                    Ok(cluster) => cluster.sandboxes.read(&path, 0).await.unwrap_or_default(),
                    Err(_) => Default::default(),
                };
                let (text, cut) = shown(&bytes);
                let note = match (cut, ended) {
                    (true, _) => format!(
                        "The last {} of {}.",
                        format::bytes(SHOWN_BYTES as u64),
                        format::bytes(bytes.len() as u64)
                    ),
                    (false, true) => "The task has ended; this is its whole output.".into(),
                    (false, false) => "Running: reload to see more (live with JavaScript).".into(),
                };
                (text, note)
            }
            Err(e) => (String::new(), e.to_string()),
        },
        Err(ApiError::NotFound(m)) => (String::new(), m),
        Err(e) => (String::new(), e.to_string()),
    };
    Logs {
        tasks,
        task,
        kind,
        content,
        note,
        follow_url,
    }
}

/// The sandbox at `path` (`""`: the root, `alloc/...`, `<task>/...`), as a page shows it.
async fn files(ui: &Ui, d: &Dispatch, path: &str) -> Files {
    let path = path.trim_matches('/');
    let page = format::job_url(&d.id);
    let link = |p: &str| format!("{page}?path={}#files", format::encode(p));
    let mut crumbs = vec![Crumb {
        name: "sandbox".into(),
        url: (!path.is_empty()).then(|| link("")),
    }];
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let here = parts[..=i].join("/");
        crumbs.push(Crumb {
            name: (*part).to_string(),
            url: (i + 1 < parts.len()).then(|| link(&here)),
        });
    }
    let mut out = Files {
        path: format!("/{path}"),
        crumbs,
        ..Files::default()
    };
    if path.is_empty() {
        let mut names = vec!["alloc".to_string()];
        names.extend(task_names(d));
        out.entries = names
            .into_iter()
            .map(|n| Entry {
                url: link(&n),
                name: n,
                is_dir: true,
                size: String::new(),
                mode: "drwxr-xr-x".into(),
                modified: String::new(),
            })
            .collect();
        return out;
    }
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let base: Result<Location, ApiError> = if first == "alloc" {
        crate::api::any_task_dir(&ui.app, d).await
    } else {
        crate::api::task_dir(&ui.app, d, Some(first))
            .await
            .map(|(dir, _)| dir)
    };
    let target = base.and_then(|b| b.join(rest).map_err(crate::api::sandbox_error));
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let cluster = match ui.app.cluster() {
        Ok(cluster) => cluster,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let sandboxes = &cluster.sandboxes;
    match sandboxes.browse(&target).await {
        Ok(Listing::Dir(mut entries)) => {
            entries.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
            out.entries = entries
                .into_iter()
                .map(|e| Entry {
                    url: link(&format!("{path}/{}", e.name)),
                    size: if e.is_dir {
                        String::new()
                    } else {
                        format::bytes(e.size)
                    },
                    modified: e
                        .modified_ns
                        .map(|ns| Time::at(ns, ui.app.clock.now_ns()).abs)
                        .unwrap_or_default(),
                    name: e.name,
                    is_dir: e.is_dir,
                    mode: e.mode,
                })
                .collect();
            if out.entries.is_empty() {
                out.note = "An empty directory.".into();
            }
        }
        Ok(Listing::File) => match sandboxes.read(&target, 0).await {
            Ok(bytes) => {
                let (text, cut) = shown(&bytes);
                out.note = if cut {
                    format!(
                        "The last {} of {}.",
                        format::bytes(SHOWN_BYTES as u64),
                        format::bytes(bytes.len() as u64)
                    )
                } else {
                    format!("{}.", format::bytes(bytes.len() as u64))
                };
                out.content = text;
            }
            Err(e) => out.error = Some(e.to_string()),
        },
        Err(e) => out.error = Some(crate::api::sandbox_error(e).to_string()),
    }
    out
}

pub async fn page(
    ui: &Ui,
    id: &str,
    query: &[(String, String)],
    action_error: Option<(StatusCode, String)>,
) -> Response {
    let now = ui.app.clock.now_ns();
    let (d, index) = {
        let s = ui.app.state.read();
        match s.dispatch(id) {
            Some(d) => (d.clone(), s.index()),
            None => {
                drop(s);
                return ui.not_found(&format!("No dispatched child has the ID {id:?}."));
            }
        }
    };
    let payload = if d.payload_len > 0 {
        ui.app.state.payload(&d.id).await.ok().flatten()
    } else {
        None
    };
    let payload_view = match &payload {
        None => serde_json::json!({"len": 0, "binary": false, "text": ""}),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::json!({"len": bytes.len(), "binary": false, "text": text}),
            Err(_) => serde_json::json!({
                "len": bytes.len(),
                "binary": true,
                "text": base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
        },
    };
    let meta: Vec<MetaRow> = d
        .merged_meta()
        .into_iter()
        .map(|(key, value)| {
            let from = if d.meta.get(&key).is_some() {
                "dispatch"
            } else if d.job.meta.contains_key(&key) {
                "job default"
            } else {
                "optional, not given"
            };
            MetaRow { key, value, from }
        })
        .collect();
    let runs: Vec<RunRow> = d
        .runs
        .iter()
        .map(|r| RunRow {
            task: task_name(&d, r),
            task_id: r.task_id.to_string(),
            attempt: r.attempt,
            state: r.state_name(),
            exit_code: r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            agent: r.agent_id.to_string(),
            agent_short: format::short_id(&r.agent_id),
            launched: Time::at(r.launched_at, now),
            updated: Time::at(r.updated_at.max(r.launched_at), now),
            message: r.message.as_deref().unwrap_or_default().to_string(),
        })
        .collect();
    // Logs need read-logs, the sandbox and the rendered tasks (sandbox files) read-fs, as
    // their API routes do: without them they are not read at all.
    let can = ui.viewer.on_child(&d.id, d.parent());
    let rendered = if !can.files {
        String::new()
    } else {
        match crate::api::render_tasks(&d, payload.as_deref()) {
            Ok(tasks) => serde_json::to_string_pretty(&tasks).unwrap_or_default(),
            Err(e) => format!("cannot render: {e}"),
        }
    };
    let logs = if can.logs {
        Some(logs(ui, &d, query).await)
    } else {
        None
    };
    let files = if can.files {
        Some(files(ui, &d, get(query, "path").unwrap_or("")).await)
    } else {
        None
    };
    let url = format::job_url(&d.id);
    let eval = d.eval_id.to_string();
    let view = serde_json::json!({
        "id": &*d.id,
        "short": format::short_child(&d.id, d.parent()),
        "parent": d.parent(),
        "parent_url": format::job_url(d.parent()),
        "url": url,
        "status": d.status.as_str(),
        "why": why(&d),
        "submitted": Time::at(d.submit_time, now),
        "priority": d.priority,
        "eval_id": eval,
        "eval_short": format::short_id(&eval),
        "token": d.idempotency_token.as_deref().unwrap_or_default(),
        "version": d.job.version,
        "meta": meta,
        "payload": payload_view,
        "can_stop": !d.status.is_terminal(),
        "stop_url": format!("{url}/stop"),
        "redispatch_url": format!("{url}/redispatch"),
    });
    let live = Live {
        // Task runs change with Allocation events; the child's status with Job events.
        topics: format!("Job:{id} Allocation:{id}", id = d.id),
        index: index + 1,
    };
    let mut c = ui.context(format::short_child(&d.id, d.parent()), "jobs", Some(live));
    c.insert("child", &view);
    c.insert("runs", &runs);
    c.insert("logs", &logs);
    c.insert("files", &files);
    c.insert("rendered", &rendered);
    c.insert("can", &can);
    let (status, error) = match action_error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    c.insert("action_error", &error);
    ui.render(status, "child.html", &c)
}

/// `POST /ui/jobs/<child>/stop`: stop it as `DELETE /v1/job/<child>` does.
pub async fn stop(ui: &Ui, id: &str) -> Response {
    if ui.app.state.read().dispatch(id).is_none() {
        return ui.not_found(&format!(
            "No dispatched child has the ID {id:?}: nothing was stopped."
        ));
    }
    let result = ui
        .app
        .state
        .apply(Command::StopJob {
            id: id.to_string(),
            purge: false,
        })
        .await;
    match result {
        Ok(_) => super::see_other(&format::job_url(id)),
        Err(e) => {
            let e = ApiError::from(e);
            page(ui, id, &[], Some((e.status(), e.to_string()))).await
        }
    }
}

/// `POST /ui/jobs/<child>/redispatch`: a new child of the same parent with this one's meta,
/// payload and priority (no idempotency token: it is meant to run again).
pub async fn redispatch(ui: &Ui, id: &str) -> Response {
    let Some(d) = ui.app.state.read().dispatch(id).cloned() else {
        return ui.not_found(&format!(
            "No dispatched child has the ID {id:?}: nothing was dispatched."
        ));
    };
    let payload = match ui.app.state.payload(&d.id).await {
        Ok(p) => p,
        Err(e) => {
            let message = format!("the payload of {id:?} cannot be read: {e}");
            return page(
                ui,
                id,
                &[],
                Some((StatusCode::INTERNAL_SERVER_ERROR, message)),
            )
            .await;
        }
    };
    let request = DispatchRequest {
        job_id: d.parent().to_string(),
        meta: d
            .meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        payload,
        id_prefix: String::new(),
        priority: i64::from(d.priority),
        idempotency_token: None,
        ..DispatchRequest::default()
    };
    match crate::api::submit_dispatch(&ui.app, super::job::accessor(ui), request).await {
        Ok(reply) => super::see_other(&format::job_url(&reply.dispatched_job_id)),
        Err(e) => page(ui, id, &[], Some((e.status(), e.to_string()))).await,
    }
}
