//! Finding work that can launch now: ready slots of live dispatches, grouped into launch
//! units (one group instance: its ready tasks go to one agent, because they share `alloc/`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Demand;
use crate::model::plan::{self, SlotState};
use crate::model::{Dispatch, DispatchStatus, Slot};
use crate::state::State;

/// Queued dispatches looked at per placement round at least; more while the offers could
/// still hold everything looked at so far (many offers at once), up to `SCAN_MAX`. The cost
/// of a round is bounded however long the queue is.
pub const SCAN_LIMIT: usize = 10_000;
/// Most queued dispatches looked at per placement round.
pub const SCAN_MAX: usize = 200_000;

/// Tasks of one group instance of one dispatch that may launch together.
#[derive(Debug, Clone)]
pub struct Unit {
    pub dispatch: Dispatch,
    /// (slot, attempt) of each task to launch.
    pub slots: Vec<(Slot, u32)>,
    pub demand: Demand,
    /// Earlier tasks of this instance ran there: later steps share their `alloc/` dir (runs
    /// lost to the infrastructure do not pin).
    pub pinned_agent: Option<String>,
}

impl Unit {
    pub fn parent(&self) -> &str {
        self.dispatch.parent()
    }
}

/// Units ready at `now`, best first: priority, then age. Active dispatches (retries, next
/// pipeline steps) come before never-started ones of the same priority. `offered` is what
/// the offers at hand hold together: the queue is looked at while they could hold it all.
pub fn ready_units(state: &State, now: i64, offered: &Demand) -> Vec<Unit> {
    let mut units = Vec::new();
    for d in state.active() {
        if d.status == DispatchStatus::Running {
            units.extend(units_of(d, now));
        }
    }
    let mut wanted = Demand::default();
    for (i, d) in state.queued().take(SCAN_MAX).enumerate() {
        if i >= SCAN_LIMIT && !wanted.fits_in(offered) {
            break;
        }
        for unit in units_of(d, now) {
            wanted = wanted.add(&unit.demand);
            units.push(unit);
        }
    }
    units.sort_by_key(|u| {
        (
            std::cmp::Reverse(u.dispatch.priority),
            u.dispatch.runs.is_empty(),
            u.dispatch.create_index,
        )
    });
    units
}

/// Whether anything could launch now, without building units: active dispatches with a
/// ready slot, or a queued dispatch whose job is under its `max_running` limit.
pub fn has_ready_work(state: &State, now: i64) -> bool {
    let ready_now = |d: &Dispatch| {
        plan::slots(&d.job).into_iter().any(|slot| {
            matches!(plan::slot_state(&d.job, &d.runs, slot),
                SlotState::Ready { not_before, .. } if not_before <= now)
        })
    };
    if state
        .active()
        .any(|d| d.status == DispatchStatus::Running && ready_now(d))
    {
        return true;
    }
    let running = running_per_job(state);
    state.queued().take(SCAN_LIMIT).any(|d| {
        let limit = d.job.parameterized.as_ref().map_or(0, |p| p.max_running);
        limit == 0 || running.get(d.parent()).copied().unwrap_or(0) < limit
    })
}

/// A retry whose delay ran out in `(since, now]`: ready work that no commit announced.
pub fn newly_ready(state: &State, since: i64, now: i64) -> bool {
    state.active().any(|d| {
        d.status == DispatchStatus::Running
            && plan::slots(&d.job).into_iter().any(|slot| {
                matches!(plan::slot_state(&d.job, &d.runs, slot),
                    SlotState::Ready { not_before, .. } if not_before > since && not_before <= now)
            })
    })
}

/// The earliest time after `now` at which a failed task's retry delay runs out.
pub fn next_ready(state: &State, now: i64) -> Option<i64> {
    state
        .active()
        .filter(|d| d.status == DispatchStatus::Running)
        .flat_map(|d| {
            plan::slots(&d.job).into_iter().filter_map(|slot| {
                match plan::slot_state(&d.job, &d.runs, slot) {
                    SlotState::Ready { not_before, .. } if not_before > now => Some(not_before),
                    _ => None,
                }
            })
        })
        .min()
}

fn units_of(d: &Dispatch, now: i64) -> Vec<Unit> {
    let mut by_alloc: HashMap<(u16, u32), Unit> = HashMap::new();
    for slot in plan::slots(&d.job) {
        let SlotState::Ready {
            attempt,
            not_before,
        } = plan::slot_state(&d.job, &d.runs, slot)
        else {
            continue;
        };
        if not_before > now {
            continue;
        }
        let Some(group) = d.job.task_groups.get(slot.group as usize) else {
            continue;
        };
        let Some(task) = group.tasks.get(slot.task as usize) else {
            continue;
        };
        let demand = crate::render::demand(group, task);
        let unit = by_alloc
            .entry((slot.group, slot.instance))
            .or_insert_with(|| Unit {
                dispatch: d.clone(),
                slots: Vec::new(),
                demand: Demand::default(),
                // Not where a run was lost to the infrastructure (agent gone, drained): the
                // retry goes wherever there is room.
                pinned_agent: d
                    .runs
                    .iter()
                    .rev()
                    .filter(|r| !r.is_infrastructure_loss())
                    .find(|r| r.slot.group == slot.group && r.slot.instance == slot.instance)
                    .map(|r| r.agent_id.to_string())
                    .filter(|a| !a.is_empty()),
            });
        unit.slots.push((slot, attempt));
        unit.demand = unit.demand.add(&demand);
    }
    let mut units: Vec<Unit> = by_alloc.into_values().collect();
    units.sort_by_key(|u| u.slots.first().map(|s| s.0));
    units
}

/// Running dispatches per parent job (for `max_running`).
pub fn running_per_job(state: &State) -> HashMap<Arc<str>, u32> {
    let mut out: HashMap<Arc<str>, u32> = HashMap::new();
    for d in state.active() {
        if d.status == DispatchStatus::Running {
            *out.entry(d.parent().into()).or_default() += 1;
        }
    }
    out
}
