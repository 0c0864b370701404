//! One layer of settings: a config file, or the command-line flags. Every value is checked
//! as it enters a layer (so a bad value names its own `file:line` or flag, even when a later
//! layer overrides it) and carries where it came from. Layers merge key by key: a later
//! layer's value replaces an earlier one; a key a layer does not set leaves it alone.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use super::source::{Entry, Node, Tree};
use super::{ConfigError, LogLevel, Origin, Secret, Set};
use crate::api::backpressure::RateLimit;
use crate::cluster::mesos::settings as ms;
use crate::model::drivers::DriverPolicy;

/// Settings of one layer; `None` = not set here.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub data_dir: Option<Set<PathBuf>>,
    pub bind_addr: Option<Set<IpAddr>>,
    pub http_port: Option<Set<u16>>,
    /// `host[:port]` or a URL.
    pub advertise_http: Option<Set<String>>,
    pub log_level: Option<Set<LogLevel>>,
    pub acl_enabled: Option<Set<bool>>,
    pub acl_bootstrap_token_file: Option<Set<Secret>>,
    pub tls_http: Option<Set<bool>>,
    pub tls_cert_file: Option<Set<PathBuf>>,
    pub tls_key_file: Option<Set<PathBuf>>,
    pub tls_ca_file: Option<Set<PathBuf>>,
    pub tls_verify_https_client: Option<Set<bool>>,
    pub mesos_masters: Option<Set<ms::MasterSource>>,
    pub mesos_encoding: Option<Set<crate::cluster::mesos::codec::Encoding>>,
    pub mesos_framework_name: Option<Set<String>>,
    pub mesos_roles: Option<Set<Vec<String>>>,
    pub mesos_user: Option<Set<String>>,
    pub mesos_principal: Option<Set<String>>,
    pub mesos_secret: Option<Set<Secret>>,
    pub mesos_failover_timeout: Option<Set<Duration>>,
    pub mesos_capabilities: Option<Set<Vec<String>>>,
    pub mesos_alloc_dir: Option<Set<String>>,
    pub mesos_max_backoff: Option<Set<Duration>>,
    pub mesos_ca_file: Option<Set<PathBuf>>,
    pub driver_allowlist: Option<Set<DriverPolicy>>,
    pub max_conns: Option<Set<usize>>,
    pub max_conns_per_client: Option<Set<usize>>,
    pub header_timeout: Option<Set<Duration>>,
    pub handshake_timeout: Option<Set<Duration>>,
    /// 0 = no cap.
    pub max_pending: Option<Set<u64>>,
    /// `None` inside = `off`.
    pub dispatch_rate: Option<Set<Option<RateLimit>>>,
    pub local_cpus: Option<Set<f64>>,
    pub local_memory_mb: Option<Set<f64>>,
    pub local_disk_mb: Option<Set<f64>>,
    pub local_gpus: Option<Set<f64>>,
    pub task_path: Option<Set<Vec<PathBuf>>>,
    pub statsd_address: Option<Set<String>>,
    /// `None` inside = `off`.
    pub gc_threshold: Option<Set<Option<Duration>>>,
    pub gc_interval: Option<Set<Duration>>,
    /// `store { postgres }` / `-store`: a PostgreSQL URL (checked for syntax here; the
    /// password is resolved when the whole config is known).
    pub store_postgres: Option<Set<String>>,
    pub store_password_file: Option<Set<PathBuf>>,
    pub store_lease: Option<Set<Duration>>,
    pub ui_enabled: Option<Set<bool>>,
    pub ui_dir: Option<Set<PathBuf>>,
}

macro_rules! merge_fields {
    ($base:ident, $later:ident; $($f:ident),* $(,)?) => {
        $( if $later.$f.is_some() { $base.$f = $later.$f; } )*
    };
}

impl Layer {
    /// `later` over `self`.
    pub fn merge(mut self, later: Layer) -> Layer {
        merge_fields!(self, later;
            data_dir, bind_addr, http_port, advertise_http, log_level, acl_enabled,
            tls_http, tls_cert_file, tls_key_file, tls_ca_file, tls_verify_https_client,
            mesos_masters, mesos_encoding, mesos_framework_name, mesos_roles, mesos_user,
            mesos_principal, mesos_secret, mesos_failover_timeout, mesos_capabilities,
            mesos_alloc_dir, mesos_max_backoff, local_cpus, local_memory_mb, local_disk_mb,
            local_gpus, task_path, statsd_address, gc_threshold, gc_interval,
            store_postgres, store_password_file, store_lease,
            acl_bootstrap_token_file, mesos_ca_file, driver_allowlist, max_conns,
            max_conns_per_client, header_timeout, handshake_timeout, max_pending, dispatch_rate, ui_enabled, ui_dir,
        );
        self
    }
}

