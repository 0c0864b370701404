//! Applying one command to the state: validation, the new state, and the store changes.
//!
//! Pure with respect to I/O: `apply` mutates `State` and appends `Change`s; the writer
//! commits them. Validation happens before any mutation, so a rejected command changes
//! nothing.

use std::collections::HashSet;
use std::sync::Arc;

use super::command::{Command, DispatchReply, DispatchRequest, RegisterReply, Reply, StopReply};
use super::error::StateError;
use super::{JobEntry, State};
use crate::model::dispatch::child_id;
use crate::model::job::{MAX_PAYLOAD_BYTES, MAX_PRIORITY};
use crate::model::{Dispatch, DispatchStatus, Job};
use crate::store::{Change, DispatchRow, JobRow};

/// The clock and randomness a batch runs with (injected so tests are deterministic).
pub struct Env<'a> {
    /// Unix nanoseconds.
    pub now: i64,
    pub uuid: &'a mut dyn FnMut() -> uuid::Uuid,
}

pub fn apply(
    state: &mut State,
    command: Command,
    env: &mut Env<'_>,
    changes: &mut Vec<Change>,
) -> Result<Reply, StateError> {
    state.now = env.now;
    match command {
        Command::RegisterJob(job) => register(state, *job, env, changes).map(Reply::Registered),
        Command::Dispatch(req) => dispatch(state, req, env, changes).map(Reply::Dispatched),
        Command::StopJob { id, purge } => stop(state, &id, purge, changes).map(Reply::Stopped),
        Command::Launch { dispatch_id, runs } => {
            super::runs::launch(state, &dispatch_id, runs, env.now, changes)
        }
        Command::TaskUpdate(update) => Ok(super::runs::update(state, update, env.now, changes)),
        Command::Note { dispatch_id, note } => {
            let index = state.next_index();
            if let Some(d) = state.dispatches.get_mut(&dispatch_id) {
                let status = d.status;
                state.set_child_status(&dispatch_id, status, Some(note), index, changes);
            }
            Ok(Reply::Noted)
        }
        Command::CollectGarbage { ids, idle_since } => {
            Ok(collect_garbage(state, &ids, idle_since, changes))
        }
        Command::Acl(command) => {
            // the ACL state is held apart while the command hands out indexes
            let mut acl = std::mem::take(&mut state.acl);
            let result = {
                let mut next = || state.next_index();
                let mut step = super::acl::Step {
                    now: env.now,
                    next_index: &mut next,
                    uuid: &mut *env.uuid,
                    changes,
                };
                super::acl::apply(&mut acl, command, &mut step)
            };
            state.acl = acl;
            result.map(Reply::Acl)
        }
        Command::SetSetting { key, value } => {
            if state.settings.get(&key) != Some(&value) {
                state.settings.insert(key.clone(), value.clone());
                changes.push(Change::PutSetting { key, value });
            }
            Ok(Reply::Stored)
        }
        Command::FailDispatch {
            dispatch_id,
            reason,
        } => {
            let index = state.next_index();
            state.set_child_status(
                &dispatch_id,
                DispatchStatus::Failed,
                Some(reason),
                index,
                changes,
            );
            Ok(Reply::Failed)
        }
    }
}

fn job_row(job: &Job) -> JobRow {
    JobRow {
        id: job.id.clone(),
        version: job.version,
        // Serialising our own model cannot fail (string keys, no non-finite floats
        // are produced by our parsers); an empty object would still round-trip safely.
        json: serde_json::to_string(job).unwrap_or_else(|_| "{}".into()),
    }
}

