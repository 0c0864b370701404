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
//!   dispatches to answer a summary. `Dead` is cumulative, as in Nomad: children removed after
//!   they ended (purge, garbage collection) stay counted (`removed_children` in the store).
//! * Validation happens before mutation: a rejected command changes nothing.
//! * Idempotency is race-free: the token check and the insert happen in the same writer
//!   step, so concurrent requests with one token make one child.
//! * Group commit: the writer applies up to `MAX_BATCH` queued commands under the write lock
//!   and commits their changes in one transaction (one fsync). What a failed commit means
//!   (the store is away, another server leads, the disk failed) is in `writer.rs`.
//! * On a store several servers share, a standby's writer follows the leader's commits
//!   (`replay.rs`): the same `State`, kept warm, so a takeover starts from memory.

pub mod acl;
mod apply;
mod children;
mod command;
mod error;
pub mod events;
mod load;
mod queue;
mod replay;
mod runs;
mod writer;

pub use command::{
    Command, DispatchReply, DispatchRequest, LaunchRun, RegisterReply, Reply, StopReply, TaskUpdate,
};
pub use error::StateError;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard};
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::model::{Dispatch, DispatchStatus, Job, TaskRun};
use crate::store::{Change, PayloadReader, Store, StoreError};
use queue::QueueKey;
use writer::Input;

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
    tokens: HashMap<Box<str>, Arc<str>>,
}

impl JobEntry {
    fn new(job: Arc<Job>, summary_index: u64) -> JobEntry {
        JobEntry {
            job,
            children: ChildCounts::default(),
            summary_index,
            pending_demand: Default::default(),
            tokens: HashMap::new(),
        }
    }
}

/// Everything the service knows. Read it through `StateHandle::read` and the query methods
/// below; only the writer (`apply`, `runs`, `queue`, `load`) changes it.
///
/// The indexes beside the dispatch map (`queue`, `active`, `run_index`, `evals`) are kept
/// current on every change, so no query scans the dispatches.
#[derive(Debug, Default)]
pub struct State {
    /// The last index handed out (Nomad's Raft index analogue; `X-Nomad-Index`).
    index: u64,
    jobs: BTreeMap<String, JobEntry>,
    /// Dispatched children by ID. IDs start with `<parent>/dispatch-`, so a parent's children
    /// are one contiguous range.
    dispatches: BTreeMap<Arc<str>, Dispatch>,
    /// Evaluation ID -> dispatch ID.
    evals: HashMap<uuid::Uuid, Arc<str>>,
    /// Dispatches never launched, in launch order: priority (high first), then FIFO.
    queue: BTreeSet<QueueKey>,
    /// Dispatches with work in flight: running ones, and ended ones whose tasks still run
    /// (the scheduler kills those).
    active: BTreeSet<Arc<str>>,
    /// Task ID -> dispatch ID, for runs that are not terminal.
    run_index: HashMap<Arc<str>, Arc<str>>,
    /// Durable settings of the cluster backends (`mesos.framework_id`).
    settings: BTreeMap<String, String>,
    /// ACL tokens and policies.
    acl: acl::AclState,
    /// The clock of the command being applied (Unix ns; set by `apply` from its `Env`).
    now: i64,
    /// Create index of the newest dispatch: the scheduler compares it with the snapshot it
    /// last decided on, so a dispatch that raced that decision still revives offers.
    newest_dispatch_index: u64,
    /// Each parent's children by status in dispatch order (pages of children).
    child_index: children::Children,
}

/// Queries. Each costs what it returns (map lookups and ranges), never a scan of every
/// dispatch, unless its name says `all_`.
impl State {
    /// The last index handed out (`X-Nomad-Index` of a read that saw this state).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Create index of the newest dispatch ever made (0: none).
    pub fn newest_dispatch_index(&self) -> u64 {
        self.newest_dispatch_index
    }

    /// A registered (parent) job.
    pub fn job(&self, id: &str) -> Option<&JobEntry> {
        self.jobs.get(id)
    }

