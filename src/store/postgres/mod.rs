//! The shared store: PostgreSQL 13+, for several servers on one database (`-store
//! postgres://...`).
//!
//! Tables as in SQLite (`schema.rs`, versioned migrations run at start), plus `leader_lease`
//! (who leads, with a fencing epoch: `lease.rs`), `servers` (who is alive) and `change_log`
//! (every committed batch, which standbys replay to keep a warm copy of the state).
//!
//! `commit` is one transaction: it first locks the lease row `FOR SHARE` and checks the epoch
//! the writer was elected with (an election updates that row, so it waits for a commit in
//! flight and every later commit of the old leader sees the new epoch and is refused:
//! `StoreError::Fenced`), then writes the batch folded into one multi-row statement per table
//! (`fold.rs`), the batch itself into `change_log`, a `NOTIFY`, and `COMMIT` (PostgreSQL's
//! fsync). Every write is an upsert or a delete, so a batch whose `COMMIT` was cut off by a
//! dropped connection can be sent again as is.
//!
//! Why the synchronous `postgres` crate (rust-postgres; the sync face of `tokio-postgres`):
//! the state writer is a dedicated thread that must finish a commit before it answers
//! anyone, and the lease loop is one too, so blocking calls are what both want; it uses the
//! binary protocol with prepared statements and typed arrays (`unnest($1::text[], ...)`),
//! which makes a batch of thousands of rows a few round trips. Payload reads from request
//! handlers go through a small `r2d2` pool (its adapter is by the same author) on blocking
//! threads, like SQLite's. sqlx was not chosen: async-only with its own pool and macros,
//! nothing here needs them. TLS to PostgreSQL is not in this build (`NoTls`).

mod fold;
mod lease;
pub mod schema;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, Statement};

use super::{
    Batch, ChangeLog, DispatchRow, JobRow, Loaded, Logged, PayloadReader, ReadPayload, Row, RunRow,
    Store, StoreError,
};
use crate::model::DispatchStatus;
use fold::Folded;

pub use lease::PgLease;
pub use target::PgTarget;

/// The channel a commit notifies (standbys listen on it).
const CHANNEL: &str = "dispatch_changes";
/// How long committed batches stay in `change_log` (a standby further behind reloads).
const LOG_RETENTION_SECS: i64 = 15 * 60;
/// How often the leader prunes `change_log`.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most batches a follower reads at once.
const FOLLOW_LIMIT: i64 = 64;

/// Turn a driver error into what the rest of the server acts on: the database is away
/// (retry), it refused us for good (stop with its message), or something else.
pub fn classify(e: &postgres::Error, shown: &str) -> StoreError {
    use postgres::error::SqlState;
    match e.code() {
        None => StoreError::Unavailable(format!("{shown}: {}", cause(e))),
        Some(code) => {
            let message = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string());
            let class = &code.code()[..2];
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INVALID_CATALOG_NAME
                || *code == SqlState::INSUFFICIENT_PRIVILEGE
                || *code == SqlState::INVALID_PARAMETER_VALUE && message.contains("database")
            {
                StoreError::Refused(format!("{shown}: {message}"))
            } else if class == "08" || class == "57" || class == "53" {
                // connection exceptions, operator intervention (shutdown, restart, a
                // terminated backend), insufficient resources (too many connections)
                StoreError::Unavailable(format!("{shown}: {message}"))
            } else {
                StoreError::Database(format!("{shown}: {message} (SQLSTATE {})", code.code()))
            }
        }
    }
}

/// The innermost cause of an error without a database code (refused, timed out, closed).
fn cause(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    if e.is_closed() {
        "the connection was closed".to_string()
    } else {
        text
    }
}

