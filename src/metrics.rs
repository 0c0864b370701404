//! Metrics: every metric name the service exports is defined here, and nowhere else.
//!
//! The rest of the code calls the small functions below (one line at each call site:
//! `metrics::dispatch_request(..)`, `metrics::offers_received(..)`, `metrics::commit(..)`).
//! They record through the `metrics` facade into one process-global recorder, installed once
//! by `start`: the Prometheus recorder (rendered by our own `GET /metrics` and
//! `GET /v1/metrics`), fanned out to a DogStatsD exporter when `-statsd-addr` is set
//! (`metrics_util::layers::FanoutBuilder`). DogStatsD receives the same names, with tags
//! instead of labels.
//!
//! Queue depth and pending demand are gauges set by `refresh` from the counters the state
//! already keeps per parent job (`JobEntry::children`, `JobEntry::pending_demand`): O(number
//! of jobs) under the read lock, never a scan of the dispatches. `refresh` runs at every
//! scrape and on a timer (for DogStatsD). Gauges of a job that no longer exists are set to 0
//! once and then left to expire (Prometheus drops gauges not updated for `GAUGE_IDLE`).
//!
//! Labels are low-cardinality on purpose: `job` is always a parent job ID (never a dispatch
//! ID), `route` is a route template (never a raw path), `backend` is `local` or `mesos`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::api::AppState;
use crate::cluster::{Demand, Offer, TaskInfo, TaskState, TaskStatus};
use crate::model::DispatchStatus;
use crate::state::{Reply, State as ServiceState, StateError, StateHandle};

// ---------------------------------------------------------------------------------------
// Names. Each is documented in README.md ("Metrics") with its type and labels.
// ---------------------------------------------------------------------------------------

/// Gauge, labels `job`, `state` (`pending`, `running`, `complete`, `failed`, `stopped`):
/// children of a parameterized job by status. `pending` is the queue depth.
pub const QUEUE_DEPTH: &str = "dispatch_queue_depth";
/// Gauge, label `job`: cpus asked for by the job's pending (never launched) dispatches.
pub const PENDING_CPUS: &str = "dispatch_pending_cpus";
/// Gauge, label `job`: memory asked for by pending dispatches, in bytes (job MB × 2^20).
pub const PENDING_MEMORY: &str = "dispatch_pending_memory_bytes";
/// Gauge, label `job`: disk asked for by pending dispatches, in bytes (job MB × 2^20).
pub const PENDING_DISK: &str = "dispatch_pending_disk_bytes";
/// Gauge, label `job`: GPUs asked for by pending dispatches.
pub const PENDING_GPUS: &str = "dispatch_pending_gpus";
/// Counter, labels `job`, `outcome` (`accepted`, `rejected`, `replay`), `reason` (a slug of
/// the rejection, `none` otherwise): dispatch requests answered by the API.
pub const DISPATCH_REQUESTS: &str = "dispatch_dispatch_requests_total";
/// Histogram (seconds), labels `route` (template), `method`, `status` (`2xx`, `4xx`, ...):
/// HTTP request latency.
pub const HTTP_DURATION: &str = "dispatch_http_request_duration_seconds";
/// Histogram (seconds), label `job`: from dispatch submission to its first TASK_RUNNING.
pub const QUEUE_WAIT: &str = "dispatch_queue_wait_seconds";
/// Histogram (seconds), label `job`: from launch to the end of a task run.
pub const RUN_TIME: &str = "dispatch_task_run_seconds";
/// Counter, labels `backend`, `state` (`task_running`, `task_finished`, ...): task state
/// transitions reported by the cluster.
pub const TASK_TRANSITIONS: &str = "dispatch_task_state_transitions_total";
/// Counter, label `backend`: offers received.
pub const OFFERS_RECEIVED: &str = "dispatch_offers_received_total";
/// Counter, label `backend`: offers accepted with at least one launch.
pub const OFFERS_USED: &str = "dispatch_offers_used_total";
/// Counter, label `backend`: offers declined (nothing fit or nothing was ready).
pub const OFFERS_DECLINED: &str = "dispatch_offers_declined_total";
/// Counter, label `backend`: offers rescinded by the cluster.
pub const OFFERS_RESCINDED: &str = "dispatch_offers_rescinded_total";
pub const GC_REMOVED: &str = "dispatch_gc_children_removed_total";
/// Counter, label `backend`: tasks launched.
pub const TASKS_LAUNCHED: &str = "dispatch_tasks_launched_total";
/// Counter, label `backend`: status updates acknowledged (after they were durable).
pub const ACKS: &str = "dispatch_acknowledgements_total";
/// Counter, labels `backend`, `kind` (`explicit`, `implicit`): reconciliation requests.
pub const RECONCILES: &str = "dispatch_reconciliations_total";
/// Counter, labels `backend`, `resource` (`millicpus`, `mem_mb`, `disk_mb`, `gpus`): resources
/// offered, summed over offers.
pub const RESOURCES_OFFERED: &str = "dispatch_offered_resources_total";
/// Counter, labels `backend`, `resource`: resources given to launched tasks.
pub const RESOURCES_USED: &str = "dispatch_used_resources_total";
/// Gauge, label `backend`: 1 while subscribed to the cluster, 0 otherwise.
pub const CLUSTER_CONNECTED: &str = "dispatch_cluster_connected";
/// Gauge, labels `backend`, `master`: 1 for the current master (`local` for the embedded
/// runner).
pub const CLUSTER_MASTER: &str = "dispatch_cluster_master";
/// Gauge, label `backend`: seconds since the last heartbeat (or any other event) from the
/// cluster.
pub const CLUSTER_HEARTBEAT_AGE: &str = "dispatch_cluster_seconds_since_heartbeat";
/// Histogram (seconds): duration of one store commit (one transaction, one fsync).
pub const COMMIT_SECONDS: &str = "dispatch_store_commit_seconds";
/// Histogram: commands answered by one commit (group commit batch size).
pub const COMMIT_BATCH: &str = "dispatch_store_commit_batch_size";

