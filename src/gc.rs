//! Garbage collection of dead dispatched children, as Nomad's `job_gc_threshold`: a child
//! that is dead for good (terminal, no task still running) and idle for longer than the
//! threshold is removed from the state and the store, with its runs and payload; then the
//! backend removes its task sandboxes (`Sandboxes::remove`: the local runner deletes them,
//! Mesos agents collect their own). Parents keep counting it in `Children.Dead`.
//!
//! The scan reads the state in chunks of IDs under short read locks; the writer re-checks
//! each candidate before removing it, so a child that came back to life in between stays.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::cluster::{SandboxRef, Sandboxes};
use crate::model::Dispatch;
use crate::state::{Command, Reply, StateHandle};

/// Default `-gc-threshold` (Nomad's `job_gc_threshold`).
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(4 * 3600);
/// Default `-gc-interval` (Nomad's `job_gc_interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// IDs looked at per read lock.
const CHUNK: usize = 4096;

#[derive(Debug, Clone)]
pub struct GcPolicy {
    /// How long a dead child is kept; `None` = never collected on a timer.
    pub threshold: Option<Duration>,
    pub interval: Duration,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            threshold: Some(DEFAULT_THRESHOLD),
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// Collects on the policy's timer, for the life of the server.
pub fn spawn(state: StateHandle, policy: GcPolicy, sandboxes: Arc<dyn Sandboxes>, clock: Clock) {
    let Some(threshold) = policy.threshold else {
        tracing::info!("garbage collection of dead children is off");
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(policy.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            collect(&state, threshold, sandboxes.as_ref(), clock.now_ns()).await;
        }
    });
}

/// Remove every child dead for good and idle for at least `threshold` at `now` (Unix ns);
/// returns how many.
pub async fn collect(
    state: &StateHandle,
    threshold: Duration,
    sandboxes: &dyn Sandboxes,
    now: i64,
) -> u64 {
    let idle_since = now.saturating_sub(crate::clock::duration_ns(threshold));
    let mut cursor: Option<Arc<str>> = None;
    let mut removed = 0;
    loop {
        let (candidates, next) = scan(state, cursor.as_deref(), idle_since);
        if !candidates.is_empty() {
            removed += remove(state, candidates, idle_since, sandboxes).await;
        }
        match next {
            Some(id) => cursor = Some(id),
            None => break,
        }
    }
    if removed > 0 {
        tracing::info!(children = removed, "garbage collected dead children");
        crate::metrics::gc_removed(removed);
    }
    removed
}

/// A child to remove, and the sandboxes of its runs.
struct Candidate {
    id: Arc<str>,
    sandboxes: Vec<SandboxRef>,
}

impl Candidate {
    fn of(d: &Dispatch) -> Candidate {
        Candidate {
            id: d.id.clone(),
            sandboxes: d.runs.iter().map(|r| SandboxRef::of(d, r)).collect(),
        }
    }
}

/// One chunk of dispatches after `cursor`: the candidates, and where to go on (`None`: done).
fn scan(
    state: &StateHandle,
    cursor: Option<&str>,
    idle_since: i64,
) -> (Vec<Candidate>, Option<Arc<str>>) {
    let s = state.read();
    let start = match cursor {
        Some(c) => std::ops::Bound::Excluded(c),
        None => std::ops::Bound::Unbounded,
    };
    let mut seen = 0;
    let mut last = None;
    let mut candidates = Vec::new();
    for d in s.dispatches_from(start).take(CHUNK) {
        seen += 1;
        last = Some(d.id.clone());
        if d.is_collectable() && d.last_activity() <= idle_since {
            candidates.push(Candidate::of(d));
        }
    }
    (candidates, last.filter(|_| seen == CHUNK))
}

