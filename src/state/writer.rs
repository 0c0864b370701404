//! The single writer: drains commands in batches, applies them, commits once, answers all.

use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::{mpsc, watch};

use super::apply::{apply, Env};
use super::events::{self, EventFeed};
use super::{Envelope, State};
use crate::clock::Clock;
use crate::store::SqliteStore;

/// Commands waiting for the writer before senders have to wait (back-pressure).
pub const QUEUE_CAPACITY: usize = 16 * 1024;
/// Most commands applied and committed together.
const MAX_BATCH: usize = 4096;

pub fn spawn(
    mut store: SqliteStore,
    shared: Arc<RwLock<State>>,
    mut commands: mpsc::Receiver<Envelope>,
    committed: watch::Sender<u64>,
    feed: Arc<EventFeed>,
    clock: Clock,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("state-writer".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut changes = Vec::new();
            let mut replies = Vec::with_capacity(MAX_BATCH);
            let mut published = Vec::new();
            while let Some(first) = commands.blocking_recv() {
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
                let index = {
                    let mut state = shared.write();
                    for (command, reply) in batch.drain(..) {
                        let kind = events::kind_of(&command);
                        let start = changes.len();
                        replies.push((reply, apply(&mut state, command, &mut env, &mut changes)));
                        if let Some(kind) = kind.filter(|_| changes.len() > start) {
                            published.extend(events::record(&state, kind, &changes[start..]));
                        }
                    }
                    state.index
                };
                if !changes.is_empty() {
                    changes.push(crate::store::Change::SetIndex(index));
                    let started = std::time::Instant::now();
                    if let Err(e) = store.commit(&changes) {
                        // The in-memory state is ahead of the disk and nobody has been
                        // answered: stop here, and the restart reloads what is durable.
                        tracing::error!("commit failed, stopping the server: {e}");
                        std::process::exit(70);
                    }
                    crate::metrics::commit(replies.len(), started.elapsed());
                    tracing::trace!(
                        changes = changes.len(),
                        micros = started.elapsed().as_micros() as u64,
                        "committed"
                    );
                    changes.clear();
                    committed.send_replace(index);
                    // The one publish point: what this commit made durable, for the event
                    // stream and the UI.
                    feed.publish(published.drain(..));
                }
                for (reply, result) in replies.drain(..) {
                    let _ = reply.send(result);
                }
            }
        })?;
    Ok(())
}
