//! One-off batch runs: Mesosfiles (mesos-cli), task lists (mesos-batch) and Org documents
//! (Org Babel on Mesos) converted into a `model::Job`.
//!
//! Every format becomes *items*: a list of tasks launched together (one task, or a Mesosfile
//! group entry). `to_job` turns items into a batch job with a `parameterized {}` block
//! (payload forbidden) so that `dispatch run` can register it and dispatch it once, exactly
//! like any other dispatch (durable, retried, observable, metered).
//!
//! * Without `-sync` every item is its own task group: items run in parallel and a task too
//!   large for the machine does not hold up the others (each group is its own launch unit).
//! * With `-sync` all items go into one group `run`; the tasks of item n+1 `depends_on` every
//!   task of item n (a pipeline sharing the group's `alloc/` directory).

pub mod mesosfile;
pub mod org;

use std::path::Path;

use crate::model::job::{Parameterized, ReschedulePolicy, RestartPolicy, Task, TaskGroup};
use crate::model::Job;

/// Input formats `dispatch run` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mesosfile,
    TaskList,
    Org,
    Hcl,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "mesosfile" | "yaml" | "yml" => Ok(Format::Mesosfile),
            "tasklist" | "task-list" | "task_list" => Ok(Format::TaskList),
            "org" => Ok(Format::Org),
            "hcl" | "nomad" => Ok(Format::Hcl),
            other => Err(format!(
                "unknown format {other:?}: expected mesosfile, tasklist, org or hcl"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Mesosfile => "mesosfile",
            Format::TaskList => "tasklist",
            Format::Org => "org",
            Format::Hcl => "hcl",
        }
    }
}

/// Tasks launched together (one task group unless `-sync`).
#[derive(Debug, Clone, Default)]
pub struct Item {
    pub tasks: Vec<Task>,
}

/// A parsed file: its items plus notes for the user (fields that only matter on Mesos, ...).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub items: Vec<Item>,
    pub notes: Vec<String>,
    /// Org `#+master: host:port`.
    pub master: Option<String>,
    /// An HCL/JSON Nomad job, used as is (only ID, type and parameterized are set).
    pub job: Option<Job>,
}

/// How the job is built.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub id: String,
    pub sync: bool,
    /// Retries after the first attempt.
    pub retry: u32,
    /// Relaunch failed tasks without limit (mesos-cli `--restart`), backing off to 60 s.
    pub restart: bool,
    /// Group `max_run_duration`, nanoseconds.
    pub kill_after_ns: Option<i64>,
}

/// Guess the format from the file name, then the content.
pub fn detect(path: Option<&Path>, content: &str) -> Result<Format, String> {
    if let Some(ext) = path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        match ext.to_ascii_lowercase().as_str() {
            "org" => return Ok(Format::Org),
            "hcl" | "nomad" => return Ok(Format::Hcl),
            _ => {}
        }
    }
    let trimmed = content.trim_start();
    if trimmed.starts_with("#+") || content.to_ascii_uppercase().contains("#+BEGIN_SRC") {
        return Ok(Format::Org);
    }
    let value: Option<serde_json::Value> = serde_json::from_str(content)
        .ok()
        .or_else(|| serde_yaml_ng::from_str(content).ok());
    match value {
        Some(serde_json::Value::Array(_)) => Ok(Format::Mesosfile),
        Some(serde_json::Value::Object(map)) if map.contains_key("tasks") => Ok(Format::TaskList),
        Some(serde_json::Value::Object(map))
            if map.contains_key("Job") || map.contains_key("TaskGroups") =>
        {
            Ok(Format::Hcl)
        }
        Some(serde_json::Value::Object(_)) => {
            Err("cannot tell the format: a JSON/YAML object without \"tasks\" (use -format)".into())
        }
        _ => {
            let name = path
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            if trimmed.starts_with('{') && trimmed.contains("\"tasks\"") {
                Ok(Format::TaskList)
            } else if trimmed.starts_with(['[', '-'])
                || name.contains("mesosfile")
                || name.ends_with(".yaml")
                || name.ends_with(".yml")
            {
                Ok(Format::Mesosfile)
            } else if trimmed.starts_with("job ") || trimmed.contains("\njob \"") {
                Ok(Format::Hcl)
            } else {
                Err("cannot tell the format: not a Mesosfile (YAML/JSON list), a task list ({\"tasks\": [...]}), an Org document or a Nomad job (use -format mesosfile|tasklist|org|hcl)".into())
            }
        }
    }
}

