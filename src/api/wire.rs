//! Wire types of the Nomad-compatible API that are not the job itself (`model::Job` is
//! already in Nomad's shape). Field names are Nomad's; clients dereference them, so none
//! is ever omitted or null where Nomad sends a value. The CLI reads the same types.
//!
//! Evaluations and allocations are derived, never stored: each dispatch keeps the ID of "its"
//! evaluation (`Evaluation::of_dispatch`: complete once queued, the waiting groups in
//! `QueuedAllocations`); allocations are one per group instance that launched
//! (`Allocation::of_dispatch`), with Nomad's `TaskStates` plus `TaskRuns` (every attempt with
//! its task ID, state and exit code).

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339_nanos as rfc3339;
use crate::model::{Dispatch, DispatchStatus, Job};
use crate::state::{ChildCounts, JobEntry};

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub name: String,
    pub namespace: String,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    pub multiregion: Option<()>,
    pub r#type: String,
    pub priority: i64,
    pub periodic: bool,
    pub parameterized_job: bool,
    pub stop: bool,
    pub status: String,
    pub status_description: String,
    pub job_summary: JobSummary,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    pub submit_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<IndexMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub summary: BTreeMap<String, TaskGroupSummary>,
    pub children: Children,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One group's allocation counts in a job summary (the server writes it, the CLI reads it).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroupSummary {
    pub queued: u64,
    pub complete: u64,
    pub failed: u64,
    pub running: u64,
    pub starting: u64,
    pub lost: u64,
    pub unknown: u64,
}

/// A parameterized job's children by status (the server writes it, the CLI reads it).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Children {
    pub pending: u64,
    pub running: u64,
    pub dead: u64,
}

impl From<ChildCounts> for Children {
    fn from(c: ChildCounts) -> Self {
        Children {
            pending: c.pending,
            running: c.running,
            dead: c.dead(),
        }
    }
}

fn zero_groups(job: &Job) -> BTreeMap<String, TaskGroupSummary> {
    job.task_groups
        .iter()
        .map(|g| (g.name.clone(), TaskGroupSummary::default()))
        .collect()
}

impl JobSummary {
    pub fn of_parent(entry: &JobEntry) -> JobSummary {
        JobSummary {
            job_id: entry.job.id.clone(),
            namespace: entry.job.namespace.clone(),
            summary: zero_groups(&entry.job),
            children: entry.children.into(),
            create_index: entry.job.create_index,
            modify_index: entry.summary_index,
        }
    }

    /// A child's summary: each group counts as queued, running, complete or failed
    /// according to the dispatch's status (one instance per group count).
    pub fn of_child(d: &Dispatch) -> JobSummary {
        let mut summary = zero_groups(&d.job);
        for g in &d.job.task_groups {
            let n = g.count.unwrap_or(1).max(0) as u64;
            if let Some(s) = summary.get_mut(&g.name) {
                match d.status {
                    DispatchStatus::Pending => s.queued = n,
                    DispatchStatus::Running => s.running = n,
                    DispatchStatus::Complete => s.complete = n,
                    DispatchStatus::Failed => s.failed = n,
                    DispatchStatus::Stopped => {}
                }
            }
        }
        JobSummary {
            job_id: d.id.to_string(),
            namespace: d.job.namespace.clone(),
            summary,
            children: Children::default(),
            create_index: d.create_index,
            modify_index: d.modify_index,
        }
    }
}

impl JobListStub {
    pub fn of_parent(entry: &JobEntry, with_meta: bool) -> JobListStub {
        let job = &entry.job;
        JobListStub {
            id: job.id.clone(),
            parent_id: String::new(),
            name: job.name.clone(),
            namespace: job.namespace.clone(),
            datacenters: job.datacenters.clone(),
            node_pool: job.node_pool.clone(),
            multiregion: None,
            r#type: job.r#type.clone(),
            priority: job.priority,
            periodic: job.extra.get("Periodic").is_some_and(|p| !p.is_null()),
            parameterized_job: job.is_parameterized(),
            stop: job.stop,
            status: job.status.clone(),
            status_description: job.status_description.clone(),
            job_summary: JobSummary::of_parent(entry),
            create_index: job.create_index,
            modify_index: job.modify_index,
            job_modify_index: job.job_modify_index,
            submit_time: job.submit_time,
            meta: with_meta.then(|| job.meta.clone()),
        }
    }

