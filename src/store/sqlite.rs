//! The embedded default store: SQLite in WAL mode with `synchronous = FULL`.
//!
//! Tables: `job_versions(job_id, version, json)`, `dispatches` (one row per child: its job
//! version, status, priority, token, meta, payload length, eval ID, times, indexes,
//! description), `payloads(id, data)`, `task_runs` (one row per attempt), `kv` (the index),
//! `settings(key, value)` (the backends' durable settings, e.g. the Mesos FrameworkID) and
//! `removed_children(job_id, dead)`, `acl_policies(name, json)` and `acl_tokens(accessor, json)`
//! (ACL documents; a token keeps only its secret's hash). `commit(&[Change])` is one transaction; `load` returns
//! everything but payload bytes, which `PayloadReader` reads on demand on its own connection.
//!
//! Why SQLite: it survives `kill -9` and power loss with no repair step, reopens in
//! milliseconds whatever its size (no log replay), gives us indexed reads of cold data such
//! as payloads without keeping them in memory, and is one bundled C library with no server.
//! An append-only log would need its own snapshots and compaction; redb/fjall reopen slower
//! after an unclean stop. Group commit is ours: the state writer hands a whole batch to
//! `commit`, which is one transaction and one fsync of the WAL.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    Batch, Change, DispatchRow, JobRow, Loaded, PayloadReader, ReadPayload, Row, RunRow, Store,
    StoreError,
};
use crate::model::DispatchStatus;

/// The database file in the data dir.
pub const FILE: &str = "dispatch.sqlite";

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
-- ACL policies and tokens, one JSON document each (tokens hold only their secret's hash).
CREATE TABLE IF NOT EXISTS acl_policies (name TEXT PRIMARY KEY, json TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acl_tokens (accessor TEXT PRIMARY KEY, json TEXT NOT NULL) WITHOUT ROWID;
";

/// Columns added after a table was first created: (table, column, definition).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // the accessor ID of the ACL token that made the dispatch
    ("dispatches", "dispatched_by", "TEXT"),
];

/// Add the columns an older data dir lacks.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    for (table, column, definition) in ADDED_COLUMNS {
        let exists: bool = conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists(params![column])?;
        if !exists {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// SQLite store. `commit` is for the single writer; payloads may be read from any thread
/// (on their own read connection).
pub struct SqliteStore {
    path: std::path::PathBuf,
    writer: Connection,
    reader: Arc<Mutex<Connection>>,
}

/// Payload reads on the read connection.
struct SqlitePayloads {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Open (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let writer = Connection::open(&path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "cache_size", -65536)?;
        writer.execute_batch(SCHEMA)?;
        migrate(&writer)?;
        let reader = Connection::open(&path)?;
        reader.pragma_update(None, "query_only", true)?;
        Ok(SqliteStore {
            path,
            writer,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Every stored setting (start-up).
    fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.writer.prepare("SELECT key, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every ACL policy, as stored JSON (start-up).
    fn acl_policies(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .writer
            .prepare("SELECT json FROM acl_policies ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every ACL token, as stored JSON (start-up).
    fn acl_tokens(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .writer
            .prepare("SELECT json FROM acl_tokens ORDER BY accessor")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Per parent, how many children were removed after they ended.
    fn removed_children(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .writer
            .prepare("SELECT job_id, dead FROM removed_children")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    /// Jobs first (ordered by job and version), then dispatches, then runs (ordered by
    /// dispatch and launch). Only this process writes the file, so the reads need no
    /// snapshot of their own.
    fn load(
        &mut self,
        on_row: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<Loaded, StoreError> {
        let index: u64 = self
            .writer
            .query_row("SELECT value FROM kv WHERE key = 'index'", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let mut stmt = self
            .writer
            .prepare("SELECT job_id, version, json FROM job_versions ORDER BY job_id, version")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            on_row(Row::Job(job_row(r)?))?;
        }
        let mut stmt = self.writer.prepare(
            "SELECT id, job_id, job_version, status, priority, token, meta, eval_id,
                    submit_time, create_index, modify_index, payload_len, description,
                    dispatched_by
             FROM dispatches",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            on_row(Row::Dispatch(dispatch_row(r)?))?;
        }
        let mut stmt = self.writer.prepare(
            "SELECT task_id, dispatch_id, grp, instance, task, attempt, state, agent_id,
                    exit_code, message, launched_at, updated_at
             FROM task_runs ORDER BY dispatch_id, launched_at, attempt",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            on_row(Row::Run(run_row(r)?))?;
        }
        Ok(Loaded {
            index,
            settings: self.settings()?,
            removed_children: self.removed_children()?,
            acl_policies: self.acl_policies()?,
            acl_tokens: self.acl_tokens()?,
        })
    }

    /// One transaction, one fsync of the WAL. The epoch is not checked: nobody else writes
    /// this file.
    fn commit(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let tx = self.writer.transaction()?;
        for change in batch.changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn payload_reader(&self) -> PayloadReader {
        PayloadReader::new(Arc::new(SqlitePayloads {
            conn: self.reader.clone(),
        }))
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
        dispatched_by: r.get(13)?,
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
                    description, dispatched_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
                d.description,
                d.dispatched_by
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
        Change::DeleteDispatch { id, .. } => {
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
        Change::PutAclPolicy { name, json } => {
            tx.prepare_cached("INSERT OR REPLACE INTO acl_policies (name, json) VALUES (?1, ?2)")?
                .execute(params![name, json])?;
        }
        Change::DeleteAclPolicy { name } => {
            tx.prepare_cached("DELETE FROM acl_policies WHERE name = ?1")?
                .execute(params![name])?;
        }
        Change::PutAclToken { accessor, json } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO acl_tokens (accessor, json) VALUES (?1, ?2)",
            )?
            .execute(params![accessor, json])?;
        }
        Change::DeleteAclToken { accessor } => {
            tx.prepare_cached("DELETE FROM acl_tokens WHERE accessor = ?1")?
                .execute(params![accessor])?;
        }
        Change::SetIndex(index) => {
            tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES ('index', ?1)")?
                .execute(params![index])?;
        }
    }
    Ok(())
}

impl ReadPayload for SqlitePayloads {
    fn payload(&self, dispatch_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
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