    /// Every registered job, in ID order.
    pub fn jobs(&self) -> impl Iterator<Item = &JobEntry> + '_ {
        self.jobs.values()
    }

    /// Registered jobs with IDs >= `from`, in ID order.
    pub fn jobs_from<'a>(&'a self, from: &str) -> impl Iterator<Item = &'a JobEntry> + 'a {
        self.jobs
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
            .map(|(_, e)| e)
    }

    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// A dispatched child.
    pub fn dispatch(&self, id: &str) -> Option<&Dispatch> {
        self.dispatches.get(id)
    }

    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// Dispatches from `start` on, in ID order (a cursor for scans in chunks).
    pub fn dispatches_from<'a>(
        &'a self,
        start: Bound<&str>,
    ) -> impl Iterator<Item = &'a Dispatch> + 'a {
        self.dispatches
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, d)| d)
    }

    /// Dispatches whose IDs start with `prefix`, in ID order.
    pub fn dispatches_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Dispatch> + 'a {
        self.dispatches_from(Bound::Included(prefix))
            .take_while(move |d| d.id.starts_with(prefix))
    }

    /// Children of `parent`, in ID order.
    pub fn children_of<'a>(&'a self, parent: &str) -> impl Iterator<Item = &'a Dispatch> + 'a {
        let prefix = format!("{parent}/dispatch-");
        self.dispatches
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(move |(id, _)| id.starts_with(&prefix))
            .map(|(_, d)| d)
    }

    /// Children of `parent` with this status, oldest first.
    pub fn children_with_status<'a>(
        &'a self,
        parent: &str,
        status: DispatchStatus,
    ) -> impl Iterator<Item = &'a Dispatch> + 'a {
        self.children_page(parent, &[status], None, false, usize::MAX)
            .into_iter()
    }

    /// A page of `parent`'s children with one of `statuses`, in dispatch order: up to
    /// `limit` of them after the child created at index `cursor` (exclusive; `None`: from
    /// the newest, or the oldest), newest first when `newest_first`. Costs what it returns.
    pub fn children_page(
        &self,
        parent: &str,
        statuses: &[DispatchStatus],
        cursor: Option<u64>,
        newest_first: bool,
        limit: usize,
    ) -> Vec<&Dispatch> {
        self.child_index
            .page(parent, statuses, cursor, newest_first, limit)
            .into_iter()
            .filter_map(|(_, id)| self.dispatches.get(&id))
            .collect()
    }

    /// Dispatches never launched, in launch order: priority (high first), then FIFO.
    pub fn queued(&self) -> impl Iterator<Item = &Dispatch> + '_ {
        self.queue
            .iter()
            .filter_map(|key| self.dispatches.get(&key.2))
    }

    /// Dispatches with work in flight (running, or ended with tasks still running), in ID
    /// order.
    pub fn active(&self) -> impl Iterator<Item = &Dispatch> + '_ {
        self.active.iter().filter_map(|id| self.dispatches.get(id))
    }

    /// The run of `task_id` and its dispatch, while the run is not terminal.
    pub fn run_of(&self, task_id: &str) -> Option<(&Dispatch, &TaskRun)> {
        let d = self.dispatches.get(self.run_index.get(task_id)?)?;
        let run = d.runs.iter().rev().find(|r| *r.task_id == *task_id)?;
        Some((d, run))
    }

    /// True while `task_id` names a run that is not terminal.
    pub fn is_tracked(&self, task_id: &str) -> bool {
        self.run_index.contains_key(task_id)
    }

    /// Every run that is not terminal, with its dispatch (in no particular order).
    pub fn active_runs(&self) -> impl Iterator<Item = (&Dispatch, &TaskRun)> + '_ {
        self.run_index.keys().filter_map(|task| self.run_of(task))
    }

    /// The dispatch an evaluation belongs to.
    pub fn dispatch_of_eval(&self, eval: &uuid::Uuid) -> Option<&Dispatch> {
        self.dispatches.get(self.evals.get(eval)?)
    }

    /// Every evaluation ID with its dispatch (in no particular order).
    pub fn all_evals(&self) -> impl Iterator<Item = (&uuid::Uuid, &Dispatch)> + '_ {
        self.evals
            .iter()
            .filter_map(|(e, id)| Some((e, self.dispatches.get(id)?)))
    }

    /// Durable settings of the cluster backends.
    pub fn settings(&self) -> &BTreeMap<String, String> {
        &self.settings
    }

    /// ACL tokens and policies.
    pub fn acl(&self) -> &acl::AclState {
        &self.acl
    }

    /// Dispatches never launched.
    pub fn pending_count(&self) -> usize {
        self.queue.len()
    }
}

