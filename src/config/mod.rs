//! Server configuration: one typed `Config`, filled from defaults, then config files (HCL or
//! JSON in the style of Nomad's agent config; `-config` repeatable, a directory = its
//! `*.hcl` and `*.json` in name order), then flags. Nothing else in Dispatch reads config
//! files, flags or environment variables for the server: `cli::server` collects the flags
//! (clap, with their `DISPATCH_*` variables) into `Flags`, and everything downstream gets a
//! `Config` (or the `server::ServerConfig` made from it).
//!
//! `source` reads files into values that know their line, `layer` checks every value as it
//! enters a layer (a file or the flags) and merges layers, this module applies defaults and
//! the rules across keys, and `reload` re-reads everything on SIGHUP and applies what can
//! change while running.

mod layer;
pub mod reload;
mod source;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use layer::{Flags, Layer};

use crate::api::backpressure::Backpressure;
use crate::cluster::mesos::settings::{self as ms, MesosSettings};
use crate::gc::GcPolicy;
use crate::listener::{ConnLimits, TlsFiles};
use crate::model::drivers::DriverPolicy;
use crate::server::{LocalOptions, ServerConfig, SharedStore};

/// The API port when neither `ports { http }` nor `-bind` says otherwise (Nomad's).
pub const DEFAULT_HTTP_PORT: u16 = 4646;
/// The data dir when neither `data_dir` nor `-data-dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "dispatch-data";

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File {
        path: PathBuf,
        line: usize,
    },
    /// A `dispatch server` flag (or its environment variable), without the dash.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Flag(name) => write!(f, "-{name}"),
        }
    }
}

/// A value and where it was set.
#[derive(Debug, Clone)]
pub struct Set<T> {
    pub value: T,
    pub origin: Origin,
}

/// The Mesos principal's secret: given inline or read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Inline(String),
    File { path: PathBuf, value: String },
}

impl Secret {
    pub fn value(&self) -> &str {
        match self {
            Secret::Inline(s) => s,
            Secret::File { value, .. } => value,
        }
    }
}

/// A log filter: Nomad's level names (`INFO`, `debug`, ...) or tracing's env-filter
/// directives (`info,dispatch::scheduler=trace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel {
    /// As written.
    pub raw: String,
    /// The env-filter directive it means.
    pub filter: String,
}

impl LogLevel {
    pub fn parse(raw: &str) -> Result<LogLevel, String> {
        let trimmed = raw.trim();
        let nomad = ["trace", "debug", "info", "warn", "error", "off"]
            .into_iter()
            .find(|l| l.eq_ignore_ascii_case(trimmed));
        let filter = match nomad {
            Some(level) => level.to_string(),
            None if trimmed.is_empty() => {
                return Err(
                    "must not be empty; expected trace, debug, info, warn, error or off".into(),
                )
            }
            None => {
                let bad = |why: String| {
                    format!("{raw:?} is not a log level ({why}); expected trace, debug, info, warn, error, off, or a filter such as info,dispatch=debug")
                };
                // a bare word is a target at every level to tracing: here, a typo
                let levels = ["trace", "debug", "info", "warn", "error", "off"];
                if let Some(word) = trimmed
                    .split(',')
                    .map(str::trim)
                    .find(|d| !d.contains('=') && !levels.iter().any(|l| l.eq_ignore_ascii_case(d)))
                {
                    return Err(bad(format!("{word:?} is neither a level nor target=level")));
                }
                tracing_subscriber::EnvFilter::try_new(trimmed).map_err(|e| bad(e.to_string()))?;
                trimmed.to_string()
            }
        };
        Ok(LogLevel {
            raw: raw.to_string(),
            filter,
        })
    }

    fn default_for(dev: bool) -> LogLevel {
        let filter = if dev { "debug,hyper=info" } else { "info" };
        LogLevel {
            raw: filter.into(),
            filter: filter.into(),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.filter)
    }
}

/// `acl { ... }`, `-acl-*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclConfig {
    pub enabled: bool,
    /// The management token's secret, from `bootstrap_token_file`.
    pub bootstrap_token: Option<Secret>,
    /// The API listens beyond loopback with ACLs explicitly off: said loudly in the log and
    /// on `/v1/agent/self`.
    pub open: bool,
}

