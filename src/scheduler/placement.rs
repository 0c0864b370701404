//! Answering offers: fit ready units into them, record the launches, accept or decline.
//!
//! First fit in queue order, with no head-of-line blocking: a unit that does not fit is
//! skipped and smaller ones behind it still launch. A unit larger than anything an agent has
//! ever offered is reported on its dispatch (it stays queued; more capacity may come).

use std::collections::HashMap;
use std::sync::Arc;

use super::ready::{ready_units, running_per_job, Unit};
use super::{now_ns, Scheduler, DECLINE_SECONDS};
use crate::cluster::{ClusterCall, Demand, Id, Offer, Resource, TaskInfo};
use crate::render::{alloc_key, executor_id, render_task, RenderInput};
use crate::state::{Command, LaunchRun};

impl Scheduler {
    pub(super) async fn on_offers(&mut self, offers: Vec<Offer>) {
        let now = now_ns();
        let (units, mut running) = {
            let s = self.state.read();
            (ready_units(&s, now), running_per_job(&s))
        };
        for offer in &offers {
            let offered = Demand::of(&offer.resources);
            let largest = self
                .largest_agent
                .entry(offer.agent_id.value.clone())
                .or_default();
            *largest = Demand {
                cpus: largest.cpus.max(offered.cpus),
                mem_mb: largest.mem_mb.max(offered.mem_mb),
                disk_mb: largest.disk_mb.max(offered.disk_mb),
                gpus: largest.gpus.max(offered.gpus),
            };
        }
        let mut taken = vec![false; units.len()];
        let mut started: HashMap<Arc<str>, ()> = HashMap::new();
        for offer in offers {
            let mut free = Demand::of(&offer.resources);
            let mut chosen: Vec<&Unit> = Vec::new();
            for (i, unit) in units.iter().enumerate() {
                if taken[i] {
                    continue;
                }
                if unit
                    .pinned_agent
                    .as_deref()
                    .is_some_and(|a| a != offer.agent_id.value)
                {
                    continue;
                }
                let demand = unit.demand.add(&self.executor_overhead(unit, &offer));
                if !demand.fits_in(&free) {
                    continue;
                }
                let new_dispatch =
                    unit.dispatch.runs.is_empty() && !started.contains_key(&unit.dispatch.id);
                if new_dispatch && self.at_limit(unit, &running) {
                    continue;
                }
                free = free.sub(&demand);
                taken[i] = true;
                if new_dispatch {
                    started.insert(unit.dispatch.id.clone(), ());
                    *running.entry(unit.parent().into()).or_default() += 1;
                }
                chosen.push(unit);
            }
            self.launch_on(offer, chosen).await;
        }
        self.report_too_large(&units, &taken).await;
        if taken.iter().all(|t| *t) {
            self.suppress();
        } else {
            // Something waits but nothing more fits: offers come back when resources
            // free up, or when newer work revives them.
            self.went_quiet();
        }
    }

    fn at_limit(&self, unit: &Unit, running: &HashMap<Arc<str>, u32>) -> bool {
        let limit = unit
            .dispatch
            .job
            .parameterized
            .as_ref()
            .map_or(0, |p| p.max_running);
        limit > 0 && running.get(unit.parent()).copied().unwrap_or(0) >= limit
    }

