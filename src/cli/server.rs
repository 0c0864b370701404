//! `dispatch server`: run the service. The flags are collected here and handed to
//! `crate::config`, which merges them over the config files (`-config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::CliError;
use crate::config::reload::{
    AclBootstrapTarget, LogLevelTarget, MesosFrameworkTarget, Reloader, TlsTarget,
};
use crate::config::{self, Flags};
use crate::listener::ServerTls;
use crate::server::{run as run_server, shutdown_signal};

/// Every flag except `-config` and `-dev` can also be set in a config file; a flag given
/// here wins over the files. Defaults are applied after both (see `crate::config`).
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Config file (HCL or JSON, Nomad agent style) or directory of them (its *.hcl and
    /// *.json, in name order); repeatable, later ones win. SIGHUP reloads them
    #[arg(long, value_name = "FILE|DIR")]
    config: Vec<PathBuf>,
    /// Development mode: verbose logs; runs everything on this machine (the embedded default)
    #[arg(long)]
    dev: bool,
    /// Directory of the durable store [default: dispatch-data]
    #[arg(long, value_name = "DIR", env = "DISPATCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address and port of the HTTP API [default: 127.0.0.1:4646]
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
    /// Log level (trace, debug, info, warn, error, off) or a tracing filter such as
    /// info,dispatch=debug [default: info; debug with -dev]
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
    /// Serve the web UI's templates and assets from this directory, read on every request
    /// (for working on them; default: the copies compiled into the binary)
    #[arg(long, value_name = "DIR")]
    ui_dir: Option<PathBuf>,
    /// Run tasks on Apache Mesos: master address(es), comma-separated (host:port or
    /// http(s)://host:port), or where they register in ZooKeeper (zk://host:port,host:port/mesos).
    /// Without it tasks run on the embedded local runner
    #[arg(
        long,
        value_name = "HOST:PORT[,...]|zk://...",
        env = "DISPATCH_MESOS_MASTER"
    )]
    mesos_master: Option<String>,
    /// Encoding of the scheduler API: protobuf or json [default: protobuf]
    #[arg(long, value_name = "json|protobuf")]
    mesos_content_type: Option<String>,
    /// FrameworkInfo.name, shown in the Mesos UI [default: dispatch]
    #[arg(long, value_name = "NAME")]
    mesos_framework_name: Option<String>,
    /// Role(s) to receive offers for (repeatable or comma-separated) [default: *]
    #[arg(long, value_name = "ROLE", value_delimiter = ',')]
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
    /// How long Mesos keeps our tasks running while Dispatch is away (Go duration) [default: 168h]
    #[arg(long, value_name = "DURATION")]
    mesos_failover_timeout: Option<String>,
    /// Capabilities to declare besides MULTI_ROLE, PARTITION_AWARE, TASK_KILLING_STATE
    /// (comma-separated: GPU_RESOURCES, SHARED_RESOURCES, RESERVATION_REFINEMENT, ...)
    #[arg(long, value_name = "CAP[,...]")]
    mesos_capabilities: Option<String>,
    /// Directory on the Mesos agents where the steps of a pipeline group (depends_on,
    /// prestart/poststop) share their alloc/ directory (a host_path volume)
    /// [default: /tmp/dispatch-allocs]
    #[arg(long, value_name = "DIR")]
    mesos_alloc_dir: Option<String>,
    /// Longest wait between two attempts to reach a master (Go duration) [default: 15s]
    #[arg(long, value_name = "DURATION")]
    mesos_max_backoff: Option<String>,
    /// Dead dispatched children idle this long are removed with their runs, payload and
    /// sandboxes (Nomad's job_gc_threshold; Go duration, or off) [default: 4h]
    #[arg(long, value_name = "DURATION")]
    gc_threshold: Option<String>,
    /// How often garbage collection runs (Go duration) [default: 5m]
    #[arg(long, value_name = "DURATION")]
    gc_interval: Option<String>,
    /// Base URL of this server as Mesos agents reach it (sandbox files are fetched from it;
    /// also the framework's web UI link). Default: http(s)://<bind address>
    #[arg(long, value_name = "URL", env = "DISPATCH_ADVERTISE")]
    advertise: Option<String>,
    /// Keep everything in this PostgreSQL database, shared with other servers (one leads,
    /// the others stand by): postgres://user[:password]@host[:port]/database. Default: the
    /// SQLite store in -data-dir
    #[arg(long, value_name = "postgres://...", env = "DISPATCH_STORE")]
    store: Option<String>,
    /// File holding the PostgreSQL password (first line), when the URL has none
    /// (else PGPASSFILE or ~/.pgpass)
    #[arg(long, value_name = "FILE")]
    store_password_file: Option<PathBuf>,
    /// How long a leader that stopped renewing its lease keeps the lead before a standby
    /// takes over (Go duration, 1s to 5m) [default: 10s]
    #[arg(long, value_name = "DURATION")]
    store_lease: Option<String>,
    /// CA bundle (PEM) to check https:// Mesos masters against (instead of the system's roots);
    /// masters found in ZooKeeper are then reached over https
    #[arg(long, value_name = "FILE")]
    mesos_ca_file: Option<PathBuf>,
    /// Every API call needs an ACL token (X-Nomad-Token or Authorization: Bearer). A server
    /// listening beyond loopback needs this, or -acl-enabled=false to be open on purpose
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    acl_enabled: Option<bool>,
    /// File holding the management token's secret (a UUID): the ACL bootstrap, done
    /// without POST /v1/acl/bootstrap
    #[arg(long, value_name = "FILE")]
    acl_bootstrap_token_file: Option<PathBuf>,
    /// Serve the API over HTTPS only, with this certificate (PEM, chain first to last)
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// CA bundle (PEM) client certificates are checked against
    #[arg(long, value_name = "FILE")]
    tls_ca_file: Option<PathBuf>,
    /// Require a client certificate signed by -tls-ca-file (mutual TLS)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify_clients: Option<bool>,
    /// Task drivers jobs may use, comma-separated (exec, raw_exec, docker, mesos_executor)
    /// [default: exec,docker,mesos_executor; with -dev also raw_exec]
    #[arg(long, value_name = "DRIVER[,...]")]
    driver_allowlist: Option<String>,
    /// Most dispatches pending at once; beyond it a dispatch gets 429 and Retry-After
    /// [default: 0 = no cap]
    #[arg(long, value_name = "N")]
    max_pending: Option<u64>,
    /// Dispatches per second per ACL token (per client address when anonymous), and how
    /// many at once: LIMIT[/BURST], e.g. 50/200; beyond it 429 and Retry-After [default: off]
    #[arg(long, value_name = "LIMIT[/BURST]")]
    dispatch_rate: Option<String>,
    /// Most open connections in all [default: 4096]
    #[arg(long, value_name = "N")]
    max_conns: Option<usize>,
    /// Most open connections from one client address, 0 = no limit [default: 100]
    #[arg(long, value_name = "N")]
    max_conns_per_client: Option<usize>,
    /// Time a client has to send a request's headers; idle keep-alive connections are closed
    /// after it too (Go duration) [default: 30s]
    #[arg(long, value_name = "DURATION")]
    header_timeout: Option<String>,
    /// Time a client has to finish the TLS handshake (Go duration) [default: 5s]
    #[arg(long, value_name = "DURATION")]
    handshake_timeout: Option<String>,
}

