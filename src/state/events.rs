//! Events: what each committed command changed, as Nomad's event stream names it, and the
//! feed that carries them to whoever follows (the `/v1/event/stream` endpoint, the UI).
//!
//! The writer is the one publish point: while it holds the write lock it turns each
//! command's store changes into an `EventBatch` (the objects as that command left them,
//! shared snapshots), and only after the batch's commit is durable does it `publish` them.
//! Nothing leaves the process before its commit, as for replies.
//!
//! The feed keeps the last `capacity` batches (one per index) in a ring, so a follower can
//! resume from an index. A follower reads at its own pace; one that falls so far behind that
//! its next batch has left the ring is dropped (`Lagged`) and must resubscribe: the writer
//! never waits for anyone.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::command::Command;
use super::State;
use crate::model::{Dispatch, Job};
use crate::store::Change;

/// Index batches kept for resuming when the configuration says nothing (Nomad keeps 100
/// Raft indexes; here every dispatch is an index of its own, so more are kept).
pub const DEFAULT_BUFFER: usize = 32 * 1024;

/// A command touching more children than this (stopping or purging a parent with more)
/// publishes its parents' events, not one per child.
pub const BULK_CHILDREN: usize = 10_000;

/// Nomad's topics that Dispatch has objects for. `Deployment` and `Node` are accepted by the
/// stream but Dispatch has none of them, so they carry no events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Job,
    Allocation,
    Evaluation,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Job => "Job",
            Topic::Allocation => "Allocation",
            Topic::Evaluation => "Evaluation",
        }
    }
}

/// What an event is about, as the command left it.
#[derive(Debug, Clone)]
pub enum EventObject {
    /// A registered (parent) job, the version current after the command.
    Job(Arc<Job>),
    /// A job purged with its children.
    JobDeleted(Arc<str>),
    /// A dispatched child.
    Child(Arc<Dispatch>),
    /// A child removed (purge, garbage collection): its ID and parent.
    ChildDeleted { id: Arc<str>, parent: Arc<str> },
    /// One group instance (Nomad's allocation) of a child.
    Allocation {
        dispatch: Arc<Dispatch>,
        group: u16,
        instance: u32,
    },
    /// The evaluation created with a child.
    Evaluation(Arc<Dispatch>),
}

/// One event (Nomad's `Event`): `key` and `filter_keys` are what `?topic=Topic:key` matches.
#[derive(Debug, Clone)]
pub struct Event {
    pub topic: Topic,
    /// Nomad's event type (`JobRegistered`, `AllocationUpdated`, `PlanResult`, ...).
    pub kind: &'static str,
    pub key: Arc<str>,
    pub filter_keys: Vec<Arc<str>>,
    pub index: u64,
    pub object: EventObject,
}

/// Everything one command changed, at its index.
#[derive(Debug)]
pub struct EventBatch {
    pub index: u64,
    pub events: Vec<Event>,
}

/// Nomad's event type for what a command does (every change it makes gets that type, as
/// every change of one Raft message does in Nomad). `None`: it publishes nothing.
pub fn kind_of(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::RegisterJob(_) | Command::Dispatch(_) => "JobRegistered",
        Command::StopJob { .. } => "JobDeregistered",
        Command::Launch { .. } => "PlanResult",
        Command::TaskUpdate(_) | Command::FailDispatch { .. } => "AllocationUpdated",
        Command::Note { .. } => "EvaluationUpdated",
        Command::CollectGarbage { .. } => "JobBatchDeregistered",
        // ACL tokens and policies are not published (Nomad's ACL topics are not served).
        Command::SetSetting { .. } | Command::Acl(_) => return None,
    })
}

/// The event type for a batch another server committed, as a standby replays it from the
/// change log (which keeps changes, not commands): the type of the command that most likely
/// made them, the most telling change first. `None`: nothing it would publish.
pub fn kind_of_changes(changes: &[Change]) -> Option<&'static str> {
    let has = |f: fn(&Change) -> bool| changes.iter().any(f);
    Some(if has(|c| matches!(c, Change::DeleteJob { .. })) {
        "JobDeregistered"
    } else if has(|c| matches!(c, Change::PutJobVersion(_) | Change::PutDispatch(_))) {
        "JobRegistered"
    } else if has(|c| matches!(c, Change::DeleteDispatch { .. })) {
        "JobBatchDeregistered"
    } else if has(|c| matches!(c, Change::PutRun(_) | Change::SetDispatchStatus { .. })) {
        "AllocationUpdated"
    } else {
        return None;
    })
}