    /// Record and launch the chosen units on one offer; decline it when nothing launches.
    /// All launch records of the offer are sent together, so they share one commit.
    async fn launch_on(&mut self, offer: Offer, chosen: Vec<&Unit>) {
        let mut rendered_units = Vec::new();
        let mut commands = Vec::new();
        for unit in chosen {
            match self.render_unit(unit, &offer).await {
                Ok(rendered) => {
                    let runs = rendered
                        .iter()
                        .zip(&unit.slots)
                        .map(|(info, (slot, attempt))| LaunchRun {
                            slot: *slot,
                            attempt: *attempt,
                            task_id: info.task_id.value.as_str().into(),
                            agent_id: offer.agent_id.value.clone(),
                        })
                        .collect();
                    commands.push(Command::Launch {
                        dispatch_id: unit.dispatch.id.clone(),
                        runs,
                    });
                    rendered_units.push((unit.dispatch.id.clone(), rendered));
                }
                Err(reason) => {
                    tracing::warn!(dispatch = %unit.dispatch.id, "cannot render: {reason}");
                    commands.push(Command::FailDispatch {
                        dispatch_id: unit.dispatch.id.clone(),
                        reason,
                    });
                }
            }
        }
        let results =
            futures_util::future::join_all(commands.into_iter().map(|c| self.state.apply(c))).await;
        for result in results {
            if let Err(e) = result {
                tracing::info!("not launched: {e}");
            }
        }
        let mut tasks: Vec<TaskInfo> = Vec::new();
        for (id, rendered) in rendered_units {
            // Launch only what the state recorded (a stop may have raced the placement).
            let recorded = {
                let s = self.state.read();
                s.dispatches.get(&id).is_some_and(|d| {
                    rendered
                        .iter()
                        .all(|t| d.runs.iter().any(|r| *r.task_id == *t.task_id.value))
                })
            };
            if recorded {
                tasks.extend(rendered);
            }
        }
        if tasks.is_empty() {
            crate::metrics::offer_declined(self.backend);
            self.call(ClusterCall::Decline {
                offer_ids: vec![offer.id],
                refuse_seconds: DECLINE_SECONDS,
            });
        } else {
            tracing::info!(
                offer = %offer.id,
                agent = %offer.agent_id,
                tasks = tasks.len(),
                "launching"
            );
            crate::metrics::offer_used(self.backend, &tasks);
            self.call(ClusterCall::Accept {
                offer_ids: vec![offer.id],
                tasks,
                refuse_seconds: DECLINE_SECONDS,
            });
        }
    }

    /// Render every task of a unit for this offer's agent, resources carved from the offer.
    async fn render_unit(&self, unit: &Unit, offer: &Offer) -> Result<Vec<TaskInfo>, String> {
        let d = &unit.dispatch;
        let payload = if d.payload_len > 0 {
            self.state
                .payload(&d.id)
                .await
                .map_err(|e| format!("cannot read the payload: {e}"))?
        } else {
            None
        };
        let mut out = Vec::new();
        for (slot, attempt) in &unit.slots {
            let group = d
                .job
                .task_groups
                .get(slot.group as usize)
                .ok_or("the job has no such group")?;
            let task = group
                .tasks
                .get(slot.task as usize)
                .ok_or("the group has no such task")?;
            let input = RenderInput {
                dispatch: d,
                group,
                instance: slot.instance,
                task,
                attempt: *attempt,
                payload: payload.as_deref(),
            };
            let mut info = render_task(&input).map_err(|e| e.to_string())?;
            info.agent_id = Id::new(offer.agent_id.value.clone());
            info.resources = carve(&info.resources, &offer.resources);
            // A custom executor (driver mesos_executor) is charged to the offer too.
            if let Some(res) = info.extra.get_mut("executor").map(|e| &mut e["resources"]) {
                let wanted: Vec<Resource> =
                    serde_json::from_value(res.take()).map_err(|e| e.to_string())?;
                *res = serde_json::json!(carve(&wanted, &offer.resources));
            }
            out.push(info);
        }
        if self.launches_as_group(unit) {
            let slot = unit.slots[0].0;
            let group = &d.job.task_groups[slot.group as usize];
            let executor = serde_json::json!({
                "type": "DEFAULT",
                "executor_id": {"value": executor_id(&d.id, &group.name, slot.instance)},
                "name": format!("dispatch {}", alloc_key(&d.id, &group.name, slot.instance)),
                "resources": carve(&EXECUTOR_OVERHEAD.to_resources(), &offer.resources),
            });
            for info in &mut out {
                share_alloc_dir(info);
                info.extra.insert("executor".into(), executor.clone());
            }
        }
        Ok(out)
    }

    /// Tasks of one group instance launched together go to Mesos as one task group (the
    /// DEFAULT executor runs them side by side, sharing `alloc/`). The local runner runs them
    /// as plain tasks; Docker containerizer and custom executor tasks cannot be in a group.
    fn launches_as_group(&self, unit: &Unit) -> bool {
        self.backend != "local"
            && unit.slots.len() > 1
            && unit.slots.iter().all(|(slot, _)| {
                unit.dispatch
                    .job
                    .task_groups
                    .get(slot.group as usize)
                    .and_then(|g| g.tasks.get(slot.task as usize))
                    .is_some_and(|t| crate::render::command::joins_group(&t.driver, &t.config))
            })
    }

