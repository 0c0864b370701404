//! Durable storage: the one place bytes reach the disk, behind one trait (`Store`).
//!
//! The store knows rows, not rules: it persists what `state` decided and hands it all back at
//! start-up. It is written by exactly one thread (the state writer), which gives it a whole
//! batch of changes at a time (`Batch`); `commit` returns only after the batch is durable
//! (one transaction, one fsync: group commit). Two implementations:
//!
//! * `sqlite` — the embedded default: one server, a file in `-data-dir`. See `sqlite.rs` for
//!   why SQLite.
//! * `postgres` — a database several servers share (`-store postgres://...`): one of them
//!   leads and writes (every commit checks the fencing epoch it was elected with), the others
//!   follow the batches it commits (`ChangeLog`) to keep a warm copy. Leadership itself is
//!   the `Lease` trait. See `postgres/mod.rs` for the client choice.
//!
//! Nothing above this module knows which store it talks to: `state` sees `dyn Store`,
//! `leadership` sees `dyn Lease`, and the composition root (`server.rs`) picks one.

pub mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

pub use postgres::{PgLease, PgTarget, PostgresStore};
pub use sqlite::SqliteStore;

use crate::model::DispatchStatus;

/// A stored dispatch row: everything needed to rebuild a `model::Dispatch`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// demand through `PayloadReader`) and fills `payload_len` instead; the change log that
    /// standbys follow never carries them either.
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    pub payload_len: u32,
    pub eval_id: [u8; 16],
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Why the dispatch ended the way it did (failures, stops).
    pub description: Option<String>,
    /// Accessor ID of the ACL token that made the dispatch (never its secret).
    pub dispatched_by: Option<String>,
}

/// A stored job version: the Nomad job JSON of one version of one job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobRow {
    pub id: String,
    pub version: u64,
    pub json: String,
}

/// A stored task run (one attempt of one task of a dispatch).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
        /// Its parent (for those who follow the committed changes; the row is found by ID).
        job_id: String,
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
    /// Insert or replace an ACL policy (`acl::Policy` as JSON).
    PutAclPolicy {
        name: String,
        json: String,
    },
    DeleteAclPolicy {
        name: String,
    },
    /// Insert or replace an ACL token (`acl::Token` as JSON: the secret's hash, never the
    /// secret).
    PutAclToken {
        accessor: String,
        json: String,
    },
    DeleteAclToken {
        accessor: String,
    },
}

/// One batch for `Store::commit`.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub changes: &'a [Change],
    /// The index after the batch (the last `SetIndex`).
    pub index: u64,
    /// The index of the batch committed before this one (a shared store chains its change
    /// log with it, so a follower notices a gap).
    pub prev: u64,
    /// The fencing epoch the writer was elected with: a shared store refuses the batch
    /// (`StoreError::Fenced`) once another server has been elected since. 0 for a store only
    /// this process writes.
    pub epoch: u64,
}

/// A stored row, as `load` reads them: jobs first (ordered by job and version), then
/// dispatches, then runs (ordered by dispatch and launch).
#[derive(Debug)]
pub enum Row {
    Job(JobRow),
    Dispatch(DispatchRow),
    Run(RunRow),
}

/// What `load` returns besides the rows.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The stored index: the last committed batch.
    pub index: u64,
    /// Every stored setting.
    pub settings: Vec<(String, String)>,
    /// Per parent, how many children were removed after they ended.
    pub removed_children: Vec<(String, u64)>,
    /// Every ACL policy, as stored JSON (`acl::Policy`).
    pub acl_policies: Vec<String>,
    /// Every ACL token, as stored JSON (`acl::Token`: the secret's hash, never the secret).
    pub acl_tokens: Vec<String>,
}

/// A batch another server committed, as a follower reads it back.
#[derive(Debug)]
pub struct Logged {
    pub index: u64,
    pub prev: u64,
    pub changes: Vec<Change>,
}

/// What the state writer needs from durable storage.
pub trait Store: Send {
    /// Where the data lives, for logs and messages (never a password).
    fn describe(&self) -> String;

