//! `/v1/job/<id>[/<sub-resource>]`: read, register, stop, dispatch, summary, allocations,
//! evaluations of one job. IDs contain `/`, so the sub-resource is found by suffix.

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

use super::auth::Identity;
use super::blocking;
use super::error::ApiError;
use super::jobs::{field, register};
use super::metrics::RouteLabel;
use super::query::{json_reply, Query};
use super::wire::{Allocation, DeregisterResponse, DispatchResponse, Evaluation, JobSummary};
use super::AppState;
use crate::model::{Job, Meta};
use crate::state::{Command, DispatchRequest, Reply, StateError};

/// Sub-resources of a job and their route templates (the `route` label of HTTP metrics),
/// longest first so `/dispatch/payload` wins over `/dispatch`.
const SUFFIXES: &[(&str, &str)] = &[
    ("/dispatch/payload", "/v1/job/:id/dispatch/payload"),
    ("/dispatch", "/v1/job/:id/dispatch"),
    ("/summary", "/v1/job/:id/summary"),
    ("/allocations", "/v1/job/:id/allocations"),
    ("/evaluations", "/v1/job/:id/evaluations"),
    ("/evaluate", "/v1/job/:id/evaluate"),
    ("/deployments", "/v1/job/:id/deployments"),
    ("/deployment", "/v1/job/:id/deployment"),
    ("/versions", "/v1/job/:id/versions"),
    ("/plan", "/v1/job/:id/plan"),
    ("/periodic/force", "/v1/job/:id/periodic/force"),
    ("/scale", "/v1/job/:id/scale"),
    ("/submission", "/v1/job/:id/submission"),
    ("/rendered", "/v1/job/:id/rendered"),
    ("/logs", "/v1/job/:id/logs"),
    ("/fs", "/v1/job/:id/fs"),
];

/// The route template of the job itself.
const JOB_ROUTE: &str = "/v1/job/:id";

/// Split `<id><suffix>` into the job ID, the sub-resource (empty for the job itself) and
/// its route template.
pub(super) fn split_suffix(rest: &str) -> (&str, &str, &'static str) {
    for (suffix, route) in SUFFIXES {
        if let Some(id) = rest.strip_suffix(suffix) {
            if !id.is_empty() {
                return (id, suffix, route);
            }
        }
    }
    (rest, "", JOB_ROUTE)
}

pub async fn route(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let (id, suffix, template) = split_suffix(&rest);
    let call = Call {
        app: &app,
        identity: &identity,
        method: &method,
        raw: raw.as_deref(),
    };
    let mut response = sub_resource(call, id, suffix, &body).await.into_response();
    response.extensions_mut().insert(RouteLabel(template));
    response
}

/// One request to a job route: the server, who calls, how.
#[derive(Clone, Copy)]
struct Call<'a> {
    app: &'a AppState,
    identity: &'a Identity,
    method: &'a Method,
    raw: Option<&'a str>,
}

