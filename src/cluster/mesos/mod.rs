//! The Mesos v1 scheduler API backend: Dispatch as a Mesos framework.
//!
//! Modules: `settings` (the `-mesos-*` flags, `FrameworkInfo`), `master` (finding the leader,
//! HTTP, redirects), `driver` (the subscription loop: events in, calls out, FrameworkID
//! persistence, heartbeat watchdog, backoff), `launch` (ACCEPT with LAUNCH / LAUNCH_GROUP,
//! sandbox files as fetcher URIs), `directory` (FrameworkID and agent endpoints for the API),
//! `agent_files` (task sandboxes through the agents' files API), `zookeeper` (the leading
//! master from ZooKeeper, for `zk://` master URLs),
//! and the wire codecs:
//! `recordio` (framing), `json` (Mesos JSON), `proto` (protobuf messages), `convert`
//! (protobuf <-> types), `codec` (the two encodings behind one interface). The codecs are
//! pinned by `tests/mesos_codec.rs` against traffic recorded from a real Mesos 1.12 master
//! (`tests/fixtures/mesos-captures/`).
//!
//! To the rest of the service this backend is `capabilities` (task groups, persistent
//! volumes, custom executors; no `source` templates; offers measured per agent),
//! `AgentSandboxes` and the `MesosDirectory`'s `describe`.

pub mod agent_files;
pub mod codec;
pub mod convert;
pub mod directory;
pub mod driver;
pub mod json;
pub mod launch;
pub mod master;
pub mod proto;
pub mod recordio;
pub mod settings;
pub mod zookeeper;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

pub use directory::MesosDirectory;
pub use directory::{AGENT_URL_SETTING_PREFIX, FRAMEWORK_ID_SETTING};
pub use driver::{PersistSetting, BACKEND};
pub use settings::MesosSettings;

pub use agent_files::AgentSandboxes;

use super::{Capabilities, Capacity, ClusterHandle, ClusterView, Describe};

/// Least time between two REVIVEs: Mesos frameworks debounce revives so the master's
/// allocator is not flooded (Marathon: 5 s).
const REVIVE_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);

/// What Dispatch as a Mesos framework can do.
pub fn capabilities(settings: &MesosSettings) -> Capabilities {
    Capabilities {
        name: BACKEND,
        task_groups: true,
        agent_alloc_dirs: true,
        custom_executors: true,
        persistent_volumes: true,
        source_templates: false,
        sandbox_fetch_base: Some(settings.advertise_url.clone()),
        docker: true,
        gpus: settings.capabilities.iter().any(|c| c == "GPU_RESOURCES"),
        capacity: Capacity::LargestOffer,
        revive_debounce: REVIVE_DEBOUNCE,
        gpu_hint: "Mesos offers GPU agents only to frameworks with the GPU_RESOURCES \
                   capability (dispatch server -mesos-capabilities GPU_RESOURCES)",
        source_template_refusal: "on Mesos templates are delivered rendered, so give the text \
                                  inline with `data` (a `source` template is rendered by the \
                                  embedded local runner only)",
    }
}

impl Describe for MesosDirectory {
    fn describe(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert("Backend".into(), BACKEND.into());
        out.insert("Mesos".into(), self.settings());
        out
    }

    fn overview(&self) -> super::Overview {
        MesosDirectory::overview(self)
    }
}

/// Start the framework driver on the current tokio runtime. `framework_id` is the stored
/// FrameworkID (reused on every subscription); `persist` makes a new one durable.
pub fn start(
    settings: MesosSettings,
    stored: &BTreeMap<String, String>,
    persist: PersistSetting,
    directory: Arc<MesosDirectory>,
    updates: Option<tokio::sync::watch::Receiver<MesosSettings>>,
) -> Result<ClusterHandle, String> {
    let rt = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
    let masters = master::Masters::new(
        &settings.masters,
        settings.encoding,
        settings.authorization(),
        settings.ca_file.as_deref(),
    )?;
    directory.load(stored);
    let framework_id = directory.framework_id();
    directory.set_settings(&settings);
    let view = ClusterView {
        capabilities: capabilities(&settings),
        sandboxes: Arc::new(AgentSandboxes::new(directory.clone())),
        status: directory.clone(),
    };
    tracing::info!(
        masters = %settings.masters,
        encoding = settings.encoding.name(),
        framework_id = framework_id.as_deref().unwrap_or("(new)"),
        roles = settings.roles.join(","),
        "Mesos backend starting"
    );
    // Not connected until SUBSCRIBED (the gauge exists from the start, at 0).
    crate::metrics::cluster_disconnected(BACKEND);
    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let masters = Arc::new(masters);
    let (ordered_tx, ordered_rx) = mpsc::unbounded_channel();
    rt.spawn(driver::send_in_order(
        masters.clone(),
        events_tx.clone(),
        ordered_rx,
    ));
    let driver = driver::Driver {
        settings: Arc::new(settings),
        masters,
        directory,
        persist,
        framework_id,
        events: events_tx,
        suppressed: Default::default(),
        offers: Default::default(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(driver::MAX_CALLS_IN_FLIGHT)),
        ordered: ordered_tx,
        backoff: driver::FIRST_BACKOFF,
        logged_cause: None,
        updates,
        operations: Default::default(),
    };
    rt.spawn(driver.run(calls_rx));
    Ok(ClusterHandle {
        calls: calls_tx,
        events: events_rx,
        view,
    })
}
