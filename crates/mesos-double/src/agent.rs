//! The agents: tasks launched by LAUNCH and LAUNCH_GROUP (validated, charged to the offer),
//! their status updates (STARTING, RUNNING, then per `TaskBehavior`; each with a uuid, re-sent
//! every `resend_interval` until acknowledged, later ones held back), KILL (TASK_KILLING with
//! TASK_KILLING_STATE), DEFAULT executors (sibling kills, FAILURE status 0 when their groups
//! are over), and the master's RECONCILE answers. Mirrors mesos-scheduler-api.md §4.2-4.5 and
//! §6.1 and the captures `json/07`-`29` (launch, acknowledge, kill, reconcile, launch group).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::allocator::AcceptCtx;
use crate::config::TaskBehavior;
use crate::group::validate_group;
use crate::state::{is_terminal, new_uuid_b64, now_ts, Ack, Executor, LaunchedTask, St, Task};
use crate::validate::{validate_task, Pool};

impl St {
    pub(crate) fn agent_status(
        &self,
        task_id: &str,
        t: &Task,
        state: &str,
        message: Option<&str>,
    ) -> Value {
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
    pub(crate) fn agent_update(
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
        // A draining agent kills every task itself, each with the drain's reason.
        let draining = self.draining.contains_key(&t.agent_id);
        self.pump_task(task_id);
        if let Some(g) =
            group.filter(|_| is_terminal(state) && state != "TASK_FINISHED" && !draining)
        {
            self.kill_group(g);
        }
    }

    /// The default executor kills the other live tasks of a group when one
    /// of them fails or is killed.
    pub(crate) fn kill_group(&mut self, group: u64) {
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
    pub(crate) fn reap_executors(&mut self) {
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

    /// Forwards the head of every task's update queue (and re-sends stale ones). Walks
    /// every task: the ticker and (re)subscriptions call it; a change to one task's queue
    /// calls `pump_task`.
    pub(crate) fn pump(&mut self) {
        if !self.connected() {
            return;
        }
        let resend = self.cfg.resend_interval;
        let now = Instant::now();
        let mut out = Vec::new();
        let mut release = Vec::new();
        for t in self.tasks.values_mut() {
            if let Some(head) = forward_head(t, now, resend, &mut release) {
                out.push(head);
            }
        }
        self.forward(out, release);
    }

    /// Forwards the head of one task's update queue if it is not in flight (an update was
    /// queued or acknowledged).
    pub(crate) fn pump_task(&mut self, task_id: &str) {
        if !self.connected() {
            return;
        }
        let resend = self.cfg.resend_interval;
        let mut release = Vec::new();
        let Some(t) = self.tasks.get_mut(task_id) else {
            return;
        };
        let out: Vec<Value> = forward_head(t, Instant::now(), resend, &mut release)
            .into_iter()
            .collect();
        self.forward(out, release);
    }

    fn forward(&mut self, out: Vec<Value>, release: Vec<(String, Pool)>) {
        for s in out {
            self.send_update_event(s);
        }
        for (agent, pool) in release {
            self.give_back(&agent, &pool);
            self.allocate(&agent);
        }
    }
}

/// The task's head update if it is due (never sent, or unacknowledged for `resend`),
/// marked sent; a terminal head releases the task's resources (pushed to `release`).
fn forward_head(
    t: &mut Task,
    now: Instant,
    resend: Duration,
    release: &mut Vec<(String, Pool)>,
) -> Option<Value> {
    let head = t.queue.front()?;
    let due = match t.head_sent {
        None => true,
        Some(at) => now.duration_since(at) >= resend,
    };
    if !due {
        return None;
    }
    t.head_sent = Some(now);
    let state = head["state"].as_str().unwrap_or_default().to_string();
    if is_terminal(&state) && !t.released {
        t.released = true;
        release.push((t.agent_id.clone(), t.resources.clone()));
    }
    t.state = state;
    Some(head.clone())
}

pub(crate) fn task_id_of(t: &Value) -> String {
    t["task_id"]["value"].as_str().unwrap_or("").to_string()
}

/// The resources of a task (and, for LAUNCH, of its custom executor).
pub(crate) fn task_need(t: &Value, ctx: &AcceptCtx, with_executor: bool) -> Pool {
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

pub(crate) fn task_error(s: &mut St, task_id: &str, reason: &str, msg: &str, agent: &str) {
    let st = s.master_status(task_id, "TASK_ERROR", reason, msg, Some(agent));
    s.send_update_event(st);
}

pub(crate) fn launch_op(
    s: &mut St,
    op: &Value,
    ctx: &AcceptCtx,
    pool: &mut Pool,
    seen: &mut Vec<String>,
) {
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

pub(crate) fn launch_group_op(
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

pub(crate) fn op_tasks(op: &Value) -> Vec<Value> {
    let a = op["launch"]["task_infos"]
        .as_array()
        .or(op["launch_group"]["task_group"]["tasks"].as_array());
    a.cloned().unwrap_or_default()
}

/// Where a task's stdout/stderr live: the root of its (command or custom)
/// executor's sandbox, or `tasks/<id>` in its group executor's sandbox.
pub(crate) fn task_sandbox(
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

pub(crate) fn launch(
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

pub(crate) fn kill(s: &mut St, kill: &Value) {
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

pub(crate) fn acknowledge(s: &mut St, ack: &Value) {
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
    // A resent update can reach the framework again before its first acknowledgement
    // arrives; the framework acknowledges each copy. A real agent's status update manager
    // ignores such a duplicate (it logs "Duplicate acknowledgement"), so it is no violation.
    let duplicate = !matched
        && s.acks
            .iter()
            .any(|a| a.matched && a.task_id == task_id && a.uuid == uuid);
    if !matched && !duplicate {
        s.violations.push(format!(
            "ACKNOWLEDGE of {task_id} uuid {uuid} matches no outstanding update"
        ));
    }
    s.pump_task(&task_id);
    if duplicate {
        return;
    }
    s.acks.push(Ack {
        task_id,
        agent_id,
        uuid,
        matched,
    });
}

pub(crate) fn reconcile_one(s: &mut St, task_id: &str, agent: Option<&str>) {
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
        let gone_agent = agent.filter(|a| s.gone.contains(*a));
        if let Some(a) = gone_agent {
            let st = s.master_status(
                task_id,
                if pa {
                    "TASK_GONE_BY_OPERATOR"
                } else {
                    "TASK_LOST"
                },
                "REASON_RECONCILIATION",
                "Reconciliation: Task is unknown; its agent was marked gone",
                Some(a),
            );
            s.send_update_event(st);
            return;
        }
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

pub(crate) fn reconcile(s: &mut St, rec: &Value) {
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
