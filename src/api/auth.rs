//! The edge: the one place that decides who may do what, before any handler runs.
//!
//! For every routed request it resolves the caller (`X-Nomad-Token: <secret>`, else
//! `Authorization: Bearer <secret>`; none or an unknown one = the `anonymous` policy; an
//! expired one = 403 `ACL token expired`), works out what the matched route needs for the
//! job it names (`need`), asks the caller's `Grants`, and answers 403 `Permission denied`
//! (Nomad's text) when they fall short. Dispatches also pass the per-caller rate limit
//! here. The request goes on with an `Identity` extension: handlers read who the caller is
//! (to record `DispatchedBy`, to filter a list to the jobs it may see) but never check a
//! token themselves. With ACLs off everyone is allowed everything (rate limits still apply).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::query::Query;
use super::AppState;
use crate::acl::{Grants, Level};
use crate::state::acl::Caller;

/// Nomad's answer to anything not allowed.
pub const PERMISSION_DENIED: &str = "Permission denied";
/// Nomad's auth error for a token past its expiration time.
pub const TOKEN_EXPIRED: &str = "ACL token expired";

/// Who the request is, as the edge resolved it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub caller: Caller,
    /// The secret the request carried (for `GET /v1/acl/token/self`).
    pub secret: Option<String>,
    /// False when the server runs without ACLs.
    pub acl_enabled: bool,
}

impl Identity {
    fn disabled() -> Identity {
        Identity {
            caller: Caller::Anonymous(Arc::new(Grants::management())),
            secret: None,
            acl_enabled: false,
        }
    }

    /// The accessor ID of the caller's token (recorded on what it dispatches).
    pub fn accessor(&self) -> Option<&str> {
        match &self.caller {
            Caller::Token { token, .. } => Some(&token.accessor_id),
            _ => None,
        }
    }

    /// The caller's rights (nothing for an expired token).
    pub fn grants(&self) -> Arc<Grants> {
        match &self.caller {
            Caller::Token { grants, .. } | Caller::Anonymous(grants) => grants.clone(),
            Caller::Expired => Arc::new(Grants::default()),
        }
    }

    /// Whether the caller may see `job_id` in a list of jobs.
    pub fn may_list(&self, job_id: &str) -> bool {
        !self.acl_enabled || self.grants().job(job_id, "list-jobs")
    }
}

/// The secret a request carries: `X-Nomad-Token`, else `Authorization: Bearer <secret>`
/// (any other scheme is not ours: the request is anonymous).
pub fn secret_of(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-nomad-token").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    rest.split_whitespace().next().map(str::to_string)
}

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Anyone (status, health, bootstrap, sandbox capability URLs).
    Public,
    /// Any caller, even anonymous (`/v1/acl/token/self`, the policy list).
    AnyCaller,
    Management,
    Agent(Level),
    Operator(Level),
    /// One of these capabilities in the namespace.
    Namespace(&'static [&'static str]),
    /// The capability in the namespace or on some job (a list then shows those jobs).
    SomeJob(&'static str),
    /// One of these capabilities on this job (or the parent of this child).
    Job(String, &'static [&'static str]),
    /// `read-job` on the job an evaluation belongs to.
    Eval(String),
    /// Management, a token holding the policy, or anyone for `anonymous`.
    PolicyRead(String),
    /// Management, or the token itself.
    TokenRead(String),
    /// `submit-job` on the job the body registers.
    RegisterBody,
}

pub const READ_JOB: &[&str] = &["read-job"];
const SUBMIT: &[&str] = &["submit-job", "register-job"];
pub const DEREGISTER: &[&str] = &["submit-job", "deregister-job", "purge-job"];
const PURGE: &[&str] = &["submit-job", "purge-job"];
pub const DISPATCH: &[&str] = &["dispatch-job"];
pub const LOGS: &[&str] = &["read-logs", "read-fs"];
pub const FS: &[&str] = &["read-fs"];

impl Need {
    /// What the need asks for, in words a refusal page shows (`read-job on job "transcode"`).
    pub fn describe(&self) -> String {
        let any = |caps: &[&str]| caps.join(" or ");
        match self {
            Need::Public | Need::AnyCaller => "nothing".into(),
            Need::Management => "a management token".into(),
            Need::Agent(level) => format!("agent {}", level.name()),
            Need::Operator(level) => format!("operator {}", level.name()),
            Need::Namespace(caps) => format!("{} in the namespace", any(caps)),
            Need::SomeJob(cap) => format!("{cap} on the namespace or on some job"),
            Need::Job(id, caps) => format!("{} on job {id:?}", any(caps)),
            Need::Eval(id) => format!("read-job on the job of evaluation {id:?}"),
            Need::PolicyRead(name) => format!("a token holding policy {name:?}"),
            Need::TokenRead(accessor) => format!("token {accessor:?} or a management token"),
            Need::RegisterBody => "submit-job on the job in the body".into(),
        }
    }
}

