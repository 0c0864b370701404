//! Local processes: resolving the program, the task environment, spawning in a new process
//! group with stdout/stderr in the sandbox, signalling the group, and describing how it ended.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};

use crate::cluster::types::CommandInfo;

use super::sandbox::Sandbox;

/// What to execute for a task, whatever the driver (a local command or `docker run`).
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    /// argv[0] when it differs from `program`.
    pub argv0: Option<OsString>,
    pub args: Vec<OsString>,
    /// Set on top of the runner's own environment.
    pub env: Vec<(OsString, OsString)>,
    /// Switch to this user (only when the runner is root).
    pub user: Option<User>,
    /// The Docker container name, for image tasks.
    pub container: Option<String>,
}

/// Directories of a PATH-like value.
fn split_path(value: Option<&OsString>) -> Vec<PathBuf> {
    value
        .map(|v| std::env::split_paths(v).collect())
        .unwrap_or_default()
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `PATH` for tasks: `task_path` first, then the runner's own PATH.
pub fn task_path_env(task_path: &[PathBuf]) -> OsString {
    let mut dirs: Vec<PathBuf> = task_path.to_vec();
    dirs.extend(split_path(std::env::var_os("PATH").as_ref()));
    std::env::join_paths(dirs).unwrap_or_else(|_| std::env::var_os("PATH").unwrap_or_default())
}

/// The environment a local task sees on top of the runner's: PATH with `task_path` first, the
/// task's own variables, then the absolute sandbox variables.
pub fn local_env(
    command: &CommandInfo,
    task_path: &[PathBuf],
    sandbox: &Sandbox,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![("PATH".into(), task_path_env(task_path))];
    if let Some(e) = &command.environment {
        env.extend(
            e.variables
                .iter()
                .map(|v| (OsString::from(&v.name), OsString::from(&v.value))),
        );
    }
    let dir = sandbox.dir.as_os_str().to_owned();
    env.extend([
        ("MESOS_SANDBOX".into(), dir.clone()),
        ("MESOS_DIRECTORY".into(), dir),
        ("NOMAD_TASK_DIR".into(), sandbox.local().into_os_string()),
        (
            "NOMAD_SECRETS_DIR".into(),
            sandbox.secrets().into_os_string(),
        ),
        (
            "NOMAD_ALLOC_DIR".into(),
            sandbox.alloc.as_os_str().to_owned(),
        ),
    ]);
    env
}

/// The program of a `shell: false` command: with a `/`, relative to the sandbox (or absolute);
/// otherwise searched in `task_path`, the sandbox, then `PATH` (as the task will see it).
pub fn resolve_program(
    value: &str,
    task_path: &[PathBuf],
    sandbox: &Path,
    env: &[(OsString, OsString)],
) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("CommandInfo.value (the program) is empty".into());
    }
    if value.contains('/') {
        let p = sandbox.join(value);
        return if is_executable_file(&p) {
            Ok(p)
        } else {
            Err(format!("{} is not an executable file", p.display()))
        };
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"));
    let mut dirs: Vec<PathBuf> = task_path.to_vec();
    dirs.push(sandbox.to_path_buf());
    dirs.extend(split_path(path.as_ref()));
    dirs.iter()
        .map(|d| d.join(value))
        .find(|p| is_executable_file(p))
        .ok_or_else(|| format!("program '{value}' not found in the task path, sandbox or PATH"))
}

/// The local launch of a command (shell or argv mode).
pub fn local_launch(
    command: &CommandInfo,
    task_path: &[PathBuf],
    sandbox: &Sandbox,
    user: Option<User>,
) -> Result<Launch, String> {
    let mut env = local_env(command, task_path, sandbox);
    if let Some(u) = &user {
        env.push(("USER".into(), u.name.clone().into()));
        env.push(("LOGNAME".into(), u.name.clone().into()));
        env.push(("HOME".into(), u.dir.clone().into_os_string()));
    }
    let value = command.value.clone().unwrap_or_default();
    let (program, argv0, args) = if command.is_shell() {
        if value.trim().is_empty() {
            return Err("CommandInfo.value (the shell command) is empty".into());
        }
        (
            PathBuf::from("/bin/sh"),
            None,
            vec![OsString::from("-c"), OsString::from(value)],
        )
    } else {
        let program = resolve_program(&value, task_path, &sandbox.dir, &env)?;
        let mut argv = command.arguments.iter().map(OsString::from);
        let argv0 = argv.next().or_else(|| Some(OsString::from(&value)));
        (program, argv0, argv.collect())
    };
    Ok(Launch {
        program,
        argv0,
        args,
        env,
        user,
        container: None,
    })
}

