//! The scheduler: matches queued work to offers and follows tasks to their end.
//!
//! Two halves. `core` decides, purely: what to launch on which offer, what to decline,
//! when to suppress or revive offers, what to kill, which notes to give, when the next retry
//! is due (`core`, `placement`, `ready`; unit tests in `tests`). This module is the loop
//! around it: it takes read snapshots of the state, asks the core, and moves the answers,
//! commands to the writer and calls to the cluster. It talks to the cluster only through
//! `cluster::ClusterHandle` and adapts to the backend's `Capabilities`, never its name.
//!
//! Every decision is durable before it has an effect outside:
//! * a launch is recorded (`Command::Launch`) before the ACCEPT is sent: after a crash the
//!   attempt is known and is never launched again (a retry gets a new attempt and task ID);
//! * a status update is applied before it is acknowledged.
//!
//! After every (re)subscription it reconciles the runs it believes active (explicit), then
//! everything (implicit); again every `RECONCILE_EVERY` and `IMPLICIT_RECONCILE_EVERY`. The
//! local runner answers `TASK_GONE` for tasks of a previous server process (it killed them at
//! start), so after a restart those attempts count as failed and are retried by policy: the
//! local backend *cleanly fails* what was running; the Mesos backend re-adopts through the
//! same reconciliation. Infrastructure losses (`DROPPED`, `LOST`, `GONE`, `UNKNOWN`, ...) are
//! relaunched without using the job's retry budget (`plan::MAX_INFRASTRUCTURE_RETRIES`);
//! `UNREACHABLE` waits; a task reported alive that is not tracked is killed. A dispatch that
//! ended has its active tasks killed, a run past its group's `max_run_duration` too, and a
//! kill is repeated every `core::KILL_RETRY` until a terminal update arrives.

mod core;
mod placement;
mod ready;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::sync::mpsc;

use self::core::{Core, DECLINE_SECONDS};
use self::placement::OfferPlan;
use self::ready::Unit;
use crate::clock::Clock;
use crate::cluster::{
    ClusterCall, ClusterEvent, ClusterHandle, Demand, Offer, TaskInfo, TaskState, TaskStatus,
};
use crate::model::DispatchStatus;
use crate::state::{Command, LaunchRun, State, StateHandle, TaskUpdate};

/// How often kills, overdue runs and retries are looked at without another wake-up.
const TICK: Duration = Duration::from_millis(500);
/// How often everything is reconciled implicitly (the docs suggest every 15 minutes).
const IMPLICIT_RECONCILE_EVERY: Duration = Duration::from_secs(15 * 60);
/// How often non-terminal runs are reconciled explicitly.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// Most status updates applied in one batch (one commit) before they are acknowledged.
const MAX_UPDATE_BATCH: usize = 1024;
/// A sweep (kills due, revive check) walks the active dispatches; after one that took `d`,
/// the next wake-up's sweep waits until `d * SWEEP_SPACING` has passed, so sweeps take at
/// most about a tenth of the loop's time however many commits wake it (with a small state a
/// sweep takes microseconds and runs at once).
const SWEEP_SPACING: u32 = 10;

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
        core: Core::new(view.capabilities),
        retry_at: None,
        next_sweep: tokio::time::Instant::now(),
        sweep_wanted: false,
    };
    tokio::spawn(scheduler.run(events))
}

struct Scheduler {
    state: StateHandle,
    clock: Clock,
    calls: mpsc::UnboundedSender<ClusterCall>,
    /// The backend's name (logs and metric labels).
    backend: &'static str,
    core: Core,
    /// When the next failed task's retry delay runs out (Unix ns).
    retry_at: Option<i64>,
    /// Earliest time of the next sweep asked for by a wake-up (`SWEEP_SPACING`).
    next_sweep: tokio::time::Instant,
    /// A wake-up asked for a sweep before `next_sweep`: it runs then.
    sweep_wanted: bool,
}

/// A tokio deadline for a Unix-ns time of the scheduler's clock.
fn deadline(clock: &Clock, at: i64) -> tokio::time::Instant {
    let wait = at.saturating_sub(clock.now_ns()).max(0) as u64;
    tokio::time::Instant::now() + Duration::from_nanos(wait)
}

