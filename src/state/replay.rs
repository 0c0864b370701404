//! Following the leader: applying a batch another server committed (as read back from the
//! store's change log) to this server's copy of the state, so that a standby answers reads
//! and, when it takes over, leads without loading everything again.
//!
//! It repeats what `apply` did on the leader, from the rows it wrote: counters, tokens,
//! evaluations, the queue and the active set are kept exactly as the leader keeps them. One
//! approximation: a run update that did not change its dispatch's status carries no index of
//! its own, so the dispatch's `ModifyIndex` (and its parent's summary index) become the
//! batch's index, which is the same or a little higher.

use std::sync::Arc;

use super::load::{add_dispatch, add_run};
use super::{queue, JobEntry, State};
use crate::cluster::TaskState;
use crate::model::Job;
use crate::store::{Change, JobRow, Logged, RunRow, StoreError};

/// Apply one committed batch. An error means the copy can no longer be trusted (the caller
/// reloads it from the store).
pub fn replay(state: &mut State, batch: Logged, now: i64) -> Result<(), StoreError> {
    state.now = now;
    let index = batch.index;
    for change in batch.changes {
        match change {
            Change::PutSetting { key, value } => {
                if key == super::acl::BOOTSTRAP_INDEX_SETTING {
                    state
                        .acl
                        .follow(&Change::PutSetting {
                            key: key.clone(),
                            value: value.clone(),
                        })
                        .map_err(StoreError::Corrupt)?;
                }
                state.settings.insert(key, value);
            }
            Change::PutAclToken { .. }
            | Change::DeleteAclToken { .. }
            | Change::PutAclPolicy { .. }
            | Change::DeleteAclPolicy { .. } => {
                state.acl.follow(&change).map_err(StoreError::Corrupt)?;
            }
            Change::PutJobVersion(row) => put_job_version(state, row)?,
            Change::DeleteJob { id } => {
                state.jobs.remove(&id);
            }
            Change::PutDispatch(row) => {
                let job =
                    current_version(state, &row.job_id, row.job_version).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "dispatch {} of {} v{}: no such job version",
                            row.id, row.job_id, row.job_version
                        ))
                    })?;
                let id = row.id.clone();
                add_dispatch(state, job, row)?;
                queue::refresh(state, &id);
            }
            Change::SetDispatchStatus {
                id,
                status,
                modify_index,
                description,
            } => {
                state.set_child_status(&id, status, description, modify_index, &mut Vec::new());
            }
            Change::DeleteDispatch { id, .. } => remove_dispatch(state, &id, index),
            Change::PutRun(row) => put_run(state, row, index),
            Change::SetRemovedChildren { job_id, dead } => {
                if let Some(entry) = state.jobs.get_mut(&job_id) {
                    entry.children.removed_dead = dead;
                }
            }
            Change::SetIndex(i) => state.index = state.index.max(i),
        }
    }
    state.index = state.index.max(index);
    Ok(())
}

/// The parent's current version if it is `version` (a dispatch is made from the current
/// version, and the log is in order).
fn current_version(state: &State, job_id: &str, version: u64) -> Option<Arc<Job>> {
    state
        .jobs
        .get(job_id)
        .map(|e| e.job.clone())
        .filter(|j| j.version == version)
}

fn put_job_version(state: &mut State, row: JobRow) -> Result<(), StoreError> {
    let job: Job = serde_json::from_str(&row.json)
        .map_err(|e| StoreError::Corrupt(format!("job {} v{}: {e}", row.id, row.version)))?;
    let job = Arc::new(job);
    let index = job.modify_index;
    match state.jobs.get_mut(&row.id) {
        Some(entry) => {
            if job.version >= entry.job.version {
                entry.job = job;
            }
            entry.summary_index = entry.summary_index.max(index);
        }
        None => {
            state.jobs.insert(row.id, JobEntry::new(job, index));
        }
    }
    Ok(())
}

