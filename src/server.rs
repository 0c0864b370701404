//! Running the service: open the state, serve the API, stop cleanly on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::state::StateHandle;

/// How the server is started (`dispatch server ...`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the HTTP API.
    pub bind: SocketAddr,
    /// Where the store lives; everything acknowledged is here.
    pub data_dir: PathBuf,
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
    serve(listener, &config.data_dir, shutdown).await
}

/// Serve on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn serve(
    listener: TcpListener,
    data_dir: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let config = ServerConfig {
        bind: listener.local_addr().map_err(ServerError::Serve)?,
        data_dir: data_dir.to_path_buf(),
    };
    let started = std::time::Instant::now();
    let state = StateHandle::open(&config.data_dir).map_err(|source| ServerError::State {
        dir: config.data_dir.clone(),
        source,
    })?;
    {
        let s = state.read();
        tracing::info!(
            jobs = s.jobs.len(),
            dispatches = s.dispatches.len(),
            index = s.index,
            millis = started.elapsed().as_millis() as u64,
            "state loaded from {}",
            config.data_dir.display()
        );
    }
    let advertise = listener.local_addr().map_err(ServerError::Serve)?;
    let app = AppState {
        state,
        advertise,
        node_name: hostname(),
    };
    tracing::info!("Dispatch API listening on http://{advertise}");
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)
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
}