/// Statements prepared on the writer connection.
struct Prepared {
    fence: Statement,
    delete_dispatches: Statement,
    delete_runs_of: Statement,
    delete_payloads: Statement,
    delete_job_versions: Statement,
    delete_removed_children: Statement,
    put_job_versions: Statement,
    put_dispatches: Statement,
    put_payloads: Statement,
    set_statuses: Statement,
    put_runs: Statement,
    put_settings: Statement,
    put_removed_children: Statement,
    put_index: Statement,
    delete_acl_policies: Statement,
    put_acl_policies: Statement,
    delete_acl_tokens: Statement,
    put_acl_tokens: Statement,
    log: Statement,
    notify: Statement,
    follow: Statement,
}

impl Prepared {
    fn new(c: &mut Client) -> Result<Prepared, postgres::Error> {
        Ok(Prepared {
            fence: c.prepare("SELECT epoch FROM leader_lease WHERE id = 1 FOR SHARE")?,
            delete_dispatches: c.prepare("DELETE FROM dispatches WHERE id = ANY($1)")?,
            delete_runs_of: c.prepare("DELETE FROM task_runs WHERE dispatch_id = ANY($1)")?,
            delete_payloads: c.prepare("DELETE FROM payloads WHERE id = ANY($1)")?,
            delete_job_versions: c.prepare("DELETE FROM job_versions WHERE job_id = ANY($1)")?,
            delete_removed_children: c
                .prepare("DELETE FROM removed_children WHERE job_id = ANY($1)")?,
            put_job_versions: c.prepare(
                "INSERT INTO job_versions (job_id, version, json)
                 SELECT * FROM unnest($1::text[], $2::int8[], $3::text[])
                 ON CONFLICT (job_id, version) DO UPDATE SET json = EXCLUDED.json",
            )?,
            put_dispatches: c.prepare(
                "INSERT INTO dispatches (id, job_id, job_version, status, priority, token, meta,
                    payload_len, eval_id, submit_time, create_index, modify_index, description,
                    dispatched_by)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int2[],
                    $5::int2[], $6::text[], $7::text[], $8::int4[], $9::bytea[], $10::int8[],
                    $11::int8[], $12::int8[], $13::text[], $14::text[])
                 ON CONFLICT (id) DO UPDATE SET job_id = EXCLUDED.job_id,
                    job_version = EXCLUDED.job_version, status = EXCLUDED.status,
                    priority = EXCLUDED.priority, token = EXCLUDED.token, meta = EXCLUDED.meta,
                    payload_len = EXCLUDED.payload_len, eval_id = EXCLUDED.eval_id,
                    submit_time = EXCLUDED.submit_time, create_index = EXCLUDED.create_index,
                    modify_index = EXCLUDED.modify_index, description = EXCLUDED.description,
                    dispatched_by = EXCLUDED.dispatched_by",
            )?,
            put_payloads: c.prepare(
                "INSERT INTO payloads (id, data) SELECT * FROM unnest($1::text[], $2::bytea[])
                 ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data",
            )?,
            set_statuses: c.prepare(
                "UPDATE dispatches d SET status = u.status, modify_index = u.modify_index,
                    description = u.description
                 FROM unnest($1::text[], $2::int2[], $3::int8[], $4::text[])
                    AS u(id, status, modify_index, description)
                 WHERE d.id = u.id",
            )?,
            put_runs: c.prepare(
                "INSERT INTO task_runs (task_id, dispatch_id, grp, instance, task, attempt, state,
                    agent_id, exit_code, message, launched_at, updated_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::int8[],
                    $5::int4[], $6::int8[], $7::text[], $8::text[], $9::int4[], $10::text[],
                    $11::int8[], $12::int8[])
                 ON CONFLICT (task_id) DO UPDATE SET dispatch_id = EXCLUDED.dispatch_id,
                    grp = EXCLUDED.grp, instance = EXCLUDED.instance, task = EXCLUDED.task,
                    attempt = EXCLUDED.attempt, state = EXCLUDED.state,
                    agent_id = EXCLUDED.agent_id, exit_code = EXCLUDED.exit_code,
                    message = EXCLUDED.message, launched_at = EXCLUDED.launched_at,
                    updated_at = EXCLUDED.updated_at",
            )?,
            put_settings: c.prepare(
                "INSERT INTO settings (key, value) SELECT * FROM unnest($1::text[], $2::text[])
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            put_removed_children: c.prepare(
                "INSERT INTO removed_children (job_id, dead)
                 SELECT * FROM unnest($1::text[], $2::int8[])
                 ON CONFLICT (job_id) DO UPDATE SET dead = EXCLUDED.dead",
            )?,
            put_index: c.prepare(
                "INSERT INTO kv (key, value) VALUES ('index', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            delete_acl_policies: c.prepare("DELETE FROM acl_policies WHERE name = ANY($1)")?,
            put_acl_policies: c.prepare(
                "INSERT INTO acl_policies (name, json) SELECT * FROM unnest($1::text[], $2::text[])
                 ON CONFLICT (name) DO UPDATE SET json = EXCLUDED.json",
            )?,
            delete_acl_tokens: c.prepare("DELETE FROM acl_tokens WHERE accessor = ANY($1)")?,
            put_acl_tokens: c.prepare(
                "INSERT INTO acl_tokens (accessor, json)
                 SELECT * FROM unnest($1::text[], $2::text[])
                 ON CONFLICT (accessor) DO UPDATE SET json = EXCLUDED.json",
            )?,
            log: c.prepare(
                "INSERT INTO change_log (seq, prev, epoch, changes) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (seq) DO NOTHING",
            )?,
            notify: c.prepare("SELECT pg_notify($1, $2)")?,
            follow: c.prepare(
                "SELECT seq, prev, changes FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )?,
        })
    }
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    prepared: Prepared,
    listening: bool,
}