// ---- value checks, shared by files and flags ----

pub fn duration(raw: &str) -> Result<Duration, String> {
    let ns = crate::spec::parse_go_duration(raw)
        .map_err(|e| format!("{raw:?} is not a duration ({e}); expected e.g. 90s, 15m, 168h"))?;
    if ns < 0 {
        return Err(format!(
            "{raw:?} is negative; expected a duration such as 5m"
        ));
    }
    Ok(Duration::from_nanos(ns as u64))
}

pub fn gc_threshold(raw: &str) -> Result<Option<Duration>, String> {
    match raw {
        "off" => Ok(None),
        d => duration(d).map(Some).map_err(|e| format!("{e}, or off")),
    }
}

/// `-store`: a PostgreSQL URL (the SQLite store in the data dir is the default).
pub fn store_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if !(trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")) {
        return Err(format!(
            "{:?} is not a PostgreSQL URL; expected postgres://user@host[:port]/database \
             (leave it unset for the SQLite store in the data dir)",
            crate::store::PgTarget::redacted(trimmed)
        ));
    }
    crate::store::PgTarget::parse(trimmed, None)?;
    Ok(trimmed.to_string())
}

/// `-store-lease`: how long a leader that stopped renewing keeps the lead.
pub fn store_lease(raw: &str) -> Result<Duration, String> {
    let d = duration(raw)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(300) {
        return Err(format!("{raw:?} is out of range; expected 1s to 5m"));
    }
    Ok(d)
}

pub fn gc_interval(raw: &str) -> Result<Duration, String> {
    let d = duration(raw)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

/// A settings error's text without the `-mesos-x: ` flag prefix (the caller names the key).
fn settings_msg(e: ms::SettingsError) -> String {
    let text = e.to_string();
    match text.split_once(": ") {
        Some((flag, rest)) if flag.starts_with("-mesos-") => rest.to_string(),
        _ => text,
    }
}

pub fn masters(raw: &str) -> Result<ms::MasterSource, String> {
    ms::parse_masters(raw).map_err(settings_msg)
}

pub fn encoding(raw: &str) -> Result<crate::cluster::mesos::codec::Encoding, String> {
    ms::parse_encoding(raw).map_err(settings_msg)
}

pub fn roles(raw: &[String]) -> Result<Vec<String>, String> {
    let roles: Vec<String> = raw
        .iter()
        .flat_map(|r| r.split(','))
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    for role in &roles {
        ms::check_role(role).map_err(settings_msg)?;
    }
    Ok(if roles.is_empty() {
        vec!["*".into()]
    } else {
        roles
    })
}

pub fn capabilities(raw: &[String]) -> Result<Vec<String>, String> {
    ms::parse_capabilities(Some(&raw.join(","))).map_err(settings_msg)
}

pub fn alloc_dir(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("{raw:?} must be an absolute path on the agents"));
    }
    Ok(raw.to_string())
}

pub fn secret_file(path: &Path) -> Result<Secret, String> {
    let value = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .trim_end_matches(['\n', '\r'])
        .to_string();
    Ok(Secret::File {
        path: path.to_path_buf(),
        value,
    })
}

/// A certificate or key file must be readable now (it is read again when TLS starts).
pub fn readable_file(path: &Path) -> Result<PathBuf, String> {
    std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

/// The ACL bootstrap token: a file holding the management token's secret (a UUID).
pub fn bootstrap_token_file(path: &Path) -> Result<Secret, String> {
    let secret = secret_file(path)?;
    let value = secret.value().trim();
    if uuid::Uuid::parse_str(value).is_err() {
        return Err(format!(
            "{} must hold a token secret (a UUID such as 3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a), \
             e.g. made with: uuidgen > {}",
            path.display(),
            path.display()
        ));
    }
    Ok(Secret::File {
        path: path.to_path_buf(),
        value: value.to_string(),
    })
}

pub fn driver_allowlist(items: &[String]) -> Result<DriverPolicy, String> {
    DriverPolicy::parse(items)
}

pub fn dispatch_rate(raw: &str) -> Result<Option<RateLimit>, String> {
    match raw.trim() {
        "off" | "0" => Ok(None),
        r => RateLimit::parse(r)
            .map(Some)
            .map_err(|e| format!("{e}, or off")),
    }
}

pub fn timeout(raw: &str) -> Result<Duration, String> {
    let d = duration(raw)?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

pub fn at_least_one(n: usize) -> Result<usize, String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

pub fn statsd_address(raw: &str) -> Result<String, String> {
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(raw.to_string())
        }
        _ => Err(format!(
            "{raw:?} is not an address; expected host:port, e.g. 127.0.0.1:8125"
        )),
    }
}

