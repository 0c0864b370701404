//! Rendering: (job version, dispatch, group instance, task, attempt, payload) -> Mesos
//! `TaskInfo`.
//!
//! `render_task` is a pure function: no I/O, no clock, no randomness, so rendering the same
//! input twice gives identical `TaskInfo`s (a restarted scheduler re-derives what it launched).
//! The dispatch already holds the exact job version it was dispatched from.
//!
//! What goes where:
//! * `task_id`: `<dispatch id, / as .>.<group>.<instance>.<task>.<attempt>` (see `ids`);
//!   `name`: `<dispatch id>/<task>`; `agent_id` empty (the scheduler sets it at placement).
//! * `resources`: `task_demand(task).to_resources()`.
//! * `command`: from the driver config (see `command`), `${...}` interpolated (see
//!   `interpolate`); `environment` sorted by name; artifacts as fetcher `uris`.
//! * `container`: docker only (DOCKER or MESOS containerizer, volumes).
//! * `executor` (in `extra`): `mesos_executor` only, a CUSTOM executor (ID = the task ID,
//!   `CUSTOM_EXECUTOR` resources) carrying the command, uris and environment; the task then
//!   has no `command`.
//! * `data`: rendered templates and the payload as sandbox files (see `sandbox`).
//! * `kill_policy.grace_period` = `KillTimeout`; `max_completion_time` = group
//!   `MaxRunDuration`.
//! * `labels`: `dispatch.job`, `dispatch.parent`, `dispatch.group`, `dispatch.instance`,
//!   `dispatch.task`, `dispatch.attempt`, `dispatch.alloc`, `dispatch.driver`.
//!
//! Environment (later entries win): `NOMAD_META_<key>` and `NOMAD_META_<KEY>` for the
//! effective meta (job meta + dispatch meta, then group meta, then task meta, as in Nomad),
//! the `NOMAD_*` runtime variables, the task `env {}` (interpolated), then the variables of
//! `env = true` templates. `NOMAD_TASK_DIR`, `NOMAD_ALLOC_DIR` and `NOMAD_SECRETS_DIR` are
//! sandbox-relative (`local`, `alloc`, `secrets`) because commands run in the sandbox; the
//! backends export absolute values.

pub mod command;
pub mod ids;
pub mod interpolate;
pub mod sandbox;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;

use crate::cluster::types::{
    Demand, DurationInfo, Environment, EnvironmentVariable, Id, KillPolicy, Label, Labels, TaskInfo,
};
use crate::model::job::{Resources, Task, TaskGroup};
use crate::model::{Dispatch, Job, Meta};

pub use command::SUPPORTED_DRIVERS;
pub use ids::{alloc_id, alloc_key, executor_id, task_id, volume_id, VOLUME_PREFIX};
pub use sandbox::{SandboxFile, SandboxFiles};

/// Sandbox-relative task directories (Nomad's `local/`, `alloc/`, `secrets/`).
pub const TASK_DIR: &str = "local";
pub const ALLOC_DIR: &str = "alloc";
/// Where a group's sticky disk (a persistent volume on Mesos) appears in the task sandbox.
pub const VOLUME_DIR: &str = "data";
pub const SECRETS_DIR: &str = "secrets";
/// The datacenter every task reports (`NOMAD_DC`).
pub const DATACENTER: &str = "dc1";

/// Everything one launch of one task depends on.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    pub dispatch: &'a Dispatch,
    pub group: &'a TaskGroup,
    /// Group instance, 0-based (`NOMAD_ALLOC_INDEX`).
    pub instance: u32,
    pub task: &'a Task,
    /// Launch attempt, 1-based; every attempt gets its own task ID.
    pub attempt: u32,
    /// The decoded dispatch payload, when the dispatch has one.
    pub payload: Option<&'a [u8]>,
}

/// Where a problem is: job, group and task names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub job: String,
    pub group: String,
    pub task: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {:?}, group {:?}, task {:?}",
            self.job, self.group, self.task
        )
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "{at}: driver {driver:?} is not supported \
         (supported drivers: exec, raw_exec, docker, mesos_executor)"
    )]
    UnsupportedDriver { at: Box<Location>, driver: String },
    #[error("{at}: template {destination:?}: {message}")]
    Template {
        at: Box<Location>,
        destination: String,
        message: String,
    },
    #[error("{at}: {field}: {message}")]
    Invalid {
        at: Box<Location>,
        field: String,
        message: String,
    },
}