fn register(
    state: &mut State,
    mut job: Job,
    env: &mut Env<'_>,
    changes: &mut Vec<Change>,
) -> Result<RegisterReply, StateError> {
    // Server-owned fields are ignored on register.
    job.parent_id.clear();
    job.dispatched = false;
    job.payload = None;
    job.dispatch_idempotency_token.clear();
    job.stop = false;
    job.canonicalize();
    crate::spec::validate(&job)?;
    crate::render::check_job(&job)?;
    if state.dispatches.contains_key(job.id.as_str()) {
        return Err(StateError::ChildIsReadOnly(job.id));
    }
    let index = state.next_index();
    job.submit_time = env.now;
    job.modify_index = index;
    job.job_modify_index = index;
    job.status = status_of_parent(&job);
    let entry = match state.jobs.get(&job.id) {
        Some(existing) => {
            let old = &existing.job;
            match (old.parameterized.is_some(), job.parameterized.is_some()) {
                (true, false) => return Err(StateError::CannotUnparameterize),
                (false, true) => return Err(StateError::CannotParameterize),
                _ => {}
            }
            job.create_index = old.create_index;
            job.version = old.version + 1;
            JobEntry {
                job: Arc::new(job),
                children: existing.children,
                summary_index: index,
                pending_demand: existing.pending_demand,
                tokens: existing.tokens.clone(),
            }
        }
        None => {
            job.create_index = index;
            job.version = 0;
            JobEntry::new(Arc::new(job), index)
        }
    };
    changes.push(Change::PutJobVersion(job_row(&entry.job)));
    state.jobs.insert(entry.job.id.clone(), entry);
    Ok(RegisterReply {
        job_modify_index: index,
        index,
        warnings: String::new(),
    })
}

fn status_of_parent(job: &Job) -> String {
    if job.stop {
        "dead".into()
    } else if job.is_parameterized() {
        "running".into()
    } else {
        // Non-parameterized jobs are stored but not run by Dispatch (yet): they stay pending.
        "pending".into()
    }
}

/// Check a dispatch against its parent, in Nomad's order and with Nomad's messages.
fn validate_dispatch(state: &State, req: &DispatchRequest) -> Result<(), StateError> {
    if req.job_id.is_empty() {
        return Err(StateError::MissingJobId);
    }
    let Some(entry) = state.jobs.get(&req.job_id) else {
        if state.dispatches.contains_key(req.job_id.as_str()) {
            return Err(StateError::NotParameterized(req.job_id.clone()));
        }
        return Err(StateError::ParentNotFound);
    };
    let job = &entry.job;
    let Some(params) = job
        .parameterized
        .as_ref()
        .filter(|_| job.is_parameterized())
    else {
        return Err(StateError::NotParameterized(job.id.clone()));
    };
    if job.stop {
        return Err(StateError::Stopped(job.id.clone()));
    }
    let payload_len = req.payload.as_ref().map_or(0, Vec::len);
    match params.payload.as_str() {
        "required" if payload_len == 0 => return Err(StateError::PayloadRequired),
        "forbidden" if payload_len > 0 => return Err(StateError::PayloadForbidden),
        _ => {}
    }
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(StateError::PayloadTooLarge(payload_len));
    }
    let allowed: HashSet<&str> = params
        .meta_required
        .iter()
        .chain(&params.meta_optional)
        .map(String::as_str)
        .collect();
    let unpermitted: Vec<String> = req
        .meta
        .keys()
        .filter(|k| !allowed.contains(k.as_str()))
        .cloned()
        .collect();
    if !unpermitted.is_empty() {
        return Err(StateError::UnpermittedMeta(unpermitted));
    }
    let missing: Vec<String> = params
        .meta_required
        .iter()
        .filter(|k| !req.meta.contains_key(k.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(StateError::MissingMeta(missing));
    }
    if req.priority != 0 && !(1..=MAX_PRIORITY).contains(&req.priority) {
        return Err(StateError::Priority);
    }
    Ok(())
}

