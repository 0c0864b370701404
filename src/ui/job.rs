//! A parameterized job's page: its queue, the dispatch form, its children (a page at a
//! time, newest first, filtered by status), its parameters and definition. The children
//! come from `State::children_page`, so a page costs what it shows however many children
//! the job has.

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::response::Response;
use indexmap::IndexMap;
use serde::Serialize;

use super::format::{self, Time};
use super::{jobs, Live, Ui};
use crate::api::ApiError;
use crate::model::{DispatchStatus, Job};
use crate::state::{DispatchRequest, StateError};

/// Children per page unless `per_page` says otherwise, and the most it may say.
const PER_PAGE: usize = 50;
const MAX_PER_PAGE: usize = 500;
/// Most bytes a dispatch form may post (a payload file over the limit still gets the
/// server's own message, not a cut-off connection).
pub const FORM_LIMIT: usize = 4 * 1024 * 1024;

/// What a dispatch form was filled with.
#[derive(Debug, Default, Clone)]
pub struct FormInput {
    pub meta: IndexMap<String, String>,
    pub payload: String,
    pub encoding: String,
    pub file: Option<Vec<u8>>,
    pub priority: String,
    pub token: String,
    pub prefix: String,
}

/// What was wrong with it, by field.
#[derive(Debug, Default, Clone)]
pub struct FormErrors {
    pub meta: HashMap<String, String>,
    pub payload: Option<String>,
    pub priority: Option<String>,
    pub form: Option<String>,
}

/// A form that came back with errors, to show again.
pub struct Submitted {
    pub input: FormInput,
    pub errors: FormErrors,
    pub status: StatusCode,
}

#[derive(Debug, Serialize)]
struct Field {
    key: String,
    name: String,
    input_id: String,
    required: bool,
    value: String,
    default: String,
    description: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Tab {
    label: String,
    count: u64,
    url: String,
    current: bool,
}

#[derive(Debug, Serialize)]
struct ChildRow {
    id: String,
    short: String,
    url: String,
    status: &'static str,
    submitted: Time,
    priority: u8,
    meta: String,
}

#[derive(Debug, Default, Serialize)]
struct Children {
    tabs: Vec<Tab>,
    rows: Vec<ChildRow>,
    caption: String,
    filter_label: String,
    newest_url: Option<String>,
    newer_url: Option<String>,
    older_url: Option<String>,
    oldest_url: Option<String>,
}

/// The status filter of the children list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    One(DispatchStatus),
}

impl Filter {
    fn parse(s: Option<&str>) -> Filter {
        s.and_then(DispatchStatus::parse)
            .map_or(Filter::All, Filter::One)
    }

    fn statuses(self) -> Vec<DispatchStatus> {
        match self {
            Filter::All => vec![
                DispatchStatus::Pending,
                DispatchStatus::Running,
                DispatchStatus::Complete,
                DispatchStatus::Failed,
                DispatchStatus::Stopped,
            ],
            Filter::One(s) => vec![s],
        }
    }

    fn param(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::One(s) => s.as_str(),
        }
    }
}