impl RenderError {
    fn invalid(at: &Location, field: impl Into<String>, message: impl Into<String>) -> Self {
        RenderError::Invalid {
            at: Box::new(at.clone()),
            field: field.into(),
            message: message.into(),
        }
    }

    fn template(at: &Location, destination: &str, message: impl Into<String>) -> Self {
        RenderError::Template {
            at: Box::new(at.clone()),
            destination: destination.to_string(),
            message: message.into(),
        }
    }
}

/// Resources of the custom executor of a `mesos_executor` task (on top of the task's own).
pub const CUSTOM_EXECUTOR: Demand = Demand {
    cpus: 0.1,
    mem_mb: 32.0,
    disk_mb: 0.0,
    gpus: 0.0,
};

/// The resources one task needs on an agent (cheap: no rendering), for queue fitting: the
/// task's own (`task_demand`) plus, for `mesos_executor`, its executor's (`CUSTOM_EXECUTOR`).
pub fn demand(_group: &TaskGroup, task: &Task) -> Demand {
    let own = task_demand(task);
    if task.driver == "mesos_executor" {
        own.add(&CUSTOM_EXECUTOR)
    } else {
        own
    }
}

/// The resources the task itself asks for (`TaskInfo.resources`).
///
/// cpus = `Cores` when set, else `CPU` MHz / 1000 (3 decimals); mem = `MemoryMB` (Nomad's
/// default 300 when unset); disk = `DiskMB` or 0; gpus = `GPUs` or 0.
pub fn task_demand(task: &Task) -> Demand {
    let default = Resources::default();
    let res = task.resources.as_ref().unwrap_or(&default);
    Demand {
        cpus: res.mesos_cpus(),
        mem_mb: res.memory_mb.unwrap_or(300).max(0) as f64,
        disk_mb: res.disk_mb.unwrap_or(0).max(0) as f64,
        gpus: res.gpus.unwrap_or(0).max(0) as f64,
    }
}

/// Effective meta of a task: job meta + dispatch meta (+ empty optional keys), then group
/// meta, then task meta (Nomad's precedence).
pub fn effective_meta(dispatch: &Dispatch, group: &TaskGroup, task: &Task) -> Meta {
    let mut meta = dispatch.merged_meta();
    for (k, v) in group.meta.iter().chain(task.meta.iter()) {
        meta.insert(k.clone(), v.clone());
    }
    meta
}

/// The variables a task sees before its own `env {}`: NOMAD_META_* and NOMAD_*.
fn runtime_env(input: &RenderInput, meta: &Meta) -> BTreeMap<String, String> {
    let d = input.dispatch;
    let job = &d.job;
    let mut env = BTreeMap::new();
    for (k, v) in meta {
        let key = interpolate::env_key(k);
        env.insert(format!("NOMAD_META_{key}"), v.clone());
        env.insert(
            format!("NOMAD_META_{}", key.to_ascii_uppercase()),
            v.clone(),
        );
    }
    let key = alloc_key(&d.id, &input.group.name, input.instance);
    let alloc = alloc_id(&key);
    let default = Resources::default();
    let res = input.task.resources.as_ref().unwrap_or(&default);
    let or = |s: &str, dflt: &str| {
        if s.is_empty() {
            dflt.to_string()
        } else {
            s.to_string()
        }
    };
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("NOMAD_JOB_ID", d.id.to_string());
    set("NOMAD_JOB_NAME", d.id.to_string());
    set("NOMAD_JOB_PARENT_ID", job.id.clone());
    set("NOMAD_GROUP_NAME", input.group.name.clone());
    set("NOMAD_TASK_NAME", input.task.name.clone());
    set("NOMAD_ALLOC_INDEX", input.instance.to_string());
    set("NOMAD_ALLOC_NAME", key);
    set("NOMAD_SHORT_ALLOC_ID", ids::short_alloc_id(&alloc));
    set("NOMAD_ALLOC_ID", alloc);
    set("NOMAD_NAMESPACE", or(&job.namespace, "default"));
    set("NOMAD_REGION", or(&job.region, "global"));
    set("NOMAD_DC", DATACENTER.to_string());
    let mhz = match (res.cores, res.cpu) {
        (Some(c), _) if c > 0 => c * 1000,
        (_, Some(mhz)) => mhz,
        _ => 100,
    };
    set("NOMAD_CPU_LIMIT", mhz.to_string());
    if let Some(cores) = res.cores.filter(|c| *c > 0) {
        set("NOMAD_CPU_CORES", cores.to_string());
    }
    set(
        "NOMAD_MEMORY_LIMIT",
        res.memory_mb.unwrap_or(300).to_string(),
    );
    if let Some(max) = res.memory_max_mb.filter(|m| *m > 0) {
        set("NOMAD_MEMORY_MAX_LIMIT", max.to_string());
    }
    set("NOMAD_TASK_DIR", TASK_DIR.to_string());
    set("NOMAD_ALLOC_DIR", ALLOC_DIR.to_string());
    set("NOMAD_SECRETS_DIR", SECRETS_DIR.to_string());
    env
}