/// States of `QUEUE_DEPTH`.
const DEPTH_STATES: [&str; 5] = ["pending", "running", "complete", "failed", "stopped"];
/// Prometheus forgets gauges not set for this long (purged jobs' zeros, gone backends).
const GAUGE_IDLE: Duration = Duration::from_secs(300);
/// How often gauges are refreshed and the Prometheus recorder's upkeep runs without scrapes.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// DogStatsD flush interval.
const STATSD_FLUSH: Duration = Duration::from_secs(3);
const MIB: f64 = 1024.0 * 1024.0;

// ---------------------------------------------------------------------------------------
// Installation
// ---------------------------------------------------------------------------------------

struct Installed {
    prometheus: PrometheusHandle,
    statsd: Option<String>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Install the global recorder (once per process) and start the refresh timer for `state`.
/// A second call in the same process (tests run several servers) reuses the recorder; it
/// cannot add a DogStatsD address the first call did not have (logged).
pub fn start(state: StateHandle, statsd_addr: Option<&str>) -> Result<(), String> {
    let installed = install(statsd_addr)?;
    if statsd_addr.is_some() && installed.statsd.as_deref() != statsd_addr {
        tracing::warn!(
            "metrics recorder already installed in this process; -statsd-addr {} ignored",
            statsd_addr.unwrap_or_default()
        );
    }
    let handle = installed.prometheus.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tick.tick().await;
            refresh(&state);
            handle.run_upkeep();
        }
    });
    Ok(())
}

fn install(statsd_addr: Option<&str>) -> Result<&'static Installed, String> {
    let _guard = lock(&INSTALL);
    if let Some(installed) = INSTALLED.get() {
        return Ok(installed);
    }
    let prometheus = prometheus_builder()
        .map_err(|e| format!("metrics: {e}"))?
        .build_recorder();
    let handle = prometheus.handle();
    let result = match statsd_addr {
        None => ::metrics::set_global_recorder(prometheus).map_err(|_| ()),
        Some(addr) => {
            let statsd = metrics_exporter_dogstatsd::DogStatsDBuilder::default()
                .with_remote_address(addr)
                .map_err(|e| format!("-statsd-addr {addr}: {e}"))?
                .with_telemetry(false)
                .with_flush_interval(STATSD_FLUSH)
                .build()
                .map_err(|e| format!("cannot start the DogStatsD exporter: {e}"))?;
            let fanout = metrics_util::layers::FanoutBuilder::default()
                .add_recorder(prometheus)
                .add_recorder(DatadogNames(statsd))
                .build();
            ::metrics::set_global_recorder(fanout).map_err(|_| ())
        }
    };
    if result.is_err() {
        // Someone else installed a recorder: our handle renders nothing, but nothing breaks.
        tracing::warn!("a global metrics recorder was already installed");
    }
    describe();
    Ok(INSTALLED.get_or_init(|| Installed {
        prometheus: handle,
        statsd: statsd_addr.map(str::to_string),
    }))
}

