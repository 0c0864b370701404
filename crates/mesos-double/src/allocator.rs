//! The allocator and the offers: agents' free resources, one offer per agent (or several with
//! `split_offers`), DECLINE filters, SUPPRESS/REVIVE, RESCIND, and ACCEPT's offer validation
//! (mesos-scheduler-api.md §4.1; captures `json/14-accept-unknown-offer`: TASK_DROPPED
//! REASON_INVALID_OFFERS). The operations of a valid ACCEPT are carried out by `agent`
//! (LAUNCH, LAUNCH_GROUP) and `operations` (RESERVE, UNRESERVE, CREATE, DESTROY); whatever
//! they leave of the offers is declined with the ACCEPT's filter.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::agent::{launch_group_op, launch_op, op_tasks};
use crate::operations;
use crate::state::{Decline, Offer, St};
use crate::validate::{strip_allocation, Pool};

impl St {
    /// Runs the allocator for one agent: offers its free resources (`offers_of`) at once,
    /// or with an `allocation_interval` at the next allocation cycle (then `None`).
    pub(crate) fn allocate(&mut self, agent: &str) -> Option<String> {
        if !self.cfg.allocation_interval.is_zero() {
            self.to_allocate.insert(agent.to_string());
            return None;
        }
        let offers = self.offers_of(agent);
        let first_id = offers
            .first()
            .map(|o| o["id"]["value"].as_str().unwrap_or("").to_string());
        if !offers.is_empty() {
            self.send(json!({"type": "OFFERS", "offers": {"offers": offers}}));
        }
        first_id
    }

    /// One allocation cycle (`allocation_interval`): every agent waiting for it, in one
    /// OFFERS event.
    pub(crate) fn allocation_cycle(&mut self) {
        let agents = std::mem::take(&mut self.to_allocate);
        let mut offers = Vec::new();
        for agent in agents {
            offers.extend(self.offers_of(&agent));
        }
        if !offers.is_empty() {
            self.send(json!({"type": "OFFERS", "offers": {"offers": offers}}));
        }
    }

    /// The offers of one agent's free resources (recorded as outstanding): to the framework's
    /// roles (one offer per role, or `split_offers` of them), unless the framework is
    /// disconnected, the agent is withheld or draining, or the role is suppressed or
    /// filtered on that agent. Unreserved resources go to the first role that may have them;
    /// resources reserved for a role go only to that role (mesos-scheduler-api.md §4.1, §4.7;
    /// a MULTI_ROLE framework gets `allocation_info` on offers and resources). Offers from an
    /// agent scheduled for maintenance carry its `unavailability` (`maintenance`).
    fn offers_of(&mut self, agent: &str) -> Vec<Value> {
        if !self.connected() || self.withheld.contains(agent) {
            return Vec::new();
        }
        if self.draining.contains_key(agent) || self.gone.contains(agent) {
            return Vec::new();
        }
        let Some(fw) = self.framework.as_ref() else {
            return Vec::new();
        };
        let multi_role = fw.has_cap("MULTI_ROLE");
        let fid = fw.id.clone();
        let now = Instant::now();
        let roles: Vec<String> = fw
            .roles()
            .into_iter()
            .filter(|r| !fw.suppressed.contains(r))
            .filter(|r| {
                self.filters
                    .get(&(agent.to_string(), r.to_string()))
                    .is_none_or(|until| *until <= now)
            })
            .collect();
        let Some(free) = self.agents.get(agent).cloned() else {
            return Vec::new();
        };
        if free.is_empty() {
            return Vec::new();
        }
        let (mut unreserved, mut reserved) = free.split_by_reservation();
        let mut offers = Vec::new();
        for role in roles {
            let mut pool = reserved.remove(&role).unwrap_or_default();
            pool.add(&std::mem::take(&mut unreserved));
            if pool.is_empty() {
                continue;
            }
            if let Some(left) = self.agents.get_mut(agent) {
                left.subtract(&pool);
            }
            let alloc_role = multi_role.then_some(role.as_str());
            let resources = pool.to_json(alloc_role);
            let parts = self.split_offers.max(1);
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
                if let Some(u) = self.maintenance.get(agent) {
                    offer["unavailability"] = u.to_json();
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
                offers.push(offer);
            }
        }
        offers
    }

    /// Adds cpus/mem/disk (and ports 31000-32000 for a new agent) to `agent`'s free
    /// resources and runs the allocator for it (`MesosDouble::offer`, `POST /double/agents`).
    pub(crate) fn add_resources(
        &mut self,
        agent: &str,
        cpus: f64,
        mem: f64,
        disk: f64,
    ) -> Option<String> {
        let new = !self.agents.contains_key(agent);
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
        let p = Pool::parse(&res, None).expect("scalar resources parse");
        self.agents.entry(agent.to_string()).or_default().add(&p);
        self.allocate(agent)
    }

    pub(crate) fn allocate_all(&mut self) {
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

    /// The framework refuses `role`'s resources on `agent` for `refuse_seconds`.
    pub(crate) fn filter(&mut self, agent: &str, role: &str, refuse_seconds: f64) {
        if refuse_seconds > 0.0 {
            let until = Instant::now() + Duration::from_secs_f64(refuse_seconds.min(1e9));
            self.filters
                .insert((agent.to_string(), role.to_string()), until);
        }
    }

    /// RESCIND every outstanding offer `which` selects (their resources go back).
    pub(crate) fn rescind_where(&mut self, which: impl Fn(&Offer) -> bool) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| which(o))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(o) = self.offers.remove(&id) {
                self.give_back(&o.agent_id, &o.pool);
                self.send(json!({"type": "RESCIND", "rescind": {"offer_id": {"value": id}}}));
            }
        }
    }

    /// Drops all offers without telling the framework (disconnect) or with RESCIND.
    pub(crate) fn drop_offers(&mut self, rescind: bool) {
        let ids: Vec<String> = self.offers.keys().cloned().collect();
        for id in ids {
            let o = self.offers.remove(&id).unwrap();
            self.give_back(&o.agent_id, &o.pool);
            if rescind {
                self.send(json!({"type": "RESCIND", "rescind": {"offer_id": {"value": id}}}));
            }
        }
    }
}

