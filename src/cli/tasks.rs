//! `dispatch tasks`: task runs across dispatched jobs and one-off runs, as a table
//! (ID, NAME, JOB, STATE, CPU, MEM, GPU, DISK, AGENT, AGE). Built from `GET /v1/jobs` and
//! each child's `/allocations`; running tasks only unless `-all` or `-state`.

use serde_json::Value;

use super::client::{escape_segment, JobStub};
use super::format::table;
use super::{AddressArgs, CliError};
use crate::model::Job;

#[derive(Debug, clap::Args)]
pub struct TasksArgs {
    #[command(flatten)]
    address: AddressArgs,
    /// Every task run, not only the running ones
    #[arg(long)]
    all: bool,
    /// Only runs in this state (TASK_FAILED or failed; repeatable)
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Only tasks whose name contains this
    #[arg(long)]
    name: Option<String>,
    /// Only this job (a parent job ID, a dispatched child ID, or a prefix of either)
    #[arg(long)]
    job: Option<String>,
}

fn norm_state(s: &str) -> String {
    let up = s.to_ascii_uppercase();
    if up.starts_with("TASK_") {
        up
    } else {
        format!("TASK_{up}")
    }
}

fn age(launched_ns: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    let secs = ((now - launched_ns) / 1_000_000_000).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

pub async fn run(args: TasksArgs) -> Result<i32, CliError> {
    let client = args.address.client()?;
    let stubs: Vec<JobStub> = client
        .get("/v1/jobs", &[])
        .await?
        .map_err(|f| CliError::new(format!("Error querying jobs: {}", f.message)))?;
    let states: Vec<String> = args.states.iter().map(|s| norm_state(s)).collect();
    let running_only = !args.all && states.is_empty();
    let mut rows = vec![[
        "ID", "NAME", "JOB", "STATE", "CPU", "MEM", "GPU", "DISK", "AGENT", "AGE",
    ]
    .map(String::from)
    .to_vec()];
    for stub in stubs.iter().filter(|s| !s.parent_id.is_empty()) {
        if let Some(j) = &args.job {
            if !stub.id.starts_with(j.as_str()) && !stub.parent_id.starts_with(j.as_str()) {
                continue;
            }
        }
        if running_only && stub.status != "running" {
            continue;
        }
        let path = format!("/v1/job/{}", escape_segment(&stub.id));
        let Ok(allocs) = client
            .get::<Vec<Value>>(&format!("{path}/allocations"), &[])
            .await?
        else {
            continue;
        };
        let runs: Vec<Value> = allocs
            .iter()
            .flat_map(|a| a["TaskRuns"].as_array().cloned().unwrap_or_default())
            .collect();
        if runs.is_empty() {
            continue;
        }
        let job: Option<Job> = client.get(&path, &[]).await?.ok();
        for r in runs {
            let state = r["State"].as_str().unwrap_or("TASK_STAGING").to_string();
            let name = r["Task"].as_str().unwrap_or_default().to_string();
            if running_only
                && !matches!(
                    state.as_str(),
                    "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING"
                )
            {
                continue;
            }
            if !states.is_empty() && !states.contains(&state) {
                continue;
            }
            if let Some(n) = &args.name {
                if !name.contains(n.as_str()) {
                    continue;
                }
            }
            let res = job
                .as_ref()
                .and_then(|j| {
                    j.task_groups
                        .iter()
                        .flat_map(|g| &g.tasks)
                        .find(|t| t.name == name)
                })
                .and_then(|t| t.resources.clone())
                .unwrap_or_default();
            let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "0".into());
            rows.push(vec![
                r["TaskID"].as_str().unwrap_or_default().to_string(),
                name,
                stub.id.clone(),
                state,
                format!("{}", res.mesos_cpus()),
                opt(res.memory_mb),
                opt(res.gpus),
                opt(res.disk_mb),
                r["AgentID"].as_str().unwrap_or_default().to_string(),
                age(r["LaunchedAt"].as_i64().unwrap_or_default()),
            ]);
        }
    }
    if rows.len() == 1 {
        println!("No tasks");
    } else {
        println!("{}", table(&rows));
    }
    Ok(0)
}
