//! Mesosfiles (mesos-cli `run`) and task lists (mesos-batch `--task_list`): Mesos v1
//! `TaskInfo` entries in snake_case, YAML or JSON.
//!
//! Mapping to the job model:
//! * `command.value` with `shell` (default true) → driver `raw_exec`, `/bin/sh -c value`;
//!   `shell: false` → `command = value`, `args = arguments[1..]` (Mesos `arguments` is the
//!   whole argv).
//! * a container image → driver `docker`: `container.docker.image` (type DOCKER) with the
//!   Docker containerizer (`network` → `network_mode`, `privileged`, `force_pull_image` →
//!   `force_pull`, `parameters` → `parameters`); `container.mesos.image.docker.name` (type
//!   MESOS) with `containerizer = "mesos"` (`cached: false` → `force_pull`). `port_mappings`
//!   are refused: tasks get no port resources, so a mapping could not be honoured.
//! * `command.uris` → artifacts fetched into the sandbox (`output_file`, else the URL's last
//!   path segment; `extract`, default true; `executable`; `cache`, the agent's fetcher cache
//!   on Mesos, ignored by the local runner).
//! * `environment.variables` → env; `user` → user.
//! * `resources` as Mesos resources (`[{name, type, scalar{value}}]`) or a map
//!   `{cpus, mem, disk, gpus}`; missing → 0.1 cpu, 64 MB mem, 64 MB disk.
//! * `volumes` with `host_path` on an image task → `volumes = ["host:container[:ro]"]` (bind
//!   mounts into the container). On a task without image: on the local runner the task sees
//!   host paths directly. A relative `container_path` becomes a symlink in the sandbox to
//!   `host_path` (shell commands); an absolute one must equal `host_path`.
//!
//! Anything that would change behaviour and is not implemented is an error naming the field.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Batch, Item};
use crate::model::job::{Artifact, Resources, Task};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ignored: Dispatch names its own Mesos task IDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<Value>,
    /// Ignored (may be empty): the scheduler places tasks on offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<UriSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[serde(default)]
    pub variables: Vec<Variable>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UriSpec {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesos: Option<MesosContainer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MesosContainer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSpec {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    pub host_port: u32,
    pub container_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResourcesSpec {
    List(Vec<ResourceSpec>),
    Map(IndexMap<String, f64>),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scalar {
    pub value: f64,
}

/// YAML or JSON text → a JSON value.
fn load(content: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(content) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            let looks_json = content.trim_start().starts_with(['{', '[']);
            match serde_yaml_ng::from_str::<Value>(content) {
                Ok(v) => Ok(v),
                Err(_) if looks_json => Err(format!("invalid JSON: {json_err}")),
                Err(e) => Err(format!("invalid YAML: {e}")),
            }
        }
    }
}

/// A Mesosfile: a list of entries; an entry `{tasks: [...]}` is a group.
pub fn parse_mesosfile(content: &str) -> Result<Batch, String> {
    let value = load(content)?;
    let Value::Array(entries) = value else {
        return Err("a Mesosfile is a list of tasks (YAML or JSON)".into());
    };
    let mut batch = Batch::default();
    let mut n = 0;
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("entry {}", i + 1);
        match entry {
            Value::Object(mut map) if map.contains_key("tasks") => {
                if let Some(k) = map.keys().find(|k| *k != "tasks" && *k != "name") {
                    return Err(format!(
                        "{at}: unknown field {k:?} in a group (only tasks, name)"
                    ));
                }
                let Some(Value::Array(tasks)) = map.remove("tasks") else {
                    return Err(format!("{at}: tasks must be a list"));
                };
                let mut item = Item::default();
                for (j, t) in tasks.into_iter().enumerate() {
                    n += 1;
                    item.tasks.push(convert_value(
                        t,
                        &format!("{at}, task {}", j + 1),
                        n,
                        &mut batch.notes,
                    )?);
                }
                batch.items.push(item);
            }
            other => {
                n += 1;
                let task = convert_value(other, &at, n, &mut batch.notes)?;
                batch.items.push(Item { tasks: vec![task] });
            }
        }
    }
    Ok(batch)
}

/// A mesos-batch task list: `{"tasks": [TaskInfo...]}`; each task launches on its own.
pub fn parse_task_list(content: &str) -> Result<Batch, String> {
    let value: Value =
        serde_json::from_str(content).map_err(|e| format!("invalid task list JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("a task list is a JSON object {\"tasks\": [...]}".into());
    };
    let Some(Value::Array(tasks)) = map.remove("tasks") else {
        return Err("a task list needs \"tasks\": [...]".into());
    };
    let mut batch = Batch::default();
    for (i, t) in tasks.into_iter().enumerate() {
        let task = convert_value(t, &format!("task {}", i + 1), i + 1, &mut batch.notes)?;
        batch.items.push(Item { tasks: vec![task] });
    }
    Ok(batch)
}

fn convert_value(v: Value, at: &str, n: usize, notes: &mut Vec<String>) -> Result<Task, String> {
    let entry: TaskEntry = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("{at}: {}", e.inner())
        } else {
            format!("{at}: {path}: {}", e.inner())
        }
    })?;
    convert(&entry, n, notes).map_err(|e| format!("{at}: {e}"))
}