pub fn resource(raw: f64) -> Result<f64, String> {
    if !raw.is_finite() || raw < 0.0 {
        return Err(format!("{raw} must be a number of at least 0"));
    }
    Ok(raw)
}

pub fn advertise(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    match reqwest::Url::parse(&with_scheme) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(raw.to_string())
        }
        _ => Err(format!(
            "{raw:?} is not an address; expected host[:port] or http(s)://host[:port]"
        )),
    }
}

pub fn log_level(raw: &str) -> Result<LogLevel, String> {
    LogLevel::parse(raw)
}

// ---- a config file -> a layer ----

/// The keys of one block of a file, checked against what the block allows.
struct Block<'a> {
    file: &'a Path,
    /// `""` at the top, else `mesos.` etc.
    prefix: String,
    entries: &'a IndexMap<String, Entry>,
}

impl<'a> Block<'a> {
    fn origin(&self, line: usize) -> Origin {
        Origin::File {
            path: self.file.to_path_buf(),
            line,
        }
    }

    fn err(&self, entry: &Entry, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            origin: self.origin(entry.line),
            key: format!("{}{key}", self.prefix),
            message: message.into(),
        }
    }

    fn allow(&self, keys: &[&str]) -> Result<(), ConfigError> {
        for (key, entry) in self.entries {
            if !keys.contains(&key.as_str()) {
                let what = if self.prefix.is_empty() {
                    "the top level".to_string()
                } else {
                    format!("the {} block", self.prefix.trim_end_matches('.'))
                };
                return Err(self.err(
                    entry,
                    key,
                    format!("unknown key; {what} allows: {}", keys.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn block(&self, key: &str) -> Result<Option<Block<'a>>, ConfigError> {
        let Some(entry) = self.entries.get(key) else {
            return Ok(None);
        };
        let map = match &entry.node {
            Node::Object(map) => map,
            // HCL1-style JSON: `"mesos": [{...}]`
            Node::List(items) if items.len() == 1 => match &items[0].node {
                Node::Object(map) => map,
                other => {
                    return Err(self.err(
                        entry,
                        key,
                        format!("must be a block, not {}", other.type_name()),
                    ))
                }
            },
            other => {
                return Err(self.err(
                    entry,
                    key,
                    format!(
                        "must be a block ({key} {{ ... }}), not {}",
                        other.type_name()
                    ),
                ))
            }
        };
        Ok(Some(Block {
            file: self.file,
            prefix: format!("{}{key}.", self.prefix),
            entries: map,
        }))
    }

    /// A value converted by `convert`, then checked by `check`.
    fn get<R, T>(
        &self,
        key: &str,
        convert: impl Fn(&Node) -> Result<R, String>,
        check: impl Fn(R) -> Result<T, String>,
    ) -> Result<Option<Set<T>>, ConfigError> {
        let Some(entry) = self.entries.get(key) else {
            return Ok(None);
        };
        let raw = convert(&entry.node).map_err(|m| self.err(entry, key, m))?;
        let value = check(raw).map_err(|m| self.err(entry, key, m))?;
        Ok(Some(Set {
            value,
            origin: self.origin(entry.line),
        }))
    }

    fn string<T>(
        &self,
        key: &str,
        check: impl Fn(String) -> Result<T, String>,
    ) -> Result<Option<Set<T>>, ConfigError> {
        self.get(key, as_string, check)
    }

    fn path<T>(
        &self,
        key: &str,
        check: impl Fn(PathBuf) -> Result<T, String>,
    ) -> Result<Option<Set<T>>, ConfigError> {
        self.get(key, as_string, |s| check(absolute(s)?))
    }
}

fn as_string(node: &Node) -> Result<String, String> {
    match node {
        Node::Str(s) => Ok(s.clone()),
        other => Err(format!("must be a string, not {}", other.type_name())),
    }
}

fn as_bool(node: &Node) -> Result<bool, String> {
    match node {
        Node::Bool(b) => Ok(*b),
        other => Err(format!("must be true or false, not {}", other.type_name())),
    }
}

fn as_number(node: &Node) -> Result<f64, String> {
    match node {
        Node::Num(n) => n.parse::<f64>().map_err(|_| format!("{n} is not a number")),
        other => Err(format!("must be a number, not {}", other.type_name())),
    }
}

fn as_count(node: &Node) -> Result<u64, String> {
    match node {
        Node::Num(n) => n
            .parse::<u64>()
            .map_err(|_| format!("{n} is not a whole number of at least 0")),
        other => Err(format!("must be a whole number, not {}", other.type_name())),
    }
}

fn as_port(node: &Node) -> Result<u16, String> {
    match node {
        Node::Num(n) => match n.parse::<u16>() {
            // 0 asks the system for any free port (the address is logged once bound).
            Ok(p) => Ok(p),
            _ => Err(format!("{n} is not a port; expected 0 to 65535")),
        },
        other => Err(format!("must be a port number, not {}", other.type_name())),
    }
}

/// A string or a list of strings (`role = "a"` or `role = ["a", "b"]`).
fn as_strings(node: &Node) -> Result<Vec<String>, String> {
    match node {
        Node::Str(s) => Ok(vec![s.clone()]),
        Node::List(items) => items.iter().map(|e| as_string(&e.node)).collect(),
        other => Err(format!(
            "must be a string or a list of strings, not {}",
            other.type_name()
        )),
    }
}

/// Paths in a config file are absolute: a service's working directory is not something the
/// file's author controls.
fn absolute(raw: String) -> Result<PathBuf, String> {
    let path = PathBuf::from(&raw);
    if !path.is_absolute() {
        return Err(format!("{raw:?} must be an absolute path"));
    }
    Ok(path)
}

/// A directory of UI templates (`-ui-dir`, `ui { dir }`): it must exist.
pub fn ui_dir(dir: PathBuf) -> Result<PathBuf, String> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "{} is not a directory; expected a copy of the repository's templates/",
            dir.display()
        ))
    }
}

