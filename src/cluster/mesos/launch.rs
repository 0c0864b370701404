//! Turning the scheduler's launch (offers + TaskInfos) into one Mesos ACCEPT.
//!
//! * Tasks that carry a DEFAULT `executor` (the scheduler sets one on the tasks of a group
//!   instance launched together) become one LAUNCH_GROUP per executor; the executor gets our
//!   FrameworkID (the master fills it in only for LAUNCH) and leaves the tasks.
//! * Every other task goes into one LAUNCH (command executor, or its custom executor).
//! * Sandbox files (`TaskInfo.data`: rendered templates, the payload) cannot travel in
//!   `data` on Mesos (the command executor ignores it), so each becomes a fetcher URI served
//!   by our API, `<advertise>/v1/sandbox/<task id>/<path>`, with `output_file` = its path.
//! * A task that needs its group's sticky disk (`dispatch_volume` marker set by the
//!   scheduler) gets the persistent volume the offer carries; when the offer has none yet,
//!   RESERVE (dynamic, for the offer's role, labelled with the volume ID) and CREATE come first
//!   in the same ACCEPT. `release_volume_call` is the way back: DESTROY, then UNRESERVE.

use indexmap::IndexMap;
use serde_json::{json, Value};

use super::json::{self, ExecutorInfo, Operation};
use crate::cluster::fetch_urls::{files_as_uris, FileUrls};
use crate::cluster::types::{FrameworkId, Id, Offer, OfferId, Resource, TaskInfo};
use crate::cluster::{SHARED_ALLOC_MARKER, VOLUME_MARKER};
use crate::render::VOLUME_DIR;

/// How reservations are written (see `settings`).
#[derive(Debug, Clone, Default)]
pub struct Reserver {
    pub principal: Option<String>,
    /// RESERVATION_REFINEMENT declared: the `reservations` stack format.
    pub refinement: bool,
    /// Directory on the agents under which pipeline steps share `alloc/` (`-mesos-alloc-dir`).
    pub alloc_dir: String,
}

