//! Durable storage: the one place bytes reach the disk.
//!
//! The store knows rows, not rules: it persists what `state` decided and hands it all back at
//! start-up. It is written by exactly one thread (the state writer), which gives it a whole
//! batch of changes at a time: `commit` writes the batch atomically, and `Durability::sync`
//! (another thread, the state's syncer) makes every batch written before it durable.
//! See `sqlite.rs` for why the embedded default is SQLite in WAL mode.

mod sqlite;

pub use sqlite::{Durability, PayloadReader, SqliteStore};

use crate::model::DispatchStatus;

/// A stored dispatch row: everything needed to rebuild a `model::Dispatch`.
#[derive(Debug, Clone)]
pub struct DispatchRow {
    pub id: String,
    pub job_id: String,
    pub job_version: u64,
    pub status: DispatchStatus,
    pub priority: u8,
    pub idempotency_token: Option<String>,
    /// JSON object of the dispatch meta.
    pub meta_json: String,
    /// The payload bytes, when writing. `load` leaves this `None` (payloads are read on
    /// demand through `PayloadReader`) and fills `payload_len` instead.
    pub payload: Option<Vec<u8>>,
    pub payload_len: u32,
    pub eval_id: [u8; 16],
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Why the dispatch ended the way it did (failures, stops).
    pub description: Option<String>,
}

/// A stored job version: the Nomad job JSON of one version of one job.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub version: u64,
    pub json: String,
}

/// A stored task run (one attempt of one task of a dispatch).
#[derive(Debug, Clone)]
pub struct RunRow {
    pub task_id: String,
    pub dispatch_id: String,
    pub group: u16,
    pub instance: u32,
    pub task: u16,
    pub attempt: u32,
    /// Mesos task state name; empty while launching (no update yet).
    pub state: String,
    pub agent_id: String,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    pub launched_at: i64,
    pub updated_at: i64,
}

/// One durable change. A batch of them is committed atomically.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace a setting (e.g. the Mesos FrameworkID).
    PutSetting {
        key: String,
        value: String,
    },
    /// Insert or replace a job version (the current one is the highest version).
    PutJobVersion(JobRow),
    /// Remove a job and all its versions (purge).
    DeleteJob {
        id: String,
    },
    PutDispatch(DispatchRow),
    SetDispatchStatus {
        id: String,
        status: DispatchStatus,
        modify_index: u64,
        description: Option<String>,
    },
    /// Remove a dispatch and its runs.
    DeleteDispatch {
        id: String,
    },
    /// Insert or replace a task run.
    PutRun(RunRow),
    /// How many of a parent's children were removed (purged or garbage collected) after
    /// they ended: `Children.Dead` keeps counting them across restarts.
    SetRemovedChildren {
        job_id: String,
        dead: u64,
    },
    /// The last index handed out; restored on start.
    SetIndex(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: corrupt row: {0}")]
    Corrupt(String),
}
