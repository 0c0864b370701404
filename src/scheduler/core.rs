//! The scheduler's decisions, as functions: (state snapshot, offers, capabilities, now) ->
//! launches, declines, volume releases, suppress/revive, kills, notes, the next retry time,
//! answers to inverse offers (accepted once nothing of ours runs on the agent going into
//! maintenance), and what a failed volume operation means for the launch that needed it.
//!
//! `Core` is pure: it holds only the scheduler's memory (what it last told the cluster, the
//! largest offer of each agent, kills asked for, notes given) and never waits, locks, sends or
//! reads a clock. The loop in `mod.rs` takes a read snapshot of the state, asks the core, and
//! moves the answers: commands to the writer, calls to the cluster.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::placement::{self, OfferPlan};
use super::ready::{self, Unit};
use crate::clock::elapsed_since;
use crate::cluster::{
    AgentId, Capabilities, ClusterCall, Demand, Id, InverseOffer, Offer, TaskId, TaskStatus,
};
use crate::state::State;

/// How long declined resources are not offered again (new work revives sooner).
pub const DECLINE_SECONDS: f64 = 600.0;
/// How long an accepted inverse offer keeps the agent's next one away: we answered that
/// nothing of ours is in the way, and we start nothing new there.
pub const INVERSE_OFFER_REFUSE_SECONDS: f64 = 3600.0;
/// How often kills are repeated until the task ends (kills are not reliable in Mesos).
pub const KILL_RETRY: Duration = Duration::from_secs(30);
/// How long after `max_run_duration` the scheduler kills a task the agent did not stop.
pub const OVERDUE_SLACK_NS: i64 = 2_000_000_000;

/// What the scheduler remembers between decisions.
pub struct Core {
    caps: Capabilities,
    /// Offers are suppressed (SUPPRESS sent, no REVIVE since).
    suppressed: bool,
    /// Set when offers were last turned away (suppress, or declined with work waiting):
    /// REVIVE only for work that became ready after that.
    quiet: Option<Quiet>,
    /// Task ID -> when a kill was last asked for (Unix ns).
    kills: HashMap<Arc<str>, i64>,
    /// Dispatches already told they are too large for every agent.
    reported_too_large: HashSet<Arc<str>>,
    /// (job, note) pairs already logged: a job whose dispatches no agent can hold is logged
    /// once per reason, not once per dispatch.
    logged_too_large: HashSet<(Arc<str>, String)>,
    /// Largest resources each agent has offered at once.
    largest_agent: HashMap<String, Demand>,
    /// When the last REVIVE was sent (Unix ns).
    last_revive: Option<i64>,
    /// A revive was wanted inside the debounce window: look again when it closes.
    revive_pending: bool,
    /// Persistent volumes of sticky disks seen in offers: volume ID -> agent.
    known_volumes: HashMap<String, String>,
    /// Inverse offers not answered yet (maintenance): ID -> agent. Answered (accepted) once
    /// nothing of ours runs on the agent.
    inverse_offers: HashMap<String, String>,
    /// Launches whose persistent volume could not be created: task ID -> why.
    volume_failures: HashMap<String, String>,
}

/// What the scheduler had seen when it turned offers away.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// The answer to a round of offers.
#[derive(Debug)]
pub struct Placement {
    /// DESTROY + UNRESERVE of volumes no job wants; each uses up the offer carrying it.
    pub releases: Vec<ClusterCall>,
    /// The units that were ready, best first (`OfferPlan::units` index them).
    pub units: Vec<Unit>,
    /// Every other offer (offers of one agent pooled), in order, with what to launch on it;
    /// an offer with no units is declined.
    pub offers: Vec<OfferPlan>,
    /// Notes for dispatches no agent can hold (each dispatch once).
    pub notes: Vec<(Arc<str>, String)>,
    /// Everything ready was placed: offers can be suppressed. Otherwise work waits for
    /// resources, and offers come back when some free up or newer work revives them.
    pub all_placed: bool,
    /// `State::newest_dispatch_index` of the snapshot decided on.
    pub newest_dispatch: u64,
}

