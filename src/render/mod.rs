//! Rendering (job, dispatch, attempt) -> Mesos TaskInfo. TEMPORARY STUB until the renderer lands.
use crate::cluster::types::{CommandInfo, Demand, Id, TaskInfo};
use crate::model::job::{Task, TaskGroup};
use crate::model::Dispatch;

pub struct RenderInput<'a> {
    pub dispatch: &'a Dispatch,
    pub group: &'a TaskGroup,
    pub instance: u32,
    pub task: &'a Task,
    pub attempt: u32,
    pub payload: Option<&'a [u8]>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

pub fn task_id(dispatch_id: &str, group: &str, instance: u32, task: &str, attempt: u32) -> String {
    format!("{}.{group}.{instance}.{task}.{attempt}", dispatch_id.replace('/', "."))
}

pub fn alloc_key(dispatch_id: &str, group: &str, instance: u32) -> String {
    format!("{}.{group}.{instance}", dispatch_id.replace('/', "."))
}

pub fn demand(_group: &TaskGroup, task: &Task) -> Demand {
    let r = task.resources.clone().unwrap_or_default();
    Demand { cpus: r.mesos_cpus(), mem_mb: r.memory_mb.unwrap_or(0) as f64, disk_mb: r.disk_mb.unwrap_or(0) as f64, gpus: r.gpus.unwrap_or(0) as f64 }
}

pub fn render_task(input: &RenderInput) -> Result<TaskInfo, RenderError> {
    let cmd = input.task.config.get("command").and_then(|v| v.as_str()).unwrap_or("true").to_string();
    Ok(TaskInfo {
        name: format!("{}/{}", input.dispatch.id, input.task.name),
        task_id: Id::new(task_id(&input.dispatch.id, &input.group.name, input.instance, &input.task.name, input.attempt)),
        agent_id: Id::new(""),
        resources: demand(input.group, input.task).to_resources(),
        command: Some(CommandInfo { value: Some(cmd), ..Default::default() }),
        container: None, labels: None, kill_policy: None, max_completion_time: None, data: None,
        extra: Default::default(),
    })
}
