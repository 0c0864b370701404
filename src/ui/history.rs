//! Queue depth over the last hour, per job, kept in memory: a sample of every job's pending
//! and running counts every few seconds, read from the counters the state keeps (a sample
//! costs O(jobs), never a look at the dispatches).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::Clock;
use crate::state::{State, StateHandle};

/// How often every job is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How far back the history reaches.
pub const SPAN: Duration = Duration::from_secs(3600);

/// One job's counts at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub at: i64,
    pub pending: u64,
    pub running: u64,
}

/// The samples of the last `SPAN`, by job.
#[derive(Debug, Default)]
pub struct QueueHistory {
    jobs: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl QueueHistory {
    pub fn new() -> Arc<QueueHistory> {
        Arc::new(QueueHistory::default())
    }

    /// Record every job's counts at `now` (Unix seconds); forget what is older than `SPAN`
    /// and jobs that are gone.
    pub fn sample(&self, state: &State, now: i64) {
        let oldest = now - SPAN.as_secs() as i64;
        let mut jobs = self.jobs.lock();
        jobs.retain(|id, _| state.job(id).is_some());
        for entry in state.jobs() {
            let samples = jobs.entry(entry.job.id.clone()).or_default();
            samples.push_back(Sample {
                at: now,
                pending: entry.children.pending,
                running: entry.children.running,
            });
            while samples.front().is_some_and(|s| s.at < oldest) {
                samples.pop_front();
            }
        }
    }

    /// The samples of `job`, oldest first.
    pub fn series(&self, job: &str) -> Vec<Sample> {
        self.jobs
            .lock()
            .get(job)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Sample every `SAMPLE_EVERY` for as long as the runtime lives.
    pub fn spawn(self: &Arc<Self>, state: StateHandle, clock: Clock) {
        let history = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = clock.now_ns().div_euclid(1_000_000_000);
                history.sample(&state.read(), now);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Command;

    #[test]
    fn keeps_an_hour_of_every_job() {
        let mut state = State::default();
        state
            .apply_at(
                Command::RegisterJob(Box::new(crate::model::job::test_job("j"))),
                0,
            )
            .expect("registered");
        let h = QueueHistory::default();
        for t in [0, 5, 10, 3_605] {
            h.sample(&state, t);
        }
        let at: Vec<i64> = h.series("j").iter().map(|s| s.at).collect();
        assert_eq!(
            at,
            [5, 10, 3_605],
            "older than an hour before the last sample is gone"
        );
        assert!(h.series("other").is_empty());
    }
}