/// `tls { ... }`, `-tls-*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub http: bool,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub verify_https_client: bool,
}

impl TlsConfig {
    /// What the listener loads, when the API serves HTTPS.
    pub fn files(&self) -> Option<TlsFiles> {
        if !self.http {
            return None;
        }
        Some(TlsFiles {
            cert_file: self.cert_file.clone()?,
            key_file: self.key_file.clone()?,
            ca_file: self.ca_file.clone(),
            verify_clients: self.verify_https_client,
        })
    }
}

/// Everything the server is started with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config files read, in the order they were applied.
    pub files: Vec<PathBuf>,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// Base URL agents and users reach the API at (`advertise { http }`, `-advertise`).
    pub advertise: Option<String>,
    pub log_level: LogLevel,
    pub acl: AclConfig,
    pub tls: TlsConfig,
    pub mesos: Option<MesosSettings>,
    pub local: LocalOptions,
    pub statsd_addr: Option<String>,
    pub gc: GcPolicy,
    /// `store { postgres }` / `-store`: servers sharing one PostgreSQL database (one leads).
    /// `None`: the SQLite store in `data_dir`.
    pub store: Option<SharedStore>,
    /// `ui { enabled, dir }`, `-ui-dir`.
    pub ui: crate::ui::UiConfig,
    /// Task drivers jobs may use.
    pub drivers: DriverPolicy,
    pub conn_limits: ConnLimits,
    pub backpressure: Backpressure,
    /// Settings that were accepted but have no effect, for the log.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}", value_message(origin, key, message))]
    Value {
        origin: Origin,
        /// `mesos.secret_file`; empty for a flag.
        key: String,
        message: String,
    },
}

fn value_message(origin: &Origin, key: &str, message: &str) -> String {
    match origin {
        Origin::Flag(_) => format!("{origin}: {message}"),
        Origin::File { .. } => format!("{origin}: {key}: {message}"),
    }
}

/// Read the `-config` paths (in order) and apply `flags` over them.
pub fn load(paths: &[PathBuf], flags: &Flags, dev: bool) -> Result<Config, ConfigError> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(source::files_of(path)?);
    }
    let mut merged = Layer::default();
    for file in &files {
        let tree = source::read(file)?;
        merged = merged.merge(layer::from_tree(&tree)?);
    }
    merged = merged.merge(flags.layer()?);
    resolve(merged, files, dev)
}

fn value<T>(set: Option<Set<T>>) -> Option<T> {
    set.map(|s| s.value)
}

/// Defaults and the rules across keys.
fn resolve(layer: Layer, files: Vec<PathBuf>, dev: bool) -> Result<Config, ConfigError> {
    let mut warnings = Vec::new();
    let port = layer
        .http_port
        .as_ref()
        .map_or(DEFAULT_HTTP_PORT, |s| s.value);
    let advertise = value(layer.advertise_http.clone()).map(|a| advertise_url(&a, port));
    let mesos = mesos_settings(&layer, advertise.clone(), &mut warnings)?;
    let store = shared_store(&layer)?;
    let ip = value(layer.bind_addr.clone()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));

    let acl = acl_config(&layer, ip)?;
    let tls = tls_config(&layer, &mut warnings)?;
    let default_limits = ConnLimits::default();
    let conn_limits = ConnLimits {
        max_conns: value(layer.max_conns.clone()).unwrap_or(default_limits.max_conns),
        max_conns_per_client: value(layer.max_conns_per_client.clone())
            .unwrap_or(default_limits.max_conns_per_client),
        header_timeout: value(layer.header_timeout.clone())
            .unwrap_or(default_limits.header_timeout),
        handshake_timeout: value(layer.handshake_timeout.clone())
            .unwrap_or(default_limits.handshake_timeout),
    };
    let backpressure = Backpressure {
        max_pending: value(layer.max_pending.clone()).filter(|n| *n > 0),
        dispatch_rate: value(layer.dispatch_rate.clone()).flatten(),
    };
    let drivers =
        value(layer.driver_allowlist.clone()).unwrap_or_else(|| DriverPolicy::default_for(dev));

    let task_path = value(layer.task_path).unwrap_or_else(|| {
        // the repository's scripts/ (transcode.sh, ...) when run from a checkout
        std::fs::canonicalize("scripts").into_iter().collect()
    });
    Ok(Config {
        files,
        data_dir: value(layer.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        bind: SocketAddr::new(ip, port),
        advertise,
        log_level: value(layer.log_level).unwrap_or_else(|| LogLevel::default_for(dev)),
        acl,
        tls,
        mesos,
        local: LocalOptions {
            cpus: value(layer.local_cpus),
            mem_mb: value(layer.local_memory_mb),
            disk_mb: value(layer.local_disk_mb),
            gpus: value(layer.local_gpus),
            task_path,
        },
        statsd_addr: value(layer.statsd_address),
        gc: GcPolicy {
            threshold: value(layer.gc_threshold).unwrap_or(Some(crate::gc::DEFAULT_THRESHOLD)),
            interval: value(layer.gc_interval).unwrap_or(crate::gc::DEFAULT_INTERVAL),
        },
        store,
        ui: crate::ui::UiConfig {
            enabled: value(layer.ui_enabled).unwrap_or(true),
            dir: value(layer.ui_dir),
        },
        drivers,
        conn_limits,
        backpressure,
        warnings,
    })
}

