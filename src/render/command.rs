//! Driver config -> Mesos `CommandInfo` (and `ContainerInfo` for docker, or the custom
//! executor's command for `mesos_executor`).
//!
//! * `exec`, `raw_exec`: `config.command` + `config.args`. With args (or a plain command) the
//!   command runs without a shell: `shell: false`, `value` = command, `arguments` = the full
//!   argv `[command, args...]`. A command without args that contains spaces or shell
//!   metacharacters (`"tar xzf a.tgz && ./run"`) runs under `/bin/sh -c` (`shell` true).
//! * `docker` with `containerizer = "docker"` (the default):
//!   `container = {"type": "DOCKER", "docker": {"image", "network": "HOST", ...}}`.
//!   The Docker containerizer runs `docker run <image> <value> <arguments...>` (arguments are
//!   appended whole, there is no argv[0] slot), which is exactly Nomad's `command` + `args`
//!   overriding the image CMD: the list `[command?, args...]` becomes `value` (its first
//!   element) and `arguments` (the rest); with neither, `{"shell": false}` keeps the image's
//!   entrypoint and CMD. Mapped config keys: `image` (required), `command`, `args`,
//!   `entrypoint` (first element -> `--entrypoint` parameter, the rest lead the command),
//!   `network_mode` (host, bridge, none), `privileged`, `force_pull`, `work_dir`, `labels`,
//!   `hostname`, `parameters` (extra `docker run` options: a map `{memory = "1g"}` or a list
//!   of `{key, value}`, after the derived ones), `volumes`. Other keys (ports, logging, auth,
//!   ...) are ignored.
//! * `docker` with `containerizer = "mesos"`: the Mesos (UCR) containerizer pulls the image,
//!   `container = {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name"},
//!   "cached": !force_pull}}}`. The command runs without a shell as the full argv
//!   `entrypoint ++ [command] ++ args` (`value` = argv[0], `arguments` = argv): `command` or
//!   `entrypoint` is required (the command executor needs a program). `parameters`,
//!   `privileged`, `work_dir`, `hostname` and a `network_mode` other than host are Docker
//!   containerizer options and are refused; `labels` are ignored. Such tasks may share a task
//!   group; Docker containerizer tasks launch on their own.
//! * `volumes = ["/host:/container", "/host2:/c2:ro"]` (Nomad's syntax, both containerizers):
//!   `container.volumes = [{"container_path", "host_path", "mode": "RW" | "RO"}]`. Both paths
//!   must be absolute.
//! * `mesos_executor`: the task runs under a custom executor (the seed Java framework's
//!   pattern). `config.command` (required) is the executor's command line, run by
//!   `/bin/sh -c`; the renderer puts it, with the task's artifacts as fetcher `uris` and the
//!   task's environment, in `TaskInfo.executor` (`type: CUSTOM`, executor ID = the task ID,
//!   0.1 cpu / 32 MB of its own) and leaves `TaskInfo.command` unset; sandbox files and the
//!   payload stay in `TaskInfo.data` for the executor to read. Mesos only: the local runner
//!   refuses these tasks (TASK_ERROR).
//!
//! All config strings are already interpolated when they arrive here.

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::cluster::types::CommandInfo;

/// Drivers the renderer can launch.
pub const SUPPORTED_DRIVERS: &[&str] = crate::model::drivers::KNOWN;

/// A config problem: the field and what is wrong / allowed.
#[derive(Debug)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: format!("config.{field}"),
        message: message.into(),
    }
}

/// What a driver config renders to.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The task's command; for `mesos_executor`, the custom executor's command.
    pub command: CommandInfo,
    pub container: Option<Value>,
    /// `command` belongs to a custom executor (driver `mesos_executor`).
    pub custom_executor: bool,
}

/// Command and container for a task (`Ok(None)` for an unsupported driver).
pub fn build(driver: &str, config: &IndexMap<String, Value>) -> Result<Option<Built>, ConfigError> {
    let built = match driver {
        "exec" | "raw_exec" => Built {
            command: exec(config)?,
            container: None,
            custom_executor: false,
        },
        "docker" => {
            let (command, container) = docker(config)?;
            Built {
                command,
                container: Some(container),
                custom_executor: false,
            }
        }
        "mesos_executor" => Built {
            command: custom_executor(config)?,
            container: None,
            custom_executor: true,
        },
        _ => return Ok(None),
    };
    Ok(Some(built))
}

