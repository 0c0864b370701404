//! Running the service, and the composition root: open the state (replaying the store), start
//! one backend (the local runner, or the Mesos framework with what it stored: FrameworkID,
//! agent endpoints, and a callback that persists new ones through the writer), the
//! scheduler, garbage collection and the metrics refresh, all on one `Clock`; then serve the
//! API and stop cleanly on SIGINT/SIGTERM. This and the configuration are the only places
//! that choose a backend; everything else gets its `cluster::ClusterView`.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::api::backpressure::Backpressure;
use crate::api::{self, AppState, ClusterSlot, Security};
use crate::clock::Clock;
use crate::cluster::fetch_urls::FetchKey;
use crate::listener::{self as http_listener, ConnLimits, ServerTls};
use crate::model::drivers::DriverPolicy;
use std::sync::Arc;

use crate::cluster::mesos::{self, MesosDirectory, MesosSettings, PersistSetting};
use crate::cluster::{local, ClusterHandle};
use crate::gc::{self, GcPolicy};
use crate::leadership::{self, Role};
use crate::scheduler;
use crate::state::Command;
use crate::state::{Start, StateHandle};
use crate::store::{Lease, Peer, PgLease, PgTarget, PostgresStore};

/// How the server is started (`dispatch server ...`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the HTTP API.
    pub bind: SocketAddr,
    /// Where the store lives; everything acknowledged is here. Task sandboxes of the local
    /// runner live in `<data_dir>/sandboxes`.
    pub data_dir: PathBuf,
    pub local: LocalOptions,
    /// DogStatsD address (`host:port`, UDP) to send metrics to, besides `/metrics`.
    pub statsd_addr: Option<String>,
    /// Run tasks on Mesos instead of the local runner. An empty `advertise_url` means
    /// `http://<listen address>`.
    pub mesos: Option<MesosSettings>,
    /// When dead children are removed.
    pub gc: GcPolicy,
    /// A second listener serving only sandbox files (what Mesos agents fetch); the API stays
    /// on `bind`. With Mesos and no `advertise_url`, agents are pointed at this one.
    pub fetch_bind: Option<SocketAddr>,
    /// HTTPS on the API (`None`: plain HTTP).
    pub tls: Option<ServerTls>,
    /// Limits on connections.
    pub conn_limits: ConnLimits,
    /// Task drivers jobs may use.
    pub drivers: DriverPolicy,
    /// Caps on dispatches.
    pub backpressure: Backpressure,
    /// The API listens beyond loopback with ACLs off, on purpose (`-acl-enabled=false`):
    /// said in the log and on `/v1/agent/self`.
    pub open: bool,
    /// Every API call needs an ACL token.
    pub acl: bool,
    /// The management token's secret from `-acl-bootstrap-token-file`.
    pub acl_bootstrap_secret: Option<String>,
    /// New secrets from the bootstrap token file, read again on SIGHUP.
    pub acl_bootstrap_reload: Option<tokio::sync::watch::Receiver<Option<String>>>,
    /// The one clock (the system's; in-process tests give a manual one).
    pub clock: Clock,
    /// New framework settings from a configuration reload (name, roles, failover timeout,
    /// capabilities), applied with UPDATE_FRAMEWORK.
    pub mesos_updates: Option<tokio::sync::watch::Receiver<MesosSettings>>,
    /// A PostgreSQL store shared with other servers (one leads); `None`: SQLite in
    /// `data_dir`.
    pub store: Option<SharedStore>,
    /// Base URL other servers reach this one at (standbys forward writes to the leader's);
    /// `None`: `http://<listen address>`.
    pub advertise: Option<String>,
    /// The web UI (`/ui/`): on or off, compiled-in templates or a directory.
    pub ui: crate::ui::UiConfig,
}

/// A store several servers share.
#[derive(Debug, Clone)]
pub struct SharedStore {
    pub target: PgTarget,
    /// How long a leader that stopped renewing keeps the lead.
    pub lease: std::time::Duration,
}