/// What `apply::remove_child` does, except the removed count, which comes as its own change.
fn remove_dispatch(state: &mut State, id: &str, index: u64) {
    let Some(d) = state.dispatches.remove(id) else {
        return;
    };
    queue::forget(state, &d);
    state.child_index.remove(&d);
    state.evals.remove(&d.eval_id);
    if let Some(entry) = state.jobs.get_mut(d.parent()) {
        entry.children.remove(d.status);
        entry.summary_index = entry.summary_index.max(index);
        if let Some(token) = &d.idempotency_token {
            entry.tokens.remove(token);
        }
    }
}

/// A new run, or a new state of a run already known.
fn put_run(state: &mut State, row: RunRow, index: u64) {
    let dispatch_id: Arc<str> = match state.dispatches.get_key_value(row.dispatch_id.as_str()) {
        Some((id, _)) => id.clone(),
        None => return,
    };
    let known = state
        .dispatches
        .get(&dispatch_id)
        .and_then(|d| d.runs.iter().rposition(|r| *r.task_id == *row.task_id));
    match known {
        None => add_run(state, row),
        Some(at) => {
            let Some(d) = state.dispatches.get_mut(&dispatch_id) else {
                return;
            };
            let run = &mut d.runs[at];
            run.state = (!row.state.is_empty()).then(|| TaskState::parse(&row.state));
            run.agent_id = row.agent_id.into();
            run.exit_code = row.exit_code;
            run.message = row.message.map(Into::into);
            run.updated_at = row.updated_at;
            if run.is_active() {
                state
                    .run_index
                    .insert(run.task_id.clone(), dispatch_id.clone());
            } else {
                state.run_index.remove(&run.task_id);
            }
        }
    }
    let parent = match state.dispatches.get_mut(&dispatch_id) {
        Some(d) => {
            d.modify_index = d.modify_index.max(index);
            d.job.id.clone()
        }
        None => return,
    };
    if let Some(entry) = state.jobs.get_mut(&parent) {
        entry.summary_index = entry.summary_index.max(index);
    }
    queue::refresh(state, &dispatch_id);
}

#[cfg(test)]
mod tests {
    use super::super::apply::{apply, Env};
    use super::super::command::{Command, DispatchRequest, LaunchRun, Reply, TaskUpdate};
    use super::*;
    use crate::model::{DispatchStatus, Slot};

    /// What a reader can see of a state (indexes of runs-only updates aside).
    fn fingerprint(s: &State) -> String {
        let mut out = format!("index {}\n", s.index());
        for e in s.jobs() {
            out += &format!(
                "job {} v{} stop={} {:?} demand={:?}\n",
                e.job.id, e.job.version, e.job.stop, e.children, e.pending_demand
            );
            let mut tokens: Vec<_> = e.tokens.iter().collect();
            tokens.sort();
            out += &format!("  tokens {tokens:?}\n");
        }
        for d in s.dispatches_from(std::ops::Bound::Unbounded) {
            out += &format!(
                "dispatch {} {:?} v{} create={} desc={:?} eval={}\n",
                d.id, d.status, d.job.version, d.create_index, d.description, d.eval_id
            );
            for r in &d.runs {
                out += &format!(
                    "  run {} {:?} a{} {:?} {:?} {}\n",
                    r.task_id, r.state, r.attempt, r.exit_code, r.message, r.agent_id
                );
            }
        }
        let queued: Vec<_> = s.queued().map(|d| d.id.clone()).collect();
        let active: Vec<_> = s.active().map(|d| d.id.clone()).collect();
        let mut runs: Vec<_> = s.active_runs().map(|(_, r)| r.task_id.clone()).collect();
        runs.sort();
        let mut evals: Vec<_> = s.all_evals().map(|(e, d)| (*e, d.id.clone())).collect();
        evals.sort();
        out += &format!(
            "queue {queued:?}\nactive {active:?}\nruns {runs:?}\nevals {}\nsettings {:?}\nnewest {}\n",
            evals.len(),
            s.settings(),
            s.newest_dispatch_index()
        );
        out
    }

