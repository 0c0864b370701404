//! The cluster interface: the one door between the scheduler and whatever runs tasks.
//!
//! It is shaped after the Mesos v1 scheduler API so that the Mesos backend maps onto it one
//! to one, and the embedded local runner (`local`) behaves like a one-agent Mesos cluster.
//! Events flow in (`ClusterEvent`: offers, rescinds, status updates); calls flow out
//! (`ClusterCall`: accept with launches, decline with a filter, kill, acknowledge, reconcile,
//! suppress, revive). The scheduler cannot tell the backends apart: where they differ, a
//! backend says so in its `Capabilities`, and the scheduler adapts to the value.
//!
//! The rest of the service reaches a backend only through `ClusterView`: its capabilities,
//! its task sandboxes (`Sandboxes`) and how it describes itself (`Describe`). Nothing outside
//! `cluster/` and the composition roots (`server.rs`, the CLI's flags) names a backend.
//!
//! A third backend (say Kubernetes Jobs) is a module here that starts like `local::start`:
//! it answers `ClusterCall`s with `ClusterEvent`s (offers standing for free capacity),
//! implements `Sandboxes` and `Describe`, fills in `Capabilities`; plus its flags and one
//! arm in `server::serve`.

pub mod capabilities;
pub mod fetch_urls;
pub mod local;
pub mod mesos;
pub mod sandbox;
pub mod types;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use capabilities::{Capabilities, Capacity};
pub use sandbox::{Area, FileEntry, Listing, Location, SandboxError, SandboxRef, Sandboxes};
pub use types::{
    AgentId, Demand, Id, InverseOffer, Offer, OfferId, Resource, TaskId, TaskInfo, TaskState,
    TaskStatus,
};

/// Key of the marker the scheduler puts in `TaskInfo.extra` for a task that needs its
/// group's persistent volume: `{"id": <persistence id>, "size_mb": N}` (backends with
/// `Capabilities::persistent_volumes`).
pub const VOLUME_MARKER: &str = "dispatch_volume";

/// Key of the marker the scheduler puts on every step of a pipeline group (steps launched one
/// after another): the allocation ID whose `alloc/` directory they share on the agent
/// (backends with `Capabilities::agent_alloc_dirs`).
pub const SHARED_ALLOC_MARKER: &str = "dispatch_shared_alloc";

/// Something that happened in the cluster.
#[derive(Debug, Clone)]
// Updates dominate the traffic and are moved, not copied: boxing them would only add an
// allocation per update.
#[allow(clippy::large_enum_variant)]
pub enum ClusterEvent {
    /// (Re)connected; reconcile now. Carries the framework ID the backend uses.
    Subscribed { framework_id: String },
    /// New resource offers (each from one agent).
    Offers(Vec<Offer>),
    /// An offer is void: drop it.
    Rescind(OfferId),
    /// A task status update; acknowledge it (if it has a uuid) once it is durable.
    Update(TaskStatus),
    /// The backend lost its connection; offers and inverse offers held are void.
    Disconnected { reason: String },
    /// Agents scheduled for maintenance ask for their resources back (Mesos inverse offers).
    InverseOffers(Vec<InverseOffer>),
    /// An inverse offer is void (the maintenance was cancelled or the agent went down).
    RescindInverseOffer(OfferId),
    /// Creating a group's persistent volume failed (its RESERVE or CREATE was refused or
    /// failed on the agent): the launch that needed it fails too and no offer will carry it.
    VolumeFailed {
        volume: String,
        agent_id: Option<AgentId>,
        /// The launch it was created for.
        task_id: Option<TaskId>,
        message: String,
    },
}

