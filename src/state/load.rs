//! Rebuilding `State` from the store's rows at start-up.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ChildCounts, JobEntry, StartError, State};
use crate::cluster::TaskState;
use crate::model::{Dispatch, Job, Meta, Slot, TaskRun};
use crate::store::Contents;

pub fn rebuild(contents: Contents) -> Result<State, StartError> {
    let mut state = State {
        index: contents.index,
        ..State::default()
    };
    // Every stored version of every job, so each dispatch can point at the version it was
    // dispatched from. Versions no dispatch refers to are dropped once loading is done.
    let mut versions: HashMap<(String, u64), Arc<Job>> = HashMap::new();
    for row in contents.job_versions {
        let job: Job = serde_json::from_str(&row.json)
            .map_err(|e| StartError::Corrupt(format!("job {} v{}: {e}", row.id, row.version)))?;
        let job = Arc::new(job);
        // Rows come ordered by (job, version): the last one wins as current.
        state.jobs.insert(
            row.id.clone(),
            JobEntry {
                job: job.clone(),
                children: ChildCounts::default(),
                summary_index: job.modify_index,
                pending_demand: Default::default(),
                tokens: HashMap::new(),
            },
        );
        versions.insert((row.id, row.version), job);
    }
    let mut key = (String::new(), 0);
    for row in contents.dispatches {
        key.0.clear();
        key.0.push_str(&row.job_id);
        key.1 = row.job_version;
        let job = versions.get(&key).cloned().ok_or_else(|| {
            StartError::Corrupt(format!(
                "dispatch {} refers to missing job {} v{}",
                row.id, row.job_id, row.job_version
            ))
        })?;
        let meta: Meta = serde_json::from_str(&row.meta_json)
            .map_err(|e| StartError::Corrupt(format!("dispatch {} meta: {e}", row.id)))?;
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
        state.dispatches.insert(
            id.clone(),
            Dispatch {
                id,
                job,
                meta,
                priority: row.priority,
                status: row.status,
                idempotency_token: row.idempotency_token.map(Into::into),
                payload_len: row.payload_len,
                eval_id,
                submit_time: row.submit_time,
                create_index: row.create_index,
                modify_index: row.modify_index,
                description: row.description.map(Into::into),
                runs: Vec::new(),
            },
        );
    }
    for row in contents.runs {
        let Some(d) = state.dispatches.get_mut(row.dispatch_id.as_str()) else {
            continue;
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
    let ids: Vec<Arc<str>> = state.dispatches.keys().cloned().collect();
    for id in ids {
        super::queue::refresh(&mut state, &id);
    }
    Ok(state)
}
