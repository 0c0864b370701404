//! Sandbox file URLs as capabilities. A Mesos agent fetches a task's rendered templates and
//! payload from our API (`/v1/sandbox/<task id>/<token>/<path>`); the token is an HMAC of the
//! task ID under a key that never leaves the data dir (`fetch-url.key`, 32 random bytes,
//! mode 0600), so a URL can be neither guessed nor derived for another task, and it works
//! only while its task is active (the API checks that). Agents need no ACL token.
//!
//! `files_as_uris` is how a backend whose agents fetch (Mesos: the command executor does
//! not unpack `TaskInfo.data`) turns a rendered task's sandbox files into such URIs; the API
//! does the same, with the token redacted, to show a task as it is launched.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;

use super::types::{TaskInfo, Uri};
use crate::render::SandboxFiles;

/// The key file in the data dir.
pub const KEY_FILE: &str = "fetch-url.key";

/// How a token is shown where people read TaskInfos (`job inspect -rendered`).
pub const REDACTED: &str = "REDACTED";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks sandbox URL tokens.
#[derive(Clone)]
pub struct FetchKey {
    key: hmac::Key,
}

impl std::fmt::Debug for FetchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FetchKey(..)")
    }
}

impl FetchKey {
    pub fn from_bytes(bytes: &[u8]) -> FetchKey {
        FetchKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// The data dir's key, made on first use.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<FetchKey> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => return Ok(FetchKey::from_bytes(&bytes)),
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is shorter than 32 bytes; remove it to make a new key (running tasks then refetch nothing: their URLs stop working)",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(data_dir)?;
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| std::io::Error::other("no randomness"))?;
        let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(FetchKey::from_bytes(&bytes))
    }

    /// The token of `task_id`'s sandbox URLs.
    pub fn token(&self, task_id: &str) -> String {
        B64.encode(hmac::sign(&self.key, task_id.as_bytes()).as_ref())
    }

    /// Whether `token` is `task_id`'s (compared in constant time).
    pub fn verify(&self, task_id: &str, token: &str) -> bool {
        match B64.decode(token) {
            Ok(tag) => hmac::verify(&self.key, task_id.as_bytes(), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// Where an agent fetches one sandbox file of a task from.
pub fn url(base: &str, task_id: &str, token: &str, path: &str) -> String {
    format!(
        "{}/v1/sandbox/{task_id}/{token}/{path}",
        base.trim_end_matches('/')
    )
}

/// How the URLs of a task's sandbox files are made: our API's base URL as agents reach it,
/// and the key that signs them (`None`: the token is shown as `REDACTED`).
#[derive(Debug, Clone)]
pub struct FileUrls {
    pub base: String,
    pub key: Option<FetchKey>,
}

impl FileUrls {
    pub fn url(&self, task_id: &str, path: &str) -> String {
        let token = match &self.key {
            Some(key) => key.token(task_id),
            None => REDACTED.to_string(),
        };
        url(&self.base, task_id, &token, path)
    }
}

/// Move the files of `TaskInfo.data` to fetcher URIs on our API. A task with its own
/// (custom) executor keeps its data: the executor reads it.
pub fn files_as_uris(task: &mut TaskInfo, urls: &FileUrls) {
    let custom_executor = task
        .extra
        .get("executor")
        .is_some_and(|e| e.get("type").and_then(|t| t.as_str()) != Some("DEFAULT"));
    if custom_executor {
        return;
    }
    let Some(data) = task.data.as_deref() else {
        return;
    };
    let files = match SandboxFiles::decode(data) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(task = %task.task_id, "task data is not a sandbox file list ({e}); sent as is");
            return;
        }
    };
    let command = task.command.get_or_insert_with(Default::default);
    for file in &files.files {
        if file.render_after_fetch {
            tracing::warn!(
                task = %task.task_id,
                path = file.path,
                "templates with a `source` are rendered by the local runner only; not delivered by fetching"
            );
            continue;
        }
        let executable = u32::from_str_radix(&file.mode, 8).is_ok_and(|m| m & 0o111 != 0);
        command.uris.push(Uri {
            value: urls.url(&task.task_id.value, &file.path),
            executable: executable.then_some(true),
            extract: Some(false),
            cache: Some(false),
            output_file: Some(file.path.clone()),
        });
    }
    task.data = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_one_task_and_one_key() {
        let key = FetchKey::from_bytes(&[7u8; 32]);
        let t = key.token("job.dispatch-1-ab.g.0.t.1");
        assert!(key.verify("job.dispatch-1-ab.g.0.t.1", &t));
        assert!(!key.verify("job.dispatch-1-ab.g.0.t.2", &t));
        assert!(!key.verify("job.dispatch-1-ab.g.0.t.1", "AAAA"));
        assert!(!key.verify("job.dispatch-1-ab.g.0.t.1", "not base64!"));
        let other = FetchKey::from_bytes(&[8u8; 32]);
        assert!(!other.verify("job.dispatch-1-ab.g.0.t.1", &t));
        assert_eq!(t.len(), 43);
    }

    #[test]
    fn the_key_is_made_once_with_mode_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = FetchKey::load_or_create(dir.path()).unwrap();
        let b = FetchKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.token("t"), b.token("t"));
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(FetchKey::load_or_create(dir.path()).is_err());
    }
}