/// Something the scheduler asks the cluster to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterCall {
    /// Launch tasks on the resources of these offers (all from one agent); what is not used is
    /// declined with `refuse_seconds`.
    Accept {
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskInfo>,
        refuse_seconds: f64,
    },
    /// Give offers back; do not offer the same resources again for `refuse_seconds`.
    Decline {
        offer_ids: Vec<OfferId>,
        refuse_seconds: f64,
    },
    /// Kill a task: SIGTERM, then SIGKILL after `grace_ns`.
    Kill {
        task_id: TaskId,
        agent_id: Option<AgentId>,
        grace_ns: Option<i64>,
    },
    /// The update with this uuid is durable; the backend may forget it.
    Acknowledge {
        agent_id: AgentId,
        task_id: TaskId,
        uuid: String,
    },
    /// Report the latest state of these tasks (explicit), or of every task (empty: implicit).
    Reconcile(Vec<(TaskId, Option<AgentId>)>),
    /// Delete a persistent volume this offer carries and release its reservation (DESTROY,
    /// then UNRESERVE); the rest of the offer is declined.
    ReleaseVolume {
        offer_id: OfferId,
        volume: Resource,
        refuse_seconds: f64,
    },
    /// Answer inverse offers: `accept` = nothing of ours keeps the agent busy; not asked
    /// again for `refuse_seconds`.
    AnswerInverseOffers {
        inverse_offer_ids: Vec<OfferId>,
        accept: bool,
        refuse_seconds: f64,
    },
    /// Stop sending offers: nothing is pending.
    Suppress,
    /// Send offers again: work arrived for these roles (empty: every role of the framework;
    /// a backend without roles revives everything).
    Revive(Vec<String>),
}

/// A started backend: the scheduler's channels, and the view the rest of the service gets.
pub struct ClusterHandle {
    pub calls: mpsc::UnboundedSender<ClusterCall>,
    pub events: mpsc::UnboundedReceiver<ClusterEvent>,
    pub view: ClusterView,
}

/// What the API, garbage collection and the scheduler know of the backend.
#[derive(Clone)]
pub struct ClusterView {
    pub capabilities: Capabilities,
    pub sandboxes: Arc<dyn Sandboxes>,
    pub status: Arc<dyn Describe>,
}

/// How a backend describes itself to operators.
pub trait Describe: Send + Sync {
    /// The `Dispatch` block of `/v1/agent/self`: `Backend` (the backend's name) and the
    /// backend's own details (`Mesos`: framework settings, FrameworkID, connection).
    fn describe(&self) -> serde_json::Map<String, serde_json::Value>;

    /// The cluster as an operator looks at it (the UI's cluster page): connection, leader,
    /// framework, the agents seen and what they offered last, recent errors.
    fn overview(&self) -> Overview;
}

/// A backend's state for operators, the same fields whichever backend it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    /// The backend's name (`Capabilities::name`).
    pub backend: &'static str,
    /// `connecting`, `subscribed` or `disconnected`.
    pub connection: &'static str,
    /// Unix seconds of the last change of connection state (0: not known).
    pub since: u64,
    /// The master the framework is subscribed to (or was, last).
    pub leader: Option<String>,
    pub framework_id: Option<String>,
    /// Settings worth showing (`("Roles", "*")`, ...), in display order.
    pub settings: Vec<(String, String)>,
    /// Agents that offered resources, by ID.
    pub agents: Vec<AgentSeen>,
    /// Recent connection and launch errors, newest first.
    pub recent_errors: Vec<RecentError>,
}

/// An agent seen in offers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSeen {
    pub id: String,
    pub hostname: String,
    /// The agent's HTTP endpoint, when known.
    pub url: Option<String>,
    /// What the agent's last offer held.
    pub offered: Demand,
    /// When that offer came (Unix ns; 0: none yet).
    pub offered_at: i64,
    /// The agent's whole size, when the backend knows it.
    pub capacity: Option<Demand>,
}

/// An error worth an operator's attention.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentError {
    /// Unix seconds.
    pub at: u64,
    pub message: String,
}

/// How many recent errors a backend keeps for `Overview`.
pub const RECENT_ERRORS: usize = 20;
