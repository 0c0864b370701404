//! The public handle of a running double: start it, drive it (offers, task behaviours,
//! updates, leadership, heartbeats, stream drops) and inspect what it received and sent
//! (calls, events, launches, acks, declines, kills, violations, reservations, sandboxes).
//! Controls are plain functions taking the lock briefly, so a test on another runtime or
//! thread can call them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::config::{Config, TaskBehavior};
use crate::feedback::OperationAck;
use crate::maintenance::{InverseResponse, Unavailability};
use crate::state::{Ack, Decline, LaunchedTask, Leadership, RecordedCall, Shared, St};
use crate::zookeeper::Contender;

/// An in-process strict Mesos master (scheduler API, JSON and protobuf
/// encodings) and its agents (files API).
pub struct MesosDouble {
    st: Shared,
    addr: SocketAddr,
    /// Its registration as a contending master in ZooKeeper, if any.
    contender: Mutex<Option<Arc<Contender>>>,
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
    /// Starts a double on `127.0.0.1:0` (the port the system gave is in `addr()`).
    pub async fn start(cfg: Config) -> MesosDouble {
        let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
        match MesosDouble::start_on(bind, cfg).await {
            Ok(d) => d,
            Err(e) => panic!("mesos double: cannot listen on {bind}: {e}"),
        }
    }

    /// Starts a double listening on `bind` (port 0: any free port).
    pub async fn start_on(bind: SocketAddr, cfg: Config) -> std::io::Result<MesosDouble> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let tick = cfg.tick;
        let st: Shared = Arc::new(Mutex::new(St::new(cfg, addr)));
        let app = crate::http::router(st.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mesos double: server stopped: {e}");
            }
        });
        let st2 = st.clone();
        let ticker = tokio::spawn(async move {
            let mut iv = tokio::time::interval(tick);
            loop {
                iv.tick().await;
                st2.lock().tick();
            }
        });
        Ok(MesosDouble {
            st,
            addr,
            contender: Mutex::new(None),
            server,
            ticker,
        })
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
        self.st.lock().add_resources(agent, cpus, mem, disk)
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

    /// An operator schedules `agent` for maintenance (draining mode): its offers carry
    /// `unavailability`, a framework using it gets inverse offers (`maintenance`).
    pub fn schedule_maintenance(&self, agent: &str, unavailability: Unavailability) {
        self.st.lock().schedule_maintenance(agent, unavailability);
    }

    /// The maintenance of `agent` is cancelled: its inverse offers are rescinded.
    pub fn cancel_maintenance(&self, agent: &str) {
        self.st.lock().cancel_maintenance(agent);
    }

    /// An operator drains `agent` (`DRAIN_AGENT`): no more offers of it, every task on it
    /// killed with REASON_AGENT_DRAINING (TASK_GONE_BY_OPERATOR when `mark_gone`).
    pub fn drain_agent(&self, agent: &str, mark_gone: bool) {
        self.st.lock().drain_agent(agent, mark_gone);
    }

    /// A drained agent (not one marked gone) offers again.
    pub fn reactivate_agent(&self, agent: &str) {
        self.st.lock().reactivate_agent(agent);
    }

    /// From now on operations with an ID on `agent` fail when the agent applies them
    /// (OPERATION_FAILED; the resources stay as they were).
    pub fn fail_operations(&self, agent: &str, fail: bool) {
        let mut s = self.st.lock();
        if fail {
            s.failing_operations.insert(agent.to_string());
        } else {
            s.failing_operations.remove(agent);
        }
    }

    /// Register in ZooKeeper as a contending master does: an ephemeral sequential
    /// `json.info_` node under `path` holding this master's `MasterInfo` JSON. Returns the
    /// node's path. (Leadership over HTTP stays as set by `set_leader` / `fail_over`.)
    pub async fn register_in_zookeeper(&self, servers: &str, path: &str) -> Result<String, String> {
        let info = self.st.lock().master_info();
        let contender = Contender::register(servers, path, &info).await?;
        let node = contender.node().to_string();
        *self.contender.lock() = Some(Arc::new(contender));
        Ok(node)
    }

    /// Leave the contest in ZooKeeper (the node goes, as when a master's session ends), while
    /// this double keeps serving: like a master that died without closing its connections.
    pub async fn withdraw_from_zookeeper(&self) -> Result<(), String> {
        let contender = self.contender.lock().take();
        match contender {
            Some(c) => c.withdraw().await,
            None => Err("not registered in ZooKeeper".into()),
        }
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

    /// When the simulation last ticked. Everything due by then (heartbeats, natural task
    /// ends, update resends, decline-filter expiry, failover timeouts) has happened: a test
    /// that must show something did *not* happen by a time waits until `clock()` passes it,
    /// then looks at what was recorded.
    pub fn clock(&self) -> Instant {
        self.st.lock().last_tick
    }

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

    /// Whether every role of the framework is suppressed.
    pub fn suppressed(&self) -> bool {
        self.st
            .lock()
            .framework
            .as_ref()
            .is_some_and(|f| f.roles().iter().all(|r| f.suppressed.contains(r)))
    }

    /// The framework's suppressed roles.
    pub fn suppressed_roles(&self) -> Vec<String> {
        self.st
            .lock()
            .framework
            .as_ref()
            .map(|f| f.suppressed.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// UPDATE_FRAMEWORK calls applied.
    pub fn framework_updates(&self) -> usize {
        self.st.lock().framework_updates
    }

    /// The roles of outstanding offers, by offer ID.
    pub fn outstanding_offer_roles(&self) -> Vec<(String, String)> {
        self.st
            .lock()
            .offers
            .iter()
            .map(|(id, o)| (id.clone(), o.role.clone()))
            .collect()
    }

    /// Inverse offers outstanding: (inverse offer ID, agent).
    pub fn outstanding_inverse_offers(&self) -> Vec<(String, String)> {
        self.st
            .lock()
            .inverse_offers
            .iter()
            .map(|(id, a)| (id.clone(), a.clone()))
            .collect()
    }

    /// The framework's answers to inverse offers, in order (what an operator reads from
    /// `/maintenance/status`).
    pub fn inverse_offer_responses(&self) -> Vec<InverseResponse> {
        self.st.lock().inverse_responses.clone()
    }

    /// Every ACKNOWLEDGE_OPERATION_STATUS received.
    pub fn operation_acks(&self) -> Vec<OperationAck> {
        self.st.lock().operation_acks.clone()
    }

    /// The latest status of an operation with an ID (`None`: never seen).
    pub fn operation_state(&self, operation_id: &str) -> Option<String> {
        self.st
            .lock()
            .operations
            .get(operation_id)
            .and_then(|o| o.latest["state"].as_str().map(String::from))
    }

    /// Operation updates (with uuid) still waiting for ACKNOWLEDGE_OPERATION_STATUS.
    pub fn unacked_operations(&self) -> Vec<String> {
        self.st
            .lock()
            .operations
            .iter()
            .filter(|(_, o)| o.unacked.is_some())
            .map(|(id, _)| id.clone())
            .collect()
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