    /// Everything the writer could be asked, in one sequence with several batches: a standby
    /// that replays the changes ends up where the leader is.
    #[test]
    fn a_follower_replaying_the_changes_sees_what_the_leader_sees() {
        let mut leader = State::default();
        let mut follower = State::default();
        let mut uuid = uuid::Uuid::new_v4;
        let mut batches: Vec<Vec<Command>> = Vec::new();
        let dispatch = |token: Option<&str>, priority| {
            Command::Dispatch(DispatchRequest {
                job_id: "j".into(),
                priority,
                idempotency_token: token.map(Into::into),
                payload: Some(b"x".to_vec()),
                ..Default::default()
            })
        };
        batches.push(vec![
            Command::RegisterJob(Box::new(crate::model::job::test_job("j"))),
            Command::RegisterJob(Box::new(crate::model::job::test_job("other"))),
            dispatch(Some("t1"), 10),
            dispatch(None, 90),
            Command::SetSetting {
                key: "mesos.framework_id".into(),
                value: "fw-1".into(),
            },
        ]);
        let mut step = 0;
        let mut ids: Vec<Arc<str>> = Vec::new();
        let mut run = |state: &mut State, batch: Vec<Command>, now| {
            let mut env = Env {
                now,
                uuid: &mut uuid,
            };
            let mut changes = Vec::new();
            for command in batch {
                if let Ok(Reply::Dispatched(d)) = apply(state, command, &mut env, &mut changes) {
                    ids.push(d.dispatched_job_id.as_str().into());
                }
            }
            changes.push(Change::SetIndex(state.index()));
            changes
        };
        let mut replay_all = |leader: &mut State, follower: &mut State, batch, now| {
            step += 1;
            let changes = run(leader, batch, now);
            let index = leader.index();
            replay(
                follower,
                Logged {
                    index,
                    prev: 0,
                    changes,
                },
                now,
            )
            .expect("replayed");
            assert_eq!(
                fingerprint(follower),
                fingerprint(leader),
                "after batch {step}"
            );
        };
        for batch in batches.drain(..) {
            replay_all(&mut leader, &mut follower, batch, 1);
        }
        let first: Arc<str> = leader.queued().next().map(|d| d.id.clone()).unwrap();
        let launch = |id: &Arc<str>, task: &str, attempt| Command::Launch {
            dispatch_id: id.clone(),
            runs: vec![LaunchRun {
                slot: Slot {
                    group: 0,
                    instance: 0,
                    task: 0,
                },
                attempt,
                task_id: task.into(),
                agent_id: "a1".into(),
            }],
        };
        let update = |task: &str, state, exit_code| {
            Command::TaskUpdate(TaskUpdate {
                task_id: task.into(),
                state,
                agent_id: Some("a2".into()),
                message: Some("m".into()),
                exit_code,
            })
        };
        replay_all(
            &mut leader,
            &mut follower,
            vec![
                launch(&first, "t-1", 1),
                update("t-1", TaskState::TaskRunning, None),
                dispatch(Some("t1"), 0),
                dispatch(Some("t2"), 0),
            ],
            2,
        );
        let next_queued = leader.queued().next().map(|d| d.id.clone()).unwrap();
        replay_all(
            &mut leader,
            &mut follower,
            vec![
                update("t-1", TaskState::TaskFinished, Some(0)),
                Command::Note {
                    dispatch_id: next_queued,
                    note: "waiting for offers".into(),
                },
            ],
            3,
        );
        let queued: Vec<Arc<str>> = leader.queued().map(|d| d.id.clone()).collect();
        replay_all(
            &mut leader,
            &mut follower,
            vec![
                Command::StopJob {
                    id: queued[0].to_string(),
                    purge: false,
                },
                Command::FailDispatch {
                    dispatch_id: queued[1].clone(),
                    reason: "cannot render".into(),
                },
                Command::CollectGarbage {
                    ids: vec![first.clone(), queued[0].clone()],
                    idle_since: 10,
                },
            ],
            4,
        );
        assert!(follower.dispatch(&first).is_none(), "collected");
        replay_all(
            &mut leader,
            &mut follower,
            vec![
                Command::RegisterJob(Box::new(crate::model::job::test_job("j"))),
                dispatch(None, 0),
                Command::StopJob {
                    id: "j".into(),
                    purge: false,
                },
            ],
            5,
        );
        replay_all(
            &mut leader,
            &mut follower,
            vec![
                Command::StopJob {
                    id: "j".into(),
                    purge: true,
                },
                Command::RegisterJob(Box::new(crate::model::job::test_job("j"))),
                dispatch(Some("t1"), 0),
            ],
            6,
        );
        assert_eq!(follower.job("j").map(|e| e.children.pending), Some(1));
        assert_eq!(follower.dispatch_count(), leader.dispatch_count());
        assert!(leader
            .children_of("j")
            .all(|d| d.status == DispatchStatus::Pending));
    }

