//! `GET /metrics` (Prometheus text) and `GET /v1/metrics` (Nomad's JSON summary, or the
//! text with `?format=prometheus`), and the HTTP latency of every request.
//!
//! The names and the recorder are `crate::metrics`'s; this module feeds it what only the API
//! sees: the queue gauges from the state before each scrape (`refresh_gauges`, also run on
//! a timer by the server) and each request's route template. The template is the router's
//! own (`MatchedPath`, `{id}` written `:id`), so a new route is never mislabelled; handlers
//! that route further by themselves (`/v1/job/<id>/<sub-resource>`) name theirs with a
//! `RouteLabel` on the response. Requests that match no route are `other`.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{MatchedPath, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics::{self, JobQueue};
use crate::state::StateHandle;

/// The route template of a response, set by handlers that pick the sub-resource themselves.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Set the queue gauges from the per-job counters the state keeps (O(jobs)).
pub fn refresh_gauges(state: &StateHandle) {
    let rows: Vec<JobQueue> = {
        let s = state.read();
        s.jobs()
            .filter(|e| e.job.parameterized.is_some())
            .map(|e| JobQueue {
                job: e.job.id.clone(),
                pending: e.children.pending,
                running: e.children.running,
                complete: e.children.complete,
                failed: e.children.failed,
                stopped: e.children.stopped,
                pending_demand: e.pending_demand.into(),
            })
            .collect()
    };
    metrics::set_queue_gauges(rows);
}

/// axum middleware: HTTP latency per route template, method and status class.
pub async fn track_http(request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| template(m.as_str()));
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = match response.extensions().get::<RouteLabel>() {
        Some(label) => label.0.to_string(),
        None => matched.unwrap_or_else(|| "other".to_string()),
    };
    metrics::http_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A router path as a label: `{id}` and `{*path}` become `:id` and `:path`.
fn template(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                out.push(':');
                out.push_str(param.trim_start_matches('*'));
            }
            None => out.push_str(segment),
        }
    }
    out
}

/// `GET /metrics`.
pub async fn prometheus(State(app): State<AppState>) -> Response {
    refresh_gauges(&app.state);
    text_reply(metrics::render())
}

fn text_reply(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /v1/metrics[?format=prometheus]`.
pub async fn v1(State(app): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    refresh_gauges(&app.state);
    let text = metrics::render();
    let prometheus = raw
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "format=prometheus");
    if prometheus {
        return text_reply(text);
    }
    axum::Json(summary(&text, app.clock.now_ns())).into_response()
}

/// A histogram's (count, sum, labels) in the JSON summary.
type Sample = (f64, f64, serde_json::Map<String, serde_json::Value>);
/// Label pairs in the order rendered.
type Labels = Vec<(String, String)>;

/// Nomad's `/v1/metrics` JSON shape, built from the Prometheus text: gauges, counters, and
/// histograms as samples (count, sum, mean).
pub fn summary(text: &str, now: i64) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut gauges = Vec::new();
    let mut counters = Vec::new();
    // (name, labels) -> (count, sum)
    let mut samples: BTreeMap<(String, String), Sample> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                types.insert(name.to_string(), kind.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, labels, value)) = parse_sample(line) else {
            continue;
        };
        let labels_json: Map<String, Value> = labels
            .iter()
            .filter(|(k, _)| k != "le")
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        match types.get(&name).map(String::as_str) {
            Some("gauge") => {
                gauges.push(json!({"Name": name, "Value": value, "Labels": labels_json}))
            }
            Some("counter") => counters.push(json!({
                "Name": name, "Count": value, "Sum": value, "Labels": labels_json
            })),
            _ => {
                let (base, part) = if let Some(b) = name.strip_suffix("_sum") {
                    (b, "sum")
                } else if let Some(b) = name.strip_suffix("_count") {
                    (b, "count")
                } else {
                    continue;
                };
                let key = (
                    base.to_string(),
                    Value::Object(labels_json.clone()).to_string(),
                );
                let entry = samples.entry(key).or_insert((0.0, 0.0, labels_json));
                if part == "sum" {
                    entry.1 = value;
                } else {
                    entry.0 = value;
                }
            }
        }
    }
    let samples: Vec<Value> = samples
        .into_iter()
        .map(|((name, _), (count, sum, labels))| {
            let mean = if count > 0.0 { sum / count } else { 0.0 };
            json!({"Name": name, "Count": count, "Sum": sum, "Mean": mean, "Labels": labels})
        })
        .collect();
    let timestamp = crate::clock::rfc3339_nanos(now).unwrap_or_default();
    json!({"Timestamp": timestamp, "Gauges": gauges, "Counters": counters, "Samples": samples})
}

/// `name{k="v",...} value` -> (name, labels, value).
fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = head.split_once('{') else {
        return Some((head.to_string(), Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim_start_matches(',').to_string();
        if key.is_empty() || key == "}" {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut v = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => v.push('\n'),
                    other => v.push(other),
                },
                '"' => break,
                c => v.push(c),
            }
        }
        labels.push((key, v));
        if chars.peek() == Some(&'}') {
            break;
        }
    }
    Some((name.to_string(), labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_paths_become_templates() {
        assert_eq!(template("/v1/job/{*id}"), "/v1/job/:id");
        assert_eq!(
            template("/v1/sandbox/{task_id}/{*path}"),
            "/v1/sandbox/:task_id/:path"
        );
        assert_eq!(template("/v1/allocations"), "/v1/allocations");
    }

    #[test]
    fn summary_parses_prometheus_text() {
        let text = "# TYPE g gauge\ng{job=\"a\\\"b\",state=\"pending\"} 3\n# TYPE c counter\nc 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0.5\nh_count 2\n";
        let v = summary(text, 0);
        assert_eq!(v["Timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!(v["Gauges"][0]["Value"], 3.0);
        assert_eq!(v["Gauges"][0]["Labels"]["job"], "a\"b");
        assert_eq!(v["Counters"][0]["Count"], 2.0);
        assert_eq!(v["Samples"][0]["Mean"], 0.25);
    }
}