impl Core {
    pub fn new(caps: Capabilities) -> Core {
        Core {
            caps,
            suppressed: false,
            quiet: None,
            kills: HashMap::new(),
            reported_too_large: HashSet::new(),
            logged_too_large: HashSet::new(),
            largest_agent: HashMap::new(),
            last_revive: None,
            revive_pending: false,
            known_volumes: HashMap::new(),
            inverse_offers: HashMap::new(),
            volume_failures: HashMap::new(),
        }
    }

    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// (Re)subscribed. The backend may have resubscribed suppressed (nothing was pending
    /// then): offers count as turned away since the start, so ready work revives them.
    pub fn subscribed(&mut self) {
        self.suppressed = false;
        self.quiet = Some(Quiet {
            index: 0,
            time: 0,
            newest_dispatch: 0,
        });
    }

    /// Fit ready work into offers: first fit in queue order with no head-of-line blocking,
    /// `max_running` per job, tasks of one group instance on one agent.
    pub fn place(&mut self, state: &State, offers: Vec<Offer>, now: i64) -> Placement {
        let offered = offers
            .iter()
            .fold(Demand::default(), |t, o| t.add(&Demand::of(&o.resources)));
        let units = ready::ready_units(state, now, &offered);
        let running = ready::running_per_job(state);
        for offer in &offers {
            let offered = Demand::of(&offer.resources);
            let largest = self
                .largest_agent
                .entry(offer.agent_id.value.clone())
                .or_default();
            *largest = largest.max(&offered);
        }
        let (releases, offers) = if self.caps.persistent_volumes {
            let wanted = placement::wanted_volumes(state);
            placement::release_unwanted_volumes(offers, &wanted, &mut self.known_volumes)
        } else {
            (Vec::new(), offers)
        };
        let (offers, taken) = placement::fit(
            &self.caps,
            &units,
            running,
            placement::pool_offers(offers),
            &mut self.known_volumes,
        );
        let notes = self.too_large(&units, &taken);
        Placement {
            releases,
            units,
            offers,
            notes,
            all_placed: taken.iter().all(|t| *t),
            newest_dispatch: state.newest_dispatch_index(),
        }
    }

    /// Notes for units that were not placed and that no agent can hold, once per dispatch.
    fn too_large(&mut self, units: &[Unit], taken: &[bool]) -> Vec<(Arc<str>, String)> {
        let mut notes = Vec::new();
        for (unit, taken) in units.iter().zip(taken) {
            if *taken || self.reported_too_large.contains(&unit.dispatch.id) {
                continue;
            }
            let Some(biggest) =
                placement::too_large(&self.caps.capacity, &self.largest_agent, &unit.demand)
            else {
                continue;
            };
            let mut note = format!(
                "waiting: needs {} but no agent has offered that much (largest: {biggest})",
                unit.demand
            );
            if unit.demand.gpus > biggest.gpus && biggest.gpus == 0.0 {
                note.push_str("; ");
                note.push_str(self.caps.gpu_hint);
            }
            let key: (Arc<str>, String) = (unit.parent().into(), note.clone());
            if !self.logged_too_large.contains(&key) {
                tracing::warn!(
                    job = unit.parent(),
                    dispatch = %unit.dispatch.id,
                    "{note} (logged once per job and reason; each waiting dispatch carries the note)"
                );
                self.logged_too_large.insert(key);
            }
            self.reported_too_large.insert(unit.dispatch.id.clone());
            notes.push((unit.dispatch.id.clone(), note));
        }
        notes
    }

    /// Offers were answered (launches recorded at `committed`): SUPPRESS when everything
    /// was placed and offers are not suppressed already; remember the moment either way.
    pub fn offers_answered(
        &mut self,
        all_placed: bool,
        newest_dispatch: u64,
        committed: u64,
        now: i64,
    ) -> Option<ClusterCall> {
        self.quiet = Some(Quiet {
            index: committed,
            time: now,
            newest_dispatch,
        });
        if all_placed && !self.suppressed {
            tracing::debug!("nothing to launch: suppress");
            self.suppressed = true;
            return Some(ClusterCall::Suppress);
        }
        None
    }

