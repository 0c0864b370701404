//! The simulated master: HTTP handler, framework/offer/task/executor state,
//! the agent's status-update retry loop and the allocator (greatly simplified).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::files::{self, Sandboxes};
use super::group::validate_group;
use super::operations;
use super::stream::StreamTx;
use super::validate::{json_parse_error, missing_required, strip_allocation, validate_task, Pool};

use super::codec::{decode_protobuf_call, negotiate};
pub use super::codec::{Encoding, JSON, PROTOBUF};

/// How a launched task behaves on its (simulated) agent.
#[derive(Clone, Debug)]
pub enum TaskBehavior {
    /// TASK_FINISHED "Command exited with status 0" after the delay.
    Finish { after: Duration },
    /// TASK_FAILED "Command exited with status N" after the delay.
    Fail { after: Duration, exit_code: i32 },
    /// Runs until KILLed (or `finish_task` / `fail_task` / `send_update`).
    RunUntilKilled,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Interval between HEARTBEATs, also reported in SUBSCRIBED (real master: 15 s).
    pub heartbeat_interval: Duration,
    /// The agent re-sends an unacknowledged update after this long (real agent: 10 s, backing off).
    pub resend_interval: Duration,
    /// Behaviour of tasks without a per-task override (`set_task_behavior`).
    pub default_behavior: TaskBehavior,
    /// Split every RecordIO record over three HTTP chunks (otherwise records
    /// sent together, e.g. SUBSCRIBED + HEARTBEAT, share one chunk).
    pub split_records: bool,
    /// Internal clock of the simulation (timers, resends, filters).
    pub tick: Duration,
    /// HTTP framework authentication (`--authenticate_http_frameworks`, basic):
    /// `(principal, secret)` every scheduler call must carry.
    pub credentials: Option<(String, String)>,
    /// Calls of these types (JSON only) are held this long before the master handles them,
    /// as a slow path between framework and master would: calls sent after them may overtake.
    pub slow_calls: Vec<(&'static str, Duration)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat_interval: Duration::from_secs(15),
            resend_interval: Duration::from_secs(10),
            default_behavior: TaskBehavior::Finish {
                after: Duration::from_millis(50),
            },
            split_records: false,
            tick: Duration::from_millis(10),
            credentials: None,
            slow_calls: Vec::new(),
        }
    }
}

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
    pub(crate) suppressed: bool,
    pub(crate) last_heartbeat: Instant,
}

impl Framework {
    pub(crate) fn has_cap(&self, cap: &str) -> bool {
        self.info["capabilities"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["type"] == cap))
    }
    fn role(&self) -> String {
        self.info["roles"][0]
            .as_str()
            .or(self.info["role"].as_str())
            .unwrap_or("*")
            .to_string()
    }
    fn failover_timeout(&self) -> Duration {
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
    pub(crate) filters: HashMap<String, Instant>,
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
}

pub(crate) type Shared = Arc<Mutex<St>>;