/// Parse `content` in `format`.
pub fn parse(format: Format, content: &str, filename: &str) -> Result<Batch, String> {
    match format {
        Format::Mesosfile => mesosfile::parse_mesosfile(content),
        Format::TaskList => mesosfile::parse_task_list(content),
        Format::Org => org::parse(content),
        Format::Hcl => {
            let parsed = crate::spec::parse_job(content, filename).map_err(|e| e.to_string())?;
            Ok(Batch {
                job: Some(parsed.job),
                notes: parsed.warnings,
                ..Batch::default()
            })
        }
    }
}

/// A job ID from a file stem: `run-<stem>`, with characters outside `[A-Za-z0-9_.-]` as `-`.
pub fn default_id(stem: &str) -> String {
    format!("run-{}", sanitize(stem))
}

/// Characters outside `[A-Za-z0-9_.-]` become `-`.
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.is_empty() {
        "task".into()
    } else {
        out
    }
}

const SECOND: i64 = 1_000_000_000;

fn policies(retry: u32, restart: bool) -> (RestartPolicy, ReschedulePolicy) {
    // First retry after 1 s (restart), then exponential from 2 s (reschedule), capped at 60 s.
    let retry = if restart { 2 } else { retry };
    let restarts = retry.min(1) as i64;
    (
        RestartPolicy {
            attempts: Some(restarts),
            delay: Some(SECOND),
            interval: Some(3600 * SECOND),
            mode: "fail".into(),
            ..RestartPolicy::default()
        },
        ReschedulePolicy {
            attempts: Some(retry as i64 - restarts),
            delay: Some(2 * SECOND),
            delay_function: "exponential".into(),
            max_delay: Some(60 * SECOND),
            unlimited: Some(restart),
            interval: Some(24 * 3600 * SECOND),
            ..ReschedulePolicy::default()
        },
    )
}