impl ServerArgs {
    /// The flags as given, for `config::load`.
    fn flags(&self) -> Flags {
        Flags {
            data_dir: self.data_dir.clone(),
            bind: self.bind,
            advertise: self.advertise.clone(),
            log_level: self.log_level.clone(),
            local_cpus: self.local_cpus,
            local_memory_mb: self.local_memory_mb,
            local_disk_mb: self.local_disk_mb,
            local_gpus: self.local_gpus,
            task_path: self.task_path.clone(),
            statsd_addr: self.statsd_addr.clone(),
            ui_dir: self.ui_dir.clone(),
            mesos_master: self.mesos_master.clone(),
            mesos_content_type: self.mesos_content_type.clone(),
            mesos_framework_name: self.mesos_framework_name.clone(),
            mesos_role: self.mesos_role.clone(),
            mesos_user: self.mesos_user.clone(),
            mesos_principal: self.mesos_principal.clone(),
            mesos_secret: self.mesos_secret.clone(),
            mesos_secret_file: self.mesos_secret_file.clone(),
            mesos_failover_timeout: self.mesos_failover_timeout.clone(),
            mesos_capabilities: self.mesos_capabilities.clone(),
            mesos_alloc_dir: self.mesos_alloc_dir.clone(),
            mesos_max_backoff: self.mesos_max_backoff.clone(),
            gc_threshold: self.gc_threshold.clone(),
            gc_interval: self.gc_interval.clone(),
            store: self.store.clone(),
            store_password_file: self.store_password_file.clone(),
            store_lease: self.store_lease.clone(),
            acl_enabled: self.acl_enabled,
            acl_bootstrap_token_file: self.acl_bootstrap_token_file.clone(),
            tls_cert_file: self.tls_cert_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            tls_verify_clients: self.tls_verify_clients,
            mesos_ca_file: self.mesos_ca_file.clone(),
            driver_allowlist: self.driver_allowlist.clone(),
            max_conns: self.max_conns,
            max_conns_per_client: self.max_conns_per_client,
            header_timeout: self.header_timeout.clone(),
            handshake_timeout: self.handshake_timeout.clone(),
            max_pending: self.max_pending,
            dispatch_rate: self.dispatch_rate.clone(),
        }
    }
}