fn now_ts() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn new_uuid_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn is_terminal(state: &str) -> bool {
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

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

impl St {
    fn send(&mut self, event: Value) {
        let Some(fw) = self.framework.as_mut() else {
            return;
        };
        let Some(s) = fw.stream.as_ref() else {
            return;
        };
        s.send(&event);
        self.events.push(event);
    }

    fn connected(&self) -> bool {
        self.framework
            .as_ref()
            .is_some_and(|f| f.stream.as_ref().is_some_and(|s| !s.is_closed()))
    }

    fn partition_aware(&self) -> bool {
        self.framework
            .as_ref()
            .is_some_and(|f| f.has_cap("PARTITION_AWARE"))
    }

    fn master_status(
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

    fn send_update_event(&mut self, status: Value) {
        self.send(json!({"type": "UPDATE", "update": {"status": status}}));
    }

    /// Runs the allocator for one agent: offers its free resources unless
    /// the framework is disconnected, suppressed or filtered on that agent.
    fn allocate(&mut self, agent: &str) -> Option<String> {
        if !self.connected() {
            return None;
        }
        let fw = self.framework.as_ref()?;
        if fw.suppressed {
            return None;
        }
        if self
            .filters
            .get(agent)
            .is_some_and(|until| *until > Instant::now())
        {
            return None;
        }
        if self.withheld.contains(agent) {
            return None;
        }
        let free = self.agents.get(agent)?;
        if free.is_empty() {
            return None;
        }
        let role = fw.role();
        let multi_role = fw.has_cap("MULTI_ROLE");
        let fid = fw.id.clone();
        let alloc_role = multi_role.then_some(role.as_str());
        let resources = free.to_json(alloc_role);
        self.agents.insert(agent.to_string(), Pool::default());
        let parts = self.split_offers.max(1);
        let mut offers = Vec::new();
        let mut first_id = None;
        for part in 0..parts {
            // Scalars are split evenly; everything else goes with the first part.
            let part_resources: Vec<Value> = resources
                .iter()
                .filter_map(|r| match r["scalar"]["value"].as_f64() {
                    Some(v) => {
                        let mut r = r.clone();
                        r["scalar"]["value"] =
                            json!(((v / parts as f64) * 1000.0).floor() / 1000.0);
                        Some(r)
                    }
                    None => (part == 0).then(|| r.clone()),
                })
                .collect();
            let pool = Pool::parse(&part_resources, None).expect("own resources parse");
            self.offer_seq += 1;
            let id = format!("{}-O{}", self.master_id, self.offer_seq);
            let mut offer = json!({
                "id": {"value": id}, "framework_id": {"value": fid},
                "agent_id": {"value": agent}, "hostname": agent,
                "url": {"scheme": "http", "address": {"hostname": agent, "ip": "127.0.0.1", "port": self.addr.port()}, "path": "/slave(1)"},
                "resources": part_resources,
            });
            let executor_ids: Vec<Value> = self
                .executors
                .keys()
                .filter(|(a, _)| a == agent)
                .map(|(_, e)| json!({ "value": e }))
                .collect();
            if !executor_ids.is_empty() {
                offer["executor_ids"] = Value::Array(executor_ids);
            }
            if multi_role {
                offer["allocation_info"] = json!({ "role": role });
            }
            self.offers.insert(
                id.clone(),
                Offer {
                    agent_id: agent.to_string(),
                    role: role.clone(),
                    pool,
                },
            );
            first_id.get_or_insert(id);
            offers.push(offer);
        }
        self.send(json!({"type": "OFFERS", "offers": {"offers": offers}}));
        first_id
    }

    fn allocate_all(&mut self) {
        let agents: Vec<String> = self.agents.keys().cloned().collect();
        for a in agents {
            self.allocate(&a);
        }
    }

    pub(crate) fn give_back(&mut self, agent: &str, pool: &Pool) {
        let stripped: Vec<Value> = pool.to_json(None).iter().map(strip_allocation).collect();
        let p = Pool::parse(&stripped, None).expect("own resources parse");
        self.agents.entry(agent.to_string()).or_default().add(&p);
    }

    fn filter(&mut self, agent: &str, refuse_seconds: f64) {
        if refuse_seconds > 0.0 {
            let until = Instant::now() + Duration::from_secs_f64(refuse_seconds.min(1e9));
            self.filters.insert(agent.to_string(), until);
        }
    }

    /// Drops all offers without telling the framework (disconnect) or with RESCIND.
    fn drop_offers(&mut self, rescind: bool) {
        let ids: Vec<String> = self.offers.keys().cloned().collect();
        for id in ids {
            let o = self.offers.remove(&id).unwrap();
            self.give_back(&o.agent_id, &o.pool);
            if rescind {
                self.send(json!({"type": "RESCIND", "rescind": {"offer_id": {"value": id}}}));
            }
        }
    }

    fn agent_status(&self, task_id: &str, t: &Task, state: &str, message: Option<&str>) -> Value {
        let mut s = json!({"task_id": {"value": task_id}, "state": state});
        if let Some(m) = message {
            s["message"] = json!(m);
        }
        s["source"] = json!("SOURCE_EXECUTOR");
        s["agent_id"] = json!({"value": t.agent_id});
        s["executor_id"] = json!({"value": t.executor_id});
        s["timestamp"] = json!(now_ts());
        s["uuid"] = json!(new_uuid_b64());
        s["container_status"] =
            json!({"container_id": {"value": t.container_id}, "executor_pid": 4242});
        s
    }

    /// The agent generates an update for a task (queued behind unacknowledged ones).
    fn agent_update(
        &mut self,
        task_id: &str,
        state: &str,
        message: Option<&str>,
        reason: Option<&str>,
    ) {
        let Some(t) = self.tasks.get(task_id) else {
            return;
        };
        let mut s = self.agent_status(task_id, t, state, message);
        if let Some(r) = reason {
            s["reason"] = json!(r);
        }
        let Some(t) = self.tasks.get_mut(task_id) else {
            return;
        };
        if is_terminal(state) {
            t.agent_terminal = true;
            t.end_at = None;
        }
        t.queue.push_back(s);
        let group = t.group;
        self.pump();
        if let Some(g) = group.filter(|_| is_terminal(state) && state != "TASK_FINISHED") {
            self.kill_group(g);
        }
    }

    /// The default executor kills the other live tasks of a group when one
    /// of them fails or is killed.
    fn kill_group(&mut self, group: u64) {
        let live: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.group == Some(group) && !t.agent_terminal)
            .map(|(id, _)| id.clone())
            .collect();
        for id in live {
            self.kill_task(&id);
        }
    }

    /// The agent kills a running task (TASK_KILLING first when the framework
    /// has TASK_KILLING_STATE).
    pub(crate) fn kill_task(&mut self, id: &str) {
        let killing = self
            .framework
            .as_ref()
            .is_some_and(|f| f.has_cap("TASK_KILLING_STATE"));
        if killing {
            self.agent_update(id, "TASK_KILLING", None, None);
        }
        self.agent_update(
            id,
            "TASK_KILLED",
            Some("Command terminated with signal Terminated"),
            None,
        );
    }

    /// A DEFAULT executor whose task groups are all over (terminal and
    /// acknowledged) exits: FAILURE with status 0, its resources are freed.
    fn reap_executors(&mut self) {
        let idle: Vec<(String, String)> = self
            .executors
            .keys()
            .filter(|(agent, ex)| {
                !self
                    .tasks
                    .values()
                    .any(|t| &t.agent_id == agent && &t.executor_id == ex)
            })
            .cloned()
            .collect();
        for key in idle {
            let Some(e) = self.executors.remove(&key) else {
                continue;
            };
            let (agent, ex) = key;
            self.send(json!({"type": "FAILURE", "failure": {
                "agent_id": {"value": agent}, "executor_id": {"value": ex}, "status": 0}}));
            self.give_back(&agent, &e.resources);
            self.allocate(&agent);
        }
    }

    /// Forwards the head of every task's update queue (and re-sends stale ones).
    fn pump(&mut self) {
        if !self.connected() {
            return;
        }
        let resend = self.cfg.resend_interval;
        let now = Instant::now();
        let mut out = Vec::new();
        let mut release = Vec::new();
        for (id, t) in self.tasks.iter_mut() {
            let Some(head) = t.queue.front() else {
                continue;
            };
            let due = match t.head_sent {
                None => true,
                Some(at) => now.duration_since(at) >= resend,
            };
            if due {
                t.head_sent = Some(now);
                let state = head["state"].as_str().unwrap_or_default().to_string();
                if is_terminal(&state) && !t.released {
                    t.released = true;
                    release.push((t.agent_id.clone(), t.resources.clone()));
                }
                t.state = state;
                out.push((id.clone(), head.clone()));
            }
        }
        for (_, s) in out {
            self.send_update_event(s);
        }
        for (agent, pool) in release {
            self.give_back(&agent, &pool);
            self.allocate(&agent);
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
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
        let expired: Vec<String> = self
            .filters
            .iter()
            .filter(|(_, u)| **u <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for a in expired {
            self.filters.remove(&a);
            self.allocate(&a);
        }
        self.pump();
        if self.connected() {
            self.reap_executors();
        }
    }

    fn disconnect(&mut self) {
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
        if timeout_zero {
            self.remove_framework();
        }
    }

    fn remove_framework(&mut self) {
        let Some(fw) = self.framework.take() else {
            return;
        };
        self.removed.insert(fw.id);
        self.drop_offers(false);
        self.filters.clear();
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

    fn behavior_for(&self, task_id: &str) -> TaskBehavior {
        self.behaviors
            .iter()
            .rev()
            .find(|(p, _)| task_id.starts_with(p.as_str()))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| self.cfg.default_behavior.clone())
    }
}

// ---------------------------------------------------------------- handling

async fn redirect(AxState(st): AxState<Shared>) -> Response {
    let s = st.lock();
    match &s.leadership {
        Leadership::Leading => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{}", s.addr))],
        )
            .into_response(),
        Leadership::RedirectTo(a) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("//{a}"))],
        )
            .into_response(),
        Leadership::NoLeader => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn scheduler(
    AxState(st): AxState<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut rec = RecordedCall {
        method: method.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.clone(),
        call: None,
        call_type: None,
        status: 0,
        response_body: String::new(),
    };
    let hold = {
        let kind = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["type"].as_str().map(String::from));
        let s = st.lock();
        s.cfg
            .slow_calls
            .iter()
            .find(|(k, _)| kind.as_deref() == Some(*k))
            .map(|(_, d)| *d)
    };
    if let Some(d) = hold {
        tokio::time::sleep(d).await;
    }
    let (resp, body_text) = handle(&st, &method, &headers, &body, &mut rec);
    rec.status = resp.status().as_u16();
    rec.response_body = body_text;
    st.lock().calls.push(rec);
    resp
}

