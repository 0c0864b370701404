//! The agent loop: plays the Mesos master and the one agent. Owns offers, the task table
//! and reconciliation; validates accepts; starts a runner per task and passes its updates on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::mpsc;

use crate::cluster::types::{
    AgentId, Demand, FrameworkId, Offer, OfferId, TaskId, TaskInfo, TaskState, TaskStatus,
};
use crate::cluster::{ClusterCall, ClusterEvent};

use super::offers::Offers;
use super::status::{self, StatusExt};
use super::task::{self, Control, RunCtx};
use super::{sandbox, AGENT_ID, FRAMEWORK_ID};

/// How many finished (terminal and acknowledged) tasks are remembered for reconciliation.
const COMPLETED_KEPT: usize = 10_000;

/// A task the agent knows: launched and not yet terminal, or terminal but not acknowledged.
struct Entry {
    demand: Demand,
    latest: TaskStatus,
    /// To the task's runner; `None` once terminal.
    control: Option<mpsc::UnboundedSender<Control>>,
    /// Uuids of updates not acknowledged yet.
    unacked: HashSet<String>,
}

pub struct Agent {
    ctx: Arc<RunCtx>,
    total: Demand,
    offers: Offers,
    tasks: HashMap<String, Entry>,
    /// Terminal and acknowledged: latest status, oldest first out.
    completed: HashMap<String, TaskStatus>,
    completed_order: VecDeque<String>,
    /// Tasks of a previous server run killed at start.
    gone: HashSet<String>,
    events: mpsc::UnboundedSender<ClusterEvent>,
    /// Where the last offer is recorded for operators.
    status: Arc<super::LocalStatus>,
}

impl Agent {
    pub fn new(
        ctx: Arc<RunCtx>,
        gone: HashSet<String>,
        events: mpsc::UnboundedSender<ClusterEvent>,
        status: Arc<super::LocalStatus>,
    ) -> Agent {
        let c = &ctx.config;
        let total = Demand {
            cpus: c.cpus,
            mem_mb: c.mem_mb,
            disk_mb: c.disk_mb,
            gpus: c.gpus,
        };
        Agent {
            ctx,
            total,
            offers: Offers::default(),
            tasks: HashMap::new(),
            completed: HashMap::new(),
            completed_order: VecDeque::new(),
            gone,
            events,
            status,
        }
    }

