//! What a backend can do, as a value: the scheduler and the API adapt to it instead of
//! asking which backend runs.
//!
//! Each backend builds its `Capabilities` when it starts (`local::capabilities`,
//! `mesos::capabilities`). The messages that tell users what a backend cannot do live here
//! too, so no code outside `cluster/` names a backend.

use std::time::Duration;

use serde::Serialize;

use super::Demand;
use crate::model::Job;

/// A backend's description of itself.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capabilities {
    /// The backend's name in logs and in the `backend` label of metrics (`local`, `mesos`).
    pub name: &'static str,
    /// The tasks of one group instance that start together can be launched as one task group
    /// (LAUNCH_GROUP: a DEFAULT executor runs them side by side, sharing `alloc/`).
    pub task_groups: bool,
    /// Pipeline steps (launched one after another) share `alloc/` through a directory on their
    /// agent named by `SHARED_ALLOC_MARKER`; without it the backend shares `alloc/` by itself.
    pub agent_alloc_dirs: bool,
    /// Tasks with their own executor (`mesos_executor` driver) can run.
    pub custom_executors: bool,
    /// Reservations and persistent volumes: a group's sticky `ephemeral_disk` survives its
    /// tasks (`VOLUME_MARKER`, `ClusterCall::ReleaseVolume`).
    pub persistent_volumes: bool,
    /// `source` templates (rendered after the fetch, in the sandbox) can be delivered.
    pub source_templates: bool,
    /// Agents fetch sandbox files (rendered templates, payloads) from our API at this base
    /// URL (`fetch_urls`); `None`: the backend writes `TaskInfo.data` itself.
    pub sandbox_fetch_base: Option<String>,
    /// Image tasks (`docker` driver) can run.
    pub docker: bool,
    /// GPUs can be offered as configured.
    pub gpus: bool,
    /// What "too large" is measured against.
    pub capacity: Capacity,
    /// Least time between two REVIVE calls (a revive wanted sooner is deferred, not dropped).
    #[serde(rename = "ReviveDebounceSeconds", serialize_with = "seconds")]
    pub revive_debounce: Duration,
    /// Appended to a "no agent has offered that much" note when a task wants GPUs and none
    /// were offered: how to get GPUs offered on this backend.
    #[serde(skip)]
    pub gpu_hint: &'static str,
    /// Why a `source` template cannot run here (when `source_templates` is false).
    #[serde(skip)]
    pub source_template_refusal: &'static str,
}

/// What a unit of work is too large for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Capacity {
    /// A fixed machine: work larger than this never fits.
    Fixed(Demand),
    /// Agents come and go: work larger than anything one agent has offered at once waits
    /// (more capacity may come), with a note.
    LargestOffer,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Capabilities {
    /// Why this backend cannot run `job`, if it cannot (a 400 at registration; a failed
    /// dispatch for one registered before the server moved to this backend).
    pub fn refusal(&self, job: &Job) -> Option<String> {
        if self.source_templates {
            return None;
        }
        job.task_groups
            .iter()
            .flat_map(|g| &g.tasks)
            .find_map(|task| {
                let t = task.templates.iter().find(|t| t.renders_after_fetch())?;
                Some(format!(
                    "task {:?}: template {:?} has a `source` ({:?}); {}",
                    task.name, t.dest_path, t.source_path, self.source_template_refusal
                ))
            })
    }
}

#[cfg(test)]
impl Capabilities {
    /// A backend for unit tests: none of the optional features, `source` templates run,
    /// measured by its largest offer, one second between revives.
    pub(crate) fn plain() -> Capabilities {
        Capabilities {
            name: "test",
            task_groups: false,
            agent_alloc_dirs: false,
            custom_executors: false,
            persistent_volumes: false,
            source_templates: true,
            sandbox_fetch_base: None,
            docker: true,
            gpus: false,
            capacity: Capacity::LargestOffer,
            revive_debounce: Duration::from_secs(1),
            gpu_hint: "ask for GPUs",
            source_template_refusal: "give the text inline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(source_templates: bool) -> Capabilities {
        Capabilities {
            source_templates,
            ..Capabilities::plain()
        }
    }

    #[test]
    fn source_templates_are_refused_only_where_they_cannot_run() {
        let hcl = r#"job "j" {
  type = "batch"
  parameterized {}
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "true" }
      template {
        source      = "local/a.tpl"
        destination = "local/a"
      }
    }
  }
}"#;
        let job = crate::spec::parse_hcl(hcl, "j.hcl").expect("parses");
        assert_eq!(caps(true).refusal(&job), None);
        assert_eq!(
            caps(false).refusal(&job).as_deref(),
            Some(
                "task \"t\": template \"local/a\" has a `source` (\"local/a.tpl\"); \
                 give the text inline"
            )
        );
        let plain = crate::model::job::test_job("p");
        assert_eq!(caps(false).refusal(&plain), None);
    }
}
