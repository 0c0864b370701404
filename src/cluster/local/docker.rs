//! Image tasks: a task whose container names an image (or whose `dispatch.driver` label is
//! `docker`) runs with `docker run` when a Docker engine is reachable, and fails otherwise.
//! The local runner never runs an image task's command on the host.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::types::TaskInfo;

use super::process::Launch;
use super::sandbox::Sandbox;

/// Where the sandbox appears inside the container (as with Mesos's Docker containerizer).
pub const CONTAINER_SANDBOX: &str = "/mnt/mesos/sandbox";
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The image a task's container names, if any.
pub fn image_of(info: &TaskInfo) -> Option<String> {
    let c = info.container.as_ref()?;
    let docker = c
        .pointer("/docker/image")
        .filter(|_| c.get("type").and_then(Value::as_str) == Some("DOCKER"));
    let mesos = c.pointer("/mesos/image/docker/name");
    docker
        .or(mesos)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The image the task must run in (`None`: a plain local process).
pub fn wanted_image(info: &TaskInfo) -> Result<Option<String>, String> {
    match (info.label("dispatch.driver"), image_of(info)) {
        (_, Some(image)) => Ok(Some(image)),
        (Some("docker"), None) => {
            Err("task uses the docker driver but its container names no image".into())
        }
        _ => Ok(None),
    }
}

/// The engine endpoint: `DOCKER_HOST`, else the default socket.
fn endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string())
}

/// Whether a Docker engine answers at `endpoint` (a connection is enough).
async fn reachable(endpoint: &str) -> bool {
    let attempt = async {
        if let Some(addr) = endpoint.strip_prefix("tcp://") {
            tokio::net::TcpStream::connect(addr.trim_end_matches('/'))
                .await
                .is_ok()
        } else {
            let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
            tokio::net::UnixStream::connect(path).await.is_ok()
        }
    };
    tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .unwrap_or(false)
}

/// The `docker` CLI on PATH.
fn docker_cli() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("docker"))
        .find(|p| p.is_file())
}

/// Check that image tasks can run here; the error is the task's failure message.
pub async fn check_engine(image: &str) -> Result<PathBuf, String> {
    let ep = endpoint();
    if !reachable(&ep).await {
        return Err(format!(
            "task needs container image \"{image}\": no Docker engine reachable at {ep}; \
             the local runner never runs image tasks on the host"
        ));
    }
    docker_cli().ok_or_else(|| {
        format!("task needs container image \"{image}\": a Docker engine answers at {ep} but there is no docker CLI on PATH")
    })
}

/// A container name from a task ID (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn container_name(task_id: &str) -> String {
    let clean: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("dispatch-{clean}")
}

