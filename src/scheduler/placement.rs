//! Fitting ready units into offers, and rendering them for the offer they got. Pure.
//!
//! First fit in queue order, with no head-of-line blocking: a unit that does not fit is
//! skipped and smaller ones behind it still launch. A unit larger than anything an agent can
//! hold is reported on its dispatch (it stays queued; more capacity may come).
//!
//! An offer from an agent scheduled for maintenance (it carries `unavailability`) takes no
//! new work, only the next steps of group instances already on it. A job whose `node_pool`
//! names a role (anything but `default`/`all`) runs only on offers allocated to that role
//! (MULTI_ROLE offers say which; offers that do not, like the local runner's, take it), and
//! REVIVE asks only for the roles the ready work can use (`roles_wanted`).
//!
//! Where backends differ, `Capabilities` decides: task groups (a DEFAULT executor, charged to
//! the offer, runs a group instance's tasks side by side), pipeline steps sharing `alloc/`
//! on their agent (`SHARED_ALLOC_MARKER`), persistent volumes for sticky disks
//! (`VOLUME_MARKER`, released when their job is gone), `source` templates.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::ready::Unit;
use crate::cluster::{
    Capabilities, Capacity, ClusterCall, Demand, Id, Offer, OfferId, Resource, TaskInfo,
    SHARED_ALLOC_MARKER, VOLUME_MARKER,
};
use crate::model::plan;
use crate::render::{
    alloc_id, alloc_key, executor_id, render_task, volume_id, RenderInput, VOLUME_PREFIX,
};
use crate::state::State;

/// Resources of a DEFAULT executor (what mesos-execute gives it; the master refuses one
/// without disk).
pub const EXECUTOR_OVERHEAD: Demand = Demand {
    cpus: 0.1,
    mem_mb: 32.0,
    disk_mb: 32.0,
    gpus: 0.0,
};

/// One (pooled) offer and the units to launch on it (indexes into the placement's units).
#[derive(Debug)]
pub struct OfferPlan {
    pub offer_ids: Vec<OfferId>,
    pub offer: Offer,
    pub units: Vec<usize>,
}

