//! `dispatch status [JOB]` and `dispatch job status [JOB]`.

use super::client::{escape_segment, Client, JobStub, JobSummary};
use super::format::{kv, table, time};
use super::{AddressArgs, CliError};
use crate::model::Job;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    address: AddressArgs,
    /// Show full IDs
    #[arg(long)]
    verbose: bool,
    /// Job ID or prefix; without it, list every job
    job: Option<String>,
}

pub async fn run(args: StatusArgs) -> Result<i32, CliError> {
    let client = args.address.client()?;
    match &args.job {
        None => list(&client).await,
        Some(job) => show(&client, job).await,
    }
}

async fn list(client: &Client) -> Result<i32, CliError> {
    let stubs: Vec<JobStub> = client
        .get("/v1/jobs", &[])
        .await?
        .map_err(|f| CliError::new(format!("Error querying jobs: {}", f.message)))?;
    if stubs.is_empty() {
        println!("No running jobs");
        return Ok(0);
    }
    let mut rows = vec![vec![
        "ID".into(),
        "Type".into(),
        "Priority".into(),
        "Status".into(),
        "Submit Date".into(),
    ]];
    for s in &stubs {
        rows.push(vec![
            s.id.clone(),
            s.display_type(),
            s.priority.to_string(),
            s.status.clone(),
            time(s.submit_time),
        ]);
    }
    println!("{}", table(&rows));
    Ok(0)
}

/// Find the job: an exact ID, or the only job with that prefix.
async fn resolve(client: &Client, prefix: &str) -> Result<String, CliError> {
    let stubs: Vec<JobStub> = client
        .get("/v1/jobs", &[("prefix", prefix)])
        .await?
        .map_err(|f| CliError::new(format!("Error querying jobs: {}", f.message)))?;
    if stubs.iter().any(|s| s.id == prefix) {
        return Ok(prefix.to_string());
    }
    match stubs.as_slice() {
        [] => Err(CliError::new(format!(
            "No job(s) with prefix or ID {prefix:?} found"
        ))),
        [one] => Ok(one.id.clone()),
        many => {
            let mut rows = vec![vec!["ID".into(), "Type".into(), "Status".into()]];
            rows.extend(
                many.iter()
                    .map(|s| vec![s.id.clone(), s.display_type(), s.status.clone()]),
            );
            Err(CliError::new(format!(
                "Prefix matched multiple jobs\n\n{}",
                table(&rows)
            )))
        }
    }
}

async fn show(client: &Client, prefix: &str) -> Result<i32, CliError> {
    let id = resolve(client, prefix).await?;
    let path = format!("/v1/job/{}", escape_segment(&id));
    let job: Job = client
        .get(&path, &[])
        .await?
        .map_err(|f| CliError::new(format!("Error querying job: {}", f.message)))?;
    let summary: JobSummary = client
        .get(&format!("{path}/summary"), &[])
        .await?
        .map_err(|f| CliError::new(format!("Error querying job summary: {}", f.message)))?;
    println!("{}", header(&job));
    if job.is_parameterized() {
        print_parameterized(client, &job, &summary).await?;
    } else {
        print_groups(&summary);
        let allocs = print_runs(client, &path).await?;
        let failed = job.extra.get("DispatchStatus").and_then(|v| v.as_str()) == Some("failed");
        if failed {
            let why = super::failure::explain(client, &id, &allocs, "").await;
            if !why.is_empty() {
                println!();
                print!("{why}");
            }
        }
    }
    Ok(0)
}