/// Steps the writer's commands share.
impl State {
    /// Apply one command at `now` (Unix ns), without the writer or the store: how unit tests
    /// elsewhere in the crate (the scheduler's) build the states they decide on.
    #[cfg(test)]
    pub(crate) fn apply_at(&mut self, command: Command, now: i64) -> Result<Reply, StateError> {
        let mut uuid = uuid::Uuid::new_v4;
        let mut env = apply::Env {
            now,
            uuid: &mut uuid,
        };
        apply::apply(self, command, &mut env, &mut Vec::new())
    }

    /// Hand out the next index.
    fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Move a child to a new status, keeping its parent's counters, the queue and the active
    /// set current.
    fn set_child_status(
        &mut self,
        id: &str,
        status: DispatchStatus,
        description: Option<String>,
        index: u64,
        changes: &mut Vec<Change>,
    ) {
        let now = self.now;
        let Some(d) = self.dispatches.get_mut(id) else {
            return;
        };
        let old = d.status;
        d.status = status;
        d.modify_index = index;
        if status.is_terminal() && !old.is_terminal() {
            d.ended_at = now;
        }
        if description.is_some() {
            d.description = description.as_deref().map(Into::into);
        }
        self.child_index.restatus(d, old);
        let parent = d.job.id.clone();
        if let Some(entry) = self.jobs.get_mut(&parent) {
            entry.children.remove(old);
            entry.children.add(status);
            entry.summary_index = index;
        }
        changes.push(Change::SetDispatchStatus {
            id: id.to_string(),
            status,
            modify_index: index,
            description,
        });
        queue::refresh(self, id);
    }
}

/// Cheap, cloneable access to the state: send commands, read snapshots, wait for changes.
#[derive(Clone)]
pub struct StateHandle {
    commands: mpsc::Sender<Input>,
    shared: Arc<RwLock<State>>,
    committed: watch::Receiver<u64>,
    payloads: PayloadReader,
    events: Arc<events::EventFeed>,
}

/// How the writer starts.
pub enum Start {
    /// Lead from the start: the store is this process's alone (SQLite).
    Leading,
    /// Follow the change log until elected (a shared store); a fenced commit is reported on
    /// the channel.
    Following { fenced: std::sync::mpsc::Sender<()> },
}

impl StateHandle {
    /// Load everything from `store` and start the writer thread, which stamps every command
    /// with `clock`'s time. The event feed keeps the default number of batches.
    pub fn start(store: Box<dyn Store>, clock: Clock, start: Start) -> Result<Self, StartError> {
        Self::start_with(store, clock, start, events::DEFAULT_BUFFER)
    }

    /// `start`, with the event feed keeping `event_buffer` index batches for resuming.
    pub fn start_with(
        mut store: Box<dyn Store>,
        clock: Clock,
        start: Start,
        event_buffer: usize,
    ) -> Result<Self, StartError> {
        let state = load::rebuild(store.as_mut(), clock.now_ns())?;
        let index = state.index;
        let payloads = store.payload_reader();
        let shared = Arc::new(RwLock::new(state));
        let (tx, rx) = mpsc::channel(writer::QUEUE_CAPACITY);
        let (index_tx, index_rx) = watch::channel(index);
        let (leading, fenced) = match start {
            Start::Leading => (true, None),
            Start::Following { fenced } => (false, Some(fenced)),
        };
        let feed = events::EventFeed::new(event_buffer);
        writer::Writer::spawn(
            store,
            shared.clone(),
            rx,
            index_tx,
            feed.clone(),
            clock,
            leading,
            fenced,
        )?;
        Ok(StateHandle {
            commands: tx,
            shared,
            committed: index_rx,
            payloads,
            events: feed,
        })
    }

    /// Open the SQLite store in `data_dir` and lead (one server).
    pub fn open(data_dir: &std::path::Path, clock: Clock) -> Result<Self, StartError> {
        let store = crate::store::SqliteStore::open(data_dir)?;
        StateHandle::start(Box::new(store), clock, Start::Leading)
    }

