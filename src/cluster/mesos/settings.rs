//! How Dispatch presents itself to Mesos: the masters to talk to, the encoding, and the
//! `FrameworkInfo` fields (`-mesos-*` server flags).

use std::time::Duration;

use super::codec::Encoding;
use super::json::{Capability, FrameworkInfo};
use crate::cluster::types::Id;

/// Capabilities declared unless told otherwise.
pub const DEFAULT_CAPABILITIES: &[&str] = &["MULTI_ROLE", "PARTITION_AWARE", "TASK_KILLING_STATE"];

/// Every `FrameworkInfo.Capability.Type` Mesos 1.12 knows.
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "REVOCABLE_RESOURCES",
    "TASK_KILLING_STATE",
    "GPU_RESOURCES",
    "SHARED_RESOURCES",
    "PARTITION_AWARE",
    "MULTI_ROLE",
    "RESERVATION_REFINEMENT",
    "REGION_AWARE",
];

/// One week: tasks keep running that long while Dispatch is away (Mesos's default, 0,
/// would kill them the moment the connection drops).
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the masters are: a list to try in order, or ZooKeeper, where they register.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterSource {
    /// Base URLs of the masters (`http://10.0.0.5:5050`), tried in order to find the leader.
    List(Vec<String>),
    /// The ZooKeeper path the masters contend under (`zk://h1:2181,h2:2181/mesos`).
    ZooKeeper(ZkUrl),
}

impl MasterSource {
    /// The masters as configured, for logs, `/v1/agent/self` and comparisons (never a
    /// ZooKeeper password).
    pub fn describe(&self) -> Vec<String> {
        match self {
            MasterSource::List(list) => list.clone(),
            MasterSource::ZooKeeper(zk) => vec![zk.to_string()],
        }
    }
}

impl std::fmt::Display for MasterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe().join(","))
    }
}

/// `zk://[user:password@]host1:port1,host2:port2/path`, Mesos's `--zk` form.
#[derive(Clone, PartialEq)]
pub struct ZkUrl {
    /// `host1:2181,host2:2181` (a ZooKeeper connection string without chroot).
    pub servers: String,
    /// The znode the masters register under (`/mesos`).
    pub path: String,
    /// Digest credentials (`user:password`) for reading the masters' nodes.
    pub credentials: Option<String>,
}

impl std::fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zk://{}{}", self.servers, self.path)
    }
}

impl std::fmt::Debug for ZkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Default ZooKeeper client port.
const ZK_PORT: u16 = 2181;

/// Everything the Mesos backend is started with.
#[derive(Debug, Clone)]
pub struct MesosSettings {
    pub masters: MasterSource,
    pub encoding: Encoding,
    pub framework_name: String,
    /// `FrameworkInfo.user`: the user tasks run as unless they set one.
    pub user: String,
    pub roles: Vec<String>,
    pub principal: Option<String>,
    /// With `principal`: HTTP Basic credentials on every call.
    pub secret: Option<String>,
    pub failover_timeout: Duration,
    pub capabilities: Vec<String>,
    /// Where a Mesos operator finds us (the API's address).
    pub webui_url: Option<String>,
    /// Base URL of our API as agents reach it (sandbox files are fetched from here).
    pub advertise_url: String,
    /// Upper bound of the reconnect backoff.
    pub max_backoff: Duration,
    /// Directory on the agents where the steps of a pipeline group share `alloc/`.
    pub alloc_dir: String,
    /// CA bundle (PEM) that `https://` masters' certificates are checked against, instead
    /// of the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Signs the sandbox file URLs agents fetch (the server sets it from its data dir).
    pub fetch_key: Option<crate::cluster::fetch_urls::FetchKey>,
}

/// Default of `-mesos-alloc-dir`.
pub const DEFAULT_ALLOC_DIR: &str = "/tmp/dispatch-allocs";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("-mesos-master: {0:?} is not a master address; expected host:port or http(s)://host:port, comma-separated, or zk://host:port,host:port/path")]
    BadMaster(String),
    #[error("-mesos-master: {0:?} is not a ZooKeeper URL; expected zk://host:port,host:port/path (e.g. zk://10.0.0.2:2181/mesos), alone")]
    ZooKeeper(String),
    #[error("-mesos-capabilities: unknown capability {0:?}; known: {known}", known = KNOWN_CAPABILITIES.join(", "))]
    UnknownCapability(String),
    #[error("-mesos-role: {0:?} is not a valid role name (no '.', '..', leading '-', '/', '\\\\' or whitespace)")]
    BadRole(String),
    #[error("-mesos-secret needs -mesos-principal")]
    SecretWithoutPrincipal,
    #[error("-mesos-content-type: {0:?} is not an encoding; expected json or protobuf")]
    BadEncoding(String),
}

