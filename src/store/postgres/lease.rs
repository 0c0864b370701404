//! Leadership in PostgreSQL: the one row of `leader_lease`, on a connection of its own.
//!
//! The leader renews `expires_at = now() + lease` (the database's clock, so servers' clocks
//! do not matter) and records its lease session's `backend_pid`. A standby takes over when
//! the lease has expired (a paused or cut-off leader) or at once when the leader's lease
//! session is gone from `pg_stat_activity` (the leader process died, or its connection
//! dropped): it bumps `epoch` in the same `FOR UPDATE` transaction. Every commit of a leader
//! checks its epoch under `FOR SHARE` on that row (`super::PostgresStore::commit`), which is
//! what makes a deposed leader harmless, whatever it still believes.
//!
//! The lease session must reach PostgreSQL directly (not through a transaction-pooling
//! proxy): its backend PID is how standbys see that it is gone.

use std::time::Duration;

use postgres::Client;

use super::super::{LeaderRecord, Lease, Peer, StoreError};
use super::{classify, PgTarget};

pub struct PgLease {
    target: PgTarget,
    client: Option<Client>,
}

impl PgLease {
    pub fn new(target: PgTarget) -> PgLease {
        PgLease {
            target,
            client: None,
        }
    }

    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_mut().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            self.client = Some(self.target.connect()?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Run `f` on the connection; a connection error drops it (the next call reconnects).
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let shown = self.target.shown().to_string();
        let result = f(self.client()?).map_err(|e| classify(&e, &shown));
        if let Err(e) = &result {
            if e.is_transient() {
                self.client = None;
            }
        }
        result
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Lease for PgLease {
    fn try_take(&mut self, me: &Peer, lease: Duration) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let row = tx.query_one(
                "SELECT holder, expires_at <= now(),
                    backend_pid IS NULL
                    OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = backend_pid)
                 FROM leader_lease WHERE id = 1 FOR UPDATE",
                &[],
            )?;
            let holder: Option<String> = row.get(0);
            let expired: bool = row.get(1);
            let session_gone: bool = row.get(2);
            let ours = holder.as_deref() == Some(me.id.as_str());
            if !(holder.is_none() || expired || session_gone || ours) {
                tx.rollback()?;
                return Ok(None);
            }
            let epoch: i64 = tx
                .query_one(
                    "UPDATE leader_lease SET epoch = epoch + 1, holder = $1, address = $2,
                        url = $3, backend_pid = pg_backend_pid(),
                        expires_at = now() + make_interval(secs => $4), elected_at = now()
                     WHERE id = 1 RETURNING epoch",
                    &[&me.id, &me.address, &me.url, &secs(lease)],
                )?
                .get(0);
            tx.commit()?;
            Ok(Some(epoch as u64))
        })
    }

    fn renew(&mut self, epoch: u64, lease: Duration) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE leader_lease SET expires_at = now() + make_interval(secs => $2),
                    backend_pid = pg_backend_pid()
                 WHERE id = 1 AND epoch = $1",
                &[&(epoch as i64), &secs(lease)],
            )?;
            Ok(n == 1)
        })
    }

    fn release(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE leader_lease SET expires_at = '-infinity', backend_pid = NULL
                 WHERE id = 1 AND epoch = $1",
                &[&(epoch as i64)],
            )?;
            Ok(())
        })
    }

    fn leader(&mut self) -> Result<Option<LeaderRecord>, StoreError> {
        self.with(|c| {
            let row = c.query_one(
                "SELECT holder, address, url, epoch, expires_at > now()
                    AND backend_pid IS NOT NULL
                    AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = backend_pid)
                 FROM leader_lease WHERE id = 1",
                &[],
            )?;
            let live: bool = row.get(4);
            let holder: Option<String> = row.get(0);
            Ok(match (live, holder) {
                (true, Some(id)) => Some(LeaderRecord {
                    peer: Peer {
                        id,
                        address: row.get::<_, Option<String>>(1).unwrap_or_default(),
                        url: row.get::<_, Option<String>>(2).unwrap_or_default(),
                    },
                    epoch: row.get::<_, i64>(3) as u64,
                }),
                _ => None,
            })
        })
    }

    fn peer_secret(&mut self) -> Result<String, StoreError> {
        self.with(|c| {
            Ok(
                c.query_one("SELECT secret FROM peer_secret WHERE id = 1", &[])?
                    .get(0),
            )
        })
    }

    fn heartbeat(&mut self, me: &Peer, within: Duration) -> Result<Vec<Peer>, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO servers (id, address, url, seen_at) VALUES ($1, $2, $3, now())
                 ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address,
                    url = EXCLUDED.url, seen_at = now()",
                &[&me.id, &me.address, &me.url],
            )?;
            c.execute(
                "DELETE FROM servers WHERE seen_at < now() - interval '1 day'",
                &[],
            )?;
            let rows = c.query(
                "SELECT id, address, url FROM servers
                 WHERE seen_at > now() - make_interval(secs => $1) ORDER BY address, id",
                &[&secs(within)],
            )?;
            Ok(rows
                .iter()
                .map(|r| Peer {
                    id: r.get(0),
                    address: r.get(1),
                    url: r.get(2),
                })
                .collect())
        })
    }
}