    /// What the group's executor needs on top of its tasks, unless it already runs on the
    /// offer's agent (`Offer.executor_ids`).
    fn executor_overhead(&self, unit: &Unit, offer: &Offer) -> Demand {
        if !self.launches_as_group(unit) {
            return Demand::default();
        }
        let slot = unit.slots[0].0;
        let Some(group) = unit.dispatch.job.task_groups.get(slot.group as usize) else {
            return Demand::default();
        };
        let id = executor_id(&unit.dispatch.id, &group.name, slot.instance);
        let running = offer
            .extra
            .get("executor_ids")
            .and_then(|v| v.as_array())
            .is_some_and(|ids| ids.iter().any(|e| e["value"] == id.as_str()));
        if running {
            Demand::default()
        } else {
            EXECUTOR_OVERHEAD
        }
    }

    /// Put a note on dispatches no agent can hold, once each.
    async fn report_too_large(&mut self, units: &[Unit], taken: &[bool]) {
        let mut notes = Vec::new();
        for (unit, taken) in units.iter().zip(taken) {
            if *taken || self.reported_too_large.contains(&unit.dispatch.id) {
                continue;
            }
            if self.largest_agent.is_empty()
                || self
                    .largest_agent
                    .values()
                    .any(|largest| unit.demand.fits_in(largest))
            {
                continue;
            }
            let biggest = self
                .largest_agent
                .values()
                .copied()
                .fold(Demand::default(), |a, b| Demand {
                    cpus: a.cpus.max(b.cpus),
                    mem_mb: a.mem_mb.max(b.mem_mb),
                    disk_mb: a.disk_mb.max(b.disk_mb),
                    gpus: a.gpus.max(b.gpus),
                });
            let note = format!(
                "waiting: needs {} but no agent has offered that much (largest: {biggest})",
                unit.demand
            );
            tracing::warn!(dispatch = %unit.dispatch.id, "{note}");
            self.reported_too_large.insert(unit.dispatch.id.clone());
            notes.push((unit.dispatch.id.clone(), note));
        }
        for (dispatch_id, note) in notes {
            if let Err(e) = self.state.apply(Command::Note { dispatch_id, note }).await {
                tracing::error!("cannot record the note: {e}");
            }
        }
    }
}

/// Resources of a DEFAULT executor (what mesos-execute gives it; the master refuses one
/// without disk).
const EXECUTOR_OVERHEAD: Demand = Demand {
    cpus: 0.1,
    mem_mb: 32.0,
    disk_mb: 32.0,
    gpus: 0.0,
};

/// Mount the executor's `alloc/` directory into a group task's sandbox (Nomad's shared
/// allocation directory): a SANDBOX_PATH volume of type PARENT.
fn share_alloc_dir(info: &mut TaskInfo) {
    let volume = serde_json::json!({
        "container_path": crate::render::ALLOC_DIR,
        "mode": "RW",
        "source": {"type": "SANDBOX_PATH",
                   "sandbox_path": {"type": "PARENT", "path": crate::render::ALLOC_DIR}},
    });
    let container = info
        .container
        .get_or_insert_with(|| serde_json::json!({"type": "MESOS"}));
    if let Some(obj) = container.as_object_mut() {
        let volumes = obj
            .entry("volumes")
            .or_insert_with(|| serde_json::json!([]));
        if let Some(list) = volumes.as_array_mut() {
            list.push(volume);
        }
    }
}

/// The task's scalar resources, each copied from the offer's resource of the same name (so
/// role, reservation and other identity fields match what was offered) with the task's
/// quantity.
fn carve(wanted: &[Resource], offered: &[Resource]) -> Vec<Resource> {
    wanted
        .iter()
        .map(|w| {
            let value = w.scalar.as_ref().map_or(0.0, |s| s.value);
            offered
                .iter()
                .find(|o| o.name == w.name && o.scalar.is_some())
                .map_or_else(|| w.clone(), |o| o.with_value(value))
        })
        .collect()
}