async fn sub_resource(
    call: Call<'_>,
    id: &str,
    suffix: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let Call {
        app, method, raw, ..
    } = call;
    let query = Query::parse(raw);
    let writes = method == Method::PUT || method == Method::POST;
    match (suffix, method) {
        ("", &Method::GET) => read_job(app, &query, id).await,
        ("", &Method::DELETE) => stop(app, &query, id).await,
        ("", _) if writes => register(app, &query, body, Some(id)).await,
        ("/dispatch", _) if writes => dispatch(call, &query, id, body).await,
        ("/dispatch/payload", _) if writes => dispatch_raw(call, &query, id, body.clone()).await,
        ("/summary", &Method::GET) => summary(app, &query, id).await,
        ("/allocations", &Method::GET) => allocations(app, &query, id).await,
        ("/evaluations", &Method::GET) => evaluations(app, &query, id).await,
        ("/deployment", &Method::GET) => {
            Ok(json_reply(&Value::Null, app.state.committed_index(), false))
        }
        ("/deployments", &Method::GET) => Ok(json_reply(
            &Vec::<Value>::new(),
            app.state.committed_index(),
            false,
        )),
        ("/versions", &Method::GET) => versions(app, &query, id).await,
        ("/rendered", &Method::GET) => rendered(app, &query, id).await,
        ("/logs", &Method::GET) => super::files::logs(app, &query, id).await,
        ("/fs", &Method::GET) => super::files::fs(app, &query, id).await,
        ("/evaluate" | "/plan" | "/periodic/force" | "/scale" | "/submission", _) => {
            Err(ApiError::BadRequest(format!(
                "{suffix} is not supported by Dispatch: parameterized jobs run only when dispatched"
            )))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// What a job ID names: a registered job, or a dispatched child (payload not yet loaded).
enum Found {
    Parent(Job),
    Child(Job, u32),
}

async fn read_job(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let (found, index) = blocking::read(&app.state, query, |state| {
        if let Some(entry) = state.job(id) {
            return Ok((Found::Parent((*entry.job).clone()), entry.job.modify_index));
        }
        if let Some(d) = state.dispatch(id) {
            return Ok((
                Found::Child(d.to_child_job(None), d.payload_len),
                d.modify_index,
            ));
        }
        Err(ApiError::NotFound("job not found".into()))
    })
    .await?;
    let job = match found {
        Found::Parent(job) => job,
        Found::Child(mut job, payload_len) => {
            if payload_len > 0 {
                let bytes = app
                    .state
                    .payload(id)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                job.payload = bytes.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
            }
            job
        }
    };
    Ok(json_reply(&job, index, query.flag("pretty")?))
}

async fn versions(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let (job, index) = blocking::read(&app.state, query, |state| {
        if let Some(entry) = state.job(id) {
            return Ok(((*entry.job).clone(), entry.job.modify_index));
        }
        if let Some(d) = state.dispatch(id) {
            return Ok((d.to_child_job(None), d.modify_index));
        }
        Err(ApiError::NotFound("job not found".into()))
    })
    .await?;
    let body = serde_json::json!({"Versions": [job], "Diffs": null});
    Ok(json_reply(&body, index, query.flag("pretty")?))
}

/// Dispatch extension: the Mesos `TaskInfo`s of a dispatched child, rendered for its current
/// attempts (or attempt 1 when nothing launched yet), with no agent assigned.
async fn rendered(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let (dispatch, index) = {
        let s = app.state.read();
        let d = s.dispatch(id).cloned().ok_or_else(|| {
            ApiError::NotFound(format!(
                "dispatched job {id:?} not found (rendering needs a dispatched child's ID)"
            ))
        })?;
        (d, s.index())
    };
    let payload = if dispatch.payload_len > 0 {
        app.state
            .payload(id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    } else {
        None
    };
    let mut tasks = render_tasks(&dispatch, payload.as_deref())
        .map_err(|e| ApiError::BadRequest(format!("cannot render {id:?}: {e}")))?;
    // As launched: where agents fetch sandbox files, they see URLs; their token is the
    // capability to read the files, so it is not shown here.
    if let Some(base) = &app.cluster()?.capabilities.sandbox_fetch_base {
        let urls = crate::cluster::fetch_urls::FileUrls {
            base: base.clone(),
            key: None,
        };
        for task in &mut tasks {
            crate::cluster::fetch_urls::files_as_uris(task, &urls);
        }
    }
    Ok(json_reply(&tasks, index, query.flag("pretty")?))
}

/// The `TaskInfo`s of a child for its current attempts (attempt 1 before any launch), with
/// no agent assigned: what `/rendered` and the UI's child page show.
pub fn render_tasks(
    dispatch: &crate::model::Dispatch,
    payload: Option<&[u8]>,
) -> Result<Vec<crate::cluster::TaskInfo>, crate::render::RenderError> {
    let mut tasks = Vec::new();
    for slot in crate::model::plan::slots(&dispatch.job) {
        let attempt = crate::model::plan::latest_run(&dispatch.runs, slot).map_or(1, |r| r.attempt);
        let group = &dispatch.job.task_groups[slot.group as usize];
        let input = crate::render::RenderInput {
            dispatch,
            group,
            instance: slot.instance,
            task: &group.tasks[slot.task as usize],
            attempt,
            payload,
        };
        tasks.push(crate::render::render_task(&input)?);
    }
    Ok(tasks)
}

async fn summary(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let (summary, index) = blocking::read(&app.state, query, |state| {
        if let Some(entry) = state.job(id) {
            return Ok((JobSummary::of_parent(entry), entry.summary_index));
        }
        if let Some(d) = state.dispatch(id) {
            return Ok((JobSummary::of_child(d), d.modify_index));
        }
        Err(ApiError::NotFound("job not found".into()))
    })
    .await?;
    Ok(json_reply(&summary, index, query.flag("pretty")?))
}

/// A child's allocations (one per group instance that launched); a parent has none.
/// Unknown jobs answer `[]`, as in Nomad.
async fn allocations(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let (allocs, index) = blocking::read(&app.state, query, |state| {
        Ok(match state.dispatch(id) {
            Some(d) => (Allocation::of_dispatch(d), d.modify_index),
            None => (Vec::new(), state.index()),
        })
    })
    .await?;
    Ok(json_reply(&allocs, index, query.flag("pretty")?))
}

/// A parent has no evaluations (registering a parameterized job creates none); a child has
/// the one created with its dispatch.
async fn evaluations(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let (evals, index) = blocking::read(&app.state, query, |state| {
        Ok(match state.dispatch(id) {
            Some(d) => (vec![Evaluation::of_dispatch(d)], d.modify_index),
            None => (Vec::new(), state.index()),
        })
    })
    .await?;
    Ok(json_reply(&evals, index, query.flag("pretty")?))
}

async fn stop(app: &AppState, query: &Query, id: &str) -> Result<Response, ApiError> {
    let purge = query.flag("purge")?;
    let Reply::Stopped(reply) = app
        .state
        .apply(Command::StopJob {
            id: id.to_string(),
            purge,
        })
        .await?
    else {
        return Err(ApiError::Internal(
            "stop answered with another reply".into(),
        ));
    };
    let body = DeregisterResponse {
        eval_id: String::new(),
        eval_create_index: 0,
        job_modify_index: reply.job_modify_index,
        index: reply.index,
    };
    Ok(json_reply(&body, reply.index, query.flag("pretty")?))
}

/// The idempotency token: the query parameter wins over the body's `IdempotencyToken`
/// (Nomad's spelling) and `idempotency_token` (python-nomad's spelling).
fn idempotency_token(query: &Query, body: Option<&Value>) -> Option<String> {
    if let Some(t) = query.get("idempotency_token").filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    let body = body?;
    field(body, "IdempotencyToken")
        .or_else(|| body.get("idempotency_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Decode a dispatch body into a request, with a message naming the bad field.
pub(super) fn decode_dispatch_body(
    id: &str,
    query: &Query,
    body: &[u8],
) -> Result<DispatchRequest, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("Request body is empty".into()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Failed to parse request body as JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "Dispatch request must be a JSON object like {\"Meta\": {...}, \"Payload\": \"<base64>\"}".into(),
        ));
    }
    if let Some(job_id) = field(&value, "JobID").and_then(Value::as_str) {
        if !job_id.is_empty() && job_id != id {
            return Err(ApiError::BadRequest("Job ID does not match".into()));
        }
    }
    let mut meta = Meta::new();
    match field(&value, "Meta") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let Value::String(s) = v else {
                    return Err(ApiError::BadRequest(format!(
                        "Meta[{k:?}] must be a string, got {v}; dispatch meta values are strings"
                    )));
                };
                meta.insert(k.clone(), s.clone());
            }
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Meta must be an object of string values, got {other}"
            )))
        }
    }
    let payload = match field(&value, "Payload") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(decode_payload(s)?),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Payload must be a base64 string, got {other}"
            )))
        }
    };
    let id_prefix = match field(&value, "IdPrefixTemplate") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "IdPrefixTemplate must be a string, got {other}"
            )))
        }
    };
    let priority = match field(&value, "Priority") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Priority must be a whole number from 1 to 100, got {v}"
            ))
        })?,
    };
    Ok(DispatchRequest {
        dispatched_by: None,
        max_pending: None,
        job_id: id.to_string(),
        meta,
        payload,
        id_prefix,
        priority,
        idempotency_token: idempotency_token(query, Some(&value)),
    })
}

