//! `dispatch run [FILE | -]`: a Mesosfile, a mesos-batch task list, an Org document or a
//! Nomad job file run once as a batch.
//!
//! The file becomes a `model::Job` (`crate::batch`), registered over HTTP (`PUT /v1/jobs`),
//! dispatched once (`PUT /v1/job/<id>/dispatch`) and, unless `-detach`, followed to its end
//! with `job::follow`: the exit code is 0 only when every task FINISHED. A failed run prints a
//! report naming each task that did not finish, its state, message and command.
//!
//! Where: the server at `-address`, or, with `-master` (or an Org `#+master` and no server
//! address), a server started inside this command as its own framework (`standalone`).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::client::{escape_segment, Client, DispatchResponse};
use super::format::{now, table};
use super::{standalone, AddressArgs, CliError};
use crate::batch::{self, Format, Options};
use crate::model::Job;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    address: AddressArgs,
    /// Force the format: mesosfile, tasklist, org or hcl (default: detected)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Run the tasks one after another: task n+1 starts only after task n FINISHED
    #[arg(long)]
    sync: bool,
    /// Relaunch a failed task up to N times (new task IDs, backoff 1s, 2s, 4s ... 60s)
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry: u32,
    /// Keep failed tasks alive: relaunch each failure without limit (new task IDs, backoff
    /// 1s, 2s, 4s ... 60s) until it finishes or the run is stopped; -retry N bounds it instead
    #[arg(long, conflicts_with = "retry")]
    restart: bool,
    /// Kill the run's tasks this long after they start (10secs, 2mins, 90s, 1h)
    #[arg(long, value_name = "DURATION")]
    kill_after: Option<String>,
    /// Register and dispatch, print the IDs and return at once
    #[arg(long)]
    detach: bool,
    /// Job ID for the run (default: run-<file name>)
    #[arg(long, value_name = "ID")]
    name: Option<String>,
    /// Print the tasks the file converts to, without launching anything
    #[arg(long)]
    show: bool,
    /// mesos-batch --master: run as this command's own Mesos framework on these masters
    /// (host:port, comma-separated, or zk://host:port/mesos), no server needed; it ends
    /// with the command
    #[arg(long, value_name = "LIST", conflicts_with_all = ["address", "detach"])]
    master: Option<String>,
    /// With -master: how long to wait for the master to accept the run's framework (and
    /// for it to come back if lost) before giving up (90s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    connect_timeout: String,
    /// With -master: CA bundle (PEM) to check https:// masters against (instead of the
    /// system's roots); masters found in ZooKeeper are then reached over https
    #[arg(long, value_name = "FILE", requires = "master")]
    master_ca_file: Option<PathBuf>,
    /// mesos-batch: framework name (with -master: the run's framework; else compared with the server's)
    #[arg(long, value_name = "NAME")]
    framework_name: Option<String>,
    /// mesos-batch: role (with -master: the run's framework; else compared with the server's)
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
    /// mesos-batch: principal (with -master: the run's framework; else compared with the server's)
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// mesos-batch: secret (with -master: the run's framework; else compared with the server's)
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// mesos-batch: checkpoint (with -master: the run's framework; else compared with the server's)
    #[arg(long)]
    checkpoint: bool,
    /// mesos-batch: framework capabilities, comma separated (with -master: the run's framework; else compared with the server's)
    #[arg(long, value_name = "LIST")]
    capabilities: Option<String>,
    /// mesos-batch: json or protobuf (with -master: the run's framework; else compared with the server's)
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Mesosfile / task list / Org / job file; `-` for standard input; inline task-list
    /// JSON; file:///path [default: ./Mesosfile]
    file: Option<String>,
}

/// Where the file came from: its text, a path for format detection, a stem for the ID.
struct Source {
    text: String,
    path: Option<PathBuf>,
    label: String,
    stem: String,
}

