//! Reading task sandboxes on Mesos agents through the agent's files API
//! (`GET /files/browse?path=`, `GET /files/read?path=&offset=&length=`).
//!
//! Sandboxes are addressed by the virtual paths the agent attaches for every executor run:
//! `/frameworks/<framework>/executors/<executor>/runs/latest`. A command-executor task's
//! executor ID is its task ID; a task of a task group lives in `tasks/<task id>` under its
//! group's DEFAULT executor sandbox.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::MesosDirectory;
use crate::cluster::sandbox::{
    Area, FileEntry, Listing, Location, SandboxError, SandboxRef, Sandboxes,
};

/// Largest piece asked for in one `/files/read`.
const READ_CHUNK: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AgentFilesError {
    #[error("{path:?} not found on the agent")]
    NotFound { path: String },
    #[error("the agent answered {status} for {path:?}")]
    Status { status: u16, path: String },
    #[error("cannot reach the agent at {url}: {source}")]
    Http { url: String, source: reqwest::Error },
}

/// One entry of `/files/browse`.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentFile {
    pub path: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub mtime: f64,
}

impl AgentFile {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    pub fn is_dir(&self) -> bool {
        self.mode.starts_with('d')
    }
}

#[derive(Debug, Deserialize)]
struct ReadAnswer {
    #[serde(default)]
    data: String,
    #[serde(default)]
    offset: u64,
}

#[derive(Clone)]
pub struct AgentFiles {
    http: reqwest::Client,
}

impl Default for AgentFiles {
    fn default() -> Self {
        AgentFiles::new()
    }
}

impl AgentFiles {
    pub fn new() -> AgentFiles {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        AgentFiles { http }
    }

    async fn get(
        &self,
        agent: &str,
        endpoint: &str,
        query: &[(&str, String)],
        path: &str,
    ) -> Result<reqwest::Response, AgentFilesError> {
        let url = format!("{}/files/{endpoint}", agent.trim_end_matches('/'));
        let resp = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|source| AgentFilesError::Http {
                url: url.clone(),
                source,
            })?;
        match resp.status().as_u16() {
            200 => Ok(resp),
            404 => Err(AgentFilesError::NotFound {
                path: path.to_string(),
            }),
            status => Err(AgentFilesError::Status {
                status,
                path: path.to_string(),
            }),
        }
    }

    /// List a directory.
    pub async fn browse(&self, agent: &str, path: &str) -> Result<Vec<AgentFile>, AgentFilesError> {
        let resp = self
            .get(agent, "browse", &[("path", path.to_string())], path)
            .await?;
        resp.json().await.map_err(|source| AgentFilesError::Http {
            url: agent.to_string(),
            source,
        })
    }

    /// Bytes of a file from `offset` to its current end.
    pub async fn read_from(
        &self,
        agent: &str,
        path: &str,
        mut offset: u64,
    ) -> Result<Vec<u8>, AgentFilesError> {
        let mut out = Vec::new();
        loop {
            let query = [
                ("path", path.to_string()),
                ("offset", offset.to_string()),
                ("length", READ_CHUNK.to_string()),
            ];
            let resp = self.get(agent, "read", &query, path).await?;
            let answer: ReadAnswer = resp.json().await.map_err(|source| AgentFilesError::Http {
                url: agent.to_string(),
                source,
            })?;
            if answer.data.is_empty() {
                return Ok(out);
            }
            offset = answer.offset + answer.data.len() as u64;
            out.extend_from_slice(answer.data.as_bytes());
        }
    }

    /// The first of `candidates` that exists (a directory the agent can list).
    pub async fn first_existing(
        &self,
        agent: &str,
        candidates: &[String],
    ) -> Result<String, AgentFilesError> {
        let mut last = None;
        for c in candidates {
            match self.browse(agent, c).await {
                Ok(_) => return Ok(c.clone()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(AgentFilesError::NotFound {
            path: String::new(),
        }))
    }
}

/// Where a task's sandbox may be: as a command-executor task, and as a member of its
/// group's task group (`group_executor`).
pub fn sandbox_candidates(
    framework_id: &str,
    task_id: &str,
    group_executor: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(exec) = group_executor {
        out.push(format!(
            "/frameworks/{framework_id}/executors/{exec}/runs/latest/tasks/{task_id}"
        ));
    }
    out.push(format!(
        "/frameworks/{framework_id}/executors/{task_id}/runs/latest"
    ));
    out
}

/// Sandboxes on the Mesos agents (`cluster::Sandboxes`), read through their files API. The
/// agents remove sandboxes by their own policy (`--gc_delay`), so `remove` does nothing.
pub struct AgentSandboxes {
    directory: Arc<MesosDirectory>,
    files: AgentFiles,
}

impl AgentSandboxes {
    pub fn new(directory: Arc<MesosDirectory>) -> AgentSandboxes {
        AgentSandboxes {
            directory,
            files: AgentFiles::new(),
        }
    }

    async fn find(&self, run: &SandboxRef, area: Area) -> Result<Location, SandboxError> {
        let framework = self
            .directory
            .framework_id()
            .ok_or_else(|| SandboxError::NotFound("not registered with Mesos yet".into()))?;
        let agent = self.directory.agent_url(&run.agent_id).ok_or_else(|| {
            SandboxError::NotFound(format!(
                "the address of agent {:?} (task {:?}) is not known yet: no offer from it has been seen yet",
                run.agent_id, run.task_id
            ))
        })?;
        let candidates =
            sandbox_candidates(&framework, &run.task_id, run.group_executor.as_deref());
        let path = self
            .files
            .first_existing(&agent, &candidates)
            .await
            .map_err(|e| {
                SandboxError::NotFound(format!("sandbox of task {:?}: {e}", run.task_id))
            })?;
        let path = match (area, path.split_once("/tasks/")) {
            // A task group's shared directory is in the executor's sandbox.
            (Area::Alloc, Some((executor_dir, _))) => format!("{executor_dir}/alloc"),
            (Area::Alloc, None) => format!("{path}/alloc"),
            (Area::Task, _) => path,
        };
        Ok(Location::on(agent, path))
    }
}

impl Sandboxes for AgentSandboxes {
    fn locate<'a>(
        &'a self,
        run: &'a SandboxRef,
        area: Area,
    ) -> BoxFuture<'a, Result<Location, SandboxError>> {
        Box::pin(self.find(run, area))
    }

    fn browse<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Listing, SandboxError>> {
        Box::pin(async move {
            let agent = at.host.as_deref().unwrap_or_default();
            let path = at.path_str();
            let list = self
                .files
                .browse(agent, &path)
                .await
                .map_err(|e| SandboxError::NotFound(e.to_string()))?;
            // Browsing a file answers that one file.
            if list.len() == 1 && list[0].path == *path && !list[0].is_dir() {
                return Ok(Listing::File);
            }
            Ok(Listing::Dir(
                list.iter()
                    .map(|f| FileEntry {
                        name: f.name().to_string(),
                        is_dir: f.is_dir(),
                        size: f.size,
                        mode: f.mode.clone(),
                        modified_ns: Some((f.mtime * 1e9) as i64),
                    })
                    .collect(),
            ))
        })
    }

    fn read<'a>(
        &'a self,
        at: &'a Location,
        offset: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, SandboxError>> {
        Box::pin(async move {
            let agent = at.host.as_deref().unwrap_or_default();
            self.files
                .read_from(agent, &at.path_str(), offset)
                .await
                .map_err(|e| SandboxError::Unreadable(e.to_string()))
        })
    }

    fn remove<'a>(&'a self, _runs: &'a [SandboxRef]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}
