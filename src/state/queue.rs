//! The queue and the active set: which dispatches wait, which have work in flight.
//!
//! Both are derived from the dispatches and kept current by `refresh` after every change to
//! a dispatch, so the scheduler finds work without scanning a million pending children.

use std::cmp::Reverse;
use std::sync::Arc;

use super::State;
use crate::cluster::Demand;
use crate::model::{Dispatch, DispatchStatus, Job};

/// Queue order: higher priority first, then older first (FIFO within a priority).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueKey(pub Reverse<u8>, pub u64, pub Arc<str>);

impl QueueKey {
    pub fn of(d: &Dispatch) -> QueueKey {
        QueueKey(Reverse(d.priority), d.create_index, d.id.clone())
    }
}

/// Put a dispatch in (or take it out of) the queue and the active set.
pub fn refresh(state: &mut State, id: &str) {
    let Some(d) = state.dispatches.get(id) else {
        return;
    };
    let key = QueueKey::of(d);
    let queued = d.status == DispatchStatus::Pending && d.runs.is_empty();
    let active = d.status == DispatchStatus::Running || d.runs.iter().any(|r| r.is_active());
    let id = d.id.clone();
    let parent = d.job.id.clone();
    let demand = dispatch_demand(&d.job);
    let changed = if queued {
        state.queue.insert(key)
    } else {
        state.queue.remove(&key)
    };
    if changed {
        if let Some(entry) = state.jobs.get_mut(&parent) {
            entry.pending_demand = if queued {
                entry.pending_demand.add(&demand)
            } else {
                entry.pending_demand.sub(&demand)
            };
        }
    }
    if active {
        state.active.insert(id);
    } else {
        state.active.remove(&id);
    }
}

/// What a whole dispatch asks for: every task of every group instance.
pub fn dispatch_demand(job: &Job) -> Demand {
    let mut total = Demand::default();
    for slot in crate::model::plan::slots(job) {
        let group = &job.task_groups[slot.group as usize];
        total = total.add(&crate::render::demand(
            group,
            &group.tasks[slot.task as usize],
        ));
    }
    total
}

/// Forget a dispatch that is being removed.
pub fn forget(state: &mut State, d: &Dispatch) {
    if state.queue.remove(&QueueKey::of(d)) {
        if let Some(entry) = state.jobs.get_mut(d.parent()) {
            entry.pending_demand = entry.pending_demand.sub(&dispatch_demand(&d.job));
        }
    }
    state.active.remove(&d.id);
    for run in &d.runs {
        state.run_index.remove(&run.task_id);
    }
}