/// The PostgreSQL store of one server. The writer thread owns it; payload reads use a pool.
pub struct PostgresStore {
    target: PgTarget,
    conn: Option<Conn>,
    payloads: PayloadReader,
    pruned_at: Instant,
}

impl PostgresStore {
    /// Connect and bring the schema up to date. Fails with `Unavailable` when the database
    /// cannot be reached (the caller retries), `Refused` (credentials, no such database) or
    /// `NewerSchema` for good.
    pub fn open(target: PgTarget) -> Result<PostgresStore, StoreError> {
        let mut client = target.connect()?;
        schema::migrate(&mut client, target.shown())?;
        let prepared = Prepared::new(&mut client).map_err(|e| classify(&e, target.shown()))?;
        let manager =
            r2d2_postgres::PostgresConnectionManager::new(target.config().clone(), postgres::NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(manager);
        Ok(PostgresStore {
            payloads: PayloadReader::new(Arc::new(PgPayloads {
                pool,
                shown: target.shown().to_string(),
            })),
            target,
            conn: Some(Conn {
                client,
                prepared,
                listening: false,
            }),
            pruned_at: Instant::now(),
        })
    }

    /// The connection, opened again if it was lost.
    fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        if self.conn.as_mut().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let mut client = self.target.connect()?;
            let prepared = Prepared::new(&mut client).map_err(|e| self.err(&e))?;
            tracing::info!("reconnected to {}", self.target.shown());
            self.conn = Some(Conn {
                client,
                prepared,
                listening: false,
            });
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        classify(e, self.target.shown())
    }

    /// Forget a connection that failed: the next call opens a new one.
    fn failed(&mut self, e: StoreError) -> StoreError {
        if e.is_transient() {
            self.conn = None;
        }
        e
    }