    /// Read everything committed, as one consistent snapshot, handing each row to `rows` as
    /// it is read (a million rows never sit in memory twice).
    fn load(
        &mut self,
        rows: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<Loaded, StoreError>;

    /// Apply a batch atomically and durably: one transaction, one fsync. Returns only once
    /// it is durable.
    fn commit(&mut self, batch: &Batch<'_>) -> Result<(), StoreError>;

    /// A cheap handle for reading payload bytes from request handlers (any thread).
    fn payload_reader(&self) -> PayloadReader;

    /// For a store several servers share: the batches the leader commits, which standbys
    /// follow. `None` for a store only this process writes.
    fn change_log(&mut self) -> Option<&mut dyn ChangeLog> {
        None
    }
}

/// The committed batches of a shared store, in order.
pub trait ChangeLog {
    /// Batches committed after `after`, oldest first, waiting up to `wait` for one when there
    /// is none yet. `StoreError::LogGap` when the ones right after `after` are no longer
    /// kept (the follower reloads everything).
    fn batches_after(&mut self, after: u64, wait: Duration) -> Result<Vec<Logged>, StoreError>;
}

/// A server as the others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Unique per server process.
    pub id: String,
    /// `host:port` of its API (`/v1/status/leader`, `/v1/status/peers`).
    pub address: String,
    /// Base URL of its API (standbys forward writes to the leader's).
    pub url: String,
}

/// Who leads, as the store says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRecord {
    pub peer: Peer,
    pub epoch: u64,
}

/// Leadership among the servers sharing a store: a lease with a fencing epoch.
pub trait Lease: Send {
    /// Become the leader if nobody holds the lease (it expired, or its holder's session is
    /// gone): returns the new epoch, which every commit of this leader carries.
    fn try_take(&mut self, me: &Peer, lease: Duration) -> Result<Option<u64>, StoreError>;
    /// Extend the lease taken with `epoch`; false when another server was elected since.
    fn renew(&mut self, epoch: u64, lease: Duration) -> Result<bool, StoreError>;
    /// Give the lease up (clean shutdown): a standby takes over at once.
    fn release(&mut self, epoch: u64) -> Result<(), StoreError>;
    /// The current leader, if its lease runs.
    fn leader(&mut self) -> Result<Option<LeaderRecord>, StoreError>;
    /// Say this server is alive; returns every server seen within `within`.
    fn heartbeat(&mut self, me: &Peer, within: Duration) -> Result<Vec<Peer>, StoreError>;
    /// The secret every server sharing the store knows and clients do not (it authenticates
    /// what one server tells another, e.g. a forwarded request's client address).
    fn peer_secret(&mut self) -> Result<String, StoreError>;
}

/// Reads payload bytes of dispatches.
pub trait ReadPayload: Send + Sync {
    fn payload(&self, dispatch_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A cheap, cloneable handle on a store's payload reads.
#[derive(Clone)]
pub struct PayloadReader(Arc<dyn ReadPayload>);

impl PayloadReader {
    pub fn new(reader: Arc<dyn ReadPayload>) -> PayloadReader {
        PayloadReader(reader)
    }

    /// The payload bytes of a dispatch, if it has one. Blocking: call it off the async
    /// threads.
    pub fn payload(&self, dispatch_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.payload(dispatch_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: corrupt row: {0}")]
    Corrupt(String),
    /// The database cannot be reached or dropped the connection: retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database refused us for good (credentials, a missing database, permissions):
    /// PostgreSQL's own message.
    #[error("store refused: {0}")]
    Refused(String),
    /// The database schema is newer than this binary knows.
    #[error(
        "the database schema is at version {found}, newer than this Dispatch knows ({known}): \
         upgrade Dispatch, or point -store at another database"
    )]
    NewerSchema { found: i32, known: i32 },
    /// Another server was elected after this one: the batch was not committed.
    #[error("this server no longer leads (elected with epoch {mine}, the store is at epoch {current}): nothing was committed")]
    Fenced { mine: u64, current: u64 },
    /// The change log no longer holds the batches right after the follower's position.
    #[error("the change log no longer holds the batches after index {0}")]
    LogGap(u64),
    #[error("store: {0}")]
    Database(String),
}

impl StoreError {
    /// Retrying the same thing later may succeed (the database is down or restarting).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