/// Overrides for the embedded local runner (`None` = detect this machine).
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    pub cpus: Option<f64>,
    pub mem_mb: Option<f64>,
    pub disk_mb: Option<f64>,
    pub gpus: Option<f64>,
    /// Prepended to every task's PATH.
    pub task_path: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the data dir {dir}: {source}")]
    State {
        dir: PathBuf,
        source: crate::state::StartError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server stopped: {0}")]
    Serve(std::io::Error),
    #[error("cannot start the local runner: {0}")]
    Runner(std::io::Error),
    #[error("cannot start the web UI: {0}")]
    Ui(String),
    #[error("cannot start the Mesos backend: {0}")]
    Mesos(String),
    #[error("cannot start metrics: {0}")]
    Metrics(String),
    #[error("cannot open the store: {0}")]
    Store(String),
    #[error("cannot build the client that forwards writes to the leader: {0}")]
    ForwardClient(String),
    #[error("cannot read or make the sandbox URL key in {dir}: {source}")]
    FetchKey {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot bootstrap ACLs from the bootstrap token file: {0}")]
    AclBootstrap(crate::state::StateError),
}

fn local_config(options: &LocalOptions, sandbox_root: PathBuf, clock: Clock) -> local::LocalConfig {
    let mut config = local::LocalConfig::detect(sandbox_root);
    config.clock = clock;
    if let Some(v) = options.cpus {
        config.cpus = v;
    }
    if let Some(v) = options.mem_mb {
        config.mem_mb = v;
    }
    if let Some(v) = options.disk_mb {
        config.disk_mb = v;
    }
    if let Some(v) = options.gpus {
        config.gpus = v;
    }
    config.task_path = options.task_path.clone();
    tracing::info!(
        cpus = config.cpus,
        mem_mb = config.mem_mb,
        disk_mb = config.disk_mb,
        gpus = config.gpus,
        "local runner resources"
    );
    config
}

/// Start the server and run until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.bind,
            source,
        })?;
    serve(listener, config, shutdown).await
}

