//! The simulation's state behind one lock: the framework and its subscription, agents and
//! offers, tasks and executors, and everything the double records for inspection (calls,
//! events, launches, acks, declines, kills, violations). The ticker (`St::tick`) drives time:
//! heartbeats, natural task ends, update resends, decline-filter expiry, failover timeouts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::config::{Config, TaskBehavior};
use crate::files::Sandboxes;
use crate::stream::StreamTx;
use crate::validate::Pool;

/// One HTTP request to /api/v1/scheduler, as received and answered.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub method: String,
    /// Request headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    /// The decoded call, when the body parsed.
    pub call: Option<Value>,
    pub call_type: Option<String>,
    pub status: u16,
    pub response_body: String,
}

#[derive(Clone, Debug)]
pub struct LaunchedTask {
    pub task_id: String,
    pub agent_id: String,
    pub offer_ids: Vec<String>,
    pub task_info: Value,
    /// The group's executor (LAUNCH_GROUP) or the task's custom executor;
    /// `None` for a command task.
    pub executor_id: Option<String>,
    /// Launched by a LAUNCH_GROUP operation.
    pub group: bool,
}

#[derive(Clone, Debug)]
pub struct Ack {
    pub task_id: String,
    pub agent_id: String,
    pub uuid: String,
    /// Whether it acknowledged the update currently outstanding for that task.
    pub matched: bool,
}

#[derive(Clone, Debug)]
pub struct Decline {
    pub offer_ids: Vec<String>,
    pub refuse_seconds: Option<f64>,
}

#[derive(Clone, Debug)]
pub enum Leadership {
    Leading,
    /// Answer 307 with `Location: //<addr>/api/v1/scheduler`.
    RedirectTo(String),
    /// Answer 503 "No leader elected".
    NoLeader,
}

pub(crate) struct Framework {
    pub(crate) id: String,
    pub(crate) info: Value,
    pub(crate) stream: Option<StreamTx>,
    pub(crate) disconnected_at: Option<Instant>,
    /// Roles that get no offers until REVIVE (or UPDATE_FRAMEWORK / a new SUBSCRIBE says so).
    pub(crate) suppressed: BTreeSet<String>,
    pub(crate) last_heartbeat: Instant,
}

impl Framework {
    pub(crate) fn has_cap(&self, cap: &str) -> bool {
        self.info["capabilities"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == cap))
    }
    /// The roles the framework is subscribed to (`roles` with MULTI_ROLE, else the old
    /// `role`, default `*`), in order.
    pub(crate) fn roles(&self) -> Vec<String> {
        let roles: Vec<String> = self.info["roles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if roles.is_empty() {
            vec![self.info["role"].as_str().unwrap_or("*").to_string()]
        } else {
            roles
        }
    }
    pub(crate) fn failover_timeout(&self) -> Duration {
        Duration::from_secs_f64(
            self.info["failover_timeout"]
                .as_f64()
                .unwrap_or(0.0)
                .max(0.0),
        )
    }
}

pub(crate) struct Offer {
    pub(crate) agent_id: String,
    pub(crate) role: String,
    pub(crate) pool: Pool,
}

pub(crate) struct Task {
    pub(crate) agent_id: String,
    pub(crate) executor_id: String,
    pub(crate) container_id: String,
    pub(crate) resources: Pool,
    /// Latest state the master has seen (what reconciliation reports).
    pub(crate) state: String,
    /// The agent side reached a terminal state (no more natural progression).
    pub(crate) agent_terminal: bool,
    pub(crate) released: bool,
    pub(crate) end_at: Option<Instant>,
    pub(crate) behavior: TaskBehavior,
    /// Agent-generated updates not yet acknowledged; the head is in flight.
    pub(crate) queue: VecDeque<Value>,
    pub(crate) head_sent: Option<Instant>,
    /// The task group (LAUNCH_GROUP) the task belongs to.
    pub(crate) group: Option<u64>,
}

/// A DEFAULT executor running task groups on an agent.
pub(crate) struct Executor {
    pub(crate) resources: Pool,
    /// Absolute path of its sandbox.
    pub(crate) sandbox: String,
}