impl Scheduler {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<ClusterEvent>) {
        tracing::info!(backend = self.backend, "scheduler started");
        let mut index = self.state.subscribe_index();
        let mut tick = tokio::time::interval(TICK);
        let start = tokio::time::Instant::now();
        let mut reconcile = tokio::time::interval_at(start + RECONCILE_EVERY, RECONCILE_EVERY);
        let mut implicit =
            tokio::time::interval_at(start + IMPLICIT_RECONCILE_EVERY, IMPLICIT_RECONCILE_EVERY);
        loop {
            let revive_at = self.core.revive_check_at();
            let retry_at = self.retry_at;
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else {
                        tracing::warn!("cluster backend stopped; scheduler exits");
                        return;
                    };
                    self.on_events(event, &mut events).await;
                }
                changed = index.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.wake_sweep();
                }
                _ = tokio::time::sleep_until(self.next_sweep), if self.sweep_wanted => {
                    self.sweep();
                }
                _ = tokio::time::sleep_until(deadline(&self.clock, revive_at.unwrap_or_default())),
                    if revive_at.is_some() => {
                    self.revive();
                }
                _ = tokio::time::sleep_until(deadline(&self.clock, retry_at.unwrap_or_default())),
                    if retry_at.is_some() => {
                    self.retry_at = None;
                    self.revive();
                }
                _ = tick.tick() => {
                    self.answer_inverse_offers();
                    let overdue = {
                        let s = self.state.read();
                        self.core.overdue(&s, self.clock.now_ns())
                    };
                    for kill in overdue {
                        self.call(kill);
                    }
                    self.kill_and_revive();
                    self.retry_at = {
                        let s = self.state.read();
                        core::next_retry(&s, self.clock.now_ns())
                    };
                }
                _ = reconcile.tick() => self.reconcile(),
                _ = implicit.tick() => {
                    // Everything the cluster runs for us: tasks we do not track get killed.
                    crate::metrics::reconcile(self.backend, 0);
                    self.call(ClusterCall::Reconcile(Vec::new()));
                }
            }
        }
    }

    fn call(&self, call: ClusterCall) {
        if self.calls.send(call).is_err() {
            tracing::warn!("cluster backend is gone; call dropped");
        }
    }

    /// Handle `first` and whatever else is already waiting. Status updates that arrived
    /// together are applied together (one commit) before they are acknowledged.
    async fn on_events(
        &mut self,
        first: ClusterEvent,
        events: &mut mpsc::UnboundedReceiver<ClusterEvent>,
    ) {
        let mut updates = Vec::new();
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                ClusterEvent::Update(status) if updates.len() < MAX_UPDATE_BATCH => {
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

    /// Connection state and heartbeats are the backend's to record (it sees them first
    /// hand); offers, launches and updates are the scheduler's.
    async fn on_event(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Subscribed { framework_id } => {
                tracing::info!(framework_id, "subscribed; reconciling");
                self.core.subscribed();
                self.reconcile();
                crate::metrics::reconcile(self.backend, 0);
                self.call(ClusterCall::Reconcile(Vec::new()));
                self.revive();
            }
            ClusterEvent::Offers(offers) => {
                let total = offers
                    .iter()
                    .fold(Demand::default(), |t, o| t.add(&Demand::of(&o.resources)));
                crate::metrics::offers_received(self.backend, offers.len(), total.into());
                self.on_offers(offers).await
            }
            ClusterEvent::Rescind(id) => {
                crate::metrics::offer_rescinded(self.backend);
                tracing::debug!(offer = %id, "offer rescinded")
            }
            ClusterEvent::Update(status) => self.on_updates(vec![status]).await,
            ClusterEvent::Disconnected { reason } => {
                tracing::warn!(reason, "cluster disconnected");
                self.core.disconnected();
            }
            ClusterEvent::InverseOffers(offers) => {
                self.core.inverse_offers(offers);
                self.answer_inverse_offers();
            }
            ClusterEvent::RescindInverseOffer(id) => self.core.rescind_inverse_offer(&id.value),
            ClusterEvent::VolumeFailed {
                volume,
                agent_id,
                task_id,
                message,
            } => {
                tracing::warn!(volume, agent = ?agent_id.map(|a| a.value), message, "a persistent volume could not be created");
                self.core.volume_failed(
                    &volume,
                    task_id.as_ref().map(|t| t.value.as_str()),
                    &message,
                );
            }
        }
    }

    /// Accept the inverse offers of agents we no longer use.
    fn answer_inverse_offers(&mut self) {
        let call = self.core.answer_inverse_offers(&self.state.read());
        if let Some(call) = call {
            self.call(call);
        }
    }

    /// Ask the cluster for the state of every run we believe is not over.
    fn reconcile(&self) {
        let tasks = core::reconcile(&self.state.read());
        if !tasks.is_empty() {
            crate::metrics::reconcile(self.backend, tasks.len());
            self.call(ClusterCall::Reconcile(tasks));
        }
    }

    /// A wake-up (commit, updates) wants a sweep: now, or at `next_sweep`.
    fn wake_sweep(&mut self) {
        if tokio::time::Instant::now() >= self.next_sweep {
            self.sweep();
        } else {
            self.sweep_wanted = true;
        }
    }

    /// `kill_and_revive`, spaced by its own cost (`SWEEP_SPACING`).
    fn sweep(&mut self) {
        let started = tokio::time::Instant::now();
        self.kill_and_revive();
        self.next_sweep = started + started.elapsed() * SWEEP_SPACING;
        self.sweep_wanted = false;
    }

    /// Kills that are due, then a revive if work is waiting.
    fn kill_and_revive(&mut self) {
        let now = self.clock.now_ns();
        let kills = self.core.kills(&self.state.read(), now);
        for kill in kills {
            self.call(kill);
        }
        self.revive();
    }

    fn revive(&mut self) {
        let call = {
            let s = self.state.read();
            let committed = self.state.committed_index();
            self.core.revive(&s, committed, self.clock.now_ns())
        };
        if let Some(call) = call {
            self.call(call);
        }
    }

    /// Apply status updates (concurrently: the writer commits them together), then
    /// acknowledge those that are durable.
    async fn on_updates(&mut self, statuses: Vec<TaskStatus>) {
        observe(
            &self.state.read(),
            self.backend,
            &statuses,
            self.clock.now_ns(),
        );
        let messages: Vec<Option<String>> = statuses
            .iter()
            .map(|status| {
                let mut message = describe(status);
                // A launch that lacked its persistent volume failed for that reason, not
                // for its own: say so, and the retry does not use the job's budget.
                if status.state.is_terminal() {
                    if let Some(why) = self.core.take_volume_failure(&status.task_id.value) {
                        message = Some(format!(
                            "{}; {}: {why}",
                            message.unwrap_or_default(),
                            crate::model::run::VOLUME_NOT_CREATED
                        ));
                    }
                }
                message
            })
            .collect();
        let applied = futures_util::future::join_all(statuses.iter().zip(messages).map(
            |(status, message)| {
                tracing::debug!(task = %status.task_id, state = status.state.as_str(), "status update");
                self.state.apply(Command::TaskUpdate(TaskUpdate {
                    task_id: status.task_id.value.clone(),
                    state: status.state,
                    agent_id: status.agent_id.as_ref().map(|a| a.value.clone()),
                    message,
                    exit_code: status.exit_code(),
                }))
            },
        ))
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
                self.core.ended(status.task_id.value.as_str());
            }
        }
        let now = self.clock.now_ns();
        // A failure may have started a retry delay: wake when it runs out.
        let failed = statuses
            .iter()
            .any(|s| s.state.is_terminal() && s.state != TaskState::TaskFinished);
        let strays = {
            let s = self.state.read();
            if failed {
                self.retry_at = core::next_retry(&s, now);
            }
            self.core.strays(&s, &statuses, now)
        };
        for kill in strays {
            self.call(kill);
        }
        self.answer_inverse_offers();
        self.wake_sweep();
    }

    /// Place ready work on the offers, record the launches, then accept or decline each.
    /// The launch records of every offer of the event are sent together, so they share one
    /// commit (one sync), and only then do the ACCEPTs go out.
    async fn on_offers(&mut self, offers: Vec<Offer>) {
        let placement = {
            let s = self.state.read();
            self.core.place(&s, offers, self.clock.now_ns())
        };
        for release in placement.releases {
            self.call(release);
        }
        let mut launches = Vec::with_capacity(placement.offers.len());
        let mut commands = Vec::new();
        for plan in placement.offers {
            launches.push(
                self.render_offer(plan, &placement.units, &mut commands)
                    .await,
            );
        }
        let results =
            futures_util::future::join_all(commands.into_iter().map(|c| self.state.apply(c))).await;
        for result in results {
            if let Err(e) = result {
                tracing::info!("not launched: {e}");
            }
        }
        for launch in launches {
            self.accept_or_decline(launch);
        }
        for (dispatch_id, note) in placement.notes {
            if let Err(e) = self.state.apply(Command::Note { dispatch_id, note }).await {
                tracing::error!("cannot record the note: {e}");
            }
        }
        let suppress = self.core.offers_answered(
            placement.all_placed,
            placement.newest_dispatch,
            self.state.committed_index(),
            self.clock.now_ns(),
        );
        if let Some(call) = suppress {
            self.call(call);
        }
    }

    /// Render the units planned for one offer; their launch records (or failures) go to
    /// `commands`.
    async fn render_offer(
        &self,
        plan: OfferPlan,
        units: &[Unit],
        commands: &mut Vec<Command>,
    ) -> OfferLaunch {
        let OfferPlan {
            offer_ids,
            offer,
            units: chosen,
        } = plan;
        let mut rendered_units = Vec::new();
        for unit in chosen.iter().filter_map(|i| units.get(*i)) {
            match self.render(unit, &offer).await {
                Ok(rendered) => {
                    let runs = rendered
                        .iter()
                        .zip(&unit.slots)
                        .map(|(info, (slot, attempt))| LaunchRun {
                            slot: *slot,
                            attempt: *attempt,
                            task_id: info.task_id.value.as_str().into(),
                            agent_id: offer.agent_id.value.clone(),
                        })
                        .collect();
                    commands.push(Command::Launch {
                        dispatch_id: unit.dispatch.id.clone(),
                        runs,
                    });
                    rendered_units.push((unit.dispatch.id.clone(), rendered));
                }
                Err(reason) => {
                    tracing::warn!(dispatch = %unit.dispatch.id, "cannot render: {reason}");
                    commands.push(Command::FailDispatch {
                        dispatch_id: unit.dispatch.id.clone(),
                        reason,
                    });
                }
            }
        }
        OfferLaunch {
            offer_ids,
            offer,
            rendered_units,
        }
    }

    /// Once the launch records are durable: ACCEPT the offer with the tasks the state
    /// recorded (a stop may have raced the placement), or DECLINE it if none.
    fn accept_or_decline(&self, launch: OfferLaunch) {
        let OfferLaunch {
            offer_ids,
            offer,
            rendered_units,
        } = launch;
        let mut tasks: Vec<TaskInfo> = Vec::new();
        {
            let s = self.state.read();
            for (id, rendered) in rendered_units {
                let recorded = s.dispatch(&id).is_some_and(|d| {
                    rendered
                        .iter()
                        .all(|t| d.runs.iter().any(|r| *r.task_id == *t.task_id.value))
                });
                if recorded {
                    tasks.extend(rendered);
                }
            }
        }
        if tasks.is_empty() {
            crate::metrics::offer_declined(self.backend);
            self.call(ClusterCall::Decline {
                offer_ids,
                refuse_seconds: DECLINE_SECONDS,
            });
        } else {
            tracing::debug!(
                offer = %offer.id,
                agent = %offer.agent_id,
                tasks = tasks.len(),
                "launching"
            );
            let total = tasks
                .iter()
                .fold(Demand::default(), |t, i| t.add(&Demand::of(&i.resources)));
            crate::metrics::offer_used(self.backend, tasks.len(), total.into());
            self.call(ClusterCall::Accept {
                offer_ids,
                tasks,
                refuse_seconds: DECLINE_SECONDS,
            });
        }
    }

    /// Read the unit's payload (if it has one) and render it for the offer.
    async fn render(&self, unit: &Unit, offer: &Offer) -> Result<Vec<TaskInfo>, String> {
        let d = &unit.dispatch;
        let payload = if d.payload_len > 0 {
            self.state
                .payload(&d.id)
                .await
                .map_err(|e| format!("cannot read the payload: {e}"))?
        } else {
            None
        };
        placement::render_unit(self.core.caps(), unit, offer, payload.as_deref())
    }
}

/// One offer's rendered launches, waiting for their records to be durable.
struct OfferLaunch {
    offer_ids: Vec<crate::cluster::OfferId>,
    offer: Offer,
    rendered_units: Vec<(std::sync::Arc<str>, Vec<TaskInfo>)>,
}

/// Metrics of status updates, seen before they are applied: real transitions, the queue wait
/// (a dispatch's first TASK_RUNNING) and run times (a run's terminal state).
fn observe(state: &State, backend: &'static str, statuses: &[TaskStatus], now: i64) {
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
    let since = |t: i64| Duration::from_nanos(now.saturating_sub(t).max(0) as u64);
    for status in statuses {
        let Some((d, run)) = state.run_of(status.task_id.value.as_str()) else {
            continue;
        };
        if !run.is_active() || run.state == Some(status.state) {
            continue;
        }
        crate::metrics::task_transition(backend, status.state.as_str());
        if status.state == TaskState::TaskRunning
            && d.status == DispatchStatus::Running
            && !d.runs.iter().any(|r| has_run(r.state))
        {
            crate::metrics::queue_wait(&d.job.id, since(d.submit_time));
        }
        if status.state.is_terminal() {
            crate::metrics::run_time(&d.job.id, since(run.launched_at));
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