/// The events of one command: `changes` are the store changes it made, `state` the state it
/// left (the writer still holds the write lock). `None` when it changed nothing visible.
pub fn record(state: &State, kind: &'static str, changes: &[Change]) -> Option<EventBatch> {
    let index = state.index;
    let mut parents: Vec<Event> = Vec::new();
    let mut children: Vec<(Arc<str>, bool)> = Vec::new();
    let mut seen_children: HashSet<&str> = HashSet::new();
    let mut allocs: Vec<(&str, u16, u32)> = Vec::new();
    let mut deleted: Vec<(&str, &str)> = Vec::new();
    for change in changes {
        match change {
            Change::PutJobVersion(row) => {
                if let Some(entry) = state.job(&row.id) {
                    parents.push(job_event(kind, index, entry.job.clone()));
                }
            }
            Change::DeleteJob { id } => {
                let id: Arc<str> = id.as_str().into();
                parents.push(Event {
                    topic: Topic::Job,
                    kind,
                    key: id.clone(),
                    filter_keys: Vec::new(),
                    index,
                    object: EventObject::JobDeleted(id),
                });
            }
            Change::PutDispatch(row) => {
                if seen_children.insert(&row.id) {
                    children.push((row.id.as_str().into(), true));
                }
            }
            Change::SetDispatchStatus { id, .. } => {
                if seen_children.insert(id) {
                    children.push((id.as_str().into(), false));
                }
            }
            Change::PutRun(row) => {
                let alloc = (row.dispatch_id.as_str(), row.group, row.instance);
                if !allocs.contains(&alloc) {
                    allocs.push(alloc);
                }
            }
            Change::DeleteDispatch { id, job_id } => deleted.push((id, job_id)),
            Change::PutSetting { .. }
            | Change::SetRemovedChildren { .. }
            | Change::SetIndex(_)
            | Change::PutAclPolicy { .. }
            | Change::DeleteAclPolicy { .. }
            | Change::PutAclToken { .. }
            | Change::DeleteAclToken { .. } => {}
        }
    }
    if children.len() + deleted.len() > BULK_CHILDREN {
        return Some(bulk(state, kind, index, parents, &children, &deleted));
    }
    let mut events = parents;
    let mut snapshots: Vec<Arc<Dispatch>> = Vec::new();
    for (id, new) in &children {
        let Some(d) = state.dispatch(id) else {
            continue;
        };
        let d = Arc::new(d.clone());
        events.push(child_event(kind, index, d.clone()));
        if *new || kind == "EvaluationUpdated" {
            events.push(eval_event(kind, index, d.clone()));
        }
        snapshots.push(d);
    }
    for (id, group, instance) in allocs {
        let d = match snapshots.iter().find(|d| &*d.id == id) {
            Some(d) => d.clone(),
            None => match state.dispatch(id) {
                Some(d) => {
                    let d = Arc::new(d.clone());
                    snapshots.push(d.clone());
                    d
                }
                None => continue,
            },
        };
        events.push(alloc_event(kind, index, d, group, instance));
    }
    for (id, parent) in deleted {
        events.push(Event {
            topic: Topic::Job,
            kind,
            key: id.into(),
            filter_keys: vec![parent.into()],
            index,
            object: EventObject::ChildDeleted {
                id: id.into(),
                parent: parent.into(),
            },
        });
    }
    (!events.is_empty()).then_some(EventBatch { index, events })
}

/// A command that touched very many children: the events of the parents it changed, and of
/// every parent whose children it changed.
fn bulk(
    state: &State,
    kind: &'static str,
    index: u64,
    mut events: Vec<Event>,
    children: &[(Arc<str>, bool)],
    deleted: &[(&str, &str)],
) -> EventBatch {
    let mut parents: Vec<Arc<str>> = events.iter().map(|e| e.key.clone()).collect();
    let mut more = Vec::new();
    let touched = children
        .iter()
        .filter_map(|(id, _)| state.dispatch(id).map(|d| d.parent()))
        .chain(deleted.iter().map(|(_, p)| *p));
    for parent in touched {
        if parents.iter().any(|p| **p == *parent) {
            continue;
        }
        parents.push(parent.into());
        if let Some(entry) = state.job(parent) {
            more.push(job_event(kind, index, entry.job.clone()));
        }
    }
    events.extend(more);
    EventBatch { index, events }
}

fn job_event(kind: &'static str, index: u64, job: Arc<Job>) -> Event {
    Event {
        topic: Topic::Job,
        kind,
        key: job.id.as_str().into(),
        filter_keys: Vec::new(),
        index,
        object: EventObject::Job(job),
    }
}

/// A child's `Job` event; its parent is a filter key (a Dispatch extension: `Job:<parent>`
/// follows the parent and every child).
fn child_event(kind: &'static str, index: u64, d: Arc<Dispatch>) -> Event {
    Event {
        topic: Topic::Job,
        kind,
        key: d.id.clone(),
        filter_keys: vec![d.parent().into()],
        index,
        object: EventObject::Child(d),
    }
}

fn eval_event(kind: &'static str, index: u64, d: Arc<Dispatch>) -> Event {
    Event {
        topic: Topic::Evaluation,
        kind,
        key: d.eval_id.to_string().into(),
        filter_keys: vec![d.id.clone(), d.parent().into()],
        index,
        object: EventObject::Evaluation(d),
    }
}

fn alloc_event(
    kind: &'static str,
    index: u64,
    d: Arc<Dispatch>,
    group: u16,
    instance: u32,
) -> Event {
    let group_name = d
        .job
        .task_groups
        .get(group as usize)
        .map_or("", |g| g.name.as_str());
    let key = crate::render::alloc_id(&crate::render::alloc_key(&d.id, group_name, instance));
    Event {
        topic: Topic::Allocation,
        kind,
        key: key.into(),
        filter_keys: vec![d.id.clone(), d.parent().into()],
        index,
        object: EventObject::Allocation {
            dispatch: d,
            group,
            instance,
        },
    }
}