fn get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The children section for the query's filter and cursor.
fn children(
    s: &crate::state::State,
    entry: &crate::state::JobEntry,
    query: &[(String, String)],
    now: i64,
) -> Children {
    let id = entry.job.id.as_str();
    let filter = Filter::parse(get(query, "status"));
    let per_page = get(query, "per_page")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let before = get(query, "before").and_then(|n| n.parse::<u64>().ok());
    let after = get(query, "after").and_then(|n| n.parse::<u64>().ok());
    let statuses = filter.statuses();
    let base = format!("{}?status={}", format::job_url(id), filter.param());
    let base = if per_page == PER_PAGE {
        base
    } else {
        format!("{base}&per_page={per_page}")
    };
    // Newest first from `before` (or the newest); or oldest first from `after`, turned
    // around. One more than a page tells whether there is another.
    let (mut page, more_beyond) = match (after, before) {
        (Some(after), _) => {
            let mut up = s.children_page(id, &statuses, Some(after), false, per_page + 1);
            let more = up.len() > per_page;
            up.truncate(per_page);
            up.reverse();
            (up, more)
        }
        (None, before) => {
            let mut down = s.children_page(id, &statuses, before, true, per_page + 1);
            let more = down.len() > per_page;
            down.truncate(per_page);
            (down, more)
        }
    };
    let (has_newer, has_older) = match after {
        Some(_) => (
            more_beyond,
            page.last().is_some_and(|l| {
                !s.children_page(id, &statuses, Some(l.create_index), true, 1)
                    .is_empty()
            }),
        ),
        None => (
            page.first().is_some_and(|f| {
                !s.children_page(id, &statuses, Some(f.create_index), false, 1)
                    .is_empty()
            }),
            more_beyond,
        ),
    };
    let rows: Vec<ChildRow> = page
        .drain(..)
        .map(|d| ChildRow {
            id: d.id.to_string(),
            short: format::short_child(&d.id, id).to_string(),
            url: format::job_url(&d.id),
            status: d.status.as_str(),
            submitted: Time::at(d.submit_time, now),
            priority: d.priority,
            meta: meta_summary(d),
        })
        .collect();
    let c = &entry.children;
    let listed = c.pending + c.running + c.complete + c.failed + c.stopped;
    let tab = |label: &str, f: Filter, count: u64| Tab {
        label: label.into(),
        count,
        url: format!("{}?status={}#children", format::job_url(id), f.param()),
        current: f == filter,
    };
    let tabs = vec![
        tab("All", Filter::All, listed),
        tab("Pending", Filter::One(DispatchStatus::Pending), c.pending),
        tab("Running", Filter::One(DispatchStatus::Running), c.running),
        tab(
            "Complete",
            Filter::One(DispatchStatus::Complete),
            c.complete,
        ),
        tab("Failed", Filter::One(DispatchStatus::Failed), c.failed),
        tab("Stopped", Filter::One(DispatchStatus::Stopped), c.stopped),
    ];
    let in_filter = match filter {
        Filter::All => listed,
        Filter::One(s) => match s {
            DispatchStatus::Pending => c.pending,
            DispatchStatus::Running => c.running,
            DispatchStatus::Complete => c.complete,
            DispatchStatus::Failed => c.failed,
            DispatchStatus::Stopped => c.stopped,
        },
    };
    let filter_label = match filter {
        Filter::All => String::new(),
        Filter::One(s) => s.as_str().to_string(),
    };
    let caption = format!(
        "{} of {in_filter} {}children, newest first",
        rows.len(),
        if filter_label.is_empty() {
            String::new()
        } else {
            format!("{filter_label} ")
        }
    );
    Children {
        newest_url: (has_newer).then(|| format!("{base}#children")),
        newer_url: has_newer
            .then(|| {
                rows.first()
                    .map(|r| format!("{base}&after={}#children", index_of(s, &r.id)))
            })
            .flatten(),
        older_url: has_older
            .then(|| {
                rows.last()
                    .map(|r| format!("{base}&before={}#children", index_of(s, &r.id)))
            })
            .flatten(),
        oldest_url: has_older.then(|| format!("{base}&after=0#children")),
        tabs,
        rows,
        caption,
        filter_label,
    }
}

fn index_of(s: &crate::state::State, id: &str) -> u64 {
    s.dispatch(id).map_or(0, |d| d.create_index)
}

