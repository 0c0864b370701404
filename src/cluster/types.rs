//! Mesos v1 messages the scheduler and the backends exchange, as serde types in Mesos's own
//! JSON shape (snake_case proto field names, enums as name strings, bytes as base64).
//!
//! These are the cluster interface's vocabulary: the renderer produces `TaskInfo`s, backends
//! produce `Offer`s and `TaskStatus`es. The Mesos backend's JSON codec uses them as they are;
//! its protobuf codec converts to and from them. Fields we do not interpret are kept in
//! `extra` so that what an offer carried can be echoed back unchanged.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"value": "..."}`: Mesos wraps every ID in a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Id {
    pub value: String,
}

impl Id {
    pub fn new(value: impl Into<String>) -> Id {
        Id {
            value: value.into(),
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)
    }
}

pub type OfferId = Id;
pub type AgentId = Id;
pub type TaskId = Id;
pub type FrameworkId = Id;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    pub value: f64,
}

/// A Mesos `Resource`. Identity (role, reservations, disk, ...) lives in `extra` and is copied
/// unchanged when a task's resources are carved out of an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type", default = "scalar_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

fn scalar_type() -> String {
    "SCALAR".into()
}

impl Resource {
    /// The persistence ID of a persistent volume resource.
    pub fn persistence_id(&self) -> Option<&str> {
        self.extra
            .get("disk")?
            .get("persistence")?
            .get("id")?
            .as_str()
    }

    pub fn scalar(name: &str, value: f64) -> Resource {
        Resource {
            name: name.into(),
            kind: scalar_type(),
            scalar: Some(Scalar {
                value: round3(value),
            }),
            extra: IndexMap::new(),
        }
    }

    /// The same resource (same identity fields) with another quantity.
    pub fn with_value(&self, value: f64) -> Resource {
        Resource {
            scalar: Some(Scalar {
                value: round3(value),
            }),
            ..self.clone()
        }
    }
}

/// Mesos quantities have three decimals; round down so we never ask for more than offered.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0 + 1e-9).floor() / 1000.0
}

/// The four scalar resources Dispatch schedules on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    pub gpus: f64,
}

impl Demand {
    pub fn of(resources: &[Resource]) -> Demand {
        let mut d = Demand::default();
        for r in resources {
            let v = r.scalar.as_ref().map_or(0.0, |s| s.value);
            match r.name.as_str() {
                "cpus" => d.cpus += v,
                "mem" => d.mem_mb += v,
                "disk" => d.disk_mb += v,
                "gpus" => d.gpus += v,
                _ => {}
            }
        }
        d
    }

    pub fn fits_in(&self, other: &Demand) -> bool {
        const EPS: f64 = 1e-6;
        self.cpus <= other.cpus + EPS
            && self.mem_mb <= other.mem_mb + EPS
            && self.disk_mb <= other.disk_mb + EPS
            && self.gpus <= other.gpus + EPS
    }

    pub fn add(&self, o: &Demand) -> Demand {
        Demand {
            cpus: self.cpus + o.cpus,
            mem_mb: self.mem_mb + o.mem_mb,
            disk_mb: self.disk_mb + o.disk_mb,
            gpus: self.gpus + o.gpus,
        }
    }

    /// The larger of each resource.
    pub fn min(&self, o: &Demand) -> Demand {
        Demand {
            cpus: self.cpus.min(o.cpus),
            mem_mb: self.mem_mb.min(o.mem_mb),
            disk_mb: self.disk_mb.min(o.disk_mb),
            gpus: self.gpus.min(o.gpus),
        }
    }

    pub fn max(&self, o: &Demand) -> Demand {
        Demand {
            cpus: self.cpus.max(o.cpus),
            mem_mb: self.mem_mb.max(o.mem_mb),
            disk_mb: self.disk_mb.max(o.disk_mb),
            gpus: self.gpus.max(o.gpus),
        }
    }

    pub fn sub(&self, o: &Demand) -> Demand {
        Demand {
            cpus: (self.cpus - o.cpus).max(0.0),
            mem_mb: (self.mem_mb - o.mem_mb).max(0.0),
            disk_mb: (self.disk_mb - o.disk_mb).max(0.0),
            gpus: (self.gpus - o.gpus).max(0.0),
        }
    }

    /// The resource list Mesos expects (zero quantities left out, cpus always present).
    pub fn to_resources(&self) -> Vec<Resource> {
        let mut out = vec![Resource::scalar("cpus", self.cpus)];
        for (name, v) in [
            ("mem", self.mem_mb),
            ("disk", self.disk_mb),
            ("gpus", self.gpus),
        ] {
            if v > 0.0 {
                out.push(Resource::scalar(name, v));
            }
        }
        out
    }
}

