//! Task sandboxes behind one trait: find a run's directory, list it, read a file from an
//! offset, follow a growing file, remove what garbage collection removed.
//!
//! The local runner keeps sandboxes on this machine (`local::LocalSandboxes`); on Mesos they
//! are on the agents and read through the agents' files API (`mesos::AgentSandboxes`). The
//! API (`/v1/job/<id>/logs`, `/fs`) and garbage collection use `dyn Sandboxes` and cannot
//! tell them apart.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use crate::model::{Dispatch, TaskRun};
use crate::render::{alloc_key, executor_id};

/// How often `follow` looks for new bytes.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which directory of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The task's own sandbox (`local/`, `secrets/`, `stdout`, `stderr`, ...).
    Task,
    /// The `alloc/` directory the tasks of its group instance share.
    Alloc,
}

/// What a backend needs to find one run's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRef {
    pub task_id: Arc<str>,
    /// Where it ran (empty when not known).
    pub agent_id: Arc<str>,
    /// The group instance's key (`render::alloc_key`): tasks with the same key share `alloc/`.
    pub alloc_key: String,
    /// The DEFAULT executor's ID when the run's group has several tasks (they may have been
    /// launched as a task group, in that executor's sandbox).
    pub group_executor: Option<String>,
}

impl SandboxRef {
    /// The sandbox of `run`, a run of `d`.
    pub fn of(d: &Dispatch, run: &TaskRun) -> SandboxRef {
        let group = d.job.task_groups.get(run.slot.group as usize);
        let group_name = group.map_or("", |g| g.name.as_str());
        SandboxRef {
            task_id: run.task_id.clone(),
            agent_id: run.agent_id.as_ref().into(),
            alloc_key: alloc_key(&d.id, group_name, run.slot.instance),
            group_executor: group
                .filter(|g| g.tasks.len() > 1)
                .map(|g| executor_id(&d.id, &g.name, run.slot.instance)),
        }
    }
}

/// A directory or file in a sandbox, as `locate` found it. Opaque outside the backends:
/// `join` goes deeper, never above where it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The machine serving it (an agent's base URL); `None`: this machine.
    pub(super) host: Option<String>,
    pub(super) path: PathBuf,
}

impl Location {
    pub(super) fn here(path: PathBuf) -> Location {
        Location { host: None, path }
    }

    pub(super) fn on(host: String, path: String) -> Location {
        Location {
            host: Some(host),
            path: PathBuf::from(path),
        }
    }

    /// The path, as the backend addresses it.
    pub(super) fn path_str(&self) -> std::borrow::Cow<'_, str> {
        self.path.to_string_lossy()
    }

    /// `rel` under this location; `..` and the like are refused.
    pub fn join(&self, rel: &str) -> Result<Location, SandboxError> {
        let mut path = self.path.clone();
        for c in Path::new(rel).components() {
            match c {
                Component::Normal(part) => path.push(part),
                Component::CurDir | Component::RootDir => {}
                _ => {
                    return Err(SandboxError::BadPath(format!(
                        "path {rel:?} must stay inside the sandbox (no ..)"
                    )))
                }
            }
        }
        Ok(Location {
            host: self.host.clone(),
            path,
        })
    }
}

/// What `browse` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Listing {
    Dir(Vec<FileEntry>),
    /// A file, not a directory.
    File,
}

/// One entry of a directory (Nomad's `AllocFileInfo` fields).
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    /// `drwxr-xr-x`, `-rw-r--r--`, ...
    pub mode: String,
    /// Last modification, Unix ns (`None`: not known).
    pub modified_ns: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Not there (yet): no such file, not launched, agent not known.
    #[error("{0}")]
    NotFound(String),
    /// A path that leaves the sandbox.
    #[error("{0}")]
    BadPath(String),
    /// There, but it could not be read.
    #[error("{0}")]
    Unreadable(String),
}

/// Task sandboxes of one backend.
pub trait Sandboxes: Send + Sync {
    /// Where a run's directory is (asking the agent which of the places a sandbox can be
    /// holds it, on Mesos).
    fn locate<'a>(
        &'a self,
        run: &'a SandboxRef,
        area: Area,
    ) -> BoxFuture<'a, Result<Location, SandboxError>>;

    /// List a directory (`Listing::File` when it is a file).
    fn browse<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Listing, SandboxError>>;

    /// A file's bytes from `offset` to its current end.
    fn read<'a>(
        &'a self,
        at: &'a Location,
        offset: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, SandboxError>>;

    /// Delete what these runs left (after garbage collection removed their dispatches);
    /// backends whose agents clean up by themselves do nothing.
    fn remove<'a>(&'a self, runs: &'a [SandboxRef]) -> BoxFuture<'a, ()>;

    /// New bytes of a growing file from `offset`, as they appear, until `ended` says the
    /// writer is done and nothing more came. A file that cannot be read yet reads as empty.
    fn follow(
        self: Arc<Self>,
        at: Location,
        offset: u64,
        ended: Arc<dyn Fn() -> bool + Send + Sync>,
    ) -> BoxStream<'static, Vec<u8>>
    where
        Self: 'static,
    {
        let stream = futures_util::stream::unfold(offset, move |mut offset| {
            let sandboxes = self.clone();
            let at = at.clone();
            let ended = ended.clone();
            async move {
                loop {
                    let over = ended();
                    let bytes = sandboxes.read(&at, offset).await.unwrap_or_default();
                    if !bytes.is_empty() {
                        offset += bytes.len() as u64;
                        return Some((bytes, offset));
                    }
                    if over {
                        return None;
                    }
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
            }
        });
        Box::pin(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside() {
        let root = Location::on(
            "http://agent:5051".into(),
            "/frameworks/f/runs/latest".into(),
        );
        let deeper = root.join("local/./out.txt").expect("inside");
        assert_eq!(deeper.path_str(), "/frameworks/f/runs/latest/local/out.txt");
        assert_eq!(deeper.host.as_deref(), Some("http://agent:5051"));
        assert!(matches!(
            root.join("../x"),
            Err(SandboxError::BadPath(m)) if m == "path \"../x\" must stay inside the sandbox (no ..)"
        ));
        assert_eq!(
            Location::here("/s".into())
                .join("")
                .expect("itself")
                .path_str(),
            "/s"
        );
    }
}
