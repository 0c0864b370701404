//! A batch of changes folded into one statement per table (multi-row `unnest` inserts,
//! updates and deletes), so a commit costs a handful of round trips however many dispatches
//! it carries.
//!
//! The fold keeps the batch's meaning: the last write of a key wins; a delete drops what the
//! batch wrote to its key before it; deletes run before inserts, so a key deleted and then
//! written again in one batch ends up written. A status change of a dispatch inserted in the
//! same batch is folded into the inserted row. (After `DeleteDispatch` no change of the batch
//! names that dispatch again: IDs are never reused.)

use std::collections::HashSet;

use indexmap::IndexMap;

use super::super::{Change, DispatchRow, RunRow};
use crate::model::DispatchStatus;

/// A status change of a dispatch the batch did not insert.
pub struct StatusChange<'a> {
    pub status: DispatchStatus,
    pub modify_index: u64,
    pub description: Option<&'a str>,
}

#[derive(Default)]
pub struct Folded<'a> {
    pub deleted_dispatches: Vec<&'a str>,
    pub deleted_jobs: Vec<&'a str>,
    pub job_versions: IndexMap<(&'a str, u64), &'a str>,
    pub dispatches: IndexMap<&'a str, DispatchRow>,
    pub payloads: IndexMap<&'a str, &'a [u8]>,
    pub statuses: IndexMap<&'a str, StatusChange<'a>>,
    pub runs: IndexMap<&'a str, &'a RunRow>,
    pub settings: IndexMap<&'a str, &'a str>,
    pub removed_children: IndexMap<&'a str, u64>,
    pub deleted_acl_policies: Vec<&'a str>,
    pub acl_policies: IndexMap<&'a str, &'a str>,
    pub deleted_acl_tokens: Vec<&'a str>,
    pub acl_tokens: IndexMap<&'a str, &'a str>,
    pub index: Option<u64>,
}