/// `host:port,http://host2:port` -> base URLs; `zk://...` -> ZooKeeper detection.
///
/// A bare host gets port 5050. Only scheme, host and port are kept: a master's web UI address
/// as copied from a browser (`http://10.0.0.5:5050/#/`) names the same master.
pub fn parse_masters(list: &str) -> Result<MasterSource, SettingsError> {
    let trimmed = list.trim();
    if trimmed.starts_with("zk://") {
        return parse_zk(trimmed).map(MasterSource::ZooKeeper);
    }
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if raw.starts_with("zk://") {
            return Err(SettingsError::ZooKeeper(list.to_string()));
        }
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let url = reqwest::Url::parse(&with_scheme)
            .map_err(|_| SettingsError::BadMaster(raw.to_string()))?;
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(SettingsError::BadMaster(raw.to_string()));
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SettingsError::BadMaster(raw.to_string()));
        }
        let port = match url.port() {
            Some(p) => p,
            None if !raw.contains("://") => 5050,
            None => url.port_or_known_default().unwrap_or(5050),
        };
        let base = format!("{}://{host}:{port}", url.scheme());
        if !out.contains(&base) {
            out.push(base);
        }
    }
    if out.is_empty() {
        return Err(SettingsError::BadMaster(list.to_string()));
    }
    Ok(MasterSource::List(out))
}

/// `zk://[user:password@]host[:port],host[:port]/path`.
fn parse_zk(raw: &str) -> Result<ZkUrl, SettingsError> {
    let bad = || SettingsError::ZooKeeper(raw.to_string());
    let rest = raw.strip_prefix("zk://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return Err(bad()),
    };
    let path = path.trim_end_matches('/');
    if path.is_empty() || path.contains("//") || path.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((creds, hosts)) if creds.contains(':') => (Some(creds.to_string()), hosts),
        Some(_) => return Err(bad()),
        None => (None, authority),
    };
    let mut servers = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port.parse::<u16>().map_err(|_| bad())?),
            None => (host, ZK_PORT),
        };
        if name.is_empty() || name.contains(['/', '@', ' ']) {
            return Err(bad());
        }
        servers.push(format!("{name}:{port}"));
    }
    if servers.is_empty() {
        return Err(bad());
    }
    Ok(ZkUrl {
        servers: servers.join(","),
        path: path.to_string(),
        credentials,
    })
}

/// The default capabilities plus `extra` (comma-separated names, case-insensitive).
pub fn parse_capabilities(extra: Option<&str>) -> Result<Vec<String>, SettingsError> {
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    for name in extra
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let upper = name.to_ascii_uppercase();
        if !KNOWN_CAPABILITIES.contains(&upper.as_str()) {
            return Err(SettingsError::UnknownCapability(name.to_string()));
        }
        if !caps.contains(&upper) {
            caps.push(upper);
        }
    }
    Ok(caps)
}

/// Mesos's role name rules.
pub fn check_role(role: &str) -> Result<(), SettingsError> {
    let bad = role.is_empty()
        || role
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        || role.starts_with('-')
        || role.contains('\\')
        || role.chars().any(char::is_whitespace);
    if bad && role != "*" {
        return Err(SettingsError::BadRole(role.to_string()));
    }
    Ok(())
}

pub fn parse_encoding(s: &str) -> Result<Encoding, SettingsError> {
    match s.to_ascii_lowercase().as_str() {
        "json" | "application/json" => Ok(Encoding::Json),
        "protobuf" | "proto" | "application/x-protobuf" => Ok(Encoding::Protobuf),
        _ => Err(SettingsError::BadEncoding(s.to_string())),
    }
}

impl MesosSettings {
    /// What differs from `new` among the fields UPDATE_FRAMEWORK can change on the running
    /// framework (name, roles, failover timeout, capabilities), as `key old -> new`.
    pub fn updatable_changes(&self, new: &MesosSettings) -> Vec<String> {
        let mut out = Vec::new();
        if self.framework_name != new.framework_name {
            out.push(format!(
                "mesos.framework_name {:?} -> {:?}",
                self.framework_name, new.framework_name
            ));
        }
        if self.roles != new.roles {
            out.push(format!("mesos.role {:?} -> {:?}", self.roles, new.roles));
        }
        if self.failover_timeout != new.failover_timeout {
            out.push(format!(
                "mesos.failover_timeout {} -> {}",
                humantime::format_duration(self.failover_timeout),
                humantime::format_duration(new.failover_timeout)
            ));
        }
        if self.capabilities != new.capabilities {
            out.push(format!(
                "mesos.capabilities {:?} -> {:?}",
                self.capabilities, new.capabilities
            ));
        }
        out
    }