/// `command.user`: `None` to run as the runner itself. Another user needs a root runner.
pub fn resolve_user(user: Option<&str>) -> Result<Option<User>, String> {
    let Some(name) = user.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let euid = nix::unistd::geteuid();
    let me = User::from_uid(euid).ok().flatten();
    if me.as_ref().is_some_and(|m| m.name == name) {
        return Ok(None);
    }
    if !euid.is_root() {
        let me = me.map_or_else(|| euid.to_string(), |m| m.name);
        return Err(format!(
            "task wants to run as user '{name}', but the local runner runs as '{me}' and cannot switch users"
        ));
    }
    match User::from_name(name) {
        Ok(Some(u)) => Ok(Some(u)),
        Ok(None) => Err(format!("user '{name}' does not exist on this host")),
        Err(e) => Err(format!("cannot look up user '{name}': {e}")),
    }
}

/// Hand the sandbox (and the shared alloc dir) to the task user; symlinks are not followed.
pub fn chown_sandbox(sandbox: &Sandbox, user: &User) -> Result<(), String> {
    fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
        if std::fs::symlink_metadata(p)?.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    for d in [&sandbox.dir, &sandbox.alloc] {
        walk(d, user.uid.as_raw(), user.gid.as_raw())
            .map_err(|e| format!("cannot give {} to user {}: {e}", d.display(), user.name))?;
    }
    Ok(())
}

fn append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Start the launch in the sandbox, in a new process group, output to `stdout`/`stderr`.
pub fn spawn(launch: &Launch, sandbox: &Path) -> std::io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(&launch.program);
    if let Some(a0) = &launch.argv0 {
        cmd.arg0(a0);
    }
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(append(&sandbox.join("stdout"))?)
        .stderr(append(&sandbox.join("stderr"))?)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(u) = &launch.user {
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    cmd.spawn()
}

/// Signal a process group; a group that is already gone is fine.
pub fn signal_group(pgid: u32, sig: Signal) {
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    if raw <= 1 {
        return;
    }
    match killpg(Pid::from_raw(raw), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pgid, signal = %sig, error = %e, "cannot signal process group"),
    }
}

/// How a process ended: (succeeded, message, exit code).
pub fn describe_exit(status: ExitStatus) -> (bool, String, i32) {
    if let Some(code) = status.code() {
        return (
            code == 0,
            format!("Command exited with status {code}"),
            code,
        );
    }
    let sig = status.signal().unwrap_or(0);
    let name = Signal::try_from(sig).map_or_else(|_| format!("{sig}"), |s| s.as_str().to_string());
    (
        false,
        format!("Command terminated with signal {name}"),
        128 + sig,
    )
}

/// Members of process group `pgid` according to /proc (`None` when /proc cannot tell).
fn group_members(pgid: i32) -> Option<Vec<i32>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the ")" closing the command name: state, ppid, pgrp, ...
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|f| f.parse::<i32>().ok());
        if pgrp == Some(pgid) {
            out.push(pid);
        }
    }
    Some(out)
}

/// Whether process `pid` was started for the sandbox `dir` (its environment or cwd says so).
fn belongs_to(pid: i32, dir: &Path) -> bool {
    let marker = format!("MESOS_SANDBOX={}", dir.display());
    if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
        if environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
            return true;
        }
    }
    std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
}

/// SIGKILL the process group a previous run left behind for sandbox `dir`, unless the id now
/// belongs to unrelated processes (pid reuse after a reboot).
pub fn kill_leftover_group(pgid: i32, dir: &Path) {
    if killpg(Pid::from_raw(pgid), None).is_err() {
        return;
    }
    if let Some(members) = group_members(pgid) {
        let live: Vec<i32> = members
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')')
                            .map(|(_, r)| r.trim_start().starts_with('Z'))
                    })
                    == Some(false)
            })
            .collect();
        if !live.is_empty() && !live.iter().any(|pid| belongs_to(*pid, dir)) {
            tracing::warn!(pgid, dir = %dir.display(), "process group of a previous run now belongs to something else; not killing it");
            return;
        }
    }
    tracing::info!(pgid, dir = %dir.display(), "killing a task left over from a previous run");
    signal_group(pgid as u32, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_descriptions() {
        let (ok, msg, code) = describe_exit(ExitStatus::from_raw(3 << 8));
        assert!(!ok);
        assert_eq!(msg, "Command exited with status 3");
        assert_eq!(code, 3);
        let (ok, msg, code) = describe_exit(ExitStatus::from_raw(9));
        assert!(!ok);
        assert_eq!(msg, "Command terminated with signal SIGKILL");
        assert_eq!(code, 137);
        assert!(describe_exit(ExitStatus::from_raw(0)).0);
    }

    #[test]
    fn program_search_order() {
        let dir = std::env::temp_dir();
        assert!(resolve_program("sh", &[], &dir, &[]).is_ok());
        assert!(resolve_program("no-such-program-xyz", &[], &dir, &[]).is_err());
        assert!(resolve_program("./no-such", &[], &dir, &[]).is_err());
    }
}
