//! `dispatch job ...`: run (register), dispatch, status, stop, inspect, validate.

use std::io::Read;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{json, Value};

use super::client::{escape_segment, Client, DispatchResponse, JobStub};
use super::format::{now, short_id};
use super::{status, AddressArgs, CliError};
use crate::model::Job;

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Register (or update) a job from an HCL or JSON job file
    Run {
        #[command(flatten)]
        address: AddressArgs,
        /// Job file (HCL, or Nomad API JSON)
        file: PathBuf,
    },
    /// Dispatch a parameterized job with meta and an optional payload
    Dispatch(DispatchArgs),
    /// Show a job's status (for a parameterized job: its dispatched children)
    Status(status::StatusArgs),
    /// Stop a job; a parameterized job's pending dispatches stop with it
    Stop {
        #[command(flatten)]
        address: AddressArgs,
        /// Remove the job (and its dispatched children) instead of only stopping it
        #[arg(long)]
        purge: bool,
        /// Job ID (a parameterized job or a dispatched child)
        job: String,
    },
    /// Print a job as JSON (`{"Job": {...}}`), or a dispatch's rendered Mesos TaskInfos
    Inspect {
        #[command(flatten)]
        address: AddressArgs,
        /// Print the Mesos TaskInfos a dispatched child renders to
        #[arg(long)]
        rendered: bool,
        job: String,
    },
    /// Check a job file without registering it
    Validate {
        /// Job file (HCL, or Nomad API JSON)
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct DispatchArgs {
    #[command(flatten)]
    address: AddressArgs,
    /// Meta key=value for the dispatch (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// Print the IDs and return at once
    #[arg(long)]
    detach: bool,
    /// Dispatch at most once per token: a repeat returns the first dispatch
    #[arg(long, value_name = "TOKEN")]
    idempotency_token: Option<String>,
    /// Put this after `dispatch-` in the child ID
    #[arg(long, value_name = "PREFIX")]
    id_prefix_template: Option<String>,
    /// Priority of this dispatch, 1..100 (default: the job's)
    #[arg(long, value_name = "N")]
    priority: Option<i64>,
    /// Show full IDs
    #[arg(long)]
    verbose: bool,
    /// Follow the dispatch to its end and exit with the task's exit code (the default
    /// unless -detach; accepted for Nomad 2.x compatibility)
    #[arg(long)]
    wait: bool,
    /// Parameterized job ID (or a unique prefix of one)
    job: String,
    /// Payload file, or - for standard input
    payload: Option<String>,
}

pub async fn run(command: JobCommand) -> Result<i32, CliError> {
    match command {
        JobCommand::Run { address, file } => register(&address.client()?, &file).await,
        JobCommand::Dispatch(args) => dispatch(args).await,
        JobCommand::Status(args) => status::run(args).await,
        JobCommand::Stop {
            address,
            purge,
            job,
        } => stop(&address.client()?, &job, purge).await,
        JobCommand::Inspect {
            address,
            rendered,
            job,
        } => inspect(&address.client()?, &job, rendered).await,
        JobCommand::Validate { file } => validate(&file),
    }
}

/// Read and check a job file; warnings (HCL1 constructs) are printed as Nomad prints them.
fn read_job(file: &std::path::Path) -> Result<Job, CliError> {
    let parsed = crate::spec::read_job_file(file)
        .map_err(|e| CliError::new(format!("Error parsing job file {}: {e}", file.display())))?;
    if !parsed.warnings.is_empty() {
        let n = parsed.warnings.len();
        eprintln!(
            "Job Warnings:\n{n} warning{}:\n",
            if n == 1 { "" } else { "s" }
        );
        for w in &parsed.warnings {
            eprintln!("* {w}");
        }
        eprintln!();
    }
    Ok(parsed.job)
}

fn validate(file: &std::path::Path) -> Result<i32, CliError> {
    read_job(file)?;
    println!("Job validation successful");
    Ok(0)
}

async fn register(client: &Client, file: &std::path::Path) -> Result<i32, CliError> {
    let job = read_job(file)?;
    let parameterized = job.is_parameterized();
    let body = json!({ "Job": job });
    client
        .put::<Value>("/v1/jobs", &[], &body)
        .await?
        .map_err(|f| CliError::new(format!("Error submitting job: {}", f.message)))?;
    println!("Job registration successful");
    if !parameterized {
        println!(
            "Note: job {:?} is not parameterized; Dispatch runs jobs when they are dispatched",
            job.id
        );
    }
    Ok(0)
}

/// Resolve a parameterized job from an ID or unique prefix, as Nomad's CLI does. A token
/// that may dispatch but not list jobs (an application's) names the job exactly: the
/// dispatch itself then says whether it may.
async fn resolve_parameterized(client: &Client, prefix: &str) -> Result<String, CliError> {
    let stubs: Vec<JobStub> = match client.get("/v1/jobs", &[("prefix", prefix)]).await? {
        Ok(stubs) => stubs,
        Err(f) if f.status == 403 => return Ok(prefix.to_string()),
        Err(f) => return Err(CliError::new(format!("Error querying jobs: {}", f.message))),
    };
    let params: Vec<&JobStub> = stubs.iter().filter(|s| s.parameterized_job).collect();
    if let Some(exact) = params.iter().find(|s| s.id == prefix) {
        return Ok(exact.id.clone());
    }
    match params.as_slice() {
        [] => Err(CliError::new(format!(
            "No parameterized job(s) with prefix or ID {prefix:?} found"
        ))),
        [one] => Ok(one.id.clone()),
        many => Err(CliError::new(format!(
            "Prefix matched multiple parameterized jobs: {}",
            many.iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn parse_meta(pairs: &[String]) -> Result<serde_json::Map<String, Value>, CliError> {
    let mut meta = serde_json::Map::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(CliError::new(format!(
                "Error parsing meta value: {pair} (expected KEY=VALUE)"
            )));
        };
        meta.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(meta)
}

fn read_payload(source: Option<&str>) -> Result<Option<Vec<u8>>, CliError> {
    let Some(source) = source else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    let result = if source == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(source).and_then(|mut f| f.read_to_end(&mut bytes).map(|_| ()))
    };
    result.map_err(|e| CliError::new(format!("Error reading input data: {source}: {e}")))?;
    Ok(Some(bytes))
}

async fn dispatch(args: DispatchArgs) -> Result<i32, CliError> {
    let meta = parse_meta(&args.meta)?;
    let payload = read_payload(args.payload.as_deref())?;
    let client = args.address.client()?;
    let job = resolve_parameterized(&client, &args.job).await?;
    let mut body = json!({ "Meta": meta });
    if let Some(p) = payload {
        body["Payload"] = Value::String(base64::engine::general_purpose::STANDARD.encode(p));
    }
    if let Some(prefix) = &args.id_prefix_template {
        body["IdPrefixTemplate"] = Value::String(prefix.clone());
    }
    if let Some(priority) = args.priority {
        body["Priority"] = json!(priority);
    }
    let mut query = Vec::new();
    if let Some(t) = &args.idempotency_token {
        query.push(("idempotency_token", t.as_str()));
    }
    let path = format!("/v1/job/{}/dispatch", escape_segment(&job));
    let reply: DispatchResponse = client
        .put(&path, &query, &body)
        .await?
        .map_err(|f| CliError::new(format!("Failed to dispatch job: {}", f.message)))?;
    let mut lines = vec![("Dispatched Job ID", reply.dispatched_job_id.clone())];
    if !reply.eval_id.is_empty() {
        lines.push((
            "Evaluation ID",
            short_id(&reply.eval_id, args.verbose).to_string(),
        ));
    }
    println!("{}", super::format::kv(&lines));
    if args.detach && !args.wait {
        return Ok(0);
    }
    if reply.eval_id.is_empty() {
        // An idempotent repeat: follow the existing dispatch.
        return follow(&client, &reply.dispatched_job_id).await;
    }
    monitor(&client, &reply, args.verbose).await
}

/// Follow the dispatch's evaluation the way Nomad's monitor prints it, then the dispatch
/// itself to its end; the exit code is the task's.
async fn monitor(
    client: &Client,
    reply: &DispatchResponse,
    verbose: bool,
) -> Result<i32, CliError> {
    let eval = short_id(&reply.eval_id, verbose);
    println!();
    println!("==> {}: Monitoring evaluation {eval:?}", now());
    let path = format!("/v1/evaluation/{}", reply.eval_id);
    let ev: Value = client.get(&path, &[]).await??;
    let status = ev["Status"].as_str().unwrap_or("pending").to_string();
    println!(
        "    {}: Evaluation triggered by job {:?}",
        now(),
        reply.dispatched_job_id
    );
    println!(
        "    {}: Evaluation status changed: \"pending\" -> {status:?}",
        now()
    );
    println!(
        "==> {}: Evaluation {eval:?} finished with status {status:?}",
        now()
    );
    follow(client, &reply.dispatched_job_id).await
}

/// Print every state change of a dispatch's tasks until it ends; return its exit code:
/// 0 when complete, the failed task's exit code (1 when it has none) otherwise.
pub async fn follow(client: &Client, child: &str) -> Result<i32, CliError> {
    let job_path = format!("/v1/job/{}", escape_segment(child));
    let allocs_path = format!("{job_path}/allocations");
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut index = 0;
    let mut said_queued = false;
    loop {
        let (allocs, new_index): (Vec<Value>, u64) =
            client.get_blocking(&allocs_path, index, "30s").await??;
        index = new_index.max(index);
        let mut last_exit: Option<i64> = None;
        for alloc in &allocs {
            for run in alloc["TaskRuns"].as_array().into_iter().flatten() {
                let task_id = run["TaskID"].as_str().unwrap_or_default().to_string();
                let state = run["State"].as_str().unwrap_or_default().to_string();
                if seen.get(&task_id) == Some(&state) {
                    continue;
                }
                let task = run["Task"].as_str().unwrap_or_default();
                let attempt = run["Attempt"].as_u64().unwrap_or(1);
                if !seen.contains_key(&task_id) {
                    println!(
                        "    {}: Task {task:?} attempt {attempt} launched on {} (task ID {task_id})",
                        now(),
                        run["AgentID"].as_str().unwrap_or("?")
                    );
                }
                let message = run["Message"].as_str().unwrap_or_default();
                match state.as_str() {
                    "TASK_STAGING" => {}
                    "TASK_STARTING" => println!("    {}: Task {task:?} is starting", now()),
                    "TASK_RUNNING" => println!("    {}: Task {task:?} is running", now()),
                    "TASK_FINISHED" => {
                        println!("    {}: Task {task:?} finished (exit code 0)", now())
                    }
                    other => println!(
                        "    {}: Task {task:?} is {other}{}",
                        now(),
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(": {message}")
                        }
                    ),
                }
                seen.insert(task_id, state);
            }
            for run in alloc["TaskRuns"].as_array().into_iter().flatten() {
                if let Some(code) = run["ExitCode"].as_i64() {
                    if code != 0 {
                        last_exit = Some(code);
                    }
                }
            }
        }
        let job: Value = client.get(&job_path, &[]).await??;
        let status = job["DispatchStatus"].as_str().unwrap_or("pending");
        let ended = matches!(status, "complete" | "failed" | "stopped");
        if ended && job["ModifyIndex"].as_u64().unwrap_or(0) > index {
            // It ended after the allocations were read: read them once more, so the last
            // task states are printed and the exit code is the final one.
            continue;
        }
        let description = job["StatusDescription"].as_str().unwrap_or_default();
        match status {
            "pending" if !said_queued => {
                said_queued = true;
                println!(
                    "==> {}: Dispatch {child:?} is queued{}",
                    now(),
                    if description.is_empty() {
                        String::new()
                    } else {
                        format!(" ({description})")
                    }
                );
            }
            "complete" => {
                println!("==> {}: Dispatch {child:?} complete", now());
                return Ok(0);
            }
            "failed" | "stopped" => {
                println!("==> {}: Dispatch {child:?} {status}: {description}", now());
                if status == "failed" {
                    print!(
                        "{}",
                        super::failure::explain(client, child, &allocs, "    ").await
                    );
                }
                return Ok(last_exit.map_or(1, |c| c as i32));
            }
            _ => {}
        }
    }
}

async fn stop(client: &Client, job: &str, purge: bool) -> Result<i32, CliError> {
    // Refuse unknown IDs clearly instead of answering Nomad's silent no-op.
    let path = format!("/v1/job/{}", escape_segment(job));
    let before: Value = client
        .get(&path, &[])
        .await?
        .map_err(|f| CliError::new(format!("No job with ID {job:?} found ({})", f.message)))?;
    let query: &[(&str, &str)] = if purge { &[("purge", "true")] } else { &[] };
    let _reply: Value = client
        .delete(&path, query)
        .await?
        .map_err(|f| CliError::new(format!("Error deregistering job: {}", f.message)))?;
    let what = if purge { "purged" } else { "stopped" };
    println!("==> {}: Job {job:?} {what}", now());
    if before["ParameterizedJob"].is_object() && before["Dispatched"] != Value::Bool(true) {
        let note = if purge {
            "its dispatched jobs were removed with it"
        } else {
            "its pending dispatched jobs were stopped with it"
        };
        println!("    {}: {note}", now());
    }
    Ok(0)
}

async fn inspect(client: &Client, job: &str, rendered: bool) -> Result<i32, CliError> {
    let mut path = format!("/v1/job/{}", escape_segment(job));
    if rendered {
        path.push_str("/rendered");
    }
    let value: Value = client
        .get(&path, &[])
        .await?
        .map_err(|f| CliError::new(format!("Error inspecting job: {}", f.message)))?;
    let wrapped = if rendered {
        value
    } else {
        json!({ "Job": value })
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&wrapped).unwrap_or_default()
    );
    Ok(0)
}
