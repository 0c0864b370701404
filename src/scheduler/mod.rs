//! The scheduler loop: matches queued work to offers and follows tasks to their end.
//!
//! It talks to the cluster only through `cluster::ClusterHandle` (Mesos or local: it cannot
//! tell them apart) and changes state only through `state::Command`s, so every decision is
//! durable before it has an effect outside:
//! * a launch is recorded (`Command::Launch`) before the ACCEPT is sent: after a crash the
//!   attempt is known and is never launched again (a retry gets a new attempt and task ID);
//! * a status update is applied before it is acknowledged.
//!
//! After every (re)subscription it reconciles the runs it believes active. The local runner
//! answers `TASK_GONE` for tasks of a previous server process (it killed them at start), so
//! after a restart those attempts count as failed and are retried by policy: the local
//! backend *cleanly fails* what was running; the Mesos backend re-adopts through the same
//! reconciliation.

mod placement;
mod ready;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::cluster::{AgentId, ClusterCall, ClusterEvent, ClusterHandle, TaskId, TaskStatus};
use crate::state::{Command, StateHandle, TaskUpdate};

/// How long declined resources are not offered again (new work revives sooner).
pub const DECLINE_SECONDS: f64 = 600.0;
/// How often kills are repeated until the task ends (kills are not reliable in Mesos).
const KILL_RETRY: Duration = Duration::from_secs(30);
/// How long after `max_run_duration` the scheduler kills a task the agent did not stop.
const OVERDUE_SLACK_NS: i64 = 2_000_000_000;
/// How often everything is reconciled implicitly (the docs suggest every 15 minutes).
const IMPLICIT_RECONCILE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How often non-terminal runs are reconciled explicitly.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// Start the scheduler on a tokio task.
pub fn spawn(
    state: StateHandle,
    cluster: ClusterHandle,
    clock: Clock,
) -> tokio::task::JoinHandle<()> {
    let ClusterHandle {
        calls,
        events,
        view,
    } = cluster;
    let scheduler = Scheduler {
        state,
        clock,
        calls,
        backend: view.capabilities.name,
        caps: view.capabilities,
        suppressed: false,
        quiet: None,
        kills: HashMap::new(),
        reported_too_large: HashSet::new(),
        largest_agent: HashMap::new(),
        last_revive: None,
        revive_pending: false,
        known_volumes: HashMap::new(),
    };
    tokio::spawn(scheduler.run(events))
}

struct Scheduler {
    state: StateHandle,
    clock: Clock,
    calls: mpsc::UnboundedSender<ClusterCall>,
    backend: &'static str,
    caps: crate::cluster::Capabilities,
    suppressed: bool,
    /// Set when we last turned offers away (suppress, or declined everything). New offers
    /// are asked for (REVIVE) only when work became ready after that.
    quiet: Option<Quiet>,
    /// Task ID -> when we last asked to kill it.
    kills: HashMap<Arc<str>, Instant>,
    /// Dispatches already told they are too large for every agent.
    reported_too_large: HashSet<Arc<str>>,
    /// Largest resources each agent has offered at once (what "too large" is measured by).
    largest_agent: HashMap<String, crate::cluster::Demand>,
    last_revive: Option<Instant>,
    /// A revive was wanted inside the debounce window: check again when it closes.
    revive_pending: bool,
    /// Persistent volumes of sticky disks seen in offers: volume ID -> agent.
    known_volumes: HashMap<String, String>,
}

/// What the scheduler had seen when it turned offers away.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    /// The committed index then: later commits may have made work ready.
    index: u64,
    /// The time then: a retry whose delay ran out since is ready work no commit announced.
    time: i64,
    /// `State::newest_dispatch_index` in the snapshot the decision was made on: a dispatch
    /// created after that snapshot was never looked at, even if its commit came before
    /// `index` was read.
    newest_dispatch: u64,
}