fn err(status: StatusCode, msg: impl Into<String>) -> (Response, String) {
    let m = msg.into();
    (text(status, m.clone()), m)
}

fn handle(
    st: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    rec: &mut RecordedCall,
) -> (Response, String) {
    let Ok(principal) = authenticate(&st.lock().cfg, headers) else {
        let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"mesos\"")];
        return (
            (StatusCode::UNAUTHORIZED, challenge).into_response(),
            String::new(),
        );
    };
    {
        let s = st.lock();
        match &s.leadership {
            Leadership::Leading => {}
            Leadership::RedirectTo(a) => {
                let loc = format!("//{a}/api/v1/scheduler");
                return (
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, loc)]).into_response(),
                    String::new(),
                );
            }
            Leadership::NoLeader => {
                return err(StatusCode::SERVICE_UNAVAILABLE, "No leader elected");
            }
        }
    }
    if method != Method::POST {
        let m = format!("Expecting one of {{ 'POST' }}, but received '{method}'");
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, m.clone());
        r.headers_mut()
            .insert(header::ALLOW, "POST".parse().unwrap());
        return (r, m);
    }
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return err(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        );
    };
    let call = match ct.to_str().unwrap_or("") {
        JSON => match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Failed to parse body into JSON: {}",
                        json_parse_error(body, &e)
                    ),
                )
            }
        },
        PROTOBUF => match decode_protobuf_call(body) {
            Ok(v) => v,
            Err(e) => return err(StatusCode::BAD_REQUEST, e),
        },
        _ => {
            return err(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            )
        }
    };
    rec.call = Some(call.clone());
    if !call.is_object() {
        return err(
            StatusCode::BAD_REQUEST,
            "Failed to convert JSON into Call protobuf: Expecting a JSON object",
        );
    }
    let missing = missing_required(&call);
    if !missing.is_empty() {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "Failed to convert JSON into Call protobuf: Missing required fields: {}",
                missing.join(", ")
            ),
        );
    }
    const TYPES: &[&str] = &[
        "UNKNOWN",
        "SUBSCRIBE",
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "REVIVE",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "RECONCILE",
        "MESSAGE",
        "REQUEST",
        "SUPPRESS",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE_OPERATIONS",
        "UPDATE_FRAMEWORK",
    ];
    // An unknown enum name in an optional field is dropped silently.
    let typ = call["type"].as_str().filter(|t| TYPES.contains(t));
    let Some(typ) = typ else {
        return err(
            StatusCode::BAD_REQUEST,
            "Failed to validate scheduler::Call: Expecting 'type' to be present",
        );
    };
    rec.call_type = Some(typ.to_string());
    if typ == "UNKNOWN" {
        return err(
            StatusCode::NOT_IMPLEMENTED,
            "Received an unexpected 'UNKNOWN' call",
        );
    }
    let v = |m: &str| format!("Failed to validate scheduler::Call: {m}");
    if typ == "SUBSCRIBE" {
        if call["subscribe"].is_null() {
            return err(
                StatusCode::BAD_REQUEST,
                v("Expecting 'subscribe' to be present"),
            );
        }
        let info_id = call["subscribe"]["framework_info"]["id"]["value"].as_str();
        let call_id = call["framework_id"]["value"].as_str();
        if (info_id.is_some() || call_id.is_some()) && info_id != call_id {
            return err(
                StatusCode::BAD_REQUEST,
                v("'framework_id' differs from 'subscribe.framework_info.id'"),
            );
        }
        let accept = headers
            .get(header::ACCEPT)
            .map(|a| a.to_str().unwrap_or(""));
        let Some(encoding) = negotiate(accept) else {
            return err(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow application/json or application/x-protobuf",
            );
        };
        if headers.contains_key("mesos-stream-id") {
            return err(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        return (
            subscribe(st, &call, encoding, principal.as_deref()),
            String::new(),
        );
    }
    let Some(fid) = call["framework_id"]["value"].as_str() else {
        return err(
            StatusCode::BAD_REQUEST,
            v("Expecting 'framework_id' to be present"),
        );
    };
    let payload = match typ {
        "ACCEPT" => Some("accept"),
        "DECLINE" => Some("decline"),
        "KILL" => Some("kill"),
        "SHUTDOWN" => Some("shutdown"),
        "ACKNOWLEDGE" => Some("acknowledge"),
        "RECONCILE" => Some("reconcile"),
        "MESSAGE" => Some("message"),
        "REQUEST" => Some("request"),
        "ACCEPT_INVERSE_OFFERS" => Some("accept_inverse_offers"),
        "DECLINE_INVERSE_OFFERS" => Some("decline_inverse_offers"),
        "ACKNOWLEDGE_OPERATION_STATUS" => Some("acknowledge_operation_status"),
        "RECONCILE_OPERATIONS" => Some("reconcile_operations"),
        "UPDATE_FRAMEWORK" => Some("update_framework"),
        _ => None,
    };
    if let Some(p) = payload {
        if call[p].is_null() {
            return err(
                StatusCode::BAD_REQUEST,
                v(&format!("Expecting '{p}' to be present")),
            );
        }
    }
    if typ == "ACKNOWLEDGE" {
        let u = call["acknowledge"]["uuid"].as_str().unwrap_or("");
        let ok = base64::engine::general_purpose::STANDARD
            .decode(u)
            .is_ok_and(|b| b.len() == 16);
        if !ok {
            return err(
                StatusCode::BAD_REQUEST,
                v("Invalid UUID: not 16 bytes of base64"),
            );
        }
    }
    let mut s = st.lock();
    let Some(fw) = s.framework.as_ref().filter(|f| f.id == fid) else {
        drop(s);
        return err(StatusCode::BAD_REQUEST, "Framework cannot be found");
    };
    if let Some(m) = principal_mismatch(principal.as_deref(), &fw.info) {
        drop(s);
        return err(StatusCode::BAD_REQUEST, m);
    }
    let Some(stream) = fw.stream.as_ref().filter(|x| !x.is_closed()) else {
        drop(s);
        return err(StatusCode::FORBIDDEN, "Framework is not subscribed");
    };
    let Some(sid) = headers.get("mesos-stream-id") else {
        drop(s);
        return err(
            StatusCode::BAD_REQUEST,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        );
    };
    let sid = sid.to_str().unwrap_or("");
    if sid != stream.stream_id {
        let m = format!(
            "The stream ID '{sid}' included in this request didn't match the stream ID currently associated with framework ID {fid}"
        );
        drop(s);
        return err(StatusCode::BAD_REQUEST, m);
    }
    match typ {
        "ACCEPT" => accept(&mut s, &call["accept"]),
        "DECLINE" => {
            let ids: Vec<String> = ids(&call["decline"]["offer_ids"]);
            let refuse = call["decline"]["filters"]["refuse_seconds"].as_f64();
            s.declines.push(Decline {
                offer_ids: ids.clone(),
                refuse_seconds: refuse,
            });
            for id in ids {
                match s.offers.remove(&id) {
                    Some(o) => {
                        s.give_back(&o.agent_id, &o.pool);
                        s.filter(&o.agent_id, refuse.unwrap_or(5.0));
                    }
                    None => s.violations.push(format!("DECLINE of unknown offer {id}")),
                }
            }
        }
        "SUPPRESS" => {
            s.framework.as_mut().unwrap().suppressed = true;
        }
        "REVIVE" => {
            s.revives += 1;
            s.framework.as_mut().unwrap().suppressed = false;
            s.filters.clear();
            s.allocate_all();
        }
        "KILL" => kill(&mut s, &call["kill"]),
        "ACKNOWLEDGE" => acknowledge(&mut s, &call["acknowledge"]),
        "RECONCILE" => reconcile(&mut s, &call["reconcile"]),
        "TEARDOWN" => {
            s.teardowns += 1;
            s.remove_framework();
        }
        "UPDATE_FRAMEWORK" => {
            let info = call["update_framework"]["framework_info"].clone();
            if info["id"]["value"].as_str() != Some(fid) {
                drop(s);
                return err(
                    StatusCode::BAD_REQUEST,
                    v("'framework_id' differs from 'update_framework.framework_info.id'"),
                );
            }
            let fw = s.framework.as_mut().unwrap();
            fw.info = info;
            fw.suppressed = call["update_framework"]["suppressed_roles"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            return (StatusCode::OK.into_response(), String::new());
        }
        _ => {}
    }
    (StatusCode::ACCEPTED.into_response(), String::new())
}

/// HTTP Basic authentication of a scheduler call: the authenticated principal
/// (`None` without configured credentials), `Err` for a 401.
fn authenticate(cfg: &Config, headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some((principal, secret)) = cfg.credentials.as_ref() else {
        return Ok(None);
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"))
    );
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected.as_str()) {
        Ok(Some(principal.clone()))
    } else {
        Err(())
    }
}

/// The authenticated principal must be the framework's `principal`.
fn principal_mismatch(authenticated: Option<&str>, info: &Value) -> Option<String> {
    let auth = authenticated?;
    let declared = info["principal"].as_str();
    (declared != Some(auth)).then(|| {
        format!(
            "Authenticated principal '{auth}' does not match principal '{}' set in `FrameworkInfo`",
            declared.unwrap_or("")
        )
    })
}

/// Why a well-formed SUBSCRIBE is refused (200 + ERROR event), if it is.
fn subscribe_refusal(s: &St, info: &Value, principal: Option<&str>) -> Option<String> {
    let requested = info["id"]["value"].as_str();
    if requested.is_some_and(|id| s.removed.contains(id)) {
        return Some("Framework has been removed".into());
    }
    principal_mismatch(principal, info)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["value"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn subscribe(st: &Shared, call: &Value, encoding: Encoding, principal: Option<&str>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let stream_id = uuid::Uuid::new_v4().to_string();
    let mut s = st.lock();
    let split = s.cfg.split_records;
    let tx = StreamTx::new(stream_id.clone(), encoding, tx, split);
    let info = call["subscribe"]["framework_info"].clone();
    let requested = info["id"]["value"].as_str().map(String::from);
    if let Some(message) = subscribe_refusal(&s, &info, principal) {
        tx.send(&json!({"type": "ERROR", "error": {"message": message}}));
        drop(tx);
    } else {
        // One live subscription per framework: the old stream is failed over.
        let same = s
            .framework
            .as_ref()
            .is_some_and(|f| Some(&f.id) == requested.as_ref());
        if let Some(old) = s.framework.as_mut() {
            if let Some(old_tx) = old.stream.take() {
                old_tx
                    .send(&json!({"type": "ERROR", "error": {"message": "Framework failed over"}}));
            }
        }
        if !same {
            // A different framework: this double serves one framework at a time.
            s.remove_framework();
        }
        s.drop_offers(false);
        s.filters.clear();
        let id = match requested {
            Some(id) => id,
            None => {
                s.fw_seq += 1;
                format!("{}-{:04}", s.master_id, s.fw_seq)
            }
        };
        let suppressed = call["subscribe"]["suppressed_roles"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        s.framework = Some(Framework {
            id: id.clone(),
            info,
            stream: None,
            disconnected_at: None,
            suppressed,
            last_heartbeat: Instant::now(),
        });
        let addr = s.addr;
        let subscribed = json!({"type": "SUBSCRIBED", "subscribed": {
        "framework_id": {"value": id},
        "heartbeat_interval_seconds": s.cfg.heartbeat_interval.as_secs_f64(),
        "master_info": {
            "id": s.master_id, "ip": 16777343, "port": addr.port(),
            "pid": format!("master@{addr}"), "hostname": addr.ip().to_string(),
            "version": "1.12.0",
            "address": {"hostname": addr.ip().to_string(), "ip": addr.ip().to_string(), "port": addr.port()},
        }}});
        let hb = json!({"type": "HEARTBEAT"});
        tx.send_all(&[subscribed.clone(), hb.clone()]);
        s.events.push(subscribed);
        s.events.push(hb);
        s.framework.as_mut().unwrap().stream = Some(tx);
        // Unacknowledged updates are re-sent at once after a re-subscribe.
        for t in s.tasks.values_mut() {
            t.head_sent = None;
        }
        s.pump();
        s.allocate_all();
    }
    drop(s);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, encoding.content_type())
        .header("Mesos-Stream-Id", stream_id)
        .body(Body::from_stream(body))
        .unwrap()
}

fn accept(s: &mut St, accept: &Value) {
    let offer_ids = ids(&accept["offer_ids"]);
    let refuse = accept["filters"]["refuse_seconds"].as_f64().unwrap_or(5.0);
    let ops = accept["operations"].as_array().cloned().unwrap_or_default();
    // Offer validation (§4.1.3).
    let mut error = None;
    if offer_ids.is_empty() {
        error = Some("No offers specified".to_string());
    }
    let mut seen = HashSet::new();
    for id in &offer_ids {
        if error.is_some() {
            break;
        }
        if !seen.insert(id.clone()) {
            error = Some(format!("Duplicate offer {id} in accept"));
        } else if !s.offers.contains_key(id) {
            error = Some(format!("Offer {id} is no longer valid"));
        }
    }
    if error.is_none() {
        let first = &s.offers[&offer_ids[0]];
        for id in &offer_ids[1..] {
            let o = &s.offers[id];
            if o.agent_id != first.agent_id {
                error = Some(format!(
                    "Aggregated offers must belong to one single agent. Offer {id} uses agent {} and offer {} uses agent {}",
                    o.agent_id, offer_ids[0], first.agent_id
                ));
                break;
            }
            if o.role != first.role {
                error = Some(format!(
                    "Aggregated offers must be allocated to the same role. Offer {id} uses role {} and offer {} uses role {}",
                    o.role, offer_ids[0], first.role
                ));
                break;
            }
        }
    }
    // Every named offer is used up, valid or not.
    let mut pool = Pool::default();
    let mut agent = None;
    let mut role = String::from("*");
    for id in &offer_ids {
        if let Some(o) = s.offers.remove(id) {
            if error.is_some() {
                s.give_back(&o.agent_id, &o.pool);
            } else {
                pool.add(&o.pool);
                agent = Some(o.agent_id.clone());
                role = o.role.clone();
            }
        }
    }
    let pa = s.partition_aware();
    if let Some(e) = error {
        s.violations
            .push(format!("ACCEPT with invalid offers: {e}"));
        let state = if pa { "TASK_DROPPED" } else { "TASK_LOST" };
        let msg = format!("Task launched with invalid offers: {e}");
        for op in &ops {
            for t in op_tasks(op) {
                let id = t["task_id"]["value"].as_str().unwrap_or("");
                let st = s.master_status(
                    id,
                    state,
                    "REASON_INVALID_OFFERS",
                    &msg,
                    t["agent_id"]["value"].as_str(),
                );
                s.send_update_event(st);
            }
        }
        return;
    }
    let agent = agent.expect("at least one valid offer");
    let multi_role = s
        .framework
        .as_ref()
        .is_some_and(|f| f.has_cap("MULTI_ROLE"));
    let ctx = AcceptCtx {
        agent: agent.clone(),
        offer_ids: offer_ids.clone(),
        default_role: multi_role.then(|| role.clone()),
        role,
    };
    let mut seen_ids: Vec<String> = s.tasks.keys().cloned().collect();
    for op in &ops {
        match op["type"].as_str().unwrap_or("") {
            "LAUNCH" => launch_op(s, op, &ctx, &mut pool, &mut seen_ids),
            "LAUNCH_GROUP" => launch_group_op(s, op, &ctx, &mut pool, &mut seen_ids),
            typ @ ("RESERVE" | "UNRESERVE" | "CREATE" | "DESTROY") => {
                if let Err(e) = operations::apply(s, op, &ctx, &mut pool) {
                    s.rejected_operations.push(format!("{typ}: {e}"));
                }
            }
            typ => s.violations.push(format!(
                "ACCEPT operation {typ} is not simulated by the double"
            )),
        }
    }
    // Whatever the ACCEPT did not use is declined with its filters.
    if !pool.is_empty() {
        s.give_back(&agent, &pool);
        s.filter(&agent, refuse);
    }
}

/// What the operations of one ACCEPT share: the offers' agent and role.
pub(crate) struct AcceptCtx {
    pub(crate) agent: String,
    pub(crate) offer_ids: Vec<String>,
    /// The offers' allocation role.
    pub(crate) role: String,
    /// `Some(role)` for a MULTI_ROLE framework: fills a missing `allocation_info`.
    pub(crate) default_role: Option<String>,
}

fn task_id_of(t: &Value) -> String {
    t["task_id"]["value"].as_str().unwrap_or("").to_string()
}

/// The resources of a task (and, for LAUNCH, of its custom executor).
fn task_need(t: &Value, ctx: &AcceptCtx, with_executor: bool) -> Pool {
    let role = ctx.default_role.as_deref();
    let res = t["resources"].as_array().cloned().unwrap_or_default();
    let mut need = Pool::parse(&res, role).unwrap_or_default();
    if with_executor {
        let ex = t["executor"]["resources"].as_array().cloned();
        if let Ok(p) = Pool::parse(&ex.unwrap_or_default(), role) {
            need.add(&p);
        }
    }
    need
}

fn task_error(s: &mut St, task_id: &str, reason: &str, msg: &str, agent: &str) {
    let st = s.master_status(task_id, "TASK_ERROR", reason, msg, Some(agent));
    s.send_update_event(st);
}

fn launch_op(s: &mut St, op: &Value, ctx: &AcceptCtx, pool: &mut Pool, seen: &mut Vec<String>) {
    for t in op_tasks(op) {
        let id = task_id_of(&t);
        let need = task_need(&t, ctx, true);
        let problem = validate_task(&t, &ctx.agent, seen).or_else(|| {
            (!pool.contains(&need)).then(|| {
                format!(
                    "Total resources {} required by task and its executor is more than available {}",
                    need.describe(),
                    pool.describe()
                )
            })
        });
        if let Some(msg) = problem {
            task_error(s, &id, "REASON_TASK_INVALID", &msg, &ctx.agent);
            continue;
        }
        seen.push(id);
        pool.subtract(&need);
        let executor = t["executor"]["executor_id"]["value"]
            .as_str()
            .map(String::from);
        launch(s, &t, ctx, need, executor, None);
    }
}

fn launch_group_op(
    s: &mut St,
    op: &Value,
    ctx: &AcceptCtx,
    pool: &mut Pool,
    seen: &mut Vec<String>,
) {
    let executor = &op["launch_group"]["executor"];
    let exid = executor["executor_id"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let tasks = op_tasks(op);
    let fid = s
        .framework
        .as_ref()
        .map(|f| f.id.clone())
        .unwrap_or_default();
    let key = (ctx.agent.clone(), exid.clone());
    let running = s.executors.contains_key(&key);
    let role = ctx.default_role.as_deref();
    let ex_res = executor["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ex_pool = Pool::parse(&ex_res, role).unwrap_or_default();
    let mut need = Pool::default();
    for t in &tasks {
        need.add(&task_need(t, ctx, false));
    }
    if !running {
        need.add(&ex_pool);
    }
    let problem = validate_group(executor, &tasks, &fid, &ctx.agent, seen).or_else(|| {
        (!pool.contains(&need)).then(|| {
            format!(
                "Total resources {} required by task group and its executor is more than available {}",
                need.describe(),
                pool.describe()
            )
        })
    });
    if let Some(msg) = problem {
        for t in &tasks {
            task_error(
                s,
                &task_id_of(t),
                "REASON_TASK_GROUP_INVALID",
                &msg,
                &ctx.agent,
            );
        }
        return;
    }
    pool.subtract(&need);
    if !running {
        let container = uuid::Uuid::new_v4().to_string();
        let sandbox = s
            .sandboxes
            .add_run(&ctx.agent, &fid, &exid, &container, true);
        s.executors.insert(
            key,
            Executor {
                resources: ex_pool,
                sandbox,
            },
        );
    }
    s.group_seq += 1;
    let group = s.group_seq;
    for t in &tasks {
        seen.push(task_id_of(t));
        let need = task_need(t, ctx, false);
        launch(s, t, ctx, need, Some(exid.clone()), Some(group));
    }
}

fn op_tasks(op: &Value) -> Vec<Value> {
    let a = op["launch"]["task_infos"]
        .as_array()
        .or(op["launch_group"]["task_group"]["tasks"].as_array());
    a.cloned().unwrap_or_default()
}

/// Where a task's stdout/stderr live: the root of its (command or custom)
/// executor's sandbox, or `tasks/<id>` in its group executor's sandbox.
fn task_sandbox(
    s: &mut St,
    agent: &str,
    executor_id: &str,
    task_id: &str,
    group: Option<u64>,
    container: &str,
) -> String {
    let fid = s
        .framework
        .as_ref()
        .map(|f| f.id.clone())
        .unwrap_or_default();
    if group.is_some() {
        if let Some(e) = s
            .executors
            .get(&(agent.to_string(), executor_id.to_string()))
        {
            return format!("{}/tasks/{task_id}", e.sandbox);
        }
    }
    s.sandboxes
        .add_run(agent, &fid, executor_id, container, false)
}

fn launch(
    s: &mut St,
    t: &Value,
    ctx: &AcceptCtx,
    resources: Pool,
    executor_id: Option<String>,
    group: Option<u64>,
) {
    let id = task_id_of(t);
    let behavior = s.behavior_for(&id);
    let end_at = match &behavior {
        TaskBehavior::Finish { after } | TaskBehavior::Fail { after, .. } => {
            Some(Instant::now() + *after)
        }
        TaskBehavior::RunUntilKilled => None,
    };
    s.launched.push(LaunchedTask {
        task_id: id.clone(),
        agent_id: ctx.agent.clone(),
        offer_ids: ctx.offer_ids.clone(),
        task_info: t.clone(),
        executor_id: executor_id.clone(),
        group: group.is_some(),
    });
    s.completed.remove(&id);
    let executor_id = executor_id.unwrap_or_else(|| id.clone());
    let container_id = uuid::Uuid::new_v4().to_string();
    let dir = task_sandbox(s, &ctx.agent, &executor_id, &id, group, &container_id);
    s.sandboxes
        .add_task(&id, &dir, t["command"]["value"].as_str());
    s.tasks.insert(
        id.clone(),
        Task {
            agent_id: ctx.agent.clone(),
            executor_id,
            container_id,
            resources,
            state: "TASK_STAGING".into(),
            agent_terminal: false,
            released: false,
            end_at,
            behavior,
            queue: VecDeque::new(),
            head_sent: None,
            group,
        },
    );
    s.agent_update(&id, "TASK_STARTING", None, None);
    s.agent_update(&id, "TASK_RUNNING", None, None);
}

fn kill(s: &mut St, kill: &Value) {
    let id = kill["task_id"]["value"].as_str().unwrap_or("").to_string();
    s.kills.push(id.clone());
    let Some(t) = s.tasks.get(&id) else {
        // KILL of an unknown task triggers an explicit reconciliation for it.
        let agent = kill["agent_id"]["value"].as_str().map(String::from);
        reconcile_one(s, &id, agent.as_deref());
        return;
    };
    if t.agent_terminal {
        return;
    }
    s.kill_task(&id);
}

fn acknowledge(s: &mut St, ack: &Value) {
    let task_id = ack["task_id"]["value"].as_str().unwrap_or("").to_string();
    let agent_id = ack["agent_id"]["value"].as_str().unwrap_or("").to_string();
    let uuid = ack["uuid"].as_str().unwrap_or("").to_string();
    let mut matched = false;
    if let Some(t) = s.tasks.get_mut(&task_id) {
        let head_uuid = t.queue.front().and_then(|h| h["uuid"].as_str());
        if t.head_sent.is_some() && head_uuid == Some(uuid.as_str()) && t.agent_id == agent_id {
            matched = true;
            let head = t.queue.pop_front().unwrap();
            t.head_sent = None;
            if is_terminal(head["state"].as_str().unwrap_or("")) {
                let agent = t.agent_id.clone();
                s.tasks.remove(&task_id);
                s.completed.insert(task_id.clone(), agent);
            }
        }
    }
    if !matched {
        s.violations.push(format!(
            "ACKNOWLEDGE of {task_id} uuid {uuid} matches no outstanding update"
        ));
    }
    s.acks.push(Ack {
        task_id,
        agent_id,
        uuid,
        matched,
    });
    s.pump();
}

fn reconcile_one(s: &mut St, task_id: &str, agent: Option<&str>) {
    let pa = s.partition_aware();
    let status = if let Some(t) = s.tasks.get(task_id) {
        let mut st = s.master_status(
            task_id,
            &t.state.clone(),
            "REASON_RECONCILIATION",
            "Reconciliation: Latest task state",
            Some(&t.agent_id.clone()),
        );
        st["container_status"] =
            json!({"container_id": {"value": t.container_id}, "executor_pid": 4242});
        st
    } else {
        let known_agent = agent.filter(|a| s.agents.contains_key(*a));
        match known_agent {
            Some(a) => s.master_status(
                task_id,
                if pa { "TASK_GONE" } else { "TASK_LOST" },
                "REASON_RECONCILIATION",
                "Reconciliation: Task is unknown to the agent",
                Some(a),
            ),
            None => s.master_status(
                task_id,
                if pa { "TASK_UNKNOWN" } else { "TASK_LOST" },
                "REASON_RECONCILIATION",
                "Reconciliation: Task is unknown",
                agent,
            ),
        }
    };
    s.send_update_event(status);
}

fn reconcile(s: &mut St, rec: &Value) {
    let tasks = rec["tasks"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        let ids: Vec<String> = s.tasks.keys().cloned().collect();
        for id in ids {
            reconcile_one(s, &id, None);
        }
        return;
    }
    for t in tasks {
        let id = t["task_id"]["value"].as_str().unwrap_or("").to_string();
        reconcile_one(s, &id, t["agent_id"]["value"].as_str());
    }
}

// ---------------------------------------------------------------- public handle

/// An in-process strict Mesos master (scheduler API, JSON and protobuf
/// encodings) and its agents (files API).
pub struct MesosDouble {
    st: Shared,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for MesosDouble {
    fn drop(&mut self) {
        self.server.abort();
        self.ticker.abort();
    }
}

impl MesosDouble {
    pub async fn start(cfg: Config) -> MesosDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tick = cfg.tick;
        let st: Shared = Arc::new(Mutex::new(St {
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
        }));
        let app = Router::new()
            .route("/api/v1/scheduler", any(scheduler))
            .route("/master/redirect", any(redirect))
            .route("/files/browse", get(files::browse))
            .route("/files/read", get(files::read))
            .with_state(st.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let st2 = st.clone();
        let ticker = tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            loop {
                iv.tick().await;
                st2.lock().tick();
            }
        });
        MesosDouble {
            st,
            addr,
            server,
            ticker,
        }
    }

    /// `http://127.0.0.1:<port>` (no path).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/api/v1/scheduler`.
    pub fn scheduler_url(&self) -> String {
        format!("http://{}/api/v1/scheduler", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    // ------------------------------------------------------------ controls

    /// Adds cpus/mem/disk (and ports 31000-32000 for a new agent) to `agent`'s
    /// free resources and runs the allocator for it. Returns the offer ID if an
    /// OFFERS event was sent (none while unsubscribed, suppressed or filtered).
    pub fn offer(&self, agent: &str, cpus: f64, mem: f64, disk: f64) -> Option<String> {
        let mut s = self.st.lock();
        let new = !s.agents.contains_key(agent);
        let mut res = vec![
            json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}),
            json!({"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}),
            json!({"name": "disk", "type": "SCALAR", "scalar": {"value": disk}}),
        ];
        if new {
            res.insert(
                0,
                json!({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}}),
            );
        }
        let p = Pool::parse(&res, None).unwrap();
        s.agents.entry(agent.to_string()).or_default().add(&p);
        s.allocate(agent)
    }

    /// From now on, each agent's free resources are offered as `parts` offers in one OFFERS
    /// event (as a real master does when resources free up while an offer is outstanding).
    pub fn split_offers(&self, parts: usize) {
        self.st.lock().split_offers = parts;
    }

    /// From now on the agent's free resources go to another framework: no offer of it
    /// reaches ours (its tasks keep running and their sandboxes stay readable).
    pub fn withhold_offers(&self, agent: &str) {
        self.st.lock().withheld.insert(agent.to_string());
    }

    /// Runs the allocator for every agent (free resources become offers).
    pub fn reoffer(&self) {
        self.st.lock().allocate_all();
    }

    /// Sends RESCIND for an outstanding offer; its resources stay unoffered
    /// until the next `offer`/`reoffer`/REVIVE/filter expiry.
    pub fn rescind(&self, offer_id: &str) -> bool {
        let mut s = self.st.lock();
        let Some(o) = s.offers.remove(offer_id) else {
            return false;
        };
        s.give_back(&o.agent_id, &o.pool);
        s.send(json!({"type": "RESCIND", "rescind": {"offer_id": {"value": offer_id}}}));
        true
    }

    /// Per-task behaviour for tasks whose ID starts with `task_id_prefix`
    /// (the latest matching rule wins).
    pub fn set_task_behavior(&self, task_id_prefix: &str, b: TaskBehavior) {
        self.st
            .lock()
            .behaviors
            .push((task_id_prefix.to_string(), b));
    }

    /// The agent emits an update (with uuid, subject to the ack protocol).
    pub fn send_update(
        &self,
        task_id: &str,
        state: &str,
        message: Option<&str>,
        reason: Option<&str>,
    ) {
        self.st.lock().agent_update(task_id, state, message, reason);
    }

    /// The master emits an update without uuid (e.g. TASK_UNREACHABLE, TASK_LOST).
    pub fn send_master_update(&self, task_id: &str, state: &str, reason: &str, message: &str) {
        let mut s = self.st.lock();
        let agent = s.tasks.get(task_id).map(|t| t.agent_id.clone());
        if let Some(t) = s.tasks.get_mut(task_id) {
            t.state = state.to_string();
        }
        let st = s.master_status(task_id, state, reason, message, agent.as_deref());
        s.send_update_event(st);
    }

    pub fn finish_task(&self, task_id: &str) {
        self.send_update(
            task_id,
            "TASK_FINISHED",
            Some("Command exited with status 0"),
            None,
        );
    }

    pub fn fail_task(&self, task_id: &str, exit_code: i32) {
        let m = format!("Command exited with status {exit_code}");
        self.send_update(task_id, "TASK_FAILED", Some(&m), None);
    }

    /// Sends an arbitrary event on the current stream.
    pub fn send_event(&self, event: Value) {
        self.st.lock().send(event);
    }

    /// Leader or not: `set_leader(false)` redirects (307) to 127.0.0.1:5050
    /// unless `redirect_to` named another leader.
    pub fn set_leader(&self, leading: bool) {
        let mut s = self.st.lock();
        s.leadership = if leading {
            Leadership::Leading
        } else {
            Leadership::RedirectTo("127.0.0.1:5050".into())
        };
        if !leading {
            s.disconnect();
        }
    }

    /// This master loses leadership to `leader` ("host:port"): 307 with
    /// `Location: //leader/api/v1/scheduler`; the current stream is closed.
    pub fn fail_over(&self, leader: &str) {
        let mut s = self.st.lock();
        s.leadership = Leadership::RedirectTo(leader.to_string());
        s.disconnect();
    }

    /// No leader elected: 503; the current stream is closed.
    pub fn no_leader(&self) {
        let mut s = self.st.lock();
        s.leadership = Leadership::NoLeader;
        s.disconnect();
    }

    /// Stop (or resume) HEARTBEATs, to exercise the client's watchdog.
    pub fn set_heartbeats(&self, enabled: bool) {
        self.st.lock().heartbeats = enabled;
    }

    /// Ends the current SUBSCRIBE response (server side); the framework is
    /// disconnected (offers dropped, filters cleared, failover timer started).
    pub fn drop_stream(&self) {
        self.st.lock().disconnect();
    }

    // ------------------------------------------------------------ inspection

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.st.lock().calls.clone()
    }

    /// Calls of one type that were answered 2xx.
    pub fn accepted_calls(&self, typ: &str) -> Vec<Value> {
        self.st
            .lock()
            .calls
            .iter()
            .filter(|c| c.call_type.as_deref() == Some(typ) && c.status / 100 == 2)
            .filter_map(|c| c.call.clone())
            .collect()
    }

    /// Every event sent on any stream, in order.
    pub fn events(&self) -> Vec<Value> {
        self.st.lock().events.clone()
    }

    pub fn launched_tasks(&self) -> Vec<LaunchedTask> {
        self.st.lock().launched.clone()
    }

    pub fn acks(&self) -> Vec<Ack> {
        self.st.lock().acks.clone()
    }

    pub fn declines(&self) -> Vec<Decline> {
        self.st.lock().declines.clone()
    }

    pub fn kills(&self) -> Vec<String> {
        self.st.lock().kills.clone()
    }

    pub fn suppressed(&self) -> bool {
        self.st
            .lock()
            .framework
            .as_ref()
            .is_some_and(|f| f.suppressed)
    }

    pub fn revives(&self) -> usize {
        self.st.lock().revives
    }

    pub fn teardowns(&self) -> usize {
        self.st.lock().teardowns
    }

    pub fn framework_id(&self) -> Option<String> {
        self.st.lock().framework.as_ref().map(|f| f.id.clone())
    }

    pub fn framework_info(&self) -> Option<Value> {
        self.st.lock().framework.as_ref().map(|f| f.info.clone())
    }

    pub fn is_subscribed(&self) -> bool {
        self.st.lock().connected()
    }

    pub fn stream_id(&self) -> Option<String> {
        let s = self.st.lock();
        s.framework
            .as_ref()
            .and_then(|f| f.stream.as_ref().map(|x| x.stream_id.clone()))
    }

    /// IDs of offers currently outstanding.
    pub fn outstanding_offers(&self) -> Vec<String> {
        self.st.lock().offers.keys().cloned().collect()
    }

    /// The master's latest known state of a non-removed task.
    pub fn task_state(&self, task_id: &str) -> Option<String> {
        self.st.lock().tasks.get(task_id).map(|t| t.state.clone())
    }

    /// Updates (with uuid) still waiting for an ACKNOWLEDGE, per task.
    pub fn unacked(&self) -> Vec<(String, usize)> {
        self.st
            .lock()
            .tasks
            .iter()
            .filter(|(_, t)| !t.queue.is_empty())
            .map(|(id, t)| (id.clone(), t.queue.len()))
            .collect()
    }

    /// Things a correct framework should not do that a real master tolerates
    /// silently: ACCEPT/DECLINE of unknown offers, acks matching nothing, ...
    pub fn violations(&self) -> Vec<String> {
        self.st.lock().violations.clone()
    }

    /// RESERVE/UNRESERVE/CREATE/DESTROY operations the master dropped (no
    /// operation IDs: the real master drops them silently), with the reason.
    pub fn rejected_operations(&self) -> Vec<String> {
        self.st.lock().rejected_operations.clone()
    }

    /// Dynamically reserved resources on `agent` (volumes included), free or
    /// in use, without `allocation_info`.
    pub fn reserved(&self, agent: &str) -> Vec<Value> {
        let s = self.st.lock();
        s.reserved
            .get(agent)
            .map(|p| p.to_json(None))
            .unwrap_or_default()
    }

    /// Persistence IDs of the persistent volumes on `agent`.
    pub fn volumes(&self, agent: &str) -> Vec<String> {
        let s = self.st.lock();
        s.volumes
            .get(agent)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// IDs of our DEFAULT executors running on `agent` (what offers list in `executor_ids`).
    pub fn executors(&self, agent: &str) -> Vec<String> {
        let s = self.st.lock();
        s.executors
            .keys()
            .filter(|(a, _)| a == agent)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The content of a file in a task's sandbox (`"stdout"`, `"stderr"`, ...).
    pub fn sandbox_file(&self, task_id: &str, path: &str) -> Option<Vec<u8>> {
        self.st.lock().sandboxes.task_file(task_id, path)
    }

    /// The absolute directory holding a task's stdout/stderr (the executor's
    /// run directory, or `<executor sandbox>/tasks/<task_id>` in a group).
    pub fn sandbox_dir(&self, task_id: &str) -> Option<String> {
        self.st.lock().sandboxes.task_dir(task_id)
    }

    // ------------------------------------------------------------ sandboxes

    /// Appends bytes to a file of a launched task's sandbox (created if
    /// missing); false for an unknown task.
    pub fn append_sandbox_file(&self, task_id: &str, path: &str, bytes: &[u8]) -> bool {
        self.st
            .lock()
            .sandboxes
            .append_task_file(task_id, path, bytes)
    }
}