fn ok<T>(v: T) -> Result<T, String> {
    Ok(v)
}

/// Decode one parsed file into a layer.
pub fn from_tree(tree: &Tree) -> Result<Layer, ConfigError> {
    let top = Block {
        file: &tree.file,
        prefix: String::new(),
        entries: &tree.root,
    };
    top.allow(&[
        "data_dir",
        "bind_addr",
        "ports",
        "advertise",
        "log_level",
        "acl",
        "tls",
        "mesos",
        "local_runner",
        "telemetry",
        "gc",
        "store",
        "ui",
        "driver_allowlist",
        "limits",
    ])?;
    let mut layer = Layer {
        data_dir: top.path("data_dir", ok)?,
        bind_addr: top.string("bind_addr", |s| {
            s.parse::<IpAddr>().map_err(|_| {
                format!("{s:?} is not an IP address; expected e.g. 127.0.0.1 or 0.0.0.0")
            })
        })?,
        log_level: top.string("log_level", |s| log_level(&s))?,
        driver_allowlist: top.get("driver_allowlist", as_strings, |l| driver_allowlist(&l))?,
        ..Layer::default()
    };
    if let Some(ports) = top.block("ports")? {
        ports.allow(&["http"])?;
        layer.http_port = ports.get("http", as_port, ok)?;
    }
    if let Some(adv) = top.block("advertise")? {
        adv.allow(&["http"])?;
        layer.advertise_http = adv.string("http", |s| advertise(&s))?;
    }
    if let Some(acl) = top.block("acl")? {
        acl.allow(&["enabled", "bootstrap_token_file"])?;
        layer.acl_enabled = acl.get("enabled", as_bool, ok)?;
        layer.acl_bootstrap_token_file =
            acl.path("bootstrap_token_file", |p| bootstrap_token_file(&p))?;
    }
    if let Some(tls) = top.block("tls")? {
        tls_block(&tls, &mut layer)?;
    }
    if let Some(mesos) = top.block("mesos")? {
        mesos_block(&mesos, &mut layer)?;
    }
    if let Some(local) = top.block("local_runner")? {
        local.allow(&["cpus", "memory_mb", "disk_mb", "gpus", "task_path"])?;
        layer.local_cpus = local.get("cpus", as_number, resource)?;
        layer.local_memory_mb = local.get("memory_mb", as_number, resource)?;
        layer.local_disk_mb = local.get("disk_mb", as_number, resource)?;
        layer.local_gpus = local.get("gpus", as_number, resource)?;
        layer.task_path = local.get("task_path", as_strings, |dirs| {
            dirs.into_iter().map(absolute).collect()
        })?;
    }
    if let Some(telemetry) = top.block("telemetry")? {
        telemetry.allow(&["statsd_address"])?;
        layer.statsd_address = telemetry.string("statsd_address", |s| statsd_address(&s))?;
    }
    if let Some(store) = top.block("store")? {
        store.allow(&["postgres", "password_file", "lease"])?;
        layer.store_postgres = store.string("postgres", |s| store_url(&s))?;
        layer.store_password_file = store.path("password_file", |p| readable_file(&p))?;
        layer.store_lease = store.string("lease", |s| store_lease(&s))?;
    }
    if let Some(ui) = top.block("ui")? {
        ui.allow(&["enabled", "dir"])?;
        layer.ui_enabled = ui.get("enabled", as_bool, ok)?;
        layer.ui_dir = ui.path("dir", ui_dir)?;
    }
    if let Some(limits) = top.block("limits")? {
        limits.allow(&[
            "http_max_conns",
            "http_max_conns_per_client",
            "http_header_timeout",
            "https_handshake_timeout",
            "max_pending",
            "dispatch_rate",
        ])?;
        let usize_of = |n: u64| usize::try_from(n).map_err(|_| format!("{n} is too large"));
        layer.max_conns = limits.get("http_max_conns", as_count, |n| at_least_one(usize_of(n)?))?;
        layer.max_conns_per_client = limits.get("http_max_conns_per_client", as_count, usize_of)?;
        layer.header_timeout = limits.string("http_header_timeout", |s| timeout(&s))?;
        layer.handshake_timeout = limits.string("https_handshake_timeout", |s| timeout(&s))?;
        layer.max_pending = limits.get("max_pending", as_count, ok)?;
        layer.dispatch_rate = limits.string("dispatch_rate", |s| dispatch_rate(&s))?;
    }
    if let Some(gc) = top.block("gc")? {
        gc.allow(&["threshold", "interval"])?;
        layer.gc_threshold = gc.string("threshold", |s| gc_threshold(&s))?;
        layer.gc_interval = gc.string("interval", |s| gc_interval(&s))?;
    }
    Ok(layer)
}