/// A base64 payload (the API's `Payload`, the UI's payload given as base64).
pub fn decode_payload(text: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| {
            ApiError::BadRequest(format!("Payload must be standard base64 with padding: {e}"))
        })
}

async fn dispatch(
    call: Call<'_>,
    query: &Query,
    id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request = crate::metrics::dispatch_decoded(decode_dispatch_body(id, query, body))?;
    send_dispatch(call, query, request).await
}

/// `/dispatch/payload`: the raw body is the payload; only query parameters are read.
async fn dispatch_raw(
    call: Call<'_>,
    query: &Query,
    id: &str,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = DispatchRequest {
        job_id: id.to_string(),
        payload: Some(body.to_vec()),
        idempotency_token: idempotency_token(query, None),
        ..DispatchRequest::default()
    };
    send_dispatch(call, query, request).await
}

async fn send_dispatch(
    call: Call<'_>,
    query: &Query,
    request: DispatchRequest,
) -> Result<Response, ApiError> {
    let accessor = call.identity.accessor().map(str::to_string);
    let reply = submit_dispatch(call.app, accessor, request).await?;
    let body = DispatchResponse {
        dispatched_job_id: reply.dispatched_job_id,
        eval_id: reply.eval_id.map(|u| u.to_string()).unwrap_or_default(),
        eval_create_index: reply.eval_create_index,
        job_create_index: reply.job_create_index,
        index: reply.index,
    };
    Ok(json_reply(&body, reply.index, query.flag("pretty")?))
}

