//! SIGHUP: read the same `-config` paths again (the flags given at start still win), apply
//! what can change while the server runs, and say what happened: what changed, what changed
//! but needs a restart, or why the new configuration was refused (the running one stays).
//!
//! What can change is a list of `Reloadable`s, each owning a part of `Config`: the log level,
//! the TLS certificates, the ACL bootstrap token, and the Mesos framework's name, roles,
//! failover timeout and capabilities (sent to the master as UPDATE_FRAMEWORK: no
//! re-registration, tasks keep running). Every part is checked before any is applied, so a
//! reload is all or nothing.

use std::path::PathBuf;

use super::{describe_files, load, Config, Flags};

/// A part of the running server that follows the configuration without a restart.
pub trait Reloadable: Send {
    /// The config key(s) it owns, for messages and for telling restart-only changes apart.
    fn keys(&self) -> &'static [&'static str];
    /// Whether `new` can be applied (files readable, ...); nothing is applied yet.
    fn check(&self, _new: &Config) -> Result<(), String> {
        Ok(())
    }
    /// Apply `new`; `Some("old -> new")` when something changed.
    fn apply(&mut self, old: &Config, new: &Config) -> Option<String>;
}

/// Installs an env-filter directive in the running subscriber.
type SetFilter = Box<dyn Fn(&str) -> Result<(), String> + Send>;

/// The log filter of the running subscriber.
pub struct LogLevelTarget {
    set: SetFilter,
}

impl LogLevelTarget {
    /// `set` installs a new env-filter directive in the subscriber.
    pub fn new(set: impl Fn(&str) -> Result<(), String> + Send + 'static) -> Self {
        LogLevelTarget { set: Box::new(set) }
    }
}

impl Reloadable for LogLevelTarget {
    fn keys(&self) -> &'static [&'static str] {
        &["log_level"]
    }

    fn apply(&mut self, old: &Config, new: &Config) -> Option<String> {
        if old.log_level.filter == new.log_level.filter {
            return None;
        }
        match (self.set)(&new.log_level.filter) {
            Ok(()) => Some(format!("log_level {} -> {}", old.log_level, new.log_level)),
            Err(e) => {
                tracing::error!("log_level: cannot apply {}: {e}", new.log_level);
                None
            }
        }
    }
}

/// The API's TLS certificates, key and client CA: read again on every reload, so renewed
/// certificates are used by new connections (open ones keep theirs). Turning HTTPS on or off
/// needs a restart.
pub struct TlsTarget {
    tls: crate::listener::ServerTls,
}

impl TlsTarget {
    pub fn new(tls: crate::listener::ServerTls) -> Self {
        TlsTarget { tls }
    }
}

impl Reloadable for TlsTarget {
    fn keys(&self) -> &'static [&'static str] {
        &["tls"]
    }

    fn check(&self, new: &Config) -> Result<(), String> {
        match new.tls.files() {
            Some(files) => files.load().map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn apply(&mut self, _old: &Config, new: &Config) -> Option<String> {
        // still HTTPS (turning it off waits for a restart, reported as such)
        let files = new.tls.files()?;
        match files.load() {
            Ok(config) => {
                self.tls.replace(files.clone(), config);
                Some(format!(
                    "tls: certificates read again from {} and {}",
                    files.cert_file.display(),
                    files.key_file.display()
                ))
            }
            Err(e) => {
                tracing::error!("tls: cannot apply the new certificates: {e}");
                None
            }
        }
    }
}

/// The ACL bootstrap token file (`acl.bootstrap_token_file`): a new secret in it replaces
/// the management token made from the file before (the server applies it through the
/// writer; an unchanged file does nothing).
pub struct AclBootstrapTarget {
    updates: tokio::sync::watch::Sender<Option<String>>,
}

impl AclBootstrapTarget {
    pub fn new(updates: tokio::sync::watch::Sender<Option<String>>) -> Self {
        AclBootstrapTarget { updates }
    }
}

impl Reloadable for AclBootstrapTarget {
    fn keys(&self) -> &'static [&'static str] {
        &["acl.bootstrap_token_file"]
    }

    fn apply(&mut self, old: &Config, new: &Config) -> Option<String> {
        let secret = |c: &Config| {
            c.acl
                .bootstrap_token
                .as_ref()
                .map(|s| s.value().to_string())
        };
        let (before, after) = (secret(old), secret(new));
        if before == after || after.is_none() {
            return None;
        }
        self.updates.send_replace(after);
        Some(
            "acl.bootstrap_token_file: a new management token secret (the old one is revoked)"
                .into(),
        )
    }
}

/// The running Mesos framework: name, roles, failover timeout and capabilities go to the
/// driver, which sends UPDATE_FRAMEWORK (or subscribes with them if it is not subscribed).
pub struct MesosFrameworkTarget {
    updates: tokio::sync::watch::Sender<crate::cluster::mesos::MesosSettings>,
}