/// An entry's image and containerizer.
struct Image {
    name: String,
    /// The Mesos containerizer (`container.mesos.image`).
    mesos: bool,
    /// `mesos.image.cached: false`.
    force_pull: bool,
}

/// The image of an entry, if any.
fn image_of(c: &ContainerSpec) -> Result<Option<Image>, String> {
    let kind = c.kind.as_deref().unwrap_or("MESOS").to_ascii_uppercase();
    let mesos_image = c
        .mesos
        .as_ref()
        .and_then(|m| m.image.as_ref())
        .and_then(|i| i.pointer("/docker/name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let docker_image = c
        .docker
        .as_ref()
        .map(|d| d.image.as_str())
        .filter(|s| !s.is_empty());
    let image = |name: &str, mesos: bool| Image {
        name: name.to_string(),
        mesos,
        force_pull: mesos
            && c.mesos
                .as_ref()
                .and_then(|m| m.image.as_ref())
                .and_then(|i| i.get("cached"))
                .and_then(Value::as_bool)
                == Some(false),
    };
    match kind.as_str() {
        "DOCKER" => docker_image
            .map(|s| Some(image(s, false)))
            .ok_or_else(|| "container.docker.image is required for type DOCKER".to_string()),
        "MESOS" => Ok(mesos_image
            .map(|s| image(s, true))
            .or(docker_image.map(|s| image(s, false)))),
        other => Err(format!(
            "container.type {other:?} is not supported (MESOS or DOCKER)"
        )),
    }
}

/// One `TaskInfo` entry → a task.
pub fn convert(entry: &TaskEntry, n: usize, notes: &mut Vec<String>) -> Result<Task, String> {
    let name = entry
        .name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("task-{n}"));
    let mut task = Task {
        name: name.clone(),
        ..Task::default()
    };
    let command = entry.command.clone().unwrap_or_default();
    let container = entry.container.clone().unwrap_or_default();
    let image = image_of(&container)?;
    let shell = command.shell.unwrap_or(true);
    let value = command.value.clone().filter(|v| !v.trim().is_empty());
    let mut prefix = String::new();

    // Volumes.
    let mut image_volumes: Vec<Value> = Vec::new();
    for (i, vol) in container.volumes.iter().enumerate() {
        let field = format!("container.volumes[{i}]");
        let Some(host) = vol.host_path.as_deref().filter(|h| !h.is_empty()) else {
            return Err(format!(
                "{field}: only host_path volumes are supported (no image, secret or persistent volumes)"
            ));
        };
        let read_only = match vol.mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("RW") => false,
            Some("RO") => true,
            Some(other) => return Err(format!("{field}.mode {other:?}: expected RW or RO")),
        };
        if image.is_some() {
            let suffix = if read_only { ":ro" } else { "" };
            image_volumes.push(Value::String(format!(
                "{host}:{}{suffix}",
                vol.container_path
            )));
            continue;
        }
        if read_only {
            notes.push(format!(
                "{name}: {field}: mode RO is not enforced on the local runner (the task sees {host} directly)"
            ));
        }
        let cp = vol.container_path.trim_end_matches('/');
        if cp.starts_with('/') {
            if cp != host.trim_end_matches('/') {
                return Err(format!(
                    "{field}: container_path {cp:?} differs from host_path {host:?}; without a container image the task sees host paths directly: use container_path = host_path, or a relative container_path (linked into the sandbox)"
                ));
            }
        } else {
            if !shell {
                return Err(format!(
                    "{field}: a relative container_path needs a shell command (shell: true)"
                ));
            }
            if cp.is_empty() || cp.split('/').any(|s| s == "..") {
                return Err(format!(
                    "{field}: container_path {cp:?} must stay inside the sandbox"
                ));
            }
            prefix.push_str(&format!(
                "mkdir -p {h} \"$(dirname {c})\" && ln -sfn {h} {c} && ",
                h = sh_quote(host),
                c = sh_quote(cp)
            ));
        }
    }

    // Command and container.
    let mut config: IndexMap<String, Value> = IndexMap::new();
    if let Some(image) = &image {
        task.driver = "docker".into();
        config.insert("image".into(), Value::String(image.name.clone()));
        if image.mesos {
            config.insert("containerizer".into(), "mesos".into());
            if image.force_pull {
                config.insert("force_pull".into(), Value::Bool(true));
            }
        }
        if !image_volumes.is_empty() {
            config.insert("volumes".into(), Value::Array(image_volumes));
        }
        if let Some(d) = &container.docker {
            if !d.port_mappings.is_empty() {
                return Err(
                    "container.docker.port_mappings are not supported: tasks get no port \
                            resources from the offer, so a host port could not be reserved \
                            (use network HOST and pick ports in the task)"
                        .into(),
                );
            }
            if !d.parameters.is_empty() {
                config.insert(
                    "parameters".into(),
                    Value::Array(
                        d.parameters
                            .iter()
                            .map(|p| serde_json::json!({"key": p.key, "value": p.value}))
                            .collect(),
                    ),
                );
            }
            if let Some(net) = &d.network {
                let mode = match net.to_ascii_uppercase().as_str() {
                    "HOST" => "host",
                    "BRIDGE" => "bridge",
                    "NONE" => "none",
                    other => {
                        return Err(format!(
                        "container.docker.network {other:?} is not supported (HOST, BRIDGE, NONE)"
                    ))
                    }
                };
                config.insert("network_mode".into(), Value::String(mode.into()));
            }
            if let Some(p) = d.privileged {
                config.insert("privileged".into(), Value::Bool(p));
            }
            if let Some(p) = d.force_pull_image {
                config.insert("force_pull".into(), Value::Bool(p));
            }
        }
        if let Some(value) = &value {
            if shell {
                config.insert("command".into(), "/bin/sh".into());
                config.insert("args".into(), serde_json::json!(["-c", value]));
            } else {
                config.insert("command".into(), Value::String(value.clone()));
                config.insert(
                    "args".into(),
                    serde_json::json!(command.arguments.iter().skip(1).collect::<Vec<_>>()),
                );
            }
        }
    } else {
        task.driver = "raw_exec".into();
        let Some(value) = &value else {
            return Err("command.value is required (a task without a container image)".into());
        };
        if shell {
            config.insert("command".into(), "/bin/sh".into());
            config.insert(
                "args".into(),
                serde_json::json!(["-c", format!("{prefix}{value}")]),
            );
        } else {
            config.insert("command".into(), Value::String(value.clone()));
            config.insert(
                "args".into(),
                serde_json::json!(command.arguments.iter().skip(1).collect::<Vec<_>>()),
            );
        }
    }
    task.config = config;
    if let Some(user) = &command.user {
        task.user = user.clone();
    }
    for var in command.environment.iter().flat_map(|e| &e.variables) {
        if let Some(kind) = var.kind.as_deref() {
            if !kind.eq_ignore_ascii_case("VALUE") {
                return Err(format!(
                    "command.environment.variables {:?}: type {kind} is not supported (VALUE only)",
                    var.name
                ));
            }
        }
        task.env.insert(var.name.clone(), var.value.clone());
    }
    for (i, uri) in command.uris.iter().enumerate() {
        let dest = match uri.output_file.as_deref().filter(|s| !s.is_empty()) {
            Some(f) => f.to_string(),
            None => {
                let path = uri.value.split(['?', '#']).next().unwrap_or_default();
                let last = path.rsplit('/').next().unwrap_or_default();
                if last.is_empty() {
                    return Err(format!(
                        "command.uris[{i}]: cannot derive a file name from {:?}: set output_file",
                        uri.value
                    ));
                }
                last.to_string()
            }
        };
        let mut options = IndexMap::new();
        if uri.extract == Some(false) {
            options.insert("archive".to_string(), "false".to_string());
        }
        if uri.executable == Some(true) {
            options.insert("executable".to_string(), "true".to_string());
        }
        if uri.cache == Some(true) {
            options.insert("cache".to_string(), "true".to_string());
        }
        task.artifacts.push(Artifact {
            getter_source: uri.value.clone(),
            relative_dest: dest,
            getter_mode: "file".into(),
            getter_options: options,
            ..Artifact::default()
        });
    }
    task.resources = Some(resources(entry.resources.as_ref(), notes, &name)?);
    Ok(task)
}