    pub fn of_child(d: &Dispatch, with_meta: bool) -> JobListStub {
        let job = &d.job;
        JobListStub {
            id: d.id.to_string(),
            parent_id: job.id.clone(),
            name: d.id.to_string(),
            namespace: job.namespace.clone(),
            datacenters: job.datacenters.clone(),
            node_pool: job.node_pool.clone(),
            multiregion: None,
            r#type: job.r#type.clone(),
            priority: d.priority as i64,
            periodic: false,
            parameterized_job: false,
            stop: d.status == DispatchStatus::Stopped,
            status: d.status.nomad_job_status().into(),
            status_description: String::new(),
            job_summary: JobSummary::of_child(d),
            create_index: d.create_index,
            modify_index: d.modify_index,
            job_modify_index: d.create_index,
            submit_time: d.submit_time,
            meta: with_meta.then(|| d.merged_meta()),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub warnings: String,
    pub index: u64,
    pub last_contact: u64,
    pub known_leader: bool,
}

/// The answer to a dispatch (the server writes it, the CLI reads it; fields a server leaves
/// out read as empty).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DispatchResponse {
    #[serde(rename = "DispatchedJobID")]
    pub dispatched_job_id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_create_index: u64,
    pub index: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeregisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub index: u64,
}

/// A Nomad evaluation, derived from the dispatch that created it. A dispatch's evaluation
/// is `complete` once the dispatch is queued; while the dispatch waits for capacity its
/// groups show in `QueuedAllocations` (Nomad's "blocked" evals are our pending queue).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Evaluation {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    pub priority: i64,
    pub r#type: String,
    pub triggered_by: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_modify_index: u64,
    pub status: String,
    pub status_description: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub wait: u64,
    pub next_eval: String,
    pub previous_eval: String,
    pub blocked_eval: String,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: Option<()>,
    pub queued_allocations: BTreeMap<String, u64>,
    pub snapshot_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl Evaluation {
    pub fn of_dispatch(d: &Dispatch) -> Evaluation {
        let queued = d
            .job
            .task_groups
            .iter()
            .map(|g| {
                let n = if d.status == DispatchStatus::Pending {
                    g.count.unwrap_or(1).max(0) as u64
                } else {
                    0
                };
                (g.name.clone(), n)
            })
            .collect();
        Evaluation {
            id: d.eval_id.to_string(),
            namespace: d.job.namespace.clone(),
            priority: d.priority as i64,
            r#type: d.job.r#type.clone(),
            triggered_by: "job-register".into(),
            job_id: d.id.to_string(),
            job_modify_index: d.create_index,
            status: "complete".into(),
            status_description: String::new(),
            node_id: String::new(),
            deployment_id: String::new(),
            wait: 0,
            next_eval: String::new(),
            previous_eval: String::new(),
            blocked_eval: String::new(),
            failed_tg_allocs: None,
            queued_allocations: queued,
            snapshot_index: d.create_index,
            create_index: d.create_index,
            modify_index: d.modify_index,
            create_time: d.submit_time,
            modify_time: d.submit_time,
        }
    }
}

/// One allocation: a group instance of a dispatched child, with its tasks' runs. Derived
/// from the dispatch's task runs (Nomad clients read allocations to follow a job).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Allocation {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_version: u64,
    pub task_group: String,
    pub desired_status: String,
    pub desired_description: String,
    pub client_status: String,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskStateView>,
    /// Dispatch extension: every attempt of every task, with Mesos task IDs and states.
    pub task_runs: Vec<TaskRunView>,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStateView {
    /// Nomad's task state: pending, running or dead.
    pub state: String,
    pub failed: bool,
    pub restarts: u64,
    /// RFC 3339, or null.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub events: Vec<TaskEventView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskEventView {
    pub r#type: String,
    pub time: i64,
    pub display_message: String,
    pub exit_code: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskRunView {
    #[serde(rename = "TaskID")]
    pub task_id: String,
    pub task: String,
    pub attempt: u32,
    /// The Mesos task state (`TASK_RUNNING`, `TASK_FAILED`, ...).
    pub state: String,
    pub exit_code: Option<i32>,
    pub message: String,
    #[serde(rename = "AgentID")]
    pub agent_id: String,
    pub launched_at: i64,
    pub updated_at: i64,
    /// What the task asks of its agent (its `TaskInfo.resources`).
    pub resources: RunResources,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunResources {
    pub cpus: f64,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: f64,
    #[serde(rename = "DiskMB")]
    pub disk_mb: f64,
    #[serde(rename = "GPUs")]
    pub gpus: f64,
}

impl RunResources {
    fn of(task: Option<&crate::model::job::Task>) -> RunResources {
        let d = task.map(crate::render::task_demand).unwrap_or_default();
        RunResources {
            cpus: d.cpus,
            memory_mb: d.mem_mb,
            disk_mb: d.disk_mb,
            gpus: d.gpus,
        }
    }
}

impl Allocation {
    /// The allocations of a dispatch: one per group instance that has launched anything.
    pub fn of_dispatch(d: &Dispatch) -> Vec<Allocation> {
        use crate::model::TaskRun;
        let mut by_alloc: BTreeMap<(u16, u32), Vec<&TaskRun>> = BTreeMap::new();
        for run in &d.runs {
            by_alloc
                .entry((run.slot.group, run.slot.instance))
                .or_default()
                .push(run);
        }
        let mut out = Vec::new();
        for ((g, instance), runs) in by_alloc {
            let Some(group) = d.job.task_groups.get(g as usize) else {
                continue;
            };
            let task_name = |t: u16| {
                group
                    .tasks
                    .get(t as usize)
                    .map_or_else(|| format!("task-{t}"), |t| t.name.clone())
            };
            let mut task_states = BTreeMap::new();
            for (t, task) in group.tasks.iter().enumerate() {
                let mine: Vec<&&TaskRun> =
                    runs.iter().filter(|r| r.slot.task as usize == t).collect();
                let Some(last) = mine.last() else {
                    task_states.insert(
                        task.name.clone(),
                        TaskStateView {
                            state: "pending".into(),
                            failed: false,
                            restarts: 0,
                            started_at: None,
                            finished_at: None,
                            events: Vec::new(),
                        },
                    );
                    continue;
                };
                let state = if last.is_active() {
                    if last.state.is_some() {
                        "running"
                    } else {
                        "pending"
                    }
                } else {
                    "dead"
                };
                let events = mine
                    .iter()
                    .map(|r| TaskEventView {
                        r#type: r.state_name().to_string(),
                        time: r.updated_at,
                        display_message: r.message.as_deref().unwrap_or_default().to_string(),
                        exit_code: r.exit_code.unwrap_or_default() as i64,
                    })
                    .collect();
                task_states.insert(
                    task.name.clone(),
                    TaskStateView {
                        state: state.into(),
                        failed: !last.is_active() && !last.finished(),
                        restarts: mine.len().saturating_sub(1) as u64,
                        started_at: mine.first().and_then(|r| rfc3339(r.launched_at)),
                        finished_at: (!last.is_active())
                            .then(|| rfc3339(last.updated_at))
                            .flatten(),
                        events,
                    },
                );
            }
            let any_active = runs.iter().any(|r| r.is_active());
            let any_running = runs.iter().any(|r| r.is_active() && r.state.is_some());
            // A group whose every task's last attempt finished is complete, whatever its
            // dispatch's other groups are doing.
            let all_finished = task_states.values().all(|t| t.state == "dead" && !t.failed);
            let client_status = if any_running {
                "running"
            } else if any_active {
                "pending"
            } else if all_finished {
                "complete"
            } else {
                match d.status {
                    DispatchStatus::Complete => "complete",
                    DispatchStatus::Running | DispatchStatus::Pending => "pending",
                    _ => "failed",
                }
            };
            let node = runs
                .last()
                .map(|r| r.agent_id.to_string())
                .unwrap_or_default();
            out.push(Allocation {
                id: crate::render::alloc_id(&crate::render::alloc_key(
                    &d.id,
                    &group.name,
                    instance,
                )),
                eval_id: d.eval_id.to_string(),
                name: format!("{}.{}[{}]", d.id, group.name, instance),
                namespace: d.job.namespace.clone(),
                node_id: node.clone(),
                node_name: node,
                job_id: d.id.to_string(),
                job_version: 0,
                task_group: group.name.clone(),
                desired_status: if d.status.is_terminal() {
                    "stop"
                } else {
                    "run"
                }
                .into(),
                desired_description: d.description.as_deref().unwrap_or_default().to_string(),
                client_status: client_status.into(),
                client_description: String::new(),
                task_states,
                task_runs: runs
                    .iter()
                    .map(|r| TaskRunView {
                        task_id: r.task_id.to_string(),
                        task: task_name(r.slot.task),
                        attempt: r.attempt,
                        state: r.state_name().to_string(),
                        exit_code: r.exit_code,
                        message: r.message.as_deref().unwrap_or_default().to_string(),
                        agent_id: r.agent_id.to_string(),
                        launched_at: r.launched_at,
                        updated_at: r.updated_at,
                        resources: RunResources::of(group.tasks.get(r.slot.task as usize)),
                    })
                    .collect(),
                create_index: d.create_index,
                modify_index: d.modify_index,
                create_time: runs.first().map_or(d.submit_time, |r| r.launched_at),
                modify_time: runs
                    .iter()
                    .map(|r| r.updated_at)
                    .max()
                    .unwrap_or(d.submit_time),
                followup_eval_id: String::new(),
            });
        }
        out
    }
}