fn tls_block(tls: &Block<'_>, layer: &mut Layer) -> Result<(), ConfigError> {
    tls.allow(&[
        "http",
        "cert_file",
        "key_file",
        "ca_file",
        "verify_https_client",
        "verify_clients",
    ])?;
    layer.tls_http = tls.get("http", as_bool, ok)?;
    layer.tls_cert_file = tls.path("cert_file", |p| readable_file(&p))?;
    layer.tls_key_file = tls.path("key_file", |p| readable_file(&p))?;
    layer.tls_ca_file = tls.path("ca_file", |p| readable_file(&p))?;
    let nomad = tls.get("verify_https_client", as_bool, ok)?;
    let alias = tls.get("verify_clients", as_bool, ok)?;
    if let (Some(_), Some(second)) = (&nomad, &alias) {
        return Err(ConfigError::Value {
            origin: second.origin.clone(),
            key: "tls.verify_clients".into(),
            message: "is the same setting as tls.verify_https_client; set only one".into(),
        });
    }
    layer.tls_verify_https_client = nomad.or(alias);
    Ok(())
}

fn mesos_block(mesos: &Block<'_>, layer: &mut Layer) -> Result<(), ConfigError> {
    mesos.allow(&[
        "master",
        "content_type",
        "framework_name",
        "role",
        "user",
        "principal",
        "secret",
        "secret_file",
        "failover_timeout",
        "capabilities",
        "alloc_dir",
        "max_backoff",
        "ca_file",
    ])?;
    layer.mesos_masters = mesos.get("master", as_strings, |list| masters(&list.join(",")))?;
    layer.mesos_encoding = mesos.string("content_type", |s| encoding(&s))?;
    layer.mesos_framework_name = mesos.string("framework_name", nonempty)?;
    layer.mesos_roles = mesos.get("role", as_strings, |list| roles(&list))?;
    layer.mesos_user = mesos.string("user", nonempty)?;
    layer.mesos_principal = mesos.string("principal", nonempty)?;
    let inline = mesos.string("secret", |s| ok(Secret::Inline(s)))?;
    let file = mesos.path("secret_file", |p| secret_file(&p))?;
    if let (Some(_), Some(second)) = (&inline, &file) {
        return Err(ConfigError::Value {
            origin: second.origin.clone(),
            key: "mesos.secret_file".into(),
            message: "mesos.secret and mesos.secret_file are mutually exclusive; keep secret_file"
                .into(),
        });
    }
    layer.mesos_secret = inline.or(file);
    layer.mesos_failover_timeout = mesos.string("failover_timeout", |s| duration(&s))?;
    layer.mesos_capabilities = mesos.get("capabilities", as_strings, |list| capabilities(&list))?;
    layer.mesos_alloc_dir = mesos.string("alloc_dir", |s| alloc_dir(&s))?;
    layer.mesos_max_backoff = mesos.string("max_backoff", |s| duration(&s))?;
    layer.mesos_ca_file = mesos.path("ca_file", |p| readable_file(&p))?;
    Ok(())
}

