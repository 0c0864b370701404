//! Applying what the scheduler and the cluster report: launches and task status updates.

use std::sync::Arc;

use super::command::{LaunchRun, Reply, TaskUpdate};
use super::error::StateError;
use super::queue::refresh;
use super::State;
use crate::model::plan::{self, Outcome, SlotState};
use crate::model::{DispatchStatus, TaskRun};
use crate::store::{Change, RunRow};

fn run_row(dispatch_id: &str, run: &TaskRun) -> RunRow {
    RunRow {
        task_id: run.task_id.to_string(),
        dispatch_id: dispatch_id.to_string(),
        group: run.slot.group,
        instance: run.slot.instance,
        task: run.slot.task,
        attempt: run.attempt,
        state: run
            .state
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        agent_id: run.agent_id.to_string(),
        exit_code: run.exit_code,
        message: run.message.as_deref().map(str::to_string),
        launched_at: run.launched_at,
        updated_at: run.updated_at,
    }
}

/// Record attempts about to launch. Refused unless each is exactly the slot's next attempt
/// and the dispatch is still live: an attempt is launched at most once.
pub fn launch(
    state: &mut State,
    dispatch_id: &str,
    runs: Vec<LaunchRun>,
    now: i64,
    changes: &mut Vec<Change>,
) -> Result<Reply, StateError> {
    let d = state
        .dispatches
        .get(dispatch_id)
        .ok_or(StateError::JobNotFound)?;
    for run in &runs {
        let refuse = |why: &str| {
            StateError::NotLaunchable(dispatch_id.to_string(), run.attempt, why.to_string())
        };
        if d.status.is_terminal() {
            return Err(refuse("the dispatch has ended"));
        }
        match plan::slot_state(&d.job, &d.runs, run.slot) {
            SlotState::Ready { attempt, .. } if attempt == run.attempt => {}
            SlotState::Ready { attempt, .. } => {
                return Err(refuse(&format!("the next attempt is {attempt}")))
            }
            other => return Err(refuse(&format!("the task is {other:?}"))),
        }
        if state.run_index.contains_key(&run.task_id) {
            return Err(refuse("the task ID is in use"));
        }
    }
    let index = state.next_index();
    let Some(d) = state.dispatches.get_mut(dispatch_id) else {
        return Err(StateError::JobNotFound);
    };
    let id = d.id.clone();
    for run in runs {
        let new = TaskRun {
            task_id: run.task_id.clone(),
            slot: run.slot,
            attempt: run.attempt,
            state: None,
            agent_id: run.agent_id.into(),
            exit_code: None,
            message: None,
            launched_at: now,
            updated_at: now,
        };
        changes.push(Change::PutRun(run_row(&id, &new)));
        d.runs.push(new);
        state.run_index.insert(run.task_id, id.clone());
    }
    d.modify_index = index;
    if d.status == DispatchStatus::Pending {
        state.set_child_status(&id, DispatchStatus::Running, None, index, changes);
    } else {
        refresh(state, &id);
    }
    Ok(Reply::Launched { index })
}

/// Apply a status update. Stale updates (unknown task, or a run already terminal) change
/// nothing; they are still answered so the cluster can be acknowledged.
pub fn update(state: &mut State, u: TaskUpdate, now: i64, changes: &mut Vec<Change>) -> Reply {
    let stale = Reply::Updated {
        dispatch_id: None,
        status: None,
    };
    let Some(dispatch_id) = state.run_index.get(u.task_id.as_str()).cloned() else {
        return stale;
    };
    let index = state.next_index();
    let Some(d) = state.dispatches.get_mut(&dispatch_id) else {
        return stale;
    };
    let Some(run) = d.runs.iter_mut().rev().find(|r| *r.task_id == *u.task_id) else {
        return stale;
    };
    if !run.is_active() || run.state == Some(u.state) && u.message.is_none() {
        return Reply::Updated {
            dispatch_id: Some(dispatch_id),
            status: Some(d.status),
        };
    }
    run.state = Some(u.state);
    if let Some(agent) = u.agent_id.filter(|a| !a.is_empty()) {
        run.agent_id = agent.into();
    }
    if u.message.is_some() {
        run.message = u.message.map(Into::into);
    }
    if u.exit_code.is_some() {
        run.exit_code = u.exit_code;
    }
    run.updated_at = now;
    let row = run_row(&dispatch_id, run);
    let ended = !run.is_active();
    changes.push(Change::PutRun(row));
    d.modify_index = index;
    if ended {
        state.run_index.remove(u.task_id.as_str());
    }
    let Some(d) = state.dispatches.get(&dispatch_id) else {
        return stale;
    };
    let next = if d.status.is_terminal() {
        None
    } else {
        match plan::outcome(&d.job, &d.runs) {
            Outcome::Complete => Some((DispatchStatus::Complete, None)),
            Outcome::Failed(why) => Some((DispatchStatus::Failed, Some(why))),
            Outcome::Running | Outcome::Pending => None,
        }
    };
    match next {
        Some((status, why)) => state.set_child_status(&dispatch_id, status, why, index, changes),
        None => refresh(state, &dispatch_id),
    }
    if let Some(entry) = state
        .dispatches
        .get(&dispatch_id)
        .map(|d| d.job.id.clone())
        .and_then(|p| state.jobs.get_mut(&p))
    {
        entry.summary_index = index;
    }
    let status = state.dispatches.get(&dispatch_id).map(|d| d.status);
    Reply::Updated {
        dispatch_id: Some(Arc::clone(&dispatch_id)),
        status,
    }
}
