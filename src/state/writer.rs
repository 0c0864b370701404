//! The single writer: the one thread that changes `State`, in one of two modes.
//!
//! * **Leading** (always, on a store only this process writes): drain commands in batches,
//!   apply them, commit the batch once (group commit, with the fencing epoch this server was
//!   elected with), answer everyone, publish the index.
//! * **Following** (a standby on a shared store): replay the batches the leader commits
//!   (`replay.rs`) and publish their index; commands are answered `NotLeader` (the API
//!   forwards writes to the leader before they get here).
//!
//! `Input::Lead` (from the leadership loop, after it won an election) catches up with the
//! change log, then leads; `Input::Follow` steps down.
//!
//! When a commit fails:
//! * the store is unavailable (PostgreSQL down or restarting): the batch's callers get 503,
//!   the batch (already applied in memory) is kept and committed again, as is, once the store
//!   answers (every write is idempotent); meanwhile every command is answered 503 unapplied;
//! * fenced (another server was elected since): callers get 503, the writer tells the
//!   leadership loop, reloads the state from the store (memory is ahead of it) and follows;
//! * anything else (a full disk, a corrupt file): the process exits (70) and a restart
//!   reloads what is durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot, watch};

use super::apply::{apply, Env};
use super::events::{self, EventBatch, EventFeed};
use super::{load, replay, Command, Reply, State, StateError};
use crate::clock::Clock;
use crate::store::{Batch, Change, Store, StoreError};

/// Commands waiting for the writer before senders have to wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 16 * 1024;
/// Most commands applied and committed together.
const MAX_BATCH: usize = 4096;
/// How long a follower waits for the leader's next batch before it looks at its inputs.
const FOLLOW_WAIT: Duration = Duration::from_millis(50);
/// Longest pause between two attempts to reach an unavailable store.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the writer is sent. Commands are the hot path and go unboxed (the rare `Lead` and
/// `Follow` are the small variants).
#[allow(clippy::large_enum_variant)]
pub enum Input {
    Command(Command, oneshot::Sender<Result<Reply, StateError>>),
    /// This server was elected with `epoch`: catch up, then lead. Answers the index it
    /// leads from.
    Lead {
        epoch: u64,
        ready: oneshot::Sender<Result<u64, String>>,
    },
    /// Stop leading: follow the change log.
    Follow {
        done: oneshot::Sender<()>,
    },
}

enum Mode {
    Leading { epoch: u64 },
    Following,
}

/// A batch applied in memory whose commit the store did not confirm.
struct Pending {
    changes: Vec<Change>,
    index: u64,
    /// Its events, published once it is committed.
    events: Vec<EventBatch>,
}

