//! What the rest of the service needs to know about the Mesos cluster it runs on: our
//! FrameworkID, whether we are subscribed (and why not), and where each agent's HTTP endpoint
//! is (from the offers' `url`), so that the API can read task sandboxes through the agents'
//! files API.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::RwLock;

use crate::clock::Clock;
use crate::cluster::types::{Demand, Offer};
use crate::cluster::{AgentSeen, RecentError, RECENT_ERRORS};

/// The stored setting holding our FrameworkID.
pub const FRAMEWORK_ID_SETTING: &str = "mesos.framework_id";
/// Stored settings `mesos.agent.<agent id>` hold each agent's base URL, so sandboxes of tasks
/// that ran before a restart stay readable before the agent offers again.
pub const AGENT_URL_SETTING_PREFIX: &str = "mesos.agent.";

#[derive(Debug)]
pub struct MesosDirectory {
    /// Stamps the connection's changes of state.
    clock: Clock,
    framework_id: RwLock<Option<String>>,
    /// The framework's settings as users may compare them (`/v1/agent/self`).
    settings: RwLock<serde_json::Value>,
    /// Agent ID -> base URL of the agent (`http://10.0.0.7:5051`).
    agents: RwLock<HashMap<String, String>>,
    connection: RwLock<Connection>,
    /// Agent ID -> its hostname, last offer and when it came (for operators).
    offers: RwLock<BTreeMap<String, (String, Demand, i64)>>,
    /// Why subscriptions ended, newest last (a repeat of the last one only moves its time).
    errors: RwLock<VecDeque<RecentError>>,
}

/// The subscription as an operator asks about it (`/v1/agent/self`, `Dispatch.Mesos.Connection`).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Connection {
    /// `connecting`, `subscribed` or `disconnected`.
    pub state: &'static str,
    /// The master we are subscribed to (or were, last).
    pub leader: Option<String>,
    /// Why the last subscription ended or could not start (a refused SUBSCRIBE, no leader...).
    pub last_error: Option<String>,
    /// Retrying alone will not fix `last_error` (refused credentials, not a Mesos master, a
    /// refused SUBSCRIBE): a setting or the master must change.
    pub permanent: bool,
    /// SUBSCRIBE attempts since the last subscription (or the start).
    pub attempts: u64,
    /// Unix seconds of the last change of state.
    pub since: u64,
}

impl Default for MesosDirectory {
    fn default() -> Self {
        MesosDirectory::new(Clock::system())
    }
}

impl MesosDirectory {
    /// Connecting since now, nothing known yet.
    pub fn new(clock: Clock) -> MesosDirectory {
        let connection = Connection {
            state: "connecting",
            leader: None,
            last_error: None,
            permanent: false,
            attempts: 0,
            since: unix_secs(&clock),
        };
        MesosDirectory {
            clock,
            framework_id: RwLock::default(),
            settings: RwLock::default(),
            agents: RwLock::default(),
            connection: RwLock::new(connection),
            offers: RwLock::default(),
            errors: RwLock::default(),
        }
    }

    pub fn framework_id(&self) -> Option<String> {
        self.framework_id.read().clone()
    }