fn read_source(arg: Option<&str>) -> Result<Source, CliError> {
    let arg = arg.unwrap_or("Mesosfile");
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::new(format!("Error reading standard input: {e}")))?;
        return Ok(Source {
            text,
            path: None,
            label: "standard input".into(),
            stem: "stdin".into(),
        });
    }
    if arg.trim_start().starts_with(['{', '[']) {
        return Ok(Source {
            text: arg.to_string(),
            path: None,
            label: "the inline task list".into(),
            stem: "tasklist".into(),
        });
    }
    let path = PathBuf::from(arg.strip_prefix("file://").unwrap_or(arg));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::new(format!("Error reading {}: {e}", path.display())))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("file")
        .to_string();
    Ok(Source {
        text,
        label: path.display().to_string(),
        path: Some(path),
        stem,
    })
}

fn check_mesos_flags(args: &RunArgs) -> Result<(), CliError> {
    if let Some(ct) = &args.content_type {
        if !matches!(ct.to_ascii_lowercase().as_str(), "json" | "protobuf") {
            return Err(CliError::new(format!(
                "Invalid -content-type {ct:?}: expected json or protobuf"
            )));
        }
    }
    if let Some(caps) = &args.capabilities {
        standalone::check_capabilities(caps)?;
    }
    Ok(())
}

/// A server on Mesos that lost (or never got) its subscription queues the run without
/// launching it: say why, rather than leave the user watching a pending run.
fn not_subscribed_note(mesos: &Value) -> Option<String> {
    let conn = &mesos["Connection"];
    let last_error = conn["LastError"].as_str()?;
    (conn["State"] != "subscribed").then(|| {
        format!("the server is not subscribed to Mesos ({last_error}); the run's tasks launch once it is")
    })
}

