//! Task runs: one attempt of one task of one dispatched child, as launched on the cluster.
//!
//! A dispatch is a set of *slots* (group, instance, task). Each slot is launched as a run
//! with a Mesos task ID derived from the slot and the attempt number; a failed run may be
//! followed by another attempt (a new task ID, never a reused one).

use std::sync::Arc;

use crate::cluster::TaskState;

/// In a run's message: its launch lacked the persistent volume its group needs, because
/// creating the volume failed (operation feedback). Not the task's doing: retried without
/// using the job's budget.
pub const VOLUME_NOT_CREATED: &str = "its persistent volume could not be created";

/// Where one task of a dispatch sits: group index, instance (0..count), task index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub group: u16,
    pub instance: u32,
    pub task: u16,
}

/// One attempt of one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    pub task_id: Arc<str>,
    pub slot: Slot,
    /// 1 for the first launch.
    pub attempt: u32,
    /// `None` between the durable launch record and the first status update (Mesos STAGING).
    pub state: Option<TaskState>,
    pub agent_id: Box<str>,
    pub exit_code: Option<i32>,
    /// The last status message (reason, exit status, ...).
    pub message: Option<Box<str>>,
    /// Unix nanoseconds.
    pub launched_at: i64,
    pub updated_at: i64,
}

impl TaskRun {
    /// Still holding resources (or may still be running somewhere).
    ///
    /// TASK_UNREACHABLE stays active (the agent may come back with the task still running;
    /// reconciliation turns it into GONE/UNKNOWN if it does not). TASK_UNKNOWN is not
    /// terminal for Mesos but means the master knows nothing of the task: it is over for us.
    pub fn is_active(&self) -> bool {
        match self.state {
            None => true,
            Some(TaskState::TaskUnknown) => false,
            Some(s) => !s.is_terminal(),
        }
    }

    /// Lost to the infrastructure, not to the task's own doing: the launch never reached an
    /// agent (DROPPED), the agent or its container went away (LOST, GONE, GONE_BY_OPERATOR),
    /// Mesos forgot the task (UNKNOWN), or an operator drained its agent (KILLED with
    /// REASON_AGENT_DRAINING: the agent kills every task; GONE_BY_OPERATOR when the agent is
    /// also removed). Retried without using the job's retry budget.
    pub fn is_infrastructure_loss(&self) -> bool {
        matches!(
            self.state,
            Some(
                TaskState::TaskDropped
                    | TaskState::TaskLost
                    | TaskState::TaskGone
                    | TaskState::TaskGoneByOperator
                    | TaskState::TaskUnknown
            )
        ) || self.killed_by_drain()
            || self.lacked_its_volume()
    }

    /// Refused (TASK_ERROR) because the persistent volume it needed could not be created.
    fn lacked_its_volume(&self) -> bool {
        self.state == Some(TaskState::TaskError)
            && self
                .message
                .as_deref()
                .is_some_and(|m| m.contains(VOLUME_NOT_CREATED))
    }

    /// Killed because an operator drained the agent, not by us.
    fn killed_by_drain(&self) -> bool {
        self.state == Some(TaskState::TaskKilled) && self.has_reason("REASON_AGENT_DRAINING")
    }

    /// The run's last update carried this `TaskStatus.Reason` (kept in the message).
    fn has_reason(&self, reason: &str) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.contains(&format!("({reason})")) || m.ends_with(reason))
    }

    pub fn finished(&self) -> bool {
        self.state == Some(TaskState::TaskFinished)
    }

    /// The state as a user reads it: `launching` until the cluster reports.
    pub fn state_name(&self) -> &'static str {
        self.state.map_or("TASK_STAGING", TaskState::as_str)
    }

    /// A failure that retrying the same spec cannot fix, or a deliberate stop.
    pub fn is_final_failure(&self) -> bool {
        if self.killed_by_drain() || self.lacked_its_volume() {
            return false;
        }
        matches!(
            self.state,
            Some(TaskState::TaskError) | Some(TaskState::TaskKilled)
        ) || self.has_reason("REASON_MAX_COMPLETION_TIME_REACHED")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: TaskState, message: Option<&str>) -> TaskRun {
        TaskRun {
            task_id: "t".into(),
            slot: Slot {
                group: 0,
                instance: 0,
                task: 0,
            },
            attempt: 1,
            state: Some(state),
            agent_id: "a".into(),
            exit_code: None,
            message: message.map(Into::into),
            launched_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn how_an_attempt_ended_decides_its_retry() {
        // (state, message, infrastructure loss, final failure)
        let cases = [
            (
                TaskState::TaskFailed,
                Some("Command exited with status 1"),
                false,
                false,
            ),
            (
                TaskState::TaskKilled,
                Some("Command terminated with signal Terminated"),
                false,
                true,
            ),
            (
                TaskState::TaskKilled,
                Some("Agent is draining (REASON_AGENT_DRAINING)"),
                true,
                false,
            ),
            (
                TaskState::TaskKilling,
                Some("Agent is draining (REASON_AGENT_DRAINING)"),
                false,
                false,
            ),
            (
                TaskState::TaskGoneByOperator,
                Some("Agent is draining (REASON_AGENT_DRAINING)"),
                true,
                false,
            ),
            (TaskState::TaskDropped, None, true, false),
            (TaskState::TaskError, Some("invalid"), false, true),
            (
                TaskState::TaskFailed,
                Some("Task timed out (REASON_MAX_COMPLETION_TIME_REACHED)"),
                false,
                true,
            ),
        ];
        for (state, message, infra, fatal) in cases {
            let r = run(state, message);
            assert_eq!(r.is_infrastructure_loss(), infra, "{state:?} {message:?}");
            assert_eq!(r.is_final_failure(), fatal, "{state:?} {message:?}");
        }
    }
}
