//! Commands the single writer applies, and what it answers.

use std::sync::Arc;

use crate::cluster::TaskState;
use crate::model::{DispatchStatus, Job, Meta, Slot};

/// A change someone asks for. Each is validated and applied atomically by the writer.
#[derive(Debug)]
pub enum Command {
    /// Register a new job or a new version of an existing one.
    RegisterJob(Box<Job>),
    Dispatch(DispatchRequest),
    /// Stop (and with `purge`, remove) a job. For a parameterized parent this also stops
    /// its pending children, so nothing is orphaned.
    StopJob {
        id: String,
        purge: bool,
    },
    /// The scheduler is about to launch these attempts (recorded before the cluster is
    /// asked, so an attempt is never launched twice).
    Launch {
        dispatch_id: Arc<str>,
        runs: Vec<LaunchRun>,
    },
    /// A task status update from the cluster.
    TaskUpdate(TaskUpdate),
    /// Put a note on a dispatch (why it waits) without changing its status.
    Note {
        dispatch_id: Arc<str>,
        note: String,
    },
    /// The scheduler cannot run this dispatch (e.g. rendering failed).
    FailDispatch {
        dispatch_id: Arc<str>,
        reason: String,
    },
    /// Remember a setting across restarts (the Mesos FrameworkID).
    SetSetting {
        key: String,
        value: String,
    },
    /// Bootstrap, policies, tokens.
    Acl(super::acl::AclCommand),
    /// Garbage collection: remove these children if they are still dead for good and had
    /// no activity after `idle_since` (Unix ns). Others are skipped.
    CollectGarbage {
        ids: Vec<Arc<str>>,
        idle_since: i64,
    },
}

#[derive(Debug, Clone)]
pub struct LaunchRun {
    pub slot: Slot,
    pub attempt: u32,
    pub task_id: Arc<str>,
    pub agent_id: String,
}

#[derive(Debug, Clone)]
pub struct TaskUpdate {
    pub task_id: String,
    pub state: TaskState,
    pub agent_id: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
}

#[derive(Debug, Default)]
pub struct DispatchRequest {
    pub job_id: String,
    pub meta: Meta,
    /// Decoded payload bytes (`None` or empty = not provided).
    pub payload: Option<Vec<u8>>,
    /// Inserted after `dispatch-` in the child ID (`-id-prefix-template`).
    pub id_prefix: String,
    /// 0 = inherit the parent's priority.
    pub priority: i64,
    pub idempotency_token: Option<String>,
    /// Accessor ID of the caller's ACL token.
    pub dispatched_by: Option<String>,
    /// Refuse the dispatch (429) when this many are pending already (`-max-pending`).
    pub max_pending: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Registered(RegisterReply),
    Dispatched(DispatchReply),
    Stopped(StopReply),
    /// Launch recorded.
    Launched {
        index: u64,
    },
    /// Update applied (or ignored as stale); the dispatch's status afterwards.
    Updated {
        dispatch_id: Option<Arc<str>>,
        status: Option<DispatchStatus>,
    },
    /// A note recorded on a dispatch (`Command::Note`).
    Noted,
    /// A dispatch failed by the scheduler (`Command::FailDispatch`).
    Failed,
    /// A setting stored.
    Stored,
    /// What an ACL command did.
    Acl(super::acl::AclReply),
    /// The children garbage collection removed.
    Collected {
        removed: Vec<Arc<str>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegisterReply {
    pub job_modify_index: u64,
    pub index: u64,
    pub warnings: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DispatchReply {
    pub dispatched_job_id: String,
    /// `None` for an idempotent repeat (Nomad answers with an empty `EvalID`).
    pub eval_id: Option<uuid::Uuid>,
    pub eval_create_index: u64,
    pub job_create_index: u64,
    pub index: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StopReply {
    pub job_modify_index: u64,
    pub index: u64,
    /// How many pending children were stopped along with a parent.
    pub children_stopped: u64,
}
