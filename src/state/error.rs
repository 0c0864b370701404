//! What can go wrong when a command is applied. Messages are Nomad's literal texts where
//! Nomad has one (clients match on them); `api::error` maps each variant to an HTTP status.

use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("missing parameterized job ID")]
    MissingJobId,
    #[error("parameterized job not found")]
    ParentNotFound,
    #[error("job not found")]
    JobNotFound,
    #[error("Specified job {0:?} is not a parameterized job")]
    NotParameterized(String),
    #[error("Specified job {0:?} is stopped")]
    Stopped(String),
    #[error("Payload is not provided but required by parameterized job")]
    PayloadRequired,
    #[error("Payload provided but forbidden by parameterized job")]
    PayloadForbidden,
    #[error("Payload exceeds maximum size; {0} > {max}", max = crate::model::job::MAX_PAYLOAD_BYTES)]
    PayloadTooLarge(usize),
    #[error("Dispatch request included unpermitted metadata keys: [{}]", .0.join(" "))]
    UnpermittedMeta(Vec<String>),
    #[error("Dispatch did not provide required meta keys: [{}]", .0.join(" "))]
    MissingMeta(Vec<String>),
    #[error("dispatch job priority must be between [1, {max}]", max = crate::model::job::MAX_PRIORITY)]
    Priority,
    #[error("cannot update parameterized job to being non-parameterized")]
    CannotUnparameterize,
    #[error("cannot update non-parameterized job to being parameterized")]
    CannotParameterize,
    #[error("dispatched job {0:?} cannot be edited; update the parent and dispatch again")]
    ChildIsReadOnly(String),
    #[error("{0}")]
    Invalid(#[from] SpecError),
    #[error("{0}")]
    Render(#[from] crate::render::RenderError),
    #[error("dispatch {0:?} cannot launch attempt {1} of this task: {2}")]
    NotLaunchable(String, u32, String),
    #[error("the state writer has stopped; the server is shutting down")]
    WriterGone,
    #[error("this server does not lead (it is a standby, or another server was just elected): nothing was changed; retry")]
    NotLeader,
    #[error("not acknowledged: {0}; retry (with an idempotency token a retry cannot make a second child)")]
    StoreUnavailable(String),
    #[error("too many dispatches pending: the backlog is full ({0}, -max-pending); retry later")]
    BacklogFull(u64),
    #[error("ACL bootstrap already done (reset index: {0})")]
    AclBootstrapDone(u64),
    /// A refused ACL write, in Nomad's words.
    #[error("{0}")]
    Acl(String),
}

impl StateError {
    /// A short, stable name of the error (the `reason` label of dispatch metrics).
    pub fn slug(&self) -> &'static str {
        match self {
            StateError::MissingJobId => "missing_job_id",
            StateError::ParentNotFound => "parent_not_found",
            StateError::JobNotFound => "job_not_found",
            StateError::NotParameterized(_) => "not_parameterized",
            StateError::Stopped(_) => "job_stopped",
            StateError::PayloadRequired => "payload_required",
            StateError::PayloadForbidden => "payload_forbidden",
            StateError::PayloadTooLarge(_) => "payload_too_large",
            StateError::UnpermittedMeta(_) => "unpermitted_meta",
            StateError::MissingMeta(_) => "missing_meta",
            StateError::Priority => "bad_priority",
            StateError::CannotUnparameterize | StateError::CannotParameterize => "bad_job_change",
            StateError::ChildIsReadOnly(_) => "child_read_only",
            StateError::Invalid(_) => "invalid",
            StateError::Render(_) => "render_error",
            StateError::NotLaunchable(..) => "not_launchable",
            StateError::WriterGone => "shutting_down",
            StateError::NotLeader => "not_leader",
            StateError::StoreUnavailable(_) => "store_unavailable",
            StateError::BacklogFull(_) => "backlog_full",
            StateError::AclBootstrapDone(_) | StateError::Acl(_) => "acl",
        }
    }
}
