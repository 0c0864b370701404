//! Garbage collection of dead dispatched children, as Nomad's `job_gc_threshold`: a child
//! that is dead for good (terminal, no task still running) and idle for longer than the
//! threshold is removed from the state and the store, with its runs, payload and (on the
//! local runner) its task sandboxes. Parents keep counting it in `Children.Dead`.
//!
//! The scan reads the state in chunks of IDs under short read locks; the writer re-checks
//! each candidate before removing it, so a child that came back to life in between stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::cluster::local::{alloc_dir, task_sandbox};
use crate::model::Dispatch;
use crate::render::alloc_key;
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
pub fn spawn(state: StateHandle, policy: GcPolicy, sandbox_root: Option<PathBuf>, clock: Clock) {
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
            collect(&state, threshold, sandbox_root.as_deref(), clock.now_ns()).await;
        }
    });
}

/// Remove every child dead for good and idle for at least `threshold` at `now` (Unix ns);
/// returns how many.
pub async fn collect(
    state: &StateHandle,
    threshold: Duration,
    sandbox_root: Option<&Path>,
    now: i64,
) -> u64 {
    let idle_since = now.saturating_sub(crate::clock::duration_ns(threshold));
    let mut cursor: Option<Arc<str>> = None;
    let mut removed = 0;
    loop {
        let (candidates, next) = scan(state, cursor.as_deref(), idle_since);
        if !candidates.is_empty() {
            removed += remove(state, candidates, idle_since, sandbox_root).await;
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

/// What one candidate leaves on disk (local runner): its task sandboxes and shared alloc dirs.
struct Candidate {
    id: Arc<str>,
    task_ids: Vec<Arc<str>>,
    alloc_keys: Vec<String>,
}

impl Candidate {
    fn of(d: &Dispatch) -> Candidate {
        let mut alloc_keys: Vec<String> = d
            .runs
            .iter()
            .filter_map(|r| {
                let group = d.job.task_groups.get(r.slot.group as usize)?;
                Some(alloc_key(&d.id, &group.name, r.slot.instance))
            })
            .collect();
        alloc_keys.sort();
        alloc_keys.dedup();
        Candidate {
            id: d.id.clone(),
            task_ids: d.runs.iter().map(|r| r.task_id.clone()).collect(),
            alloc_keys,
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
    sandbox_root: Option<&Path>,
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
    if let Some(root) = sandbox_root {
        remove_sandboxes(root, &candidates, &removed).await;
    }
    removed.len() as u64
}

/// The local runner's task sandboxes and alloc dirs of the children that were removed.
async fn remove_sandboxes(root: &Path, candidates: &[Candidate], removed: &[Arc<str>]) {
    let removed: std::collections::HashSet<&Arc<str>> = removed.iter().collect();
    let dirs: Vec<PathBuf> = candidates
        .iter()
        .filter(|c| removed.contains(&c.id))
        .flat_map(|c| {
            let tasks = c.task_ids.iter().map(|t| task_sandbox(root, t));
            let allocs = c.alloc_keys.iter().filter_map(|k| {
                // `<root>/allocs/<key>/alloc`: the key's directory goes.
                alloc_dir(root, k).parent().map(Path::to_path_buf)
            });
            tasks.chain(allocs).collect::<Vec<_>>()
        })
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for dir in dirs {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot remove {}: {e}", dir.display()),
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DispatchRequest;

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
        let mut dead = 0;
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
        assert_eq!(
            collect(&state, Duration::from_secs(3600), None, now).await,
            0
        );
        assert_eq!(collect(&state, Duration::ZERO, None, now).await, dead);
        let s = state.read();
        assert_eq!(s.dispatch_count(), CHUNK + 100 - dead as usize);
        assert!(s
            .dispatches_from(std::ops::Bound::Unbounded)
            .all(|d| !d.status.is_terminal()));
        let counts = s.job("j").expect("the parent stays").children;
        assert_eq!(counts.dead(), dead);
        assert_eq!(counts.pending as usize, CHUNK + 100 - dead as usize);
    }
}