pub(crate) struct St {
    pub(crate) cfg: Config,
    pub(crate) addr: SocketAddr,
    pub(crate) master_id: String,
    pub(crate) leadership: Leadership,
    pub(crate) heartbeats: bool,
    pub(crate) framework: Option<Framework>,
    pub(crate) removed: HashSet<String>,
    pub(crate) fw_seq: u32,
    pub(crate) offer_seq: u32,
    pub(crate) agents: BTreeMap<String, Pool>,
    pub(crate) offers: BTreeMap<String, Offer>,
    /// DECLINE / ACCEPT filters per (agent, role).
    pub(crate) filters: HashMap<(String, String), Instant>,
    /// Agents scheduled for maintenance (draining mode, `maintenance`).
    pub(crate) maintenance: BTreeMap<String, crate::maintenance::Unavailability>,
    /// Inverse offers outstanding: id -> agent.
    pub(crate) inverse_offers: BTreeMap<String, String>,
    /// No inverse offer for the agent before this (the answer's filter).
    pub(crate) inverse_filters: HashMap<String, Instant>,
    pub(crate) inverse_responses: Vec<crate::maintenance::InverseResponse>,
    /// Agents being drained (deactivated: no offers); `true`: marked gone once drained.
    pub(crate) draining: BTreeMap<String, bool>,
    /// Agents marked gone by an operator.
    pub(crate) gone: HashSet<String>,
    /// Operations with an ID (operation feedback), by ID.
    pub(crate) operations: BTreeMap<String, crate::feedback::Operation>,
    /// Agents whose operations fail when applied (OPERATION_FAILED).
    pub(crate) failing_operations: HashSet<String>,
    pub(crate) operation_acks: Vec<crate::feedback::OperationAck>,
    pub(crate) tasks: BTreeMap<String, Task>,
    /// Terminal and acknowledged: task id -> agent id.
    pub(crate) completed: HashMap<String, String>,
    pub(crate) behaviors: Vec<(String, TaskBehavior)>,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) events: Vec<Value>,
    pub(crate) launched: Vec<LaunchedTask>,
    pub(crate) acks: Vec<Ack>,
    pub(crate) declines: Vec<Decline>,
    pub(crate) kills: Vec<String>,
    pub(crate) revives: usize,
    /// UPDATE_FRAMEWORK calls applied.
    pub(crate) framework_updates: usize,
    pub(crate) teardowns: usize,
    pub(crate) violations: Vec<String>,
    /// DEFAULT executors by (agent, executor id).
    pub(crate) executors: BTreeMap<(String, String), Executor>,
    pub(crate) group_seq: u64,
    pub(crate) sandboxes: Sandboxes,
    /// Reserved resources (volumes included) per agent, free or in use.
    pub(crate) reserved: BTreeMap<String, Pool>,
    /// Persistent volumes per agent: persistence id -> volume resource.
    pub(crate) volumes: BTreeMap<String, BTreeMap<String, Value>>,
    pub(crate) rejected_operations: Vec<String>,
    /// Offer each agent's resources as this many offers at once (pooling tests).
    pub(crate) split_offers: usize,
    /// Agents whose free resources go to another framework: none of their offers reach us.
    pub(crate) withheld: HashSet<String>,
    /// When the ticker last ran (`MesosDouble::clock`).
    pub(crate) last_tick: Instant,
    /// Events sent, counted as they go (`GET /double/counters` without walking `events`).
    pub(crate) counts: EventCounts,
    /// Agents with resources to offer at the next allocation cycle (`allocation_interval`).
    pub(crate) to_allocate: BTreeSet<String>,
    /// When the last allocation cycle ran.
    pub(crate) last_allocation: Instant,
}

pub(crate) type Shared = Arc<Mutex<St>>;

/// Events sent to the framework, by type; status updates by state (resends included);
/// offers.
#[derive(Default)]
pub(crate) struct EventCounts {
    pub(crate) events: BTreeMap<String, u64>,
    pub(crate) updates: BTreeMap<String, u64>,
    pub(crate) offers: u64,
}