    /// These settings with the updatable fields of `new` (the rest stays until a restart).
    pub fn with_updates_from(&self, new: &MesosSettings) -> MesosSettings {
        MesosSettings {
            framework_name: new.framework_name.clone(),
            roles: new.roles.clone(),
            failover_timeout: new.failover_timeout,
            capabilities: new.capabilities.clone(),
            ..self.clone()
        }
    }

    /// The `FrameworkInfo` of a SUBSCRIBE (`id` set when resubscribing).
    pub fn framework_info(&self, id: Option<&str>) -> FrameworkInfo {
        FrameworkInfo {
            user: self.user.clone(),
            name: self.framework_name.clone(),
            id: id.map(Id::new),
            failover_timeout: Some(self.failover_timeout.as_secs_f64()),
            checkpoint: Some(true),
            roles: self.roles.clone(),
            hostname: None,
            principal: self.principal.clone(),
            webui_url: self.webui_url.clone(),
            capabilities: self
                .capabilities
                .iter()
                .map(|c| Capability { kind: c.clone() })
                .collect(),
            labels: None,
            extra: Default::default(),
        }
    }

    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    /// `Authorization` header value, when credentials are configured.
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine;
        let principal = self.principal.as_deref()?;
        let secret = self.secret.as_deref()?;
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<String> {
        match parse_masters(s).unwrap() {
            MasterSource::List(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn masters_parse_with_default_port_and_scheme() {
        assert_eq!(
            list("10.0.0.5:5050, m2 ,https://m3:8443/"),
            vec!["http://10.0.0.5:5050", "http://m2:5050", "https://m3:8443"]
        );
        assert!(parse_masters("ftp://x").is_err());
        assert!(parse_masters(" , ").is_err());
        assert!(parse_masters("http://").is_err());
    }

    #[test]
    fn a_browser_address_names_the_master() {
        assert_eq!(
            list("http://127.0.0.1:5050/#/"),
            vec!["http://127.0.0.1:5050"]
        );
        assert_eq!(
            list("https://mesos.example/#/agents?x=1"),
            vec!["https://mesos.example:443"]
        );
        assert_eq!(list("m1:5050/master/state"), vec!["http://m1:5050"]);
        assert_eq!(list("[::1]:5050"), vec!["http://[::1]:5050"]);
    }

    #[test]
    fn zookeeper_urls_parse_like_mesos_zk_flag() {
        let MasterSource::ZooKeeper(zk) =
            parse_masters("zk://z1:2181,z2,10.0.0.3:2182/mesos/").unwrap()
        else {
            panic!()
        };
        assert_eq!(zk.servers, "z1:2181,z2:2181,10.0.0.3:2182");
        assert_eq!(zk.path, "/mesos");
        assert_eq!(zk.credentials, None);
        assert_eq!(zk.to_string(), "zk://z1:2181,z2:2181,10.0.0.3:2182/mesos");
        let MasterSource::ZooKeeper(zk) = parse_masters("zk://u:p@z1:2181/a/b").unwrap() else {
            panic!()
        };
        assert_eq!(zk.credentials.as_deref(), Some("u:p"));
        assert_eq!(zk.path, "/a/b");
        // The password never shows.
        assert_eq!(format!("{zk:?}"), "zk://z1:2181/a/b");
        for bad in [
            "zk://z1:2181",
            "zk://z1:2181/",
            "zk:///mesos",
            "zk://z1:x/mesos",
            "zk://u@z1/mesos",
            "m1:5050,zk://z1/mesos",
        ] {
            assert!(
                matches!(parse_masters(bad), Err(SettingsError::ZooKeeper(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn capabilities_add_to_defaults_and_reject_unknown_names() {
        let caps = parse_capabilities(Some("gpu_resources,SHARED_RESOURCES")).unwrap();
        assert_eq!(
            caps,
            vec![
                "MULTI_ROLE",
                "PARTITION_AWARE",
                "TASK_KILLING_STATE",
                "GPU_RESOURCES",
                "SHARED_RESOURCES"
            ]
        );
        let err = parse_capabilities(Some("TELEPORT")).unwrap_err();
        assert!(err.to_string().contains("unknown capability \"TELEPORT\""));
    }

    #[test]
    fn roles_follow_mesos_rules() {
        for ok in ["*", "batch", "eng/backend"] {
            check_role(ok).unwrap();
        }
        for bad in ["", ".", "..", "-x", "a b", "a\\b", "a//b", "/a"] {
            assert!(check_role(bad).is_err(), "{bad}");
        }
    }
}