/// Whether a task may run in a Mesos task group (under the DEFAULT executor): not with the
/// Docker containerizer, not with its own custom executor.
pub fn joins_group(driver: &str, config: &IndexMap<String, Value>) -> bool {
    match driver {
        "mesos_executor" => false,
        "docker" => matches!(
            config.get("containerizer").and_then(Value::as_str),
            Some("mesos")
        ),
        _ => true,
    }
}

fn string_field(
    config: &IndexMap<String, Value>,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(err(key, "must be a string")),
    }
}

fn list_field(config: &IndexMap<String, Value>, key: &str) -> Result<Vec<String>, ConfigError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(err(key, "must be a list of strings")),
            })
            .collect(),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(_) => Err(err(key, "must be a list of strings")),
    }
}

fn bool_field(config: &IndexMap<String, Value>, key: &str) -> Result<Option<bool>, ConfigError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        Some(_) => Err(err(key, "must be true or false")),
    }
}

/// Whether a bare command needs `/bin/sh -c`.
fn needs_shell(command: &str) -> bool {
    command
        .chars()
        .any(|c| c.is_whitespace() || "|&;<>()$`\\\"'*?[]#~!{}".contains(c))
}

fn exec(config: &IndexMap<String, Value>) -> Result<CommandInfo, ConfigError> {
    let command = string_field(config, "command")?
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| err("command", "is required: the program to run (a string)"))?;
    let args = list_field(config, "args")?;
    if args.is_empty() && needs_shell(&command) {
        return Ok(CommandInfo {
            shell: Some(true),
            value: Some(command),
            ..CommandInfo::default()
        });
    }
    let mut arguments = Vec::with_capacity(args.len() + 1);
    arguments.push(command.clone());
    arguments.extend(args);
    Ok(CommandInfo {
        shell: Some(false),
        value: Some(command),
        arguments,
        ..CommandInfo::default()
    })
}

fn docker(config: &IndexMap<String, Value>) -> Result<(CommandInfo, Value), ConfigError> {
    let image = string_field(config, "image")?
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| err("image", "is required for the docker driver"))?;
    let mesos = match string_field(config, "containerizer")?.as_deref() {
        None | Some("docker") => false,
        Some("mesos") => true,
        Some(other) => {
            return Err(err(
                "containerizer",
                format!("{other:?} is not supported (allowed: docker, mesos)"),
            ))
        }
    };
    let volumes = volumes(config)?;
    if mesos {
        return mesos_image(config, image, volumes);
    }
    let network = match string_field(config, "network_mode")?.as_deref() {
        None | Some("") | Some("host") => "HOST",
        Some("bridge") | Some("default") => "BRIDGE",
        Some("none") => "NONE",
        Some(other) => {
            return Err(err(
                "network_mode",
                format!("{other:?} is not supported (allowed: host, bridge, none)"),
            ))
        }
    };
    let mut parameters: Vec<Value> = Vec::new();
    let mut cmd: Vec<String> = Vec::new();
    let entrypoint = list_field(config, "entrypoint")?;
    if let Some((first, rest)) = entrypoint.split_first() {
        parameters.push(json!({"key": "entrypoint", "value": first}));
        cmd.extend(rest.iter().cloned());
    }
    if let Some(workdir) = string_field(config, "work_dir")? {
        parameters.push(json!({"key": "workdir", "value": workdir}));
    }
    if let Some(hostname) = string_field(config, "hostname")? {
        parameters.push(json!({"key": "hostname", "value": hostname}));
    }
    match config.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            let mut labels: Vec<_> = labels.iter().collect();
            labels.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in labels {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                parameters.push(json!({"key": "label", "value": format!("{k}={v}")}));
            }
        }
        // HCL repeated blocks arrive as a list of maps.
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => {
            let mut labels: Vec<(String, String)> = Vec::new();
            for item in items {
                for (k, v) in item.as_object().into_iter().flatten() {
                    let v = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    labels.push((k.clone(), v));
                }
            }
            labels.sort();
            for (k, v) in labels {
                parameters.push(json!({"key": "label", "value": format!("{k}={v}")}));
            }
        }
        Some(_) => return Err(err("labels", "must be a map of strings")),
    }
    for (key, value) in docker_parameters(config)? {
        parameters.push(json!({"key": key, "value": value}));
    }
    if let Some(command) = string_field(config, "command")? {
        cmd.push(command);
    }
    cmd.extend(list_field(config, "args")?);

    let mut docker = json!({"image": image, "network": network});
    if let Some(p) = bool_field(config, "privileged")? {
        docker["privileged"] = json!(p);
    }
    if let Some(p) = bool_field(config, "force_pull")? {
        docker["force_pull_image"] = json!(p);
    }
    if !parameters.is_empty() {
        docker["parameters"] = Value::Array(parameters);
    }
    let mut container = json!({"type": "DOCKER", "docker": docker});
    if !volumes.is_empty() {
        container["volumes"] = Value::Array(volumes);
    }
    let mut command = CommandInfo {
        shell: Some(false),
        ..CommandInfo::default()
    };
    if let Some((first, rest)) = cmd.split_first() {
        command.value = Some(first.clone());
        command.arguments = rest.to_vec();
    }
    Ok((command, container))
}

