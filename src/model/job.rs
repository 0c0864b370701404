//! The job template: what an operator registers.
//!
//! `Job` has the shape of Nomad's API job (`{"Job": {...}}`, PascalCase keys), because that
//! JSON is our canonical serialisation: the HTTP API speaks it, the store keeps it, and HCL
//! job files are converted into it by `spec`. Fields Nomad has but Dispatch does not use
//! (constraints, services, networks, ...) are kept verbatim in `extra` so a job read back is
//! the job that was written.
//!
//! Runtime interpolations (`${NOMAD_META_input}`, `${node.unique.id}`, ...) are plain text
//! here; `render` expands them per dispatch. Nothing in this module evaluates them.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::nullable;

/// Nomad's default job priority.
pub const DEFAULT_PRIORITY: i64 = 50;
/// Highest priority a job or a dispatch may carry (Nomad's `job_max_priority` default).
pub const MAX_PRIORITY: i64 = 100;
/// Largest decoded dispatch payload, in bytes (Nomad's `DispatchPayloadSizeLimit`).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// A free-form map of string metadata (`meta {}` blocks, `Meta` in JSON).
pub type Meta = IndexMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Job {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    pub region: String,
    /// `service` (Nomad's default when omitted), `batch`, `sysbatch` or `system`.
    #[serde(default, deserialize_with = "nullable")]
    pub r#type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub priority: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub datacenters: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub node_pool: String,
    /// Job-level meta; for a parameterized job these are the defaults that dispatch meta
    /// is merged over.
    #[serde(default, deserialize_with = "nullable")]
    pub meta: Meta,
    #[serde(rename = "ParameterizedJob", default)]
    pub parameterized: Option<Parameterized>,
    #[serde(default, deserialize_with = "nullable")]
    pub task_groups: Vec<TaskGroup>,
    /// True once the job has been stopped (`DELETE /v1/job/:id`, `dispatch job stop`).
    #[serde(default, deserialize_with = "nullable")]
    pub stop: bool,

    // ---- server-owned fields: ignored on register, filled in on read ----
    #[serde(rename = "ParentID", default, deserialize_with = "nullable")]
    pub parent_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dispatched: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub status_description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub submit_time: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub create_index: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub modify_index: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub job_modify_index: u64,
    /// Base64 of the dispatch payload (children only).
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dispatch_idempotency_token: String,

    /// Every other Nomad field (Constraints, Periodic, Update, ...), kept as written.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// The `parameterized {}` block: what a dispatch must and may send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameterized {
    /// `optional` (default), `required` or `forbidden`.
    #[serde(default, deserialize_with = "nullable")]
    pub payload: String,
    #[serde(default, deserialize_with = "nullable")]
    pub meta_required: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub meta_optional: Vec<String>,
    /// Dispatch extension: at most this many children of the job run at once; the rest wait
    /// queued. 0 = no limit.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub max_running: u32,
    /// Dispatch extension: what each meta key means, shown beside its field in the UI's
    /// dispatch form (`meta_descriptions = { input = "..." }`; JSON `MetaDescriptions`).
    /// Keys are keys of `meta_required` or `meta_optional`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub meta_descriptions: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroup {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Instances of the group per (dispatched) job. Nomad allows 0.
    #[serde(default)]
    pub count: Option<i64>,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default)]
    pub reschedule_policy: Option<ReschedulePolicy>,
    #[serde(default)]
    pub ephemeral_disk: Option<EphemeralDisk>,
    #[serde(default, deserialize_with = "nullable")]
    pub meta: Meta,
    /// Wall-clock limit of one run of the group, in nanoseconds (Nomad 2.0 `max_run_duration`).
    #[serde(default)]
    pub max_run_duration: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub tasks: Vec<Task>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default)]
    pub attempts: Option<i64>,
    /// Nanoseconds.
    #[serde(default)]
    pub interval: Option<i64>,
    /// Nanoseconds.
    #[serde(default)]
    pub delay: Option<i64>,
    /// `fail` or `delay`.
    #[serde(default, deserialize_with = "nullable")]
    pub mode: String,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReschedulePolicy {
    #[serde(default)]
    pub attempts: Option<i64>,
    /// Nanoseconds.
    #[serde(default)]
    pub interval: Option<i64>,
    /// Nanoseconds.
    #[serde(default)]
    pub delay: Option<i64>,
    /// `constant`, `exponential` or `fibonacci`.
    #[serde(default, deserialize_with = "nullable")]
    pub delay_function: String,
    /// Nanoseconds.
    #[serde(default)]
    pub max_delay: Option<i64>,
    #[serde(default)]
    pub unlimited: Option<bool>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralDisk {
    #[serde(rename = "SizeMB", default)]
    pub size_mb: Option<i64>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl EphemeralDisk {
    /// `sticky = true`: the data outlives each allocation (on Mesos: a persistent volume).
    pub fn sticky(&self) -> bool {
        self.extra.get("Sticky").and_then(Value::as_bool) == Some(true)
    }
}

impl TaskGroup {
    /// Size in MB of the group's sticky disk (a persistent volume on Mesos), if it has one.
    pub fn sticky_disk_mb(&self) -> Option<f64> {
        let disk = self.ephemeral_disk.as_ref().filter(|d| d.sticky())?;
        Some(disk.size_mb.unwrap_or(300).max(1) as f64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// `exec`, `raw_exec`, `docker`, ...
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    /// Driver config, free-form (`command`, `args`, `image`, ...), kept as written.
    #[serde(default, deserialize_with = "nullable")]
    pub config: IndexMap<String, Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub env: IndexMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub meta: Meta,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default, deserialize_with = "nullable")]
    pub artifacts: Vec<Artifact>,
    #[serde(default, deserialize_with = "nullable")]
    pub templates: Vec<Template>,
    #[serde(default)]
    pub dispatch_payload: Option<DispatchPayload>,
    /// Nanoseconds between SIGTERM and SIGKILL.
    #[serde(default)]
    pub kill_timeout: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub kill_signal: String,
    #[serde(default)]
    pub lifecycle: Option<Lifecycle>,
    #[serde(default, deserialize_with = "nullable")]
    pub leader: bool,
    /// Dispatch extension (`depends_on = ["fetch"]`): start only after these tasks of the same
    /// group FINISHED. Tasks without it follow Nomad's lifecycle: prestart, then main, then
    /// poststop.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub depends_on: Vec<String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// What one task asks for. Nomad units: `CPU` in MHz, memory and disk in MB.
///
/// The cpu rule (see ARCHITECTURE.md): Mesos `cpus` = `Cores` when set, otherwise
/// `CPU / 1000` (1000 MHz = 1.0 cpu), rounded to 3 decimals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resources {
    #[serde(rename = "CPU", default)]
    pub cpu: Option<i64>,
    #[serde(default)]
    pub cores: Option<i64>,
    #[serde(rename = "MemoryMB", default)]
    pub memory_mb: Option<i64>,
    #[serde(rename = "MemoryMaxMB", default)]
    pub memory_max_mb: Option<i64>,
    /// Dispatch extension (Nomad keeps disk on the group's `EphemeralDisk`).
    #[serde(rename = "DiskMB", default)]
    pub disk_mb: Option<i64>,
    /// Dispatch extension: whole GPUs (Mesos `gpus`).
    #[serde(rename = "GPUs", default)]
    pub gpus: Option<i64>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Artifact {
    #[serde(default, deserialize_with = "nullable")]
    pub getter_source: String,
    #[serde(default, deserialize_with = "nullable")]
    pub relative_dest: String,
    /// `any`, `file` or `dir`.
    #[serde(default, deserialize_with = "nullable")]
    pub getter_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub getter_options: IndexMap<String, String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Template {
    /// Inline template text (`data`).
    #[serde(default, deserialize_with = "nullable")]
    pub embedded_tmpl: String,
    /// A file in the task dir to render instead (`source`).
    #[serde(default, deserialize_with = "nullable")]
    pub source_path: String,
    /// Where the rendered file goes, relative to the task dir (`destination`).
    #[serde(default, deserialize_with = "nullable")]
    pub dest_path: String,
    /// Parse the rendered file as `KEY=value` lines into the task env (`env`).
    #[serde(default, deserialize_with = "nullable")]
    pub envvars: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub perms: String,
    #[serde(default, deserialize_with = "nullable")]
    pub change_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub left_delim: String,
    #[serde(default, deserialize_with = "nullable")]
    pub right_delim: String,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Template {
    /// A `source` template: its text arrives with the task's artifacts, so it can only be
    /// rendered in the sandbox, after the fetch.
    pub fn renders_after_fetch(&self) -> bool {
        self.embedded_tmpl.is_empty() && !self.source_path.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatchPayload {
    /// File name relative to the task's `local/` dir.
    #[serde(default, deserialize_with = "nullable")]
    pub file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Lifecycle {
    #[serde(default, deserialize_with = "nullable")]
    pub hook: String,
    #[serde(default, deserialize_with = "nullable")]
    pub sidecar: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Job {
    /// True for a registered template that can be dispatched (Nomad's `IsParameterized`).
    pub fn is_parameterized(&self) -> bool {
        self.parameterized.is_some() && !self.dispatched
    }

    /// Nomad's `Canonicalize`: fill in the defaults a client may omit.
    pub fn canonicalize(&mut self) {
        if self.name.is_empty() {
            self.name = self.id.clone();
        }
        if self.namespace.is_empty() {
            self.namespace = "default".into();
        }
        if self.region.is_empty() {
            self.region = "global".into();
        }
        if self.r#type.is_empty() {
            self.r#type = "service".into();
        }
        if self.priority == 0 {
            self.priority = DEFAULT_PRIORITY;
        }
        if self.datacenters.is_empty() {
            self.datacenters = vec!["*".into()];
        }
        if self.node_pool.is_empty() {
            self.node_pool = "default".into();
        }
        if let Some(p) = &mut self.parameterized {
            if p.payload.is_empty() {
                p.payload = "optional".into();
            }
        }
        for group in &mut self.task_groups {
            if group.count.is_none() {
                group.count = Some(1);
            }
            for task in &mut group.tasks {
                let res = task.resources.get_or_insert_with(Resources::default);
                if res.cpu.is_none() && res.cores.is_none() {
                    res.cpu = Some(100);
                }
                if res.memory_mb.is_none() {
                    res.memory_mb = Some(300);
                }
                if task.kill_timeout.is_none() {
                    task.kill_timeout = Some(5_000_000_000);
                }
            }
        }
    }
}

impl Resources {
    /// Mesos `cpus` for this task: `Cores` when set, else `CPU` MHz / 1000, 3 decimals.
    pub fn mesos_cpus(&self) -> f64 {
        let cpus = match (self.cores, self.cpu) {
            (Some(cores), _) if cores > 0 => cores as f64,
            (_, Some(mhz)) => mhz as f64 / 1000.0,
            _ => 0.1,
        };
        (cpus * 1000.0).round() / 1000.0
    }
}

/// A parameterized batch job `id` with one `raw_exec` task running `true` (unit tests).
#[cfg(test)]
pub(crate) fn test_job(id: &str) -> Job {
    let hcl = format!(
        r#"job "{id}" {{
  type = "batch"
  parameterized {{}}
  group "g" {{
    task "t" {{
      driver = "raw_exec"
      config {{ command = "true" }}
    }}
  }}
}}"#
    );
    crate::spec::parse_job(&hcl, "test.hcl")
        .expect("the test job parses")
        .job
}
