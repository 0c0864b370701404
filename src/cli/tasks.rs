//! `dispatch tasks`: task runs across dispatched jobs and one-off runs, as a table
//! (ID, NAME, JOB, STATE, CPU, MEM, GPU, DISK, AGENT, AGE), from one `GET /v1/allocations`
//! (`active=true` for the default: running tasks only unless `-all` or `-state`).

use serde_json::Value;

use super::format::table;
use super::{AddressArgs, CliError};

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
    let now = crate::clock::Clock::system().now_ns();
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
    let states: Vec<String> = args.states.iter().map(|s| norm_state(s)).collect();
    let running_only = !args.all && states.is_empty();
    let mut query: Vec<(&str, &str)> = Vec::new();
    if running_only {
        query.push(("active", "true"));
    }
    if let Some(j) = &args.job {
        query.push(("job", j.as_str()));
    }
    let allocs: Vec<Value> = client
        .get("/v1/allocations", &query)
        .await?
        .map_err(|f| CliError::new(format!("Error querying allocations: {}", f.message)))?;
    let mut rows = vec![[
        "ID", "NAME", "JOB", "STATE", "CPU", "MEM", "GPU", "DISK", "AGENT", "AGE",
    ]
    .map(String::from)
    .to_vec()];
    for alloc in &allocs {
        let job = alloc["JobID"].as_str().unwrap_or_default();
        for r in alloc["TaskRuns"].as_array().into_iter().flatten() {
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
            let res = &r["Resources"];
            let num = |k: &str| format!("{}", res[k].as_f64().unwrap_or_default());
            rows.push(vec![
                r["TaskID"].as_str().unwrap_or_default().to_string(),
                name,
                job.to_string(),
                state,
                num("Cpus"),
                num("MemoryMB"),
                num("GPUs"),
                num("DiskMB"),
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