/// Refuse a task whose driver no backend can run; hand the location back for later errors.
fn check_driver(task: &Task, at: Location) -> Result<Location, RenderError> {
    if SUPPORTED_DRIVERS.contains(&task.driver.as_str()) {
        Ok(at)
    } else {
        Err(RenderError::UnsupportedDriver {
            at: Box::new(at),
            driver: task.driver.clone(),
        })
    }
}

/// Render one launch of one task.
pub fn render_task(input: &RenderInput) -> Result<TaskInfo, RenderError> {
    let d = input.dispatch;
    let (group, task) = (input.group, input.task);
    let at = Location {
        job: d.id.to_string(),
        group: group.name.clone(),
        task: task.name.clone(),
    };
    let at = check_driver(task, at)?;

    // 1. Environment: runtime variables, then the task's own env (interpolated).
    let meta = effective_meta(d, group, task);
    let mut env = runtime_env(input, &meta);
    let task_env: Vec<(String, String)> = {
        let vars = interpolate::Vars {
            meta: &meta,
            env: &env,
        };
        task.env
            .iter()
            .map(|(k, v)| (k.clone(), interpolate::interpolate(v, &vars)))
            .collect()
    };
    env.extend(task_env);

    // 2. Templates (rendered against the env so far), then their env = true variables.
    let mut files = SandboxFiles::default();
    let mut template_env: Vec<(String, String)> = Vec::new();
    for tmpl in &task.templates {
        let vars = interpolate::Vars {
            meta: &meta,
            env: &env,
        };
        let raw_dest = &tmpl.dest_path;
        let dest = sandbox::normalize(&interpolate::interpolate(raw_dest, &vars))
            .map_err(|e| RenderError::template(&at, raw_dest, format!("destination {e}")))?;
        let mode =
            sandbox::mode(&tmpl.perms).map_err(|e| RenderError::template(&at, raw_dest, e))?;
        if tmpl.renders_after_fetch() {
            let source = sandbox::normalize(&interpolate::interpolate(&tmpl.source_path, &vars))
                .map_err(|e| RenderError::template(&at, raw_dest, format!("source {e}")))?;
            files.files.push(SandboxFile {
                path: dest,
                content: None,
                mode,
                source: Some(source),
                render_after_fetch: true,
                left_delimiter: Some(delim(&tmpl.left_delim, "{{")),
                right_delimiter: Some(delim(&tmpl.right_delim, "}}")),
            });
            continue;
        }
        let rendered = template::compile(&tmpl.embedded_tmpl, &tmpl.left_delim, &tmpl.right_delim)
            .and_then(|c| c.render(&env))
            .map_err(|e| RenderError::template(&at, raw_dest, e))?;
        if tmpl.envvars {
            let parsed = template::parse_env(&rendered)
                .map_err(|e| RenderError::template(&at, raw_dest, format!("env file {e}")))?;
            template_env.extend(parsed);
        }
        files
            .files
            .push(SandboxFile::new(dest, rendered.as_bytes(), mode));
    }
    env.extend(template_env);

    // 3. The payload.
    if let (Some(dp), Some(payload)) = (&task.dispatch_payload, input.payload) {
        if !dp.file.is_empty() && !payload.is_empty() {
            let vars = interpolate::Vars {
                meta: &meta,
                env: &env,
            };
            let file = interpolate::interpolate(&dp.file, &vars);
            let path = sandbox::normalize(&format!("{TASK_DIR}/{file}"))
                .map_err(|e| RenderError::invalid(&at, "dispatch_payload.file", e))?;
            files
                .files
                .push(SandboxFile::new(path, payload, "0644".into()));
        }
    }

    // 4. Command, container, artifacts.
    let vars = interpolate::Vars {
        meta: &meta,
        env: &env,
    };
    let config: indexmap::IndexMap<String, serde_json::Value> = task
        .config
        .iter()
        .map(|(k, v)| (k.clone(), interpolate::interpolate_value(v, &vars)))
        .collect();
    let built = command::build(&task.driver, &config)
        .map_err(|e| RenderError::invalid(&at, e.field, e.message))?
        .expect("driver checked above");
    let (mut command, container) = (built.command, built.container);
    for (i, art) in task.artifacts.iter().enumerate() {
        let options = art
            .getter_options
            .iter()
            .map(|(k, v)| (k.clone(), interpolate::interpolate(v, &vars)))
            .collect();
        let uri = sandbox::artifact_uri(
            &interpolate::interpolate(&art.getter_source, &vars),
            &interpolate::interpolate(&art.relative_dest, &vars),
            &art.getter_mode,
            &options,
        )
        .map_err(|e| RenderError::invalid(&at, format!("artifact[{i}]"), e))?;
        command.uris.push(uri);
    }
    if !task.user.is_empty() {
        command.user = Some(task.user.clone());
    }
    command.environment = Some(Environment {
        variables: env
            .into_iter()
            .map(|(name, value)| EnvironmentVariable { name, value })
            .collect(),
    });

    let name = format!("{}/{}", d.id, task.name);
    let id = task_id(
        &d.id,
        &group.name,
        input.instance,
        &task.name,
        input.attempt,
    );
    let mut extra = indexmap::IndexMap::new();
    let command = if built.custom_executor {
        // The executor runs the command (with the task's uris and environment); the task
        // itself carries only resources, data and labels.
        extra.insert(
            "executor".to_string(),
            serde_json::json!({
                "type": "CUSTOM",
                "executor_id": {"value": id},
                "name": format!("dispatch {name}"),
                "command": command,
                "resources": CUSTOM_EXECUTOR.to_resources(),
            }),
        );
        None
    } else {
        Some(command)
    };

    Ok(TaskInfo {
        name,
        task_id: Id::new(id),
        agent_id: Id::new(""),
        resources: task_demand(task).to_resources(),
        command,
        container,
        labels: Some(labels(input)),
        kill_policy: task.kill_timeout.filter(|ns| *ns > 0).map(|ns| KillPolicy {
            grace_period: Some(DurationInfo { nanoseconds: ns }),
        }),
        max_completion_time: group
            .max_run_duration
            .filter(|ns| *ns > 0)
            .map(|ns| DurationInfo { nanoseconds: ns }),
        data: files.encode(),
        extra,
    })
}

