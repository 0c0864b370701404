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

/// Everything the Mesos backend is started with.
#[derive(Debug, Clone)]
pub struct MesosSettings {
    /// Base URLs of the masters (`http://10.0.0.5:5050`), tried in order to find the leader.
    pub masters: Vec<String>,
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
    #[error("-mesos-master: {0:?} is not a master address; expected host:port or http(s)://host:port, comma-separated")]
    BadMaster(String),
    #[error("-mesos-master: ZooKeeper URLs ({0:?}) are not supported; list the masters as host:port,host:port")]
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

/// `host:port,http://host2:port` -> base URLs. A bare host gets port 5050.
pub fn parse_masters(list: &str) -> Result<Vec<String>, SettingsError> {
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if raw.starts_with("zk://") {
            return Err(SettingsError::ZooKeeper(raw.to_string()));
        }
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let mut url = reqwest::Url::parse(&with_scheme)
            .map_err(|_| SettingsError::BadMaster(raw.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SettingsError::BadMaster(raw.to_string()));
        }
        if url.port().is_none() && !raw.contains("://") {
            let _ = url.set_port(Some(5050));
        }
        let base = url.as_str().trim_end_matches('/').to_string();
        out.push(base);
    }
    if out.is_empty() {
        return Err(SettingsError::BadMaster(list.to_string()));
    }
    Ok(out)
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

    #[test]
    fn masters_parse_with_default_port_and_scheme() {
        assert_eq!(
            parse_masters("10.0.0.5:5050, m2 ,https://m3:8443/").unwrap(),
            vec!["http://10.0.0.5:5050", "http://m2:5050", "https://m3:8443"]
        );
        assert!(matches!(
            parse_masters("zk://z1:2181/mesos"),
            Err(SettingsError::ZooKeeper(_))
        ));
        assert!(parse_masters("ftp://x").is_err());
        assert!(parse_masters(" , ").is_err());
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
