//! The agents' files API (`GET /files/browse`, `GET /files/read`) over
//! simulated sandboxes, answering like `mesos-captures/*/agent-files.json`.
//!
//! A sandbox lives at the absolute path
//! `/var/lib/mesos/agent/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>`
//! and is also reachable by the virtual path Mesos attaches,
//! `/frameworks/<fw>/executors/<executor>/runs/latest`. Directories exist
//! implicitly (as prefixes of files).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::state::Shared;

/// Largest read the agent answers at once (16 pages).
const MAX_READ: usize = 16 * 4096;

struct SandboxFile {
    data: Vec<u8>,
    mtime: f64,
}

/// Every simulated sandbox of every agent.
#[derive(Default)]
pub struct Sandboxes {
    files: BTreeMap<String, SandboxFile>,
    /// Virtual run directory -> absolute run directory.
    aliases: BTreeMap<String, String>,
    /// Task ID -> the directory holding its stdout/stderr.
    task_dirs: HashMap<String, String>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0)
}

fn join(dir: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

impl Sandboxes {
    /// Creates an executor's run directory (with its own stdout/stderr when
    /// `own_logs`) and its `runs/latest` alias; returns the absolute path.
    pub fn add_run(
        &mut self,
        agent: &str,
        framework: &str,
        executor: &str,
        container: &str,
        own_logs: bool,
    ) -> String {
        let tail = format!("frameworks/{framework}/executors/{executor}/runs");
        let abs = format!("/var/lib/mesos/agent/slaves/{agent}/{tail}/{container}");
        self.aliases.insert(format!("/{tail}/latest"), abs.clone());
        self.aliases
            .insert(format!("/{tail}/{container}"), abs.clone());
        if own_logs {
            self.write(&join(&abs, "stdout"), b"");
            self.write(
                &join(&abs, "stderr"),
                format!("Starting executor {executor}\n").as_bytes(),
            );
        }
        abs
    }

    /// Gives a task its stdout (the command followed by a newline) and
    /// stderr in `dir`.
    pub fn add_task(&mut self, task_id: &str, dir: &str, command: Option<&str>) {
        let out = command.map(|c| format!("{c}\n")).unwrap_or_default();
        self.write(&join(dir, "stdout"), out.as_bytes());
        self.write(
            &join(dir, "stderr"),
            format!("Starting task {task_id}\n").as_bytes(),
        );
        self.task_dirs.insert(task_id.to_string(), dir.to_string());
    }

    fn write(&mut self, path: &str, data: &[u8]) {
        self.files.insert(
            path.to_string(),
            SandboxFile {
                data: data.to_vec(),
                mtime: now_secs(),
            },
        );
    }

    /// Appends to (or creates) a file of a task's sandbox.
    pub fn append_task_file(&mut self, task_id: &str, rel: &str, bytes: &[u8]) -> bool {
        let Some(dir) = self.task_dirs.get(task_id) else {
            return false;
        };
        let path = join(dir, rel);
        let f = self.files.entry(path).or_insert_with(|| SandboxFile {
            data: Vec::new(),
            mtime: 0.0,
        });
        f.data.extend_from_slice(bytes);
        f.mtime = now_secs();
        true
    }

    pub fn task_file(&self, task_id: &str, rel: &str) -> Option<Vec<u8>> {
        let dir = self.task_dirs.get(task_id)?;
        self.files.get(&join(dir, rel)).map(|f| f.data.clone())
    }

    /// The directory holding a task's stdout/stderr.
    pub fn task_dir(&self, task_id: &str) -> Option<String> {
        self.task_dirs.get(task_id).cloned()
    }

    /// An absolute path for `path`, virtual run prefixes resolved.
    fn resolve(&self, path: &str) -> String {
        let path = path.trim_end_matches('/');
        for (virt, abs) in &self.aliases {
            if path == virt {
                return abs.clone();
            }
            if let Some(rest) = path.strip_prefix(&format!("{virt}/")) {
                return join(abs, rest);
            }
        }
        path.to_string()
    }

    fn is_dir(&self, abs: &str) -> bool {
        let prefix = format!("{abs}/");
        self.files.keys().any(|k| k.starts_with(&prefix))
    }

    fn file_entry(&self, path: &str, f: &SandboxFile) -> Value {
        json!({"gid": "root", "mode": "-rw-r--r--", "mtime": f.mtime, "nlink": 1,
               "path": path, "size": f.data.len(), "uid": "root"})
    }

    fn dir_entry(path: &str) -> Value {
        json!({"gid": "root", "mode": "drwxr-xr-x", "mtime": now_secs(), "nlink": 2,
               "path": path, "size": 4096, "uid": "root"})
    }

    /// `/files/browse`: the directory's entries (or the file itself), `None` when missing.
    pub fn browse(&self, path: &str) -> Option<Vec<Value>> {
        let abs = self.resolve(path);
        if let Some(f) = self.files.get(&abs) {
            return Some(vec![self.file_entry(&abs, f)]);
        }
        if !self.is_dir(&abs) {
            return None;
        }
        let prefix = format!("{abs}/");
        let children: BTreeSet<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        let entries = children
            .iter()
            .map(|name| {
                let p = format!("{prefix}{name}");
                match self.files.get(&p) {
                    Some(f) => self.file_entry(&p, f),
                    None => Self::dir_entry(&p),
                }
            })
            .collect();
        Some(entries)
    }

    /// `/files/read`: `{"data", "offset"}`; `offset == -1` asks for the size.
    pub fn read(&self, path: &str, offset: i64, length: Option<usize>) -> Result<Value, Refusal> {
        let abs = self.resolve(path);
        let Some(f) = self.files.get(&abs) else {
            if self.is_dir(&abs) {
                return Err(bad_request("Cannot read a directory.\n"));
            }
            return Err(not_found());
        };
        let size = f.data.len();
        if offset == -1 {
            return Ok(json!({"data": "", "offset": size}));
        }
        let start = (offset as usize).min(size);
        let len = length.unwrap_or(MAX_READ).min(MAX_READ);
        let end = start.saturating_add(len).min(size);
        let data = String::from_utf8_lossy(&f.data[start..end]).into_owned();
        Ok(json!({"data": data, "offset": offset}))
    }
}

/// An error answer of the files API: status and text body.
pub struct Refusal {
    status: StatusCode,
    body: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if self.body.is_empty() {
            return self.status.into_response();
        }
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.body,
        )
            .into_response()
    }
}

