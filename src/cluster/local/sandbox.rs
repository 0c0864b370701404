//! Task sandboxes on disk: `<root>/tasks/<task_id>/` with `local/`, `secrets/`, `alloc` (a
//! symlink to the dispatch group's shared `<root>/allocs/<key>/alloc`), the rendered data
//! files, `stdout`/`stderr`, and `.pid` (the process group, for cleanup after a crash).

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::render::SandboxFiles;

/// File holding the task's process-group id while it runs.
pub const PID_FILE: &str = ".pid";
/// File holding the Docker container name of an image task while it runs.
pub const CONTAINER_FILE: &str = ".container";

/// A string made safe as one path component (IDs that pass Mesos validation are unchanged).
pub fn file_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => format!("_{s}"),
        _ => s,
    }
}

/// Where a task's files are: `<root>/tasks/<task_id>`.
pub fn task_sandbox(sandbox_root: &Path, task_id: &str) -> PathBuf {
    sandbox_root.join("tasks").join(file_name(task_id))
}

/// The shared alloc dir of a dispatch group: `<root>/allocs/<key>/alloc`. Keys too long for
/// a file name are cut and made unique again with a hash of the whole key.
pub fn alloc_dir(sandbox_root: &Path, alloc_key: &str) -> PathBuf {
    let mut name = file_name(alloc_key);
    if name.len() > 200 {
        // FNV-1a: stable across runs and builds (the dir must be found again after a restart).
        let hash = alloc_key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut cut = 180;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = format!("{}-{hash:016x}", &name[..cut]);
    }
    sandbox_root.join("allocs").join(name).join("alloc")
}

/// A prepared sandbox.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub dir: PathBuf,
    pub alloc: PathBuf,
}

impl Sandbox {
    pub fn local(&self) -> PathBuf {
        self.dir.join("local")
    }

    pub fn secrets(&self) -> PathBuf {
        self.dir.join("secrets")
    }

    /// Create the layout (idempotent).
    pub fn create(sandbox_root: &Path, task_id: &str, alloc_key: &str) -> io::Result<Sandbox> {
        let dir = task_sandbox(sandbox_root, task_id);
        let alloc = alloc_dir(sandbox_root, alloc_key);
        std::fs::create_dir_all(dir.join("local"))?;
        std::fs::create_dir_all(dir.join("secrets"))?;
        std::fs::set_permissions(dir.join("secrets"), std::fs::Permissions::from_mode(0o700))?;
        std::fs::create_dir_all(&alloc)?;
        let link = dir.join("alloc");
        match std::fs::symlink_metadata(&link) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(&alloc, &link)?;
            }
            Err(e) => return Err(e),
        }
        Ok(Sandbox { dir, alloc })
    }

    /// `rel` inside the sandbox, or an error when it is absolute or climbs out of it.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, String> {
        let p = Path::new(rel);
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => parts.push(s),
                Component::CurDir => {}
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(format!("path {rel:?} escapes the sandbox"));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!("path {rel:?} must be relative to the sandbox"));
                }
            }
        }
        if parts.is_empty() {
            return Err(format!("path {rel:?} names the sandbox itself"));
        }
        let mut out = self.dir.clone();
        out.extend(parts);
        Ok(out)
    }

    /// Create `path`'s parent dirs and check that, symlinks resolved, they are still inside
    /// the sandbox or the shared alloc dir (a previous step may have left symlinks in alloc/).
    pub fn prepare_parent(&self, path: &Path) -> Result<(), String> {
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let real = parent
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", parent.display()))?;
        let inside = [&self.dir, &self.alloc]
            .iter()
            .filter_map(|d| d.canonicalize().ok())
            .any(|d| real.starts_with(d));
        if inside {
            Ok(())
        } else {
            Err(format!(
                "{} resolves outside the sandbox ({})",
                path.display(),
                real.display()
            ))
        }
    }

    /// Write the files carried in `TaskInfo.data` (`render::SandboxFiles`).
    pub fn write_data(&self, data_b64: &str) -> Result<usize, String> {
        let files = SandboxFiles::decode(data_b64)?.files;
        for f in &files {
            let path = self.resolve(&f.path)?;
            self.prepare_parent(&path)?;
            let content = f.bytes()?;
            let mode = f
                .mode_bits()
                .ok_or_else(|| format!("data file {:?}: bad mode {:?}", f.path, f.mode))?;
            // Replace rather than write through: never follow a symlink left at the path.
            let _ = std::fs::remove_file(&path);
            std::fs::write(&path, &content)
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                })
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(files.len())
    }

    pub fn write_pid(&self, pgid: u32) -> io::Result<()> {
        std::fs::write(self.dir.join(PID_FILE), format!("{pgid}\n"))
    }

    pub fn write_container(&self, name: &str) -> io::Result<()> {
        std::fs::write(self.dir.join(CONTAINER_FILE), format!("{name}\n"))
    }

    /// The task is over: forget its process group and container.
    pub fn clear_runtime_files(&self) {
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
        let _ = std::fs::remove_file(self.dir.join(CONTAINER_FILE));
    }
}