impl<'a> Folded<'a> {
    pub fn of(changes: &'a [Change]) -> Folded<'a> {
        let mut f = Folded::default();
        let mut deleted_dispatches: HashSet<&str> = HashSet::new();
        let mut deleted_jobs: HashSet<&str> = HashSet::new();
        for change in changes {
            match change {
                Change::PutSetting { key, value } => {
                    f.settings.insert(key, value);
                }
                Change::PutJobVersion(row) => {
                    f.job_versions.insert((&row.id, row.version), &row.json);
                }
                Change::DeleteJob { id } => {
                    f.job_versions.retain(|(job, _), _| job != id);
                    f.removed_children.shift_remove(id.as_str());
                    if deleted_jobs.insert(id) {
                        f.deleted_jobs.push(id);
                    }
                }
                Change::PutDispatch(row) => {
                    let id: &'a str = &row.id;
                    if let Some(payload) = &row.payload {
                        f.payloads.insert(id, payload);
                    }
                    f.statuses.shift_remove(id);
                    let mut row = row.clone();
                    row.payload = None;
                    f.dispatches.insert(id, row);
                }
                Change::SetDispatchStatus {
                    id,
                    status,
                    modify_index,
                    description,
                } => match f.dispatches.get_mut(id.as_str()) {
                    Some(row) => {
                        row.status = *status;
                        row.modify_index = *modify_index;
                        row.description = description.clone();
                    }
                    None => {
                        f.statuses.insert(
                            id,
                            StatusChange {
                                status: *status,
                                modify_index: *modify_index,
                                description: description.as_deref(),
                            },
                        );
                    }
                },
                Change::DeleteDispatch { id, .. } => {
                    f.dispatches.shift_remove(id.as_str());
                    f.payloads.shift_remove(id.as_str());
                    f.statuses.shift_remove(id.as_str());
                    if deleted_dispatches.insert(id) {
                        f.deleted_dispatches.push(id);
                    }
                }
                Change::PutRun(run) => {
                    f.runs.insert(&run.task_id, run);
                }
                Change::SetRemovedChildren { job_id, dead } => {
                    f.removed_children.insert(job_id, *dead);
                }
                Change::PutAclPolicy { name, json } => {
                    f.acl_policies.insert(name, json);
                }
                Change::DeleteAclPolicy { name } => {
                    f.acl_policies.shift_remove(name.as_str());
                    if !f.deleted_acl_policies.contains(&name.as_str()) {
                        f.deleted_acl_policies.push(name);
                    }
                }
                Change::PutAclToken { accessor, json } => {
                    f.acl_tokens.insert(accessor, json);
                }
                Change::DeleteAclToken { accessor } => {
                    f.acl_tokens.shift_remove(accessor.as_str());
                    if !f.deleted_acl_tokens.contains(&accessor.as_str()) {
                        f.deleted_acl_tokens.push(accessor);
                    }
                }
                Change::SetIndex(index) => f.index = Some(*index),
            }
        }
        // Runs of a dispatch deleted in this batch were written before its delete.
        if !deleted_dispatches.is_empty() {
            f.runs
                .retain(|_, run| !deleted_dispatches.contains(run.dispatch_id.as_str()));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch(id: &str) -> Change {
        Change::PutDispatch(DispatchRow {
            id: id.into(),
            job_id: "j".into(),
            job_version: 0,
            status: DispatchStatus::Pending,
            priority: 50,
            idempotency_token: None,
            meta_json: "{}".into(),
            payload: Some(vec![1]),
            payload_len: 1,
            eval_id: [0; 16],
            submit_time: 0,
            create_index: 1,
            modify_index: 1,
            description: None,
            dispatched_by: Some("accessor-1".into()),
        })
    }

    fn run(task: &str, dispatch: &str) -> Change {
        Change::PutRun(RunRow {
            task_id: task.into(),
            dispatch_id: dispatch.into(),
            group: 0,
            instance: 0,
            task: 0,
            attempt: 1,
            state: String::new(),
            agent_id: "a".into(),
            exit_code: None,
            message: None,
            launched_at: 0,
            updated_at: 0,
        })
    }

    #[test]
    fn status_changes_fold_into_rows_inserted_in_the_same_batch() {
        let changes = vec![
            dispatch("a"),
            Change::SetDispatchStatus {
                id: "a".into(),
                status: DispatchStatus::Running,
                modify_index: 2,
                description: None,
            },
            Change::SetDispatchStatus {
                id: "old".into(),
                status: DispatchStatus::Complete,
                modify_index: 3,
                description: Some("done".into()),
            },
            Change::SetIndex(3),
        ];
        let f = Folded::of(&changes);
        assert_eq!(f.dispatches["a"].status, DispatchStatus::Running);
        assert_eq!(f.dispatches["a"].modify_index, 2);
        assert!(f.dispatches["a"].payload.is_none());
        assert_eq!(f.payloads["a"], &[1][..]);
        assert_eq!(f.statuses.len(), 1);
        assert_eq!(f.statuses["old"].description, Some("done"));
        assert_eq!(f.index, Some(3));
    }

    #[test]
    fn a_delete_drops_what_the_batch_wrote_before_it() {
        let changes = vec![
            dispatch("a"),
            run("t1", "a"),
            run("t2", "b"),
            Change::DeleteDispatch {
                id: "a".into(),
                job_id: "j".into(),
            },
            Change::PutJobVersion(crate::store::JobRow {
                id: "j".into(),
                version: 0,
                json: "{}".into(),
            }),
            Change::SetRemovedChildren {
                job_id: "j".into(),
                dead: 1,
            },
            Change::DeleteJob { id: "j".into() },
            Change::PutJobVersion(crate::store::JobRow {
                id: "j".into(),
                version: 0,
                json: "{\"again\":1}".into(),
            }),
        ];
        let f = Folded::of(&changes);
        assert!(f.dispatches.is_empty() && f.payloads.is_empty());
        assert_eq!(f.runs.keys().copied().collect::<Vec<_>>(), ["t2"]);
        assert_eq!(f.deleted_dispatches, ["a"]);
        assert_eq!(f.deleted_jobs, ["j"]);
        assert!(f.removed_children.is_empty());
        assert_eq!(f.job_versions[&("j", 0)], "{\"again\":1}");
    }

    #[test]
    fn acl_writes_fold_like_the_rest() {
        let put_token = |accessor: &str, json: &str| Change::PutAclToken {
            accessor: accessor.into(),
            json: json.into(),
        };
        let changes = vec![
            put_token("a", "1"),
            put_token("a", "2"),
            put_token("b", "1"),
            Change::DeleteAclToken {
                accessor: "b".into(),
            },
            Change::DeleteAclToken {
                accessor: "c".into(),
            },
            put_token("c", "again"),
            Change::PutAclPolicy {
                name: "p".into(),
                json: "{}".into(),
            },
            Change::DeleteAclPolicy { name: "p".into() },
        ];
        let f = Folded::of(&changes);
        assert_eq!(f.acl_tokens.len(), 2);
        assert_eq!(f.acl_tokens["a"], "2");
        assert_eq!(
            f.acl_tokens["c"], "again",
            "deletes run first, so c ends up written"
        );
        assert_eq!(f.deleted_acl_tokens, ["b", "c"]);
        assert!(f.acl_policies.is_empty());
        assert_eq!(f.deleted_acl_policies, ["p"]);
    }
}
