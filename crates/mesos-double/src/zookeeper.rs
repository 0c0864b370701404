//! Contending for leadership in ZooKeeper as a Mesos master does (`--zk zk://host:port/mesos`):
//! the master creates the path (persistent, as `mkdir -p`) and under it an ephemeral
//! sequential node `json.info_<sequence>` holding its `MasterInfo` as JSON; the contender with
//! the lowest sequence leads. The node lives as long as the master's ZooKeeper session: a
//! master that dies or loses its session drops out (here: `Contender::withdraw`, or the
//! session closing when the `Contender` is dropped).
//!
//! This is the masters' side only: which double answers as leader over HTTP is still set by
//! `MesosDouble::set_leader` / `fail_over`, so a test can show what a framework does when
//! ZooKeeper and the old master disagree (a master gone without closing its connections).

use serde_json::Value;
use zookeeper_client as zk;

/// The label of the masters' nodes (Mesos 0.24+).
pub const LABEL: &str = "json.info_";

/// A registration in ZooKeeper: its session and its node.
pub struct Contender {
    client: zk::Client,
    node: String,
}

impl Contender {
    /// Register `master_info` under `path` on the ZooKeeper ensemble `servers`
    /// (`host:port,host:port`).
    pub async fn register(
        servers: &str,
        path: &str,
        master_info: &Value,
    ) -> Result<Contender, String> {
        let client = zk::Client::connector()
            .with_session_timeout(std::time::Duration::from_secs(10))
            .connect(servers)
            .await
            .map_err(|e| format!("cannot connect to ZooKeeper at {servers}: {e}"))?;
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match client.mkdir(path, &persistent).await {
            Ok(()) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(format!("cannot create {path} in ZooKeeper: {e}")),
        }
        let data = serde_json::to_vec(master_info).map_err(|e| e.to_string())?;
        let node_prefix = format!("{}/{LABEL}", path.trim_end_matches('/'));
        let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, sequence) = client
            .create(&node_prefix, &data, &ephemeral)
            .await
            .map_err(|e| format!("cannot register in ZooKeeper under {path}: {e}"))?;
        Ok(Contender {
            client,
            node: format!("{node_prefix}{sequence}"),
        })
    }

    /// The node's path (`/mesos/json.info_0000000003`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Drop out of the contest: the node goes, as when a master's session ends.
    pub async fn withdraw(&self) -> Result<(), String> {
        match self.client.delete(&self.node, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(format!("cannot delete {}: {e}", self.node)),
        }
    }
}