fn dispatch(
    state: &mut State,
    req: DispatchRequest,
    env: &mut Env<'_>,
    changes: &mut Vec<Change>,
) -> Result<DispatchReply, StateError> {
    validate_dispatch(state, &req)?;
    let token = req.idempotency_token.filter(|t| !t.is_empty());
    if let Some(token) = &token {
        if let Some(existing) = state.jobs[&req.job_id].tokens.get(token.as_str()) {
            if let Some(child) = state.dispatches.get(existing) {
                return Ok(DispatchReply {
                    dispatched_job_id: child.id.to_string(),
                    eval_id: None,
                    eval_create_index: 0,
                    job_create_index: child.create_index,
                    index: child.modify_index,
                });
            }
        }
    }
    if let Some(max) = req.max_pending {
        // the queue holds exactly the dispatches never launched
        if state.queue.len() as u64 >= max {
            return Err(StateError::BacklogFull(max));
        }
    }
    let parent = state.jobs[&req.job_id].job.clone();
    let unix = env.now.div_euclid(1_000_000_000);
    let id: Arc<str> = loop {
        let candidate = child_id(&parent.id, &req.id_prefix, unix, (env.uuid)());
        if !state.dispatches.contains_key(candidate.as_str()) {
            break candidate.into();
        }
    };
    let index = state.next_index();
    let priority = if req.priority == 0 {
        parent.priority
    } else {
        req.priority
    };
    let payload = req.payload.filter(|p| !p.is_empty());
    let dispatch = Dispatch {
        id: id.clone(),
        job: parent.clone(),
        meta: (&req.meta).into(),
        priority: priority.clamp(1, MAX_PRIORITY) as u8,
        status: DispatchStatus::Pending,
        idempotency_token: token.as_deref().map(Into::into),
        payload_len: payload.as_ref().map_or(0, |p| p.len() as u32),
        eval_id: (env.uuid)(),
        submit_time: env.now,
        create_index: index,
        modify_index: index,
        description: None,
        ended_at: 0,
        runs: Vec::new(),
        dispatched_by: req.dispatched_by.as_deref().map(Into::into),
    };
    changes.push(Change::PutDispatch(DispatchRow {
        id: id.to_string(),
        job_id: parent.id.clone(),
        job_version: parent.version,
        status: dispatch.status,
        priority: dispatch.priority,
        idempotency_token: token.clone(),
        meta_json: serde_json::to_string(&dispatch.meta.to_meta()).unwrap_or_else(|_| "{}".into()),
        payload,
        payload_len: dispatch.payload_len,
        eval_id: *dispatch.eval_id.as_bytes(),
        submit_time: dispatch.submit_time,
        create_index: index,
        modify_index: index,
        description: None,
        dispatched_by: req.dispatched_by.clone(),
    }));
    let reply = DispatchReply {
        dispatched_job_id: id.to_string(),
        eval_id: Some(dispatch.eval_id),
        eval_create_index: index,
        job_create_index: index,
        index,
    };
    let entry = state
        .jobs
        .get_mut(&parent.id)
        .ok_or(StateError::ParentNotFound)?;
    entry.children.add(DispatchStatus::Pending);
    entry.summary_index = index;
    if let Some(token) = token {
        entry.tokens.insert(token.into(), id.clone());
    }
    state.evals.insert(dispatch.eval_id, id.clone());
    state.newest_dispatch_index = state.newest_dispatch_index.max(dispatch.create_index);
    state.child_index.insert(&dispatch);
    state.dispatches.insert(id.clone(), dispatch);
    super::queue::refresh(state, &id);
    Ok(reply)
}

fn stop(
    state: &mut State,
    id: &str,
    purge: bool,
    changes: &mut Vec<Change>,
) -> Result<StopReply, StateError> {
    if state.jobs.contains_key(id) {
        return Ok(stop_parent(state, id, purge, changes));
    }
    if state.dispatches.contains_key(id) {
        return Ok(stop_child(state, id, purge, changes));
    }
    // Nomad answers a stop of an unknown job with a 200 no-op.
    Ok(StopReply {
        job_modify_index: 0,
        index: state.index,
        children_stopped: 0,
    })
}

fn stop_parent(state: &mut State, id: &str, purge: bool, changes: &mut Vec<Change>) -> StopReply {
    let index = state.next_index();
    // Children of a stopped parent stop with it (no orphans: the scheduler kills the tasks
    // of running ones); with purge, every child is removed with it.
    let child_ids: Vec<Arc<str>> = state.children_of(id).map(|d| d.id.clone()).collect();
    let mut children_stopped = 0;
    for child in &child_ids {
        if purge {
            remove_child(state, child, changes);
        } else if state
            .dispatches
            .get(child)
            .is_some_and(|d| !d.status.is_terminal())
        {
            let why = format!("stopped with its parent job {id:?}");
            state.set_child_status(child, DispatchStatus::Stopped, Some(why), index, changes);
            children_stopped += 1;
        }
    }
    if purge {
        state.jobs.remove(id);
        changes.push(Change::DeleteJob { id: id.to_string() });
    } else if let Some(entry) = state.jobs.get_mut(id) {
        let mut job = (*entry.job).clone();
        job.stop = true;
        job.status = status_of_parent(&job);
        job.modify_index = index;
        job.job_modify_index = index;
        changes.push(Change::PutJobVersion(job_row(&job)));
        entry.job = Arc::new(job);
        entry.summary_index = index;
    }
    StopReply {
        job_modify_index: index,
        index,
        children_stopped,
    }
}