impl From<Demand> for crate::metrics::Resources {
    fn from(d: Demand) -> Self {
        crate::metrics::Resources {
            cpus: d.cpus,
            mem_mb: d.mem_mb,
            disk_mb: d.disk_mb,
            gpus: d.gpus,
        }
    }
}

impl std::fmt::Display for Demand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpus={} mem={}MB disk={}MB gpus={}",
            self.cpus, self.mem_mb, self.disk_mb, self.gpus
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    pub agent_id: AgentId,
    pub hostname: String,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Offer {
    /// When the agent may become unavailable (Unix ns): it is scheduled for maintenance.
    pub fn unavailable_from(&self) -> Option<i64> {
        self.extra
            .get("unavailability")?
            .get("start")?
            .get("nanoseconds")?
            .as_i64()
    }
}

/// "Please vacate this agent": the cluster's agent is scheduled for maintenance from
/// `start_ns` (Unix ns) and asks for its resources back. Accepting says nothing of ours
/// stands in the way.
#[derive(Debug, Clone, PartialEq)]
pub struct InverseOffer {
    pub id: OfferId,
    pub agent_id: AgentId,
    pub start_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub variables: Vec<EnvironmentVariable>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Uri {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    /// Default true in Mesos: archives are unpacked into the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CommandInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<Uri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Default true in Mesos: `value` runs under `/bin/sh -c` and `arguments` are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// With `shell: false`, the whole argv including argv[0].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl CommandInfo {
    pub fn is_shell(&self) -> bool {
        self.shell.unwrap_or(true)
    }

    /// The value of an environment variable set on the command.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment
            .as_ref()?
            .variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DurationInfo {
    pub nanoseconds: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct KillPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Labels {
    #[serde(default)]
    pub labels: Vec<Label>,
}

/// `ContainerInfo`, kept as Mesos JSON (type, docker, mesos.image, volumes, ...).
pub type ContainerInfo = Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    /// Set when the task is placed on an agent (empty until then).
    pub agent_id: AgentId,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_time: Option<DurationInfo>,
    /// Opaque bytes (base64 in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl TaskInfo {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .as_ref()?
            .labels
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }

    pub fn demand(&self) -> Demand {
        Demand::of(&self.resources)
    }

    /// Append a `Volume` to the task's container (a MESOS container when it has none).
    pub fn add_volume(&mut self, volume: Value) {
        let container = self
            .container
            .get_or_insert_with(|| serde_json::json!({"type": "MESOS"}));
        if let Some(obj) = container.as_object_mut() {
            let volumes = obj
                .entry("volumes")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = volumes.as_array_mut() {
                list.push(volume);
            }
        }
    }
}

/// Mesos `TaskState`. Unknown names (newer Mesos) decode as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    TaskStaging,
    TaskStarting,
    TaskRunning,
    TaskKilling,
    TaskFinished,
    TaskFailed,
    TaskKilled,
    TaskError,
    TaskLost,
    TaskDropped,
    TaskUnreachable,
    TaskGone,
    TaskGoneByOperator,
    #[serde(other)]
    TaskUnknown,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::TaskStaging => "TASK_STAGING",
            TaskState::TaskStarting => "TASK_STARTING",
            TaskState::TaskRunning => "TASK_RUNNING",
            TaskState::TaskKilling => "TASK_KILLING",
            TaskState::TaskFinished => "TASK_FINISHED",
            TaskState::TaskFailed => "TASK_FAILED",
            TaskState::TaskKilled => "TASK_KILLED",
            TaskState::TaskError => "TASK_ERROR",
            TaskState::TaskLost => "TASK_LOST",
            TaskState::TaskDropped => "TASK_DROPPED",
            TaskState::TaskUnreachable => "TASK_UNREACHABLE",
            TaskState::TaskGone => "TASK_GONE",
            TaskState::TaskGoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::TaskUnknown => "TASK_UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> TaskState {
        serde_json::from_value(Value::String(s.to_string())).unwrap_or(TaskState::TaskUnknown)
    }

    /// Mesos's `isTerminalState` (LOST and GONE_BY_OPERATOR may still come back).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// Base64; present when the update must be acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl TaskStatus {
    /// The exit code, when the backend reported one (`exit_code` label in `extra` for the
    /// local runner; parsed from "Command exited with status N" for Mesos).
    pub fn exit_code(&self) -> Option<i32> {
        if let Some(code) = self.extra.get("exit_code").and_then(Value::as_i64) {
            return Some(code as i32);
        }
        let msg = self.message.as_deref()?;
        let rest = msg.split("exited with status ").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit() && c != '-')
            .next()?
            .parse()
            .ok()
    }
}