impl EventCounts {
    fn count(&mut self, event: &Value) {
        let typ = event["type"].as_str().unwrap_or("?");
        *self.events.entry(typ.to_string()).or_default() += 1;
        match typ {
            "OFFERS" => {
                self.offers += event["offers"]["offers"]
                    .as_array()
                    .map_or(0, |o| o.len() as u64)
            }
            "UPDATE" => {
                let state = event["update"]["status"]["state"].as_str().unwrap_or("?");
                *self.updates.entry(state.to_string()).or_default() += 1;
            }
            _ => {}
        }
    }
}

impl St {
    pub(crate) fn new(cfg: Config, addr: SocketAddr) -> St {
        St {
            cfg,
            addr,
            master_id: uuid::Uuid::new_v4().to_string(),
            leadership: Leadership::Leading,
            heartbeats: true,
            framework: None,
            removed: HashSet::new(),
            fw_seq: 0,
            offer_seq: 0,
            agents: BTreeMap::new(),
            offers: BTreeMap::new(),
            filters: HashMap::new(),
            maintenance: BTreeMap::new(),
            inverse_offers: BTreeMap::new(),
            inverse_filters: HashMap::new(),
            inverse_responses: Vec::new(),
            draining: BTreeMap::new(),
            gone: HashSet::new(),
            operations: BTreeMap::new(),
            failing_operations: HashSet::new(),
            operation_acks: Vec::new(),
            tasks: BTreeMap::new(),
            completed: HashMap::new(),
            behaviors: Vec::new(),
            calls: Vec::new(),
            events: Vec::new(),
            launched: Vec::new(),
            acks: Vec::new(),
            declines: Vec::new(),
            kills: Vec::new(),
            revives: 0,
            framework_updates: 0,
            teardowns: 0,
            violations: Vec::new(),
            split_offers: 1,
            withheld: HashSet::new(),
            executors: BTreeMap::new(),
            group_seq: 0,
            sandboxes: Sandboxes::default(),
            reserved: BTreeMap::new(),
            volumes: BTreeMap::new(),
            rejected_operations: Vec::new(),
            last_tick: Instant::now(),
            counts: EventCounts::default(),
            to_allocate: BTreeSet::new(),
            last_allocation: Instant::now(),
        }
    }
}

impl St {
    /// This master's `MasterInfo` (in SUBSCRIBED and in its ZooKeeper registration).
    pub(crate) fn master_info(&self) -> Value {
        let addr = self.addr;
        json!({
            "id": self.master_id, "ip": 16777343, "port": addr.port(),
            "pid": format!("master@{addr}"), "hostname": addr.ip().to_string(),
            "version": "1.12.0",
            "address": {"hostname": addr.ip().to_string(), "ip": addr.ip().to_string(), "port": addr.port()},
        })
    }
}

pub(crate) fn now_ts() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub(crate) fn new_uuid_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}

pub(crate) fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_ERROR"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
    )
}

impl St {
    pub(crate) fn send(&mut self, event: Value) {
        let Some(fw) = self.framework.as_mut() else {
            return;
        };
        let Some(s) = fw.stream.as_ref() else {
            return;
        };
        s.send(&event);
        self.counts.count(&event);
        self.events.push(event);
    }

    pub(crate) fn connected(&self) -> bool {
        self.framework
            .as_ref()
            .is_some_and(|f| f.stream.as_ref().is_some_and(|s| !s.is_closed()))
    }

    pub(crate) fn partition_aware(&self) -> bool {
        self.framework
            .as_ref()
            .is_some_and(|f| f.has_cap("PARTITION_AWARE"))
    }

    pub(crate) fn master_status(
        &self,
        task_id: &str,
        state: &str,
        reason: &str,
        message: &str,
        agent: Option<&str>,
    ) -> Value {
        let mut s = json!({
            "task_id": {"value": task_id}, "state": state, "message": message,
            "source": "SOURCE_MASTER", "reason": reason,
        });
        if let Some(a) = agent {
            s["agent_id"] = json!({ "value": a });
        }
        s["timestamp"] = json!(now_ts());
        s
    }