    /// REVIVE when offers were turned away and work became ready since: a dispatch newer
    /// than the snapshot decided on, a commit that made work ready, a retry whose delay ran
    /// out, or a volume to release. At most one per `Capabilities::revive_debounce`; a
    /// revive wanted sooner waits for `revive_check_at`.
    pub fn revive(&mut self, state: &State, committed: u64, now: i64) -> Option<ClusterCall> {
        let Some(quiet) = self.quiet else {
            // Offers are not being turned away: nothing to revive.
            self.revive_pending = false;
            return None;
        };
        if self
            .last_revive
            .is_some_and(|t| !elapsed_since(t, now, self.caps.revive_debounce))
        {
            self.revive_pending = true;
            return None;
        }
        self.revive_pending = false;
        let wanted = state.newest_dispatch_index() > quiet.newest_dispatch
            || (committed > quiet.index && ready::has_ready_work(state, now))
            || ready::newly_ready(state, quiet.time, now)
            || self.volume_to_release(state);
        if !wanted {
            return None;
        }
        // Only the roles the ready work can use (every role when some work can use any).
        // The roles of the work first in line (no offers at hand: the first `SCAN_LIMIT`).
        let roles = placement::roles_wanted(&ready::ready_units(state, now, &Demand::default()));
        tracing::debug!(?roles, "work is ready: revive");
        self.suppressed = false;
        self.quiet = None;
        self.last_revive = Some(now);
        Some(ClusterCall::Revive(roles))
    }

    /// When a deferred revive should be looked at again (Unix ns), if one is.
    pub fn revive_check_at(&self) -> Option<i64> {
        let last = self.last_revive.filter(|_| self.revive_pending)?;
        Some(last.saturating_add(crate::clock::duration_ns(self.caps.revive_debounce)))
    }

    /// A volume of a purged job waits to be destroyed (its agent's offer is needed).
    fn volume_to_release(&self, state: &State) -> bool {
        if self.known_volumes.is_empty() {
            return false;
        }
        let wanted = placement::wanted_volumes(state);
        self.known_volumes.keys().any(|id| !wanted.contains(id))
    }

    /// Kills due now for the active tasks of dispatches that ended (stopped, or failed in
    /// another task). Cheap enough for every wake-up: one status check per active dispatch.
    pub fn kills(&mut self, state: &State, now: i64) -> Vec<ClusterCall> {
        let due: Vec<_> = state
            .active()
            .filter(|d| d.status.is_terminal())
            .flat_map(|d| {
                d.runs
                    .iter()
                    .filter(|r| r.is_active())
                    .map(move |run| (run.task_id.clone(), run.agent_id.to_string(), grace(d, run)))
            })
            .collect();
        due.into_iter()
            .filter_map(|(task, agent, grace)| {
                self.kill(task, &agent, grace, "its dispatch ended", now)
            })
            .collect()
    }

    /// Kills due now for runs past their group's `max_run_duration` (+`OVERDUE_SLACK_NS`):
    /// the agent enforces `max_completion_time` itself; this is the framework's own deadline,
    /// a little later, for agents that do not (and for tasks stuck before they started).
    pub fn overdue(&mut self, state: &State, now: i64) -> Vec<ClusterCall> {
        let mut due = Vec::new();
        for d in state.active() {
            for run in d.runs.iter().filter(|r| r.is_active()) {
                let limit = d
                    .job
                    .task_groups
                    .get(run.slot.group as usize)
                    .and_then(|g| g.max_run_duration)
                    .filter(|ns| *ns > 0);
                let past = limit.is_some_and(|limit| {
                    now > run
                        .launched_at
                        .saturating_add(limit)
                        .saturating_add(OVERDUE_SLACK_NS)
                });
                if past {
                    due.push((run.task_id.clone(), run.agent_id.to_string(), grace(d, run)));
                }
            }
        }
        due.into_iter()
            .filter_map(|(task, agent, grace)| {
                self.kill(task, &agent, grace, "past its max_run_duration", now)
            })
            .collect()
    }

    /// A task reported alive that we do not track (retried after it was LOST/UNKNOWN, or not
    /// ours at all, e.g. from implicit reconciliation) would run unaccounted: kill it.
    pub fn strays(&mut self, state: &State, statuses: &[TaskStatus], now: i64) -> Vec<ClusterCall> {
        let strays: Vec<(Arc<str>, String)> = statuses
            .iter()
            .filter(|st| {
                !st.state.is_terminal()
                    && st.state != crate::cluster::TaskState::TaskUnknown
                    && !state.is_tracked(st.task_id.value.as_str())
            })
            .map(|st| {
                let agent = st.agent_id.as_ref().map(|a| a.value.clone());
                (st.task_id.value.as_str().into(), agent.unwrap_or_default())
            })
            .collect();
        strays
            .into_iter()
            .filter_map(|(task, agent)| {
                self.kill(task, &agent, None, "reported alive but not tracked", now)
            })
            .collect()
    }