fn header(job: &Job) -> String {
    let status = if job.stop {
        format!("{} (stopped)", job.status)
    } else {
        job.status.clone()
    };
    let periodic = job.extra.get("Periodic").is_some_and(|p| !p.is_null());
    let mut pairs = vec![
        ("ID", job.id.clone()),
        ("Name", job.name.clone()),
        ("Submit Date", time(job.submit_time)),
        ("Type", job.r#type.clone()),
        ("Priority", job.priority.to_string()),
        ("Datacenters", job.datacenters.join(",")),
        ("Namespace", job.namespace.clone()),
        ("Node Pool", job.node_pool.clone()),
        ("Status", status),
        ("Periodic", periodic.to_string()),
        ("Parameterized", job.is_parameterized().to_string()),
    ];
    if job.dispatched {
        if !job.dispatch_idempotency_token.is_empty() {
            pairs.push(("Idempotency Token", job.dispatch_idempotency_token.clone()));
        }
        let meta: Vec<String> = job.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.push(("Meta", meta.join(" ")));
        if let Some(s) = job.extra.get("DispatchStatus").and_then(|v| v.as_str()) {
            pairs.push(("Dispatch Status", s.to_string()));
        }
        if !job.status_description.is_empty() {
            pairs.push(("Description", job.status_description.clone()));
        }
    }
    kv(&pairs)
}

async fn print_parameterized(
    client: &Client,
    job: &Job,
    summary: &JobSummary,
) -> Result<(), CliError> {
    let Some(p) = &job.parameterized else {
        return Ok(());
    };
    println!();
    println!("Parameterized Job");
    let mut pairs = vec![("Payload", p.payload.clone())];
    if !p.meta_required.is_empty() {
        pairs.push(("Required Metadata", p.meta_required.join(", ")));
    }
    if !p.meta_optional.is_empty() {
        pairs.push(("Optional Metadata", p.meta_optional.join(", ")));
    }
    if p.max_running > 0 {
        pairs.push(("Max Running", p.max_running.to_string()));
    }
    println!("{}", kv(&pairs));
    let children = summary.children.as_ref();
    println!();
    println!("Parameterized Job Summary");
    println!(
        "{}",
        table(&[
            vec!["Pending".into(), "Running".into(), "Dead".into()],
            vec![
                children.map_or(0, |c| c.pending).to_string(),
                children.map_or(0, |c| c.running).to_string(),
                children.map_or(0, |c| c.dead).to_string(),
            ],
        ])
    );
    let prefix = format!("{}/dispatch-", job.id);
    let stubs: Vec<JobStub> = client
        .get("/v1/jobs", &[("prefix", prefix.as_str())])
        .await?
        .map_err(|f| CliError::new(format!("Error querying dispatched jobs: {}", f.message)))?;
    let children: Vec<&JobStub> = stubs.iter().filter(|s| s.parent_id == job.id).collect();
    println!();
    if children.is_empty() {
        println!("No dispatched instances of parameterized job found");
        return Ok(());
    }
    println!("Dispatched Jobs");
    let mut rows = vec![vec!["ID".into(), "Status".into()]];
    rows.extend(
        children
            .iter()
            .map(|s| vec![s.id.clone(), s.status.clone()]),
    );
    println!("{}", table(&rows));
    Ok(())
}

fn print_groups(summary: &JobSummary) {
    println!();
    println!("Summary");
    let mut rows = vec![[
        "Task Group",
        "Queued",
        "Starting",
        "Running",
        "Failed",
        "Complete",
        "Lost",
        "Unknown",
    ]
    .map(String::from)
    .to_vec()];
    for (name, g) in &summary.summary {
        rows.push(vec![
            name.clone(),
            g.queued.to_string(),
            g.starting.to_string(),
            g.running.to_string(),
            g.failed.to_string(),
            g.complete.to_string(),
            g.lost.to_string(),
            g.unknown.to_string(),
        ]);
    }
    println!("{}", table(&rows));
}

/// Every attempt of every task, from the job's allocations (returned).
async fn print_runs(client: &Client, path: &str) -> Result<Vec<serde_json::Value>, CliError> {
    let allocs: Vec<serde_json::Value> = client
        .get(&format!("{path}/allocations"), &[])
        .await?
        .map_err(|f| CliError::new(format!("Error querying allocations: {}", f.message)))?;
    println!();
    println!("Task Runs");
    let mut rows = vec![[
        "Task",
        "Attempt",
        "State",
        "Exit Code",
        "Agent",
        "Launched",
        "Updated",
        "Message",
    ]
    .map(String::from)
    .to_vec()];
    for alloc in &allocs {
        for run in alloc["TaskRuns"].as_array().into_iter().flatten() {
            rows.push(vec![
                run["Task"].as_str().unwrap_or_default().to_string(),
                run["Attempt"].as_u64().unwrap_or(0).to_string(),
                run["State"].as_str().unwrap_or_default().to_string(),
                run["ExitCode"]
                    .as_i64()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                run["AgentID"].as_str().unwrap_or_default().to_string(),
                time(run["LaunchedAt"].as_i64().unwrap_or(0)),
                time(run["UpdatedAt"].as_i64().unwrap_or(0)),
                run["Message"].as_str().unwrap_or_default().to_string(),
            ]);
        }
    }
    if rows.len() == 1 {
        println!("No tasks launched yet");
    } else {
        println!("{}", table(&rows));
    }
    Ok(allocs)
}