    pub(crate) fn send_update_event(&mut self, status: Value) {
        self.send(json!({"type": "UPDATE", "update": {"status": status}}));
    }

    /// One step of simulated time: stream closes noticed, failover timeouts, heartbeats,
    /// natural task ends, decline-filter expiry, update resends, idle executors reaped.
    pub(crate) fn tick(&mut self) {
        let now = Instant::now();
        self.last_tick = now;
        // Stream closed by the client: the framework is disconnected.
        let closed = self
            .framework
            .as_ref()
            .is_some_and(|f| f.stream.as_ref().is_some_and(|s| s.is_closed()));
        if closed {
            self.disconnect();
        }
        if let Some(fw) = self.framework.as_ref() {
            if let Some(at) = fw.disconnected_at {
                if now.duration_since(at) >= fw.failover_timeout() {
                    self.remove_framework();
                }
            }
        }
        // Heartbeats.
        let hb = self.cfg.heartbeat_interval;
        let send_hb = self.heartbeats
            && self.connected()
            && self
                .framework
                .as_ref()
                .is_some_and(|f| now.duration_since(f.last_heartbeat) >= hb);
        if send_hb {
            self.framework.as_mut().unwrap().last_heartbeat = now;
            self.send(json!({"type": "HEARTBEAT"}));
        }
        // Natural task ends.
        let ending: Vec<(String, TaskBehavior)> = self
            .tasks
            .iter()
            .filter(|(_, t)| !t.agent_terminal && t.end_at.is_some_and(|e| e <= now))
            .map(|(id, t)| (id.clone(), t.behavior.clone()))
            .collect();
        for (id, b) in ending {
            match b {
                TaskBehavior::Fail { exit_code, .. } => {
                    let m = format!("Command exited with status {exit_code}");
                    self.agent_update(&id, "TASK_FAILED", Some(&m), None)
                }
                _ => self.agent_update(
                    &id,
                    "TASK_FINISHED",
                    Some("Command exited with status 0"),
                    None,
                ),
            }
        }
        // Expired decline filters.
        let expired: Vec<(String, String)> = self
            .filters
            .iter()
            .filter(|(_, u)| **u <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.filters.remove(&key);
            self.allocate(&key.0);
        }
        self.pump();
        self.pump_operations();
        self.send_inverse_offers();
        if self.connected() {
            self.reap_executors();
        }
        if now.duration_since(self.last_allocation) >= self.cfg.allocation_interval {
            self.last_allocation = now;
            self.allocation_cycle();
        }
    }

    pub(crate) fn disconnect(&mut self) {
        let Some(fw) = self.framework.as_mut() else {
            return;
        };
        if fw.stream.take().is_none() {
            return;
        }
        fw.disconnected_at = Some(Instant::now());
        let timeout_zero = fw.failover_timeout().is_zero();
        self.drop_offers(false);
        self.filters.clear();
        self.inverse_offers.clear();
        self.inverse_filters.clear();
        if timeout_zero {
            self.remove_framework();
        }
    }

    pub(crate) fn remove_framework(&mut self) {
        let Some(fw) = self.framework.take() else {
            return;
        };
        self.removed.insert(fw.id);
        self.drop_offers(false);
        self.filters.clear();
        self.inverse_offers.clear();
        self.inverse_filters.clear();
        self.operations.clear();
        let tasks = std::mem::take(&mut self.tasks);
        for (_, t) in tasks {
            if !t.released {
                self.give_back(&t.agent_id, &t.resources);
            }
        }
        let executors = std::mem::take(&mut self.executors);
        for ((agent, _), e) in executors {
            self.give_back(&agent, &e.resources);
        }
        self.completed.clear();
    }

    pub(crate) fn behavior_for(&self, task_id: &str) -> TaskBehavior {
        self.behaviors
            .iter()
            .rev()
            .find(|(p, _)| task_id.starts_with(p.as_str()))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| self.cfg.default_behavior.clone())
    }
}