    /// A kill, unless one was asked for less than `KILL_RETRY` ago.
    fn kill(
        &mut self,
        task_id: Arc<str>,
        agent: &str,
        grace_ns: Option<i64>,
        why: &str,
        now: i64,
    ) -> Option<ClusterCall> {
        if let Some(at) = self.kills.get(&task_id) {
            if !elapsed_since(*at, now, KILL_RETRY) {
                return None;
            }
        }
        tracing::info!(task = %task_id, why, "killing task");
        let call = ClusterCall::Kill {
            task_id: TaskId::new(&*task_id),
            agent_id: (!agent.is_empty()).then(|| AgentId::new(agent)),
            grace_ns,
        };
        self.kills.insert(task_id, now);
        Some(call)
    }

    /// A task reached a terminal state: no more kills for it.
    pub fn ended(&mut self, task_id: &str) {
        self.kills.remove(task_id);
    }

    /// The connection is gone: the cluster forgets the inverse offers it made.
    pub fn disconnected(&mut self) {
        self.inverse_offers.clear();
    }

    /// Agents scheduled for maintenance ask for their resources back; nothing new starts
    /// there (their offers carry the unavailability, `placement::fit` skips them).
    pub fn inverse_offers(&mut self, offers: Vec<InverseOffer>) {
        for io in offers {
            self.inverse_offers.insert(io.id.value, io.agent_id.value);
        }
    }

    pub fn rescind_inverse_offer(&mut self, id: &str) {
        self.inverse_offers.remove(id);
    }

    /// Accept the inverse offers of agents where nothing of ours runs any more (the others
    /// wait: they are answered when our last task there ends).
    pub fn answer_inverse_offers(&mut self, state: &State) -> Option<ClusterCall> {
        if self.inverse_offers.is_empty() {
            return None;
        }
        let busy: HashSet<&str> = state.active_runs().map(|(_, run)| &*run.agent_id).collect();
        let mut free: Vec<String> = self
            .inverse_offers
            .iter()
            .filter(|(_, agent)| !busy.contains(agent.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        if free.is_empty() {
            return None;
        }
        free.sort();
        for id in &free {
            if let Some(agent) = self.inverse_offers.remove(id) {
                tracing::info!(agent, inverse_offer = id, "nothing of ours runs on the agent scheduled for maintenance: accepting its inverse offer");
            }
        }
        Some(ClusterCall::AnswerInverseOffers {
            inverse_offer_ids: free.into_iter().map(Id::new).collect(),
            accept: true,
            refuse_seconds: INVERSE_OFFER_REFUSE_SECONDS,
        })
    }

    /// A group's persistent volume could not be created: do not wait for an offer carrying
    /// it (none will), and remember why the launch that needed it fails.
    pub fn volume_failed(&mut self, volume: &str, task_id: Option<&str>, message: &str) {
        self.known_volumes.remove(volume);
        if let Some(task) = task_id {
            // The first failure is the cause (a CREATE fails after its RESERVE did).
            self.volume_failures
                .entry(task.to_string())
                .or_insert_with(|| message.to_string());
        }
    }

    /// Why the launch of `task_id` lacked its volume, if it did (taken: asked once, when the
    /// task's update is recorded).
    pub fn take_volume_failure(&mut self, task_id: &str) -> Option<String> {
        self.volume_failures.remove(task_id)
    }
}

/// The task's `kill_timeout`: how long the backend waits between SIGTERM and SIGKILL.
fn grace(d: &crate::model::Dispatch, run: &crate::model::TaskRun) -> Option<i64> {
    d.job
        .task_groups
        .get(run.slot.group as usize)
        .and_then(|g| g.tasks.get(run.slot.task as usize))
        .and_then(|t| t.kill_timeout)
}

/// Every run believed active, for explicit reconciliation.
pub fn reconcile(state: &State) -> Vec<(TaskId, Option<AgentId>)> {
    state
        .active_runs()
        .map(|(_, run)| {
            let agent = (!run.agent_id.is_empty()).then(|| AgentId::new(&*run.agent_id));
            (TaskId::new(&*run.task_id), agent)
        })
        .collect()
}

/// When the next failed task's retry delay runs out (Unix ns, after `now`), if one waits.
pub fn next_retry(state: &State, now: i64) -> Option<i64> {
    ready::next_ready(state, now)
}
