//! Running the service, and the composition root: open the state (replaying the store), start
//! one backend (the local runner, or the Mesos framework with what it stored: FrameworkID,
//! agent endpoints, and a callback that persists new ones through the writer), the
//! scheduler, garbage collection and the metrics refresh, all on one `Clock`; then serve the
//! API and stop cleanly on SIGINT/SIGTERM. This and the configuration are the only places
//! that choose a backend; everything else gets its `cluster::ClusterView`.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::clock::Clock;
use std::sync::Arc;

use crate::cluster::mesos::{self, MesosDirectory, MesosSettings, PersistSetting};
use crate::cluster::{local, ClusterHandle};
use crate::gc::{self, GcPolicy};
use crate::scheduler;
use crate::state::Command;
use crate::state::StateHandle;

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
    #[error("cannot start the Mesos backend: {0}")]
    Mesos(String),
    #[error("cannot start metrics: {0}")]
    Metrics(String),
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
    let clock = Clock::system();
    let (state, loading) =
        StateHandle::opening(&config.data_dir, clock.clone()).map_err(|source| {
            ServerError::State {
                dir: config.data_dir.clone(),
                source,
            }
        })?;
    let advertise = listener.local_addr().map_err(ServerError::Serve)?;
    let (api_ready, api) = api::starting_router(&format!("reading {}", config.data_dir.display()));
    let serving = tokio::spawn(async move {
        axum::serve(listener, api)
            .with_graceful_shutdown(shutdown)
            .await
    });
    tracing::info!("Dispatch API listening on http://{advertise}");
    tokio::task::spawn_blocking(move || loading.finish())
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?
        .map_err(|source| ServerError::State {
            dir: config.data_dir.clone(),
            source,
        })?;
    {
        let s = state.read();
        tracing::info!(
            jobs = s.job_count(),
            dispatches = s.dispatch_count(),
            index = s.index(),
            millis = started.elapsed().as_millis() as u64,
            "state loaded from {}",
            config.data_dir.display()
        );
    }
    crate::metrics::start(config.statsd_addr.as_deref()).map_err(ServerError::Metrics)?;
    spawn_metrics_refresh(state.clone());
    let sandbox_root = config.data_dir.join("sandboxes");
    let node_name = hostname();
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
    let cluster = match config.mesos {
        Some(mut settings) => {
            if settings.advertise_url.is_empty() {
                settings.advertise_url = advertise_url(fetch_addr.unwrap_or(advertise), &node_name);
            }
            if settings.webui_url.is_none() {
                settings.webui_url = Some(settings.advertise_url.clone());
            }
            let directory = Arc::new(MesosDirectory::new(clock.clone()));
            start_mesos(&state, settings, directory)?
        }
        None => local::start(local_config(&config.local, sandbox_root, clock.clone()))
            .map_err(ServerError::Runner)?,
    };
    let view = cluster.view.clone();
    scheduler::spawn(state.clone(), cluster, clock.clone());
    gc::spawn(
        state.clone(),
        config.gc,
        view.sandboxes.clone(),
        clock.clone(),
    );
    let app = AppState {
        state,
        clock: clock.clone(),
        advertise,
        node_name,
        cluster: view,
    };
    if let Some(listener) = fetch_listener {
        let files = api::sandbox_router(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, files).await {
                tracing::error!("sandbox file listener stopped: {e}");
            }
        });
    }
    api_ready.send_replace(Some(api::router(app)));
    tracing::info!("Dispatch API ready");
    crate::systemd::ready(&format!("API listening on http://{advertise}"));
    serving
        .await
        .map_err(|e| ServerError::Serve(std::io::Error::other(e)))?
        .map_err(ServerError::Serve)
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
fn advertise_url(addr: SocketAddr, node_name: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("http://{node_name}:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Start the Mesos backend with what it stored (FrameworkID, agent addresses), persisting
/// what it learns in the store.
fn start_mesos(
    state: &StateHandle,
    settings: MesosSettings,
    directory: Arc<MesosDirectory>,
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
    mesos::start(settings, &stored, persist, directory).map_err(ServerError::Mesos)
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