/// `docker run --rm --name <name> -v <sandbox>:/mnt/mesos/sandbox -w /mnt/mesos/sandbox ...`.
/// The alloc dir is also mounted at its host path, so the sandbox's `alloc` symlink resolves
/// inside the container. Variables are passed by name (`-e NAME`) with their values in the CLI's
/// environment, so they do not show in `ps`. The container's host-path `volumes` become `-v`
/// mounts and DOCKER `parameters` become `--key=value` options. `shell: true` runs
/// `/bin/sh -c value` as the entrypoint. `shell: false`: a MESOS container runs the argv
/// (`value` as the entrypoint, then `arguments[1..]`); a DOCKER container keeps the image's
/// entrypoint and passes `value` and `arguments` as the command, as Mesos's Docker
/// containerizer does (an empty value: the image's default command).
pub fn docker_launch(docker: PathBuf, info: &TaskInfo, image: &str, sandbox: &Sandbox) -> Launch {
    let name = container_name(&info.task_id.value);
    let command = info.command.clone().unwrap_or_default();
    let inside = |sub: &str| format!("{CONTAINER_SANDBOX}/{sub}");
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    if let Some(e) = &command.environment {
        env.extend(
            e.variables
                .iter()
                .map(|v| (OsString::from(&v.name), OsString::from(&v.value))),
        );
    }
    env.extend([
        ("MESOS_SANDBOX".into(), CONTAINER_SANDBOX.into()),
        ("MESOS_DIRECTORY".into(), CONTAINER_SANDBOX.into()),
        ("NOMAD_TASK_DIR".into(), inside("local").into()),
        ("NOMAD_SECRETS_DIR".into(), inside("secrets").into()),
        ("NOMAD_ALLOC_DIR".into(), inside("alloc").into()),
    ]);
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "--rm".into(),
        "--name".into(),
        name.clone().into(),
    ];
    let mut volume = OsString::from(sandbox.dir.as_os_str());
    volume.push(format!(":{CONTAINER_SANDBOX}"));
    args.extend(["-v".into(), volume]);
    let mut alloc = OsString::from(sandbox.alloc.as_os_str());
    alloc.push(":");
    alloc.push(sandbox.alloc.as_os_str());
    args.extend(["-v".into(), alloc, "-w".into(), CONTAINER_SANDBOX.into()]);
    let container = info.container.clone().unwrap_or_default();
    let mesos = container["type"] == "MESOS";
    for v in container["volumes"].as_array().into_iter().flatten() {
        if let (Some(host), Some(path)) = (v["host_path"].as_str(), v["container_path"].as_str()) {
            let ro = if v["mode"] == "RO" { ":ro" } else { "" };
            args.extend(["-v".into(), format!("{host}:{path}{ro}").into()]);
        }
    }
    if !mesos {
        for p in container
            .pointer("/docker/parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(k), Some(v)) = (p["key"].as_str(), p["value"].as_str()) {
                args.push(format!("--{k}={v}").into());
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (k, _) in env.iter().rev() {
        if seen.insert(k.clone()) {
            args.extend(["-e".into(), k.clone()]);
        }
    }
    let demand = info.demand();
    if demand.cpus > 0.0 {
        args.push(format!("--cpus={}", demand.cpus).into());
    }
    if demand.mem_mb >= 6.0 {
        args.push(format!("--memory={}m", demand.mem_mb.ceil()).into());
    }
    if let Some(user) = command.user.as_deref().filter(|u| !u.is_empty()) {
        args.extend(["--user".into(), user.into()]);
    }
    let value = command.value.clone().unwrap_or_default();
    if command.is_shell() && !value.trim().is_empty() {
        args.extend(["--entrypoint".into(), "/bin/sh".into(), image.into()]);
        args.extend(["-c".into(), value.into()]);
    } else if mesos && !value.is_empty() {
        args.extend(["--entrypoint".into(), value.into(), image.into()]);
        args.extend(command.arguments.iter().skip(1).map(OsString::from));
    } else {
        args.push(image.into());
        if !value.is_empty() {
            args.push(value.into());
            args.extend(command.arguments.iter().map(OsString::from));
        }
    }
    Launch {
        program: docker,
        argv0: None,
        args,
        env,
        user: None,
        container: Some(name),
    }
}

/// Force-stop a container (best effort, in the background).
pub fn kill_container(name: &str) {
    let Some(docker) = docker_cli() else {
        return;
    };
    let spawned = tokio::process::Command::new(docker)
        .args(["kill", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
    }
}

/// Remove a container a previous server run left behind (best effort, synchronous).
pub fn remove_leftover(name: &str) {
    if name.is_empty() {
        return;
    }
    let Some(docker) = docker_cli() else {
        return;
    };
    tracing::info!(
        container = name,
        "removing a container left over from a previous run"
    );
    let _ = std::process::Command::new(docker)
        .args(["rm", "-f", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(container: Value) -> TaskInfo {
        serde_json::from_value(json!({
            "name": "t", "task_id": {"value": "job.d-1.tc.a1"}, "agent_id": {"value": "local-agent"},
            "command": {"value": "ffmpeg -version", "environment": {"variables": [{"name": "A", "value": "1"}]}},
            "container": container,
        }))
        .expect("task")
    }

    #[test]
    fn images_from_both_container_kinds() {
        let t = task(json!({"type": "DOCKER", "docker": {"image": "jrottenberg/ffmpeg"}}));
        assert_eq!(image_of(&t).as_deref(), Some("jrottenberg/ffmpeg"));
        let t = task(
            json!({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}}),
        );
        assert_eq!(image_of(&t).as_deref(), Some("alpine"));
        let t = task(json!({"type": "MESOS", "volumes": []}));
        assert_eq!(wanted_image(&t), Ok(None));
    }

    #[test]
    fn docker_run_arguments() {
        let t = task(json!({"type": "DOCKER", "docker": {"image": "alpine"}}));
        let sb = Sandbox {
            dir: PathBuf::from("/r/tasks/x"),
            alloc: PathBuf::from("/r/allocs/a/alloc"),
        };
        let l = docker_launch(PathBuf::from("/usr/bin/docker"), &t, "alpine", &sb);
        let args: Vec<String> = l
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.starts_with(
            "run --rm --name dispatch-job.d-1.tc.a1 -v /r/tasks/x:/mnt/mesos/sandbox"
        ));
        assert!(line.contains("-w /mnt/mesos/sandbox"));
        assert!(line.contains("-e A"));
        assert!(line.ends_with("--entrypoint /bin/sh alpine -c ffmpeg -version"));

        let run = |t: &TaskInfo| -> String {
            let l = docker_launch(PathBuf::from("/usr/bin/docker"), t, "alpine", &sb);
            let args: Vec<String> = l
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            args.join(" ")
        };
        let mut t = task(json!({"type": "DOCKER", "docker": {"image": "alpine",
            "parameters": [{"key": "memory", "value": "1g"}]},
            "volumes": [{"container_path": "/in", "host_path": "/srv/in", "mode": "RO"}]}));
        t.command = serde_json::from_value(
            json!({"shell": false, "value": "ls", "arguments": ["-l", "/in"]}),
        )
        .unwrap();
        let line = run(&t);
        assert!(line.contains("-v /srv/in:/in:ro --memory=1g"), "{line}");
        assert!(line.ends_with(" alpine ls -l /in"), "{line}");
        let mut t = task(
            json!({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}}}),
        );
        t.command = serde_json::from_value(
            json!({"shell": false, "value": "ls", "arguments": ["ls", "-l"]}),
        )
        .unwrap();
        assert!(run(&t).ends_with("--entrypoint ls alpine -l"));
        assert_eq!(container_name("a/b c"), "dispatch-a_b_c");
    }
}