pub struct Writer {
    store: Box<dyn Store>,
    shared: Arc<RwLock<State>>,
    inputs: mpsc::Receiver<Input>,
    committed: watch::Sender<u64>,
    feed: Arc<EventFeed>,
    clock: Clock,
    mode: Mode,
    /// The index of the last batch the store holds (as far as this server knows).
    durable: u64,
    /// Memory is ahead of the store (a fenced batch): reload before following.
    stale: bool,
    pending: Option<Pending>,
    /// Told when a commit was fenced (the leadership loop steps down at once).
    fenced: Option<std::sync::mpsc::Sender<()>>,
    /// The last store error logged (each cause once, until it changes).
    logged: Option<String>,
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        store: Box<dyn Store>,
        shared: Arc<RwLock<State>>,
        inputs: mpsc::Receiver<Input>,
        committed: watch::Sender<u64>,
        feed: Arc<EventFeed>,
        clock: Clock,
        leading: bool,
        fenced: Option<std::sync::mpsc::Sender<()>>,
    ) -> std::io::Result<()> {
        let durable = *committed.borrow();
        let writer = Writer {
            store,
            shared,
            inputs,
            committed,
            feed,
            clock,
            mode: if leading {
                Mode::Leading { epoch: 0 }
            } else {
                Mode::Following
            },
            durable,
            stale: false,
            pending: None,
            fenced,
            logged: None,
        };
        std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || writer.run())?;
        Ok(())
    }

    fn run(mut self) {
        loop {
            let go_on = match self.mode {
                Mode::Leading { epoch } => self.lead(epoch),
                Mode::Following => self.follow(),
            };
            if !go_on {
                return;
            }
        }
    }

    /// One batch as the leader. False once every sender is gone.
    fn lead(&mut self, epoch: u64) -> bool {
        if self.pending.is_some() {
            return self.retry_pending(epoch);
        }
        let Some(first) = self.inputs.blocking_recv() else {
            return false;
        };
        let mut batch = Vec::with_capacity(64);
        let mut control = None;
        match first {
            Input::Command(c, reply) => batch.push((c, reply)),
            other => control = Some(other),
        }
        while control.is_none() && !batch.is_empty() && batch.len() < MAX_BATCH {
            match self.inputs.try_recv() {
                Ok(Input::Command(c, reply)) => batch.push((c, reply)),
                Ok(other) => control = Some(other),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            self.apply_and_commit(epoch, batch);
        }
        if let Some(control) = control {
            self.control(control);
        }
        true
    }

    fn apply_and_commit(
        &mut self,
        epoch: u64,
        batch: Vec<(Command, oneshot::Sender<Result<Reply, StateError>>)>,
    ) {
        let now = self.clock.now_ns();
        let mut uuid = uuid::Uuid::new_v4;
        let mut env = Env {
            now,
            uuid: &mut uuid,
        };
        let mut changes = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        let mut published = Vec::new();
        let index = {
            let mut state = self.shared.write();
            for (command, reply) in batch {
                let kind = events::kind_of(&command);
                let start = changes.len();
                replies.push((reply, apply(&mut state, command, &mut env, &mut changes)));
                if let Some(kind) = kind.filter(|_| changes.len() > start) {
                    published.extend(events::record(&state, kind, &changes[start..]));
                }
            }
            state.index
        };
        if changes.is_empty() {
            for (reply, result) in replies {
                let _ = reply.send(result);
            }
            return;
        }
        changes.push(Change::SetIndex(index));
        let started = Instant::now();
        let result = self.store.commit(&Batch {
            changes: &changes,
            index,
            prev: self.durable,
            epoch,
        });
        match result {
            Ok(()) => {
                crate::metrics::commit(replies.len(), started.elapsed());
                self.logged = None;
                self.durable = index;
                self.committed.send_replace(index);
                // The one publish point: what this commit made durable, for the event
                // stream and the UI.
                self.feed.publish(published);
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let refusal = self.commit_failed(e, changes, index, published);
                for (reply, _) in replies {
                    let _ = reply.send(Err(refusal.clone_refusal()));
                }
            }
        }
    }

    /// What a failed commit means for the writer, and what its callers are told.
    fn commit_failed(
        &mut self,
        e: StoreError,
        changes: Vec<Change>,
        index: u64,
        events: Vec<EventBatch>,
    ) -> StateError {
        match e {
            StoreError::Fenced { mine, current } => {
                tracing::warn!(
                    epoch = mine,
                    current,
                    "another server leads now: this commit was refused; following it"
                );
                crate::metrics::fenced_commit();
                self.step_down(true);
                if let Some(fenced) = &self.fenced {
                    let _ = fenced.send(());
                }
                StateError::NotLeader
            }
            e if e.is_transient() => {
                self.log_store_error(&e);
                self.pending = Some(Pending {
                    changes,
                    index,
                    events,
                });
                StateError::StoreUnavailable(e.to_string())
            }
            e => {
                // The in-memory state is ahead of the disk and nobody has been answered:
                // stop here, and the restart reloads what is durable.
                tracing::error!("commit failed, stopping the server: {e}");
                std::process::exit(70);
            }
        }
    }

    /// Commit the batch the store did not confirm, answering everything else 503 until it
    /// does.
    fn retry_pending(&mut self, epoch: u64) -> bool {
        let mut backoff = Duration::from_millis(100);
        let mut next_try = Instant::now();
        loop {
            if Instant::now() >= next_try {
                let Some(pending) = &self.pending else {
                    return true;
                };
                let result = self.store.commit(&Batch {
                    changes: &pending.changes,
                    index: pending.index,
                    prev: self.durable,
                    epoch,
                });
                let index = pending.index;
                match result {
                    Ok(()) => {
                        tracing::info!(index, "the store is back: the pending batch is committed");
                        self.logged = None;
                        let events = self.pending.take().map(|p| p.events).unwrap_or_default();
                        self.durable = index;
                        self.committed.send_replace(index);
                        self.feed.publish(events);
                        return true;
                    }
                    Err(StoreError::Fenced { mine, current }) => {
                        tracing::warn!(
                            epoch = mine,
                            current,
                            "another server was elected while the store was away; following it"
                        );
                        self.step_down(true);
                        if let Some(fenced) = &self.fenced {
                            let _ = fenced.send(());
                        }
                        return true;
                    }
                    Err(e) if e.is_transient() => {
                        self.log_store_error(&e);
                        next_try = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(e) => {
                        tracing::error!("commit failed, stopping the server: {e}");
                        std::process::exit(70);
                    }
                }
            }
            // Meanwhile: nothing new is applied.
            std::thread::sleep(Duration::from_millis(20));
            loop {
                match self.inputs.try_recv() {
                    Ok(Input::Command(_, reply)) => {
                        let why = self.logged.clone().unwrap_or_default();
                        let _ = reply.send(Err(StateError::StoreUnavailable(why)));
                    }
                    Ok(control) => {
                        self.control(control);
                        if !matches!(self.mode, Mode::Leading { .. }) {
                            return true;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return false,
                }
            }
        }
    }

    /// One round as a follower. False once every sender is gone.
    fn follow(&mut self) -> bool {
        loop {
            match self.inputs.try_recv() {
                Ok(Input::Command(_, reply)) => {
                    let _ = reply.send(Err(StateError::NotLeader));
                }
                Ok(control) => {
                    self.control(control);
                    return true;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        if let Err(e) = self.catch_up(FOLLOW_WAIT) {
            self.log_store_error(&e);
            std::thread::sleep(FOLLOW_WAIT * 4);
        }
        true
    }

    /// Replay what the leader committed since `durable` (reloading everything when the
    /// memory cannot be brought forward batch by batch).
    fn catch_up(&mut self, wait: Duration) -> Result<usize, StoreError> {
        if self.stale {
            self.reload()?;
        }
        let Some(log) = self.store.change_log() else {
            return Ok(0);
        };
        let batches = match log.batches_after(self.durable, wait) {
            Ok(b) => b,
            Err(StoreError::LogGap(at)) => {
                tracing::warn!(
                    index = at,
                    "fell behind the change log; reloading everything"
                );
                self.stale = true;
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let count = batches.len();
        if count == 0 {
            return Ok(0);
        }
        let now = self.clock.now_ns();
        let mut last = self.durable;
        let mut published = Vec::new();
        {
            let mut state = self.shared.write();
            for batch in batches {
                let index = batch.index;
                // A standby publishes what it replays, so the event stream and the UI follow
                // the leader's commits on every server (one event type per batch: the
                // change log keeps changes, not the commands that made them).
                let recorded = events::kind_of_changes(&batch.changes)
                    .map(|kind| (kind, batch.changes.clone()));
                if let Err(e) = replay::replay(&mut state, batch, now) {
                    tracing::error!(index, "cannot replay a committed batch ({e}); reloading");
                    self.stale = true;
                    break;
                }
                if let Some((kind, changes)) = recorded {
                    published.extend(events::record(&state, kind, &changes));
                }
                last = index;
            }
        }
        if last != self.durable {
            self.durable = last;
            self.committed.send_replace(last);
            self.feed.publish(published);
        }
        self.logged = None;
        Ok(count)
    }

    /// Replace the state with what the store holds.
    fn reload(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let state =
            load::rebuild(self.store.as_mut(), self.clock.now_ns()).map_err(|e| match e {
                super::StartError::Store(e) => e,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        let index = state.index;
        let dispatches = state.dispatch_count();
        *self.shared.write() = state;
        self.durable = index;
        self.stale = false;
        self.committed.send_replace(index);
        tracing::info!(
            index,
            dispatches,
            millis = started.elapsed().as_millis() as u64,
            "state reloaded from {}",
            self.store.describe()
        );
        Ok(())
    }

    fn control(&mut self, input: Input) {
        match input {
            Input::Command(_, reply) => {
                let _ = reply.send(Err(StateError::NotLeader));
            }
            Input::Lead { epoch, ready } => {
                let _ = ready.send(self.become_leader(epoch));
            }
            Input::Follow { done } => {
                if matches!(self.mode, Mode::Leading { .. }) {
                    self.step_down(self.pending.is_some());
                }
                let _ = done.send(());
            }
        }
    }

    /// Catch up with everything committed before the election, then lead.
    fn become_leader(&mut self, epoch: u64) -> Result<u64, String> {
        if self.pending.is_some() {
            // A batch of an earlier term of ours that the store never confirmed: another
            // server may have led since, so memory cannot be trusted.
            self.pending = None;
            self.stale = true;
        }
        loop {
            match self.catch_up(Duration::ZERO) {
                Ok(0) if !self.stale => break,
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        self.mode = Mode::Leading { epoch };
        tracing::info!(epoch, index = self.durable, "leading");
        Ok(self.durable)
    }

    fn step_down(&mut self, memory_ahead: bool) {
        self.pending = None;
        if memory_ahead {
            self.stale = true;
        }
        self.mode = Mode::Following;
    }

    fn log_store_error(&mut self, e: &StoreError) {
        let text = e.to_string();
        if self.logged.as_deref() != Some(text.as_str()) {
            tracing::error!("{text}; retrying");
            self.logged = Some(text);
        }
    }
}

impl StateError {
    /// The same refusal for every caller of a batch that was not committed.
    fn clone_refusal(&self) -> StateError {
        match self {
            StateError::StoreUnavailable(why) => StateError::StoreUnavailable(why.clone()),
            _ => StateError::NotLeader,
        }
    }
}