fn nonempty(s: String) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s)
}

// ---- the command line -> a layer ----

/// The `dispatch server` flags as given (`None` = not given), before any check.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub data_dir: Option<PathBuf>,
    pub bind: Option<SocketAddr>,
    pub advertise: Option<String>,
    pub log_level: Option<String>,
    pub local_cpus: Option<f64>,
    pub local_memory_mb: Option<f64>,
    pub local_disk_mb: Option<f64>,
    pub local_gpus: Option<f64>,
    pub task_path: Vec<PathBuf>,
    pub statsd_addr: Option<String>,
    pub ui_dir: Option<PathBuf>,
    pub mesos_master: Option<String>,
    pub mesos_content_type: Option<String>,
    pub mesos_framework_name: Option<String>,
    pub mesos_role: Vec<String>,
    pub mesos_user: Option<String>,
    pub mesos_principal: Option<String>,
    pub mesos_secret: Option<String>,
    pub mesos_secret_file: Option<PathBuf>,
    pub mesos_failover_timeout: Option<String>,
    pub mesos_capabilities: Option<String>,
    pub mesos_alloc_dir: Option<String>,
    pub mesos_max_backoff: Option<String>,
    pub gc_threshold: Option<String>,
    pub gc_interval: Option<String>,
    pub store: Option<String>,
    pub store_password_file: Option<PathBuf>,
    pub store_lease: Option<String>,
    pub acl_enabled: Option<bool>,
    pub acl_bootstrap_token_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_verify_clients: Option<bool>,
    pub mesos_ca_file: Option<PathBuf>,
    pub driver_allowlist: Option<String>,
    pub max_conns: Option<usize>,
    pub max_conns_per_client: Option<usize>,
    pub header_timeout: Option<String>,
    pub handshake_timeout: Option<String>,
    pub max_pending: Option<u64>,
    pub dispatch_rate: Option<String>,
}

fn flag<R, T>(
    name: &'static str,
    raw: Option<R>,
    check: impl Fn(R) -> Result<T, String>,
) -> Result<Option<Set<T>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let value = check(raw).map_err(|message| ConfigError::Value {
        origin: Origin::Flag(name),
        key: String::new(),
        message,
    })?;
    Ok(Some(Set {
        value,
        origin: Origin::Flag(name),
    }))
}