fn bad_request(msg: &str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        body: msg.to_string(),
    }
}

/// Missing path: 404 with an empty body.
fn not_found() -> Refusal {
    Refusal {
        status: StatusCode::NOT_FOUND,
        body: String::new(),
    }
}

fn json_ok(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn path_param(q: &HashMap<String, String>) -> Result<&str, Refusal> {
    q.get("path")
        .map(String::as_str)
        .ok_or_else(|| bad_request("Expecting 'path=value' in query.\n"))
}

/// `offset` (default -1) and `length` (default: up to 16 pages) as the agent parses them.
fn read_params(q: &HashMap<String, String>) -> Result<(i64, Option<usize>), Refusal> {
    let offset = match q.get("offset") {
        None => -1,
        Some(o) => {
            let v: i64 = o
                .parse()
                .map_err(|_| bad_request(&format!("Failed to parse offset: '{o}'.\n")))?;
            if v < -1 {
                return Err(bad_request(&format!("Negative offset provided: {v}.\n")));
            }
            v
        }
    };
    let length = match q.get("length") {
        None => None,
        Some(l) => {
            let v: i64 = l
                .parse()
                .map_err(|_| bad_request(&format!("Failed to parse length: '{l}'.\n")))?;
            if v < -1 {
                return Err(bad_request(&format!("Negative length provided: {v}.\n")));
            }
            usize::try_from(v).ok()
        }
    };
    Ok((offset, length))
}

pub async fn browse(
    AxState(st): AxState<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = match path_param(&q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match st.lock().sandboxes.browse(path) {
        Some(entries) => json_ok(&Value::Array(entries)),
        None => not_found().into_response(),
    }
}

pub async fn read(
    AxState(st): AxState<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = match path_param(&q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (offset, length) = match read_params(&q) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    match st.lock().sandboxes.read(path, offset, length) {
        Ok(v) => json_ok(&v),
        Err(r) => r.into_response(),
    }
}
