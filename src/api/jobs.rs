//! `/v1/jobs`: list job stubs, register a job, and `/v1/jobs/parse` (HCL -> JSON).

use std::iter::Peekable;
use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::Value;

use super::auth::Identity;
use super::blocking;
use super::error::ApiError;
use super::query::{json_reply, Query};
use super::wire::{JobListStub, RegisterResponse};
use super::AppState;
use crate::model::Job;
use crate::state::{Command, Reply, State as AppStateData};

/// `GET /v1/jobs` (list) and `PUT|POST /v1/jobs` (register).
pub async fn jobs(
    State(app): State<AppState>,
    Extension(identity): Extension<Identity>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw.as_deref());
    match method {
        Method::GET => list(&app, &identity, &query).await,
        Method::PUT | Method::POST => register(&app, &query, &body, None).await,
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// Job stubs; a caller allowed `list-jobs` on some jobs only (a `job` ACL rule) sees those.
async fn list(app: &AppState, identity: &Identity, query: &Query) -> Result<Response, ApiError> {
    let prefix = query.get("prefix").unwrap_or_default().to_string();
    let with_meta = query.flag("meta")?;
    let per_page: Option<usize> = match query.get("per_page") {
        None | Some("") => None,
        Some(n) => Some(n.parse().map_err(|_| {
            ApiError::BadRequest(format!("Invalid per_page {n:?}: expected a whole number"))
        })?),
    };
    let next_token = query.get("next_token").unwrap_or_default().to_string();
    let (stubs, index) = blocking::read(&app.state, query, |state| {
        let start = if next_token.is_empty() {
            prefix.clone()
        } else {
            next_token.clone()
        };
        let mut stubs: Vec<JobListStub> = stubs_from(state, &start, &prefix, with_meta)
            .filter(|s| identity.may_list(&s.id))
            .take(per_page.map_or(usize::MAX, |n| n.saturating_add(1)))
            .collect();
        let next = match per_page {
            Some(n) if n > 0 && stubs.len() > n => stubs.pop().map(|s| s.id),
            _ => None,
        };
        Ok(((stubs, next), state.index()))
    })
    .await?;
    let (stubs, next) = stubs;
    let mut response = json_reply(&stubs, index, query.flag("pretty")?);
    if let Some(next) = next {
        if let Ok(v) = next.parse() {
            response.headers_mut().insert("x-nomad-nexttoken", v);
        }
    }
    Ok(response)
}

/// Stubs of parents and children whose IDs start with `prefix`, in ID order.
pub fn stubs_with_prefix<'a>(
    state: &'a AppStateData,
    prefix: &str,
    with_meta: bool,
) -> impl Iterator<Item = JobListStub> + 'a {
    stubs_from(state, prefix, prefix, with_meta)
}

/// Stubs with IDs >= `from` that start with `prefix`: both maps are walked in ID order and
/// merged, so the cost is proportional to what is returned, not to the number of jobs.
fn stubs_from<'a>(
    state: &'a AppStateData,
    from: &str,
    prefix: &str,
    with_meta: bool,
) -> impl Iterator<Item = JobListStub> + 'a {
    let prefix = prefix.to_string();
    let parents = state
        .jobs_from(from)
        .map(move |e| JobListStub::of_parent(e, with_meta));
    let children = state
        .dispatches_from(Bound::Included(from))
        .map(move |d| JobListStub::of_child(d, with_meta));
    MergeById {
        a: parents.peekable(),
        b: children.peekable(),
    }
    .take_while(move |s| s.id.starts_with(&prefix))
}

/// Merges two ID-ordered stub streams into one.
struct MergeById<A: Iterator<Item = JobListStub>, B: Iterator<Item = JobListStub>> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<A, B> Iterator for MergeById<A, B>
where
    A: Iterator<Item = JobListStub>,
    B: Iterator<Item = JobListStub>,
{
    type Item = JobListStub;

    fn next(&mut self) -> Option<JobListStub> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if x.id <= y.id => self.a.next(),
            (Some(_), Some(_)) => self.b.next(),
            (Some(_), None) => self.a.next(),
            _ => self.b.next(),
        }
    }
}

/// Look up `key` in a JSON object case-insensitively (Go's decoder matches keys that way).
pub fn field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Decode a register body (`{"Job": {...}, ...}`) into a `Job`, naming the field on error.
pub(super) fn decode_register_body(body: &[u8]) -> Result<Job, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("Request body is empty".into()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Failed to parse request body as JSON: {e}")))?;
    let job = match field(&value, "Job") {
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest("Job must be specified".into()))
        }
        Some(job) => job,
    };
    let job: Job = serde_path_to_error::deserialize(job)
        .map_err(|e| ApiError::BadRequest(format!("Job.{}: {}", e.path(), e.inner())))?;
    if job.id.is_empty() {
        return Err(ApiError::BadRequest("Job ID hasn't been provided".into()));
    }
    Ok(job)
}

/// Register a job; with `path_id` (from `/v1/job/:id`) the body's ID must match it.
pub async fn register(
    app: &AppState,
    query: &Query,
    body: &[u8],
    path_id: Option<&str>,
) -> Result<Response, ApiError> {
    let job = decode_register_body(body)?;
    if let Some(id) = path_id {
        if job.id != id {
            return Err(ApiError::BadRequest("Job ID does not match name".into()));
        }
    }
    if let Some(refusal) = app.security.drivers.refusal(&job) {
        return Err(ApiError::BadRequest(refusal));
    }
    if let Some(refusal) = app.cluster()?.capabilities.refusal(&job) {
        return Err(ApiError::BadRequest(refusal));
    }
    let Reply::Registered(reply) = app.state.apply(Command::RegisterJob(Box::new(job))).await?
    else {
        return Err(ApiError::Internal(
            "register answered with another reply".into(),
        ));
    };
    let body = RegisterResponse {
        eval_id: String::new(),
        eval_create_index: 0,
        job_modify_index: reply.job_modify_index,
        warnings: reply.warnings,
        index: reply.index,
        last_contact: 0,
        known_leader: true,
    };
    Ok(json_reply(&body, reply.index, query.flag("pretty")?))
}

/// `PUT|POST /v1/jobs/parse`: `{"JobHCL": "...", "Canonicalize": bool}` -> the job JSON.
pub async fn parse(
    State(app): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    if method != Method::PUT && method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let query = Query::parse(raw.as_deref());
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Failed to parse request body as JSON: {e}")))?;
    let hcl = field(&value, "JobHCL")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("Job HCL must be specified (JobHCL)".into()))?;
    let canonicalize = field(&value, "Canonicalize")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let hcl1 = field(&value, "HCLv1")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let parsed = if hcl1 {
        crate::spec::parse_hcl1(hcl, "JobHCL")
    } else {
        crate::spec::parse_job(hcl, "JobHCL")
    };
    let mut parsed = parsed.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if canonicalize {
        parsed.job.canonicalize();
    }
    let mut reply = json_reply(
        &parsed.job,
        app.state.committed_index(),
        query.flag("pretty")?,
    );
    // Nomad's parse reply is the bare job, with no Warnings field: HCL1 warnings go in a header.
    if !parsed.warnings.is_empty() {
        if let Ok(v) = parsed.warnings.join("; ").parse() {
            reply.headers_mut().insert(PARSE_WARNINGS_HEADER, v);
        }
    }
    Ok(reply)
}

/// Header of a `/v1/jobs/parse` reply listing the HCL1 constructs the job was read with.
pub const PARSE_WARNINGS_HEADER: &str = "x-dispatch-warnings";