impl Flags {
    /// Check every flag given; the layer that goes over the config files.
    pub fn layer(&self) -> Result<Layer, ConfigError> {
        let f = self.clone();
        if f.mesos_secret.is_some() && f.mesos_secret_file.is_some() {
            return Err(ConfigError::Value {
                origin: Origin::Flag("mesos-secret-file"),
                key: String::new(),
                message: "-mesos-secret and -mesos-secret-file are mutually exclusive".into(),
            });
        }
        let nonempty_vec = |v: Vec<PathBuf>| (!v.is_empty()).then_some(v);
        let roles_given = (!f.mesos_role.is_empty()).then_some(f.mesos_role.clone());
        Ok(Layer {
            data_dir: flag("data-dir", f.data_dir, ok)?,
            bind_addr: flag("bind", f.bind, |a| ok(a.ip()))?,
            http_port: flag("bind", f.bind, |a| ok(a.port()))?,
            advertise_http: flag("advertise", f.advertise, |s| advertise(&s))?,
            log_level: flag("log-level", f.log_level, |s| log_level(&s))?,
            acl_enabled: flag("acl-enabled", f.acl_enabled, ok)?,
            acl_bootstrap_token_file: flag(
                "acl-bootstrap-token-file",
                f.acl_bootstrap_token_file,
                |p| bootstrap_token_file(&p),
            )?,
            // A certificate given on the command line means HTTPS.
            tls_http: flag("tls-cert-file", f.tls_cert_file.as_ref().map(|_| true), ok)?,
            tls_cert_file: flag("tls-cert-file", f.tls_cert_file, |p| readable_file(&p))?,
            tls_key_file: flag("tls-key-file", f.tls_key_file, |p| readable_file(&p))?,
            tls_ca_file: flag("tls-ca-file", f.tls_ca_file, |p| readable_file(&p))?,
            tls_verify_https_client: flag("tls-verify-clients", f.tls_verify_clients, ok)?,
            mesos_ca_file: flag("mesos-ca-file", f.mesos_ca_file, |p| readable_file(&p))?,
            driver_allowlist: flag("driver-allowlist", f.driver_allowlist, |s| {
                driver_allowlist(&[s])
            })?,
            max_conns: flag("max-conns", f.max_conns, at_least_one)?,
            max_conns_per_client: flag("max-conns-per-client", f.max_conns_per_client, ok)?,
            header_timeout: flag("header-timeout", f.header_timeout, |s| timeout(&s))?,
            handshake_timeout: flag("handshake-timeout", f.handshake_timeout, |s| timeout(&s))?,
            max_pending: flag("max-pending", f.max_pending, ok)?,
            dispatch_rate: flag("dispatch-rate", f.dispatch_rate, |s| dispatch_rate(&s))?,
            mesos_masters: flag("mesos-master", f.mesos_master, |s| masters(&s))?,
            mesos_encoding: flag("mesos-content-type", f.mesos_content_type, |s| encoding(&s))?,
            mesos_framework_name: flag("mesos-framework-name", f.mesos_framework_name, nonempty)?,
            mesos_roles: flag("mesos-role", roles_given, |r| roles(&r))?,
            mesos_user: flag("mesos-user", f.mesos_user, nonempty)?,
            mesos_principal: flag("mesos-principal", f.mesos_principal, nonempty)?,
            mesos_secret: match (f.mesos_secret, f.mesos_secret_file) {
                (Some(s), _) => flag("mesos-secret", Some(s), |s| ok(Secret::Inline(s)))?,
                (None, file) => flag("mesos-secret-file", file, |p| secret_file(&p))?,
            },
            mesos_failover_timeout: flag(
                "mesos-failover-timeout",
                f.mesos_failover_timeout,
                |s| duration(&s),
            )?,
            mesos_capabilities: flag("mesos-capabilities", f.mesos_capabilities, |s| {
                capabilities(&[s])
            })?,
            mesos_alloc_dir: flag("mesos-alloc-dir", f.mesos_alloc_dir, |s| alloc_dir(&s))?,
            mesos_max_backoff: flag("mesos-max-backoff", f.mesos_max_backoff, |s| duration(&s))?,
            local_cpus: flag("local-cpus", f.local_cpus, resource)?,
            local_memory_mb: flag("local-memory-mb", f.local_memory_mb, resource)?,
            local_disk_mb: flag("local-disk-mb", f.local_disk_mb, resource)?,
            local_gpus: flag("local-gpus", f.local_gpus, resource)?,
            task_path: flag("task-path", nonempty_vec(f.task_path), ok)?,
            statsd_address: flag("statsd-addr", f.statsd_addr, |s| statsd_address(&s))?,
            gc_threshold: flag("gc-threshold", f.gc_threshold, |s| gc_threshold(&s))?,
            gc_interval: flag("gc-interval", f.gc_interval, |s| gc_interval(&s))?,
            store_postgres: flag("store", f.store, |s| store_url(&s))?,
            store_password_file: flag("store-password-file", f.store_password_file, |p| {
                readable_file(&p)
            })?,
            store_lease: flag("store-lease", f.store_lease, |s| store_lease(&s))?,
            ui_enabled: None,
            ui_dir: flag("ui-dir", f.ui_dir, |d| {
                ui_dir(std::path::absolute(&d).map_err(|e| format!("{}: {e}", d.display()))?)
            })?,
        })
    }
}
