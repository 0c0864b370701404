//! Rebuilding `State` from the store at start-up, row by row as the store reads them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::{JobEntry, StartError, State};
use crate::cluster::TaskState;
use crate::model::{Dispatch, Job, Meta, Slot, TaskRun};
use crate::store::{DispatchRow, JobRow, Row, RunRow, Store, StoreError};

/// `now` stands in for when children that had ended before the restart ended (their idle
/// time for garbage collection counts from the restart).
pub fn rebuild(store: &mut dyn Store, now: i64) -> Result<State, StartError> {
    let mut state = State {
        now,
        ..State::default()
    };
    // Every stored version of every job, so each dispatch can point at the version it was
    // dispatched from. Versions no dispatch refers to are dropped once loading is done.
    let versions: RefCell<HashMap<(String, u64), Arc<Job>>> = RefCell::new(HashMap::new());
    let mut key = (String::new(), 0);
    let loaded = {
        let state = RefCell::new(&mut state);
        store.load(&mut |row| match row {
            Row::Job(row) => add_job(&mut state.borrow_mut(), &mut versions.borrow_mut(), row),
            Row::Dispatch(row) => {
                key.0.clear();
                key.0.push_str(&row.job_id);
                key.1 = row.job_version;
                let job = versions.borrow().get(&key).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "dispatch {} refers to missing job {} v{}",
                        row.id, row.job_id, row.job_version
                    ))
                })?;
                add_dispatch(&mut state.borrow_mut(), job, row)
            }
            Row::Run(row) => {
                add_run(&mut state.borrow_mut(), row);
                Ok(())
            }
        })?
    };
    state.index = loaded.index;
    state.settings = loaded.settings.into_iter().collect();
    state.acl = acl_state(&state.settings, &loaded.acl_tokens, &loaded.acl_policies)?;
    for (job_id, dead) in loaded.removed_children {
        if let Some(entry) = state.jobs.get_mut(&job_id) {
            entry.children.removed_dead = dead;
        }
    }
    let ids: Vec<Arc<str>> = state.dispatches.keys().cloned().collect();
    for id in ids {
        super::queue::refresh(&mut state, &id);
    }
    Ok(state)
}

/// The ACL tokens and policies as stored (JSON documents), with the bootstrap index the
/// settings keep.
fn acl_state(
    settings: &std::collections::BTreeMap<String, String>,
    tokens: &[String],
    policies: &[String],
) -> Result<super::acl::AclState, StartError> {
    let tokens = tokens
        .iter()
        .map(|json| serde_json::from_str(json))
        .collect::<Result<Vec<crate::acl::Token>, _>>()
        .map_err(|e| StartError::Corrupt(format!("ACL token: {e}")))?;
    let policies = policies
        .iter()
        .map(|json| serde_json::from_str(json))
        .collect::<Result<Vec<crate::acl::Policy>, _>>()
        .map_err(|e| StartError::Corrupt(format!("ACL policy: {e}")))?;
    let bootstrap_index = settings
        .get(super::acl::BOOTSTRAP_INDEX_SETTING)
        .and_then(|v| v.parse().ok());
    Ok(super::acl::AclState::load(
        tokens,
        policies,
        bootstrap_index,
    ))
}

fn add_job(
    state: &mut State,
    versions: &mut HashMap<(String, u64), Arc<Job>>,
    row: JobRow,
) -> Result<(), StoreError> {
    let job: Job = serde_json::from_str(&row.json)
        .map_err(|e| StoreError::Corrupt(format!("job {} v{}: {e}", row.id, row.version)))?;
    let job = Arc::new(job);
    // Rows come ordered by (job, version): the last one wins as current.
    state
        .jobs
        .insert(row.id.clone(), JobEntry::new(job.clone(), job.modify_index));
    versions.insert((row.id, row.version), job);
    Ok(())
}

pub(super) fn add_dispatch(
    state: &mut State,
    job: Arc<Job>,
    row: DispatchRow,
) -> Result<(), StoreError> {
    let meta: Meta = serde_json::from_str(&row.meta_json)
        .map_err(|e| StoreError::Corrupt(format!("dispatch {} meta: {e}", row.id)))?;
    let id: Arc<str> = row.id.into();
    let eval_id = uuid::Uuid::from_bytes(row.eval_id);
    if let Some(entry) = state.jobs.get_mut(&row.job_id) {
        entry.children.add(row.status);
        entry.summary_index = entry.summary_index.max(row.modify_index);
        if let Some(token) = &row.idempotency_token {
            entry.tokens.insert(token.as_str().into(), id.clone());
        }
    }
    state.evals.insert(eval_id, id.clone());
    state.newest_dispatch_index = state.newest_dispatch_index.max(row.create_index);
    let d = Dispatch {
        id,
        job,
        meta: (&meta).into(),
        priority: row.priority,
        status: row.status,
        idempotency_token: row.idempotency_token.map(Into::into),
        payload_len: row.payload_len,
        eval_id,
        submit_time: row.submit_time,
        create_index: row.create_index,
        modify_index: row.modify_index,
        description: row.description.map(Into::into),
        ended_at: if row.status.is_terminal() {
            state.now
        } else {
            0
        },
        runs: Vec::new(),
        dispatched_by: row.dispatched_by.map(Into::into),
    };
    state.child_index.insert(&d);
    state.dispatches.insert(d.id.clone(), d);
    Ok(())
}

pub(super) fn add_run(state: &mut State, row: RunRow) {
    let Some(d) = state.dispatches.get_mut(row.dispatch_id.as_str()) else {
        return;
    };
    let run = TaskRun {
        task_id: row.task_id.into(),
        slot: Slot {
            group: row.group,
            instance: row.instance,
            task: row.task,
        },
        attempt: row.attempt,
        state: (!row.state.is_empty()).then(|| TaskState::parse(&row.state)),
        agent_id: row.agent_id.into(),
        exit_code: row.exit_code,
        message: row.message.map(Into::into),
        launched_at: row.launched_at,
        updated_at: row.updated_at,
    };
    if run.is_active() {
        state.run_index.insert(run.task_id.clone(), d.id.clone());
    }
    d.runs.push(run);
}