/// The Mesos containerizer with a Docker image: the command is the full argv.
fn mesos_image(
    config: &IndexMap<String, Value>,
    image: String,
    volumes: Vec<Value>,
) -> Result<(CommandInfo, Value), ConfigError> {
    const ONLY_DOCKER: &str =
        "is a Docker containerizer option: not available with containerizer = \"mesos\"";
    if !docker_parameters(config)?.is_empty() {
        return Err(err("parameters", ONLY_DOCKER));
    }
    if bool_field(config, "privileged")? == Some(true) {
        return Err(err("privileged", ONLY_DOCKER));
    }
    for key in ["work_dir", "hostname"] {
        if string_field(config, key)?.is_some_and(|v| !v.is_empty()) {
            return Err(err(key, ONLY_DOCKER));
        }
    }
    match string_field(config, "network_mode")?.as_deref() {
        None | Some("") | Some("host") => {}
        Some(other) => {
            return Err(err(
                "network_mode",
                format!(
                    "{other:?} is not supported with containerizer = \"mesos\" (allowed: host)"
                ),
            ))
        }
    }
    let mut argv = list_field(config, "entrypoint")?;
    if let Some(command) = string_field(config, "command")?.filter(|c| !c.trim().is_empty()) {
        argv.push(command);
    }
    argv.extend(list_field(config, "args")?);
    let Some(program) = argv.first().cloned() else {
        return Err(err(
            "command",
            "is required with containerizer = \"mesos\" (or entrypoint): Mesos's command \
             executor needs a program to run, it does not use the image's entrypoint",
        ));
    };
    let cached = !bool_field(config, "force_pull")?.unwrap_or(false);
    let mut container = json!({
        "type": "MESOS",
        "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}, "cached": cached}},
    });
    if !volumes.is_empty() {
        container["volumes"] = Value::Array(volumes);
    }
    let command = CommandInfo {
        shell: Some(false),
        value: Some(program),
        arguments: argv,
        ..CommandInfo::default()
    };
    Ok((command, container))
}

/// A scalar config value as a string.
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `parameters`: a map `{memory = "1g"}`, a list of `{key, value}`, or (HCL blocks) a list
/// of maps; order kept.
fn docker_parameters(
    config: &IndexMap<String, Value>,
) -> Result<Vec<(String, String)>, ConfigError> {
    const SHAPE: &str = "must be a map of strings or a list of {key, value}";
    let mut out = Vec::new();
    let from_map = |out: &mut Vec<(String, String)>,
                    map: &serde_json::Map<String, Value>|
     -> Result<(), ConfigError> {
        for (k, v) in map {
            let v = scalar_string(v).ok_or_else(|| err("parameters", SHAPE))?;
            out.push((k.clone(), v));
        }
        Ok(())
    };
    match config.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => from_map(&mut out, map)?,
        Some(Value::Array(items)) => {
            for item in items {
                let Value::Object(map) = item else {
                    return Err(err("parameters", SHAPE));
                };
                let is_pair =
                    map.len() == 2 && map.contains_key("key") && map.contains_key("value");
                if is_pair {
                    let k = scalar_string(&map["key"]).ok_or_else(|| err("parameters", SHAPE))?;
                    let v = scalar_string(&map["value"]).ok_or_else(|| err("parameters", SHAPE))?;
                    out.push((k, v));
                } else {
                    from_map(&mut out, map)?;
                }
            }
        }
        Some(_) => return Err(err("parameters", SHAPE)),
    }
    for (k, _) in &out {
        if k.trim().is_empty() {
            return Err(err("parameters", "a parameter key is empty"));
        }
    }
    Ok(out)
}

