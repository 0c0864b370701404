//! `dispatch run -master ...`: the run as its own Mesos framework, as mesos-batch is, with no
//! server to start first.
//!
//! The command starts a Dispatch server inside itself (the Mesos backend, a temporary data
//! dir, an ephemeral port) and talks to it like any other server: the run is still a job +
//! dispatch, stored, retried and followed the usual way. The framework lives as long as the
//! command: `failover_timeout` is 0, so when the command ends (or is interrupted) Mesos
//! removes the framework and kills whatever of it still runs.
//!
//! A one-off gives up, as mesos-batch does, instead of retrying forever: nothing is submitted
//! until the framework is subscribed; an answer that retrying cannot change (refused
//! credentials, an address that is not a Mesos master) ends the command at once, any other
//! cause (nothing listening, no leader) after `-connect-timeout` (said once while waiting),
//! and so does a subscription lost for that long during the run. Each ends with one line
//! naming the master and the cause.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::client::Client;
use super::CliError;
use crate::cluster::mesos::settings::{self as ms, SettingsError, DEFAULT_ALLOC_DIR};
use crate::cluster::mesos::MesosSettings;
use crate::gc::GcPolicy;
use crate::model::drivers::DriverPolicy;
use crate::model::Job;
use crate::server::{LocalOptions, ServerConfig, ServerError};

/// Default `FrameworkInfo.name` of a run's own framework.
pub const DEFAULT_FRAMEWORK_NAME: &str = "dispatch-run";

/// Not subscribed after this long: say once that the run is waiting, and for what.
const SAY_WAITING_AFTER: Duration = Duration::from_millis(1500);

/// The mesos-batch flags of `dispatch run`, which describe the run's own framework.
pub struct Framework<'a> {
    pub masters: &'a str,
    pub name: Option<&'a str>,
    pub role: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub capabilities: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// `-master-ca-file`: the CA the masters' certificates are checked against.
    pub ca_file: Option<&'a std::path::Path>,
}

/// The server inside this command.
pub struct Standalone {
    pub client: Client,
    /// The masters, as the messages name them.
    masters: String,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ServerError>>,
    _data_dir: tempfile::TempDir,
}

/// The settings errors name the server's `-mesos-*` flags; here the flags are `dispatch run`'s.
fn usage(e: SettingsError) -> CliError {
    CliError::new(e.to_string().replace("-mesos-", "-"))
}

/// `-capabilities` checked on its own (before a server is asked anything).
pub fn check_capabilities(caps: &str) -> Result<(), CliError> {
    ms::parse_capabilities(Some(caps))
        .map(drop)
        .map_err(|e| CliError::new(format!("Invalid -capabilities: {e}")))
}

/// The masters a `-master` / `#+master:` value names (none when it does not parse).
pub fn masters(value: &str) -> Vec<String> {
    ms::parse_masters(value)
        .map(|m| m.describe())
        .unwrap_or_default()
}

pub fn settings(fw: &Framework<'_>) -> Result<MesosSettings, CliError> {
    let masters = ms::parse_masters(fw.masters).map_err(usage)?;
    let encoding = ms::parse_encoding(fw.content_type.unwrap_or("protobuf")).map_err(usage)?;
    let role = fw
        .role
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("*");
    ms::check_role(role).map_err(usage)?;
    if fw.secret.is_some() && fw.principal.is_none() {
        return Err(usage(SettingsError::SecretWithoutPrincipal));
    }
    Ok(MesosSettings {
        masters,
        encoding,
        framework_name: fw.name.unwrap_or(DEFAULT_FRAMEWORK_NAME).to_string(),
        user: super::server::current_user(),
        roles: vec![role.to_string()],
        principal: fw.principal.map(String::from),
        secret: fw.secret.map(String::from),
        // One-off, like mesos-batch: the framework ends with the command.
        failover_timeout: Duration::ZERO,
        capabilities: ms::parse_capabilities(fw.capabilities).map_err(usage)?,
        webui_url: None,
        advertise_url: String::new(),
        // A person is waiting: retry often (mesos-execute re-subscribes every second).
        max_backoff: Duration::from_secs(2),
        alloc_dir: DEFAULT_ALLOC_DIR.into(),
        ca_file: fw.ca_file.map(Into::into),
        fetch_key: None,
    })
}