/// DogStatsD gets Datadog's names for the same series, the names Datadog's openmetrics
/// check gives them when it scrapes `/metrics` (`deploy/datadog`): `dispatch_queue_depth` ->
/// `dispatch.queue_depth`; counters lose `_total` and gain `.count`
/// (`dispatch.dispatch_requests.count`). Histograms are sent as distributions
/// (`dispatch.queue_wait_seconds`). Labels become tags.
struct DatadogNames<R>(R);

/// The DogStatsD name of a metric.
pub fn datadog_name(name: &str, counter: bool) -> String {
    let name = name
        .strip_prefix("dispatch_")
        .map_or_else(|| name.to_string(), |rest| format!("dispatch.{rest}"));
    match name.strip_suffix("_total") {
        Some(base) if counter => format!("{base}.count"),
        _ => name,
    }
}

fn datadog_key(key: &::metrics::Key, counter: bool) -> ::metrics::Key {
    ::metrics::Key::from_parts(
        datadog_name(key.name(), counter),
        key.labels().cloned().collect::<Vec<_>>(),
    )
}

impl<R: ::metrics::Recorder> ::metrics::Recorder for DatadogNames<R> {
    fn describe_counter(
        &self,
        key: ::metrics::KeyName,
        unit: Option<Unit>,
        d: ::metrics::SharedString,
    ) {
        self.0
            .describe_counter(datadog_name(key.as_str(), true).into(), unit, d)
    }
    fn describe_gauge(
        &self,
        key: ::metrics::KeyName,
        unit: Option<Unit>,
        d: ::metrics::SharedString,
    ) {
        self.0
            .describe_gauge(datadog_name(key.as_str(), false).into(), unit, d)
    }
    fn describe_histogram(
        &self,
        key: ::metrics::KeyName,
        unit: Option<Unit>,
        d: ::metrics::SharedString,
    ) {
        self.0
            .describe_histogram(datadog_name(key.as_str(), false).into(), unit, d)
    }
    fn register_counter(
        &self,
        key: &::metrics::Key,
        m: &::metrics::Metadata<'_>,
    ) -> ::metrics::Counter {
        self.0.register_counter(&datadog_key(key, true), m)
    }
    fn register_gauge(
        &self,
        key: &::metrics::Key,
        m: &::metrics::Metadata<'_>,
    ) -> ::metrics::Gauge {
        self.0.register_gauge(&datadog_key(key, false), m)
    }
    fn register_histogram(
        &self,
        key: &::metrics::Key,
        m: &::metrics::Metadata<'_>,
    ) -> ::metrics::Histogram {
        self.0.register_histogram(&datadog_key(key, false), m)
    }
}

fn prometheus_builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    let latency = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let wait = [
        1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
    ];
    let batch = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
    ];
    PrometheusBuilder::new()
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &latency)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.into()), &latency)?
        .set_buckets_for_metric(Matcher::Full(QUEUE_WAIT.into()), &wait)?
        .set_buckets_for_metric(Matcher::Full(RUN_TIME.into()), &wait)?
        .set_buckets_for_metric(Matcher::Full(COMMIT_BATCH.into()), &batch)
}