/// The PostgreSQL store, its password resolved (URL, `password_file`, `PGPASSFILE`).
fn shared_store(layer: &Layer) -> Result<Option<SharedStore>, ConfigError> {
    let Some(url) = &layer.store_postgres else {
        if let Some(Set { origin, .. }) = layer
            .store_password_file
            .as_ref()
            .map(|s| Set {
                value: (),
                origin: s.origin.clone(),
            })
            .or_else(|| {
                layer.store_lease.as_ref().map(|s| Set {
                    value: (),
                    origin: s.origin.clone(),
                })
            })
        {
            return Err(ConfigError::Value {
                origin,
                key: "store".into(),
                message:
                    "needs a PostgreSQL store (store { postgres = \"postgres://...\" } or -store)"
                        .into(),
            });
        }
        return Ok(None);
    };
    let file = layer
        .store_password_file
        .as_ref()
        .map(|s| s.value.as_path());
    let target =
        crate::store::PgTarget::parse(&url.value, file).map_err(|message| ConfigError::Value {
            origin: url.origin.clone(),
            key: "store.postgres".into(),
            message,
        })?;
    Ok(Some(SharedStore {
        target,
        lease: layer
            .store_lease
            .as_ref()
            .map_or(crate::leadership::DEFAULT_LEASE, |s| s.value),
    }))
}

/// ACLs, and the rule that an API reachable from other machines has them on unless it is
/// said, explicitly, that it should be open.
fn acl_config(layer: &Layer, ip: IpAddr) -> Result<AclConfig, ConfigError> {
    let enabled = layer.acl_enabled.as_ref().is_some_and(|s| s.value);
    if !ip.is_loopback() && layer.acl_enabled.is_none() {
        let origin = layer
            .bind_addr
            .as_ref()
            .map_or(Origin::Flag("bind"), |s| s.origin.clone());
        return Err(ConfigError::Value {
            origin,
            key: "bind_addr".into(),
            message: format!(
                "{ip} lets other machines reach the API, and ACLs are off: anyone who reaches it \
                 could run jobs. Turn ACLs on (-acl-enabled, or acl {{ enabled = true }}), or \
                 to serve an open API on purpose say so: -acl-enabled=false \
                 (acl {{ enabled = false }})"
            ),
        });
    }
    Ok(AclConfig {
        enabled,
        bootstrap_token: value(layer.acl_bootstrap_token_file.clone()),
        open: !ip.is_loopback() && !enabled,
    })
}