/// Serve on an already bound listener (tests bind `127.0.0.1:0`).
///
/// The API answers from the first moment: `503` with `Retry-After` (and a "loading"
/// `/v1/agent/health`) while the state loads from the data dir, then everything.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let started = std::time::Instant::now();
    let clock = config.clock.clone();
    let advertise = listener.local_addr().map_err(ServerError::Serve)?;
    let node_name = hostname();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // Listen at once: every request is answered 503 with Retry-After until the state is
    // loaded (or, on a shared store, until the database answers).
    let loading_what = match &config.store {
        None => format!("reading {}", config.data_dir.display()),
        Some(shared) => format!("connecting to {}", shared.target.shown()),
    };
    let (api_ready, starting) = api::starting_router(&loading_what);
    let serving = tokio::spawn(http_listener::serve(
        listener,
        starting,
        config.tls.clone(),
        config.conn_limits.clone(),
        shutdown,
    ));
    tracing::info!(
        "Dispatch API bound to {scheme}://{advertise}: answering 503 until the state is loaded"
    );
    let opened = open_state(&config, &clock, scheme, advertise, &node_name).await;
    let (state, role, peer_secret) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            serving.abort();
            return Err(e);
        }
    };
    {
        let s = state.read();
        tracing::info!(
            jobs = s.job_count(),
            dispatches = s.dispatch_count(),
            index = s.index(),
            millis = started.elapsed().as_millis() as u64,
            "state loaded from {}",
            config.store.as_ref().map_or_else(
                || config.data_dir.display().to_string(),
                |s| s.target.shown().to_string()
            )
        );
    }
    crate::metrics::start(config.statsd_addr.as_deref()).map_err(ServerError::Metrics)?;
    crate::metrics::leader(role.as_ref().is_none_or(|r| r.borrow().leading));
    spawn_metrics_refresh(state.clone());
    let fetch_listener = match config.fetch_bind {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })?,
        ),
        None => None,
    };
    let fetch_addr = match &fetch_listener {
        Some(l) => Some(l.local_addr().map_err(ServerError::Serve)?),
        None => None,
    };
    let fetch_key =
        FetchKey::load_or_create(&config.data_dir).map_err(|source| ServerError::FetchKey {
            dir: config.data_dir.clone(),
            source,
        })?;
    let backend = Backend {
        state: state.clone(),
        config: config.clone(),
        clock: clock.clone(),
        callback: match fetch_addr {
            Some(addr) => advertise_url("http", addr, &node_name),
            None => advertise_url(scheme, advertise, &node_name),
        },
        fetch_key: fetch_key.clone(),
        slot: ClusterSlot::default(),
    };
    let slot = backend.slot.clone();
    match &role {
        None => {
            if let Some(secret) = &config.acl_bootstrap_secret {
                bootstrap_from_file(&state, secret).await?;
            }
            backend.start()?
        }
        Some(role) => {
            // Only the leader runs the scheduler and the backend (a standby subscribing to
            // Mesos with the stored FrameworkID would take the framework over), and only the
            // leader writes: the bootstrap token file is applied once this server is elected.
            let mut role = role.clone();
            let bootstrap = config.acl_bootstrap_secret.clone();
            let state = state.clone();
            tokio::spawn(async move {
                if role.wait_for(|r| r.leading).await.is_err() {
                    return;
                }
                if let Some(secret) = bootstrap {
                    if let Err(e) = bootstrap_from_file(&state, &secret).await {
                        tracing::error!("{e}");
                    }
                }
                if let Err(e) = backend.start() {
                    tracing::error!("elected, but the backend does not start: {e}");
                    std::process::exit(70);
                }
            });
        }
    }
    if let Some(mut reload) = config.acl_bootstrap_reload.clone() {
        let state = state.clone();
        let role = role.clone();
        tokio::spawn(async move {
            while reload.changed().await.is_ok() {
                let secret = reload.borrow_and_update().clone();
                let Some(secret) = secret else { continue };
                if role.as_ref().is_some_and(|r| !r.borrow().leading) {
                    tracing::info!(
                        "bootstrap token file read again; this server stands by, so the leader's \
                         file rules until this one is elected"
                    );
                    continue;
                }
                if let Err(e) = bootstrap_from_file(&state, &secret).await {
                    tracing::error!("{e}");
                }
            }
        });
    }
    let security = Security {
        drivers: config.drivers.clone(),
        backpressure: config.backpressure.clone(),
        tls: config.tls.as_ref().map(|t| t.verifies_clients()),
        open: config.open,
        acl: config.acl,
        limiter: config
            .backpressure
            .dispatch_rate
            .map(|rate| Arc::new(crate::api::backpressure::RateLimiter::new(rate))),
        fetch_key: Some(fetch_key),
    };
    let app = AppState {
        state,
        clock: clock.clone(),
        advertise,
        node_name,
        cluster: slot,
        role,
        forwarding: Arc::new(
            api::Forwarding::new(config.tls.clone(), peer_secret)
                .map_err(ServerError::ForwardClient)?,
        ),
        security: Arc::new(security),
    };
    if let Some(listener) = fetch_listener {
        let files = api::sandbox_router(app.clone());
        let limits = config.conn_limits.clone();
        tokio::spawn(async move {
            let never = std::future::pending();
            if let Err(e) = http_listener::serve(listener, files, None, limits, never).await {
                tracing::error!("sandbox file listener stopped: {e}");
            }
        });
    }
    if config.open {
        tracing::warn!(
            "THE API IS OPEN: it listens on {advertise} with ACLs off (-acl-enabled=false): \
             anyone who can reach this address can register and run jobs on this server"
        );
    }
    tracing::info!(
        drivers = config.drivers.allowed().join(","),
        "task drivers allowed"
    );
    // On a standby, the UI's forms (writes) and cluster pages go to the leader, as the API's
    // writes do.
    let ui = crate::ui::router(app.clone(), &config.ui)
        .map_err(|e| ServerError::Ui(e.to_string()))?
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::forward_to_leader,
        ));
    api_ready.send_replace(Some(ui.merge(api::router(app))));
    // Tests and scripts wait for this line: from here on the whole API answers.
    tracing::info!("Dispatch API listening on {scheme}://{advertise}");
    crate::systemd::ready(&format!("API listening on {scheme}://{advertise}"));
    serving
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?
        .map_err(ServerError::Serve)
}

