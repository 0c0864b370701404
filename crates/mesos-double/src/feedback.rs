//! Operation feedback (mesos-scheduler-api.md §2.1 ACKNOWLEDGE_OPERATION_STATUS /
//! RECONCILE_OPERATIONS, §2.2 UPDATE_OPERATION_STATUS, §3.12 `OperationStatus`, §5
//! "Feedback"; Mesos `docs/scheduler-http-api.md`, operation status updates for agent default
//! resources since Mesos 1.8).
//!
//! A RESERVE / UNRESERVE / CREATE / DESTROY that carries `Offer.Operation.id` gets status
//! updates:
//! * refused by the master (invalid offers, resources not in the offer, a bad reservation
//!   or volume, an ID already in use): OPERATION_ERROR from the master, without uuid (not
//!   retried, never acknowledged);
//! * applied on the agent: OPERATION_FINISHED with `converted_resources`, or, on an agent
//!   told to fail them (`fail_operations`), OPERATION_FAILED; both from the agent, with a
//!   `uuid` (`{"value": base64}`), re-sent every `resend_interval` and at once after a
//!   re-subscription until ACKNOWLEDGE_OPERATION_STATUS echoes it (with `agent_id`: the
//!   master requires it).
//!
//! RECONCILE_OPERATIONS answers with the latest status of each named operation (all known
//! ones when none is named), OPERATION_UNKNOWN for an ID it does not know, without uuid.
//! LAUNCH and LAUNCH_GROUP take no operation ID: their tasks report through task updates.

use std::time::Instant;

use base64::Engine;
use serde_json::{json, Value};

use crate::state::{new_uuid_b64, St};

/// An operation with an ID, as the master and the agent know it.
pub(crate) struct Operation {
    pub(crate) agent_id: String,
    /// Latest status (what reconciliation reports).
    pub(crate) latest: Value,
    /// The agent's update waiting for its acknowledgement, and when it was last sent.
    pub(crate) unacked: Option<(Value, Option<Instant>)>,
}

/// An ACKNOWLEDGE_OPERATION_STATUS as received.
#[derive(Clone, Debug)]
pub struct OperationAck {
    pub operation_id: String,
    pub agent_id: String,
    /// Whether it acknowledged the update outstanding for that operation.
    pub matched: bool,
}

fn status(id: &str, state: &str, agent: Option<&str>, message: Option<&str>) -> Value {
    let mut s = json!({"operation_id": {"value": id}, "state": state});
    if let Some(a) = agent {
        s["agent_id"] = json!({ "value": a });
    }
    if let Some(m) = message {
        s["message"] = json!(m);
    }
    s
}

fn event(status: &Value) -> Value {
    json!({"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": status}})
}

impl St {
    /// Whether `id` names an operation whose feedback is still to come or to be acknowledged.
    pub(crate) fn operation_id_in_use(&self, id: &str) -> bool {
        self.operations
            .get(id)
            .is_some_and(|o| o.unacked.is_some() || o.latest["state"] == "OPERATION_PENDING")
    }

    /// The master refused the operation: OPERATION_ERROR, no uuid.
    pub(crate) fn operation_error(&mut self, id: &str, agent: Option<&str>, message: &str) {
        let s = status(id, "OPERATION_ERROR", agent, Some(message));
        self.operations.insert(
            id.to_string(),
            Operation {
                agent_id: agent.unwrap_or_default().to_string(),
                latest: s.clone(),
                unacked: None,
            },
        );
        self.send(event(&s));
    }

    /// The agent applied the operation (`converted` are the resulting resources), or
    /// failed to: a reliable update with a uuid.
    pub(crate) fn operation_done(&mut self, id: &str, agent: &str, converted: Option<Vec<Value>>) {
        let mut s = match &converted {
            Some(_) => status(id, "OPERATION_FINISHED", Some(agent), None),
            None => status(
                id,
                "OPERATION_FAILED",
                Some(agent),
                Some("Failed to apply the operation on the agent"),
            ),
        };
        if let Some(c) = converted {
            s["converted_resources"] = Value::Array(c);
        }
        s["uuid"] = json!({ "value": new_uuid_b64() });
        self.operations.insert(
            id.to_string(),
            Operation {
                agent_id: agent.to_string(),
                latest: s.clone(),
                unacked: Some((s, None)),
            },
        );
        self.pump_operations();
    }

    /// Sends unacknowledged operation updates that are due (first send, or a resend).
    pub(crate) fn pump_operations(&mut self) {
        if !self.connected() {
            return;
        }
        let resend = self.cfg.resend_interval;
        let now = Instant::now();
        let mut out = Vec::new();
        for op in self.operations.values_mut() {
            if let Some((s, sent)) = op.unacked.as_mut() {
                if sent.is_none_or(|at| now.duration_since(at) >= resend) {
                    *sent = Some(now);
                    out.push(s.clone());
                }
            }
        }
        for s in out {
            self.send(event(&s));
        }
    }

    /// After a re-subscription every unacknowledged operation update goes out at once.
    pub(crate) fn resend_operations_now(&mut self) {
        for op in self.operations.values_mut() {
            if let Some((_, sent)) = op.unacked.as_mut() {
                *sent = None;
            }
        }
        self.pump_operations();
    }
}

/// ACKNOWLEDGE_OPERATION_STATUS; `Err` is the 400's message.
pub(crate) fn acknowledge(s: &mut St, ack: &Value) -> Result<(), String> {
    let Some(agent) = ack["agent_id"]["value"].as_str() else {
        return Err("Expecting 'agent_id' to be present".into());
    };
    let uuid = ack["uuid"].as_str().unwrap_or("");
    let valid = base64::engine::general_purpose::STANDARD
        .decode(uuid)
        .is_ok_and(|b| b.len() == 16);
    if !valid {
        return Err("Invalid UUID: not 16 bytes of base64".into());
    }
    let id = ack["operation_id"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut matched = false;
    if let Some(op) = s.operations.get_mut(&id) {
        let outstanding = op
            .unacked
            .as_ref()
            .filter(|(st, sent)| sent.is_some() && st["uuid"]["value"] == uuid)
            .is_some();
        if outstanding && op.agent_id == agent {
            op.unacked = None;
            matched = true;
        }
    }
    if !matched {
        s.violations.push(format!(
            "ACKNOWLEDGE_OPERATION_STATUS of {id} uuid {uuid} matches no outstanding update"
        ));
    }
    s.operation_acks.push(OperationAck {
        operation_id: id,
        agent_id: agent.to_string(),
        matched,
    });
    Ok(())
}

/// RECONCILE_OPERATIONS: the latest status of each named (or every known) operation.
pub(crate) fn reconcile(s: &mut St, call: &Value) {
    let named: Vec<(String, Option<String>)> = call["operations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["operation_id"]["value"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        o["agent_id"]["value"].as_str().map(String::from),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let wanted: Vec<(String, Option<String>)> = if named.is_empty() {
        s.operations.keys().map(|id| (id.clone(), None)).collect()
    } else {
        named
    };
    for (id, agent) in wanted {
        let mut answer = match s.operations.get(&id) {
            Some(op) => {
                let mut st = op.latest.clone();
                if let Some(o) = st.as_object_mut() {
                    o.remove("uuid");
                }
                st
            }
            None => {
                let mut st = json!({"operation_id": {"value": id}, "state": "OPERATION_UNKNOWN"});
                if let Some(a) = agent {
                    st["agent_id"] = json!({ "value": a });
                }
                st
            }
        };
        answer["message"] = json!("Reconciliation: latest operation status");
        s.send(event(&answer));
    }
}