/// `volumes = ["/host:/container[:ro|rw]"]` -> Mesos `Volume`s.
fn volumes(config: &IndexMap<String, Value>) -> Result<Vec<Value>, ConfigError> {
    let specs = list_field(config, "volumes")?;
    let mut out = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let field = format!("volumes[{i}]");
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, container, mode) = match parts.as_slice() {
            [h, c] => (*h, *c, "RW"),
            [h, c, "rw"] | [h, c, "RW"] => (*h, *c, "RW"),
            [h, c, "ro"] | [h, c, "RO"] => (*h, *c, "RO"),
            [_, _, m] => {
                return Err(err(
                    &field,
                    format!("{spec:?}: mode {m:?} is not supported (allowed: rw, ro)"),
                ))
            }
            _ => {
                return Err(err(
                    &field,
                    format!("{spec:?} must be \"/host/path:/container/path\" with an optional \":ro\" or \":rw\""),
                ))
            }
        };
        // A `${...}` reference is only known at dispatch time.
        let absolute = |p: &str| p.starts_with('/') || p.starts_with("${");
        if !absolute(host) {
            return Err(err(
                &field,
                format!(
                    "host path {host:?} must be absolute (relative host paths are not supported)"
                ),
            ));
        }
        if !absolute(container) {
            return Err(err(
                &field,
                format!("container path {container:?} must be absolute"),
            ));
        }
        out.push(json!({"container_path": container, "host_path": host, "mode": mode}));
    }
    Ok(out)
}

