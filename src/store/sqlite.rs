//! The embedded default store: SQLite in WAL mode, made durable by an explicit fdatasync of
//! the WAL (`Durability`), so the writer can go on while the disk flushes.
//!
//! Tables: `job_versions(job_id, version, json)`, `dispatches` (one row per child: its job
//! version, status, priority, token, meta, payload length, eval ID, times, indexes,
//! description), `payloads(id, data)`, `task_runs` (one row per attempt), `kv` (the index),
//! `settings(key, value)` (the backends' durable settings, e.g. the Mesos FrameworkID) and
//! `removed_children(job_id, dead)`. `commit(&[Change])` is one transaction; `load` returns
//! everything but payload bytes, which `PayloadReader` reads on demand on its own connection.
//!
//! Why SQLite: it survives `kill -9` and power loss with no repair step, reopens in
//! milliseconds whatever its size (no log replay), gives us indexed reads of cold data such
//! as payloads without keeping them in memory, and is one bundled C library with no server.
//! An append-only log would need its own snapshots and compaction; redb/fjall reopen slower
//! after an unclean stop. Group commit is ours: the state writer hands a whole batch to
//! `commit`, which is one transaction; `Durability::sync` (on the state's syncer thread) then
//! fdatasyncs the WAL, which makes every transaction written before it durable.
//!
//! Why this is as safe as `synchronous = FULL`: in WAL mode a transaction is its frames in the
//! `-wal` file, each checksummed; recovery replays the valid commits and drops a torn tail.
//! `synchronous = NORMAL` only skips the fsync at commit (a checkpoint still syncs the WAL
//! before copying it and the database after), and that fsync is exactly what `sync` does,
//! once for many transactions, and before anyone is told about them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::{Change, DispatchRow, JobRow, RunRow, StoreError};
use crate::model::DispatchStatus;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_versions (
    job_id TEXT NOT NULL, version INTEGER NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (job_id, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dispatches (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, job_version INTEGER NOT NULL,
    status INTEGER NOT NULL, priority INTEGER NOT NULL, token TEXT,
    meta TEXT NOT NULL, payload_len INTEGER NOT NULL, eval_id BLOB NOT NULL,
    submit_time INTEGER NOT NULL, create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL,
    description TEXT) WITHOUT ROWID;
-- Payloads (up to 16 KiB) live apart from the small dispatch rows, in an ordinary rowid
-- table: inline they would spill every dispatch row into half-empty overflow pages.
CREATE TABLE IF NOT EXISTS payloads (id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS task_runs (
    task_id TEXT PRIMARY KEY, dispatch_id TEXT NOT NULL, grp INTEGER NOT NULL,
    instance INTEGER NOT NULL, task INTEGER NOT NULL, attempt INTEGER NOT NULL,
    state TEXT NOT NULL, agent_id TEXT NOT NULL, exit_code INTEGER, message TEXT,
    launched_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS task_runs_by_dispatch ON task_runs (dispatch_id);
-- Cluster settings that must outlive the process (the Mesos FrameworkID).
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS removed_children (
    job_id TEXT PRIMARY KEY, dead INTEGER NOT NULL) WITHOUT ROWID;
";

/// SQLite store. `commit` is for the single writer; `payload` may be called from any thread
/// (it uses its own read connection).
pub struct SqliteStore {
    writer: Connection,
    reader: Arc<Mutex<Connection>>,
    wal: PathBuf,
}

/// Makes what `SqliteStore::commit` wrote durable: one fdatasync of the WAL file covers
/// every transaction written before it started. Used from another thread than the writer.
pub struct Durability {
    wal: std::fs::File,
}

impl Durability {
    pub fn sync(&mut self) -> Result<(), StoreError> {
        Ok(self.wal.sync_data()?)
    }
}

/// A cheap handle for reading cold data (payloads) from request handlers.
#[derive(Clone)]
pub struct PayloadReader {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Open (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("dispatch.sqlite");
        let writer = Connection::open(&path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // Commits are made durable by `Durability::sync`, not one fsync each (see above).
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "cache_size", -65536)?;
        writer.execute_batch(SCHEMA)?;
        let reader = Connection::open(&path)?;
        reader.pragma_update(None, "query_only", true)?;
        let mut wal = path.into_os_string();
        wal.push("-wal");
        Ok(SqliteStore {
            writer,
            reader: Arc::new(Mutex::new(reader)),
            wal: wal.into(),
        })
    }

    /// The handle that makes commits durable (the WAL file, opened on its own descriptor:
    /// fdatasync flushes the file whichever descriptor wrote it). SQLite keeps the WAL file
    /// while any connection is open; ours stay open for the life of the process.
    pub fn durability(&self) -> Result<Durability, StoreError> {
        let wal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.wal)?;
        Ok(Durability { wal })
    }

    pub fn payload_reader(&self) -> PayloadReader {
        PayloadReader {
            conn: self.reader.clone(),
        }
    }

    /// Read everything back (start-up), handing each row to a callback as it is read so
    /// that a million rows never sit in memory twice. Jobs come first (ordered by job and
    /// version), then dispatches, then runs (ordered by dispatch and launch). Returns the
    /// stored index.
    pub fn load<E: From<StoreError>>(
        &self,
        mut on_job: impl FnMut(JobRow) -> Result<(), E>,
        mut on_dispatch: impl FnMut(DispatchRow) -> Result<(), E>,
        mut on_run: impl FnMut(RunRow) -> Result<(), E>,
    ) -> Result<u64, E> {
        let index: u64 = self
            .writer
            .query_row("SELECT value FROM kv WHERE key = 'index'", [], |r| r.get(0))
            .optional()
            .map_err(StoreError::from)?
            .unwrap_or(0);
        let mut stmt = self
            .writer
            .prepare("SELECT job_id, version, json FROM job_versions ORDER BY job_id, version")
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            on_job(job_row(r).map_err(StoreError::from)?)?;
        }
        let mut stmt = self
            .writer
            .prepare(
                "SELECT id, job_id, job_version, status, priority, token, meta, eval_id,
                    submit_time, create_index, modify_index, payload_len, description
             FROM dispatches",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            on_dispatch(dispatch_row(r)?)?;
        }
        let mut stmt = self
            .writer
            .prepare(
                "SELECT task_id, dispatch_id, grp, instance, task, attempt, state, agent_id,
                    exit_code, message, launched_at, updated_at
             FROM task_runs ORDER BY dispatch_id, launched_at, attempt",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            on_run(run_row(r).map_err(StoreError::from)?)?;
        }
        Ok(index)
    }

    /// Every stored setting (start-up).
    pub fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.writer.prepare("SELECT key, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Per parent, how many children were removed after they ended.
    pub fn removed_children(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .writer
            .prepare("SELECT job_id, dead FROM removed_children")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Apply a batch atomically: one transaction. Durable once a `Durability::sync` that
    /// started after this returned has returned.
    pub fn commit(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        let tx = self.writer.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        version: r.get(1)?,
        json: r.get(2)?,
    })
}

fn dispatch_row(r: &rusqlite::Row<'_>) -> Result<DispatchRow, StoreError> {
    let status: i64 = r.get(3)?;
    let eval: Vec<u8> = r.get(7)?;
    Ok(DispatchRow {
        id: r.get(0)?,
        job_id: r.get(1)?,
        job_version: r.get(2)?,
        status: status_from_code(status)?,
        priority: r.get(4)?,
        idempotency_token: r.get(5)?,
        meta_json: r.get(6)?,
        // Payload bytes stay on disk; only their length is loaded.
        payload: None,
        payload_len: r.get(11)?,
        eval_id: eval
            .try_into()
            .map_err(|_| StoreError::Corrupt("eval_id is not 16 bytes".into()))?,
        submit_time: r.get(8)?,
        create_index: r.get(9)?,
        modify_index: r.get(10)?,
        description: r.get(12)?,
    })
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        task_id: r.get(0)?,
        dispatch_id: r.get(1)?,
        group: r.get(2)?,
        instance: r.get(3)?,
        task: r.get(4)?,
        attempt: r.get(5)?,
        state: r.get(6)?,
        agent_id: r.get(7)?,
        exit_code: r.get(8)?,
        message: r.get(9)?,
        launched_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::PutJobVersion(row) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO job_versions (job_id, version, json) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![row.id, row.version, row.json])?;
        }
        Change::PutSetting { key, value } => {
            tx.prepare_cached("INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)")?
                .execute(params![key, value])?;
        }
        Change::DeleteJob { id } => {
            tx.prepare_cached("DELETE FROM job_versions WHERE job_id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM removed_children WHERE job_id = ?1")?
                .execute(params![id])?;
        }
        Change::SetRemovedChildren { job_id, dead } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO removed_children (job_id, dead) VALUES (?1, ?2)",
            )?
            .execute(params![job_id, *dead as i64])?;
        }
        Change::PutDispatch(d) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO dispatches (id, job_id, job_version, status, priority,
                    token, meta, payload_len, eval_id, submit_time, create_index, modify_index,
                    description)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                d.id,
                d.job_id,
                d.job_version,
                status_code(d.status),
                d.priority,
                d.idempotency_token,
                d.meta_json,
                d.payload_len,
                &d.eval_id[..],
                d.submit_time,
                d.create_index,
                d.modify_index,
                d.description
            ])?;
            if let Some(payload) = &d.payload {
                tx.prepare_cached("INSERT OR REPLACE INTO payloads (id, data) VALUES (?1, ?2)")?
                    .execute(params![d.id, payload])?;
            }
        }
        Change::SetDispatchStatus {
            id,
            status,
            modify_index,
            description,
        } => {
            tx.prepare_cached(
                "UPDATE dispatches SET status = ?2, modify_index = ?3, description = ?4 WHERE id = ?1",
            )?
            .execute(params![id, status_code(*status), modify_index, description])?;
        }
        Change::DeleteDispatch { id } => {
            tx.prepare_cached("DELETE FROM dispatches WHERE id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM task_runs WHERE dispatch_id = ?1")?
                .execute(params![id])?;
            tx.prepare_cached("DELETE FROM payloads WHERE id = ?1")?
                .execute(params![id])?;
        }
        Change::PutRun(run) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO task_runs (task_id, dispatch_id, grp, instance, task,
                    attempt, state, agent_id, exit_code, message, launched_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                run.task_id,
                run.dispatch_id,
                run.group,
                run.instance,
                run.task,
                run.attempt,
                run.state,
                run.agent_id,
                run.exit_code,
                run.message,
                run.launched_at,
                run.updated_at
            ])?;
        }
        Change::SetIndex(index) => {
            tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES ('index', ?1)")?
                .execute(params![index])?;
        }
    }
    Ok(())
}

impl PayloadReader {
    /// The payload bytes of a dispatch, if it has one.
    pub fn payload(&self, dispatch_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn.lock();
        let payload: Option<Option<Vec<u8>>> = conn
            .prepare_cached("SELECT data FROM payloads WHERE id = ?1")?
            .query_row(params![dispatch_id], |r| r.get(0))
            .optional()?;
        Ok(payload.flatten())
    }
}

fn status_code(s: DispatchStatus) -> i64 {
    match s {
        DispatchStatus::Pending => 0,
        DispatchStatus::Running => 1,
        DispatchStatus::Complete => 2,
        DispatchStatus::Failed => 3,
        DispatchStatus::Stopped => 4,
    }
}

fn status_from_code(code: i64) -> rusqlite::Result<DispatchStatus> {
    Ok(match code {
        0 => DispatchStatus::Pending,
        1 => DispatchStatus::Running,
        2 => DispatchStatus::Complete,
        3 => DispatchStatus::Failed,
        4 => DispatchStatus::Stopped,
        other => {
            return Err(rusqlite::Error::IntegralValueOutOfRange(3, other));
        }
    })
}
