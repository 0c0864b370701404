//! What a dispatch still has to do: its slots, which are ready, which wait for another task
//! (pipelines), when a failed one may run again (retry policy), and the dispatch's outcome.
//!
//! Pure functions of the job and the dispatch's runs; the writer uses them to derive the
//! dispatch status, the scheduler to pick what to launch.

use super::job::{Job, Task, TaskGroup};
use super::run::{Slot, TaskRun};

/// Nomad's batch defaults, used when a group says nothing.
const DEFAULT_RESTART_ATTEMPTS: u32 = 3;
const DEFAULT_RESTART_DELAY_NS: i64 = 15_000_000_000;
const DEFAULT_RESCHEDULE_ATTEMPTS: u32 = 1;
const DEFAULT_RESCHEDULE_DELAY_NS: i64 = 5_000_000_000;
const DEFAULT_MAX_DELAY_NS: i64 = 3_600_000_000_000;

/// How often and how soon a failed task runs again: first `restarts` tries after
/// `restart_delay`, then `reschedules` more with `reschedule_delay` growing by `function`
/// (capped at `max_delay`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub restarts: u32,
    pub restart_delay_ns: i64,
    pub reschedules: u32,
    pub reschedule_delay_ns: i64,
    pub function: DelayFunction,
    pub max_delay_ns: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DelayFunction {
    Constant,
    Exponential,
    Fibonacci,
}

impl RetryPolicy {
    pub fn of(group: &TaskGroup) -> RetryPolicy {
        let restart = group.restart_policy.as_ref();
        let reschedule = group.reschedule_policy.as_ref();
        let unlimited = reschedule.and_then(|r| r.unlimited).unwrap_or(false);
        RetryPolicy {
            restarts: restart
                .and_then(|r| r.attempts)
                .map_or(DEFAULT_RESTART_ATTEMPTS, |a| a.max(0) as u32),
            restart_delay_ns: restart
                .and_then(|r| r.delay)
                .unwrap_or(DEFAULT_RESTART_DELAY_NS),
            reschedules: if unlimited {
                u32::MAX
            } else {
                reschedule
                    .and_then(|r| r.attempts)
                    .map_or(DEFAULT_RESCHEDULE_ATTEMPTS, |a| a.max(0) as u32)
            },
            reschedule_delay_ns: reschedule
                .and_then(|r| r.delay)
                .unwrap_or(DEFAULT_RESCHEDULE_DELAY_NS),
            function: match reschedule.map(|r| r.delay_function.as_str()) {
                Some("exponential") => DelayFunction::Exponential,
                Some("fibonacci") => DelayFunction::Fibonacci,
                _ => DelayFunction::Constant,
            },
            max_delay_ns: reschedule
                .and_then(|r| r.max_delay)
                .unwrap_or(DEFAULT_MAX_DELAY_NS),
        }
    }

    /// The wait before launching attempt `attempt` (2 = first retry); `None` when no attempt
    /// is left.
    pub fn delay_before(&self, attempt: u32) -> Option<i64> {
        let retry = attempt.checked_sub(1)?;
        if retry == 0 {
            return Some(0);
        }
        if retry <= self.restarts {
            return Some(self.restart_delay_ns);
        }
        let n = retry - self.restarts;
        if n > self.reschedules {
            return None;
        }
        let base = self.reschedule_delay_ns.max(0);
        let delay = match self.function {
            DelayFunction::Constant => base,
            DelayFunction::Exponential => base.saturating_mul(1i64 << (n - 1).min(32)),
            DelayFunction::Fibonacci => {
                let (mut a, mut b) = (1i64, 1i64);
                for _ in 1..n.min(64) {
                    (a, b) = (b, a.saturating_add(b));
                }
                base.saturating_mul(a)
            }
        };
        Some(delay.min(self.max_delay_ns.max(base)))
    }
}

/// Every slot of a job: each group × instance × task.
pub fn slots(job: &Job) -> Vec<Slot> {
    let mut out = Vec::new();
    for (g, group) in job.task_groups.iter().enumerate() {
        let count = group.count.unwrap_or(1).max(0) as u32;
        for instance in 0..count {
            for t in 0..group.tasks.len() {
                out.push(Slot {
                    group: g as u16,
                    instance,
                    task: t as u16,
                });
            }
        }
    }
    out
}

fn hook(task: &Task) -> &str {
    task.lifecycle
        .as_ref()
        .filter(|l| !l.sidecar)
        .map_or("", |l| l.hook.as_str())
}

/// Tasks of the same group instance that must FINISH before `task` starts: its
/// `depends_on`, else Nomad's lifecycle order (prestart → main → poststop).
pub fn prerequisites(group: &TaskGroup, task: usize) -> Vec<usize> {
    let this = &group.tasks[task];
    if !this.depends_on.is_empty() {
        return group
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| this.depends_on.contains(&t.name))
            .map(|(i, _)| i)
            .collect();
    }
    let phase = |t: &Task| match hook(t) {
        "prestart" => 0,
        "poststop" => 2,
        _ => 1,
    };
    let mine = phase(this);
    group
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, t)| *i != task && phase(t) < mine)
        .map(|(i, _)| i)
        .collect()
}

