//! The embedded local runner: a one-agent Mesos "cluster" on this machine that runs tasks
//! as local processes (or `docker run` for image tasks when an engine is reachable).
//!
//! It answers the cluster interface the way a Mesos master and agent would, so the scheduler
//! cannot tell it from Mesos: one agent (`local-agent`) with one outstanding offer of all free
//! resources, decline filters, suppress/revive, Mesos task validation (TASK_ERROR,
//! TASK_DROPPED), executor updates with uuids, master-made reconciliation answers without.
//!
//! Modules: `agent` (the loop playing master + agent), `offers` (offer and filter
//! bookkeeping), `task` (one task's life), `sandbox` (task directories, data files, leftover
//! cleanup), `fetch` (the URI fetcher), `process` (spawning and signalling), `docker` (image
//! tasks), `status` (building updates).
//!
//! Sandboxes live in `<sandbox_root>/tasks/<task_id>/` (`local/`, `secrets/`, `alloc` → the
//! dispatch group's `<sandbox_root>/allocs/<key>/alloc`, `stdout`, `stderr`, `.pid`). A `.pid`
//! file exists while the task's process group runs: on start, groups left by a crashed server
//! are killed and their tasks answer TASK_GONE. Dropping the handle does not kill tasks.
//!
//! To the rest of the service the runner is `capabilities` (a fixed machine: no task groups,
//! volumes or custom executors), `LocalSandboxes` (`files`) and its `describe`.
//!
//! `command.user`: running as another user needs a root runner (it then switches uid/gid and
//! hands the sandbox to that user); otherwise the task fails with a clear message.

mod agent;
mod docker;
mod fetch;
mod files;
mod offers;
mod process;
mod sandbox;
mod status;
mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Capabilities, Capacity, ClusterHandle, ClusterView, Demand, Describe};
use crate::clock::Clock;

pub use files::LocalSandboxes;
pub use sandbox::{alloc_dir, task_sandbox};

/// The backend's name (logs, the `backend` label of metrics, `/v1/agent/self`).
pub const BACKEND: &str = "local";
/// Least time between two REVIVEs: the runner answers in microseconds, so a short window
/// keeps dispatch-to-running latency low.
const REVIVE_DEBOUNCE: Duration = Duration::from_millis(10);

/// The one agent's ID.
pub const AGENT_ID: &str = "local-agent";
/// The framework ID the local runner reports in `Subscribed`.
pub const FRAMEWORK_ID: &str = "local";

/// What the local agent offers and where it keeps task files.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    pub gpus: f64,
    /// Task sandboxes and shared alloc dirs live here (e.g. `<data-dir>/sandboxes`).
    pub sandbox_root: PathBuf,
    /// Prepended to every task's PATH (e.g. the repository's `scripts/`).
    pub task_path: Vec<PathBuf>,
    /// The offers' hostname.
    pub hostname: String,
    /// Stamps status updates.
    pub clock: Clock,
}

impl LocalConfig {
    /// This machine: CPUs (available parallelism), memory (MemTotal), disk (space available
    /// to unprivileged users on the sandbox root's filesystem), no GPUs, the host name.
    pub fn detect(sandbox_root: PathBuf) -> LocalConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        LocalConfig {
            cpus,
            mem_mb: mem_total_mb().unwrap_or(1024.0),
            disk_mb: disk_available_mb(&sandbox_root).unwrap_or(0.0),
            gpus: 0.0,
            task_path: Vec::new(),
            hostname: hostname(),
            sandbox_root,
            clock: Clock::system(),
        }
    }
}

fn mem_total_mb() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0).floor())
}