fn resources(
    spec: Option<&ResourcesSpec>,
    notes: &mut Vec<String>,
    name: &str,
) -> Result<Resources, String> {
    let (mut cpus, mut mem, mut disk, mut gpus) = (0.1, 64.0, 64.0, 0.0);
    let mut set = |key: &str, value: f64| -> Result<(), String> {
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "resources.{key}: {value} must be a non-negative number"
            ));
        }
        match key {
            "cpus" => cpus = value,
            "mem" => mem = value,
            "disk" => disk = value,
            "gpus" => gpus = value,
            other => {
                return Err(format!(
                    "resources: {other:?} is not supported (cpus, mem, disk, gpus)"
                ))
            }
        }
        Ok(())
    };
    match spec {
        None => {}
        Some(ResourcesSpec::Map(map)) => {
            for (k, v) in map {
                set(k, *v)?;
            }
        }
        Some(ResourcesSpec::List(list)) => {
            for r in list {
                let Some(scalar) = &r.scalar else {
                    return Err(format!(
                        "resources: {:?} is not a SCALAR resource (ranges and sets, e.g. ports, are not supported)",
                        r.name
                    ));
                };
                if let Some(role) = &r.role {
                    let note = format!(
                        "{name}: resource role {role:?} applies when the server runs against Mesos; ignored by the local runner"
                    );
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                set(&r.name, scalar.value)?;
            }
        }
    }
    if mem < 10.0 {
        notes.push(format!(
            "{name}: mem {mem} MB raised to 10 MB (the server's minimum)"
        ));
        mem = 10.0;
    }
    if gpus.fract() != 0.0 {
        return Err(format!("resources.gpus: {gpus} must be a whole number"));
    }
    Ok(Resources {
        cpu: Some((cpus * 1000.0).round().max(1.0) as i64),
        memory_mb: Some(mem.ceil().max(1.0) as i64),
        disk_mb: Some(disk.ceil() as i64),
        gpus: (gpus > 0.0).then_some(gpus as i64),
        ..Resources::default()
    })
}

