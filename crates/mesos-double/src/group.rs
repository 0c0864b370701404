//! LAUNCH_GROUP validation (mesos-scheduler-api.md §6.1, captures step 9):
//! the DEFAULT executor and the tasks of the group. Any failure refuses the
//! whole group (TASK_ERROR, REASON_TASK_GROUP_INVALID, for every task).

use serde_json::Value;

use crate::validate::{validate_id, validate_task_identity, validate_task_resources, Pool};

fn is_docker(container: &Value) -> bool {
    container["type"] == "DOCKER"
}

/// The group's executor, as the master checks it for LAUNCH_GROUP.
pub fn validate_group_executor(executor: &Value, framework_id: &str) -> Option<String> {
    let exid = executor["executor_id"]["value"].as_str().unwrap_or("");
    if let Some(e) = validate_id(exid) {
        return Some(format!("Executor uses invalid executor ID: {e}"));
    }
    match executor["type"].as_str() {
        None => return Some("'ExecutorInfo.type' must be set".into()),
        Some("DEFAULT") => {}
        Some(t) => {
            return Some(format!(
                "Executor '{exid}' of type '{t}' cannot run a task group: 'ExecutorInfo.type' must be 'DEFAULT'"
            ))
        }
    }
    match executor["framework_id"]["value"].as_str() {
        None => return Some("'ExecutorInfo.framework_id' must be set".into()),
        Some(f) if f != framework_id => {
            return Some(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {f} vs Expected: {framework_id})"
            ))
        }
        Some(_) => {}
    }
    if !executor["command"].is_null() {
        return Some("'ExecutorInfo.command' must not be set for 'DEFAULT' executor".into());
    }
    if is_docker(&executor["container"]) {
        return Some("Docker ContainerInfo is not supported on the executor".into());
    }
    let res = executor["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Err(e) = Pool::parse(&res, None) {
        return Some(format!("Executor uses invalid resources: {e}"));
    }
    for name in ["cpus", "mem", "disk"] {
        if !res.iter().any(|r| r["name"] == name) {
            return Some(format!("Executor '{exid}' uses no {name}"));
        }
    }
    None
}

/// One task of the group: identity, executor (absent or the group's), no
/// DOCKER container, resources.
pub fn validate_group_task(
    task: &Value,
    agent: &str,
    seen_ids: &[String],
    executor_id: &str,
) -> Option<String> {
    if let Some(m) = validate_task_identity(task, agent, seen_ids) {
        return Some(m);
    }
    let id = task["task_id"]["value"].as_str().unwrap_or("");
    let own = task["executor"]["executor_id"]["value"].as_str();
    if !task["executor"].is_null() && own != Some(executor_id) {
        return Some(format!(
            "The `ExecutorInfo` of task '{id}' is different from executor '{executor_id}'"
        ));
    }
    if is_docker(&task["container"]) {
        return Some(format!(
            "Docker ContainerInfo is not supported on task '{id}' of a task group"
        ));
    }
    validate_task_resources(task)
}

/// Everything about the group that does not depend on the offer pool.
pub fn validate_group(
    executor: &Value,
    tasks: &[Value],
    framework_id: &str,
    agent: &str,
    seen_ids: &[String],
) -> Option<String> {
    if tasks.is_empty() {
        return Some("Task group is empty".into());
    }
    if let Some(m) = validate_group_executor(executor, framework_id) {
        return Some(m);
    }
    let exid = executor["executor_id"]["value"].as_str().unwrap_or("");
    let mut seen = seen_ids.to_vec();
    for t in tasks {
        if let Some(m) = validate_group_task(t, agent, &seen, exid) {
            return Some(m);
        }
        seen.push(t["task_id"]["value"].as_str().unwrap_or("").to_string());
    }
    None
}