fn describe() {
    describe_gauge!(
        QUEUE_DEPTH,
        "Children of a parameterized job by status (pending = queue depth)"
    );
    describe_gauge!(
        PENDING_CPUS,
        "CPUs asked for by the job's pending dispatches"
    );
    describe_gauge!(
        PENDING_MEMORY,
        Unit::Bytes,
        "Memory asked for by the job's pending dispatches"
    );
    describe_gauge!(
        PENDING_DISK,
        Unit::Bytes,
        "Disk asked for by the job's pending dispatches"
    );
    describe_gauge!(
        PENDING_GPUS,
        "GPUs asked for by the job's pending dispatches"
    );
    describe_counter!(DISPATCH_REQUESTS, "Dispatch requests by job and outcome");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route"
    );
    describe_histogram!(
        QUEUE_WAIT,
        Unit::Seconds,
        "Dispatch submission to first TASK_RUNNING"
    );
    describe_histogram!(
        RUN_TIME,
        Unit::Seconds,
        "Task run time from launch to its end"
    );
    describe_counter!(
        TASK_TRANSITIONS,
        "Task state transitions reported by the cluster"
    );
    describe_counter!(OFFERS_RECEIVED, "Resource offers received");
    describe_counter!(OFFERS_USED, "Offers accepted with at least one launch");
    describe_counter!(OFFERS_DECLINED, "Offers declined");
    describe_counter!(OFFERS_RESCINDED, "Offers rescinded by the cluster");
    describe_counter!(
        GC_REMOVED,
        "Dead dispatched children removed by garbage collection"
    );
    describe_counter!(TASKS_LAUNCHED, "Tasks launched");
    describe_counter!(ACKS, "Status updates acknowledged after they were durable");
    describe_counter!(RECONCILES, "Reconciliation requests sent to the cluster");
    describe_counter!(RESOURCES_OFFERED, "Resources offered, summed over offers");
    describe_counter!(RESOURCES_USED, "Resources given to launched tasks");
    describe_gauge!(
        CLUSTER_CONNECTED,
        "1 while subscribed to the cluster backend"
    );
    describe_gauge!(
        CLUSTER_MASTER,
        "1 for the current master of the cluster backend"
    );
    describe_gauge!(
        CLUSTER_HEARTBEAT_AGE,
        Unit::Seconds,
        "Seconds since the cluster last sent a heartbeat or event"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Store commit duration (one transaction, one fsync)"
    );
    describe_histogram!(COMMIT_BATCH, "Commands answered by one store commit");
}