/// `mesos_executor`: the executor's command line, run by `/bin/sh -c`.
fn custom_executor(config: &IndexMap<String, Value>) -> Result<CommandInfo, ConfigError> {
    let command = string_field(config, "command")?
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            err(
                "command",
                "is required for the mesos_executor driver: the executor's command line (run by /bin/sh -c)",
            )
        })?;
    if !list_field(config, "args")?.is_empty() {
        return Err(err(
            "args",
            "is not supported by the mesos_executor driver: put the arguments in command (a shell command line)",
        ));
    }
    Ok(CommandInfo {
        shell: Some(true),
        value: Some(command),
        ..CommandInfo::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> IndexMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    fn built(driver: &str, v: Value) -> (CommandInfo, Option<Value>) {
        let b = build(driver, &cfg(v)).unwrap().unwrap();
        assert!(!b.custom_executor);
        (b.command, b.container)
    }

    fn error(driver: &str, v: Value) -> ConfigError {
        build(driver, &cfg(v)).unwrap_err()
    }

    #[test]
    fn exec_argv_and_shell_mode() {
        let (c, k) = built(
            "exec",
            json!({"command": "transcode.sh", "args": ["a", "b"]}),
        );
        assert!(k.is_none());
        assert_eq!(c.shell, Some(false));
        assert_eq!(c.value.as_deref(), Some("transcode.sh"));
        assert_eq!(c.arguments, vec!["transcode.sh", "a", "b"]);

        let (c, _) = built("raw_exec", json!({"command": "/bin/true"}));
        assert_eq!(c.shell, Some(false));
        assert_eq!(c.arguments, vec!["/bin/true"]);

        let (c, _) = built("exec", json!({"command": "echo hi && exit 3"}));
        assert_eq!(c.shell, Some(true));
        assert!(c.arguments.is_empty());

        let e = error("exec", json!({"args": ["x"]}));
        assert_eq!(e.field, "config.command");
        assert!(build("java", &cfg(json!({}))).unwrap().is_none());
    }

    #[test]
    fn docker_container() {
        let (c, k) = built(
            "docker",
            json!({"image": "example/ffmpeg:6", "args": ["-i", "in"], "entrypoint": ["/bin/tini", "--"],
                        "force_pull": true, "labels": {"b": "2", "a": "1"}, "ports": ["http"]}),
        );
        assert_eq!(
            k.unwrap(),
            json!({"type": "DOCKER", "docker": {"image": "example/ffmpeg:6", "network": "HOST",
                   "force_pull_image": true,
                   "parameters": [{"key": "entrypoint", "value": "/bin/tini"},
                                  {"key": "label", "value": "a=1"}, {"key": "label", "value": "b=2"}]}})
        );
        assert_eq!(c.value.as_deref(), Some("--"));
        assert_eq!(c.arguments, vec!["-i", "in"]);

        let (c, _) = built("docker", json!({"image": "busybox"}));
        assert_eq!(serde_json::to_value(&c).unwrap(), json!({"shell": false}));
        assert_eq!(error("docker", json!({})).field, "config.image");
    }

    #[test]
    fn docker_parameters_and_volumes() {
        let (c, k) = built(
            "docker",
            json!({"image": "alpine", "command": "ls", "work_dir": "/w",
                   "parameters": {"memory": "1g", "shm-size": 64},
                   "volumes": ["/srv/in:/in", "/srv/ref:/ref:ro"]}),
        );
        assert_eq!(
            k.unwrap(),
            json!({"type": "DOCKER",
                   "docker": {"image": "alpine", "network": "HOST",
                              "parameters": [{"key": "workdir", "value": "/w"},
                                             {"key": "memory", "value": "1g"},
                                             {"key": "shm-size", "value": "64"}]},
                   "volumes": [{"container_path": "/in", "host_path": "/srv/in", "mode": "RW"},
                               {"container_path": "/ref", "host_path": "/srv/ref", "mode": "RO"}]})
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"shell": false, "value": "ls"})
        );

        // A list of {key, value} (Mesos's shape) and HCL blocks (a list of maps).
        let (_, k) = built(
            "docker",
            json!({"image": "alpine", "parameters": [{"key": "ulimit", "value": "nofile=1024"},
                                                     {"cap-add": "SYS_PTRACE"}]}),
        );
        assert_eq!(
            k.unwrap()["docker"]["parameters"],
            json!([{"key": "ulimit", "value": "nofile=1024"}, {"key": "cap-add", "value": "SYS_PTRACE"}])
        );

        for (volume, needle) in [
            ("data:/data", "must be absolute"),
            ("/data:data", "container path"),
            ("/a:/b:z", "mode \"z\""),
            ("/only", "must be \"/host/path:/container/path\""),
        ] {
            let e = error(
                "docker",
                json!({"image": "alpine", "volumes": ["/ok:/ok", volume]}),
            );
            assert_eq!(e.field, "config.volumes[1]");
            assert!(e.message.contains(needle), "{volume}: {}", e.message);
        }
        let e = error(
            "docker",
            json!({"image": "alpine", "parameters": "memory=1g"}),
        );
        assert_eq!(e.field, "config.parameters");
    }

    #[test]
    fn mesos_containerizer() {
        let (c, k) = built(
            "docker",
            json!({"image": "jrottenberg/ffmpeg:6", "containerizer": "mesos",
                   "entrypoint": ["/usr/bin/tini", "--"], "command": "ffmpeg", "args": ["-i", "in.mov"],
                   "volumes": ["/srv/scratch:/scratch"], "labels": {"a": "1"}}),
        );
        assert_eq!(
            k.unwrap(),
            json!({"type": "MESOS",
                   "mesos": {"image": {"type": "DOCKER", "docker": {"name": "jrottenberg/ffmpeg:6"},
                                       "cached": true}},
                   "volumes": [{"container_path": "/scratch", "host_path": "/srv/scratch", "mode": "RW"}]})
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"shell": false, "value": "/usr/bin/tini",
                   "arguments": ["/usr/bin/tini", "--", "ffmpeg", "-i", "in.mov"]})
        );

        let (c, k) = built(
            "docker",
            json!({"image": "alpine", "containerizer": "mesos", "command": "echo", "force_pull": true}),
        );
        assert_eq!(k.unwrap()["mesos"]["image"]["cached"], false);
        assert_eq!(c.arguments, vec!["echo"]);

        let e = error(
            "docker",
            json!({"image": "alpine", "containerizer": "mesos"}),
        );
        assert_eq!(e.field, "config.command");
        assert!(
            e.message.contains("containerizer = \"mesos\""),
            "{}",
            e.message
        );
        let e = error(
            "docker",
            json!({"image": "alpine", "containerizer": "mesos", "command": "x", "parameters": {"memory": "1g"}}),
        );
        assert_eq!(e.field, "config.parameters");
        let e = error(
            "docker",
            json!({"image": "alpine", "containerizer": "podman"}),
        );
        assert_eq!(e.field, "config.containerizer");
        assert!(
            e.message.contains("allowed: docker, mesos"),
            "{}",
            e.message
        );
    }

    #[test]
    fn custom_executor_command() {
        let b = build(
            "mesos_executor",
            &cfg(json!({"command": "java -jar executor.jar"})),
        )
        .unwrap()
        .unwrap();
        assert!(b.custom_executor);
        assert!(b.container.is_none());
        assert_eq!(
            serde_json::to_value(&b.command).unwrap(),
            json!({"shell": true, "value": "java -jar executor.jar"})
        );
        let e = error("mesos_executor", json!({}));
        assert_eq!(e.field, "config.command");
        assert!(e.message.contains("executor"), "{}", e.message);
    }

    #[test]
    fn which_tasks_join_groups() {
        assert!(joins_group("exec", &cfg(json!({}))));
        assert!(!joins_group("docker", &cfg(json!({"image": "a"}))));
        assert!(joins_group(
            "docker",
            &cfg(json!({"image": "a", "containerizer": "mesos"}))
        ));
        assert!(!joins_group(
            "mesos_executor",
            &cfg(json!({"command": "x"}))
        ));
    }
}