/// Everyone, as a request is with ACLs off.
pub fn identify_disabled() -> Identity {
    Identity::disabled()
}

/// Resolve who a request is from its headers (what the edge does for every API call).
pub fn identify(app: &AppState, headers: &HeaderMap) -> Identity {
    if !app.security.acl {
        return Identity::disabled();
    }
    let secret = secret_of(headers);
    let caller = app
        .state
        .read()
        .acl()
        .caller(secret.as_deref(), app.clock.now_ns());
    Identity {
        caller,
        secret,
        acl_enabled: true,
    }
}

/// Whether `identity` may do what `need` asks; the refusal's text when not (Nomad's
/// `Permission denied`, or `ACL token expired`). `RegisterBody` is decided by the edge.
pub fn check(app: &AppState, identity: &Identity, need: &Need) -> Result<(), &'static str> {
    if !identity.acl_enabled || *need == Need::Public {
        return Ok(());
    }
    if matches!(identity.caller, Caller::Expired) {
        return Err(TOKEN_EXPIRED);
    }
    if allows(app, identity, need) {
        Ok(())
    } else {
        Err(PERMISSION_DENIED)
    }
}

/// The per-caller dispatch rate limit (a token's accessor, else the peer address): the
/// 429 answer when the caller is over it. `job` names the job in the answer.
pub fn over_dispatch_rate(
    app: &AppState,
    identity: &Identity,
    peer: Option<std::net::IpAddr>,
    job: &str,
) -> Option<Response> {
    let limiter = app.security.limiter.as_ref()?;
    let key = match identity.accessor() {
        Some(a) => format!("token:{a}"),
        None => format!(
            "addr:{}",
            peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
        ),
    };
    let wait = limiter.take(&key, std::time::Instant::now()).err()?;
    let known = app.state.read().job(job).is_some();
    Some(super::backpressure::too_many(
        if known { job } else { "_unknown" },
        wait,
    ))
}

/// What `method` on the matched `route` needs (`rest`: the path's wildcard, for job and
/// evaluation routes; `query` for list filters).
pub fn need(method: &Method, route: &str, rest: &str, query: &Query) -> Need {
    let write = method == Method::PUT || method == Method::POST;
    match route {
        "/v1/status/leader" | "/v1/status/peers" | "/v1/agent/health" | "/v1/acl/bootstrap" => {
            Need::Public
        }
        // capability URLs: the token in the path is checked by the handler's route
        r if r.starts_with("/v1/sandbox/") => Need::Public,
        "/v1/agent/self" | "/metrics" | "/v1/metrics" => Need::Agent(Level::Read),
        "/v1/system/gc" => Need::Operator(Level::Write),
        "/v1/jobs" if write => Need::RegisterBody,
        "/v1/jobs" => Need::SomeJob("list-jobs"),
        "/v1/jobs/parse" => Need::SomeJob("parse-job"),
        "/v1/search" => Need::Namespace(&["list-jobs"]),
        "/v1/allocations" => match query.get("job").filter(|j| !j.is_empty()) {
            Some(job) => Need::Job(job.to_string(), READ_JOB),
            None => Need::Namespace(READ_JOB),
        },
        "/v1/evaluations" => Need::Namespace(READ_JOB),
        "/v1/evaluation/{*id}" => {
            let id = rest.strip_suffix("/allocations").unwrap_or(rest);
            Need::Eval(id.to_string())
        }
        "/v1/job/{*id}" => job_need(method, rest, query),
        "/v1/acl/policies" | "/v1/acl/token/self" => Need::AnyCaller,
        "/v1/acl/policy/{name}" if method == Method::GET => Need::PolicyRead(rest.to_string()),
        "/v1/acl/token/{accessor}" if method == Method::GET => Need::TokenRead(rest.to_string()),
        r if r.starts_with("/v1/acl/") => Need::Management,
        // a route added without a rule here is for management only, never open
        _ => Need::Management,
    }
}

fn job_need(method: &Method, rest: &str, query: &Query) -> Need {
    let write = method == Method::PUT || method == Method::POST;
    let (id, suffix, _) = super::job::split_suffix(rest);
    let id = id.to_string();
    match (suffix, write) {
        ("", _) if method == Method::DELETE => {
            let purge = query.flag("purge").unwrap_or(false);
            Need::Job(id, if purge { PURGE } else { DEREGISTER })
        }
        ("", true) => Need::Job(id, SUBMIT),
        ("/dispatch" | "/dispatch/payload", _) => Need::Job(id, DISPATCH),
        ("/logs", _) => Need::Job(id, LOGS),
        // rendered templates are sandbox files (the transcode job's S3 keys)
        ("/fs" | "/rendered", _) => Need::Job(id, FS),
        _ => Need::Job(id, READ_JOB),
    }
}

