//! `dispatch-bench --ceiling`: the trivial-handler ceiling for `scripts/bench/p1.sh`.
//!
//! An axum server on the same route as Dispatch (`/v1/job/<id>/dispatch`, a wildcard as the
//! real router has), with the same runtime, that parses the JSON body into a typed request,
//! makes a child ID and an eval ID the way the real handler does and answers Nomad's
//! dispatch reply with the same headers, and stores nothing. What Dispatch does beyond this
//! (validation, the writer, the durable commit) is what a ratio against it measures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Reply {
    #[serde(rename = "DispatchedJobID")]
    dispatched_job_id: String,
    #[serde(rename = "EvalID")]
    eval_id: String,
    eval_create_index: u64,
    job_create_index: u64,
    index: u64,
}

async fn dispatch(
    State(index): State<Arc<AtomicU64>>,
    Path(rest): Path<String>,
    body: Bytes,
) -> Response {
    let Some(job) = rest.strip_suffix("/dispatch") else {
        return (StatusCode::NOT_FOUND, "no such route").into_response();
    };
    let request: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if request.meta.is_empty() && request.payload.is_none() {
        return (StatusCode::BAD_REQUEST, "empty dispatch").into_response();
    }
    let index = index.fetch_add(1, Ordering::Relaxed) + 1;
    let random = uuid::Uuid::new_v4().simple().to_string();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let reply = Reply {
        dispatched_job_id: format!("{job}/dispatch-{unix}-{}", &random[..8]),
        eval_id: uuid::Uuid::new_v4().to_string(),
        eval_create_index: index,
        job_create_index: index,
        index,
    };
    let Ok(body) = serde_json::to_vec(&reply) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-nomad-index", HeaderValue::from(index));
    headers.insert("x-nomad-knownleader", HeaderValue::from_static("true"));
    headers.insert("x-nomad-lastcontact", HeaderValue::from_static("0"));
    (StatusCode::OK, headers, body).into_response()
}

/// Serve the ceiling on `bind` until killed; prints `ceiling listening on http://ADDR`.
pub async fn serve(bind: SocketAddr) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let app = Router::new()
        .route("/v1/job/{*rest}", any(dispatch))
        .with_state(Arc::new(AtomicU64::new(0)));
    println!("ceiling listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
