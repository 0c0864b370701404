//! Finding the leading master through ZooKeeper (`-mesos-master zk://h1:2181,h2:2181/mesos`), the
//! way Mesos's own detector does: every master contends under the path with an ephemeral
//! sequential node `json.info_<sequence>` whose data is its `MasterInfo` as JSON; the lowest
//! sequence leads, the others follow in order. The children are watched, so a new leader is
//! known the moment its predecessor's session ends (its node vanishes), not after the old
//! stream has missed five heartbeats.
//!
//! Client: `zookeeper-client` (maintained, async, tokio-backed; takes a multi-host connection
//! string, re-establishes the session on another server by itself, delivers child watches and
//! session expiry). What this module publishes is the masters' base URLs in contender order;
//! `master::Masters` tries them in that order and the driver re-subscribes when the first one
//! changes. While ZooKeeper cannot be reached the last answer stays: the masters themselves
//! still say whether they lead (307, 503).

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use zookeeper_client as zk;

use super::settings::ZkUrl;

/// Mesos's `--zk_session_timeout` default.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Label of the masters' nodes since Mesos 0.24 (older binary `info_` nodes are ignored).
const LABEL: &str = "json.info_";
/// Wait before reconnecting to ZooKeeper after an error.
const RETRY: Duration = Duration::from_secs(1);

/// What the detector knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detected {
    /// The masters' base URLs (`http://10.0.0.5:5050`), leader first.
    pub masters: Vec<String>,
    /// Why there is no leader to offer (nothing registered yet, ZooKeeper unreachable, ...).
    pub problem: Option<String>,
}

impl Detected {
    pub fn leader(&self) -> Option<&str> {
        self.masters.first().map(String::as_str)
    }
}

/// Start watching `url` on the current runtime; the receiver always holds the latest answer
/// (nothing until the first read: `problem` says so). The detector stops when every receiver
/// is gone. `scheme` is how the masters are reached (`MasterInfo` has no scheme: Mesos's own
/// libraries use https when SSL is on; here, when a Mesos CA file is given).
pub fn spawn(url: ZkUrl, scheme: &'static str) -> watch::Receiver<Detected> {
    let (tx, rx) = watch::channel(Detected {
        masters: Vec::new(),
        problem: Some(format!("no answer from ZooKeeper at {url} yet")),
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = detect(&url, scheme, &tx) => {}
            _ = tx.closed() => {}
        }
    });
    rx
}