impl Scheduler {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<ClusterEvent>) {
        tracing::info!(backend = self.backend, "scheduler started");
        let mut index = self.state.subscribe_index();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_reconcile = Instant::now();
        let mut last_implicit = Instant::now();
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else {
                        tracing::warn!("cluster backend stopped; scheduler exits");
                        return;
                    };
                    // Status updates that arrived together are applied together (one
                    // commit) before they are acknowledged.
                    let mut updates = Vec::new();
                    let mut next = Some(event);
                    while let Some(event) = next.take() {
                        match event {
                            ClusterEvent::Update(status) if updates.len() < 1024 => {
                                updates.push(status);
                                next = events.try_recv().ok();
                            }
                            other => {
                                if !updates.is_empty() {
                                    self.on_updates(std::mem::take(&mut updates)).await;
                                }
                                self.on_event(other).await;
                            }
                        }
                    }
                    if !updates.is_empty() {
                        self.on_updates(updates).await;
                    }
                }
                changed = index.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.kill_ended_dispatches();
                    self.revive_if_work();
                }
                _ = tokio::time::sleep_until(
                        self.last_revive.map_or_else(tokio::time::Instant::now, |t| (t + self.caps.revive_debounce).into())
                    ), if self.revive_pending => {
                    self.revive_pending = false;
                    self.revive_if_work();
                }
                _ = tick.tick() => {
                    self.kill_ended_dispatches();
                    self.kill_overdue();
                    self.revive_if_work();
                    if last_reconcile.elapsed() >= RECONCILE_EVERY {
                        last_reconcile = Instant::now();
                        self.reconcile();
                    }
                    if last_implicit.elapsed() >= IMPLICIT_RECONCILE_EVERY {
                        // Everything the cluster runs for us: tasks we do not track get killed.
                        last_implicit = Instant::now();
                        crate::metrics::reconcile(self.backend, 0);
                        self.call(ClusterCall::Reconcile(Vec::new()));
                    }
                }
            }
        }
    }

    fn call(&self, call: ClusterCall) {
        if self.calls.send(call).is_err() {
            tracing::warn!("cluster backend is gone; call dropped");
        }
    }

    async fn on_event(&mut self, event: ClusterEvent) {
        crate::metrics::cluster_event(self.backend);
        match event {
            ClusterEvent::Subscribed { framework_id } => {
                tracing::info!(framework_id, "subscribed; reconciling");
                crate::metrics::cluster_subscribed(self.backend);
                // The backend may have resubscribed suppressed (nothing was pending then):
                // treat offers as turned away since the start, so ready work revives them.
                self.suppressed = false;
                self.quiet = Some(Quiet {
                    index: 0,
                    time: 0,
                    newest_dispatch: 0,
                });
                self.reconcile();
                crate::metrics::reconcile(self.backend, 0);
                self.call(ClusterCall::Reconcile(Vec::new()));
                self.revive_if_work();
            }
            ClusterEvent::Offers(offers) => {
                crate::metrics::offers_received(self.backend, &offers);
                self.on_offers(offers).await
            }
            ClusterEvent::Rescind(id) => {
                crate::metrics::offer_rescinded(self.backend);
                tracing::debug!(offer = %id, "offer rescinded")
            }
            ClusterEvent::Update(status) => self.on_updates(vec![status]).await,
            ClusterEvent::Disconnected { reason } => {
                crate::metrics::cluster_disconnected(self.backend);
                tracing::warn!(reason, "cluster disconnected");
            }
        }
    }

    /// Ask the cluster for the state of every run we believe is not over.
    fn reconcile(&self) {
        let tasks: Vec<(TaskId, Option<AgentId>)> = {
            let s = self.state.read();
            s.active_runs()
                .map(|(_, run)| {
                    let agent = (!run.agent_id.is_empty()).then(|| AgentId::new(&*run.agent_id));
                    (TaskId::new(&*run.task_id), agent)
                })
                .collect()
        };
        if !tasks.is_empty() {
            crate::metrics::reconcile(self.backend, tasks.len());
            self.call(ClusterCall::Reconcile(tasks));
        }
    }

    /// Apply status updates (concurrently: the writer commits them together), then
    /// acknowledge those that are durable.
    async fn on_updates(&mut self, statuses: Vec<TaskStatus>) {
        crate::metrics::task_updates(
            &self.state.read(),
            self.backend,
            &statuses,
            self.clock.now_ns(),
        );
        let applied = futures_util::future::join_all(statuses.iter().map(|status| {
            tracing::debug!(task = %status.task_id, state = status.state.as_str(), "status update");
            self.state.apply(Command::TaskUpdate(TaskUpdate {
                task_id: status.task_id.value.clone(),
                state: status.state,
                agent_id: status.agent_id.as_ref().map(|a| a.value.clone()),
                message: describe(status),
                exit_code: status.exit_code(),
            }))
        }))
        .await;
        for (status, result) in statuses.iter().zip(applied) {
            if let Err(e) = result {
                // Not durable: do not acknowledge; the backend will send it again.
                tracing::error!(task = %status.task_id, "cannot record status update: {e}");
                continue;
            }
            if let (Some(uuid), Some(agent)) = (&status.uuid, &status.agent_id) {
                crate::metrics::ack(self.backend);
                self.call(ClusterCall::Acknowledge {
                    agent_id: agent.clone(),
                    task_id: status.task_id.clone(),
                    uuid: uuid.clone(),
                });
            }
            if status.state.is_terminal() {
                self.kills.remove(status.task_id.value.as_str());
            }
        }
        self.kill_strays(&statuses);
        self.kill_ended_dispatches();
        self.revive_if_work();
    }

    /// Kill runs past their group's `max_run_duration` (mesos-batch's `--kill_after`). The
    /// agent enforces `max_completion_time` itself; this is the framework's own deadline, a
    /// little later, for agents that do not (and for tasks stuck before they started).
    fn kill_overdue(&mut self) {
        let now = self.clock.now_ns();
        let mut overdue = Vec::new();
        {
            let s = self.state.read();
            for d in s.active() {
                for run in d.runs.iter().filter(|r| r.is_active()) {
                    let Some(group) = d.job.task_groups.get(run.slot.group as usize) else {
                        continue;
                    };
                    let Some(limit) = group.max_run_duration.filter(|ns| *ns > 0) else {
                        continue;
                    };
                    if now
                        > run
                            .launched_at
                            .saturating_add(limit)
                            .saturating_add(OVERDUE_SLACK_NS)
                    {
                        let grace = group
                            .tasks
                            .get(run.slot.task as usize)
                            .and_then(|t| t.kill_timeout);
                        overdue.push((run.task_id.clone(), run.agent_id.to_string(), grace));
                    }
                }
            }
        }
        for (task_id, agent, grace) in overdue {
            self.kill(&task_id, &agent, grace, "past its max_run_duration");
        }
    }

    /// Ask the cluster to kill a task, unless that was asked less than `KILL_RETRY` ago
    /// (kills are repeated until a terminal update arrives: they are not reliable in Mesos).
    fn kill(&mut self, task_id: &str, agent: &str, grace_ns: Option<i64>, why: &str) {
        let due = self
            .kills
            .get(task_id)
            .is_none_or(|at| at.elapsed() >= KILL_RETRY);
        if !due {
            return;
        }
        tracing::info!(task = task_id, why, "killing task");
        self.kills.insert(task_id.into(), Instant::now());
        self.call(ClusterCall::Kill {
            task_id: TaskId::new(task_id),
            agent_id: (!agent.is_empty()).then(|| AgentId::new(agent)),
            grace_ns,
        });
    }

    /// A task reported alive that we consider over (retried after it was LOST/UNKNOWN, or not
    /// ours at all, e.g. from implicit reconciliation) would run unaccounted: kill it.
    fn kill_strays(&mut self, statuses: &[TaskStatus]) {
        let strays: Vec<(String, String)> = {
            let s = self.state.read();
            statuses
                .iter()
                .filter(|st| {
                    !st.state.is_terminal()
                        && st.state != crate::cluster::TaskState::TaskUnknown
                        && !s.is_tracked(st.task_id.value.as_str())
                })
                .map(|st| {
                    let agent = st.agent_id.as_ref().map(|a| a.value.clone());
                    (st.task_id.value.clone(), agent.unwrap_or_default())
                })
                .collect()
        };
        for (task_id, agent) in strays {
            self.kill(&task_id, &agent, None, "reported alive but not tracked");
        }
    }

    /// Kill the still-active tasks of dispatches that ended (stopped, or failed elsewhere).
    fn kill_ended_dispatches(&mut self) {
        let mut to_kill = Vec::new();
        {
            let s = self.state.read();
            for d in s.active() {
                if !d.status.is_terminal() {
                    continue;
                }
                for run in d.runs.iter().filter(|r| r.is_active()) {
                    let grace = d
                        .job
                        .task_groups
                        .get(run.slot.group as usize)
                        .and_then(|g| g.tasks.get(run.slot.task as usize))
                        .and_then(|t| t.kill_timeout);
                    to_kill.push((run.task_id.clone(), run.agent_id.to_string(), grace));
                }
            }
        }
        for (task_id, agent, grace) in to_kill {
            self.kill(&task_id, &agent, grace, "its dispatch ended");
        }
    }

    /// REVIVE when offers were turned away and work became ready since (debounced).
    fn revive_if_work(&mut self) {
        let Some(quiet) = self.quiet else {
            return;
        };
        if self
            .last_revive
            .is_some_and(|t| t.elapsed() < self.caps.revive_debounce)
        {
            self.revive_pending = true;
            return;
        }
        let now = self.clock.now_ns();
        let wanted = {
            let s = self.state.read();
            s.newest_dispatch_index() > quiet.newest_dispatch
                || (self.state.committed_index() > quiet.index && ready::has_ready_work(&s, now))
                || ready::newly_ready(&s, quiet.time, now)
                || self.volume_to_release(&s)
        };
        if wanted {
            tracing::debug!("work is ready: revive");
            self.suppressed = false;
            self.quiet = None;
            self.last_revive = Some(Instant::now());
            self.call(ClusterCall::Revive);
        }
    }

    /// A volume of a purged job waits to be destroyed (its agent's offer is needed).
    fn volume_to_release(&self, s: &crate::state::State) -> bool {
        if self.known_volumes.is_empty() {
            return false;
        }
        let wanted = placement::wanted_volumes(s);
        self.known_volumes.keys().any(|id| !wanted.contains(id))
    }

    /// Offers were turned away after looking at a snapshot whose newest dispatch was
    /// `newest_dispatch`: remember, so that only newer work revives them.
    fn went_quiet(&mut self, newest_dispatch: u64) {
        self.quiet = Some(Quiet {
            index: self.state.committed_index(),
            time: self.clock.now_ns(),
            newest_dispatch,
        });
    }

    fn suppress(&mut self, newest_dispatch: u64) {
        self.went_quiet(newest_dispatch);
        if !self.suppressed {
            tracing::debug!("nothing to launch: suppress");
            self.suppressed = true;
            self.call(ClusterCall::Suppress);
        }
    }
}

/// A readable one-line summary of an update for the run's message.
fn describe(status: &TaskStatus) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
        parts.push(m.to_string());
    }
    if let Some(r) = status.reason.as_deref() {
        parts.push(format!("({r})"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}