impl MesosFrameworkTarget {
    pub fn new(updates: tokio::sync::watch::Sender<crate::cluster::mesos::MesosSettings>) -> Self {
        MesosFrameworkTarget { updates }
    }
}

impl Reloadable for MesosFrameworkTarget {
    fn keys(&self) -> &'static [&'static str] {
        &[
            "mesos.framework_name",
            "mesos.role",
            "mesos.failover_timeout",
            "mesos.capabilities",
        ]
    }

    fn apply(&mut self, old: &Config, new: &Config) -> Option<String> {
        // Turning Mesos on or off is a restart ("mesos.master").
        let (Some(old), Some(new)) = (&old.mesos, &new.mesos) else {
            return None;
        };
        let changes = old.updatable_changes(new);
        if changes.is_empty() {
            return None;
        }
        self.updates.send_replace(new.clone());
        Some(format!("{} (UPDATE_FRAMEWORK)", changes.join(", ")))
    }
}

/// What one reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new configuration was refused; the running one stays.
    Refused(String),
    Applied {
        /// `log_level info -> debug`, ...
        changed: Vec<String>,
        /// Keys whose new values wait for a restart.
        needs_restart: Vec<&'static str>,
    },
}

/// The running configuration and how to read it again.
pub struct Reloader {
    paths: Vec<PathBuf>,
    flags: Flags,
    dev: bool,
    current: Config,
    targets: Vec<Box<dyn Reloadable>>,
}

impl Reloader {
    pub fn new(paths: Vec<PathBuf>, flags: Flags, dev: bool, current: Config) -> Self {
        Reloader {
            paths,
            flags,
            dev,
            current,
            targets: Vec::new(),
        }
    }

    pub fn add(&mut self, target: impl Reloadable + 'static) {
        self.targets.push(Box::new(target));
    }

    pub fn current(&self) -> &Config {
        &self.current
    }

    /// Read the configuration again and apply it.
    pub fn reload(&mut self) -> Outcome {
        let new = match load(&self.paths, &self.flags, self.dev) {
            Ok(new) => new,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        for target in &self.targets {
            if let Err(e) = target.check(&new) {
                return Outcome::Refused(format!("{}: {e}", target.keys().join(", ")));
            }
        }
        let changed = self
            .targets
            .iter_mut()
            .filter_map(|t| t.apply(&self.current, &new))
            .collect();
        let needs_restart = self
            .current
            .restart_only()
            .into_iter()
            .zip(new.restart_only())
            .filter(|(old, new)| old.1 != new.1)
            .map(|(old, _)| old.0)
            .collect();
        self.current = new;
        Outcome::Applied {
            changed,
            needs_restart,
        }
    }

    /// Reload and log the outcome (tell systemd, too).
    pub fn reload_and_log(&mut self) -> Outcome {
        crate::systemd::reloading();
        let files = describe_files(&self.current.files);
        tracing::info!("SIGHUP: reloading the configuration ({files})");
        let outcome = self.reload();
        match &outcome {
            Outcome::Refused(why) => {
                tracing::error!("reload refused, keeping the running configuration: {why}")
            }
            Outcome::Applied {
                changed,
                needs_restart,
            } => {
                let applied = if changed.is_empty() {
                    "nothing to apply".to_string()
                } else {
                    changed.join("; ")
                };
                // After a reload to `warn` or quieter, an INFO line would not be seen.
                if shows_info(&self.current) {
                    tracing::info!("configuration reloaded: {applied}");
                } else {
                    tracing::warn!("configuration reloaded: {applied}");
                }
                if !needs_restart.is_empty() {
                    tracing::warn!(
                        "changed, takes effect after a restart: {}",
                        needs_restart.join(", ")
                    );
                }
            }
        }
        for warning in &self.current.warnings {
            tracing::warn!("{warning}");
        }
        crate::systemd::ready("reloaded");
        outcome
    }
}

fn shows_info(config: &Config) -> bool {
    tracing_subscriber::EnvFilter::try_new(&config.log_level.filter)
        .ok()
        .and_then(|f| f.max_level_hint())
        .is_none_or(|max| max >= tracing::level_filters::LevelFilter::INFO)
}

/// Reload on every SIGHUP until the process ends. `hangup` is registered before the server
/// starts so that an early SIGHUP cannot kill the process (its default action).
pub async fn run(mut reloader: Reloader, mut hangup: tokio::signal::unix::Signal) {
    while hangup.recv().await.is_some() {
        // reading files is blocking I/O: keep it off the async workers
        reloader = match tokio::task::spawn_blocking(move || {
            reloader.reload_and_log();
            reloader
        })
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("configuration reload stopped: {e}");
                return;
            }
        };
    }
}