    /// Apply a command; returns once it is durable.
    pub async fn apply(&self, command: Command) -> Result<Reply, StateError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Input::Command(command, tx))
            .await
            .map_err(|_| StateError::WriterGone)?;
        rx.await.map_err(|_| StateError::WriterGone)?
    }

    /// This server was elected with `epoch`: the writer catches up with everything committed
    /// before, then leads. Blocking (the leadership loop's thread); answers the index it
    /// leads from.
    pub fn lead_blocking(&self, epoch: u64) -> Result<u64, String> {
        let (ready, answer) = oneshot::channel();
        self.commands
            .blocking_send(Input::Lead { epoch, ready })
            .map_err(|_| StateError::WriterGone.to_string())?;
        answer
            .blocking_recv()
            .map_err(|_| StateError::WriterGone.to_string())?
    }

    /// Stop leading and follow the store's change log. Blocking (the leadership loop's
    /// thread).
    pub fn follow_blocking(&self) {
        let (done, answer) = oneshot::channel();
        if self.commands.blocking_send(Input::Follow { done }).is_ok() {
            let _ = answer.blocking_recv();
        }
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

    /// Follow committed events from `index` on (see `events`).
    pub fn subscribe_events(&self, index: u64) -> events::Subscription {
        self.events.subscribe(index)
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

#[cfg(test)]
mod tests {
    use super::apply::{apply, Env};
    use super::*;
    use crate::cluster::TaskState;
    use crate::model::Slot;

    fn run(state: &mut State, command: Command) -> Reply {
        let mut uuid = uuid::Uuid::new_v4;
        let mut env = Env {
            now: 1,
            uuid: &mut uuid,
        };
        apply(state, command, &mut env, &mut Vec::new()).expect("applied")
    }

    fn dispatch(state: &mut State, job: &str, priority: i64) -> Arc<str> {
        let request = DispatchRequest {
            job_id: job.into(),
            priority,
            ..Default::default()
        };
        match run(state, Command::Dispatch(request)) {
            Reply::Dispatched(d) => d.dispatched_job_id.into(),
            other => panic!("not dispatched: {other:?}"),
        }
    }

    fn launch(state: &mut State, id: &Arc<str>, task: &str) {
        let runs = vec![LaunchRun {
            slot: Slot {
                group: 0,
                instance: 0,
                task: 0,
            },
            attempt: 1,
            task_id: task.into(),
            agent_id: "a1".into(),
        }];
        run(
            state,
            Command::Launch {
                dispatch_id: id.clone(),
                runs,
            },
        );
    }

    /// The queue answers in launch order, a launched dispatch leaves it for the active set,
    /// and its run is found by task ID until it ends.
    #[test]
    fn queries_follow_the_dispatch_through_its_life() {
        let mut state = State::default();
        let job = crate::model::job::test_job("j");
        run(&mut state, Command::RegisterJob(Box::new(job)));
        let low = dispatch(&mut state, "j", 10);
        let high = dispatch(&mut state, "j", 90);
        let later = dispatch(&mut state, "j", 90);
        let queued: Vec<&str> = state.queued().map(|d| &*d.id).collect();
        assert_eq!(queued, [&*high, &*later, &*low]);

        launch(&mut state, &high, "t1");
        assert_eq!(state.queued().count(), 2);
        let active: Vec<&str> = state.active().map(|d| &*d.id).collect();
        assert_eq!(active, [&*high]);
        let (d, r) = state.run_of("t1").expect("the run is tracked");
        assert_eq!((&d.id, &*r.agent_id), (&high, "a1"));
        assert_eq!(state.active_runs().count(), 1);
        let running: Vec<&str> = state
            .children_with_status("j", DispatchStatus::Running)
            .map(|d| &*d.id)
            .collect();
        assert_eq!(running, [&*high]);
        assert_eq!(
            state
                .children_with_status("j", DispatchStatus::Pending)
                .count(),
            2
        );

        run(
            &mut state,
            Command::TaskUpdate(TaskUpdate {
                task_id: "t1".into(),
                state: TaskState::TaskFinished,
                agent_id: None,
                message: None,
                exit_code: Some(0),
            }),
        );
        assert!(!state.is_tracked("t1"));
        assert_eq!(state.active().count(), 0);
        assert_eq!(
            state.dispatch(&high).map(|d| d.status),
            Some(DispatchStatus::Complete)
        );
        assert_eq!(state.job("j").map(|e| e.children.complete), Some(1));
        let eval = state.dispatch(&low).map(|d| d.eval_id).expect("low exists");
        assert_eq!(
            state.dispatch_of_eval(&eval).map(|d| d.id.clone()),
            Some(low)
        );
    }
}