    /// Name, roles, principal, capabilities, encoding, masters (never the secret).
    pub fn settings(&self) -> serde_json::Value {
        let mut v = self.settings.read().clone();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("FrameworkID".into(), self.framework_id().into());
            obj.insert(
                "Connection".into(),
                serde_json::to_value(self.connection()).unwrap_or_default(),
            );
        }
        v
    }

    pub fn connection(&self) -> Connection {
        self.connection.read().clone()
    }

    /// A SUBSCRIBE is on its way (the last error stays until it succeeds).
    pub fn connecting(&self) {
        let mut c = self.connection.write();
        c.state = "connecting";
        c.attempts += 1;
        c.since = unix_secs(&self.clock);
    }

    pub fn subscribed(&self, leader: &str) {
        let mut c = self.connection.write();
        c.state = "subscribed";
        c.leader = Some(leader.to_string());
        c.last_error = None;
        c.permanent = false;
        c.attempts = 0;
        c.since = unix_secs(&self.clock);
    }

    /// The subscription ended or could not start; `permanent`: retrying alone will not help.
    pub fn disconnected(&self, reason: &str, permanent: bool) {
        let mut c = self.connection.write();
        c.state = "disconnected";
        c.last_error = Some(reason.to_string());
        c.permanent = permanent;
        c.since = unix_secs(&self.clock);
        drop(c);
        let mut errors = self.errors.write();
        let at = unix_secs(&self.clock);
        match errors.back_mut() {
            Some(last) if last.message == reason => last.at = at,
            _ => {
                errors.push_back(RecentError {
                    at,
                    message: reason.to_string(),
                });
                if errors.len() > RECENT_ERRORS {
                    errors.pop_front();
                }
            }
        }
    }

    /// The cluster page's view: connection, framework, agents and their last offers.
    pub fn overview(&self) -> crate::cluster::Overview {
        let c = self.connection();
        let urls = self.agents.read().clone();
        let mut agents: Vec<AgentSeen> = self
            .offers
            .read()
            .iter()
            .map(|(id, (hostname, offered, at))| AgentSeen {
                id: id.clone(),
                hostname: hostname.clone(),
                url: urls.get(id).cloned(),
                offered: *offered,
                offered_at: *at,
                capacity: None,
            })
            .collect();
        for (id, url) in &urls {
            if !agents.iter().any(|a| &a.id == id) {
                agents.push(AgentSeen {
                    id: id.clone(),
                    url: Some(url.clone()),
                    ..AgentSeen::default()
                });
            }
        }
        let settings = self.settings.read();
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            serde_json::Value::Null => "(none)".into(),
            other => other.to_string(),
        };
        let shown = [
            ("Masters", "Masters"),
            ("FrameworkName", "Framework name"),
            ("Roles", "Roles"),
            ("Principal", "Principal"),
            ("User", "User"),
            ("ContentType", "Encoding"),
            ("Capabilities", "Capabilities"),
            ("FailoverTimeoutSeconds", "Failover timeout (s)"),
        ];
        crate::cluster::Overview {
            backend: super::BACKEND,
            connection: c.state,
            since: c.since,
            leader: c.leader,
            framework_id: self.framework_id(),
            settings: shown
                .iter()
                .filter_map(|(k, label)| Some((label.to_string(), show(settings.get(*k)?))))
                .collect(),
            agents,
            recent_errors: self.errors.read().iter().rev().cloned().collect(),
        }
    }

    pub fn set_settings(&self, s: &super::MesosSettings) {
        *self.settings.write() = serde_json::json!({
            "Masters": s.masters.describe(),
            "ContentType": s.encoding.name(),
            "FrameworkName": s.framework_name,
            "Roles": s.roles,
            "Principal": s.principal,
            "User": s.user,
            "Checkpoint": true,
            "Capabilities": s.capabilities,
            "FailoverTimeoutSeconds": s.failover_timeout.as_secs_f64(),
        });
    }

    pub fn set_framework_id(&self, id: &str) {
        *self.framework_id.write() = Some(id.to_string());
    }

    /// The agent's base URL, once one of its offers was seen.
    pub fn agent_url(&self, agent_id: &str) -> Option<String> {
        self.agents.read().get(agent_id).cloned()
    }

    pub fn set_agent_url(&self, agent_id: &str, url: String) {
        self.agents.write().insert(agent_id.to_string(), url);
    }

    /// Remember the agent endpoints these offers name; returns the ones that are new or
    /// changed, as `(setting key, url)` to store.
    pub fn learn(&self, offers: &[Offer]) -> Vec<(String, String)> {
        let mut learned = Vec::new();
        let now = self.clock.now_ns();
        for offer in offers {
            self.offers.write().insert(
                offer.agent_id.value.clone(),
                (offer.hostname.clone(), Demand::of(&offer.resources), now),
            );
            if let Some(url) = agent_base_url(offer) {
                let known = self.agents.read().get(&offer.agent_id.value) == Some(&url);
                if !known {
                    self.set_agent_url(&offer.agent_id.value, url.clone());
                    learned.push((
                        format!("{AGENT_URL_SETTING_PREFIX}{}", offer.agent_id.value),
                        url,
                    ));
                }
            }
        }
        learned
    }

    /// What the store kept: the FrameworkID and the agents' URLs.
    pub fn load(&self, stored: &BTreeMap<String, String>) {
        if let Some(id) = stored.get(FRAMEWORK_ID_SETTING).filter(|id| !id.is_empty()) {
            self.set_framework_id(id);
        }
        let agents = stored.range(AGENT_URL_SETTING_PREFIX.to_string()..);
        for (key, url) in agents.take_while(|(k, _)| k.starts_with(AGENT_URL_SETTING_PREFIX)) {
            let agent = &key[AGENT_URL_SETTING_PREFIX.len()..];
            self.set_agent_url(agent, url.clone());
        }
    }
}

fn unix_secs(clock: &Clock) -> u64 {
    (clock.now_ns() / 1_000_000_000).max(0) as u64
}

/// `Offer.url` (`{scheme, address: {hostname, ip, port}, path}`) as a base URL; the IP is
/// preferred over the hostname (agents often advertise names only they resolve).
pub fn agent_base_url(offer: &Offer) -> Option<String> {
    let url = offer.extra.get("url")?;
    let scheme = url.get("scheme").and_then(|s| s.as_str()).unwrap_or("http");
    let address = url.get("address")?;
    let host = address
        .get("ip")
        .and_then(|s| s.as_str())
        .or_else(|| address.get("hostname").and_then(|s| s.as_str()))?;
    let port = address.get("port").and_then(|p| p.as_u64())?;
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_url_gives_the_agent_endpoint() {
        let offer: Offer = serde_json::from_value(serde_json::json!({
            "id": {"value": "o1"}, "agent_id": {"value": "a1"}, "hostname": "h",
            "url": {"scheme": "http", "address": {"hostname": "h", "ip": "10.0.0.7", "port": 5051},
                    "path": "/slave(1)"}
        }))
        .unwrap();
        let d = MesosDirectory::default();
        d.learn(&[offer]);
        assert_eq!(d.agent_url("a1").as_deref(), Some("http://10.0.0.7:5051"));
        assert_eq!(d.agent_url("a2"), None);
    }
}