/// The ring of recent batches and the signal that a new one landed.
pub struct EventFeed {
    ring: Mutex<Ring>,
    latest: watch::Sender<u64>,
}

struct Ring {
    batches: VecDeque<Arc<EventBatch>>,
    capacity: usize,
    /// The highest index that has left the ring (0: none yet).
    evicted_through: u64,
}

/// A follower's place in the feed.
pub struct Subscription {
    feed: Arc<EventFeed>,
    /// The next index this follower wants.
    next: u64,
    latest: watch::Receiver<u64>,
}

/// The follower fell behind further than the ring reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event dropped from buffer")]
pub struct Lagged;

impl EventFeed {
    /// A feed keeping the last `capacity` batches (at least 1).
    pub fn new(capacity: usize) -> Arc<EventFeed> {
        let (latest, _) = watch::channel(0);
        Arc::new(EventFeed {
            ring: Mutex::new(Ring {
                batches: VecDeque::new(),
                capacity: capacity.max(1),
                evicted_through: 0,
            }),
            latest,
        })
    }

    /// Hand committed batches to the followers (the writer, after the commit).
    pub fn publish(&self, batches: impl IntoIterator<Item = EventBatch>) {
        let mut last = None;
        {
            let mut ring = self.ring.lock();
            for batch in batches {
                last = Some(batch.index);
                ring.batches.push_back(Arc::new(batch));
                while ring.batches.len() > ring.capacity {
                    if let Some(old) = ring.batches.pop_front() {
                        ring.evicted_through = old.index;
                    }
                }
            }
        }
        if let Some(index) = last {
            self.latest.send_replace(index);
        }
    }

    /// Follow from `index` on (inclusive): batches still in the ring are replayed first; an
    /// index older than the ring starts at its oldest batch, as in Nomad.
    pub fn subscribe(self: &Arc<Self>, index: u64) -> Subscription {
        let ring = self.ring.lock();
        Subscription {
            feed: self.clone(),
            next: index.max(ring.evicted_through + 1),
            latest: self.latest.subscribe(),
        }
    }

    /// The index of the newest batch published (0: none).
    pub fn latest_index(&self) -> u64 {
        *self.latest.borrow()
    }
}

impl Subscription {
    /// The next batches, waiting until there is at least one. `Err(Lagged)` once the
    /// follower's next batch has left the ring.
    pub async fn next(&mut self) -> Result<Vec<Arc<EventBatch>>, Lagged> {
        loop {
            // Mark what is seen now, so a publish after the look below wakes the wait.
            self.latest.borrow_and_update();
            {
                let ring = self.feed.ring.lock();
                if ring.evicted_through >= self.next {
                    return Err(Lagged);
                }
                let start = ring.batches.partition_point(|b| b.index < self.next);
                if start < ring.batches.len() {
                    let out: Vec<Arc<EventBatch>> = ring.batches.range(start..).cloned().collect();
                    if let Some(last) = out.last() {
                        self.next = last.index + 1;
                    }
                    return Ok(out);
                }
            }
            if self.latest.changed().await.is_err() {
                // The feed is gone with the writer: nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(index: u64) -> EventBatch {
        let id: Arc<str> = format!("j{index}").into();
        EventBatch {
            index,
            events: vec![Event {
                topic: Topic::Job,
                kind: "JobRegistered",
                key: id.clone(),
                filter_keys: Vec::new(),
                index,
                object: EventObject::JobDeleted(id),
            }],
        }
    }

    fn indexes(batches: &[Arc<EventBatch>]) -> Vec<u64> {
        batches.iter().map(|b| b.index).collect()
    }

    /// Resume replays from the index asked for; an index older than the ring starts at its
    /// oldest batch; a follower whose next batch is evicted is dropped.
    #[tokio::test]
    async fn resume_and_lag() {
        let feed = EventFeed::new(3);
        feed.publish((1..=4).map(batch));
        let mut from_three = feed.subscribe(3);
        assert_eq!(indexes(&from_three.next().await.unwrap()), [3, 4]);
        let mut from_zero = feed.subscribe(0);
        assert_eq!(indexes(&from_zero.next().await.unwrap()), [2, 3, 4]);
        let mut slow = feed.subscribe(5);
        feed.publish([batch(5)]);
        assert_eq!(indexes(&from_three.next().await.unwrap()), [5]);
        feed.publish((6..=8).map(batch));
        assert_eq!(indexes(&from_three.next().await.unwrap()), [6, 7, 8]);
        assert!(
            matches!(slow.next().await, Err(Lagged)),
            "batch 5 left the ring"
        );
        let mut waiting = feed.subscribe(9);
        let wait = tokio::spawn(async move { indexes(&waiting.next().await.unwrap()) });
        feed.publish([batch(9)]);
        assert_eq!(wait.await.unwrap(), [9]);
    }
}
