//! `dispatch logs` and `dispatch fs`: a dispatch's output and sandbox files.

use std::io::Write;

use serde_json::Value;

use super::client::escape_segment;
use super::format::table;
use super::{AddressArgs, CliError};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    address: AddressArgs,
    /// Show stderr instead of stdout
    #[arg(long)]
    stderr: bool,
    /// Keep printing new output until the task ends
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last lines (10 unless -n says otherwise)
    #[arg(long)]
    tail: bool,
    /// Number of lines for -tail
    #[arg(short = 'n', value_name = "N")]
    lines: Option<usize>,
    /// Dispatched job ID
    dispatch: String,
    /// Task name (needed when the job has several tasks)
    task: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct FsArgs {
    #[command(flatten)]
    address: AddressArgs,
    /// Dispatched job ID
    dispatch: String,
    /// Path: `<task>/...` (a task's sandbox) or `alloc/...` (shared by its group); empty lists both
    path: Option<String>,
}

pub async fn logs(args: LogsArgs) -> Result<i32, CliError> {
    let client = args.address.client()?;
    let tail = (args.tail || args.lines.is_some()).then(|| args.lines.unwrap_or(10).to_string());
    let mut query: Vec<(&str, &str)> =
        vec![("type", if args.stderr { "stderr" } else { "stdout" })];
    if let Some(task) = &args.task {
        query.push(("task", task));
    }
    if let Some(n) = &tail {
        query.push(("tail", n));
    }
    if args.follow {
        query.push(("follow", "true"));
    }
    let path = format!("/v1/job/{}/logs", escape_segment(&args.dispatch));
    let mut response = client.get_raw(&path, &query, "reading logs").await?;
    let mut out = std::io::stdout();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CliError::new(format!("Error reading logs: {e}")))?
    {
        let _ = out.write_all(&chunk);
        let _ = out.flush();
    }
    Ok(0)
}

pub async fn fs(args: FsArgs) -> Result<i32, CliError> {
    let client = args.address.client()?;
    let path = args.path.clone().unwrap_or_default();
    let url = format!("/v1/job/{}/fs", escape_segment(&args.dispatch));
    let response = client
        .get_raw(&url, &[("path", path.as_str())], "reading files")
        .await?;
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CliError::new(format!("Error reading files: {e}")))?;
    if !is_json {
        let _ = std::io::stdout().write_all(&bytes);
        return Ok(0);
    }
    let entries: Vec<Value> = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::new(format!("Unexpected answer from the server: {e}")))?;
    let mut rows = vec![vec![
        "Mode".to_string(),
        "Size".into(),
        "Modified Time".into(),
        "Name".into(),
    ]];
    for e in entries {
        let name = e["Name"].as_str().unwrap_or_default();
        let is_dir = e["IsDir"].as_bool().unwrap_or(false);
        rows.push(vec![
            e["FileMode"].as_str().unwrap_or_default().to_string(),
            e["Size"].as_u64().unwrap_or(0).to_string(),
            e["ModTime"].as_str().unwrap_or_default().to_string(),
            if is_dir {
                format!("{name}/")
            } else {
                name.to_string()
            },
        ]);
    }
    println!("{}", table(&rows));
    Ok(0)
}