async fn remove(
    state: &StateHandle,
    candidates: Vec<Candidate>,
    idle_since: i64,
    sandboxes: &dyn Sandboxes,
) -> u64 {
    let ids = candidates.iter().map(|c| c.id.clone()).collect();
    let removed = match state
        .apply(Command::CollectGarbage { ids, idle_since })
        .await
    {
        Ok(Reply::Collected { removed }) => removed,
        Ok(other) => {
            tracing::warn!(?other, "garbage collection answered with another reply");
            return 0;
        }
        Err(e) => {
            tracing::warn!("garbage collection failed: {e}");
            return 0;
        }
    };
    let removed_ids: std::collections::HashSet<&Arc<str>> = removed.iter().collect();
    let runs: Vec<SandboxRef> = candidates
        .into_iter()
        .filter(|c| removed_ids.contains(&c.id))
        .flat_map(|c| c.sandboxes)
        .collect();
    sandboxes.remove(&runs).await;
    removed.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Area, Listing, Location, SandboxError};
    use crate::state::DispatchRequest;
    use futures_util::future::BoxFuture;

    /// Sandboxes that only remember what they were asked to remove.
    #[derive(Default)]
    struct Recorder(parking_lot::Mutex<Vec<SandboxRef>>);

    impl Sandboxes for Recorder {
        fn locate<'a>(
            &'a self,
            _: &'a SandboxRef,
            _: Area,
        ) -> BoxFuture<'a, Result<Location, SandboxError>> {
            Box::pin(async { Err(SandboxError::NotFound("none".into())) })
        }
        fn browse<'a>(&'a self, _: &'a Location) -> BoxFuture<'a, Result<Listing, SandboxError>> {
            Box::pin(async { Err(SandboxError::NotFound("none".into())) })
        }
        fn read<'a>(
            &'a self,
            _: &'a Location,
            _: u64,
        ) -> BoxFuture<'a, Result<Vec<u8>, SandboxError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn remove<'a>(&'a self, runs: &'a [SandboxRef]) -> BoxFuture<'a, ()> {
            self.0.lock().extend_from_slice(runs);
            Box::pin(async {})
        }
    }

    /// More children than one chunk: every dead one is found and removed, the live ones stay,
    /// and the parent still counts the removed ones as dead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn collects_across_chunks_and_keeps_live_children() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateHandle::open(dir.path(), Clock::system()).unwrap();
        let job = crate::model::job::test_job("j");
        state
            .apply(Command::RegisterJob(Box::new(job)))
            .await
            .unwrap();
        let dispatch = || {
            Command::Dispatch(DispatchRequest {
                job_id: "j".into(),
                ..Default::default()
            })
        };
        // One child ran a task to its end: its sandbox goes with it.
        let Reply::Dispatched(ran) = state.apply(dispatch()).await.unwrap() else {
            panic!("not dispatched");
        };
        let ran: Arc<str> = ran.dispatched_job_id.into();
        let slot = crate::model::Slot {
            group: 0,
            instance: 0,
            task: 0,
        };
        let runs = vec![crate::state::LaunchRun {
            slot,
            attempt: 1,
            task_id: "ran.g.0.t.1".into(),
            agent_id: "a1".into(),
        }];
        let launch = Command::Launch {
            dispatch_id: ran.clone(),
            runs,
        };
        state.apply(launch).await.unwrap();
        let finished = crate::state::TaskUpdate {
            task_id: "ran.g.0.t.1".into(),
            state: crate::cluster::TaskState::TaskFinished,
            agent_id: None,
            message: None,
            exit_code: Some(0),
        };
        state.apply(Command::TaskUpdate(finished)).await.unwrap();
        let mut dead = 1;
        for i in 0..(CHUNK + 100) {
            let Reply::Dispatched(d) = state.apply(dispatch()).await.unwrap() else {
                panic!("not dispatched");
            };
            if i % 3 != 0 {
                let id = d.dispatched_job_id;
                state
                    .apply(Command::StopJob { id, purge: false })
                    .await
                    .unwrap();
                dead += 1;
            }
        }
        let now = Clock::system().now_ns();
        let sandboxes = Recorder::default();
        let hour = Duration::from_secs(3600);
        assert_eq!(collect(&state, hour, &sandboxes, now).await, 0);
        assert!(
            sandboxes.0.lock().is_empty(),
            "nothing removed, nothing deleted"
        );
        assert_eq!(collect(&state, Duration::ZERO, &sandboxes, now).await, dead);
        let removed: Vec<Arc<str>> = sandboxes
            .0
            .lock()
            .iter()
            .map(|r| r.task_id.clone())
            .collect();
        assert_eq!(removed, vec![Arc::<str>::from("ran.g.0.t.1")]);
        let s = state.read();
        assert_eq!(s.dispatch_count(), CHUNK + 101 - dead as usize);
        assert!(s
            .dispatches_from(std::ops::Bound::Unbounded)
            .all(|d| !d.status.is_terminal()));
        let counts = s.job("j").expect("the parent stays").children;
        assert_eq!(counts.dead(), dead);
        assert_eq!(counts.pending as usize, CHUNK + 101 - dead as usize);
    }
}