    pub async fn run(
        mut self,
        mut calls: mpsc::UnboundedReceiver<ClusterCall>,
        mut updates: mpsc::UnboundedReceiver<TaskStatus>,
    ) {
        self.emit(ClusterEvent::Subscribed {
            framework_id: FRAMEWORK_ID.to_string(),
        });
        self.maybe_offer();
        loop {
            let wake = self
                .offers
                .next_expiry()
                .map(tokio::time::Instant::from_std);
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                call = calls.recv() => match call {
                    Some(c) => self.call(c),
                    None => break,
                },
                Some(st) = updates.recv() => self.update(st),
                _ = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
            }
            self.maybe_offer();
        }
        tracing::info!("local runner: scheduler gone; tasks keep running until the process exits");
    }

    fn emit(&self, mut e: ClusterEvent) {
        if let ClusterEvent::Update(st) = &mut e {
            self.stamp(st);
        }
        crate::metrics::cluster_event(super::BACKEND);
        let _ = self.events.send(e);
    }

    /// Give an update the time it was made (Unix seconds, as Mesos timestamps are), unless
    /// it has one.
    fn stamp(&self, st: &mut TaskStatus) {
        if st.timestamp.is_none() {
            st.timestamp = Some(self.ctx.config.clock.now_secs());
        }
    }

    fn used(&self) -> Demand {
        self.tasks
            .values()
            .filter(|e| !e.latest.state.is_terminal())
            .fold(Demand::default(), |acc, e| acc.add(&e.demand))
    }

    fn maybe_offer(&mut self) {
        let free = self.total.sub(&self.used());
        if let Some((id, d)) = self.offers.maybe_offer(&free, std::time::Instant::now()) {
            tracing::debug!(offer = %id, resources = %d, "offer");
            self.status.offered(d);
            self.emit(ClusterEvent::Offers(vec![Offer {
                id,
                framework_id: Some(FrameworkId::new(FRAMEWORK_ID)),
                agent_id: AgentId::new(AGENT_ID),
                hostname: self.ctx.config.hostname.clone(),
                resources: d.to_resources(),
                extra: IndexMap::new(),
            }]));
        }
    }

    fn call(&mut self, call: ClusterCall) {
        let now = std::time::Instant::now();
        match call {
            ClusterCall::Accept {
                offer_ids,
                tasks,
                refuse_seconds,
            } => self.accept(&offer_ids, tasks, refuse_seconds),
            ClusterCall::Decline {
                offer_ids,
                refuse_seconds,
            } => {
                if !self.offers.decline(&offer_ids, refuse_seconds, now) {
                    tracing::debug!(?offer_ids, "decline of offers not outstanding");
                }
            }
            ClusterCall::Kill {
                task_id, grace_ns, ..
            } => self.kill(&task_id, grace_ns),
            ClusterCall::Acknowledge { task_id, uuid, .. } => self.acknowledge(&task_id, &uuid),
            ClusterCall::Reconcile(list) => self.reconcile(&list),
            ClusterCall::ReleaseVolume {
                offer_id,
                refuse_seconds,
                ..
            } => {
                // The local agent has no persistent volumes: nothing to release.
                self.offers.decline(&[offer_id], refuse_seconds, now);
            }
            ClusterCall::Suppress => {
                if let Some(id) = self.offers.suppress() {
                    self.emit(ClusterEvent::Rescind(id));
                }
            }
            ClusterCall::Revive(_) => self.offers.revive(),
            // This one agent is never scheduled for maintenance: no inverse offers to answer.
            ClusterCall::AnswerInverseOffers { .. } => {}
        }
    }

    fn accept(&mut self, offer_ids: &[OfferId], tasks: Vec<TaskInfo>, refuse_seconds: f64) {
        let mut left = match self.offers.take(offer_ids) {
            Ok(pool) => pool,
            Err(msg) => {
                tracing::info!(%msg, tasks = tasks.len(), "accept with invalid offers");
                for t in &tasks {
                    self.emit(ClusterEvent::Update(
                        status::master(&t.task_id.value, TaskState::TaskDropped)
                            .reason(status::REASON_INVALID_OFFERS)
                            .message(format!("Task launched with invalid offers: {msg}")),
                    ));
                }
                return;
            }
        };
        let mut seen = HashSet::new();
        for t in tasks {
            match self.validate(&t, &left, &seen) {
                Err(msg) => {
                    tracing::info!(task_id = %t.task_id, %msg, "invalid task");
                    self.emit(ClusterEvent::Update(
                        status::master(&t.task_id.value, TaskState::TaskError)
                            .reason(status::REASON_TASK_INVALID)
                            .message(msg),
                    ));
                }
                Ok(d) => {
                    left = left.sub(&d);
                    seen.insert(t.task_id.value.clone());
                    self.launch(t, d);
                }
            }
        }
        self.offers
            .filter(left, refuse_seconds, std::time::Instant::now());
    }

    /// Mesos-style task validation against what is left of the offer; the task's demand.
    fn validate(
        &self,
        t: &TaskInfo,
        left: &Demand,
        seen: &HashSet<String>,
    ) -> Result<Demand, String> {
        let id = t.task_id.value.as_str();
        validate_id(id)?;
        if seen.contains(id) || self.tasks.contains_key(id) {
            return Err(format!("Task ID '{id}' is already used by another task"));
        }
        if self.completed.contains_key(id)
            || self.gone.contains(id)
            || sandbox::task_sandbox(&self.ctx.config.sandbox_root, id).exists()
        {
            return Err(format!(
                "Task ID '{id}' was used before on this agent; use a fresh task ID"
            ));
        }
        if t.agent_id.value != AGENT_ID {
            return Err(format!(
                "Task uses agent ID '{}' but the offer is from agent '{AGENT_ID}'",
                t.agent_id.value
            ));
        }
        if t.extra.contains_key("executor") {
            return Err(
                "custom executors (driver mesos_executor) run on Mesos only; \
                        this server uses the embedded local runner"
                    .into(),
            );
        }
        let Some(cmd) = &t.command else {
            return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into());
        };
        let has_image = super::docker::image_of(t).is_some();
        if !has_image && cmd.value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return Err("CommandInfo.value must be set".into());
        }
        let mut total = 0.0;
        for r in &t.resources {
            let v = r.scalar.as_ref().map(|s| s.value);
            match (r.name.as_str(), r.kind.as_str(), v) {
                ("cpus" | "mem" | "disk" | "gpus", "SCALAR", Some(v))
                    if v.is_finite() && v >= 0.0 =>
                {
                    total += v;
                }
                ("cpus" | "mem" | "disk" | "gpus", _, _) => {
                    return Err(format!(
                        "Task resource {} must be a non-negative scalar",
                        r.name
                    ));
                }
                (name, _, _) => {
                    return Err(format!(
                        "Task uses resource '{name}' which this agent does not offer"
                    ));
                }
            }
        }
        if total <= 0.0 {
            return Err("Task uses no resources".into());
        }
        let d = t.demand();
        if !d.fits_in(left) {
            let pairs = [
                ("cpus", d.cpus, left.cpus),
                ("mem", d.mem_mb, left.mem_mb),
                ("disk", d.disk_mb, left.disk_mb),
                ("gpus", d.gpus, left.gpus),
            ];
            let over: Vec<_> = pairs
                .iter()
                .filter(|(_, want, have)| want > &(have + 1e-6))
                .collect();
            let want: Vec<String> = over.iter().map(|(n, w, _)| format!("{n}={w}")).collect();
            let have: Vec<String> = over.iter().map(|(n, _, h)| format!("{n}={h}")).collect();
            return Err(format!(
                "Task uses more resources {} than available {}",
                want.join("; "),
                have.join("; ")
            ));
        }
        Ok(d)
    }

    fn launch(&mut self, t: TaskInfo, demand: Demand) {
        let id = t.task_id.value.clone();
        tracing::info!(task_id = %id, resources = %demand, "launching task");
        let (tx, rx) = mpsc::unbounded_channel();
        self.tasks.insert(
            id.clone(),
            Entry {
                demand,
                latest: status::master(&id, TaskState::TaskStaging),
                control: Some(tx),
                unacked: HashSet::new(),
            },
        );
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let runner = tokio::spawn(task::run(ctx.clone(), t, rx));
            if let Err(e) = runner.await {
                // A terminal update already sent wins; the agent loop ignores this one then.
                tracing::error!(task_id = %id, error = %e, "task runner crashed");
                let _ = ctx.updates.send(
                    status::executor(&id, TaskState::TaskFailed)
                        .message(format!("The local runner's task supervisor crashed: {e}")),
                );
            }
        });
    }

    fn update(&mut self, mut st: TaskStatus) {
        self.stamp(&mut st);
        let id = st.task_id.value.clone();
        let Some(e) = self.tasks.get_mut(&id) else {
            tracing::warn!(task_id = %id, state = st.state.as_str(), "update for an unknown task");
            return;
        };
        if e.latest.state.is_terminal() {
            tracing::debug!(task_id = %id, state = st.state.as_str(), "update after a terminal one ignored");
            return;
        }
        if let Some(u) = &st.uuid {
            e.unacked.insert(u.clone());
        }
        e.latest = st.clone();
        if st.state.is_terminal() {
            e.control = None;
            tracing::info!(task_id = %id, state = st.state.as_str(), message = ?st.message, "task ended");
        }
        self.emit(ClusterEvent::Update(st));
    }

    fn acknowledge(&mut self, task_id: &TaskId, uuid: &str) {
        let Some(e) = self.tasks.get_mut(&task_id.value) else {
            tracing::debug!(%task_id, "acknowledgement for an unknown task");
            return;
        };
        if !e.unacked.remove(uuid) {
            tracing::debug!(%task_id, uuid, "acknowledgement of an unknown update");
        }
        let done = e.latest.state.is_terminal()
            && e.latest.uuid.as_deref() == Some(uuid)
            && e.unacked.is_empty();
        if done {
            if let Some(e) = self.tasks.remove(&task_id.value) {
                self.remember_completed(task_id.value.clone(), e.latest);
            }
        }
    }

    fn remember_completed(&mut self, id: String, st: TaskStatus) {
        if self.completed.insert(id.clone(), st).is_none() {
            self.completed_order.push_back(id);
        }
        while self.completed_order.len() > COMPLETED_KEPT {
            if let Some(old) = self.completed_order.pop_front() {
                self.completed.remove(&old);
            }
        }
    }

    /// The latest state of a task this agent knows.
    fn latest(&self, id: &str) -> Option<&TaskStatus> {
        self.tasks
            .get(id)
            .map(|e| &e.latest)
            .or_else(|| self.completed.get(id))
    }

    /// A master's answer about a task: its latest state, or TASK_GONE when unknown.
    fn answer(&self, id: &str) -> TaskStatus {
        match self.latest(id) {
            Some(st) => status::master(id, st.state)
                .reason(status::REASON_RECONCILIATION)
                .message("Reconciliation: Latest task state"),
            None => status::master(id, TaskState::TaskGone)
                .reason(status::REASON_RECONCILIATION)
                .message("Reconciliation: Task is unknown to the agent"),
        }
    }

    fn reconcile(&self, list: &[(TaskId, Option<AgentId>)]) {
        if list.is_empty() {
            for id in self.tasks.keys() {
                self.emit(ClusterEvent::Update(self.answer(id)));
            }
            return;
        }
        for (id, _) in list {
            self.emit(ClusterEvent::Update(self.answer(&id.value)));
        }
    }

    fn kill(&mut self, task_id: &TaskId, grace_ns: Option<i64>) {
        let id = task_id.value.as_str();
        let grace = grace_ns.map(|ns| Duration::from_nanos(u64::try_from(ns).unwrap_or(0)));
        match self.tasks.get(id).and_then(|e| e.control.as_ref()) {
            Some(tx) => {
                if tx.send(Control::Kill { grace }).is_err() {
                    tracing::warn!(task_id = id, "kill: the task's runner is gone");
                }
            }
            None => self.emit(ClusterEvent::Update(self.answer(id))),
        }
    }
}

/// Mesos's ID rules (they also keep the sandbox path one component).
fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("Task ID must not be empty".into());
    }
    if id.len() > 255 {
        return Err("Task ID must not be longer than 255 bytes".into());
    }
    if id == "." || id == ".." {
        return Err(format!("Task ID '{id}' is disallowed"));
    }
    if id
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "Task ID '{id}' contains invalid characters (slash, backslash, whitespace or control)"
        ));
    }
    Ok(())
}
