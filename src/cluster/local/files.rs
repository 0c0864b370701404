//! The local runner's sandboxes as the API and garbage collection see them
//! (`cluster::Sandboxes`): directories under the sandbox root on this machine.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use super::sandbox::{alloc_dir, task_sandbox};
use crate::cluster::sandbox::{
    Area, FileEntry, Listing, Location, SandboxError, SandboxRef, Sandboxes,
};

/// Sandboxes under `root` (`<data dir>/sandboxes`).
#[derive(Debug, Clone)]
pub struct LocalSandboxes {
    root: PathBuf,
}

impl LocalSandboxes {
    pub fn new(root: PathBuf) -> LocalSandboxes {
        LocalSandboxes { root }
    }
}

impl Sandboxes for LocalSandboxes {
    fn locate<'a>(
        &'a self,
        run: &'a SandboxRef,
        area: Area,
    ) -> BoxFuture<'a, Result<Location, SandboxError>> {
        let dir = task_sandbox(&self.root, &run.task_id);
        Box::pin(async move {
            Ok(Location::here(match area {
                Area::Task => dir,
                // The sandbox's `alloc` link to the group's shared directory.
                Area::Alloc => dir.join("alloc"),
            }))
        })
    }

    fn browse<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Listing, SandboxError>> {
        Box::pin(async move {
            let meta = tokio::fs::metadata(&at.path)
                .await
                .map_err(|e| SandboxError::NotFound(e.to_string()))?;
            if !meta.is_dir() {
                return Ok(Listing::File);
            }
            let mut entries = Vec::new();
            let mut rd = tokio::fs::read_dir(&at.path)
                .await
                .map_err(|e| SandboxError::Unreadable(e.to_string()))?;
            while let Ok(Some(entry)) = rd.next_entry().await {
                let Ok(m) = tokio::fs::metadata(entry.path()).await else {
                    continue;
                };
                entries.push(file_entry(
                    entry.file_name().to_string_lossy().into_owned(),
                    &m,
                ));
            }
            Ok(Listing::Dir(entries))
        })
    }

    fn read<'a>(
        &'a self,
        at: &'a Location,
        offset: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, SandboxError>> {
        Box::pin(read_from(&at.path, offset))
    }

    fn remove<'a>(&'a self, runs: &'a [SandboxRef]) -> BoxFuture<'a, ()> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for run in runs {
            dirs.push(task_sandbox(&self.root, &run.task_id));
            // `<root>/allocs/<key>/alloc`: the key's directory goes.
            if let Some(key_dir) = alloc_dir(&self.root, &run.alloc_key).parent() {
                dirs.push(key_dir.to_path_buf());
            }
        }
        dirs.sort();
        dirs.dedup();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                for dir in dirs {
                    match std::fs::remove_dir_all(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => tracing::warn!("cannot remove {}: {e}", dir.display()),
                    }
                }
            })
            .await;
        })
    }
}

/// The bytes from `offset` to the end; a file that does not exist (yet) is empty.
async fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>, SandboxError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SandboxError::Unreadable(e.to_string())),
    };
    f.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| SandboxError::Unreadable(e.to_string()))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .await
        .map_err(|e| SandboxError::Unreadable(e.to_string()))?;
    Ok(out)
}

fn file_entry(name: String, m: &std::fs::Metadata) -> FileEntry {
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode();
    let mut perms = String::from(if m.is_dir() { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let modified_ns = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(crate::clock::duration_ns);
    FileEntry {
        name,
        is_dir: m.is_dir(),
        size: m.len(),
        mode: perms,
        modified_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(task: &str, key: &str) -> SandboxRef {
        SandboxRef {
            task_id: task.into(),
            agent_id: "local-agent".into(),
            alloc_key: key.into(),
            group_executor: None,
        }
    }

    /// A task's files are listed and read from an offset; removal takes the task's sandbox
    /// and its group's alloc dir, and nothing of other runs.
    #[tokio::test]
    async fn sandboxes_are_read_and_removed_per_run() {
        let root = tempfile::tempdir().expect("temp dir");
        let sandboxes = LocalSandboxes::new(root.path().to_path_buf());
        let (mine, other) = (run("t1", "d1.g.0"), run("t2", "d2.g.0"));
        for r in [&mine, &other] {
            let dir = task_sandbox(root.path(), &r.task_id);
            std::fs::create_dir_all(&dir).expect("sandbox");
            std::fs::write(dir.join("stdout"), b"hello\nworld\n").expect("stdout");
            std::fs::create_dir_all(alloc_dir(root.path(), &r.alloc_key)).expect("alloc");
        }
        let at = sandboxes.locate(&mine, Area::Task).await.expect("located");
        let Listing::Dir(entries) = sandboxes.browse(&at).await.expect("listed") else {
            panic!("a directory");
        };
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["stdout"]);
        assert_eq!(entries[0].size, 12);
        assert!(entries[0].mode.starts_with("-rw"));
        let stdout = at.join("stdout").expect("inside");
        assert_eq!(
            sandboxes.browse(&stdout).await.expect("a file"),
            Listing::File
        );
        assert_eq!(sandboxes.read(&stdout, 6).await.expect("read"), b"world\n");
        let missing = at.join("stderr").expect("inside");
        assert_eq!(sandboxes.read(&missing, 0).await.expect("empty"), b"");
        assert!(matches!(
            sandboxes.browse(&missing).await,
            Err(SandboxError::NotFound(_))
        ));

        sandboxes.remove(std::slice::from_ref(&mine)).await;
        assert!(!task_sandbox(root.path(), "t1").exists());
        assert!(!alloc_dir(root.path(), "d1.g.0").exists());
        assert!(task_sandbox(root.path(), "t2").exists());
        assert!(alloc_dir(root.path(), "d2.g.0").exists());
    }
}
