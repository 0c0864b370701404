//! The jobs page: every registered job the caller may list, with its queue (pending, running, dead), the demand
//! of what waits, running against its limit, and the last hour of queue depth. Costs
//! O(jobs): every number comes from the counters the state keeps.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::format::{self, Chart};
use super::history::Sample;
use super::{Live, Ui};
use crate::state::JobEntry;

#[derive(Debug, Serialize)]
struct JobRow {
    id: String,
    url: String,
    kind: String,
    stopped: bool,
    pending: u64,
    running: u64,
    dead: u64,
    dead_detail: String,
    demand: String,
    running_of_max: String,
    chart: Chart,
}

/// `3 / 10`, or `3` when the job has no limit.
pub fn running_of_max(entry: &JobEntry) -> String {
    match entry
        .job
        .parameterized
        .as_ref()
        .map_or(0, |p| p.max_running)
    {
        0 => entry.children.running.to_string(),
        max => format!("{} / {max}", entry.children.running),
    }
}

/// `parameterized batch`, `service`, ...
pub fn kind(entry: &JobEntry) -> String {
    if entry.job.is_parameterized() {
        format!("parameterized {}", entry.job.r#type)
    } else {
        entry.job.r#type.clone()
    }
}

/// The counts of now, as the chart's last point.
pub fn sample_now(entry: &JobEntry, now_s: i64) -> Sample {
    Sample {
        at: now_s,
        pending: entry.children.pending,
        running: entry.children.running,
    }
}

pub async fn page(ui: &Ui) -> Response {
    let now_s = ui.app.clock.now_ns().div_euclid(1_000_000_000);
    let (rows, index) = {
        let s = ui.app.state.read();
        let rows: Vec<JobRow> = s
            .jobs()
            .filter(|entry| ui.viewer.may_list(&entry.job.id))
            .map(|entry| {
                let c = &entry.children;
                JobRow {
                    id: entry.job.id.clone(),
                    url: format::job_url(&entry.job.id),
                    kind: kind(entry),
                    stopped: entry.job.stop,
                    pending: c.pending,
                    running: c.running,
                    dead: c.dead(),
                    dead_detail: format!(
                        "{} complete, {} failed, {} stopped, {} removed",
                        c.complete, c.failed, c.stopped, c.removed_dead
                    ),
                    demand: format::demand(&entry.pending_demand),
                    running_of_max: running_of_max(entry),
                    chart: format::chart(
                        ui.history.series(&entry.job.id),
                        sample_now(entry, now_s),
                        false,
                    ),
                }
            })
            .collect();
        (rows, s.index())
    };
    let live = Live {
        topics: "Job".into(),
        index: index + 1,
    };
    let mut c = ui.context("Jobs", "jobs", Some(live));
    c.insert("jobs", &rows);
    c.insert("sample_seconds", &super::history::SAMPLE_EVERY.as_secs());
    ui.render(StatusCode::OK, "jobs.html", &c)
}
