//! Maintenance and draining, as an operator drives them.
//!
//! Maintenance (Mesos `docs/maintenance.md`; mesos-scheduler-api.md §2.1 ACCEPT/DECLINE_INVERSE_OFFERS,
//! §2.2 INVERSE_OFFERS / RESCIND_INVERSE_OFFER, §3.9 `Offer.unavailability`, `InverseOffer`,
//! §4.1.9): scheduling an agent for maintenance puts it in draining mode. Its outstanding
//! offers are rescinded and offered again with `unavailability`; every later offer carries it.
//! A framework using resources there (tasks, executors, offers) gets an inverse offer; it
//! answers ACCEPT_INVERSE_OFFERS ("fine, I will be off by then") or DECLINE_INVERSE_OFFERS,
//! with a filter that says when to ask again (default 5 s); answers are hints recorded for the
//! operator (`inverse_offer_responses`), nothing else changes. Cancelling the maintenance
//! rescinds the inverse offers; later offers carry no unavailability.
//!
//! Draining (`DRAIN_AGENT`, Mesos 1.9+, MESOS-9818): the agent is deactivated (its offers are
//! rescinded and no new ones are made) and every task on it is killed: TASK_KILLING (with
//! TASK_KILLING_STATE) then TASK_KILLED, both with REASON_AGENT_DRAINING, or, when the agent
//! is to be marked gone, TASK_GONE_BY_OPERATOR. The updates come from the agent (uuid,
//! acknowledged like any other). A gone agent is never offered again and reconciliation
//! answers TASK_GONE_BY_OPERATOR for tasks it does not know there (§4.4).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::allocator::ids;
use crate::state::St;

/// When an agent may become unavailable, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Unavailability {
    pub start_ns: i64,
    pub duration_ns: Option<i64>,
}

impl Unavailability {
    /// Starting `in_` from now, lasting `duration`.
    pub fn from_now(in_: Duration, duration: Option<Duration>) -> Unavailability {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Unavailability {
            start_ns: (now + in_).as_nanos() as i64,
            duration_ns: duration.map(|d| d.as_nanos() as i64),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({"start": {"nanoseconds": self.start_ns}});
        if let Some(d) = self.duration_ns {
            v["duration"] = json!({ "nanoseconds": d });
        }
        v
    }
}

/// A framework's answer to an inverse offer.
#[derive(Clone, Debug)]
pub struct InverseResponse {
    pub agent_id: String,
    pub accepted: bool,
    pub refuse_seconds: Option<f64>,
}

impl St {
    /// Put `agent` in draining mode for maintenance.
    pub(crate) fn schedule_maintenance(&mut self, agent: &str, u: Unavailability) {
        self.maintenance.insert(agent.to_string(), u);
        self.inverse_filters.remove(agent);
        // Outstanding offers go, and come back with the unavailability.
        self.rescind_where(|o| o.agent_id == agent);
        self.allocate(agent);
        self.send_inverse_offers();
    }

    /// Cancel `agent`'s maintenance: its inverse offers are rescinded.
    pub(crate) fn cancel_maintenance(&mut self, agent: &str) {
        self.maintenance.remove(agent);
        let ids: Vec<String> = self
            .inverse_offers
            .iter()
            .filter(|(_, a)| a.as_str() == agent)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.inverse_offers.remove(&id);
            self.send(json!({"type": "RESCIND_INVERSE_OFFER",
                "rescind_inverse_offer": {"inverse_offer_id": {"value": id}}}));
        }
    }

    /// Whether the framework has anything on `agent`: tasks, executors or offers.
    fn uses(&self, agent: &str) -> bool {
        self.tasks
            .values()
            .any(|t| t.agent_id == agent && !t.released)
            || self.executors.keys().any(|(a, _)| a == agent)
            || self.offers.values().any(|o| o.agent_id == agent)
    }

    /// An inverse offer for every agent in maintenance the framework uses, unless one is
    /// outstanding or the last answer's filter still holds.
    pub(crate) fn send_inverse_offers(&mut self) {
        if !self.connected() {
            return;
        }
        let Some(fid) = self.framework.as_ref().map(|f| f.id.clone()) else {
            return;
        };
        let now = Instant::now();
        let due: Vec<(String, Unavailability)> = self
            .maintenance
            .iter()
            .filter(|(a, _)| !self.inverse_offers.values().any(|x| x == *a))
            .filter(|(a, _)| self.inverse_filters.get(*a).is_none_or(|u| *u <= now))
            .filter(|(a, _)| self.uses(a))
            .map(|(a, u)| (a.clone(), u.clone()))
            .collect();
        if due.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for (agent, u) in due {
            self.offer_seq += 1;
            let id = format!("{}-O{}", self.master_id, self.offer_seq);
            self.inverse_offers.insert(id.clone(), agent.clone());
            out.push(json!({
                "id": {"value": id}, "framework_id": {"value": fid},
                "agent_id": {"value": agent},
                "url": {"scheme": "http", "address": {"hostname": agent, "ip": "127.0.0.1", "port": self.addr.port()}, "path": "/slave(1)"},
                "unavailability": u.to_json(),
            }));
        }
        self.send(json!({"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": out}}));
    }

    /// Deactivate `agent` and kill its tasks (see the module's documentation).
    pub(crate) fn drain_agent(&mut self, agent: &str, mark_gone: bool) {
        self.draining.insert(agent.to_string(), mark_gone);
        self.rescind_where(|o| o.agent_id == agent);
        let killing = self
            .framework
            .as_ref()
            .is_some_and(|f| f.has_cap("TASK_KILLING_STATE"));
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.agent_id == agent && !t.agent_terminal)
            .map(|(id, _)| id.clone())
            .collect();
        let message = "Agent is draining";
        for id in live {
            if killing {
                self.agent_update(
                    &id,
                    "TASK_KILLING",
                    Some(message),
                    Some("REASON_AGENT_DRAINING"),
                );
            }
            let terminal = if mark_gone {
                "TASK_GONE_BY_OPERATOR"
            } else {
                "TASK_KILLED"
            };
            self.agent_update(&id, terminal, Some(message), Some("REASON_AGENT_DRAINING"));
        }
        if mark_gone {
            self.gone.insert(agent.to_string());
        }
    }

    /// Let a drained agent offer again (not one marked gone).
    pub(crate) fn reactivate_agent(&mut self, agent: &str) {
        if self.gone.contains(agent) {
            return;
        }
        self.draining.remove(agent);
        self.allocate(agent);
    }
}

/// ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: the answer is recorded; the agent gets
/// no inverse offer until the filter (default 5 s) expires.
pub(crate) fn answer_inverse_offers(s: &mut St, call: &Value, accepted: bool) {
    let refuse = call["filters"]["refuse_seconds"].as_f64();
    for id in ids(&call["inverse_offer_ids"]) {
        let Some(agent) = s.inverse_offers.remove(&id) else {
            s.violations
                .push(format!("answer to unknown inverse offer {id}"));
            continue;
        };
        let secs = refuse.unwrap_or(5.0);
        if secs > 0.0 {
            s.inverse_filters.insert(
                agent.clone(),
                Instant::now() + Duration::from_secs_f64(secs.min(1e9)),
            );
        }
        s.inverse_responses.push(InverseResponse {
            agent_id: agent,
            accepted,
            refuse_seconds: refuse,
        });
    }
}