/// Offers of one agent for one role are used as one pool (Mesos lets one ACCEPT name them
/// all): the resources side by side, the first offer's other fields. Order is kept.
pub fn pool_offers(offers: Vec<Offer>) -> Vec<(Vec<OfferId>, Offer)> {
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

/// First fit: each offer in turn takes the units (best first) that fit in what is left of
/// it. Returns the plan of each offer and which units were taken.
pub fn fit(
    caps: &Capabilities,
    units: &[Unit],
    mut running: HashMap<Arc<str>, u32>,
    offers: Vec<(Vec<OfferId>, Offer)>,
    known_volumes: &mut HashMap<String, String>,
) -> (Vec<OfferPlan>, Vec<bool>) {
    let mut taken = vec![false; units.len()];
    let mut started: HashSet<Arc<str>> = HashSet::new();
    let mut plans = Vec::with_capacity(offers.len());
    // No unit needs less than this: an offer with less left is full (each offer's scan
    // stops there, so many offers over a long queue cost offers + units, not their product).
    let smallest = units
        .iter()
        .map(|u| u.demand)
        .reduce(|a, b| a.min(&b))
        .unwrap_or_default();
    // Units before this index are all taken.
    let mut first_free = 0;
    for (offer_ids, offer) in offers {
        let mut free = Demand::of(&offer.resources);
        let mut chosen = Vec::new();
        while taken.get(first_free).is_some_and(|t| *t) {
            first_free += 1;
        }
        for (i, unit) in units.iter().enumerate().skip(first_free) {
            if !smallest.fits_in(&free) {
                break;
            }
            if taken[i] {
                continue;
            }
            let pinned_here = unit.pinned_agent.as_deref() == Some(&*offer.agent_id.value);
            if unit.pinned_agent.is_some() && !pinned_here {
                continue;
            }
            // An agent scheduled for maintenance gets no new work; the next step of work
            // already there (its alloc/ lives there) still runs, so the agent empties.
            if offer.unavailable_from().is_some() && !pinned_here {
                continue;
            }
            // Work of a job whose node_pool names a role runs on that role's offers only.
            if let (Some(want), Some(have)) = (role_of(unit), offer_role(&offer)) {
                if want != have {
                    continue;
                }
            }
            let volume = sticky_volume(caps, unit);
            if let Some((id, _)) = &volume {
                // A group's sticky disk lives on one agent: wait for the offer carrying
                // it (it is offered again once the task using it ends).
                if known_volumes.contains_key(id) && !offers_volume(&offer, id) {
                    continue;
                }
            }
            let demand = unit
                .demand
                .add(&executor_overhead(caps, unit, &offer))
                .add(&Demand {
                    disk_mb: volume.as_ref().map_or(0.0, |v| v.1),
                    ..Demand::default()
                });
            if !demand.fits_in(&free) {
                continue;
            }
            if let Some((id, _)) = &volume {
                known_volumes.insert(id.clone(), offer.agent_id.value.clone());
            }
            let new_dispatch =
                unit.dispatch.runs.is_empty() && !started.contains(&unit.dispatch.id);
            if new_dispatch && at_limit(unit, &running) {
                continue;
            }
            free = free.sub(&demand);
            taken[i] = true;
            if new_dispatch {
                started.insert(unit.dispatch.id.clone());
                *running.entry(unit.parent().into()).or_default() += 1;
            }
            chosen.push(i);
        }
        plans.push(OfferPlan {
            offer_ids,
            offer,
            units: chosen,
        });
    }
    (plans, taken)
}

/// The role a unit's work must run in: its job's `node_pool`, unless that is Nomad's
/// default (`default`, `all`): then any role will do.
pub fn role_of(unit: &Unit) -> Option<&str> {
    let pool = unit.dispatch.job.node_pool.as_str();
    (!matches!(pool, "" | "default" | "all")).then_some(pool)
}

/// The roles to REVIVE for `units` (the ready work): empty (every role) when some work can
/// use any role or nothing is ready, else exactly the roles the work names.
pub fn roles_wanted(units: &[Unit]) -> Vec<String> {
    let mut roles = Vec::new();
    for unit in units {
        match role_of(unit) {
            None => return Vec::new(),
            Some(r) if !roles.iter().any(|x: &String| x == r) => roles.push(r.to_string()),
            Some(_) => {}
        }
    }
    roles.sort();
    roles
}

/// The role an offer is allocated to (a MULTI_ROLE framework's offers say; others do not).
fn offer_role(offer: &Offer) -> Option<&str> {
    offer.extra.get("allocation_info")?.get("role")?.as_str()
}

/// A new dispatch of a job already running `max_running` dispatches waits.
fn at_limit(unit: &Unit, running: &HashMap<Arc<str>, u32>) -> bool {
    let limit = unit
        .dispatch
        .job
        .parameterized
        .as_ref()
        .map_or(0, |p| p.max_running);
    limit > 0 && running.get(unit.parent()).copied().unwrap_or(0) >= limit
}

/// When `demand` can never fit: the most the backend can offer (to show in the note).
pub fn too_large(
    capacity: &Capacity,
    largest_agent: &HashMap<String, Demand>,
    demand: &Demand,
) -> Option<Demand> {
    match capacity {
        Capacity::Fixed(machine) => (!demand.fits_in(machine)).then_some(*machine),
        Capacity::LargestOffer => {
            if largest_agent.is_empty() || largest_agent.values().any(|l| demand.fits_in(l)) {
                return None;
            }
            Some(
                largest_agent
                    .values()
                    .fold(Demand::default(), |a, b| a.max(b)),
            )
        }
    }
}

/// The persistent volume (ID, size in MB) a unit's group keeps its sticky disk on (backends
/// with persistent volumes).
fn sticky_volume(caps: &Capabilities, unit: &Unit) -> Option<(String, f64)> {
    if !caps.persistent_volumes {
        return None;
    }
    let slot = unit.slots.first()?.0;
    let group = unit.dispatch.job.task_groups.get(slot.group as usize)?;
    let size = group.sticky_disk_mb()?;
    Some((volume_id(unit.parent(), &group.name), size))
}

/// Volumes Dispatch made for groups that no longer exist (job purged): DESTROY and
/// UNRESERVE them, using up the offer that carries them. Returns those calls and the
/// other offers.
pub fn release_unwanted_volumes(
    offers: Vec<Offer>,
    wanted: &HashSet<String>,
    known_volumes: &mut HashMap<String, String>,
) -> (Vec<ClusterCall>, Vec<Offer>) {
    let mut releases = Vec::new();
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
                known_volumes.insert(id.to_string(), offer.agent_id.value.clone());
                continue;
            }
            tracing::info!(volume = id, agent = %offer.agent_id, "job gone: releasing its persistent volume");
            known_volumes.remove(id);
            releases.push(ClusterCall::ReleaseVolume {
                offer_id: offer.id.clone(),
                volume: r.clone(),
                refuse_seconds: 1.0,
            });
            continue 'offers;
        }
        rest.push(offer);
    }
    (releases, rest)
}

/// Persistent volumes the current jobs keep their sticky disks on.
pub fn wanted_volumes(state: &State) -> HashSet<String> {
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

/// Tasks of one group instance launched together go as one task group where the backend
/// has them (the DEFAULT executor runs them side by side, sharing `alloc/`); otherwise as
/// plain tasks. Docker containerizer and custom executor tasks cannot be in a group.
fn launches_as_group(caps: &Capabilities, unit: &Unit) -> bool {
    caps.task_groups
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
fn executor_overhead(caps: &Capabilities, unit: &Unit, offer: &Offer) -> Demand {
    if !launches_as_group(caps, unit) {
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

/// Render every task of a unit for this offer's agent, resources carved from the offer.
/// `payload` is the dispatch's payload (read from the store by the caller).
pub fn render_unit(
    caps: &Capabilities,
    unit: &Unit,
    offer: &Offer,
    payload: Option<&[u8]>,
) -> Result<Vec<TaskInfo>, String> {
    let d = &unit.dispatch;
    // Refuse what the backend cannot deliver rather than launch a task without a file; the
    // whole job, so no step of a pipeline runs if a later one could not.
    if let Some(refusal) = caps.refusal(&d.job) {
        return Err(refusal);
    }
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
            payload,
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
    if let (Some((id, size)), Some(first)) = (sticky_volume(caps, unit), out.first_mut()) {
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
    if caps.agent_alloc_dirs && is_pipeline {
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
    if launches_as_group(caps, unit) {
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
