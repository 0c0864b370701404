//! Driver config -> Mesos `CommandInfo` (and `ContainerInfo` for docker).
//!
//! * `exec`, `raw_exec`: `config.command` + `config.args`. With args (or a plain command) the
//!   command runs without a shell: `shell: false`, `value` = command, `arguments` = the full
//!   argv `[command, args...]`. A command without args that contains spaces or shell
//!   metacharacters (`"tar xzf a.tgz && ./run"`) runs under `/bin/sh -c` (`shell` true).
//! * `docker`: `container = {"type": "DOCKER", "docker": {"image", "network": "HOST", ...}}`.
//!   The Docker containerizer runs `docker run <image> <value> <arguments...>` (arguments are
//!   appended whole, there is no argv[0] slot), which is exactly Nomad's `command` + `args`
//!   overriding the image CMD: the list `[command?, args...]` becomes `value` (its first
//!   element) and `arguments` (the rest); with neither, `{"shell": false}` keeps the image's
//!   entrypoint and CMD. Mapped config keys: `image` (required), `command`, `args`,
//!   `entrypoint` (first element -> `--entrypoint` parameter, the rest lead the command),
//!   `network_mode` (host, bridge, none), `privileged`, `force_pull`, `work_dir`, `labels`,
//!   `hostname`. Other keys (ports, logging, volumes, auth, ...) are ignored.
//!
//! All config strings are already interpolated when they arrive here.

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::cluster::types::CommandInfo;

/// Drivers the renderer can launch.
pub const SUPPORTED_DRIVERS: &[&str] = &["exec", "raw_exec", "docker"];

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

/// Command and container for a task (`Ok(None)` for an unsupported driver).
pub fn build(
    driver: &str,
    config: &IndexMap<String, Value>,
) -> Result<Option<(CommandInfo, Option<Value>)>, ConfigError> {
    match driver {
        "exec" | "raw_exec" => exec(config).map(|c| Some((c, None))),
        "docker" => docker(config).map(|(c, k)| Some((c, Some(k)))),
        _ => Ok(None),
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
    let container = json!({"type": "DOCKER", "docker": docker});
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> IndexMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn exec_argv_and_shell_mode() {
        let (c, k) = build(
            "exec",
            &cfg(json!({"command": "transcode.sh", "args": ["a", "b"]})),
        )
        .unwrap()
        .unwrap();
        assert!(k.is_none());
        assert_eq!(c.shell, Some(false));
        assert_eq!(c.value.as_deref(), Some("transcode.sh"));
        assert_eq!(c.arguments, vec!["transcode.sh", "a", "b"]);

        let (c, _) = build("raw_exec", &cfg(json!({"command": "/bin/true"})))
            .unwrap()
            .unwrap();
        assert_eq!(c.shell, Some(false));
        assert_eq!(c.arguments, vec!["/bin/true"]);

        let (c, _) = build("exec", &cfg(json!({"command": "echo hi && exit 3"})))
            .unwrap()
            .unwrap();
        assert_eq!(c.shell, Some(true));
        assert!(c.arguments.is_empty());

        let e = build("exec", &cfg(json!({"args": ["x"]}))).unwrap_err();
        assert_eq!(e.field, "config.command");
        assert!(build("java", &cfg(json!({}))).unwrap().is_none());
    }

    #[test]
    fn docker_container() {
        let (c, k) = build(
            "docker",
            &cfg(json!({"image": "example/ffmpeg:6", "args": ["-i", "in"], "entrypoint": ["/bin/tini", "--"],
                        "force_pull": true, "labels": {"b": "2", "a": "1"}, "ports": ["http"]})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            k.unwrap(),
            json!({"type": "DOCKER", "docker": {"image": "example/ffmpeg:6", "network": "HOST",
                   "force_pull_image": true,
                   "parameters": [{"key": "entrypoint", "value": "/bin/tini"},
                                  {"key": "label", "value": "a=1"}, {"key": "label", "value": "b=2"}]}})
        );
        assert_eq!(c.value.as_deref(), Some("--"));
        assert_eq!(c.arguments, vec!["-i", "in"]);

        let (c, _) = build("docker", &cfg(json!({"image": "busybox"})))
            .unwrap()
            .unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), json!({"shell": false}));
        assert_eq!(
            build("docker", &cfg(json!({}))).unwrap_err().field,
            "config.image"
        );
    }
}