/// Single-quote for `/bin/sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_default_and_defaults() {
        let b = parse_mesosfile("- name: a\n  command: {value: echo hi}\n").unwrap();
        let t = &b.items[0].tasks[0];
        assert_eq!(t.driver, "raw_exec");
        assert_eq!(t.config["command"], "/bin/sh");
        assert_eq!(t.config["args"][1], "echo hi");
        let r = t.resources.as_ref().unwrap();
        assert_eq!(
            (r.cpu, r.memory_mb, r.disk_mb),
            (Some(100), Some(64), Some(64))
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = parse_mesosfile("- name: a\n  command: {value: x, bogus: 1}\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn resources_list_and_image() {
        let b = parse_mesosfile(
            r#"[{"name":"d","container":{"type":"DOCKER","docker":{"image":"alpine"}},
                "command":{"value":"true"},
                "resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":2.5}}]}]"#,
        )
        .unwrap();
        let t = &b.items[0].tasks[0];
        assert_eq!(t.driver, "docker");
        assert_eq!(t.config["image"], "alpine");
        assert_eq!(t.resources.as_ref().unwrap().cpu, Some(2500));
    }

    #[test]
    fn mesos_image_volumes_and_parameters() {
        let b = parse_mesosfile(
            r#"[{"name":"u","command":{"value":"ls /media"},
                 "container":{"type":"MESOS",
                              "mesos":{"image":{"type":"DOCKER","docker":{"name":"alpine"},"cached":false}},
                              "volumes":[{"container_path":"/media","host_path":"/srv/media","mode":"RO"},
                                         {"container_path":"/out","host_path":"/srv/out"}]}},
                {"name":"d","command":{"value":"true"},
                 "container":{"type":"DOCKER",
                              "docker":{"image":"alpine","parameters":[{"key":"memory","value":"1g"}]}}}]"#,
        )
        .unwrap();
        let t = &b.items[0].tasks[0];
        assert_eq!(t.driver, "docker");
        assert_eq!(t.config["image"], "alpine");
        assert_eq!(t.config["containerizer"], "mesos");
        assert_eq!(t.config["force_pull"], true);
        assert_eq!(
            t.config["volumes"],
            serde_json::json!(["/srv/media:/media:ro", "/srv/out:/out"])
        );
        assert_eq!(t.config["command"], "/bin/sh");
        assert!(b.notes.is_empty(), "{:?}", b.notes);
        let t = &b.items[1].tasks[0];
        assert!(t.config.get("containerizer").is_none());
        assert_eq!(
            t.config["parameters"],
            serde_json::json!([{"key": "memory", "value": "1g"}])
        );
        // Both render (and pass the registration check).
        for item in &b.items {
            for task in &item.tasks {
                crate::render::command::build(&task.driver, &task.config)
                    .unwrap()
                    .unwrap();
            }
        }
    }

    #[test]
    fn port_mappings_are_refused_with_the_reason() {
        let e = parse_mesosfile(
            r#"[{"name":"d","command":{"value":"true"},
                 "container":{"type":"DOCKER","docker":{"image":"alpine","network":"BRIDGE",
                   "port_mappings":[{"host_port":8080,"container_port":80}]}}}]"#,
        )
        .unwrap_err();
        assert!(e.contains("port_mappings") && e.contains("port"), "{e}");
        assert!(e.contains("no port resources"), "{e}");
    }
}