/// Agents fetch rendered templates from us; without any, nothing needs to reach us.
fn agents_fetch_from_us(job: &Job) -> bool {
    job.task_groups
        .iter()
        .flat_map(|g| &g.tasks)
        .any(|t| !t.templates.is_empty() || t.dispatch_payload.is_some())
}

impl Standalone {
    /// Start the server for `job`'s run and wait until its API answers.
    pub async fn start(settings: MesosSettings, job: &Job) -> Result<Standalone, CliError> {
        let masters = settings.masters.to_string();
        let data_dir = tempfile::Builder::new()
            .prefix("dispatch-run-")
            .tempdir()
            .map_err(|e| CliError::new(format!("cannot create a data dir for the run: {e}")))?;
        // The API stays on loopback; agents that must fetch rendered templates get a
        // listener that serves nothing else.
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let fetch_bind = agents_fetch_from_us(job).then(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| CliError::new(format!("cannot listen on {bind}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| CliError::new(format!("cannot listen on {bind}: {e}")))?
            .port();
        let config = ServerConfig {
            bind,
            data_dir: data_dir.path().to_path_buf(),
            local: LocalOptions::default(),
            statsd_addr: None,
            mesos: Some(settings),
            // The data dir is gone with the command.
            gc: GcPolicy {
                threshold: None,
                ..GcPolicy::default()
            },
            fetch_bind,
            tls: None,
            conn_limits: Default::default(),
            // The run's own jobs (Mesosfiles and task lists are shell commands: raw_exec);
            // its API is on loopback and only this command talks to it.
            drivers: DriverPolicy::all(),
            backpressure: Default::default(),
            open: false,
            acl: false,
            acl_bootstrap_secret: None,
            acl_bootstrap_reload: None,
            clock: crate::clock::Clock::system(),
            mesos_updates: None,
            store: None,
            advertise: None,
            ui: Default::default(),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(crate::server::serve(listener, config, async move {
            let _ = stopped.await;
        }));
        let client = Client::new(&format!("http://127.0.0.1:{port}"))?;
        let mut own = Standalone {
            client,
            masters,
            shutdown,
            server,
            _data_dir: data_dir,
        };
        own.wait_ready().await?;
        Ok(own)
    }

    async fn wait_ready(&mut self) -> Result<(), CliError> {
        for _ in 0..100 {
            if self.server.is_finished() {
                let why = match (&mut self.server).await {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(())) => "it stopped".into(),
                    Err(e) => e.to_string(),
                };
                return Err(CliError::new(format!(
                    "cannot start the run's framework: {why}"
                )));
            }
            if let Ok(Ok(_)) = self
                .client
                .get::<serde_json::Value>("/v1/status/leader", &[])
                .await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(CliError::new(
            "cannot start the run's framework: its API did not answer",
        ))
    }

    /// The subscription as the server reports it (`/v1/agent/self`).
    async fn connection(&self) -> Option<Connection> {
        let v = self
            .client
            .get::<serde_json::Value>("/v1/agent/self", &[])
            .await
            .ok()?
            .ok()?;
        let c = &v["config"]["Dispatch"]["Mesos"]["Connection"];
        Some(Connection {
            subscribed: c["State"] == "subscribed",
            last_error: c["LastError"].as_str().map(String::from),
            permanent: c["Permanent"].as_bool().unwrap_or(false),
            leader: c["Leader"].as_str().map(String::from),
        })
    }

    /// Wait until the framework is subscribed; give up on a cause retrying cannot fix, or
    /// after `timeout`. Says once, on stdout, that it is waiting.
    pub async fn wait_subscribed(&self, timeout: Duration) -> Result<(), CliError> {
        let started = tokio::time::Instant::now();
        let mut said = false;
        loop {
            let conn = self.connection().await;
            if let Some(c) = &conn {
                if c.subscribed {
                    return Ok(());
                }
                if c.permanent {
                    return Err(self.give_up(c, None));
                }
            }
            let waited = started.elapsed();
            if waited >= timeout {
                let c = conn.unwrap_or_default();
                return Err(self.give_up(&c, Some(timeout)));
            }
            if !said && waited >= SAY_WAITING_AFTER {
                said = true;
                let why = conn
                    .and_then(|c| c.last_error)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                println!(
                    "==> {}: Waiting for a Mesos master at {} to accept the framework{why}; giving up after {} (-connect-timeout)",
                    super::format::now(),
                    self.masters,
                    humantime::format_duration(timeout)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resolves with an error once the subscription has been lost for `timeout` without
    /// coming back (or for a cause retrying cannot fix); never while it holds.
    pub async fn lost_subscription(&self, timeout: Duration) -> CliError {
        let mut lost_since: Option<tokio::time::Instant> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Some(c) = self.connection().await else {
                continue;
            };
            if c.subscribed {
                lost_since = None;
                continue;
            }
            if c.permanent {
                return self.give_up(&c, None);
            }
            let since = *lost_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= timeout {
                return self.give_up(&c, Some(timeout));
            }
        }
    }

    /// The one line a run ends with when it cannot use the cluster.
    fn give_up(&self, c: &Connection, waited: Option<Duration>) -> CliError {
        let master = c.leader.as_deref().unwrap_or(&self.masters);
        let cause = c
            .last_error
            .as_deref()
            .unwrap_or("no answer")
            .trim_start_matches("cannot subscribe: ");
        let after = match waited {
            Some(t) => format!(
                " (gave up after {}, -connect-timeout)",
                humantime::format_duration(t)
            ),
            None => String::new(),
        };
        CliError::new(format!(
            "Error running on the Mesos master at {master}: {cause}{after}"
        ))
    }

    /// End the server (its Mesos subscription with it); the data dir is removed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.server).await;
    }
}

/// The run's framework connection, as its server reports it.
#[derive(Debug, Default)]
struct Connection {
    subscribed: bool,
    last_error: Option<String>,
    permanent: bool,
    leader: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(masters: &str) -> Framework<'_> {
        Framework {
            masters,
            name: None,
            role: None,
            principal: None,
            secret: None,
            capabilities: None,
            content_type: None,
            ca_file: None,
        }
    }

    #[test]
    fn defaults_are_a_one_off_protobuf_framework() {
        let s = settings(&fw("m1:5050,m2:5050")).unwrap();
        assert_eq!(s.masters.describe(), ["http://m1:5050", "http://m2:5050"]);
        assert_eq!(s.encoding.name(), "protobuf");
        assert_eq!(s.framework_name, DEFAULT_FRAMEWORK_NAME);
        assert_eq!(s.roles, ["*"]);
        assert_eq!(s.failover_timeout, Duration::ZERO);
    }

    #[test]
    fn errors_name_the_run_flags() {
        let e = settings(&fw("zk://z:2181")).err().unwrap();
        assert!(
            e.message
                .starts_with("-master: \"zk://z:2181\" is not a ZooKeeper URL"),
            "{}",
            e.message
        );
        let mut f = fw("m:5050");
        f.secret = Some("s");
        let e = settings(&f).err().unwrap();
        assert_eq!(e.message, "-secret needs -principal");
        let mut f = fw("m:5050");
        f.capabilities = Some("TELEPORT");
        let e = settings(&f).err().unwrap();
        assert!(
            e.message.starts_with("-capabilities: unknown capability"),
            "{}",
            e.message
        );
    }
}
