//! Metrics: every metric name the service exports is defined here, and nowhere else.
//!
//! The rest of the code calls the small functions below (one line at each call site:
//! `metrics::dispatch_request(..)`, `metrics::offers_received(..)`, `metrics::commit(..)`)
//! with plain values: this module imports nothing of the API, the state, the scheduler or
//! the backends (a leaf: `scripts/check-layering` holds it to that). They record through the
//! `metrics` facade into one process-global recorder, installed once by `start`: the
//! Prometheus recorder (rendered by `render` for `api::metrics`'s `GET /metrics` and
//! `GET /v1/metrics`), fanned out to a DogStatsD exporter when `-statsd-addr` is set
//! (`metrics_util::layers::FanoutBuilder`). DogStatsD receives the same names, with tags
//! instead of labels.
//!
//! Queue depth and pending demand are gauges the owner of the counters sets
//! (`set_queue_gauges`, from `JobEntry::children` and `JobEntry::pending_demand`: O(number
//! of jobs), never a scan of the dispatches) before every scrape and on a timer. Gauges of a
//! job that no longer exists are set to 0 once and then left to expire (Prometheus drops
//! gauges not updated for `GAUGE_IDLE`). Each event is recorded once, by whoever sees it
//! first-hand: connection state and heartbeats by the backend, offers and launches by the
//! scheduler, requests by the API.
//!
//! Labels are low-cardinality on purpose: `job` is always a parent job ID (never a dispatch
//! ID), `route` is a route template (never a raw path), `backend` is a backend's name.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

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
/// Counter, label `reason` (`per_client`, `total`): connections refused at accept for
/// being over a connection limit.
pub const CONNECTIONS_REFUSED: &str = "dispatch_http_connections_refused_total";
/// Counter, label `reason` (`handshake`, `not_tls`, `timeout`): TLS connections that never
/// got to HTTP.
pub const TLS_FAILURES: &str = "dispatch_tls_handshake_failures_total";
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
/// Gauge: 1 while this server leads (runs the scheduler and the backend), 0 on a standby.
pub const SERVER_LEADER: &str = "dispatch_server_leader";
/// Counter: times this server was elected leader (a shared store).
pub const ELECTIONS: &str = "dispatch_leader_elections_total";
/// Counter: commits refused because another server was elected since (fencing).
pub const FENCED_COMMITS: &str = "dispatch_store_fenced_commits_total";
/// Counter, label `status` (`2xx`, `4xx`, `5xx`, `unreachable`): requests a standby
/// forwarded to the leader.
pub const FORWARDED: &str = "dispatch_forwarded_requests_total";

/// States of `QUEUE_DEPTH`.
const DEPTH_STATES: [&str; 5] = ["pending", "running", "complete", "failed", "stopped"];
/// Prometheus forgets gauges not set for this long (purged jobs' zeros, gone backends).
const GAUGE_IDLE: Duration = Duration::from_secs(300);
/// How often gauges should be refreshed and `upkeep` run when nobody scrapes.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
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

/// Install the global recorder (once per process). A second call in the same process
/// (tests run several servers) reuses the recorder; it cannot add a DogStatsD address the
/// first call did not have (logged).
pub fn start(statsd_addr: Option<&str>) -> Result<(), String> {
    let installed = install(statsd_addr)?;
    if statsd_addr.is_some() && installed.statsd.as_deref() != statsd_addr {
        tracing::warn!(
            "metrics recorder already installed in this process; -statsd-addr {} ignored",
            statsd_addr.unwrap_or_default()
        );
    }
    Ok(())
}

/// The recorder's housekeeping (expiring idle gauges, draining histograms): run it every
/// `REFRESH_EVERY` even when nobody scrapes, and refresh the cluster gauges.
pub fn upkeep() {
    refresh_cluster();
    if let Some(installed) = INSTALLED.get() {
        installed.prometheus.run_upkeep();
    }
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
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused for being over a connection limit"
    );
    describe_counter!(
        TLS_FAILURES,
        "TLS connections whose handshake failed, timed out or was not TLS"
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
    describe_gauge!(SERVER_LEADER, "1 while this server leads, 0 on a standby");
    describe_counter!(ELECTIONS, "Times this server was elected leader");
    describe_counter!(
        FENCED_COMMITS,
        "Commits refused because another server was elected since"
    );
    describe_counter!(FORWARDED, "Requests a standby forwarded to the leader");
}