/// `input=/tmp/a.mp4 profile=large`, cut short.
fn meta_summary(d: &crate::model::Dispatch) -> String {
    let mut out = String::new();
    for (k, v) in d.meta.iter() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        if out.len() > 120 {
            let mut cut = 117;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

/// The form's fields: required keys first, then optional ones; defaults from the job's meta.
fn fields(job: &Job, submitted: Option<&Submitted>) -> Vec<Field> {
    let Some(p) = &job.parameterized else {
        return Vec::new();
    };
    let required = p.meta_required.iter().map(|k| (k, true));
    let optional = p.meta_optional.iter().map(|k| (k, false));
    required
        .chain(optional)
        .enumerate()
        .map(|(i, (key, required))| {
            let default = job.meta.get(key).cloned().unwrap_or_default();
            let value = match submitted {
                Some(s) => s.input.meta.get(key).cloned().unwrap_or_default(),
                None => default.clone(),
            };
            Field {
                key: key.clone(),
                name: format!("meta.{key}"),
                input_id: format!("meta-{i}"),
                required,
                value,
                default,
                description: p.meta_descriptions.get(key).cloned().unwrap_or_default(),
                error: submitted.and_then(|s| s.errors.meta.get(key).cloned()),
            }
        })
        .collect()
}

pub async fn page(
    ui: &Ui,
    id: &str,
    query: &[(String, String)],
    submitted: Option<Submitted>,
) -> Response {
    let now = ui.app.clock.now_ns();
    let built = {
        let s = ui.app.state.read();
        let Some(entry) = s.job(id) else {
            drop(s);
            return ui.not_found(&format!("No job has the ID {id:?}."));
        };
        let job = entry.job.clone();
        let c = entry.children;
        let summary = serde_json::json!({
            "pending": c.pending,
            "running": c.running,
            "complete": c.complete,
            "failed": c.failed,
            "stopped": c.stopped,
            "dead": c.dead(),
            "demand": format::demand(&entry.pending_demand),
            "running_of_max": jobs::running_of_max(entry),
            "chart": format::chart(
                ui.history.series(id),
                jobs::sample_now(entry, now.div_euclid(1_000_000_000)),
                true,
            ),
        });
        let kind = jobs::kind(entry);
        (
            job,
            summary,
            children(&s, entry, query, now),
            kind,
            s.index(),
        )
    };
    let (job, summary, children, kind, index) = built;
    let parameterized = job.parameterized.as_ref().map(|p| {
        serde_json::json!({
            "payload": p.payload,
            "required": list(&p.meta_required),
            "optional": list(&p.meta_optional),
            "max_running": if p.max_running == 0 { "no limit".to_string() } else { p.max_running.to_string() },
        })
    });
    let meta: Vec<serde_json::Value> = job
        .meta
        .iter()
        .map(|(k, v)| {
            let description = job
                .parameterized
                .as_ref()
                .and_then(|p| p.meta_descriptions.get(k))
                .cloned()
                .unwrap_or_default();
            serde_json::json!({"key": k, "value": v, "description": description})
        })
        .collect();
    let payload_rule = job
        .parameterized
        .as_ref()
        .map_or("optional", |p| p.payload.as_str());
    let form = {
        let input = submitted.as_ref().map(|s| &s.input);
        let errors = submitted.as_ref().map(|s| &s.errors);
        serde_json::json!({
            "fields": fields(&job, submitted.as_ref()),
            "error": errors.and_then(|e| e.form.clone()),
            "payload": {
                "required": payload_rule == "required",
                "forbidden": payload_rule == "forbidden",
                "value": input.map_or("", |i| i.payload.as_str()),
                "encoding": input.map_or("text", |i| if i.encoding == "base64" { "base64" } else { "text" }),
                "help": format!(
                    "Payload {payload_rule}; at most {} after decoding. Tasks find it in the file their dispatch_payload block names.",
                    format::bytes(crate::model::job::MAX_PAYLOAD_BYTES as u64)
                ),
                "error": errors.and_then(|e| e.payload.clone()),
            },
            "priority": {
                "value": input.map_or("", |i| i.priority.as_str()),
                "error": errors.and_then(|e| e.priority.clone()),
            },
            "idempotency_token": input.map_or("", |i| i.token.as_str()),
            "id_prefix": input.map_or("", |i| i.prefix.as_str()),
        })
    };
    let view = serde_json::json!({
        "id": job.id,
        "kind": kind,
        "stopped": job.stop,
        "priority": job.priority,
        "version": job.version,
        "submitted": Time::at(job.submit_time, now),
        "parameterized": parameterized,
        "meta": meta,
        "json": serde_json::to_string_pretty(&*job).unwrap_or_default(),
        "hcl": serde_json::Value::Null,
        "dispatch_url": format!("{}/dispatch", format::job_url(&job.id)),
    });
    let live = Live {
        topics: format!("Job:{}", job.id),
        index: index + 1,
    };
    let mut c = ui.context(&job.id, "jobs", Some(live));
    c.insert("job", &view);
    c.insert("summary", &summary);
    c.insert("form", &form);
    c.insert("children", &children);
    c.insert("can", &ui.viewer.on_job(&job.id));
    let status = submitted.as_ref().map_or(StatusCode::OK, |s| s.status);
    ui.render(status, "job.html", &c)
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

/// Read a posted dispatch form. Meta fields are `meta.<key>`; an empty field is a key not
/// given (so a required one is reported missing, and an optional one keeps its default).
async fn read_form(request: Request) -> Result<FormInput, String> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| format!("the form did not arrive as multipart/form-data: {e}"))?;
    let mut input = FormInput {
        encoding: "text".into(),
        ..FormInput::default()
    };
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("the form could not be read: {e}"))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "payload_file" {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("the payload file could not be read: {e}"))?;
            if !bytes.is_empty() {
                input.file = Some(bytes.to_vec());
            }
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| format!("form field {name:?} could not be read: {e}"))?;
        match name.as_str() {
            "payload" => input.payload = text,
            "payload_encoding" => input.encoding = text,
            "priority" => input.priority = text.trim().to_string(),
            "idempotency_token" => input.token = text.trim().to_string(),
            "id_prefix_template" => input.prefix = text.trim().to_string(),
            other => {
                if let Some(key) = other.strip_prefix("meta.") {
                    input.meta.insert(key.to_string(), text);
                }
            }
        }
    }
    Ok(input)
}