/// Free space of the filesystem holding `path` (or its nearest existing ancestor).
fn disk_available_mb(path: &Path) -> Option<f64> {
    let abs = std::path::absolute(path).ok()?;
    let existing = abs.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statvfs::statvfs(existing).ok()?;
    let bytes = st.blocks_available() as f64 * st.fragment_size() as f64;
    Some((bytes / (1024.0 * 1024.0)).floor())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// What the local runner can do: plain tasks and image tasks on one fixed machine.
pub fn capabilities(config: &LocalConfig) -> Capabilities {
    Capabilities {
        name: BACKEND,
        task_groups: false,
        agent_alloc_dirs: false,
        custom_executors: false,
        persistent_volumes: false,
        source_templates: true,
        sandbox_fetch_base: None,
        docker: true,
        gpus: config.gpus > 0.0,
        capacity: Capacity::Fixed(Demand {
            cpus: config.cpus,
            mem_mb: config.mem_mb,
            disk_mb: config.disk_mb,
            gpus: config.gpus,
        }),
        revive_debounce: REVIVE_DEBOUNCE,
        gpu_hint: "the local runner offers GPUs only with -local-gpus N",
        source_template_refusal: "",
    }
}

/// `/v1/agent/self` and the cluster overview of the local runner: one agent, always
/// connected, and the last offer it made (the agent loop records it).
pub(crate) struct LocalStatus {
    hostname: String,
    capacity: Demand,
    started: u64,
    /// The last offer: what it held and when (Unix ns).
    last_offer: parking_lot::Mutex<(Demand, i64)>,
    clock: Clock,
}

impl LocalStatus {
    fn new(config: &LocalConfig) -> LocalStatus {
        LocalStatus {
            hostname: config.hostname.clone(),
            capacity: Demand {
                cpus: config.cpus,
                mem_mb: config.mem_mb,
                disk_mb: config.disk_mb,
                gpus: config.gpus,
            },
            started: (config.clock.now_ns() / 1_000_000_000).max(0) as u64,
            last_offer: parking_lot::Mutex::new((Demand::default(), 0)),
            clock: config.clock.clone(),
        }
    }

    /// The agent offered `d` just now.
    pub(crate) fn offered(&self, d: Demand) {
        *self.last_offer.lock() = (d, self.clock.now_ns());
    }
}

impl Describe for LocalStatus {
    fn describe(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert("Backend".into(), BACKEND.into());
        out.insert("Mesos".into(), serde_json::Value::Null);
        out
    }

    fn overview(&self) -> super::Overview {
        let (offered, offered_at) = *self.last_offer.lock();
        super::Overview {
            backend: BACKEND,
            connection: "subscribed",
            since: self.started,
            leader: Some(format!("{} (embedded)", self.hostname)),
            framework_id: Some(FRAMEWORK_ID.into()),
            settings: vec![(
                "Runs tasks".into(),
                "as local processes on this machine".into(),
            )],
            agents: vec![super::AgentSeen {
                id: AGENT_ID.into(),
                hostname: self.hostname.clone(),
                url: None,
                offered,
                offered_at,
                capacity: Some(self.capacity),
            }],
            recent_errors: Vec::new(),
        }
    }
}

/// Start the local runner on the current tokio runtime: kills what a previous run left
/// behind, then emits `Subscribed` and the first offer.
pub fn start(mut config: LocalConfig) -> std::io::Result<ClusterHandle> {
    let rt = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
    config.sandbox_root = std::path::absolute(&config.sandbox_root)?;
    config.task_path = config
        .task_path
        .iter()
        .map(std::path::absolute)
        .collect::<std::io::Result<_>>()?;
    std::fs::create_dir_all(config.sandbox_root.join("tasks"))?;
    std::fs::create_dir_all(config.sandbox_root.join("allocs"))?;
    let gone = sandbox::kill_leftovers(&config.sandbox_root);
    if !gone.is_empty() {
        tracing::info!(
            count = gone.len(),
            "killed tasks left over from a previous run"
        );
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(std::io::Error::other)?;
    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (updates_tx, updates_rx) = mpsc::unbounded_channel();
    tracing::info!(
        cpus = config.cpus,
        mem_mb = config.mem_mb,
        disk_mb = config.disk_mb,
        gpus = config.gpus,
        sandbox_root = %config.sandbox_root.display(),
        "local runner starting"
    );
    let status = Arc::new(LocalStatus::new(&config));
    let view = ClusterView {
        capabilities: capabilities(&config),
        sandboxes: Arc::new(LocalSandboxes::new(config.sandbox_root.clone())),
        status: status.clone(),
    };
    let ctx = Arc::new(task::RunCtx {
        config,
        http,
        updates: updates_tx,
    });
    // The embedded runner is its own master, and connected from the start.
    crate::metrics::cluster_master(BACKEND, BACKEND);
    crate::metrics::cluster_subscribed(BACKEND);
    let agent = agent::Agent::new(ctx, gone, events_tx, status);
    rt.spawn(agent.run(calls_rx, updates_rx));
    Ok(ClusterHandle {
        calls: calls_tx,
        events: events_rx,
        view,
    })
}