/// The server's cluster as `dispatch run` should know it: whether it is subscribed, and
/// mesos-batch's framework flags (which describe the framework, the server's) compared with
/// what the server reports.
async fn cluster_notes(
    args: &RunArgs,
    client: &super::client::Client,
    org_master: Option<&str>,
) -> Vec<String> {
    let given: Vec<(&str, Option<String>)> = [
        ("-framework-name", args.framework_name.clone()),
        ("-role", args.role.clone()),
        ("-principal", args.principal.clone()),
        ("-secret", args.secret.as_ref().map(|_| String::new())),
        ("-checkpoint", args.checkpoint.then(|| "true".to_string())),
        ("-capabilities", args.capabilities.clone()),
        ("-content-type", args.content_type.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .collect();
    let server: Value = match client.get::<Value>("/v1/agent/self", &[]).await {
        Ok(Ok(v)) => v,
        _ => Value::Null,
    };
    let mesos = &server["config"]["Dispatch"]["Mesos"];
    let mut notes: Vec<String> = not_subscribed_note(mesos).into_iter().collect();
    if given.is_empty() && org_master.is_none() {
        return notes;
    }
    if let Some(m) = org_master {
        let wanted = standalone::masters(m);
        let theirs: Vec<&str> = mesos["Masters"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !mesos.is_object() {
            notes.push(format!(
                "#+master: {m} ignored: the server runs tasks on its embedded local runner (start it with `dispatch server -mesos-master {m}` to run on that cluster)"
            ));
        } else if !wanted.iter().any(|w| theirs.contains(&w.as_str())) {
            notes.push(format!(
                "#+master: {m} differs from the server's masters ({}); the server's apply",
                theirs.join(",")
            ));
        }
    }
    if given.is_empty() {
        return notes;
    }
    if !mesos.is_object() {
        let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
        notes.push(format!(
            "{} ignored: the server runs tasks on its embedded local runner (framework settings are `dispatch server -mesos-*` flags)",
            names.join(", ")
        ));
        return notes;
    }
    for (flag, value) in given {
        let value = value.unwrap_or_default();
        let (server_flag, matches, theirs) = match flag {
            "-framework-name" => (
                "-mesos-framework-name",
                mesos["FrameworkName"] == value.as_str(),
                mesos["FrameworkName"].to_string(),
            ),
            "-role" => (
                "-mesos-role",
                mesos["Roles"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == value.as_str())),
                mesos["Roles"].to_string(),
            ),
            "-principal" => (
                "-mesos-principal",
                mesos["Principal"] == value.as_str(),
                mesos["Principal"].to_string(),
            ),
            "-secret" => (
                "-mesos-secret-file",
                mesos["Principal"].is_string(),
                "no credentials".to_string(),
            ),
            "-checkpoint" => ("", true, String::new()),
            "-capabilities" => {
                let have: Vec<&str> = mesos["Capabilities"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let all = value
                    .split(',')
                    .map(|c| c.trim().to_ascii_uppercase())
                    .filter(|c| !c.is_empty())
                    .all(|c| have.contains(&c.as_str()));
                (
                    "-mesos-capabilities",
                    all,
                    mesos["Capabilities"].to_string(),
                )
            }
            _ => (
                "-mesos-content-type",
                mesos["ContentType"] == value.to_ascii_lowercase().as_str(),
                mesos["ContentType"].to_string(),
            ),
        };
        if !matches {
            notes.push(format!(
                "{flag} {value:?} differs from the server's framework ({theirs}); the server's setting applies (dispatch server {server_flag})"
            ));
        }
    }
    notes
}

/// Read, detect, parse and convert: the job `dispatch run` registers.
/// The job to register, notes for the user, and the Org document's `#+master:` if any.
fn build_job(args: &RunArgs) -> Result<(Job, Vec<String>, Option<String>), CliError> {
    let kill_after_ns = args
        .kill_after
        .as_deref()
        .map(batch::parse_duration)
        .transpose()
        .map_err(|e| CliError::new(format!("Invalid -kill-after: {e}")))?;
    let forced = args
        .format
        .as_deref()
        .map(Format::parse)
        .transpose()
        .map_err(CliError::new)?;
    check_mesos_flags(args)?;
    let mut notes = Vec::new();
    let source = read_source(args.file.as_deref())?;
    let format = match forced {
        Some(f) => f,
        None => batch::detect(source.path.as_deref(), &source.text)
            .map_err(|e| CliError::new(format!("Error reading {}: {e}", source.label)))?,
    };
    let filename = source
        .path
        .as_deref()
        .and_then(Path::to_str)
        .unwrap_or("stdin")
        .to_string();
    let parsed = batch::parse(format, &source.text, &filename).map_err(|e| {
        CliError::new(format!(
            "Error parsing {} as {}: {e}",
            source.label,
            format.name()
        ))
    })?;
    notes.extend(parsed.notes.iter().cloned());
    let master = parsed.master.clone();
    let id = match &args.name {
        Some(n) if !n.trim().is_empty() => batch::sanitize(n.trim()),
        _ => batch::default_id(&source.stem),
    };
    let opts = Options {
        id,
        sync: args.sync,
        retry: args.retry,
        restart: args.restart,
        kill_after_ns,
    };
    let job = batch::to_job(parsed, &opts)
        .map_err(|e| CliError::new(format!("Error in {}: {e}", source.label)))?;
    Ok((job, notes, master))
}

fn show(job: &Job) {
    let mut rows = vec![vec![
        "GROUP".to_string(),
        "TASK".into(),
        "LANG/DRIVER".into(),
        "CPUS".into(),
        "MEM".into(),
        "DISK".into(),
        "GPUS".into(),
        "IMAGE".into(),
        "AFTER".into(),
        "COMMAND".into(),
    ]];
    for g in &job.task_groups {
        for t in &g.tasks {
            let r = t.resources.clone().unwrap_or_default();
            let command = batch::command_line(t);
            let first = command.lines().next().unwrap_or_default().to_string();
            let command = if command.lines().count() > 1 {
                format!("{first} ...")
            } else {
                first
            };
            rows.push(vec![
                g.name.clone(),
                t.name.clone(),
                t.meta
                    .get("org.lang")
                    .cloned()
                    .unwrap_or_else(|| t.driver.clone()),
                format!("{}", r.mesos_cpus()),
                r.memory_mb.map(|m| m.to_string()).unwrap_or_default(),
                r.disk_mb.map(|m| m.to_string()).unwrap_or_default(),
                r.gpus.map(|m| m.to_string()).unwrap_or_default(),
                t.config
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                t.depends_on.join(","),
                command,
            ]);
        }
    }
    println!("Job {:?}: {} task(s)", job.id, rows.len() - 1);
    println!("{}", table(&rows));
}

pub async fn run(args: RunArgs) -> Result<i32, CliError> {
    let (job, notes, org_master) = build_job(&args)?;
    for n in &notes {
        eprintln!("Note: {n}");
    }
    if args.show {
        show(&job);
        return Ok(0);
    }
    let Some((masters, why)) = own_framework_masters(&args, org_master.as_deref()) else {
        let client = args.address.client()?;
        for n in cluster_notes(&args, &client, org_master.as_deref()).await {
            eprintln!("Note: {n}");
        }
        return submit_and_follow(&args, &job, &client).await;
    };
    if args.detach {
        return Err(CliError::new(format!(
            "-detach needs a server: the run's own framework ({why}) ends with this command; \
             start `dispatch server -mesos-master {masters}` and run with -address instead"
        )));
    }
    let connect_timeout = batch::parse_duration(&args.connect_timeout)
        .map(|ns| std::time::Duration::from_nanos(ns.max(0) as u64))
        .map_err(|e| CliError::new(format!("Invalid -connect-timeout: {e}")))?;
    let settings = standalone::settings(&standalone::Framework {
        masters,
        name: args.framework_name.as_deref(),
        role: args.role.as_deref(),
        principal: args.principal.as_deref(),
        secret: args.secret.as_deref(),
        capabilities: args.capabilities.as_deref(),
        content_type: args.content_type.as_deref(),
        ca_file: args.master_ca_file.as_deref(),
    })?;
    init_framework_log();
    println!(
        "==> {}: Running as Mesos framework {:?} on {} ({why})",
        now(),
        settings.framework_name,
        settings.masters
    );
    let own = standalone::Standalone::start(settings, &job).await?;
    let result = tokio::select! {
        result = async {
            own.wait_subscribed(connect_timeout).await?;
            tokio::select! {
                result = submit_and_follow(&args, &job, &own.client) => result,
                e = own.lost_subscription(connect_timeout) => Err(e),
            }
        } => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Interrupted: the run's framework ends with this command (Mesos kills what still runs)");
            Ok(130)
        }
    };
    own.stop().await;
    result
}

/// The masters of the run's own framework: `-master`, else an Org document's `#+master`
/// when no server address is set (flag, DISPATCH_ADDR or NOMAD_ADDR). `None`: use the server.
fn own_framework_masters<'a>(
    args: &'a RunArgs,
    org_master: Option<&'a str>,
) -> Option<(&'a str, &'static str)> {
    if let Some(m) = args.master.as_deref() {
        return Some((m, "-master"));
    }
    org_master
        .filter(|_| !args.address.is_set())
        .map(|m| (m, "#+master, no server address set"))
}

/// The run's framework logs errors on stderr; warnings too when stderr is not a terminal (a
/// log file). Connection problems are the command's own messages (`standalone`), not
/// repeated log lines.
fn init_framework_log() {
    let level = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        "error"
    } else {
        "warn"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Register the run's job, dispatch it once and (unless `-detach`) follow it to its end.
async fn submit_and_follow(args: &RunArgs, job: &Job, client: &Client) -> Result<i32, CliError> {
    client
        .put::<Value>("/v1/jobs", &[], &json!({ "Job": job }))
        .await?
        .map_err(|f| CliError::new(format!("Error submitting job: {}", f.message)))?;
    let path = format!("/v1/job/{}/dispatch", escape_segment(&job.id));
    let reply: DispatchResponse = client
        .put(&path, &[], &json!({}))
        .await?
        .map_err(|f| CliError::new(format!("Failed to dispatch job: {}", f.message)))?;
    let child = reply.dispatched_job_id;
    let tasks: usize = job.task_groups.iter().map(|g| g.tasks.len()).sum();
    println!("Job ID            = {}", job.id);
    println!("Dispatched Job ID = {child}");
    println!("Tasks             = {tasks}");
    if args.detach {
        return Ok(0);
    }
    let follow = super::job::follow(client, &child);
    tokio::pin!(follow);
    let code = tokio::select! {
        code = &mut follow => code?,
        note = watch_too_large(client, &child) => {
            println!("==> {}: {note}; stopping the run", now());
            let _ = client
                .delete::<Value>(&format!("/v1/job/{}", escape_segment(&child)), &[])
                .await?;
            follow.await?
        }
    };
    if code != 0 {
        report(client, &child).await?;
    }
    Ok(code)
}

fn is_active(state: &str) -> bool {
    matches!(
        state,
        "" | "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"
    )
}

/// Resolves when the run waits for a task no agent can hold and nothing else of it is
/// active: the others have been given their chance; waiting longer would hang the run.
async fn watch_too_large(client: &Client, child: &str) -> String {
    let job_path = format!("/v1/job/{}", escape_segment(child));
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Ok(Ok(job)) = client.get::<Value>(&job_path, &[]).await else {
            continue;
        };
        let note = job["StatusDescription"].as_str().unwrap_or_default();
        if !note.contains("no agent has offered that much") {
            continue;
        }
        let Ok(Ok(allocs)) = client
            .get::<Vec<Value>>(&format!("{job_path}/allocations"), &[])
            .await
        else {
            continue;
        };
        let active = allocs
            .iter()
            .flat_map(|a| a["TaskRuns"].as_array().cloned().unwrap_or_default())
            .any(|r| is_active(r["State"].as_str().unwrap_or_default()));
        if !active {
            return format!("A task is too large for every agent ({note})");
        }
    }
}

/// Name each task that did not finish: its state, message, exit code and command.
async fn report(client: &Client, child: &str) -> Result<(), CliError> {
    let job_path = format!("/v1/job/{}", escape_segment(child));
    let job: Job = client.get(&job_path, &[]).await??;
    let allocs: Vec<Value> = client
        .get(&format!("{job_path}/allocations"), &[])
        .await??;
    let runs: Vec<Value> = allocs
        .iter()
        .flat_map(|a| a["TaskRuns"].as_array().cloned().unwrap_or_default())
        .collect();
    let mut lines = Vec::new();
    for g in &job.task_groups {
        for t in &g.tasks {
            let last = runs
                .iter()
                .filter(|r| r["Task"].as_str() == Some(t.name.as_str()))
                .max_by_key(|r| r["Attempt"].as_u64().unwrap_or(0));
            let (state, detail) = match last {
                None => ("not launched".to_string(), job.status_description.clone()),
                Some(r) => {
                    let state = r["State"].as_str().unwrap_or("TASK_STAGING").to_string();
                    if state == "TASK_FINISHED" {
                        continue;
                    }
                    let mut detail = r["Message"].as_str().unwrap_or_default().to_string();
                    if let Some(code) = r["ExitCode"].as_i64() {
                        detail = format!("exit code {code}; {detail}");
                    }
                    let attempts = r["Attempt"].as_u64().unwrap_or(1);
                    if attempts > 1 {
                        detail = format!("after {attempts} attempts; {detail}");
                    }
                    (state, detail)
                }
            };
            let command = batch::command_line(t);
            let command = command.lines().collect::<Vec<_>>().join("; ");
            let mut line = format!(
                "  - task {:?}: {state}{}\n    command: {command}",
                t.name,
                if detail.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", detail.trim().trim_end_matches(';'))
                },
            );
            if let Some(stderr) = super::failure::stderr_tail(client, child, &t.name).await {
                line.push_str(&format!("\n    stderr (last {} line(s)):", stderr.len()));
                for l in stderr {
                    line.push_str(&format!("\n      {l}"));
                }
            }
            lines.push(line);
        }
    }
    let total: usize = job.task_groups.iter().map(|g| g.tasks.len()).sum();
    eprintln!(
        "Run {child:?} failed: {} of {total} task(s) did not finish:",
        lines.len()
    );
    for l in lines {
        eprintln!("{l}");
    }
    Ok(())
}