/// The request a filled-in form makes, or what is wrong with the form itself.
fn request_of(id: &str, input: &FormInput) -> Result<DispatchRequest, FormErrors> {
    let mut errors = FormErrors::default();
    let payload = match (&input.file, input.payload.is_empty()) {
        (Some(_), false) => {
            errors.payload = Some("Give the payload as text or as a file, not both.".into());
            None
        }
        (Some(file), true) => Some(file.clone()),
        (None, true) => None,
        (None, false) if input.encoding == "base64" => {
            match crate::api::decode_payload(input.payload.trim()) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    errors.payload = Some(e.to_string());
                    None
                }
            }
        }
        (None, false) => Some(input.payload.clone().into_bytes()),
    };
    let priority = if input.priority.is_empty() {
        0
    } else {
        match input.priority.parse::<i64>() {
            Ok(p) => p,
            Err(_) => {
                errors.priority = Some(format!(
                    "Priority must be a whole number from 1 to 100, got {:?}",
                    input.priority
                ));
                0
            }
        }
    };
    if errors.payload.is_some() || errors.priority.is_some() {
        return Err(errors);
    }
    Ok(DispatchRequest {
        job_id: id.to_string(),
        meta: input
            .meta
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        payload,
        id_prefix: input.prefix.clone(),
        priority,
        idempotency_token: (!input.token.is_empty()).then(|| input.token.clone()),
        ..DispatchRequest::default()
    })
}

/// Where the server's message goes on the form.
fn place(error: &ApiError) -> FormErrors {
    let mut out = FormErrors::default();
    let message = error.to_string();
    match error {
        ApiError::State(StateError::MissingMeta(keys)) => {
            for key in keys {
                out.meta.insert(key.clone(), message.clone());
            }
        }
        ApiError::State(
            StateError::PayloadRequired
            | StateError::PayloadForbidden
            | StateError::PayloadTooLarge(_),
        ) => out.payload = Some(message),
        ApiError::State(StateError::Priority) => out.priority = Some(message),
        _ => out.form = Some(message),
    }
    out
}

/// A dispatch the caller may not make: the job's page with the refusal on the form (403);
/// nothing was read or dispatched.
pub async fn refused(ui: &Ui, id: &str, message: String) -> Response {
    let submitted = Submitted {
        input: FormInput::default(),
        errors: FormErrors {
            form: Some(message),
            ..FormErrors::default()
        },
        status: StatusCode::FORBIDDEN,
    };
    page(ui, id, &[], Some(submitted)).await
}

/// The caller's token, recorded on what it dispatches (`DispatchedBy`), as the API does.
pub fn accessor(ui: &Ui) -> Option<String> {
    ui.identity().accessor().map(str::to_string)
}

/// `POST /ui/jobs/<id>/dispatch`: dispatch through the API's path; on success see the new
/// child, else the form again with the server's message beside the field it is about.
pub async fn dispatch(ui: &Ui, id: &str, request: Request) -> Response {
    if ui.app.state.read().job(id).is_none() {
        return ui.not_found(&format!(
            "No job has the ID {id:?}: nothing was dispatched."
        ));
    }
    let input = match read_form(request).await {
        Ok(input) => input,
        Err(message) => {
            let errors = FormErrors {
                form: Some(message),
                ..FormErrors::default()
            };
            let submitted = Submitted {
                input: FormInput::default(),
                errors,
                status: StatusCode::BAD_REQUEST,
            };
            return page(ui, id, &[], Some(submitted)).await;
        }
    };
    let outcome = match request_of(id, &input) {
        Ok(req) => crate::api::submit_dispatch(&ui.app, accessor(ui), req)
            .await
            .map_err(|e| (place(&e), e.status())),
        Err(errors) => {
            crate::metrics::dispatch_decoded(Err::<(), ()>(())).ok();
            Err((errors, StatusCode::BAD_REQUEST))
        }
    };
    match outcome {
        Ok(reply) => super::see_other(&format::job_url(&reply.dispatched_job_id)),
        Err((errors, status)) => {
            let submitted = Submitted {
                input,
                errors,
                status,
            };
            page(ui, id, &[], Some(submitted)).await
        }
    }
}