fn delim(d: &str, default: &str) -> String {
    if d.is_empty() {
        default.to_string()
    } else {
        d.to_string()
    }
}

fn labels(input: &RenderInput) -> Labels {
    let d = input.dispatch;
    let pairs = [
        ("dispatch.job", d.id.to_string()),
        ("dispatch.parent", d.job.id.clone()),
        ("dispatch.group", input.group.name.clone()),
        ("dispatch.instance", input.instance.to_string()),
        ("dispatch.task", input.task.name.clone()),
        ("dispatch.attempt", input.attempt.to_string()),
        (
            "dispatch.alloc",
            alloc_key(&d.id, &input.group.name, input.instance),
        ),
        ("dispatch.driver", input.task.driver.clone()),
    ];
    Labels {
        labels: pairs
            .into_iter()
            .map(|(k, v)| Label {
                key: k.to_string(),
                value: v,
            })
            .collect(),
    }
}

/// Registration check: every task of the job can be rendered as far as the job alone decides
/// (supported driver, required driver config present, templates compile, paths stay in the
/// sandbox, no empty `${}`). Errors name the group, task and template/field.
pub fn check_job(job: &Job) -> Result<(), RenderError> {
    // Paths are checked with the sandbox directories known; other references stay literal.
    let mut probe_env = BTreeMap::new();
    probe_env.insert("NOMAD_TASK_DIR".to_string(), TASK_DIR.to_string());
    probe_env.insert("NOMAD_ALLOC_DIR".to_string(), ALLOC_DIR.to_string());
    probe_env.insert("NOMAD_SECRETS_DIR".to_string(), SECRETS_DIR.to_string());
    let no_meta = Meta::new();
    let vars = interpolate::Vars {
        meta: &no_meta,
        env: &probe_env,
    };
    let path = |p: &str| sandbox::normalize(&interpolate::interpolate(p, &vars));

    for group in &job.task_groups {
        for task in &group.tasks {
            let at = Location {
                job: job.id.clone(),
                group: group.name.clone(),
                task: task.name.clone(),
            };
            let at = check_driver(task, at)?;
            for (k, v) in &task.config {
                interpolate::check_value(v)
                    .map_err(|e| RenderError::invalid(&at, format!("config.{k}"), e))?;
            }
            command::build(&task.driver, &task.config)
                .map_err(|e| RenderError::invalid(&at, e.field, e.message))?;
            for (k, v) in &task.env {
                interpolate::check(v)
                    .map_err(|e| RenderError::invalid(&at, format!("env.{k}"), e))?;
            }
            for (i, art) in task.artifacts.iter().enumerate() {
                let field = format!("artifact[{i}]");
                interpolate::check(&art.getter_source)
                    .and_then(|_| interpolate::check(&art.relative_dest))
                    .map_err(|e| RenderError::invalid(&at, &field, e))?;
                if art.getter_source.trim().is_empty() {
                    return Err(RenderError::invalid(&at, &field, "source is empty"));
                }
                let dest = if art.relative_dest.is_empty() {
                    "local/"
                } else {
                    &art.relative_dest
                };
                let dest = interpolate::interpolate(dest, &vars);
                let checked = if art.getter_mode == "file" {
                    sandbox::normalize(&dest)
                } else if matches!(art.getter_mode.as_str(), "" | "any" | "dir") {
                    sandbox::normalize_dir(&dest)
                } else {
                    Err(format!(
                        "mode {:?} is not supported (allowed: any, file, dir)",
                        art.getter_mode
                    ))
                };
                checked.map_err(|e| RenderError::invalid(&at, &field, e))?;
            }
            for tmpl in &task.templates {
                let dest = &tmpl.dest_path;
                if dest.trim().is_empty() {
                    return Err(RenderError::template(&at, dest, "destination is required"));
                }
                interpolate::check(dest).map_err(|e| RenderError::template(&at, dest, e))?;
                path(dest)
                    .map_err(|e| RenderError::template(&at, dest, format!("destination {e}")))?;
                sandbox::mode(&tmpl.perms).map_err(|e| RenderError::template(&at, dest, e))?;
                if tmpl.renders_after_fetch() {
                    path(&tmpl.source_path)
                        .map_err(|e| RenderError::template(&at, dest, format!("source {e}")))?;
                    if tmpl.envvars {
                        return Err(RenderError::template(
                            &at,
                            dest,
                            "env = true needs inline data: a source template is only rendered \
                             after the fetch, when the environment is already set",
                        ));
                    }
                    continue;
                }
                template::compile(&tmpl.embedded_tmpl, &tmpl.left_delim, &tmpl.right_delim)
                    .map_err(|e| RenderError::template(&at, dest, e))?;
            }
            if let Some(dp) = &task.dispatch_payload {
                if !dp.file.is_empty() {
                    path(&format!("{TASK_DIR}/{}", dp.file))
                        .map_err(|e| RenderError::invalid(&at, "dispatch_payload.file", e))?;
                }
            }
        }
    }
    Ok(())
}
