//! Why a failed dispatch failed, shown where the user is looking: the last lines of the stderr
//! of each task whose latest attempt did not finish, under the failure, by dispatch-and-wait
//! (`job dispatch`), `dispatch run` and `dispatch job status <child>`. Read through the
//! server's logs API (`/v1/job/<child>/logs?type=stderr&tail=N`), which reads the local
//! sandbox or the Mesos agent's files API; nothing is shown when there is no output to read
//! (a task that never started, a sandbox already collected).

use serde_json::Value;

use super::client::{escape_segment, Client};

/// Lines of stderr shown.
pub const TAIL_LINES: usize = 10;
/// Longer lines are cut.
const MAX_LINE: usize = 300;

/// A task whose latest attempt ended without finishing.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedTask {
    pub task: String,
    pub attempt: u64,
    pub state: String,
}

fn terminal_failure(state: &str) -> bool {
    matches!(
        state,
        "TASK_FAILED"
            | "TASK_ERROR"
            | "TASK_KILLED"
            | "TASK_LOST"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
    )
}

/// The tasks (by name) whose latest attempt, in the allocations' `TaskRuns`, ended without
/// finishing.
pub fn failed_tasks(allocs: &[Value]) -> Vec<FailedTask> {
    let mut latest: std::collections::BTreeMap<String, (u64, String)> = Default::default();
    for run in allocs
        .iter()
        .flat_map(|a| a["TaskRuns"].as_array().cloned().unwrap_or_default())
    {
        let task = run["Task"].as_str().unwrap_or_default().to_string();
        let attempt = run["Attempt"].as_u64().unwrap_or(1);
        let state = run["State"].as_str().unwrap_or_default().to_string();
        let newer = latest.get(&task).is_none_or(|(a, _)| attempt >= *a);
        if newer {
            latest.insert(task, (attempt, state));
        }
    }
    latest
        .into_iter()
        .filter(|(_, (_, state))| terminal_failure(state))
        .map(|(task, (attempt, state))| FailedTask {
            task,
            attempt,
            state,
        })
        .collect()
}

/// The last lines of `task`'s stderr (its latest attempt); `None` when there is none.
pub async fn stderr_tail(client: &Client, child: &str, task: &str) -> Option<Vec<String>> {
    let path = format!("/v1/job/{}/logs", escape_segment(child));
    let lines = TAIL_LINES.to_string();
    let text = client
        .get_text(
            &path,
            &[("task", task), ("type", "stderr"), ("tail", lines.as_str())],
        )
        .await?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.chars().count() > MAX_LINE {
                format!("{}...", l.chars().take(MAX_LINE).collect::<String>())
            } else {
                l.to_string()
            }
        })
        .collect();
    (!lines.iter().all(|l| l.trim().is_empty())).then_some(lines)
}

/// The block shown under a failure: a header naming the task and attempt, then the lines,
/// each indented by `indent`.
pub fn render(f: &FailedTask, lines: &[String], indent: &str) -> String {
    let mut out = format!(
        "{indent}Last {} line(s) of task {:?} stderr (attempt {}, {}):\n",
        lines.len(),
        f.task,
        f.attempt,
        f.state
    );
    for l in lines {
        out.push_str(indent);
        out.push_str("  ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The stderr blocks of every failed task of `child`, ready to print (empty: nothing to show).
pub async fn explain(client: &Client, child: &str, allocs: &[Value], indent: &str) -> String {
    let mut out = String::new();
    for f in failed_tasks(allocs) {
        if let Some(lines) = stderr_tail(client, child, &f.task).await {
            out.push_str(&render(&f, &lines, indent));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_latest_attempt_of_each_task_decides() {
        let allocs = vec![json!({"TaskRuns": [
            {"Task": "tc", "Attempt": 1, "State": "TASK_FAILED"},
            {"Task": "tc", "Attempt": 2, "State": "TASK_FAILED"},
            {"Task": "ok", "Attempt": 1, "State": "TASK_FAILED"},
            {"Task": "ok", "Attempt": 2, "State": "TASK_FINISHED"},
            {"Task": "run", "Attempt": 1, "State": "TASK_RUNNING"}]})];
        assert_eq!(
            failed_tasks(&allocs),
            vec![FailedTask {
                task: "tc".into(),
                attempt: 2,
                state: "TASK_FAILED".into()
            }]
        );
    }

    #[test]
    fn render_names_task_and_attempt() {
        let f = FailedTask {
            task: "tc".into(),
            attempt: 5,
            state: "TASK_FAILED".into(),
        };
        let text = render(
            &f,
            &["transcode.sh: error: ffmpeg not found on PATH".into()],
            "    ",
        );
        assert_eq!(
            text,
            "    Last 1 line(s) of task \"tc\" stderr (attempt 5, TASK_FAILED):\n      transcode.sh: error: ffmpeg not found on PATH\n"
        );
    }
}
