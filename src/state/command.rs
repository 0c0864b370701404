//! Commands the single writer applies, and what it answers.

use crate::model::{Job, Meta};

/// A change someone asks for. Each is validated and applied atomically by the writer.
#[derive(Debug)]
pub enum Command {
    /// Register a new job or a new version of an existing one.
    RegisterJob(Box<Job>),
    Dispatch(DispatchRequest),
    /// Stop (and with `purge`, remove) a job. For a parameterized parent this also stops
    /// its pending children, so nothing is orphaned.
    StopJob { id: String, purge: bool },
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Registered(RegisterReply),
    Dispatched(DispatchReply),
    Stopped(StopReply),
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