pub(crate) fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["value"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn accept(s: &mut St, accept: &Value) {
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
            if let Some(id) = op["id"]["value"].as_str() {
                let m = format!("Operation attempted with invalid offers: {e}");
                s.operation_error(id, None, &m);
            }
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
        let typ = op["type"].as_str().unwrap_or("");
        if let (Some(_), "LAUNCH" | "LAUNCH_GROUP") = (op["id"]["value"].as_str(), typ) {
            // Launches report through task updates; an operation ID is refused.
            let m = format!(
                "{typ} operations do not take an operation 'id' (their tasks report their states)"
            );
            for t in op_tasks(op) {
                agent_task_error(s, &t, &m, &agent);
            }
            continue;
        }
        match typ {
            "LAUNCH" => launch_op(s, op, &ctx, &mut pool, &mut seen_ids),
            "LAUNCH_GROUP" => launch_group_op(s, op, &ctx, &mut pool, &mut seen_ids),
            "RESERVE" | "UNRESERVE" | "CREATE" | "DESTROY" => {
                reservation_op(s, op, typ, &ctx, &mut pool);
            }
            typ => s.violations.push(format!(
                "ACCEPT operation {typ} is not simulated by the double"
            )),
        }
    }
    // Whatever the ACCEPT did not use is declined with its filters.
    if !pool.is_empty() {
        s.give_back(&agent, &pool);
        s.filter(&agent, &ctx.role, refuse);
    }
}

/// A reservation or volume operation: applied (or dropped), with feedback when it has an ID.
fn reservation_op(s: &mut St, op: &Value, typ: &str, ctx: &AcceptCtx, pool: &mut Pool) {
    let id = op["id"]["value"].as_str();
    if let Some(id) = id.filter(|id| s.operation_id_in_use(id)) {
        let m = format!("Operation ID '{id}' is already in use");
        s.rejected_operations.push(format!("{typ}: {m}"));
        s.operation_error(id, Some(&ctx.agent), &m);
        return;
    }
    if id.is_some() && s.failing_operations.contains(&ctx.agent) {
        // The agent fails to apply it: the resources stay as they were.
        s.rejected_operations
            .push(format!("{typ}: failed on agent {}", ctx.agent));
        s.operation_done(id.unwrap_or_default(), &ctx.agent, None);
        return;
    }
    match operations::apply(s, op, ctx, pool) {
        Ok(()) => {
            if let Some(id) = id {
                s.operation_done(id, &ctx.agent, Some(operations::converted(op)));
            }
        }
        Err(e) => {
            s.rejected_operations.push(format!("{typ}: {e}"));
            if let Some(id) = id {
                s.operation_error(id, Some(&ctx.agent), &e);
            }
        }
    }
}

fn agent_task_error(s: &mut St, t: &Value, message: &str, agent: &str) {
    let id = t["task_id"]["value"].as_str().unwrap_or("");
    let st = s.master_status(
        id,
        "TASK_ERROR",
        "REASON_TASK_INVALID",
        message,
        Some(agent),
    );
    s.send_update_event(st);
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

/// DECLINE: the offers go back to their agents, filtered for `refuse_seconds` (default 5).
pub(crate) fn decline(s: &mut St, decline: &Value) {
    let ids: Vec<String> = ids(&decline["offer_ids"]);
    let refuse = decline["filters"]["refuse_seconds"].as_f64();
    s.declines.push(Decline {
        offer_ids: ids.clone(),
        refuse_seconds: refuse,
    });
    for id in ids {
        match s.offers.remove(&id) {
            Some(o) => {
                s.give_back(&o.agent_id, &o.pool);
                s.filter(&o.agent_id, &o.role, refuse.unwrap_or(5.0));
            }
            None => s.violations.push(format!("DECLINE of unknown offer {id}")),
        }
    }
}

impl St {
    /// The roles a SUPPRESS / REVIVE names: all of the framework's when none are given;
    /// roles it is not subscribed to are ignored (and recorded).
    fn named_roles(&mut self, call: &Value) -> Vec<String> {
        let Some(fw) = self.framework.as_ref() else {
            return Vec::new();
        };
        let subscribed = fw.roles();
        let named: Vec<String> = call["roles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if named.is_empty() {
            return subscribed;
        }
        let (known, unknown): (Vec<String>, Vec<String>) =
            named.into_iter().partition(|r| subscribed.contains(r));
        for r in unknown {
            self.violations.push(format!(
                "SUPPRESS/REVIVE of role {r:?} the framework is not subscribed to"
            ));
        }
        known
    }

    /// SUPPRESS: no offers for these roles until REVIVE (outstanding ones stay).
    pub(crate) fn suppress(&mut self, call: &Value) {
        let roles = self.named_roles(call);
        if let Some(fw) = self.framework.as_mut() {
            fw.suppressed.extend(roles);
        }
    }

    /// REVIVE: offers again for these roles, their decline filters removed.
    pub(crate) fn revive(&mut self, call: &Value) {
        self.revives += 1;
        let roles = self.named_roles(call);
        if let Some(fw) = self.framework.as_mut() {
            for r in &roles {
                fw.suppressed.remove(r);
            }
        }
        self.filters.retain(|(_, role), _| !roles.contains(role));
        self.allocate_all();
    }
}