    fn try_commit(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let shown = self.target.shown().to_string();
        let err = |e: postgres::Error| classify(&e, &shown);
        let log = serde_json::to_vec(batch.changes)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode the batch: {e}")))?;
        let folded = Folded::of(batch.changes);
        let conn = self.conn()?;
        let p = &conn.prepared;
        let mut tx = conn.client.transaction().map_err(err)?;
        let current: i64 = tx.query_one(&p.fence, &[]).map_err(err)?.get(0);
        if batch.epoch == 0 || current as u64 != batch.epoch {
            return Err(StoreError::Fenced {
                mine: batch.epoch,
                current: current as u64,
            });
        }
        write(&mut tx, p, &folded).map_err(err)?;
        let seq = batch.index as i64;
        tx.execute(
            &p.log,
            &[&seq, &(batch.prev as i64), &(batch.epoch as i64), &log],
        )
        .map_err(err)?;
        tx.execute(&p.notify, &[&CHANNEL, &seq.to_string()])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// Drop committed batches older than the retention (best effort, outside any batch).
    fn prune(&mut self) {
        if self.pruned_at.elapsed() < PRUNE_EVERY {
            return;
        }
        self.pruned_at = Instant::now();
        if let Ok(conn) = self.conn() {
            let pruned = conn.client.execute(
                "DELETE FROM change_log WHERE committed_at < now() - make_interval(secs => $1)
                 AND seq < (SELECT max(seq) FROM change_log)",
                &[&(LOG_RETENTION_SECS as f64)],
            );
            if let Err(e) = pruned {
                tracing::warn!("cannot prune the change log: {e}");
            }
        }
    }

    fn try_load(
        &mut self,
        on_row: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<Loaded, StoreError> {
        let shown = self.target.shown().to_string();
        let err = |e: postgres::Error| classify(&e, &shown);
        let conn = self.conn()?;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(err)?;
        let index = tx
            .query_opt("SELECT value FROM kv WHERE key = 'index'", &[])
            .map_err(err)?
            .map_or(0, |r| r.get::<_, i64>(0) as u64);
        let none: [&str; 0] = [];
        let mut rows = tx
            .query_raw(
                "SELECT job_id, version, json FROM job_versions ORDER BY job_id, version",
                none,
            )
            .map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            on_row(Row::Job(JobRow {
                id: r.get(0),
                version: r.get::<_, i64>(1) as u64,
                json: r.get(2),
            }))?;
        }
        drop(rows);
        let mut rows = tx
            .query_raw(
                "SELECT id, job_id, job_version, status, priority, token, meta, eval_id,
                    submit_time, create_index, modify_index, payload_len, description,
                    dispatched_by
                 FROM dispatches",
                none,
            )
            .map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            on_row(Row::Dispatch(dispatch_row(&r)?))?;
        }
        drop(rows);
        let mut rows = tx
            .query_raw(
                "SELECT task_id, dispatch_id, grp, instance, task, attempt, state, agent_id,
                    exit_code, message, launched_at, updated_at
                 FROM task_runs ORDER BY dispatch_id, launched_at, attempt",
                none,
            )
            .map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            on_row(Row::Run(RunRow {
                task_id: r.get(0),
                dispatch_id: r.get(1),
                group: r.get::<_, i32>(2) as u16,
                instance: r.get::<_, i64>(3) as u32,
                task: r.get::<_, i32>(4) as u16,
                attempt: r.get::<_, i64>(5) as u32,
                state: r.get(6),
                agent_id: r.get(7),
                exit_code: r.get(8),
                message: r.get(9),
                launched_at: r.get(10),
                updated_at: r.get(11),
            }))?;
        }
        drop(rows);
        let settings = tx
            .query("SELECT key, value FROM settings", &[])
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let removed_children = tx
            .query("SELECT job_id, dead FROM removed_children", &[])
            .map_err(err)?
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
            .collect();
        let mut json_column = |sql: &str| -> Result<Vec<String>, StoreError> {
            Ok(tx
                .query(sql, &[])
                .map_err(err)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        };
        let acl_policies = json_column("SELECT json FROM acl_policies ORDER BY name")?;
        let acl_tokens = json_column("SELECT json FROM acl_tokens ORDER BY accessor")?;
        tx.commit().map_err(err)?;
        Ok(Loaded {
            index,
            settings,
            removed_children,
            acl_policies,
            acl_tokens,
        })
    }

