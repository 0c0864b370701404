//! Which server leads, when several share one store (`-store postgres://...`).
//!
//! One thread per server, on a connection of its own (`store::Lease`): it says the server is
//! alive (`/v1/status/peers`), tries to take the lease while it stands by, and renews it
//! every quarter of the lease while it leads. Won: the state writer catches up with
//! everything committed before and leads with the new fencing epoch (`StateHandle::
//! lead_blocking`); then the composition root starts the scheduler and the cluster backend
//! (it waits for `Role::leading`).
//!
//! Lost (another server was elected, or a commit was fenced): the process exits (code 75), as
//! Marathon and Metronome do on losing leadership. The scheduler and the backend's subscription are not torn down in place; a
//! supervisor (systemd `Restart=always`) starts the server again as a standby. Exiting is
//! about liveness only: safety comes from the fencing epoch, which refuses every commit of a
//! deposed leader whatever it still believes (a paused process that resumes, a partition).
//!
//! While the database cannot be reached the leader keeps trying: its writes are answered 503
//! (nothing is acknowledged that is not committed). When it is back, the renewal tells: the
//! epoch is still ours (nobody was elected meanwhile: go on, the same epoch) or not (exit).
//! A standby takes the lease once it has expired, or at once when the leader's lease session
//! is gone (the leader died, or its connection did; a database restart ends every session,
//! so then whoever reaches the database first leads).

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::state::StateHandle;
use crate::store::{Lease, Peer, StoreError};

/// How long a leader that stopped renewing keeps the lead (`-store-lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Exit code of a server that lost the lead.
pub const EXIT_DEPOSED: i32 = 75;

/// This server's view of the cluster of servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// This server leads (runs the scheduler and the backend).
    pub leading: bool,
    /// The server that leads, as the store says (`None`: none right now, an election is due).
    pub leader: Option<Peer>,
    /// Every server seen recently, this one included.
    pub peers: Vec<Peer>,
}

/// Start the leadership thread. `fenced` is told by the state writer when a commit was
/// refused because another server was elected.
pub fn spawn(
    lease: Box<dyn Lease>,
    state: StateHandle,
    me: Peer,
    lease_for: Duration,
    fenced: Receiver<()>,
) -> std::io::Result<watch::Receiver<Role>> {
    let (tx, rx) = watch::channel(Role {
        leading: false,
        leader: None,
        peers: vec![me.clone()],
    });
    crate::metrics::leader(false);
    let mut looped = Loop {
        lease,
        state,
        me,
        lease_for,
        fenced,
        role: tx,
        epoch: None,
        renewed: Instant::now(),
        last_error: None,
    };
    std::thread::Builder::new()
        .name("leadership".into())
        .spawn(move || looped.run())?;
    Ok(rx)
}

struct Loop {
    lease: Box<dyn Lease>,
    state: StateHandle,
    me: Peer,
    lease_for: Duration,
    fenced: Receiver<()>,
    role: watch::Sender<Role>,
    /// The epoch this server leads with.
    epoch: Option<u64>,
    /// When the lease was last renewed.
    renewed: Instant,
    last_error: Option<String>,
}

impl Loop {
    fn run(&mut self) {
        let tick = (self.lease_for / 4).max(Duration::from_millis(100));
        loop {
            if self.epoch.is_some() && self.fenced.try_recv().is_ok() {
                self.deposed("a commit was refused: another server was elected");
            }
            let peers = self.lease.heartbeat(&self.me, self.lease_for * 3);
            match self.epoch {
                None => self.stand_by(),
                Some(epoch) => self.hold(epoch),
            }
            let leader = self.lease.leader();
            match (peers, leader) {
                (Ok(peers), Ok(leader)) => {
                    self.last_error = None;
                    let role = Role {
                        leading: self.epoch.is_some(),
                        leader: leader.map(|l| l.peer),
                        peers,
                    };
                    self.role.send_if_modified(|r| {
                        let changed = *r != role;
                        *r = role;
                        changed
                    });
                }
                (Err(e), _) | (_, Err(e)) => self.log(&e),
            }
            std::thread::sleep(tick);
        }
    }

    /// Take the lease if nobody holds it; lead once the state has caught up.
    fn stand_by(&mut self) {
        match self.lease.try_take(&self.me, self.lease_for) {
            Ok(Some(epoch)) => {
                self.renewed = Instant::now();
                match self.state.lead_blocking(epoch) {
                    Ok(index) => {
                        tracing::info!(epoch, index, "elected leader");
                        self.epoch = Some(epoch);
                        // the role first: the server sets the gauge from it once metrics run
                        self.role.send_modify(|r| r.leading = true);
                        crate::metrics::elected();
                        crate::metrics::leader(true);
                    }
                    Err(e) => {
                        tracing::error!(
                            epoch,
                            "elected, but cannot catch up ({e}); giving the lead up"
                        );
                        let _ = self.lease.release(epoch);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => self.log(&e),
        }
    }

    /// Renew the lease; lost, the process ends.
    fn hold(&mut self, epoch: u64) {
        match self.lease.renew(epoch, self.lease_for) {
            Ok(true) => {
                if self.renewed.elapsed() >= self.lease_for {
                    tracing::info!(epoch, "the store is back and this server still leads");
                }
                self.renewed = Instant::now();
            }
            Ok(false) => self.deposed("another server was elected"),
            Err(e) => self.log(&e),
        }
    }

    fn deposed(&mut self, why: &str) -> ! {
        tracing::error!(
            "lost the lead: {why}; exiting (code {EXIT_DEPOSED}) so that the scheduler and \
             the cluster backend stop here; restarted, this server stands by"
        );
        crate::metrics::leader(false);
        std::process::exit(EXIT_DEPOSED);
    }

    fn log(&mut self, e: &StoreError) {
        let text = e.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!("leadership: {text}; retrying");
            self.last_error = Some(text);
        }
    }
}