/// The Prometheus text of everything recorded so far (gauges refreshed first).
pub fn render(state: &StateHandle) -> String {
    refresh(state);
    match INSTALLED.get() {
        Some(installed) => installed.prometheus.render(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Queue gauges
// ---------------------------------------------------------------------------------------

/// Jobs whose gauges were set by the last refresh (to zero those that disappear).
static EXPORTED_JOBS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Set the queue-depth, pending-demand and cluster gauges. O(jobs): reads the per-job
/// counters the state keeps; never scans the dispatches.
pub fn refresh(state: &StateHandle) {
    let rows: Vec<(String, [u64; 5], Demand)> = {
        let s = state.read();
        s.jobs()
            .filter(|e| e.job.parameterized.is_some())
            .map(|e| {
                let c = e.children;
                let counts = [c.pending, c.running, c.complete, c.failed, c.stopped];
                (e.job.id.clone(), counts, e.pending_demand)
            })
            .collect()
    };
    let mut exported = lock(&EXPORTED_JOBS);
    let previous = exported.take().unwrap_or_default();
    let mut current = HashSet::with_capacity(rows.len());
    for (job, counts, demand) in rows {
        set_job_gauges(&job, counts, &demand);
        current.insert(job);
    }
    for gone in previous.difference(&current) {
        set_job_gauges(gone, [0; 5], &Demand::default());
    }
    *exported = Some(current);
    drop(exported);
    refresh_cluster();
}

fn set_job_gauges(job: &str, counts: [u64; 5], demand: &Demand) {
    for (state, n) in DEPTH_STATES.iter().zip(counts) {
        gauge!(QUEUE_DEPTH, "job" => job.to_string(), "state" => *state).set(n as f64);
    }
    gauge!(PENDING_CPUS, "job" => job.to_string()).set(demand.cpus);
    gauge!(PENDING_MEMORY, "job" => job.to_string()).set(demand.mem_mb * MIB);
    gauge!(PENDING_DISK, "job" => job.to_string()).set(demand.disk_mb * MIB);
    gauge!(PENDING_GPUS, "job" => job.to_string()).set(demand.gpus);
}

// ---------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------

/// Count a dispatch request by its result: accepted, idempotent replay, or rejected with a
/// reason slug. Unknown parents are counted under `job="_unknown"` (no user-chosen labels).
pub fn dispatch_request(job: &str, result: &Result<Reply, StateError>) {
    let (outcome, reason) = match result {
        Ok(Reply::Dispatched(r)) if r.eval_id.is_none() => ("replay", "none"),
        Ok(_) => ("accepted", "none"),
        Err(e) => ("rejected", reason_slug(e)),
    };
    let job = match result {
        Err(StateError::ParentNotFound | StateError::MissingJobId) => "_unknown",
        _ => job,
    };
    counter!(DISPATCH_REQUESTS, "job" => job.to_string(), "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// Pass a decoded dispatch request through, counting a decode failure as a rejection
/// (`reason="bad_request"`, `job="_unknown"`: the job was not looked up).
pub fn dispatch_decoded<T, E>(result: Result<T, E>) -> Result<T, E> {
    if result.is_err() {
        counter!(DISPATCH_REQUESTS, "job" => "_unknown", "outcome" => "rejected", "reason" => "bad_request")
            .increment(1);
    }
    result
}

/// A short, stable slug of a state error (the `reason` label).
pub fn reason_slug(e: &StateError) -> &'static str {
    match e {
        StateError::MissingJobId => "missing_job_id",
        StateError::ParentNotFound => "parent_not_found",
        StateError::JobNotFound => "job_not_found",
        StateError::NotParameterized(_) => "not_parameterized",
        StateError::Stopped(_) => "job_stopped",
        StateError::PayloadRequired => "payload_required",
        StateError::PayloadForbidden => "payload_forbidden",
        StateError::PayloadTooLarge(_) => "payload_too_large",
        StateError::UnpermittedMeta(_) => "unpermitted_meta",
        StateError::MissingMeta(_) => "missing_meta",
        StateError::Priority => "bad_priority",
        StateError::CannotUnparameterize | StateError::CannotParameterize => "bad_job_change",
        StateError::ChildIsReadOnly(_) => "child_read_only",
        StateError::Invalid(_) => "invalid",
        StateError::Render(_) => "render_error",
        StateError::NotLaunchable(..) => "not_launchable",
        StateError::WriterGone => "shutting_down",
    }
}

/// axum middleware: HTTP latency per route template, method and status class.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    histogram!(HTTP_DURATION, "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The route template of a request path: a fixed set, never a raw ID.
pub fn route_label(path: &str) -> &'static str {
    const FIXED: &[&str] = &[
        "/metrics",
        "/v1/metrics",
        "/v1/jobs",
        "/v1/jobs/parse",
        "/v1/evaluations",
        "/v1/status/leader",
        "/v1/status/peers",
        "/v1/agent/self",
        "/v1/agent/health",
        "/v1/search",
    ];
    if let Some(fixed) = FIXED.iter().find(|f| **f == path) {
        return fixed;
    }
    if path.starts_with("/v1/evaluation/") {
        return "/v1/evaluation/:id";
    }
    let Some(rest) = path.strip_prefix("/v1/job/") else {
        return "other";
    };
    const JOB: &[(&str, &str)] = &[
        ("/dispatch/payload", "/v1/job/:id/dispatch/payload"),
        ("/dispatch", "/v1/job/:id/dispatch"),
        ("/summary", "/v1/job/:id/summary"),
        ("/allocations", "/v1/job/:id/allocations"),
        ("/evaluations", "/v1/job/:id/evaluations"),
        ("/versions", "/v1/job/:id/versions"),
        ("/rendered", "/v1/job/:id/rendered"),
        ("/logs", "/v1/job/:id/logs"),
        ("/fs", "/v1/job/:id/fs"),
    ];
    for (suffix, label) in JOB {
        if rest.strip_suffix(suffix).is_some_and(|id| !id.is_empty()) {
            return label;
        }
    }
    "/v1/job/:id"
}

/// `GET /metrics` and `GET /v1/metrics[?format=prometheus]`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(prometheus_text))
        .route("/v1/metrics", get(v1_metrics))
}

async fn prometheus_text(State(app): State<AppState>) -> Response {
    text_reply(render(&app.state))
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

async fn v1_metrics(
    State(app): State<AppState>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let text = render(&app.state);
    let prometheus = raw
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv == "format=prometheus");
    if prometheus {
        return text_reply(text);
    }
    axum::Json(summary(&text)).into_response()
}

/// A histogram's (count, sum, labels) in the JSON summary.
type Sample = (f64, f64, serde_json::Map<String, serde_json::Value>);
/// Label pairs in the order rendered.
type Labels = Vec<(String, String)>;

/// Nomad's `/v1/metrics` JSON shape, built from the Prometheus text: gauges, counters, and
/// histograms as samples (count, sum, mean).
pub fn summary(text: &str) -> serde_json::Value {
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
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
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

// ---------------------------------------------------------------------------------------
// Scheduler and cluster
// ---------------------------------------------------------------------------------------

/// Offers arrived from `backend`.
pub fn offers_received(backend: &'static str, offers: &[Offer]) {
    counter!(OFFERS_RECEIVED, "backend" => backend).increment(offers.len() as u64);
    let mut total = Demand::default();
    for offer in offers {
        total = total.add(&Demand::of(&offer.resources));
    }
    add_resources(RESOURCES_OFFERED, backend, &total);
}

/// An offer was accepted with these tasks.
pub fn offer_used(backend: &'static str, tasks: &[TaskInfo]) {
    counter!(OFFERS_USED, "backend" => backend).increment(1);
    counter!(TASKS_LAUNCHED, "backend" => backend).increment(tasks.len() as u64);
    let mut total = Demand::default();
    for task in tasks {
        total = total.add(&Demand::of(&task.resources));
    }
    add_resources(RESOURCES_USED, backend, &total);
}

fn add_resources(name: &'static str, backend: &'static str, d: &Demand) {
    for (resource, v) in [
        ("millicpus", d.cpus * 1000.0),
        ("mem_mb", d.mem_mb),
        ("disk_mb", d.disk_mb),
        ("gpus", d.gpus),
    ] {
        // Counters are integers: cpus are counted in thousandths (Mesos rounds to three
        // decimals), the others in whole units.
        counter!(name, "backend" => backend, "resource" => resource).increment(v.round() as u64);
    }
}

/// An offer was declined.
pub fn offer_declined(backend: &'static str) {
    counter!(OFFERS_DECLINED, "backend" => backend).increment(1);
}

/// Garbage collection removed this many dead children.
pub fn gc_removed(children: u64) {
    counter!(GC_REMOVED).increment(children);
}

/// An offer was rescinded.
pub fn offer_rescinded(backend: &'static str) {
    counter!(OFFERS_RESCINDED, "backend" => backend).increment(1);
}

/// A status update was acknowledged.
pub fn ack(backend: &'static str) {
    counter!(ACKS, "backend" => backend).increment(1);
}

/// A reconciliation was requested: `tasks` = 0 is implicit (all tasks).
pub fn reconcile(backend: &'static str, tasks: usize) {
    let kind = if tasks == 0 { "implicit" } else { "explicit" };
    counter!(RECONCILES, "backend" => backend, "kind" => kind).increment(1);
}

#[derive(Debug, Clone)]
struct ClusterStatus {
    connected: bool,
    master: Option<String>,
    last_event: Instant,
}

static CLUSTER: Mutex<BTreeMap<&'static str, ClusterStatus>> = Mutex::new(BTreeMap::new());

fn with_cluster(backend: &'static str, f: impl FnOnce(&mut ClusterStatus)) {
    let mut all = lock(&CLUSTER);
    let status = all.entry(backend).or_insert_with(|| ClusterStatus {
        connected: false,
        master: None,
        last_event: Instant::now(),
    });
    f(status);
}

/// Any event from the cluster (a sign of life; the Mesos backend's HEARTBEAT included).
pub fn cluster_event(backend: &'static str) {
    with_cluster(backend, |s| s.last_event = Instant::now());
}

/// The scheduler (re)subscribed. The embedded runner's master is `local`.
pub fn cluster_subscribed(backend: &'static str) {
    with_cluster(backend, |s| {
        s.connected = true;
        s.last_event = Instant::now();
        if backend == "local" {
            s.master = Some("local".into());
        }
    });
    refresh_cluster();
}

/// The leading master of a backend changed (the Mesos backend calls this).
pub fn cluster_master(backend: &'static str, master: &str) {
    let old = lock(&CLUSTER).get(backend).and_then(|s| s.master.clone());
    if let Some(old) = old.filter(|o| o != master) {
        gauge!(CLUSTER_MASTER, "backend" => backend, "master" => old).set(0.0);
    }
    with_cluster(backend, |s| s.master = Some(master.to_string()));
    refresh_cluster();
}

/// The backend lost its connection.
pub fn cluster_disconnected(backend: &'static str) {
    with_cluster(backend, |s| s.connected = false);
    refresh_cluster();
}

fn refresh_cluster() {
    let all: Vec<(&'static str, ClusterStatus)> = lock(&CLUSTER)
        .iter()
        .map(|(b, s)| (*b, s.clone()))
        .collect();
    for (backend, s) in all {
        gauge!(CLUSTER_CONNECTED, "backend" => backend).set(if s.connected { 1.0 } else { 0.0 });
        gauge!(CLUSTER_HEARTBEAT_AGE, "backend" => backend)
            .set(s.last_event.elapsed().as_secs_f64());
        if let Some(master) = s.master {
            gauge!(CLUSTER_MASTER, "backend" => backend, "master" => master).set(if s.connected {
                1.0
            } else {
                0.0
            });
        }
    }
}

/// Status updates applied together: `task_update` for each, in order.
pub fn task_updates(
    state: &ServiceState,
    backend: &'static str,
    statuses: &[TaskStatus],
    now: i64,
) {
    for status in statuses {
        task_update(state, backend, status, now);
    }
}

/// A task status update, seen before it is applied: counts real transitions, and records
/// the queue wait (first TASK_RUNNING of a dispatch) and run time (a run's terminal state).
pub fn task_update(state: &ServiceState, backend: &'static str, status: &TaskStatus, now: i64) {
    let task = status.task_id.value.as_str();
    let Some((d, run)) = state.run_of(task) else {
        return;
    };
    if !run.is_active() || run.state == Some(status.state) {
        return;
    }
    let label = status.state.as_str().to_ascii_lowercase();
    counter!(TASK_TRANSITIONS, "backend" => backend, "state" => label).increment(1);
    let job = d.job.id.clone();
    let has_run = |s: Option<TaskState>| {
        matches!(
            s,
            Some(
                TaskState::TaskRunning
                    | TaskState::TaskKilling
                    | TaskState::TaskFinished
                    | TaskState::TaskFailed
                    | TaskState::TaskKilled
            )
        )
    };
    if status.state == TaskState::TaskRunning
        && d.status == DispatchStatus::Running
        && !d.runs.iter().any(|r| has_run(r.state))
    {
        histogram!(QUEUE_WAIT, "job" => job.clone()).record(seconds(now - d.submit_time));
    }
    if status.state.is_terminal() {
        histogram!(RUN_TIME, "job" => job).record(seconds(now - run.launched_at));
    }
}

fn seconds(ns: i64) -> f64 {
    ns.max(0) as f64 / 1e9
}

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

/// One group commit: how many commands it answered and how long the transaction took.
pub fn commit(batch_size: usize, took: Duration) {
    histogram!(COMMIT_BATCH).record(batch_size as f64);
    histogram!(COMMIT_SECONDS).record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates() {
        assert_eq!(
            route_label("/v1/job/transcode/dispatch"),
            "/v1/job/:id/dispatch"
        );
        assert_eq!(
            route_label("/v1/job/transcode/dispatch-1-abcdef01/summary"),
            "/v1/job/:id/summary"
        );
        assert_eq!(route_label("/v1/job/transcode"), "/v1/job/:id");
        assert_eq!(
            route_label("/v1/job/transcode/dispatch-1-abcdef01"),
            "/v1/job/:id"
        );
        assert_eq!(route_label("/v1/evaluation/abc"), "/v1/evaluation/:id");
        assert_eq!(route_label("/metrics"), "/metrics");
        assert_eq!(route_label("/etc/passwd"), "other");
    }

    #[test]
    fn datadog_names_match_the_openmetrics_check() {
        assert_eq!(datadog_name(QUEUE_DEPTH, false), "dispatch.queue_depth");
        assert_eq!(
            datadog_name(DISPATCH_REQUESTS, true),
            "dispatch.dispatch_requests.count"
        );
        assert_eq!(
            datadog_name(QUEUE_WAIT, false),
            "dispatch.queue_wait_seconds"
        );
    }

    #[test]
    fn summary_parses_prometheus_text() {
        let text = "# TYPE g gauge\ng{job=\"a\\\"b\",state=\"pending\"} 3\n# TYPE c counter\nc 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0.5\nh_count 2\n";
        let v = summary(text);
        assert_eq!(v["Gauges"][0]["Value"], 3.0);
        assert_eq!(v["Gauges"][0]["Labels"]["job"], "a\"b");
        assert_eq!(v["Counters"][0]["Count"], 2.0);
        assert_eq!(v["Samples"][0]["Mean"], 0.25);
    }
}