/// The Prometheus text of everything recorded so far (set the queue gauges first).
pub fn render() -> String {
    refresh_cluster();
    match INSTALLED.get() {
        Some(installed) => installed.prometheus.render(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Queue gauges
// ---------------------------------------------------------------------------------------

/// Cpus, memory, disk and GPUs, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resources {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    pub gpus: f64,
}

/// One parameterized job's children by status, and what its pending ones ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct JobQueue {
    pub job: String,
    pub pending: u64,
    pub running: u64,
    pub complete: u64,
    pub failed: u64,
    pub stopped: u64,
    pub pending_demand: Resources,
}

/// Jobs whose gauges were set by the last refresh (to zero those that disappear).
static EXPORTED_JOBS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Set the queue-depth and pending-demand gauges of every parameterized job there is;
/// jobs set last time and missing now are set to zero.
pub fn set_queue_gauges(jobs: impl IntoIterator<Item = JobQueue>) {
    let mut exported = lock(&EXPORTED_JOBS);
    let previous = exported.take().unwrap_or_default();
    let mut current = HashSet::with_capacity(previous.len());
    for q in jobs {
        let counts = [q.pending, q.running, q.complete, q.failed, q.stopped];
        set_job_gauges(&q.job, counts, &q.pending_demand);
        current.insert(q.job);
    }
    for gone in previous.difference(&current) {
        set_job_gauges(gone, [0; 5], &Resources::default());
    }
    *exported = Some(current);
}

fn set_job_gauges(job: &str, counts: [u64; 5], demand: &Resources) {
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

/// How a dispatch request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchOutcome {
    Accepted,
    /// An idempotent repeat answered with the existing child.
    Replay,
    /// Refused; the reason as a short stable slug (`missing_meta`, ...).
    Rejected(&'static str),
}

/// Count a dispatch request by its outcome. Requests for unknown parents are counted under
/// `job="_unknown"` by the caller (no user-chosen labels).
pub fn dispatch_request(job: &str, outcome: DispatchOutcome) {
    let (outcome, reason) = match outcome {
        DispatchOutcome::Accepted => ("accepted", "none"),
        DispatchOutcome::Replay => ("replay", "none"),
        DispatchOutcome::Rejected(reason) => ("rejected", reason),
    };
    counter!(DISPATCH_REQUESTS, "job" => job.to_string(), "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// Pass a decoded dispatch request through, counting a decode failure as a rejection
/// (`reason="bad_request"`, `job="_unknown"`: the job was not looked up).
pub fn dispatch_decoded<T, E>(result: Result<T, E>) -> Result<T, E> {
    if result.is_err() {
        dispatch_request("_unknown", DispatchOutcome::Rejected("bad_request"));
    }
    result
}

/// One HTTP request: its route template, method, status code and how long it took.
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let status = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    histogram!(HTTP_DURATION, "route" => route.to_string(), "method" => method.to_string(), "status" => status)
        .record(took.as_secs_f64());
}

// ---------------------------------------------------------------------------------------
// Scheduler and cluster
// ---------------------------------------------------------------------------------------

/// `offers` offers arrived from `backend`, with `total` resources between them.
pub fn offers_received(backend: &'static str, offers: usize, total: Resources) {
    counter!(OFFERS_RECEIVED, "backend" => backend).increment(offers as u64);
    add_resources(RESOURCES_OFFERED, backend, &total);
}

/// An offer was accepted with `tasks` tasks, given `total` resources between them.
pub fn offer_used(backend: &'static str, tasks: usize, total: Resources) {
    counter!(OFFERS_USED, "backend" => backend).increment(1);
    counter!(TASKS_LAUNCHED, "backend" => backend).increment(tasks as u64);
    add_resources(RESOURCES_USED, backend, &total);
}

fn add_resources(name: &'static str, backend: &'static str, d: &Resources) {
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

/// A connection refused at accept (`reason`: `per_client` or `total`).
pub fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// A TLS connection that never got to HTTP (`reason`: `handshake`, `not_tls`, `timeout`).
pub fn tls_failure(reason: &'static str) {
    counter!(TLS_FAILURES, "reason" => reason).increment(1);
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

/// The backend (re)subscribed to its cluster.
pub fn cluster_subscribed(backend: &'static str) {
    with_cluster(backend, |s| {
        s.connected = true;
        s.last_event = Instant::now();
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

/// A task changed state (`task_running`, `task_finished`, ...), as reported by `backend`.
pub fn task_transition(backend: &'static str, state: &str) {
    let label = state.to_ascii_lowercase();
    counter!(TASK_TRANSITIONS, "backend" => backend, "state" => label).increment(1);
}

/// A dispatch of `job` started running `waited` after it was submitted.
pub fn queue_wait(job: &str, waited: Duration) {
    histogram!(QUEUE_WAIT, "job" => job.to_string()).record(waited.as_secs_f64());
}

/// A task run of `job` ended `ran` after it was launched.
pub fn run_time(job: &str, ran: Duration) {
    histogram!(RUN_TIME, "job" => job.to_string()).record(ran.as_secs_f64());
}

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

/// One group commit: how many commands it answered and how long from its first command to
/// durable.
pub fn commit(batch_size: usize, took: Duration) {
    histogram!(COMMIT_BATCH).record(batch_size as f64);
    histogram!(COMMIT_SECONDS).record(took.as_secs_f64());
}

/// This server's role changed (`leading`), or is set at start.
pub fn leader(leading: bool) {
    gauge!(SERVER_LEADER).set(if leading { 1.0 } else { 0.0 });
}

/// This server won an election.
pub fn elected() {
    counter!(ELECTIONS).increment(1);
}

/// A commit was refused: another server leads.
pub fn fenced_commit() {
    counter!(FENCED_COMMITS).increment(1);
}

/// A standby forwarded a request; `status` is the leader's answer (`None`: unreachable).
pub fn forwarded(status: Option<u16>) {
    let class = match status {
        Some(s) => format!("{}xx", s / 100),
        None => "unreachable".into(),
    };
    counter!(FORWARDED, "status" => class).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