/// The one path every dispatch takes, whoever sends it (the JSON and raw-payload routes,
/// the UI's form): the driver allow-list and the backlog cap apply, the writer validates it
/// with Nomad's messages; the outcome is counted. `accessor`: the caller's token, if any.
pub async fn submit_dispatch(
    app: &AppState,
    accessor: Option<String>,
    mut request: DispatchRequest,
) -> Result<crate::state::DispatchReply, ApiError> {
    let job_id = request.job_id.clone();
    // a job registered before the server was restarted with a stricter driver list
    let refusal = {
        let s = app.state.read();
        s.job(&job_id)
            .and_then(|e| app.security.drivers.refusal(&e.job))
    };
    if let Some(refusal) = refusal {
        crate::metrics::dispatch_request(
            &job_id,
            crate::metrics::DispatchOutcome::Rejected("driver_not_allowed"),
        );
        return Err(ApiError::BadRequest(refusal));
    }
    request.dispatched_by = accessor;
    request.max_pending = app.security.backpressure.max_pending;
    let result = app.state.apply(Command::Dispatch(request)).await;
    count_dispatch(&job_id, &result);
    match result {
        Ok(Reply::Dispatched(reply)) => Ok(reply),
        Ok(_) => Err(ApiError::Internal(
            "dispatch answered with another reply".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Count a dispatch request by its result. Unknown parents count under `job="_unknown"`
/// (no user-chosen labels).
fn count_dispatch(job: &str, result: &Result<Reply, StateError>) {
    use crate::metrics::DispatchOutcome;
    let outcome = match result {
        Ok(Reply::Dispatched(r)) if r.eval_id.is_none() => DispatchOutcome::Replay,
        Ok(_) => DispatchOutcome::Accepted,
        Err(e) => DispatchOutcome::Rejected(e.slug()),
    };
    let job = match result {
        Err(StateError::ParentNotFound | StateError::MissingJobId) => "_unknown",
        _ => job,
    };
    crate::metrics::dispatch_request(job, outcome);
}

#[cfg(test)]
mod tests {
    use super::split_suffix;

    #[test]
    fn sub_resources_are_found_by_suffix() {
        assert_eq!(split_suffix("transcode"), ("transcode", "", "/v1/job/:id"));
        assert_eq!(
            split_suffix("transcode/dispatch"),
            ("transcode", "/dispatch", "/v1/job/:id/dispatch")
        );
        assert_eq!(
            split_suffix("transcode/dispatch-1-abcdef01/summary"),
            (
                "transcode/dispatch-1-abcdef01",
                "/summary",
                "/v1/job/:id/summary"
            )
        );
        assert_eq!(
            split_suffix("transcode/dispatch/payload"),
            (
                "transcode",
                "/dispatch/payload",
                "/v1/job/:id/dispatch/payload"
            )
        );
        assert_eq!(
            split_suffix("transcode/dispatch-1-abcdef01"),
            ("transcode/dispatch-1-abcdef01", "", "/v1/job/:id")
        );
    }
}
