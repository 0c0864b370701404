//! The embedded local runner. TEMPORARY STUB until the runner lands.
use std::path::{Path, PathBuf};

use super::ClusterHandle;

pub struct LocalConfig {
    pub cpus: f64,
    pub mem_mb: f64,
    pub disk_mb: f64,
    pub gpus: f64,
    pub sandbox_root: PathBuf,
    pub task_path: Vec<PathBuf>,
    pub hostname: String,
}

impl LocalConfig {
    pub fn detect(sandbox_root: PathBuf) -> LocalConfig {
        LocalConfig { cpus: 2.0, mem_mb: 1024.0, disk_mb: 1024.0, gpus: 0.0, sandbox_root, task_path: vec![], hostname: "localhost".into() }
    }
}

pub fn start(_config: LocalConfig) -> std::io::Result<ClusterHandle> {
    let (calls, _rx) = tokio::sync::mpsc::unbounded_channel();
    let (_tx, events) = tokio::sync::mpsc::unbounded_channel();
    Ok(ClusterHandle { calls, events, name: "local" })
}

pub fn task_sandbox(sandbox_root: &Path, task_id: &str) -> PathBuf {
    sandbox_root.join("tasks").join(task_id)
}