/// Open the state: the SQLite store in the data dir (on a blocking thread: it reads
/// everything), or the shared PostgreSQL store (retrying until it answers) with this server
/// in the election.
async fn open_state(
    config: &ServerConfig,
    clock: &Clock,
    scheme: &str,
    advertise: SocketAddr,
    node_name: &str,
) -> Result<
    (
        StateHandle,
        Option<tokio::sync::watch::Receiver<Role>>,
        Option<String>,
    ),
    ServerError,
> {
    match &config.store {
        None => {
            let dir = config.data_dir.clone();
            let clock = clock.clone();
            let opened = tokio::task::spawn_blocking(move || StateHandle::open(&dir, clock))
                .await
                .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?;
            let state = opened.map_err(|source| ServerError::State {
                dir: config.data_dir.clone(),
                source,
            })?;
            Ok((state, None, None))
        }
        Some(shared) => {
            let me = Peer {
                id: uuid::Uuid::new_v4().to_string(),
                address: advertise.to_string(),
                url: config
                    .advertise
                    .clone()
                    .unwrap_or_else(|| advertise_url(scheme, advertise, node_name)),
            };
            let (state, role, secret) = open_shared(shared, clock.clone(), me).await?;
            Ok((state, Some(role), Some(secret)))
        }
    }
}

/// `-acl-bootstrap-token-file`: the management token with the file's secret exists from now
/// on (made once; a token from an earlier version of the file is replaced).
pub async fn bootstrap_from_file(state: &StateHandle, secret: &str) -> Result<(), ServerError> {
    use crate::state::acl::{AclCommand, AclReply};
    let reply = state
        .apply(Command::Acl(AclCommand::BootstrapFromFile {
            secret: secret.to_string(),
        }))
        .await
        .map_err(ServerError::AclBootstrap)?;
    if let crate::state::Reply::Acl(AclReply::Token { token, .. }) = reply {
        tracing::info!(
            accessor = token.accessor_id,
            "ACL bootstrap: the management token of the bootstrap token file is in place"
        );
    }
    Ok(())
}

/// Logged once the backend, the scheduler and garbage collection run (on a shared store:
/// once this server leads).
pub const BACKEND_RUNS: &str = "the backend runs: scheduling";

/// What the leader starts: the backend, the scheduler and garbage collection.
struct Backend {
    state: StateHandle,
    config: ServerConfig,
    clock: Clock,
    /// Base URL agents reach our sandbox files at.
    callback: String,
    /// Signs sandbox file URLs.
    fetch_key: FetchKey,
    slot: ClusterSlot,
}

