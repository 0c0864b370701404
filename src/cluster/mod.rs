//! The cluster interface: the one door between the scheduler and whatever runs tasks.
//!
//! It is shaped after the Mesos v1 scheduler API so that the Mesos backend maps onto it one
//! to one, and the embedded local runner (`local`) behaves like a one-agent Mesos cluster.
//! Events flow in (`ClusterEvent`: offers, rescinds, status updates); calls flow out
//! (`ClusterCall`: accept with launches, decline with a filter, kill, acknowledge, reconcile,
//! suppress, revive). The scheduler cannot tell the backends apart.

pub mod fetch_urls;
pub mod local;
pub mod mesos;
pub mod types;

use tokio::sync::mpsc;

pub use types::{
    AgentId, Demand, Id, Offer, OfferId, Resource, TaskId, TaskInfo, TaskState, TaskStatus,
};

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
    /// The backend lost its connection; offers held are void.
    Disconnected { reason: String },
}

/// Something the scheduler asks the cluster to do.
#[derive(Debug, Clone)]
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
    /// Stop sending offers: nothing is pending.
    Suppress,
    /// Send offers again: work arrived.
    Revive,
}

/// The scheduler's handle on a backend.
pub struct ClusterHandle {
    pub calls: mpsc::UnboundedSender<ClusterCall>,
    pub events: mpsc::UnboundedReceiver<ClusterEvent>,
    /// Name for logs and metrics (`local`, `mesos`).
    pub name: &'static str,
}
