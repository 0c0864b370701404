//! `dispatch server`: run the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::CliError;
use crate::server::{run as run_server, shutdown_signal, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Development mode: verbose logs; runs everything on this machine (the embedded default)
    #[arg(long)]
    dev: bool,
    /// Directory of the durable store
    #[arg(long, value_name = "DIR", env = "DISPATCH_DATA_DIR", default_value = "dispatch-data")]
    data_dir: PathBuf,
    /// Address and port of the HTTP API
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:4646")]
    bind: SocketAddr,
    /// Log filter (tracing env-filter syntax), e.g. info, debug, dispatch=trace
    #[arg(long, env = "DISPATCH_LOG")]
    log_level: Option<String>,
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
    let config = ServerConfig {
        bind: args.bind,
        data_dir: args.data_dir,
    };
    run_server(config, shutdown_signal())
        .await
        .map_err(|e| CliError::new(format!("Error starting server: {e}")))?;
    Ok(0)
}