pub fn accept_call(
    framework_id: &FrameworkId,
    offers: &[Offer],
    offer_ids: Vec<OfferId>,
    mut tasks: Vec<TaskInfo>,
    refuse_seconds: f64,
    urls: &FileUrls,
    reserver: &Reserver,
) -> json::Call {
    let mut operations = provide_volumes(&mut tasks, offers, reserver);
    for task in &mut tasks {
        mount_shared_alloc(task, &reserver.alloc_dir);
    }
    let mut launch = Vec::new();
    let mut groups: IndexMap<String, (ExecutorInfo, Vec<TaskInfo>)> = IndexMap::new();
    for mut task in tasks {
        if !has_custom_executor(&task) {
            files_as_uris(&mut task, urls);
        }
        match default_executor(&mut task) {
            Some(mut executor) => {
                executor.framework_id = Some(framework_id.clone());
                groups
                    .entry(executor.executor_id.value.clone())
                    .or_insert_with(|| (executor, Vec::new()))
                    .1
                    .push(task);
            }
            None => launch.push(task),
        }
    }
    if !launch.is_empty() {
        operations.push(Operation::launch(launch));
    }
    for (_, (executor, tasks)) in groups {
        operations.push(Operation::launch_group(executor, tasks));
    }
    json::Call::accept(
        framework_id.clone(),
        json::Accept {
            offer_ids,
            operations,
            filters: Some(json::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        },
    )
}

/// A pipeline step: mount `<alloc_dir>/<alloc id>` on the agent at `alloc` in the sandbox
/// (a host_path volume: the agents need the `filesystem/linux` + `volume/host_path`
/// isolators; every step runs on the same agent).
fn mount_shared_alloc(task: &mut TaskInfo, alloc_dir: &str) {
    let Some(alloc) = task.extra.shift_remove(SHARED_ALLOC_MARKER) else {
        return;
    };
    let Some(alloc) = alloc.as_str() else {
        return;
    };
    let volume = json!({
        "container_path": crate::render::ALLOC_DIR,
        "host_path": format!("{}/{alloc}", alloc_dir.trim_end_matches('/')),
        "mode": "RW",
    });
    task.add_volume(volume);
}

/// Give marked tasks their persistent volume; returns the RESERVE/CREATE operations needed
/// for volumes the offers do not carry yet.
fn provide_volumes(
    tasks: &mut [TaskInfo],
    offers: &[Offer],
    reserver: &Reserver,
) -> Vec<Operation> {
    let mut operations = Vec::new();
    for task in tasks.iter_mut() {
        let Some(marker) = task.extra.shift_remove(VOLUME_MARKER) else {
            continue;
        };
        let (Some(id), Some(size)) = (marker["id"].as_str(), marker["size_mb"].as_f64()) else {
            continue;
        };
        if let Some(volume) = offered_volume(offers, id) {
            task.resources.push(volume);
            continue;
        }
        let Some(template) = unreserved_disk(offers) else {
            tracing::warn!(task = %task.task_id, "no unreserved disk in the offer for volume {id}");
            continue;
        };
        let reserved = reserve(template, size, id, reserver);
        let volume = with_volume(&reserved, id, reserver);
        // With IDs the master reports how each went (operation feedback).
        let task_id = &task.task_id.value;
        operations.push(Operation {
            id: Some(Id::new(format!("reserve.{task_id}"))),
            ..Operation::reserve(vec![reserved])
        });
        operations.push(Operation {
            id: Some(Id::new(format!("create.{task_id}"))),
            ..Operation::create(vec![volume.clone()])
        });
        task.resources.push(volume);
    }
    operations
}

fn offered_volume(offers: &[Offer], id: &str) -> Option<Resource> {
    offers
        .iter()
        .flat_map(|o| &o.resources)
        .find(|r| r.persistence_id() == Some(id))
        .cloned()
}

fn is_unreserved(r: &Resource) -> bool {
    let old_role = r.extra.get("role").and_then(Value::as_str);
    let stack = r.extra.get("reservations").and_then(Value::as_array);
    r.extra.get("reservation").is_none()
        && old_role.is_none_or(|role| role == "*")
        && stack.is_none_or(|s| s.is_empty())
}

fn unreserved_disk(offers: &[Offer]) -> Option<&Resource> {
    offers
        .iter()
        .flat_map(|o| &o.resources)
        .find(|r| r.name == "disk" && r.extra.get("disk").is_none() && is_unreserved(r))
}

/// `size` MB of the template's disk, dynamically reserved for the offer's role.
fn reserve(template: &Resource, size: f64, id: &str, reserver: &Reserver) -> Resource {
    let mut r = template.with_value(size);
    let role = template
        .extra
        .get("allocation_info")
        .and_then(|a| a.get("role"))
        .and_then(Value::as_str)
        .unwrap_or("*")
        .to_string();
    let labels = json!({"labels": [{"key": "dispatch.volume", "value": id}]});
    let mut reservation = json!({"labels": labels});
    if let Some(p) = &reserver.principal {
        reservation["principal"] = json!(p);
    }
    if reserver.refinement {
        reservation["type"] = json!("DYNAMIC");
        reservation["role"] = json!(role);
        r.extra.insert("reservations".into(), json!([reservation]));
    } else {
        r.extra.insert("role".into(), json!(role));
        r.extra.insert("reservation".into(), reservation);
    }
    r
}

fn with_volume(reserved: &Resource, id: &str, reserver: &Reserver) -> Resource {
    let mut v = reserved.clone();
    let mut persistence = json!({"id": id});
    if let Some(p) = &reserver.principal {
        persistence["principal"] = json!(p);
    }
    v.extra.insert(
        "disk".into(),
        json!({"persistence": persistence, "volume": {"container_path": VOLUME_DIR, "mode": "RW"}}),
    );
    v
}

/// ACCEPT that deletes a volume (DESTROY) and gives its disk back (UNRESERVE).
pub fn release_volume_call(
    framework_id: &FrameworkId,
    offer_id: OfferId,
    volume: Resource,
    refuse_seconds: f64,
) -> json::Call {
    let mut reserved = volume.clone();
    reserved.extra.shift_remove("disk");
    let tag = format!(
        "{}.{}",
        volume.persistence_id().unwrap_or("volume"),
        offer_id.value
    );
    json::Call::accept(
        framework_id.clone(),
        json::Accept {
            offer_ids: vec![offer_id],
            operations: vec![
                Operation {
                    id: Some(Id::new(format!("destroy.{tag}"))),
                    ..Operation::destroy(vec![volume])
                },
                Operation {
                    id: Some(Id::new(format!("unreserve.{tag}"))),
                    ..Operation::unreserve(vec![reserved])
                },
            ],
            filters: Some(json::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        },
    )
}

/// An operation of an ACCEPT that carries an ID: what it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeOperation {
    /// `RESERVE`, `CREATE`, `DESTROY`, `UNRESERVE`.
    pub kind: &'static str,
    /// The persistence ID of the group volume it makes or releases.
    pub volume: String,
    /// The launch a RESERVE / CREATE is for.
    pub task_id: Option<String>,
}

/// The operations with an ID in `call` (an ACCEPT), by ID.
pub fn volume_operations(call: &json::Call) -> Vec<(String, VolumeOperation)> {
    let Some(accept) = &call.accept else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for op in &accept.operations {
        let Some(id) = &op.id else { continue };
        let (kind, resources) = match op.kind {
            json::OperationType::Reserve => ("RESERVE", op.reserve.as_ref().map(|r| &r.resources)),
            json::OperationType::Unreserve => {
                ("UNRESERVE", op.unreserve.as_ref().map(|r| &r.resources))
            }
            json::OperationType::Create => ("CREATE", op.create.as_ref().map(|v| &v.volumes)),
            json::OperationType::Destroy => ("DESTROY", op.destroy.as_ref().map(|v| &v.volumes)),
            _ => continue,
        };
        let volume = resources
            .into_iter()
            .flatten()
            .find_map(|r| {
                r.persistence_id()
                    .map(String::from)
                    .or_else(|| volume_label(r))
            })
            .unwrap_or_default();
        let task_id = ["reserve.", "create."]
            .iter()
            .find_map(|p| id.value.strip_prefix(p))
            .map(String::from);
        out.push((
            id.value.clone(),
            VolumeOperation {
                kind,
                volume,
                task_id,
            },
        ));
    }
    out
}

/// The `dispatch.volume` label of a reservation made for a group volume.
fn volume_label(r: &Resource) -> Option<String> {
    let reservation = r
        .extra
        .get("reservations")
        .and_then(|s| s.as_array()?.last().cloned())
        .or_else(|| r.extra.get("reservation").cloned())?;
    reservation["labels"]["labels"]
        .as_array()?
        .iter()
        .find(|l| l["key"] == "dispatch.volume")?["value"]
        .as_str()
        .map(String::from)
}

/// A custom executor reads `data` itself: leave it alone.
fn has_custom_executor(task: &TaskInfo) -> bool {
    task.extra
        .get("executor")
        .is_some_and(|e| e.get("type").and_then(|t| t.as_str()) != Some("DEFAULT"))
}

/// Take a DEFAULT executor out of the task (a task-group member); other executors stay.
fn default_executor(task: &mut TaskInfo) -> Option<ExecutorInfo> {
    let value = task.extra.get("executor")?;
    let executor: ExecutorInfo = serde_json::from_value(value.clone()).ok()?;
    if executor.kind.as_deref() != Some("DEFAULT") {
        return None;
    }
    task.extra.shift_remove("executor");
    Some(executor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{SandboxFile, SandboxFiles};

    fn task(id: &str, executor: Option<serde_json::Value>) -> TaskInfo {
        let mut t: TaskInfo = serde_json::from_value(serde_json::json!({
            "name": id, "task_id": {"value": id}, "agent_id": {"value": "a1"},
            "command": {"value": "cat local/in.txt"}
        }))
        .unwrap();
        t.data = SandboxFiles {
            files: vec![SandboxFile::new(
                "local/in.txt".into(),
                b"hi",
                "0644".into(),
            )],
        }
        .encode();
        if let Some(e) = executor {
            t.extra.insert("executor".into(), e);
        }
        t
    }

    #[test]
    fn group_members_become_one_launch_group_with_our_framework_id() {
        let key = crate::cluster::fetch_urls::FetchKey::from_bytes(&[1; 32]);
        let exec = serde_json::json!({"type": "DEFAULT", "executor_id": {"value": "d.g.0.executor"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]});
        let call = accept_call(
            &Id::new("fw-1"),
            &[],
            vec![Id::new("o1")],
            vec![
                task("t1", Some(exec.clone())),
                task("t2", Some(exec)),
                task("t3", None),
            ],
            600.0,
            &FileUrls {
                base: "http://10.0.0.2:4646".into(),
                key: Some(key.clone()),
            },
            &Reserver::default(),
        );
        let v = serde_json::to_value(&call).unwrap();
        let ops = v["accept"]["operations"].as_array().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0]["type"], "LAUNCH");
        assert_eq!(ops[0]["launch"]["task_infos"][0]["task_id"]["value"], "t3");
        assert_eq!(ops[1]["type"], "LAUNCH_GROUP");
        let group = &ops[1]["launch_group"];
        assert_eq!(group["executor"]["framework_id"]["value"], "fw-1");
        assert_eq!(group["task_group"]["tasks"].as_array().unwrap().len(), 2);
        assert!(group["task_group"]["tasks"][0].get("executor").is_none());
        let uri = &group["task_group"]["tasks"][0]["command"]["uris"][0];
        assert_eq!(
            uri["value"],
            format!(
                "http://10.0.0.2:4646/v1/sandbox/t1/{}/local/in.txt",
                key.token("t1")
            )
        );
        assert_eq!(uri["output_file"], "local/in.txt");
        assert_eq!(uri["extract"], false);
        assert!(group["task_group"]["tasks"][0].get("data").is_none());
        assert_eq!(v["accept"]["filters"]["refuse_seconds"], 600.0);
    }
}
