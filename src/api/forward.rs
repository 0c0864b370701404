//! A standby's door to the leader: requests that change something (register, dispatch,
//! stop, garbage collection, ACL bootstrap, policies and tokens) or need the cluster backend
//! (task logs and files, rendered tasks, which only the leader runs) are sent on to the
//! leader as they came, with the caller's token (`X-Nomad-Token` / `Authorization`), so the
//! leader authorizes them; its answer comes back as is. This layer sits outside the ACL
//! edge: a forwarded request is checked once, by the leader, against the same tokens and
//! policies (a standby's copy follows the leader's).
//! Reads are answered here, from this server's warm copy (blocking queries included).
//! A forwarded write is answered once this server's copy has caught up with the index the
//! leader answered (`X-Nomad-Index`, waiting at most `CATCH_UP`), so a client that reads
//! back what it just wrote through the same server finds it.
//!
//! No leader known (an election is under way): 503 with what to do. The leader's address
//! comes from the store (`leadership::Role`), so it is right within one renewal.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// Longest a forwarded write's answer waits for this server's copy to catch up.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest request body forwarded (a payload is at most 16 KiB; a job file is small).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Marks a forwarded request: a server that receives one and does not lead answers 503
/// rather than forwarding again (no loops while servers disagree for a moment).
const FORWARDED: &str = "x-dispatch-forwarded";

pub async fn to_leader(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(role) = &app.role else {
        return next.run(request).await;
    };
    let role = role.borrow().clone();
    if role.leading || !needs_leader(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    if request.headers().contains_key(FORWARDED) {
        return ApiError::Unavailable(
            "this server was named leader but no longer leads; retry".into(),
        )
        .into_response();
    }
    let Some(leader) = role.leader else {
        return ApiError::Unavailable(
            "no server leads right now (an election is under way); retry in a few seconds".into(),
        )
        .into_response();
    };
    match forward(&app.http, &leader.url, request).await {
        Ok(response) => {
            crate::metrics::forwarded(Some(response.status().as_u16()));
            let index = response
                .headers()
                .get("x-nomad-index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(index) = index.filter(|_| response.status().is_success()) {
                app.state
                    .wait_for_index(index.saturating_sub(1), CATCH_UP)
                    .await;
            }
            response
        }
        Err(e) => {
            crate::metrics::forwarded(None);
            ApiError::Unavailable(format!(
                "the leader {} did not answer ({e}); retry",
                leader.address
            ))
            .into_response()
        }
    }
}

/// Writes, and whatever needs the backend.
fn needs_leader(method: &Method, path: &str) -> bool {
    let read_only_put = path == "/v1/search" || path == "/v1/jobs/parse";
    let writes = !(method == Method::GET || method == Method::HEAD || read_only_put);
    let ui_backend = matches!(path, "/ui/cluster" | "/ui/clients" | "/ui/servers");
    let backend = ui_backend
        || path.starts_with("/v1/sandbox/")
        || (path.starts_with("/v1/job/")
            && (path.ends_with("/logs") || path.ends_with("/fs") || path.ends_with("/rendered")));
    writes || backend
}

async fn forward(http: &reqwest::Client, base: &str, request: Request) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?;
    let mut out = http.request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            out = out.header(name, value);
        }
    }
    out = out.header(FORWARDED, "1");
    let answer = out.send().await.map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16())
        .map_err(|e| format!("bad status from the leader: {e}"))?;
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    response
        .body(Body::from(bytes))
        .map_err(|e| format!("cannot relay the leader's answer: {e}"))
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "content-length"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_backend_reads_go_to_the_leader() {
        assert!(needs_leader(&Method::PUT, "/v1/job/j/dispatch"));
        assert!(needs_leader(&Method::POST, "/v1/jobs"));
        assert!(needs_leader(&Method::DELETE, "/v1/job/j"));
        assert!(needs_leader(&Method::GET, "/v1/job/j/dispatch-1-ab/logs"));
        assert!(needs_leader(
            &Method::GET,
            "/v1/job/j/dispatch-1-ab/rendered"
        ));
        assert!(needs_leader(&Method::POST, "/v1/acl/bootstrap"));
        assert!(needs_leader(&Method::POST, "/v1/acl/token"));
        assert!(needs_leader(&Method::DELETE, "/v1/acl/policy/p"));
        assert!(!needs_leader(&Method::GET, "/v1/acl/token/self"));
        assert!(needs_leader(&Method::POST, "/ui/jobs/j/dispatch"));
        assert!(needs_leader(&Method::GET, "/ui/cluster"));
        assert!(!needs_leader(&Method::GET, "/ui/jobs"));
        assert!(!needs_leader(&Method::GET, "/v1/job/j"));
        assert!(!needs_leader(&Method::GET, "/v1/jobs"));
        assert!(!needs_leader(&Method::PUT, "/v1/search"));
        assert!(!needs_leader(&Method::POST, "/v1/jobs/parse"));
    }
}
