//! `dispatch server`: run the service.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::CliError;
use crate::cluster::mesos::MesosSettings;
use crate::gc::GcPolicy;
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
    /// Run tasks on Apache Mesos: master address(es), comma-separated (host:port or
    /// http(s)://host:port), or where they register in ZooKeeper (zk://host:port,host:port/mesos).
    /// Without it tasks run on the embedded local runner
    #[arg(
        long,
        value_name = "HOST:PORT[,...]|zk://...",
        env = "DISPATCH_MESOS_MASTER"
    )]
    mesos_master: Option<String>,
    /// Encoding of the scheduler API: protobuf or json
    #[arg(long, value_name = "json|protobuf", default_value = "protobuf")]
    mesos_content_type: String,
    /// FrameworkInfo.name, shown in the Mesos UI
    #[arg(long, value_name = "NAME", default_value = "dispatch")]
    mesos_framework_name: String,
    /// Role(s) to receive offers for (repeatable or comma-separated)
    #[arg(long, value_name = "ROLE", value_delimiter = ',', default_value = "*")]
    mesos_role: Vec<String>,
    /// FrameworkInfo.user: the user tasks run as unless they set one (default: the server's user)
    #[arg(long, value_name = "USER")]
    mesos_user: Option<String>,
    /// Principal for authentication and reservations
    #[arg(long, value_name = "PRINCIPAL", env = "DISPATCH_MESOS_PRINCIPAL")]
    mesos_principal: Option<String>,
    /// Secret of the principal (HTTP Basic); prefer -mesos-secret-file
    #[arg(long, value_name = "SECRET", env = "DISPATCH_MESOS_SECRET")]
    mesos_secret: Option<String>,
    /// File holding the secret of the principal (trailing newline ignored)
    #[arg(long, value_name = "FILE")]
    mesos_secret_file: Option<PathBuf>,
    /// How long Mesos keeps our tasks running while Dispatch is away (Go duration)
    #[arg(long, value_name = "DURATION", default_value = "168h")]
    mesos_failover_timeout: String,
    /// Capabilities to declare besides MULTI_ROLE, PARTITION_AWARE, TASK_KILLING_STATE
    /// (comma-separated: GPU_RESOURCES, SHARED_RESOURCES, RESERVATION_REFINEMENT, ...)
    #[arg(long, value_name = "CAP[,...]")]
    mesos_capabilities: Option<String>,
    /// Directory on the Mesos agents where the steps of a pipeline group (depends_on,
    /// prestart/poststop) share their alloc/ directory (a host_path volume)
    #[arg(long, value_name = "DIR", default_value = crate::cluster::mesos::settings::DEFAULT_ALLOC_DIR)]
    mesos_alloc_dir: String,
    /// Longest wait between two attempts to reach a master (Go duration)
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    mesos_max_backoff: String,
    /// Dead dispatched children idle this long are removed with their runs, payload and
    /// sandboxes (Nomad's job_gc_threshold; Go duration, or off)
    #[arg(long, value_name = "DURATION", default_value = "4h")]
    gc_threshold: String,
    /// How often garbage collection runs (Go duration)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    gc_interval: String,
    /// Base URL of this server as Mesos agents reach it (sandbox files are fetched from it;
    /// also the framework's web UI link). Default: http://<bind address>
    #[arg(long, value_name = "URL", env = "DISPATCH_ADVERTISE")]
    advertise: Option<String>,
}

fn duration_flag(flag: &str, value: &str) -> Result<std::time::Duration, CliError> {
    let ns = crate::spec::parse_go_duration(value).map_err(|e| {
        CliError::new(format!(
            "-{flag}: {value:?} is not a duration ({e}); expected e.g. 90s, 15m, 168h"
        ))
    })?;
    Ok(std::time::Duration::from_nanos(ns.max(0) as u64))
}

pub(super) fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

/// The `-mesos-*` flags, checked; `None` without `-mesos-master`.
fn mesos_settings(args: &ServerArgs) -> Result<Option<MesosSettings>, CliError> {
    use crate::cluster::mesos::settings as ms;
    let Some(list) = args.mesos_master.as_deref() else {
        return Ok(None);
    };
    let usage = |e: ms::SettingsError| CliError::new(e.to_string());
    let masters = ms::parse_masters(list).map_err(usage)?;
    let encoding = ms::parse_encoding(&args.mesos_content_type).map_err(usage)?;
    let roles: Vec<String> = args
        .mesos_role
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    for role in &roles {
        ms::check_role(role).map_err(usage)?;
    }
    let secret = match (&args.mesos_secret, &args.mesos_secret_file) {
        (Some(_), Some(_)) => {
            return Err(CliError::new(
                "-mesos-secret and -mesos-secret-file are mutually exclusive",
            ))
        }
        (Some(s), None) => Some(s.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    CliError::new(format!(
                        "-mesos-secret-file: cannot read {}: {e}",
                        path.display()
                    ))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        (None, None) => None,
    };
    if secret.is_some() && args.mesos_principal.is_none() {
        return Err(usage(ms::SettingsError::SecretWithoutPrincipal));
    }
    Ok(Some(MesosSettings {
        masters,
        encoding,
        framework_name: args.mesos_framework_name.clone(),
        user: args.mesos_user.clone().unwrap_or_else(current_user),
        roles: if roles.is_empty() {
            vec!["*".into()]
        } else {
            roles
        },
        principal: args.mesos_principal.clone(),
        secret,
        failover_timeout: duration_flag("mesos-failover-timeout", &args.mesos_failover_timeout)?,
        capabilities: ms::parse_capabilities(args.mesos_capabilities.as_deref()).map_err(usage)?,
        webui_url: None,
        advertise_url: args.advertise.clone().unwrap_or_default(),
        max_backoff: duration_flag("mesos-max-backoff", &args.mesos_max_backoff)?,
        alloc_dir: {
            if !args.mesos_alloc_dir.starts_with('/') {
                return Err(CliError::new(format!(
                    "-mesos-alloc-dir: {:?} must be an absolute path on the agents",
                    args.mesos_alloc_dir
                )));
            }
            args.mesos_alloc_dir.clone()
        },
    }))
}

fn gc_policy(threshold: &str, interval: &str) -> Result<GcPolicy, CliError> {
    let threshold = match threshold {
        "off" => None,
        t => Some(duration_flag("gc-threshold", t)?),
    };
    let interval = duration_flag("gc-interval", interval)?;
    if interval.is_zero() {
        return Err(CliError::new("-gc-interval must be more than 0"));
    }
    Ok(GcPolicy {
        threshold,
        interval,
    })
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
    let mesos = mesos_settings(&args)?;
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
        mesos,
        gc: gc_policy(&args.gc_threshold, &args.gc_interval)?,
        fetch_bind: None,
    };
    run_server(config, shutdown_signal())
        .await
        .map_err(|e| CliError::new(format!("Error starting server: {e}")))?;
    Ok(0)
}