/// Connect, watch, and connect again whenever the session ends; forever.
async fn detect(url: &ZkUrl, scheme: &str, tx: &watch::Sender<Detected>) {
    loop {
        match connect(url).await {
            Ok(client) => {
                tracing::info!(zookeeper = %url, "watching the masters' registrations in ZooKeeper");
                let why = follow(&client, url, scheme, tx).await;
                tracing::warn!(zookeeper = %url, "ZooKeeper session ended ({why}); reconnecting");
            }
            Err(e) => {
                let problem = format!("cannot reach ZooKeeper at {url}: {e}");
                publish_problem(tx, &problem);
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn connect(url: &ZkUrl) -> Result<zk::Client, zk::Error> {
    let mut connector = zk::Client::connector().with_session_timeout(SESSION_TIMEOUT);
    if let Some(creds) = &url.credentials {
        connector = connector.with_auth("digest", creds.as_bytes());
    }
    connector.connect(&url.servers).await
}

/// Keep the published masters in step with the children of the path until the session ends;
/// returns why it ended.
async fn follow(
    client: &zk::Client,
    url: &ZkUrl,
    scheme: &str,
    tx: &watch::Sender<Detected>,
) -> String {
    let mut state = client.state_watcher();
    loop {
        let watcher = match client.get_and_watch_children(&url.path).await {
            Ok((children, _, watcher)) => {
                let masters = read_masters(client, &url.path, scheme, &children).await;
                let problem = masters
                    .is_empty()
                    .then(|| format!("no Mesos master is registered in ZooKeeper at {url}"));
                publish(tx, Detected { masters, problem });
                Watch::Children(watcher)
            }
            Err(zk::Error::NoNode) => {
                publish(
                    tx,
                    Detected {
                        masters: Vec::new(),
                        problem: Some(format!(
                            "no Mesos master has registered in ZooKeeper at {url} (the path does not exist)"
                        )),
                    },
                );
                match client.check_and_watch_stat(&url.path).await {
                    Ok((_, watcher)) => Watch::Node(watcher),
                    Err(e) if terminal(&e) => return e.to_string(),
                    Err(_) => {
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
            Err(e) if terminal(&e) => return e.to_string(),
            Err(e) => {
                // Connection loss: the client reconnects by itself; ask again then.
                tracing::debug!(zookeeper = %url, "reading the masters failed: {e}");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let event = tokio::select! {
            event = watcher.changed() => event,
            why = session_end(&mut state, url) => return why,
        };
        if event.event_type == zk::EventType::Session && event.session_state.is_terminated() {
            return format!("{:?}", event.session_state);
        }
    }
}

/// A one-shot watch on the children, or on the path's creation.
enum Watch {
    Children(zk::OneshotWatcher),
    Node(zk::OneshotWatcher),
}

impl Watch {
    async fn changed(self) -> zk::WatchedEvent {
        match self {
            Watch::Children(w) | Watch::Node(w) => w.changed().await,
        }
    }
}

/// Resolves when the session ends for good; logs losses and recoveries of the connection on
/// the way (the published masters stay: they still answer for themselves).
async fn session_end(state: &mut zk::StateWatcher, url: &ZkUrl) -> String {
    loop {
        let s = state.changed().await;
        match s {
            zk::SessionState::Disconnected => {
                tracing::warn!(zookeeper = %url, "lost the connection to ZooKeeper; keeping the last known masters while it reconnects")
            }
            zk::SessionState::SyncConnected => {
                tracing::info!(zookeeper = %url, "reconnected to ZooKeeper")
            }
            s if s.is_terminated() => return format!("{s:?}"),
            _ => {}
        }
    }
}

fn terminal(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed
    )
}

fn publish(tx: &watch::Sender<Detected>, detected: Detected) {
    tx.send_if_modified(|current| {
        if *current == detected {
            return false;
        }
        if current.masters != detected.masters {
            match detected.leader() {
                Some(l) => tracing::info!(
                    leader = l,
                    masters = detected.masters.join(","),
                    "leading Mesos master (from ZooKeeper)"
                ),
                None => tracing::warn!(problem = ?detected.problem, "no Mesos master in ZooKeeper"),
            }
        }
        *current = detected;
        true
    });
}

/// A problem reaching ZooKeeper: said, while the masters last read stay.
fn publish_problem(tx: &watch::Sender<Detected>, problem: &str) {
    tx.send_if_modified(|current| {
        if current.problem.as_deref() == Some(problem) {
            return false;
        }
        tracing::warn!("{problem}");
        current.problem = Some(problem.to_string());
        true
    });
}

/// The contenders' base URLs, lowest sequence (the leader) first; nodes that vanished or do
/// not hold a usable `MasterInfo` are skipped.
async fn read_masters(
    client: &zk::Client,
    path: &str,
    scheme: &str,
    children: &[String],
) -> Vec<String> {
    let mut contenders: Vec<(u64, &String)> = children
        .iter()
        .filter_map(|name| Some((sequence(name)?, name)))
        .collect();
    contenders.sort();
    let mut masters = Vec::new();
    for (_, name) in contenders {
        let node = format!("{}/{name}", path.trim_end_matches('/'));
        let Ok((data, _)) = client.get_data(&node).await else {
            continue;
        };
        match master_url(&data, scheme) {
            Some(url) if !masters.contains(&url) => masters.push(url),
            Some(_) => {}
            None => tracing::warn!(
                node,
                "a master's registration holds no usable MasterInfo JSON"
            ),
        }
    }
    masters
}

/// `json.info_0000000007` -> 7.
fn sequence(name: &str) -> Option<u64> {
    name.strip_prefix(LABEL)?.parse().ok()
}

/// The base URL of a master from its `MasterInfo` JSON: `address.ip` (else
/// `address.hostname`, else the top-level `hostname`, else the packed `ip`) and
/// `address.port` (else `port`, else 5050), reached over `scheme` (`http` or `https`).
pub fn master_url(data: &[u8], scheme: &str) -> Option<String> {
    let info: Value = serde_json::from_slice(data).ok()?;
    let address = &info["address"];
    let nonempty = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    let host = nonempty(&address["ip"])
        .or_else(|| nonempty(&address["hostname"]))
        .or_else(|| nonempty(&info["hostname"]))
        .or_else(|| {
            let packed = u32::try_from(info["ip"].as_u64()?).ok()?;
            // Network byte order packed into a little-endian integer (MasterInfo.ip).
            Some(Ipv4Addr::from(packed.to_le_bytes()).to_string())
        })?;
    let port = address["port"]
        .as_u64()
        .or_else(|| info["port"].as_u64())
        .unwrap_or(5050);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_info_json_gives_the_url() {
        let info = br#"{"address":{"hostname":"m1.example","ip":"10.0.0.5","port":5050},
            "hostname":"m1.example","id":"x","ip":83886090,"pid":"master@10.0.0.5:5050","port":5050}"#;
        assert_eq!(
            master_url(info, "http").as_deref(),
            Some("http://10.0.0.5:5050")
        );
        let info =
            br#"{"address":{"hostname":"m2.example","port":5051},"id":"x","ip":0,"port":5051}"#;
        assert_eq!(
            master_url(info, "https").as_deref(),
            Some("https://m2.example:5051")
        );
        // Only the packed address (127.0.0.1 is 0x0100007f) and the default port.
        let info = br#"{"id":"x","ip":16777343}"#;
        assert_eq!(
            master_url(info, "http").as_deref(),
            Some("http://127.0.0.1:5050")
        );
        assert_eq!(master_url(b"not json", "http"), None);
        assert_eq!(master_url(br#"{"id":"x"}"#, "http"), None);
    }

    #[test]
    fn contenders_are_ordered_by_sequence() {
        assert_eq!(sequence("json.info_0000000012"), Some(12));
        assert_eq!(sequence("info_0000000001"), None);
        assert_eq!(sequence("log_replicas"), None);
    }
}