impl Backend {
    fn start(self) -> Result<(), ServerError> {
        let sandbox_root = self.config.data_dir.join("sandboxes");
        let cluster = match self.config.mesos.clone() {
            Some(mut settings) => {
                settings.fetch_key = Some(self.fetch_key.clone());
                if settings.advertise_url.is_empty() {
                    settings.advertise_url = self.callback.clone();
                }
                if settings.webui_url.is_none() {
                    settings.webui_url = Some(settings.advertise_url.clone());
                }
                let directory = Arc::new(MesosDirectory::new(self.clock.clone()));
                start_mesos(
                    &self.state,
                    settings,
                    directory,
                    self.config.mesos_updates.clone(),
                )?
            }
            None => local::start(local_config(
                &self.config.local,
                sandbox_root,
                self.clock.clone(),
            ))
            .map_err(ServerError::Runner)?,
        };
        let view = cluster.view.clone();
        scheduler::spawn(self.state.clone(), cluster, self.clock.clone());
        gc::spawn(
            self.state.clone(),
            self.config.gc.clone(),
            view.sandboxes.clone(),
            self.clock.clone(),
        );
        self.slot.set(view);
        tracing::info!("{BACKEND_RUNS}");
        Ok(())
    }
}

/// Connect to the shared store (retrying while it cannot be reached), load it, follow it,
/// and start the leadership loop; also answers the servers' shared secret.
async fn open_shared(
    shared: &SharedStore,
    clock: Clock,
    me: Peer,
) -> Result<(StateHandle, tokio::sync::watch::Receiver<Role>, String), ServerError> {
    // each server's sessions show as `dispatch <address>` in pg_stat_activity
    let target = shared.target.for_server(&me.address);
    let mut backoff = std::time::Duration::from_millis(250);
    let (store, lease, secret) = loop {
        let t = target.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let store = PostgresStore::open(t.clone())?;
            let mut lease = PgLease::new(t);
            let secret = lease.peer_secret()?;
            Ok::<_, crate::store::StoreError>((store, lease, secret))
        })
        .await
        .map_err(|e| ServerError::Store(e.to_string()))?;
        match opened {
            Ok(opened) => break opened,
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    "cannot reach {}: {e}; retrying in {backoff:?}",
                    target.shown()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
            }
            Err(e) => return Err(ServerError::Store(e.to_string())),
        }
    };
    let lease_for = shared.lease;
    let (state, role) = tokio::task::spawn_blocking(move || {
        let (fenced_tx, fenced_rx) = std::sync::mpsc::channel();
        let state = StateHandle::start(
            Box::new(store),
            clock,
            Start::Following { fenced: fenced_tx },
        )
        .map_err(|e| ServerError::Store(e.to_string()))?;
        tracing::info!(id = %me.id, url = %me.url, "standing by; joining the election");
        let role = leadership::spawn(Box::new(lease), state.clone(), me, lease_for, fenced_rx)
            .map_err(|e| ServerError::Store(e.to_string()))?;
        Ok::<_, ServerError>((state, role))
    })
    .await
    .map_err(|e| ServerError::Store(e.to_string()))??;
    Ok((state, role, secret))
}

/// Keep the queue gauges and the recorder's housekeeping current when nobody scrapes (for
/// DogStatsD, and so idle gauges expire).
fn spawn_metrics_refresh(state: StateHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::metrics::REFRESH_EVERY);
        loop {
            tick.tick().await;
            api::metrics::refresh_gauges(&state);
            crate::metrics::upkeep();
        }
    });
}

/// Our API's URL as others reach it: the listen address, or the host name when listening on
/// every interface.
fn advertise_url(scheme: &str, addr: SocketAddr, node_name: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{scheme}://{node_name}:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

/// Start the Mesos backend with what it stored (FrameworkID, agent addresses), persisting
/// what it learns in the store.
fn start_mesos(
    state: &StateHandle,
    settings: MesosSettings,
    directory: Arc<MesosDirectory>,
    updates: Option<tokio::sync::watch::Receiver<MesosSettings>>,
) -> Result<ClusterHandle, ServerError> {
    let stored = state.read().settings().clone();
    let writer = state.clone();
    let persist: PersistSetting = Arc::new(move |key: String, value: String| {
        let writer = writer.clone();
        Box::pin(async move {
            writer
                .apply(Command::SetSetting { key, value })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    mesos::start(settings, &stored, persist, directory, updates).map_err(ServerError::Mesos)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dispatch".into())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
    crate::systemd::stopping();
}