    /// ACL changes the leader commits (bootstrap, policy, token, delete) reach a follower:
    /// a token works against it, with the same rights, and a deleted one no longer does.
    #[test]
    fn a_follower_replaying_acl_changes_resolves_the_leaders_tokens() {
        use super::super::acl::{AclCommand, AclReply, Caller};
        let mut leader = State::default();
        let mut follower = State::default();
        let mut uuid = uuid::Uuid::new_v4;
        let mut run = |leader: &mut State, follower: &mut State, commands: Vec<Command>| {
            let mut env = Env {
                now: 1,
                uuid: &mut uuid,
            };
            let mut changes = Vec::new();
            let mut tokens = Vec::new();
            for command in commands {
                match apply(leader, command, &mut env, &mut changes) {
                    Ok(Reply::Acl(AclReply::Token { token, secret })) => {
                        tokens.push((token.accessor_id, secret))
                    }
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            changes.push(Change::SetIndex(leader.index()));
            let index = leader.index();
            replay(
                follower,
                Logged {
                    index,
                    prev: 0,
                    changes,
                },
                1,
            )
            .expect("replayed");
            tokens
        };
        let made = run(
            &mut leader,
            &mut follower,
            vec![
                Command::Acl(AclCommand::Bootstrap {
                    secret: "boot".into(),
                }),
                Command::Acl(AclCommand::UpsertPolicy {
                    name: "p".into(),
                    description: String::new(),
                    rules: "job \"j\" {\n  capabilities = [\"dispatch-job\"]\n}\n".into(),
                }),
                Command::Acl(AclCommand::CreateToken {
                    name: "app".into(),
                    management: false,
                    policies: vec!["p".into()],
                    ttl: None,
                }),
            ],
        );
        let (app_accessor, app_secret) = made[1].clone();
        let accessor_of = |state: &State, secret: &str| match state.acl().caller(Some(secret), 1) {
            Caller::Token { token, grants } => Some((token.accessor_id, format!("{grants:?}"))),
            _ => None,
        };
        assert_eq!(
            follower.acl().bootstrap_index(),
            leader.acl().bootstrap_index()
        );
        assert!(follower.acl().bootstrap_index().is_some());
        for secret in ["boot", app_secret.as_str()] {
            assert!(accessor_of(&follower, secret).is_some(), "{secret}");
            assert_eq!(accessor_of(&follower, secret), accessor_of(&leader, secret));
        }
        assert_eq!(
            follower.acl().policies().count(),
            leader.acl().policies().count()
        );
        run(
            &mut leader,
            &mut follower,
            vec![
                Command::Acl(AclCommand::DeleteToken {
                    accessor: app_accessor,
                }),
                Command::Acl(AclCommand::DeletePolicy { name: "p".into() }),
            ],
        );
        assert_eq!(accessor_of(&follower, &app_secret), None);
        assert_eq!(follower.acl().policies().count(), 0);
        assert!(accessor_of(&follower, "boot").is_some());
    }
}