/// Whether a dispatch goes through this route (rate limits apply).
fn is_dispatch(method: &Method, route: &str, rest: &str) -> bool {
    (method == Method::PUT || method == Method::POST)
        && route == "/v1/job/{*id}"
        && matches!(
            super::job::split_suffix(rest).1,
            "/dispatch" | "/dispatch/payload"
        )
}

fn denied(message: &'static str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The middleware (a `route_layer`: it sees the matched route).
pub async fn edge(
    State(app): State<AppState>,
    mut request: axum::extract::Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |m| m.as_str())
        .to_string();
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let path = request.uri().path().to_string();
    let rest = wildcard(&route, &path);
    let query = Query::parse(request.uri().query());
    let method = request.method().clone();
    let identity = identify(&app, request.headers());
    if identity.acl_enabled {
        let need = need(&method, &route, &rest, &query);
        let checked = match &need {
            Need::RegisterBody if !matches!(identity.caller, Caller::Expired) => {
                let (allowed, rebuilt) = register_allowed(&identity, request).await;
                request = match rebuilt {
                    Ok(r) => r,
                    Err(response) => return response,
                };
                if allowed {
                    Ok(())
                } else {
                    Err(PERMISSION_DENIED)
                }
            }
            other => check(&app, &identity, other),
        };
        if let Err(message) = checked {
            return refuse_unread(request, denied(message)).await;
        }
    }
    if is_dispatch(&method, &route, &rest) {
        let job = super::job::split_suffix(&rest).0.to_string();
        if let Some(response) = over_dispatch_rate(&app, &identity, peer, &job) {
            return refuse_unread(request, response).await;
        }
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// How much of a refused request's body is read so its connection can be kept (Go's
/// net/http, hence Nomad, drains the same amount).
const DRAIN_LIMIT: usize = 256 * 1024;

/// Answer a request refused before its handler read the body. Hyper closes a connection
/// whose request body was left unread, right after the answer; a client that reuses the
/// pooled connection in that instant sees "connection closed without response" instead
/// of the 403/429. So the body is read first (up to `DRAIN_LIMIT`, briefly), and when it
/// cannot be, the answer says `Connection: close`.
async fn refuse_unread(request: axum::extract::Request, mut response: Response) -> Response {
    let body = request.into_body();
    let drained = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        axum::body::to_bytes(body, DRAIN_LIMIT),
    )
    .await;
    if !matches!(drained, Ok(Ok(_))) {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The part of `path` a route's trailing wildcard or last parameter matched (the job ID
/// and sub-resource of `/v1/job/...`, the evaluation ID, the policy name, ...).
fn wildcard(route: &str, path: &str) -> String {
    let Some(open) = route.rfind('{') else {
        return String::new();
    };
    let prefix = &route[..open];
    let raw = path.strip_prefix(prefix).unwrap_or_default();
    percent_decode(raw)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn allows(app: &AppState, identity: &Identity, need: &Need) -> bool {
    let grants = identity.grants();
    match need {
        Need::Public | Need::AnyCaller => true,
        Need::Management => grants.is_management(),
        Need::Agent(level) => grants.agent(*level),
        Need::Operator(level) => grants.operator(*level),
        Need::Namespace(caps) => caps.iter().any(|c| grants.namespace(c)),
        Need::SomeJob(cap) => grants.some_job(cap),
        Need::Job(id, caps) => caps.iter().any(|c| grants.job(id, c)),
        Need::Eval(id) => {
            let job = uuid::Uuid::parse_str(id).ok().and_then(|eval| {
                app.state
                    .read()
                    .dispatch_of_eval(&eval)
                    .map(|d| d.id.to_string())
            });
            match job {
                Some(job) => grants.job(&job, "read-job"),
                // an unknown evaluation: whoever may read jobs gets the 404
                None => grants.namespace("read-job"),
            }
        }
        Need::PolicyRead(name) => {
            grants.is_management()
                || name == crate::state::acl::ANONYMOUS
                || matches!(&identity.caller, Caller::Token { token, .. } if token.policies.contains(name))
        }
        Need::TokenRead(accessor) => {
            grants.is_management() || identity.accessor() == Some(accessor.as_str())
        }
        Need::RegisterBody => false,
    }
}

/// `PUT /v1/jobs`: the job ID is in the body. Management and namespace-wide `submit-job`
/// need not look; otherwise the body is read (within the API's body limit) for `Job.ID`,
/// and handed on unchanged.
async fn register_allowed(
    identity: &Identity,
    request: axum::extract::Request,
) -> (bool, Result<axum::extract::Request, Response>) {
    let grants = identity.grants();
    if SUBMIT.iter().any(|c| grants.namespace(c)) {
        return (true, Ok(request));
    }
    if !SUBMIT.iter().any(|c| grants.some_job(c)) {
        return (false, Ok(request));
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, super::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let response = (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("cannot read the request body: {e}"),
            )
                .into_response();
            return (false, Err(response));
        }
    };
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            let job = super::jobs::field(&v, "Job")?.clone();
            super::jobs::field(&job, "ID")?.as_str().map(str::to_string)
        });
    let allowed = id.is_some_and(|id| SUBMIT.iter().any(|c| grants.job(&id, c)));
    (
        allowed,
        Ok(axum::extract::Request::from_parts(parts, Body::from(bytes))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> Query {
        Query::parse(Some(raw))
    }

    #[test]
    fn routes_need_nomads_capabilities() {
        let none = q("");
        let cases: Vec<(Method, &str, &str, Need)> = vec![
            (Method::GET, "/v1/jobs", "", Need::SomeJob("list-jobs")),
            (Method::PUT, "/v1/jobs", "", Need::RegisterBody),
            (
                Method::POST,
                "/v1/job/{*id}",
                "transcode/dispatch",
                Need::Job("transcode".into(), DISPATCH),
            ),
            (
                Method::PUT,
                "/v1/job/{*id}",
                "transcode/dispatch/payload",
                Need::Job("transcode".into(), DISPATCH),
            ),
            (
                Method::GET,
                "/v1/job/{*id}",
                "transcode/dispatch-1-ab",
                Need::Job("transcode/dispatch-1-ab".into(), READ_JOB),
            ),
            (
                Method::GET,
                "/v1/job/{*id}",
                "t/dispatch-1-ab/logs",
                Need::Job("t/dispatch-1-ab".into(), LOGS),
            ),
            (
                Method::GET,
                "/v1/job/{*id}",
                "t/dispatch-1-ab/rendered",
                Need::Job("t/dispatch-1-ab".into(), FS),
            ),
            (
                Method::PUT,
                "/v1/job/{*id}",
                "t",
                Need::Job("t".into(), SUBMIT),
            ),
            (
                Method::DELETE,
                "/v1/job/{*id}",
                "t",
                Need::Job("t".into(), DEREGISTER),
            ),
            (Method::GET, "/v1/agent/self", "", Need::Agent(Level::Read)),
            (Method::GET, "/metrics", "", Need::Agent(Level::Read)),
            (Method::GET, "/v1/status/leader", "", Need::Public),
            (
                Method::PUT,
                "/v1/system/gc",
                "",
                Need::Operator(Level::Write),
            ),
            (Method::GET, "/v1/acl/tokens", "", Need::Management),
            (Method::GET, "/v1/acl/token/self", "", Need::AnyCaller),
            (
                Method::GET,
                "/v1/acl/token/{accessor}",
                "abc",
                Need::TokenRead("abc".into()),
            ),
            (
                Method::DELETE,
                "/v1/acl/token/{accessor}",
                "abc",
                Need::Management,
            ),
            (
                Method::GET,
                "/v1/acl/policy/{name}",
                "p",
                Need::PolicyRead("p".into()),
            ),
            (Method::POST, "/v1/acl/bootstrap", "", Need::Public),
            (Method::GET, "/v1/something/new", "", Need::Management),
        ];
        for (method, route, rest, want) in cases {
            assert_eq!(
                need(&method, route, rest, &none),
                want,
                "{method} {route} {rest}"
            );
        }
        assert_eq!(
            need(&Method::DELETE, "/v1/job/{*id}", "t", &q("purge=true")),
            Need::Job("t".into(), PURGE)
        );
        assert_eq!(
            need(&Method::GET, "/v1/allocations", "", &q("job=transcode")),
            Need::Job("transcode".into(), READ_JOB)
        );
    }

    #[test]
    fn secrets_come_from_nomads_header_or_a_bearer_token() {
        let mut h = HeaderMap::new();
        assert_eq!(secret_of(&h), None);
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(secret_of(&h), None, "other schemes are not tokens");
        h.insert(header::AUTHORIZATION, "bearer abc def".parse().unwrap());
        assert_eq!(secret_of(&h).as_deref(), Some("abc"));
        h.insert("x-nomad-token", " xyz ".parse().unwrap());
        assert_eq!(secret_of(&h).as_deref(), Some("xyz"), "X-Nomad-Token wins");
    }

    #[test]
    fn the_wildcard_is_decoded() {
        assert_eq!(
            wildcard("/v1/job/{*id}", "/v1/job/transcode%2Fdispatch-1-ab/logs"),
            "transcode/dispatch-1-ab/logs"
        );
        assert_eq!(
            wildcard("/v1/acl/policy/{name}", "/v1/acl/policy/ops"),
            "ops"
        );
        assert_eq!(wildcard("/v1/jobs", "/v1/jobs"), "");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
