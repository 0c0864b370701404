//! The queue and the active set: which dispatches wait, which have work in flight.
//!
//! Both are derived from the dispatches and kept current by `refresh` after every change to
//! a dispatch, so the scheduler finds work without scanning a million pending children.

use std::cmp::Reverse;
use std::sync::Arc;

use super::State;
use crate::model::{Dispatch, DispatchStatus};

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
    if queued {
        state.queue.insert(key);
    } else {
        state.queue.remove(&key);
    }
    if active {
        state.active.insert(id);
    } else {
        state.active.remove(&id);
    }
}

/// Forget a dispatch that is being removed.
pub fn forget(state: &mut State, d: &Dispatch) {
    state.queue.remove(&QueueKey::of(d));
    state.active.remove(&d.id);
    for run in &d.runs {
        state.run_index.remove(&run.task_id);
    }
}