fn tls_config(layer: &Layer, warnings: &mut Vec<String>) -> Result<TlsConfig, ConfigError> {
    let tls = TlsConfig {
        http: layer.tls_http.as_ref().is_some_and(|s| s.value),
        cert_file: value(layer.tls_cert_file.clone()),
        key_file: value(layer.tls_key_file.clone()),
        ca_file: value(layer.tls_ca_file.clone()),
        verify_https_client: layer
            .tls_verify_https_client
            .as_ref()
            .is_some_and(|s| s.value),
    };
    if let Some(Set {
        value: true,
        origin,
    }) = &layer.tls_http
    {
        if tls.cert_file.is_none() || tls.key_file.is_none() {
            return Err(ConfigError::Value {
                origin: origin.clone(),
                key: "tls.http".into(),
                message: "HTTPS needs a certificate and its key: tls.cert_file and \
                          tls.key_file (-tls-cert-file, -tls-key-file)"
                    .into(),
            });
        }
    }
    if let Some(Set {
        value: true,
        origin,
    }) = &layer.tls_verify_https_client
    {
        if tls.ca_file.is_none() {
            return Err(ConfigError::Value {
                origin: origin.clone(),
                key: "tls.verify_https_client".into(),
                message: "verifying client certificates needs the CA that signs them: \
                          tls.ca_file (-tls-ca-file)"
                    .into(),
            });
        }
        if !tls.http {
            warnings.push(
                "tls: verify_https_client is set but tls.http is false: the API serves plain HTTP"
                    .into(),
            );
        }
    }
    if !tls.http && (tls.cert_file.is_some() || tls.key_file.is_some()) {
        warnings.push(
            "tls: certificate files are set but tls.http is false: the API serves plain HTTP"
                .into(),
        );
    }
    if let Some(files) = tls.files() {
        files.load().map_err(|e| ConfigError::Value {
            origin: layer
                .tls_cert_file
                .as_ref()
                .map_or(Origin::Flag("tls-cert-file"), |s| s.origin.clone()),
            key: "tls".into(),
            message: e.to_string(),
        })?;
    }
    Ok(tls)
}

/// `host`, `host:port` or a URL -> a base URL; a bare host gets the API port.
fn advertise_url(raw: &str, port: u16) -> String {
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") {
        return raw.to_string();
    }
    match reqwest::Url::parse(&format!("http://{raw}")) {
        Ok(url) if url.port().is_some() => format!("http://{raw}"),
        _ => format!("http://{raw}:{port}"),
    }
}