    fn try_follow(&mut self, after: u64, wait: Duration) -> Result<Vec<Logged>, StoreError> {
        let shown = self.target.shown().to_string();
        let err = |e: postgres::Error| classify(&e, &shown);
        let conn = self.conn()?;
        if !conn.listening {
            conn.client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(err)?;
            conn.listening = true;
        }
        let after_i = after as i64;
        let mut rows = conn
            .client
            .query(&conn.prepared.follow, &[&after_i, &FOLLOW_LIMIT])
            .map_err(err)?;
        if rows.is_empty() {
            {
                let mut notifications = conn.client.notifications();
                let mut waiting = notifications.timeout_iter(wait);
                let _ = waiting.next().map_err(err)?;
            }
            // Whatever else arrived meanwhile is covered by the query below.
            {
                let mut notifications = conn.client.notifications();
                let mut queued = notifications.iter();
                while queued.next().map_err(err)?.is_some() {}
            }
            rows = conn
                .client
                .query(&conn.prepared.follow, &[&after_i, &FOLLOW_LIMIT])
                .map_err(err)?;
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut expected = after;
        for r in rows {
            let index = r.get::<_, i64>(0) as u64;
            let prev = r.get::<_, i64>(1) as u64;
            if prev != expected {
                return Err(StoreError::LogGap(after));
            }
            let bytes: &[u8] = r.get(2);
            let changes = serde_json::from_slice(bytes).map_err(|e| {
                StoreError::Corrupt(format!("change log entry {index} does not decode: {e}"))
            })?;
            out.push(Logged {
                index,
                prev,
                changes,
            });
            expected = index;
        }
        Ok(out)
    }
}

impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.target.shown().to_string()
    }

    /// One `REPEATABLE READ` snapshot: rows, the index and the settings all as of the same
    /// commit, so a standby can follow the change log from exactly that index.
    fn load(
        &mut self,
        on_row: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<Loaded, StoreError> {
        let loaded = self.try_load(on_row);
        loaded.map_err(|e| self.failed(e))
    }

    fn commit(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.try_commit(batch);
        if result.is_ok() {
            tracing::trace!(
                changes = batch.changes.len(),
                micros = started.elapsed().as_micros() as u64,
                "committed to PostgreSQL"
            );
            self.prune();
        }
        result.map_err(|e| self.failed(e))
    }

    fn payload_reader(&self) -> PayloadReader {
        self.payloads.clone()
    }

    fn change_log(&mut self) -> Option<&mut dyn ChangeLog> {
        Some(self)
    }
}

impl ChangeLog for PostgresStore {
    fn batches_after(&mut self, after: u64, wait: Duration) -> Result<Vec<Logged>, StoreError> {
        let result = self.try_follow(after, wait);
        result.map_err(|e| self.failed(e))
    }
}

