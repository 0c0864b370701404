//! The PostgreSQL schema and its versioned migrations, run by every server at start.
//!
//! `dispatch_schema` lists the migrations applied. At start a server takes a transaction-level
//! advisory lock (servers starting together migrate one after the other), refuses a database
//! whose schema is newer than it knows (`StoreError::NewerSchema`: an older binary must not
//! write rows it does not understand), and applies the missing migrations in order, each in
//! the same transaction as its row in `dispatch_schema`. A migration is never edited once
//! released: a change is a new entry at the end.

use postgres::Client;

use super::{classify, StoreError};

/// Migrations: (version, name, SQL). Versions are 1, 2, 3, ... in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial schema", INITIAL),
    (2, "ACL policies and tokens, dispatches.dispatched_by", ACL),
    (3, "the servers' shared secret", PEER_SECRET),
];

/// The newest schema this binary knows.
pub const VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Arbitrary constant: the advisory lock migrations take ("DSPM").
const MIGRATION_LOCK: i64 = 0x4453_504d;

const INITIAL: &str = "
CREATE TABLE kv (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE job_versions (
    job_id text NOT NULL, version bigint NOT NULL, json text NOT NULL,
    PRIMARY KEY (job_id, version));
CREATE TABLE dispatches (
    id text PRIMARY KEY, job_id text NOT NULL, job_version bigint NOT NULL,
    status smallint NOT NULL, priority smallint NOT NULL, token text,
    meta text NOT NULL, payload_len integer NOT NULL, eval_id bytea NOT NULL,
    submit_time bigint NOT NULL, create_index bigint NOT NULL, modify_index bigint NOT NULL,
    description text);
-- Payloads live apart from the small dispatch rows (read on demand, never loaded).
CREATE TABLE payloads (id text PRIMARY KEY, data bytea NOT NULL);
ALTER TABLE payloads ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE task_runs (
    task_id text PRIMARY KEY, dispatch_id text NOT NULL, grp integer NOT NULL,
    instance bigint NOT NULL, task integer NOT NULL, attempt bigint NOT NULL,
    state text NOT NULL, agent_id text NOT NULL, exit_code integer, message text,
    launched_at bigint NOT NULL, updated_at bigint NOT NULL);
CREATE INDEX task_runs_by_dispatch ON task_runs (dispatch_id);
-- Cluster settings that must outlive the leader (the Mesos FrameworkID).
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE removed_children (job_id text PRIMARY KEY, dead bigint NOT NULL);
-- Leadership: one row. `epoch` grows by one at every election and fences every commit;
-- `backend_pid` is the leader's lease session, so a standby sees at once when it is gone.
CREATE TABLE leader_lease (
    id integer PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    holder text, address text, url text, backend_pid integer,
    expires_at timestamptz NOT NULL,
    elected_at timestamptz);
INSERT INTO leader_lease (id, epoch, expires_at) VALUES (1, 0, '-infinity');
-- Every server, as last seen (/v1/status/peers).
CREATE TABLE servers (
    id text PRIMARY KEY, address text NOT NULL, url text NOT NULL,
    seen_at timestamptz NOT NULL);
-- The batches the leader committed (seq = the index after the batch; prev = the one before),
-- which standbys replay to stay warm. Pruned after a while: a standby further behind
-- reloads everything.
CREATE TABLE change_log (
    seq bigint PRIMARY KEY, prev bigint NOT NULL, epoch bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(), changes bytea NOT NULL);
ALTER TABLE change_log ALTER COLUMN changes SET STORAGE EXTERNAL;
";

const ACL: &str = "
-- ACL policies and tokens, one JSON document each (tokens hold only their secret's hash).
CREATE TABLE acl_policies (name text PRIMARY KEY, json text NOT NULL);
CREATE TABLE acl_tokens (accessor text PRIMARY KEY, json text NOT NULL);
-- The accessor ID of the ACL token that made the dispatch (never its secret).
ALTER TABLE dispatches ADD COLUMN dispatched_by text;
";

const PEER_SECRET: &str = "
-- A secret only the servers know (whoever can read this database is one of them): a
-- standby proves with it that a forwarded request's client address is its own word.
-- gen_random_uuid() draws from the server's strong random source (PostgreSQL 13+).
CREATE TABLE peer_secret (id integer PRIMARY KEY CHECK (id = 1), secret text NOT NULL);
INSERT INTO peer_secret (id, secret)
    VALUES (1, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
";

/// Bring the schema up to `VERSION`, or refuse a newer one.
pub fn migrate(client: &mut Client, shown: &str) -> Result<(), StoreError> {
    let err = |e: postgres::Error| classify(&e, shown);
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS dispatch_schema (
            version integer PRIMARY KEY, name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(err)?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM dispatch_schema", &[])
        .map_err(err)?
        .get(0);
    if found > VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: VERSION,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        tracing::info!(version, name, "migrating the PostgreSQL schema");
        tx.batch_execute(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO dispatch_schema (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)?;
    Ok(())
}