/// Where one slot stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotState {
    /// Another task of its group must finish first.
    Waiting,
    /// May launch attempt `attempt` from `not_before` (unix ns) on.
    Ready {
        attempt: u32,
        not_before: i64,
    },
    /// An attempt is launched and not terminal.
    Active,
    Finished,
    /// Failed with no attempt left (or a failure retrying cannot fix).
    Failed,
}

/// Relaunches of a slot after infrastructure losses (DROPPED, LOST, GONE, UNKNOWN) before
/// it fails: these do not use the job's `restart`/`reschedule` budget.
pub const MAX_INFRASTRUCTURE_RETRIES: u32 = 10;
/// Wait before relaunching after the n-th infrastructure loss: n × this.
pub const INFRASTRUCTURE_RETRY_DELAY_NS: i64 = 1_000_000_000;

/// The latest run of a slot, if any.
pub fn latest_run(runs: &[TaskRun], slot: Slot) -> Option<&TaskRun> {
    runs.iter().rev().find(|r| r.slot == slot)
}

pub fn slot_state(job: &Job, runs: &[TaskRun], slot: Slot) -> SlotState {
    let Some(group) = job.task_groups.get(slot.group as usize) else {
        return SlotState::Failed;
    };
    match latest_run(runs, slot) {
        Some(run) if run.is_active() => return SlotState::Active,
        Some(run) if run.finished() => return SlotState::Finished,
        Some(run) => {
            if run.is_final_failure() {
                return SlotState::Failed;
            }
            let next = run.attempt + 1;
            let losses = runs
                .iter()
                .filter(|r| r.slot == slot && r.is_infrastructure_loss())
                .count() as u32;
            if run.is_infrastructure_loss() {
                return if losses <= MAX_INFRASTRUCTURE_RETRIES {
                    SlotState::Ready {
                        attempt: next,
                        not_before: run
                            .updated_at
                            .saturating_add(INFRASTRUCTURE_RETRY_DELAY_NS * losses as i64),
                    }
                } else {
                    SlotState::Failed
                };
            }
            // Attempts lost to the infrastructure do not count against the policy.
            return match RetryPolicy::of(group).delay_before(next - losses) {
                Some(delay) => SlotState::Ready {
                    attempt: next,
                    not_before: run.updated_at.saturating_add(delay),
                },
                None => SlotState::Failed,
            };
        }
        None => {}
    }
    let waiting = prerequisites(group, slot.task as usize)
        .into_iter()
        .any(|t| {
            let pre = Slot {
                task: t as u16,
                ..slot
            };
            !latest_run(runs, pre).is_some_and(TaskRun::finished)
        });
    if waiting {
        SlotState::Waiting
    } else {
        SlotState::Ready {
            attempt: 1,
            not_before: 0,
        }
    }
}

/// What the runs say about the dispatch as a whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing launched yet.
    Pending,
    Running,
    Complete,
    /// A slot failed for good; the message says which and why.
    Failed(String),
}

pub fn outcome(job: &Job, runs: &[TaskRun]) -> Outcome {
    if runs.is_empty() {
        return Outcome::Pending;
    }
    let all = slots(job);
    let mut all_finished = true;
    for slot in &all {
        match slot_state(job, runs, *slot) {
            SlotState::Finished => {}
            SlotState::Failed => {
                let task = job
                    .task_groups
                    .get(slot.group as usize)
                    .and_then(|g| g.tasks.get(slot.task as usize))
                    .map_or("?", |t| t.name.as_str());
                let why = latest_run(runs, *slot)
                    .map(|r| {
                        format!(
                            "{} after {} attempt(s){}",
                            r.state_name(),
                            r.attempt,
                            r.message
                                .as_deref()
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                return Outcome::Failed(format!("task {task:?} failed: {why}"));
            }
            _ => all_finished = false,
        }
    }
    if all_finished {
        Outcome::Complete
    } else {
        Outcome::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(restarts: u32, reschedules: u32, function: DelayFunction) -> RetryPolicy {
        RetryPolicy {
            restarts,
            restart_delay_ns: 10,
            reschedules,
            reschedule_delay_ns: 100,
            function,
            max_delay_ns: 1000,
        }
    }

    #[test]
    fn retries_restart_first_then_reschedule_with_backoff() {
        let p = policy(2, 4, DelayFunction::Exponential);
        assert_eq!(p.delay_before(1), Some(0));
        assert_eq!(p.delay_before(2), Some(10));
        assert_eq!(p.delay_before(3), Some(10));
        assert_eq!(p.delay_before(4), Some(100));
        assert_eq!(p.delay_before(5), Some(200));
        assert_eq!(p.delay_before(6), Some(400));
        assert_eq!(p.delay_before(7), Some(800));
        assert_eq!(p.delay_before(8), None);
        let capped = policy(0, 10, DelayFunction::Exponential);
        assert_eq!(capped.delay_before(6), Some(1000));
        let fib = policy(0, 5, DelayFunction::Fibonacci);
        let delays: Vec<_> = (2..=6).map(|a| fib.delay_before(a).unwrap()).collect();
        assert_eq!(delays, [100, 100, 200, 300, 500]);
    }
}