/// Write a folded batch: deletes, then inserts and updates, one statement per table.
fn write(
    tx: &mut postgres::Transaction<'_>,
    p: &Prepared,
    f: &Folded<'_>,
) -> Result<(), postgres::Error> {
    if !f.deleted_dispatches.is_empty() {
        tx.execute(&p.delete_dispatches, &[&f.deleted_dispatches])?;
        tx.execute(&p.delete_runs_of, &[&f.deleted_dispatches])?;
        tx.execute(&p.delete_payloads, &[&f.deleted_dispatches])?;
    }
    if !f.deleted_jobs.is_empty() {
        tx.execute(&p.delete_job_versions, &[&f.deleted_jobs])?;
        tx.execute(&p.delete_removed_children, &[&f.deleted_jobs])?;
    }
    if !f.job_versions.is_empty() {
        let ids: Vec<&str> = f.job_versions.keys().map(|(id, _)| *id).collect();
        let versions: Vec<i64> = f.job_versions.keys().map(|(_, v)| *v as i64).collect();
        let json: Vec<&str> = f.job_versions.values().copied().collect();
        tx.execute(&p.put_job_versions, &[&ids, &versions, &json])?;
    }
    if !f.dispatches.is_empty() {
        put_dispatches(tx, p, f.dispatches.values())?;
    }
    if !f.payloads.is_empty() {
        let ids: Vec<&str> = f.payloads.keys().copied().collect();
        let data: Vec<&[u8]> = f.payloads.values().copied().collect();
        tx.execute(&p.put_payloads, &[&ids, &data])?;
    }
    if !f.statuses.is_empty() {
        let ids: Vec<&str> = f.statuses.keys().copied().collect();
        let statuses: Vec<i16> = f.statuses.values().map(|s| status_code(s.status)).collect();
        let indexes: Vec<i64> = f.statuses.values().map(|s| s.modify_index as i64).collect();
        let descriptions: Vec<Option<&str>> = f.statuses.values().map(|s| s.description).collect();
        tx.execute(&p.set_statuses, &[&ids, &statuses, &indexes, &descriptions])?;
    }
    if !f.runs.is_empty() {
        put_runs(tx, p, f.runs.values().copied())?;
    }
    if !f.settings.is_empty() {
        let keys: Vec<&str> = f.settings.keys().copied().collect();
        let values: Vec<&str> = f.settings.values().copied().collect();
        tx.execute(&p.put_settings, &[&keys, &values])?;
    }
    if !f.removed_children.is_empty() {
        let ids: Vec<&str> = f.removed_children.keys().copied().collect();
        let dead: Vec<i64> = f.removed_children.values().map(|d| *d as i64).collect();
        tx.execute(&p.put_removed_children, &[&ids, &dead])?;
    }
    if !f.deleted_acl_policies.is_empty() {
        tx.execute(&p.delete_acl_policies, &[&f.deleted_acl_policies])?;
    }
    if !f.acl_policies.is_empty() {
        let names: Vec<&str> = f.acl_policies.keys().copied().collect();
        let json: Vec<&str> = f.acl_policies.values().copied().collect();
        tx.execute(&p.put_acl_policies, &[&names, &json])?;
    }
    if !f.deleted_acl_tokens.is_empty() {
        tx.execute(&p.delete_acl_tokens, &[&f.deleted_acl_tokens])?;
    }
    if !f.acl_tokens.is_empty() {
        let accessors: Vec<&str> = f.acl_tokens.keys().copied().collect();
        let json: Vec<&str> = f.acl_tokens.values().copied().collect();
        tx.execute(&p.put_acl_tokens, &[&accessors, &json])?;
    }
    if let Some(index) = f.index {
        tx.execute(&p.put_index, &[&(index as i64)])?;
    }
    Ok(())
}

fn put_dispatches<'a>(
    tx: &mut postgres::Transaction<'_>,
    p: &Prepared,
    rows: impl ExactSizeIterator<Item = &'a DispatchRow>,
) -> Result<(), postgres::Error> {
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut job = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut priority = Vec::with_capacity(n);
    let mut token = Vec::with_capacity(n);
    let mut meta = Vec::with_capacity(n);
    let mut payload_len = Vec::with_capacity(n);
    let mut eval = Vec::with_capacity(n);
    let mut submit = Vec::with_capacity(n);
    let mut create = Vec::with_capacity(n);
    let mut modify = Vec::with_capacity(n);
    let mut description = Vec::with_capacity(n);
    let mut dispatched_by = Vec::with_capacity(n);
    for d in rows {
        id.push(d.id.as_str());
        job.push(d.job_id.as_str());
        version.push(d.job_version as i64);
        status.push(status_code(d.status));
        priority.push(i16::from(d.priority));
        token.push(d.idempotency_token.as_deref());
        meta.push(d.meta_json.as_str());
        payload_len.push(d.payload_len as i32);
        eval.push(&d.eval_id[..]);
        submit.push(d.submit_time);
        create.push(d.create_index as i64);
        modify.push(d.modify_index as i64);
        description.push(d.description.as_deref());
        dispatched_by.push(d.dispatched_by.as_deref());
    }
    tx.execute(
        &p.put_dispatches,
        &[
            &id,
            &job,
            &version,
            &status,
            &priority,
            &token,
            &meta,
            &payload_len,
            &eval,
            &submit,
            &create,
            &modify,
            &description,
            &dispatched_by,
        ],
    )?;
    Ok(())
}

