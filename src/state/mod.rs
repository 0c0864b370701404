//! The state of the service and its single writer.
//!
//! `State` is the in-memory truth: every job (template) and every dispatch. Exactly one
//! thread, the writer (`writer.rs`), changes it: it takes a batch of commands, applies them
//! (`apply.rs`), commits the resulting changes to the store in one transaction (one fsync:
//! group commit), and only then answers the callers and publishes the new index.
//!
//! Invariants:
//! * Nothing outside this process learns of a change before it is durable: replies, the
//!   published index (blocking queries, the scheduler) and metrics all wait for the commit.
//!   A reader holding the lock may see a change up to one commit early; if the process dies
//!   in that window the change was never acknowledged to anyone.
//! * Counters (`JobEntry::children`) are kept current by `apply`; nothing scans the
//!   dispatches to answer a summary.

mod apply;
mod command;
mod error;
mod load;
mod queue;
mod runs;
mod writer;

pub use command::{
    Command, DispatchReply, DispatchRequest, LaunchRun, RegisterReply, Reply, StopReply, TaskUpdate,
};
pub use error::StateError;
pub use queue::QueueKey;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::model::{Dispatch, DispatchStatus, Job};
use crate::store::{PayloadReader, SqliteStore, StoreError};

/// Counts of a parent's children by status. `dead` is cumulative for the life of the
/// parent, as in Nomad (a purged child that was pending/running moves to dead).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChildCounts {
    pub pending: u64,
    pub running: u64,
    pub complete: u64,
    pub failed: u64,
    pub stopped: u64,
    /// Children removed (purged) after they were dead, or while pending/running.
    pub removed_dead: u64,
}

impl ChildCounts {
    pub fn dead(&self) -> u64 {
        self.complete + self.failed + self.stopped + self.removed_dead
    }

    fn slot(&mut self, status: DispatchStatus) -> &mut u64 {
        match status {
            DispatchStatus::Pending => &mut self.pending,
            DispatchStatus::Running => &mut self.running,
            DispatchStatus::Complete => &mut self.complete,
            DispatchStatus::Failed => &mut self.failed,
            DispatchStatus::Stopped => &mut self.stopped,
        }
    }

    pub(crate) fn add(&mut self, status: DispatchStatus) {
        *self.slot(status) += 1;
    }

    pub(crate) fn remove(&mut self, status: DispatchStatus) {
        let slot = self.slot(status);
        *slot = slot.saturating_sub(1);
    }
}

/// A registered job and what the writer keeps beside it.
#[derive(Debug, Clone)]
pub struct JobEntry {
    /// The current version (with `Stop`, indexes and `Version` filled in).
    pub job: Arc<Job>,
    pub children: ChildCounts,
    /// Index of the last change to this job or any of its children (blocking summary reads).
    pub summary_index: u64,
    /// Sum of what this job's queued (never launched) dispatches ask for: the autoscaling
    /// signal, kept current as dispatches enter and leave the queue.
    pub pending_demand: crate::cluster::Demand,
    /// Idempotency token -> child ID, for dispatches of this parent that still exist.
    pub tokens: HashMap<Box<str>, Arc<str>>,
}

/// Everything the service knows. Read it through `StateHandle::read`.
#[derive(Debug, Default)]
pub struct State {
    /// The last index handed out (Nomad's Raft index analogue; `X-Nomad-Index`).
    pub index: u64,
    pub jobs: BTreeMap<String, JobEntry>,
    /// Dispatched children by ID. IDs start with `<parent>/dispatch-`, so a parent's children
    /// are one contiguous range.
    pub dispatches: BTreeMap<Arc<str>, Dispatch>,
    /// Evaluation ID -> dispatch ID.
    pub evals: HashMap<uuid::Uuid, Arc<str>>,
    /// Dispatches never launched, in launch order: priority (high first), then FIFO.
    pub queue: BTreeSet<QueueKey>,
    /// Dispatches with work in flight: running ones, and ended ones whose tasks still run
    /// (the scheduler kills those).
    pub active: BTreeSet<Arc<str>>,
    /// Task ID -> dispatch ID, for runs that are not terminal.
    pub run_index: HashMap<Arc<str>, Arc<str>>,
    /// Durable settings of the cluster backends (`mesos.framework_id`).
    pub settings: BTreeMap<String, String>,
    /// The clock of the command being applied (Unix ns; set by `apply` from its `Env`).
    pub now: i64,
    /// Create index of the newest dispatch: the scheduler compares it with the snapshot it
    /// last decided on, so a dispatch that raced that decision still revives offers.
    pub newest_dispatch_index: u64,
}

impl State {
    /// Children of `parent`, in ID order.
    pub fn children_of<'a>(&'a self, parent: &str) -> impl Iterator<Item = &'a Dispatch> + 'a {
        let prefix = format!("{parent}/dispatch-");
        self.dispatches
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(id, _)| id.starts_with(&prefix))
            .map(|(_, d)| d)
    }
}

type Envelope = (Command, oneshot::Sender<Result<Reply, StateError>>);

/// Cheap, cloneable access to the state: send commands, read snapshots, wait for changes.
#[derive(Clone)]
pub struct StateHandle {
    commands: mpsc::Sender<Envelope>,
    shared: Arc<RwLock<State>>,
    committed: watch::Receiver<u64>,
    payloads: PayloadReader,
}

impl StateHandle {
    /// Open the store, load everything, and start the writer thread, which stamps every
    /// command with `clock`'s time.
    pub fn open(data_dir: &std::path::Path, clock: Clock) -> Result<Self, StartError> {
        let store = SqliteStore::open(data_dir)?;
        let state = load::rebuild(&store, clock.now_ns())?;
        let index = state.index;
        let payloads = store.payload_reader();
        let shared = Arc::new(RwLock::new(state));
        let (tx, rx) = mpsc::channel(writer::QUEUE_CAPACITY);
        let (index_tx, index_rx) = watch::channel(index);
        writer::spawn(store, shared.clone(), rx, index_tx, clock)?;
        Ok(StateHandle {
            commands: tx,
            shared,
            committed: index_rx,
            payloads,
        })
    }

    /// Apply a command; returns once it is durable.
    pub async fn apply(&self, command: Command) -> Result<Reply, StateError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send((command, tx))
            .await
            .map_err(|_| StateError::WriterGone)?;
        rx.await.map_err(|_| StateError::WriterGone)?
    }

    /// A read lock on the state. Do not hold it across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.read()
    }

    /// The last durable index.
    pub fn committed_index(&self) -> u64 {
        *self.committed.borrow()
    }

    /// A receiver that changes whenever a commit lands (the scheduler's wake-up).
    pub fn subscribe_index(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Wait until the durable index exceeds `index` or `wait` passes (blocking queries).
    /// Returns the durable index.
    pub async fn wait_for_index(&self, index: u64, wait: Duration) -> u64 {
        let mut rx = self.committed.clone();
        let _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > index)).await;
        let current = *rx.borrow();
        current
    }

    /// The payload bytes of a dispatch (read from the store; payloads are not kept in memory).
    pub async fn payload(&self, dispatch_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let reader = self.payloads.clone();
        let id = dispatch_id.to_string();
        tokio::task::spawn_blocking(move || reader.payload(&id))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }
}

/// Why the state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("data dir holds a record that does not parse: {0}")]
    Corrupt(String),
    #[error("cannot start the state writer: {0}")]
    Thread(#[from] std::io::Error),
}