fn stop_child(state: &mut State, id: &str, purge: bool, changes: &mut Vec<Change>) -> StopReply {
    let index = state.next_index();
    if purge {
        remove_child(state, id, changes);
    } else if state
        .dispatches
        .get(id)
        .is_some_and(|d| !d.status.is_terminal())
    {
        let why = "stopped by request".to_string();
        state.set_child_status(id, DispatchStatus::Stopped, Some(why), index, changes);
    }
    StopReply {
        job_modify_index: index,
        index,
        children_stopped: 0,
    }
}

fn collect_garbage(
    state: &mut State,
    ids: &[Arc<str>],
    idle_since: i64,
    changes: &mut Vec<Change>,
) -> Reply {
    let mut removed = Vec::new();
    for id in ids {
        let Some(d) = state.dispatches.get(id) else {
            continue;
        };
        if !d.is_collectable() || d.last_activity() > idle_since {
            continue;
        }
        if removed.is_empty() {
            // Blocking queries on the parents' summaries see the removal.
            state.next_index();
        }
        remove_child(state, id, changes);
        removed.push(id.clone());
    }
    Reply::Collected { removed }
}

fn remove_child(state: &mut State, id: &str, changes: &mut Vec<Change>) {
    let Some(d) = state.dispatches.remove(id) else {
        return;
    };
    super::queue::forget(state, &d);
    state.child_index.remove(&d);
    state.evals.remove(&d.eval_id);
    if let Some(entry) = state.jobs.get_mut(d.parent()) {
        entry.children.remove(d.status);
        entry.children.removed_dead += 1;
        entry.summary_index = state.index;
        if let Some(token) = &d.idempotency_token {
            entry.tokens.remove(token);
        }
        changes.push(Change::SetRemovedChildren {
            job_id: d.parent().to_string(),
            dead: entry.children.removed_dead,
        });
    }
    changes.push(Change::DeleteDispatch {
        id: id.to_string(),
        job_id: d.parent().to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    fn run(state: &mut State, now: i64, command: Command) -> Reply {
        let mut uuid = uuid::Uuid::new_v4;
        let mut env = Env {
            now,
            uuid: &mut uuid,
        };
        apply(state, command, &mut env, &mut Vec::new()).unwrap()
    }

    /// Idle time counts from when a child ended, not from when it was submitted: a dispatch
    /// queued for 5 hours and stopped just now is not collected by a 4-hour threshold.
    #[test]
    fn gc_counts_idle_time_from_the_end() {
        let mut state = State::default();
        let job = crate::model::job::test_job("j");
        run(&mut state, 0, Command::RegisterJob(Box::new(job)));
        let Reply::Dispatched(d) = run(
            &mut state,
            0,
            Command::Dispatch(DispatchRequest {
                job_id: "j".into(),
                ..Default::default()
            }),
        ) else {
            panic!("not dispatched");
        };
        let id: Arc<str> = d.dispatched_job_id.as_str().into();
        let stop = Command::StopJob {
            id: id.to_string(),
            purge: false,
        };
        run(&mut state, 5 * HOUR, stop);
        let gc = |idle_since| Command::CollectGarbage {
            ids: vec![id.clone()],
            idle_since,
        };
        let Reply::Collected { removed } = run(&mut state, 5 * HOUR, gc(HOUR)) else {
            panic!("not a GC reply");
        };
        assert!(removed.is_empty(), "collected 1 h after it ended");
        let Reply::Collected { removed } = run(&mut state, 9 * HOUR, gc(5 * HOUR)) else {
            panic!("not a GC reply");
        };
        assert_eq!(removed, vec![id.clone()]);
        assert!(!state.dispatches.contains_key(&id));
        assert_eq!(state.jobs["j"].children.dead(), 1);
    }
}
