//! `dispatch server`: run the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::CliError;
use crate::server::{run as run_server, shutdown_signal, LocalOptions, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Development mode: verbose logs; runs everything on this machine (the embedded default)
    #[arg(long)]
    dev: bool,
    /// Directory of the durable store
    #[arg(
        long,
        value_name = "DIR",
        env = "DISPATCH_DATA_DIR",
        default_value = "dispatch-data"
    )]
    data_dir: PathBuf,
    /// Address and port of the HTTP API
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:4646")]
    bind: SocketAddr,
    /// Log filter (tracing env-filter syntax), e.g. info, debug, dispatch=trace
    #[arg(long, env = "DISPATCH_LOG")]
    log_level: Option<String>,
    /// CPUs the local runner offers (default: this machine's)
    #[arg(long, value_name = "N")]
    local_cpus: Option<f64>,
    /// Memory the local runner offers, in MB (default: this machine's)
    #[arg(long, value_name = "MB")]
    local_memory_mb: Option<f64>,
    /// Disk the local runner offers, in MB (default: free space of the data dir's disk)
    #[arg(long, value_name = "MB")]
    local_disk_mb: Option<f64>,
    /// GPUs the local runner offers (default 0)
    #[arg(long, value_name = "N")]
    local_gpus: Option<f64>,
    /// Directory put first on every local task's PATH (repeatable; default: ./scripts if it exists)
    #[arg(long, value_name = "DIR")]
    task_path: Vec<PathBuf>,
    /// Also send metrics to this DogStatsD agent over UDP, e.g. 127.0.0.1:8125 (tags instead of labels)
    #[arg(long, value_name = "HOST:PORT", env = "DISPATCH_STATSD_ADDR")]
    statsd_addr: Option<String>,
}

pub async fn run(args: ServerArgs) -> Result<i32, CliError> {
    let filter = args
        .log_level
        .clone()
        .unwrap_or_else(|| if args.dev { "debug,hyper=info" } else { "info" }.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut task_path = args.task_path;
    if task_path.is_empty() {
        if let Ok(scripts) = std::fs::canonicalize("scripts") {
            task_path.push(scripts);
        }
    }
    let config = ServerConfig {
        bind: args.bind,
        data_dir: args.data_dir,
        local: LocalOptions {
            cpus: args.local_cpus,
            mem_mb: args.local_memory_mb,
            disk_mb: args.local_disk_mb,
            gpus: args.local_gpus,
            task_path,
        },
        statsd_addr: args.statsd_addr,
    };
    run_server(config, shutdown_signal())
        .await
        .map_err(|e| CliError::new(format!("Error starting server: {e}")))?;
    Ok(0)
}