fn put_runs<'a>(
    tx: &mut postgres::Transaction<'_>,
    p: &Prepared,
    rows: impl ExactSizeIterator<Item = &'a RunRow>,
) -> Result<(), postgres::Error> {
    let n = rows.len();
    let mut task_id = Vec::with_capacity(n);
    let mut dispatch = Vec::with_capacity(n);
    let mut group = Vec::with_capacity(n);
    let mut instance = Vec::with_capacity(n);
    let mut task = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut state = Vec::with_capacity(n);
    let mut agent = Vec::with_capacity(n);
    let mut exit = Vec::with_capacity(n);
    let mut message = Vec::with_capacity(n);
    let mut launched = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    for r in rows {
        task_id.push(r.task_id.as_str());
        dispatch.push(r.dispatch_id.as_str());
        group.push(i32::from(r.group));
        instance.push(i64::from(r.instance));
        task.push(i32::from(r.task));
        attempt.push(i64::from(r.attempt));
        state.push(r.state.as_str());
        agent.push(r.agent_id.as_str());
        exit.push(r.exit_code);
        message.push(r.message.as_deref());
        launched.push(r.launched_at);
        updated.push(r.updated_at);
    }
    tx.execute(
        &p.put_runs,
        &[
            &task_id, &dispatch, &group, &instance, &task, &attempt, &state, &agent, &exit,
            &message, &launched, &updated,
        ],
    )?;
    Ok(())
}

fn dispatch_row(r: &postgres::Row) -> Result<DispatchRow, StoreError> {
    let eval: &[u8] = r.get(7);
    Ok(DispatchRow {
        id: r.get(0),
        job_id: r.get(1),
        job_version: r.get::<_, i64>(2) as u64,
        status: status_from_code(r.get(3))?,
        priority: r.get::<_, i16>(4).clamp(0, 255) as u8,
        idempotency_token: r.get(5),
        meta_json: r.get(6),
        payload: None,
        payload_len: r.get::<_, i32>(11).max(0) as u32,
        eval_id: eval
            .try_into()
            .map_err(|_| StoreError::Corrupt("eval_id is not 16 bytes".into()))?,
        submit_time: r.get(8),
        create_index: r.get::<_, i64>(9) as u64,
        modify_index: r.get::<_, i64>(10) as u64,
        description: r.get(12),
        dispatched_by: r.get(13),
    })
}

fn status_code(s: DispatchStatus) -> i16 {
    match s {
        DispatchStatus::Pending => 0,
        DispatchStatus::Running => 1,
        DispatchStatus::Complete => 2,
        DispatchStatus::Failed => 3,
        DispatchStatus::Stopped => 4,
    }
}

fn status_from_code(code: i16) -> Result<DispatchStatus, StoreError> {
    Ok(match code {
        0 => DispatchStatus::Pending,
        1 => DispatchStatus::Running,
        2 => DispatchStatus::Complete,
        3 => DispatchStatus::Failed,
        4 => DispatchStatus::Stopped,
        other => return Err(StoreError::Corrupt(format!("dispatch status {other}"))),
    })
}

/// Payload reads on a small pool, from blocking threads.
struct PgPayloads {
    pool: r2d2::Pool<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>,
    shown: String,
}

impl ReadPayload for PgPayloads {
    fn payload(&self, dispatch_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.shown)))?;
        let row = conn
            .query_opt("SELECT data FROM payloads WHERE id = $1", &[&dispatch_id])
            .map_err(|e| classify(&e, &self.shown))?;
        Ok(row.map(|r| r.get(0)))
    }
}
