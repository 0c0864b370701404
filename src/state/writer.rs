//! The single writer: drains commands in batches, applies them, writes each batch to the
//! store in one transaction, and answers once that batch is durable.
//!
//! Pipelined group commit. Two threads:
//! * `state-writer` applies a batch under the write lock and writes its changes to the store
//!   (`SqliteStore::commit`: one transaction, not yet fsynced), hands the batch's replies to
//!   the syncer, and goes on with the next batch at once;
//! * `state-syncer` makes everything written so far durable (`Durability::sync`: one
//!   fdatasync of the WAL, covering every batch written before it started), then publishes
//!   the committed index and sends the replies, in batch order.
//!
//! So the disk's flush of batch N overlaps the CPU work of batch N+1, and one flush covers
//! all the batches written while the previous flush ran. Replies of a batch that changed
//! nothing still wait for the batches before them (an idempotent replay must not reveal a
//! child that is not durable yet). If a write or a sync fails the process exits (memory is
//! ahead of the disk) and a restart reloads what is durable.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot, watch};

use super::apply::{apply, Env};
use super::{Envelope, Reply, State, StateError};
use crate::clock::Clock;
use crate::store::{Durability, SqliteStore};

/// Commands waiting for the writer before senders have to wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 16 * 1024;
/// Most commands applied and committed together.
const MAX_BATCH: usize = 4096;

type Answer = (
    oneshot::Sender<Result<Reply, StateError>>,
    Result<Reply, StateError>,
);

/// A batch written to the store, waiting for a sync.
struct Written {
    index: u64,
    /// Whether the batch wrote anything (a batch of stale updates writes nothing).
    wrote: bool,
    answers: Vec<Answer>,
    /// When the batch's first command was taken (commit latency metric).
    started: Instant,
}

pub fn spawn(
    mut store: SqliteStore,
    shared: Arc<RwLock<State>>,
    mut commands: mpsc::Receiver<Envelope>,
    committed: watch::Sender<u64>,
    clock: Clock,
) -> std::io::Result<()> {
    let durability = store.durability().map_err(std::io::Error::other)?;
    let (written_tx, written_rx) = std::sync::mpsc::channel::<Written>();
    std::thread::Builder::new()
        .name("state-syncer".into())
        .spawn(move || sync_loop(durability, written_rx, committed))?;
    std::thread::Builder::new()
        .name("state-writer".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut changes = Vec::new();
            while let Some(first) = commands.blocking_recv() {
                let started = Instant::now();
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match commands.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let now = clock.now_ns();
                let mut uuid = uuid::Uuid::new_v4;
                let mut env = Env {
                    now,
                    uuid: &mut uuid,
                };
                let mut answers = Vec::with_capacity(batch.len());
                let index = {
                    let mut state = shared.write();
                    for (command, reply) in batch.drain(..) {
                        answers.push((reply, apply(&mut state, command, &mut env, &mut changes)));
                    }
                    state.index
                };
                let wrote = !changes.is_empty();
                if wrote {
                    changes.push(crate::store::Change::SetIndex(index));
                    let writing = Instant::now();
                    if let Err(e) = store.commit(&changes) {
                        // The in-memory state is ahead of the disk and nobody has been
                        // answered: stop here, and the restart reloads what is durable.
                        tracing::error!("commit failed, stopping the server: {e}");
                        std::process::exit(70);
                    }
                    crate::metrics::store_write(writing.elapsed());
                    changes.clear();
                }
                let written = Written {
                    index,
                    wrote,
                    answers,
                    started,
                };
                if written_tx.send(written).is_err() {
                    tracing::error!("the state syncer stopped; stopping the server");
                    std::process::exit(70);
                }
            }
        })?;
    Ok(())
}

/// Sync what was written, then publish and answer, batch after batch.
fn sync_loop(
    mut durability: Durability,
    written: std::sync::mpsc::Receiver<Written>,
    committed: watch::Sender<u64>,
) {
    let mut ready = Vec::new();
    while let Ok(first) = written.recv() {
        ready.push(first);
        ready.extend(written.try_iter());
        if ready.iter().any(|w| w.wrote) {
            let started = Instant::now();
            if let Err(e) = durability.sync() {
                tracing::error!("sync failed, stopping the server: {e}");
                std::process::exit(70);
            }
            crate::metrics::store_sync(started.elapsed());
        }
        let index = ready.iter().map(|w| w.index).max().unwrap_or(0);
        if index > *committed.borrow() {
            committed.send_replace(index);
        }
        for w in ready.drain(..) {
            if w.wrote {
                crate::metrics::commit(w.answers.len(), w.started.elapsed());
            }
            for (reply, result) in w.answers {
                let _ = reply.send(result);
            }
        }
    }
}