fn unique(name: &str, taken: &mut std::collections::HashSet<String>) -> String {
    let base = sanitize(name);
    let mut candidate = base.clone();
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

/// Build the job `dispatch run` registers.
pub fn to_job(batch: Batch, opts: &Options) -> Result<Job, String> {
    let (restart, reschedule) = policies(opts.retry, opts.restart);
    let mut job = if let Some(mut job) = batch.job {
        if let Some(p) = &job.parameterized {
            if !p.meta_required.is_empty() {
                return Err(format!(
                    "the job requires dispatch meta {:?}; run it with `dispatch job run` + `dispatch job dispatch -meta ...`",
                    p.meta_required
                ));
            }
        }
        job.parameterized = Some(Parameterized {
            payload: "forbidden".into(),
            ..Parameterized::default()
        });
        for g in &mut job.task_groups {
            if opts.retry > 0 || opts.restart || g.restart_policy.is_none() {
                g.restart_policy = Some(restart.clone());
                g.reschedule_policy = Some(reschedule.clone());
            }
            if opts.kill_after_ns.is_some() {
                g.max_run_duration = opts.kill_after_ns;
            }
        }
        job
    } else {
        if batch.items.iter().all(|i| i.tasks.is_empty()) {
            return Err("the file describes no tasks".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut items = batch.items;
        for item in &mut items {
            for task in &mut item.tasks {
                task.name = unique(&task.name, &mut names);
            }
        }
        let group = |name: String, tasks: Vec<Task>| TaskGroup {
            name,
            count: Some(1),
            restart_policy: Some(restart.clone()),
            reschedule_policy: Some(reschedule.clone()),
            max_run_duration: opts.kill_after_ns,
            tasks,
            ..TaskGroup::default()
        };
        let mut groups = Vec::new();
        if opts.sync {
            let mut tasks = Vec::new();
            let mut previous: Vec<String> = Vec::new();
            for item in items {
                let names: Vec<String> = item.tasks.iter().map(|t| t.name.clone()).collect();
                for mut task in item.tasks {
                    task.depends_on = previous.clone();
                    tasks.push(task);
                }
                previous = names;
            }
            groups.push(group("run".into(), tasks));
        } else {
            let mut group_names = std::collections::HashSet::new();
            for (n, item) in items.into_iter().enumerate() {
                let name = if item.tasks.len() == 1 {
                    item.tasks[0].name.clone()
                } else {
                    format!("group-{}", n + 1)
                };
                groups.push(group(unique(&name, &mut group_names), item.tasks));
            }
        }
        Job {
            task_groups: groups,
            ..Job::default()
        }
    };
    job.id = opts.id.clone();
    job.name = opts.id.clone();
    job.r#type = "batch".into();
    job.parameterized = Some(Parameterized {
        payload: "forbidden".into(),
        ..Parameterized::default()
    });
    Ok(job)
}

/// `10secs`, `2mins`, `90s`, `1h`, `1h30m`, `500ms` → nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = || format!("invalid duration {s:?}: use e.g. 90s, 10secs, 2mins, 1h, 1h30m");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim().to_ascii_lowercase();
        rest = &rest[unit_len..];
        let scale: f64 = match unit.as_str() {
            "ns" | "nsecs" => 1.0,
            "us" | "usecs" => 1e3,
            "ms" | "msecs" => 1e6,
            "s" | "sec" | "secs" | "second" | "seconds" => 1e9,
            "m" | "min" | "mins" | "minute" | "minutes" => 60e9,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600e9,
            "d" | "day" | "days" => 86400e9,
            _ => return Err(bad()),
        };
        total += (number * scale) as i128;
    }
    if total <= 0 || total > i64::MAX as i128 {
        return Err(bad());
    }
    Ok(total as i64)
}

/// A task's command as a user wrote it (for `-show` and failure reports).
pub fn command_line(task: &Task) -> String {
    let command = task
        .config
        .get("command")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let args: Vec<String> = task
        .config
        .get("args")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let interpreter = matches!(
        command,
        "/bin/sh" | "sh" | "/bin/bash" | "bash" | "python3" | "/usr/bin/python3"
    );
    if interpreter && args.len() == 2 && args[0] == "-c" {
        return args[1].trim().to_string();
    }
    let mut parts = vec![command.to_string()];
    parts.extend(args);
    parts.join(" ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10secs").unwrap(), 10 * SECOND);
        assert_eq!(parse_duration("2mins").unwrap(), 120 * SECOND);
        assert_eq!(parse_duration("90s").unwrap(), 90 * SECOND);
        assert_eq!(parse_duration("1h").unwrap(), 3600 * SECOND);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400 * SECOND);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn detection() {
        assert_eq!(detect(Some(Path::new("a.org")), "").unwrap(), Format::Org);
        assert_eq!(detect(None, "- name: a\n").unwrap(), Format::Mesosfile);
        assert_eq!(
            detect(None, "[{\"name\":\"a\"}]").unwrap(),
            Format::Mesosfile
        );
        assert_eq!(detect(None, "{\"tasks\": []}").unwrap(), Format::TaskList);
        assert_eq!(detect(Some(Path::new("x.hcl")), "").unwrap(), Format::Hcl);
        assert!(detect(None, "just words").is_err());
    }

    #[test]
    fn retry_policies() {
        let (r, s) = policies(0, false);
        assert_eq!((r.attempts, s.attempts), (Some(0), Some(0)));
        let (r, s) = policies(3, false);
        assert_eq!((r.attempts, s.attempts), (Some(1), Some(2)));
        let (r, s) = policies(0, true);
        assert_eq!((r.attempts, s.unlimited), (Some(1), Some(true)));
    }
}