pub(super) fn current_user() -> String {
    config::current_user()
}

pub async fn run(args: ServerArgs) -> Result<i32, CliError> {
    // First of all: SIGHUP's default action ends the process, and a reload can be asked for
    // while the server is still starting.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| CliError::new(format!("cannot listen for SIGHUP: {e}")))?;
    let flags = args.flags();
    let config = config::load(&args.config, &flags, args.dev)
        .map_err(|e| CliError::new(format!("Error loading configuration: {e}")))?;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(
        tracing_subscriber::EnvFilter::new(&config.log_level.filter),
    );
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init();
    if !config.files.is_empty() {
        tracing::info!(
            "configuration loaded from {}",
            config::describe_files(&config.files)
        );
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let mut reloader = Reloader::new(args.config.clone(), flags, args.dev, config.clone());
    reloader.add(LogLevelTarget::new(move |directive| {
        let filter =
            tracing_subscriber::EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    }));
    let mut server_config = config.server_config();
    if let Some(files) = config.tls.files() {
        let tls = ServerTls::new(files)
            .map_err(|e| CliError::new(format!("Error starting server: TLS: {e}")))?;
        reloader.add(TlsTarget::new(tls.clone()));
        server_config.tls = Some(tls);
    }
    if config.acl.enabled {
        let (updates, receiver) = tokio::sync::watch::channel(None);
        reloader.add(AclBootstrapTarget::new(updates));
        server_config.acl_bootstrap_reload = Some(receiver);
    }
    if let Some(mesos) = &config.mesos {
        let (updates, receiver) = tokio::sync::watch::channel(mesos.clone());
        reloader.add(MesosFrameworkTarget::new(updates));
        server_config.mesos_updates = Some(receiver);
    }
    tokio::spawn(crate::config::reload::run(reloader, hangup));
    run_server(server_config, shutdown_signal())
        .await
        .map_err(|e| CliError::new(format!("Error starting server: {e}")))?;
    Ok(0)
}
