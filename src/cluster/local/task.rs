//! One task's life on the local agent (the built-in "command executor"): sandbox, data files,
//! fetch, spawn, supervise (kill with grace, max completion time), terminal update.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::cluster::types::{TaskInfo, TaskState, TaskStatus};

use super::process::{self, Launch};
use super::sandbox::Sandbox;
use super::status::{self, StatusExt};
use super::{docker, fetch, LocalConfig};

/// Grace between SIGTERM and SIGKILL when neither the kill nor the task says.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// What the agent loop can tell a running task.
#[derive(Debug)]
pub enum Control {
    /// Kill it; the grace overrides the task's kill policy.
    Kill { grace: Option<Duration> },
}

/// What every task runner shares.
pub struct RunCtx {
    pub config: LocalConfig,
    pub http: reqwest::Client,
    /// Updates go through the agent loop, which records them before passing them on.
    pub updates: mpsc::UnboundedSender<TaskStatus>,
}

impl RunCtx {
    fn send(&self, s: TaskStatus) {
        tracing::debug!(task_id = %s.task_id, state = s.state.as_str(), message = ?s.message, "task update");
        let _ = self.updates.send(s);
    }
}

/// Why the runner killed the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Kill,
    MaxCompletionTime,
}

fn duration_ns(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn task_grace(info: &TaskInfo) -> Duration {
    info.kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
        .map_or(DEFAULT_GRACE, |g| duration_ns(g.nanoseconds))
}

/// Waits for a kill request; never completes once the agent loop is gone.
async fn next_kill(control: &mut mpsc::UnboundedReceiver<Control>) -> Option<Duration> {
    match control.recv().await {
        Some(Control::Kill { grace }) => grace,
        None => std::future::pending().await,
    }
}

/// Run the task to its terminal update.
pub async fn run(ctx: Arc<RunCtx>, info: TaskInfo, mut control: mpsc::UnboundedReceiver<Control>) {
    let id = info.task_id.value.clone();
    ctx.send(status::executor(&id, TaskState::TaskStarting));

    let prepared = tokio::select! {
        biased;
        _ = next_kill(&mut control) => None,
        r = prepare(&ctx, &info) => Some(r),
    };
    let (sandbox, launch) = match prepared {
        None => return killed_during_launch(&ctx, &id),
        Some(Err(msg)) => {
            tracing::info!(task_id = %id, error = %msg, "task launch failed");
            ctx.send(
                status::executor(&id, TaskState::TaskFailed)
                    .reason(status::REASON_CONTAINER_LAUNCH_FAILED)
                    .message(msg),
            );
            return;
        }
        Some(Ok(x)) => x,
    };
    if let Ok(Control::Kill { .. }) = control.try_recv() {
        return killed_during_launch(&ctx, &id);
    }
    if let Some(name) = &launch.container {
        if let Err(e) = sandbox.write_container(name) {
            tracing::warn!(task_id = %id, error = %e, "cannot record the container name");
        }
    }
    let mut child = match process::spawn(&launch, &sandbox.dir) {
        Ok(c) => c,
        Err(e) => {
            sandbox.clear_runtime_files();
            ctx.send(
                status::executor(&id, TaskState::TaskFailed)
                    .reason(status::REASON_CONTAINER_LAUNCH_FAILED)
                    .message(format!(
                        "Failed to launch {}: {e}",
                        launch.program.display()
                    )),
            );
            return;
        }
    };
    let pgid = child.id().unwrap_or(0);
    if let Err(e) = sandbox.write_pid(pgid) {
        tracing::warn!(task_id = %id, error = %e, "cannot write the .pid file");
    }
    tracing::info!(task_id = %id, pgid, program = %launch.program.display(), "task running");
    ctx.send(status::executor(&id, TaskState::TaskRunning));

    let final_status = supervise(&ctx, &info, &launch, &mut child, pgid, &mut control).await;
    // Whatever the leader left behind in its group goes with it (Mesos destroys the container).
    process::signal_group(pgid, Signal::SIGKILL);
    sandbox.clear_runtime_files();
    ctx.send(final_status);
}

fn killed_during_launch(ctx: &RunCtx, id: &str) {
    ctx.send(
        status::executor(id, TaskState::TaskKilled)
            .reason(status::REASON_TASK_KILLED_DURING_LAUNCH)
            .message("Task killed during launch"),
    );
}

/// Sandbox, data files, driver checks, fetch: everything before the process starts.
async fn prepare(ctx: &RunCtx, info: &TaskInfo) -> Result<(Sandbox, Launch), String> {
    let id = &info.task_id.value;
    let cfg = &ctx.config;
    let alloc_key = info
        .label("dispatch.alloc")
        .filter(|k| !k.is_empty())
        .unwrap_or(id);
    let sandbox = Sandbox::create(&cfg.sandbox_root, id, alloc_key)
        .map_err(|e| format!("Failed to create the sandbox: {e}"))?;
    if let Some(data) = info.data.as_deref().filter(|d| !d.is_empty()) {
        sandbox
            .write_data(data)
            .map_err(|e| format!("Failed to write the task's files: {e}"))?;
    }
    let command = info.command.clone().unwrap_or_default();
    let image = docker::wanted_image(info)?;
    let docker_cli = match &image {
        Some(image) => Some(docker::check_engine(image).await?),
        None => None,
    };
    let user = if image.is_some() {
        None
    } else {
        process::resolve_user(command.user.as_deref())?
    };
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(sandbox.dir.join("stderr"))
        .map_err(|e| format!("Failed to open the sandbox's stderr: {e}"))?;
    fetch::fetch_all(&ctx.http, &sandbox, &command.uris, &mut log).await?;
    if let Some(u) = &user {
        process::chown_sandbox(&sandbox, u)?;
    }
    let launch = match (image, docker_cli) {
        (Some(image), Some(cli)) => docker::docker_launch(cli, info, &image, &sandbox),
        _ => process::local_launch(&command, &cfg.task_path, &sandbox, user)
            .map_err(|e| format!("Failed to launch the command: {e}"))?,
    };
    Ok((sandbox, launch))
}

/// Wait for the process, applying kills and the max completion time; the terminal update.
async fn supervise(
    ctx: &RunCtx,
    info: &TaskInfo,
    launch: &Launch,
    child: &mut tokio::process::Child,
    pgid: u32,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> TaskStatus {
    let id = info.task_id.value.as_str();
    let default_grace = task_grace(info);
    let max = info
        .max_completion_time
        .as_ref()
        .map(|d| duration_ns(d.nanoseconds));
    let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let max_at = max.map(|m| Instant::now() + m);
    let mut cause: Option<Cause> = None;
    let mut sigkill_at: Option<Instant> = None;
    let mut sigkilled = false;
    let mut control_open = true;

    let start_kill = |cause_now: Cause, grace: Duration| {
        ctx.send(status::executor(id, TaskState::TaskKilling));
        process::signal_group(pgid, Signal::SIGTERM);
        tracing::info!(task_id = id, ?cause_now, ?grace, "killing task");
        Instant::now() + grace
    };

    let exit = loop {
        tokio::select! {
            st = child.wait() => break st,
            ctl = control.recv(), if control_open => match ctl {
                None => control_open = false,
                Some(Control::Kill { grace }) => {
                    let grace = grace.unwrap_or(default_grace);
                    match cause {
                        None => {
                            cause = Some(Cause::Kill);
                            sigkill_at = Some(start_kill(Cause::Kill, grace));
                        }
                        // A second kill may shorten the grace.
                        Some(_) => {
                            let at = Instant::now() + grace;
                            sigkill_at = Some(sigkill_at.map_or(at, |cur| cur.min(at)));
                        }
                    }
                }
            },
            _ = sleep_until(max_at.unwrap_or(far)), if cause.is_none() && max_at.is_some() => {
                cause = Some(Cause::MaxCompletionTime);
                sigkill_at = Some(start_kill(Cause::MaxCompletionTime, default_grace));
            }
            _ = sleep_until(sigkill_at.unwrap_or(far)), if sigkill_at.is_some() && !sigkilled => {
                sigkilled = true;
                tracing::info!(task_id = id, pgid, "grace period over: SIGKILL");
                process::signal_group(pgid, Signal::SIGKILL);
                if let Some(name) = &launch.container {
                    docker::kill_container(name);
                }
            }
        }
    };

    let (ok, message, code) = match exit {
        Ok(st) => process::describe_exit(st),
        Err(e) => {
            return status::executor(id, TaskState::TaskFailed)
                .message(format!("Failed to wait for the command: {e}"));
        }
    };
    match cause {
        Some(Cause::Kill) => status::executor(id, TaskState::TaskKilled)
            .message(message)
            .exit_code(code),
        Some(Cause::MaxCompletionTime) => {
            let limit = humantime::format_duration(max.unwrap_or_default());
            status::executor(id, TaskState::TaskFailed)
                .reason(status::REASON_MAX_COMPLETION_TIME_REACHED)
                .message(format!(
                    "Task exceeded its max completion time of {limit} and was killed ({message})"
                ))
                .exit_code(code)
        }
        None if ok => status::executor(id, TaskState::TaskFinished)
            .message(message)
            .exit_code(code),
        None => status::executor(id, TaskState::TaskFailed)
            .message(message)
            .exit_code(code),
    }
}