fn mesos_settings(
    layer: &Layer,
    advertise: Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<MesosSettings>, ConfigError> {
    let Some(masters) = &layer.mesos_masters else {
        let set: Vec<&str> = [
            ("role", layer.mesos_roles.is_some()),
            ("principal", layer.mesos_principal.is_some()),
            ("secret", layer.mesos_secret.is_some()),
            ("framework_name", layer.mesos_framework_name.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if !set.is_empty() {
            warnings.push(format!(
                "mesos: {} set without a master (mesos.master / -mesos-master): tasks run on the local runner",
                set.join(", ")
            ));
        }
        return Ok(None);
    };
    if let (Some(secret), None) = (&layer.mesos_secret, &layer.mesos_principal) {
        let key = match secret.value {
            Secret::Inline(_) => "mesos.secret",
            Secret::File { .. } => "mesos.secret_file",
        };
        return Err(ConfigError::Value {
            origin: secret.origin.clone(),
            key: key.into(),
            message: "needs a principal (mesos.principal in a config file, or -mesos-principal)"
                .into(),
        });
    }
    let get = |s: &Option<Set<String>>| s.as_ref().map(|s| s.value.clone());
    Ok(Some(MesosSettings {
        masters: masters.value.clone(),
        encoding: layer
            .mesos_encoding
            .as_ref()
            .map_or(crate::cluster::mesos::codec::Encoding::Protobuf, |s| {
                s.value
            }),
        framework_name: get(&layer.mesos_framework_name).unwrap_or_else(|| "dispatch".to_string()),
        user: get(&layer.mesos_user).unwrap_or_else(current_user),
        roles: layer
            .mesos_roles
            .as_ref()
            .map_or_else(|| vec!["*".to_string()], |s| s.value.clone()),
        principal: get(&layer.mesos_principal),
        secret: layer
            .mesos_secret
            .as_ref()
            .map(|s| s.value.value().to_string()),
        failover_timeout: layer
            .mesos_failover_timeout
            .as_ref()
            .map_or(ms::DEFAULT_FAILOVER_TIMEOUT, |s| s.value),
        capabilities: match &layer.mesos_capabilities {
            Some(s) => s.value.clone(),
            None => ms::DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
        },
        webui_url: None,
        advertise_url: advertise.unwrap_or_default(),
        max_backoff: layer
            .mesos_max_backoff
            .as_ref()
            .map_or(Duration::from_secs(15), |s| s.value),
        alloc_dir: get(&layer.mesos_alloc_dir).unwrap_or_else(|| ms::DEFAULT_ALLOC_DIR.into()),
        ca_file: layer.mesos_ca_file.as_ref().map(|s| s.value.clone()),
        fetch_key: None,
    }))
}

/// The user this process runs as (the default `FrameworkInfo.user`).
pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into())
}

impl Config {
    /// What `server::run` is started with; `tls` is the caller's (it is reloaded).
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            bind: self.bind,
            data_dir: self.data_dir.clone(),
            local: self.local.clone(),
            statsd_addr: self.statsd_addr.clone(),
            mesos: self.mesos.clone(),
            gc: self.gc.clone(),
            fetch_bind: None,
            tls: None,
            conn_limits: self.conn_limits.clone(),
            drivers: self.drivers.clone(),
            backpressure: self.backpressure.clone(),
            open: self.acl.open,
            acl: self.acl.enabled,
            acl_bootstrap_secret: self
                .acl
                .bootstrap_token
                .as_ref()
                .map(|s| s.value().to_string()),
            acl_bootstrap_reload: None,
            clock: crate::clock::Clock::system(),
            mesos_updates: None,
            store: self.store.clone(),
            advertise: self.advertise.clone(),
            ui: self.ui.clone(),
        }
    }

    /// Every setting that only takes effect at start, as `(key, value)` to compare two
    /// configs (secrets are compared, never shown).
    pub fn restart_only(&self) -> Vec<(&'static str, String)> {
        let mesos = self.mesos.as_ref();
        let secret_digest = mesos.and_then(|m| m.secret.as_ref()).map(|s| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        });
        vec![
            ("data_dir", self.data_dir.display().to_string()),
            (
                "store",
                format!(
                    "{:?}",
                    self.store
                        .as_ref()
                        .map(|s| (s.target.shown().to_string(), s.lease))
                ),
            ),
            ("bind_addr / ports.http", self.bind.to_string()),
            ("advertise.http", format!("{:?}", self.advertise)),
            ("acl.enabled", format!("{:?}", self.acl.enabled)),
            ("tls.http", format!("{:?}", self.tls.http)),
            ("driver_allowlist", format!("{:?}", self.drivers)),
            (
                "limits",
                format!("{:?}", (&self.conn_limits, &self.backpressure)),
            ),
            ("ui", format!("{:?}", self.ui)),
            (
                "mesos.master",
                format!("{:?}", mesos.map(|m| m.masters.describe())),
            ),
            (
                "mesos (other settings)",
                format!(
                    "{:?}",
                    // Name, roles, failover timeout and capabilities change on the running
                    // framework (UPDATE_FRAMEWORK, `reload::MesosFrameworkTarget`).
                    mesos.map(|m| (
                        m.encoding,
                        &m.user,
                        &m.principal,
                        m.max_backoff,
                        &m.alloc_dir,
                        &m.ca_file
                    ))
                ),
            ),
            ("mesos.secret", format!("{secret_digest:?}")),
            (
                "local_runner",
                format!(
                    "{:?}",
                    (
                        self.local.cpus,
                        self.local.mem_mb,
                        self.local.disk_mb,
                        self.local.gpus,
                        &self.local.task_path
                    )
                ),
            ),
            (
                "telemetry.statsd_address",
                format!("{:?}", self.statsd_addr),
            ),
            ("gc", format!("{:?}", (self.gc.threshold, self.gc.interval))),
        ]
    }
}

/// The files a `-config` path names, for messages.
pub fn describe_files(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "no config file".into();
    }
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;

/// Parse a config file's text as if it were at `path` (tests and `dispatch` tooling).
pub fn parse_file(path: &Path) -> Result<Layer, ConfigError> {
    layer::from_tree(&source::read(path)?)
}
