//! Answering offers: fit ready units into them, record the launches, accept or decline.
//!
//! First fit in queue order, with no head-of-line blocking: a unit that does not fit is
//! skipped and smaller ones behind it still launch. A unit larger than anything an agent has
//! ever offered is reported on its dispatch (it stays queued; more capacity may come).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::ready::{ready_units, running_per_job, Unit};
use super::{Scheduler, DECLINE_SECONDS};
use crate::cluster::{
    Capacity, ClusterCall, Demand, Id, Offer, OfferId, Resource, TaskInfo, SHARED_ALLOC_MARKER,
    VOLUME_MARKER,
};
use crate::model::plan;
use crate::render::{
    alloc_id, alloc_key, executor_id, render_task, volume_id, RenderInput, VOLUME_PREFIX,
};
use crate::state::{Command, LaunchRun};

impl Scheduler {
    pub(super) async fn on_offers(&mut self, offers: Vec<Offer>) {
        let now = self.clock.now_ns();
        let (units, mut running, newest_dispatch) = {
            let s = self.state.read();
            (
                ready_units(&s, now),
                running_per_job(&s),
                s.newest_dispatch_index(),
            )
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
        let offers = pool_offers(self.release_unwanted_volumes(offers));
        let mut taken = vec![false; units.len()];
        let mut started: HashMap<Arc<str>, ()> = HashMap::new();
        for (offer_ids, offer) in offers {
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
                let volume = self.sticky_volume(unit);
                if let Some((id, _)) = &volume {
                    // A group's sticky disk lives on one agent: wait for the offer carrying
                    // it (it is offered again once the task using it ends).
                    if self.known_volumes.contains_key(id) && !offers_volume(&offer, id) {
                        continue;
                    }
                }
                let demand = unit
                    .demand
                    .add(&self.executor_overhead(unit, &offer))
                    .add(&Demand {
                        disk_mb: volume.as_ref().map_or(0.0, |v| v.1),
                        ..Demand::default()
                    });
                if !demand.fits_in(&free) {
                    continue;
                }
                if let Some((id, _)) = &volume {
                    self.known_volumes
                        .insert(id.clone(), offer.agent_id.value.clone());
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
            self.launch_on(offer_ids, offer, chosen).await;
        }
        self.report_too_large(&units, &taken).await;
        if taken.iter().all(|t| *t) {
            self.suppress(newest_dispatch);
        } else {
            // Something waits but nothing more fits: offers come back when resources
            // free up, or when newer work revives them.
            self.went_quiet(newest_dispatch);
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
    async fn launch_on(&mut self, offer_ids: Vec<OfferId>, offer: Offer, chosen: Vec<&Unit>) {
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
                s.dispatch(&id).is_some_and(|d| {
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
                offer_ids,
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
                offer_ids,
                tasks,
                refuse_seconds: DECLINE_SECONDS,
            });
        }
    }

    /// Render every task of a unit for this offer's agent, resources carved from the offer.
    async fn render_unit(&self, unit: &Unit, offer: &Offer) -> Result<Vec<TaskInfo>, String> {
        let d = &unit.dispatch;
        // Refuse what Mesos cannot deliver rather than launch a task without a file; the
        // whole job, so no step of a pipeline runs if a later one could not.
        if let Some(refusal) = self.caps.refusal(&d.job) {
            return Err(refusal);
        }
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
        if let (Some((id, size)), Some(first)) = (self.sticky_volume(unit), out.first_mut()) {
            first.extra.insert(
                VOLUME_MARKER.into(),
                serde_json::json!({"id": id, "size_mb": size}),
            );
        }
        let first_slot = unit.slots[0].0;
        let is_pipeline = d
            .job
            .task_groups
            .get(first_slot.group as usize)
            .is_some_and(|g| (0..g.tasks.len()).any(|i| !plan::prerequisites(g, i).is_empty()));
        if self.caps.agent_alloc_dirs && is_pipeline {
            // Steps launched one after another share `alloc/` through a directory on the
            // agent (every step is pinned to the first step's agent).
            let group = &d.job.task_groups[first_slot.group as usize];
            let alloc = alloc_id(&alloc_key(&d.id, &group.name, first_slot.instance));
            for info in &mut out {
                info.extra.insert(
                    SHARED_ALLOC_MARKER.into(),
                    serde_json::Value::String(alloc.clone()),
                );
            }
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
                if !is_pipeline {
                    share_alloc_dir(info);
                }
                info.extra.insert("executor".into(), executor.clone());
            }
        }
        Ok(out)
    }

    /// The persistent volume (ID, size in MB) a unit's group keeps its sticky disk on
    /// (backends with persistent volumes).
    fn sticky_volume(&self, unit: &Unit) -> Option<(String, f64)> {
        if !self.caps.persistent_volumes {
            return None;
        }
        let slot = unit.slots.first()?.0;
        let group = unit.dispatch.job.task_groups.get(slot.group as usize)?;
        let size = group.sticky_disk_mb()?;
        Some((volume_id(unit.parent(), &group.name), size))
    }

    /// Volumes Dispatch made for groups that no longer exist (job purged): DESTROY and
    /// UNRESERVE them, using up the offer that carries them. Returns the other offers.
    fn release_unwanted_volumes(&mut self, offers: Vec<Offer>) -> Vec<Offer> {
        if !self.caps.persistent_volumes {
            return offers;
        }
        let wanted = wanted_volumes(&self.state.read());
        let mut rest = Vec::new();
        'offers: for offer in offers {
            for r in &offer.resources {
                let Some(id) = r
                    .persistence_id()
                    .filter(|id| id.starts_with(VOLUME_PREFIX))
                else {
                    continue;
                };
                if wanted.contains(id) {
                    self.known_volumes
                        .insert(id.to_string(), offer.agent_id.value.clone());
                    continue;
                }
                tracing::info!(volume = id, agent = %offer.agent_id, "job gone: releasing its persistent volume");
                self.known_volumes.remove(id);
                self.call(ClusterCall::ReleaseVolume {
                    offer_id: offer.id.clone(),
                    volume: r.clone(),
                    refuse_seconds: 1.0,
                });
                continue 'offers;
            }
            rest.push(offer);
        }
        rest
    }

    /// Tasks of one group instance launched together go as one task group where the backend
    /// has them (the DEFAULT executor runs them side by side, sharing `alloc/`); otherwise as
    /// plain tasks. Docker containerizer and custom executor tasks cannot be in a group.
    fn launches_as_group(&self, unit: &Unit) -> bool {
        self.caps.task_groups
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
            let biggest = match self.caps.capacity {
                Capacity::Fixed(machine) if !unit.demand.fits_in(&machine) => machine,
                Capacity::Fixed(_) => continue,
                Capacity::LargestOffer => {
                    if self.largest_agent.is_empty()
                        || self
                            .largest_agent
                            .values()
                            .any(|largest| unit.demand.fits_in(largest))
                    {
                        continue;
                    }
                    self.largest_agent
                        .values()
                        .copied()
                        .fold(Demand::default(), |a, b| Demand {
                            cpus: a.cpus.max(b.cpus),
                            mem_mb: a.mem_mb.max(b.mem_mb),
                            disk_mb: a.disk_mb.max(b.disk_mb),
                            gpus: a.gpus.max(b.gpus),
                        })
                }
            };
            let mut note = format!(
                "waiting: needs {} but no agent has offered that much (largest: {biggest})",
                unit.demand
            );
            if unit.demand.gpus > biggest.gpus && biggest.gpus == 0.0 {
                note.push_str("; ");
                note.push_str(self.caps.gpu_hint);
            }
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
    info.add_volume(volume);
}

/// Offers of one agent for one role are used as one pool (Mesos lets one ACCEPT name them
/// all): the resources side by side, the first offer's other fields. Order is kept.
fn pool_offers(offers: Vec<Offer>) -> Vec<(Vec<OfferId>, Offer)> {
    let mut pooled: Vec<(Vec<OfferId>, Offer)> = Vec::new();
    for offer in offers {
        let role = |o: &Offer| o.extra.get("allocation_info").cloned();
        match pooled
            .iter_mut()
            .find(|(_, p)| p.agent_id == offer.agent_id && role(p) == role(&offer))
        {
            Some((ids, pool)) => {
                ids.push(offer.id.clone());
                pool.resources.extend(offer.resources);
            }
            None => pooled.push((vec![offer.id.clone()], offer)),
        }
    }
    pooled
}

/// Persistent volumes the current jobs keep their sticky disks on.
pub(super) fn wanted_volumes(state: &crate::state::State) -> HashSet<String> {
    state
        .jobs()
        .flat_map(|entry| {
            let job = &entry.job;
            job.task_groups
                .iter()
                .filter(|g| g.sticky_disk_mb().is_some())
                .map(|g| volume_id(&job.id, &g.name))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn offers_volume(offer: &Offer, id: &str) -> bool {
    offer
        .resources
        .iter()
        .any(|r| r.persistence_id() == Some(id))
}

/// The task's scalar resources, each copied from the offer's resource of the same name (so
/// role, reservation and other identity fields match what was offered) with the task's
/// quantity.
fn carve(wanted: &[Resource], offered: &[Resource]) -> Vec<Resource> {
    wanted
        .iter()
        .map(|w| {
            let value = w.scalar.as_ref().map_or(0.0, |s| s.value);
            // Unreserved first (the template of a fresh reservation is never a volume).
            offered
                .iter()
                .filter(|o| o.name == w.name && o.scalar.is_some() && o.extra.get("disk").is_none())
                .min_by_key(|o| {
                    o.extra.contains_key("reservation") || o.extra.contains_key("reservations")
                })
                .map_or_else(|| w.clone(), |o| o.with_value(value))
        })
        .collect()
}