/// Kill what a previous server run left running: every `<root>/tasks/*/.pid` whose process
/// group is alive (and, where /proc tells, really belongs to that sandbox) gets SIGKILL, and a
/// recorded Docker container is removed. Returns the IDs of the tasks that were still running
/// (they are gone now).
pub fn kill_leftovers(sandbox_root: &Path) -> HashSet<String> {
    let mut gone = HashSet::new();
    let Ok(entries) = std::fs::read_dir(sandbox_root.join("tasks")) else {
        return gone;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let pid_file = dir.join(PID_FILE);
        let container_file = dir.join(CONTAINER_FILE);
        let had_pid = pid_file.exists();
        let had_container = container_file.exists();
        if !had_pid && !had_container {
            continue;
        }
        let task_id = entry.file_name().to_string_lossy().into_owned();
        if let Some(pgid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 1)
        {
            super::process::kill_leftover_group(pgid, &dir);
        }
        if let Ok(name) = std::fs::read_to_string(&container_file) {
            super::docker::remove_leftover(name.trim());
        }
        let _ = std::fs::remove_file(&pid_file);
        let _ = std::fs::remove_file(&container_file);
        tracing::info!(task_id, "task of a previous run is gone");
        gone.insert(task_id);
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_single_components() {
        assert_eq!(file_name("a.b-c_1"), "a.b-c_1");
        assert_eq!(file_name("../x"), ".._x");
        assert_eq!(file_name(".."), "_..");
        assert_eq!(file_name(""), "_");
        assert_eq!(file_name("job/dispatch-1"), "job_dispatch-1");
    }

    #[test]
    fn long_alloc_keys_stay_file_names() {
        let long = "k".repeat(300);
        let other = format!("{}x", "k".repeat(299));
        let a = alloc_dir(Path::new("/r"), &long);
        let b = alloc_dir(Path::new("/r"), &other);
        assert_ne!(a, b);
        assert!(
            a.parent()
                .and_then(|p| p.file_name())
                .map_or(0, |n| n.len())
                < 255
        );
        assert_eq!(
            alloc_dir(Path::new("/r"), "j/d-1"),
            PathBuf::from("/r/allocs/j_d-1/alloc")
        );
    }

    #[test]
    fn resolve_keeps_paths_inside() {
        let s = Sandbox {
            dir: PathBuf::from("/r/tasks/t"),
            alloc: PathBuf::from("/r/allocs/a/alloc"),
        };
        assert_eq!(
            s.resolve("local/x"),
            Ok(PathBuf::from("/r/tasks/t/local/x"))
        );
        assert_eq!(s.resolve("alloc/../y"), Ok(PathBuf::from("/r/tasks/t/y")));
        assert!(s.resolve("../t2/x").is_err());
        assert!(s.resolve("local/../../x").is_err());
        assert!(s.resolve("/etc/passwd").is_err());
        assert!(s.resolve(".").is_err());
    }
}
