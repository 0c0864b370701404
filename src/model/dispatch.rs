//! A dispatch: one child of a parameterized job, as the queue sees it.
//!
//! A dispatch is kept small on purpose (a million of them must fit in well under 1 GiB): it
//! points at the parent's job version it was dispatched from (shared `Arc<Job>`), stores only
//! its own meta, and leaves the payload bytes in the store. The full Nomad child job is
//! derived on read by `Dispatch::to_child_job`.

use std::sync::Arc;

use super::job::{Job, Meta};

/// Where a dispatch is in its life. Nomad's child `Status` (pending/running/dead) and the
/// parent's `Children {Pending, Running, Dead}` counters follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DispatchStatus {
    /// Stored and queued, waiting for resources (or for the scheduler).
    Pending,
    /// At least one task launched and not all finished.
    Running,
    /// Every task finished successfully.
    Complete,
    /// A task failed for good (retries used up) or the dispatch was killed.
    Failed,
    /// Stopped by a user (`dispatch job stop`, or its parent stopped) before completing.
    Stopped,
}

impl DispatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Pending => "pending",
            DispatchStatus::Running => "running",
            DispatchStatus::Complete => "complete",
            DispatchStatus::Failed => "failed",
            DispatchStatus::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DispatchStatus::Pending,
            "running" => DispatchStatus::Running,
            "complete" => DispatchStatus::Complete,
            "failed" => DispatchStatus::Failed,
            "stopped" => DispatchStatus::Stopped,
            _ => return None,
        })
    }

    /// Nomad's job status vocabulary for the child: pending, running or dead.
    pub fn nomad_job_status(self) -> &'static str {
        match self {
            DispatchStatus::Pending => "pending",
            DispatchStatus::Running => "running",
            _ => "dead",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, DispatchStatus::Pending | DispatchStatus::Running)
    }
}

/// A dispatch's own meta, compact: a million dispatches live in memory, and a boxed slice
/// of pairs costs a fraction of a hash map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactMeta(Box<[(Box<str>, Box<str>)]>);

impl CompactMeta {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn to_meta(&self) -> Meta {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl From<&Meta> for CompactMeta {
    fn from(meta: &Meta) -> Self {
        CompactMeta(
            meta.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        )
    }
}

/// One dispatched child.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// `<parent>/dispatch-[<prefix>-]<unix>-<8 hex>`.
    pub id: Arc<str>,
    /// The parent's job as it was when dispatched (children are frozen copies, as in Nomad).
    pub job: Arc<Job>,
    /// Meta sent with the dispatch (merged over `job.meta` when read).
    pub meta: CompactMeta,
    /// Effective priority (the request's, or the parent's when the request said 0).
    pub priority: u8,
    pub status: DispatchStatus,
    pub idempotency_token: Option<Box<str>>,
    /// Decoded payload length; the bytes live in the store.
    pub payload_len: u32,
    /// ID of the evaluation created with the dispatch (Nomad clients follow it).
    pub eval_id: uuid::Uuid,
    /// Unix nanoseconds.
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    /// Why it ended as it did (which task failed and how, who stopped it).
    pub description: Option<Box<str>>,
    /// When it became terminal (Unix ns; 0 while pending or running). Not stored: a loaded
    /// terminal dispatch counts as ended at load time, so garbage collection only ever waits
    /// longer after a restart, never less.
    pub ended_at: i64,
    /// Every launched attempt of every task, in launch order (empty while pending).
    pub runs: Vec<super::TaskRun>,
    /// Accessor ID of the ACL token that dispatched it (never its secret); `None` when ACLs
    /// were off or the caller was anonymous.
    pub dispatched_by: Option<Arc<str>>,
}

impl Dispatch {
    pub fn parent(&self) -> &str {
        &self.job.id
    }

    /// When anything last happened to it (Unix ns): its end, latest task update or submit.
    pub fn last_activity(&self) -> i64 {
        self.runs
            .iter()
            .map(|r| r.updated_at.max(r.launched_at))
            .fold(self.submit_time.max(self.ended_at), i64::max)
    }

    /// Dead for good: terminal, and none of its tasks still running.
    pub fn is_collectable(&self) -> bool {
        self.status.is_terminal() && self.runs.iter().all(|r| !r.is_active())
    }

    /// Job meta with the dispatch meta merged over it (dispatch wins), plus every
    /// `meta_optional` key that is still missing, as an empty string (Nomad 0.8.4+).
    pub fn merged_meta(&self) -> Meta {
        let mut meta = self.job.meta.clone();
        for (k, v) in self.meta.iter() {
            meta.insert(k.to_string(), v.to_string());
        }
        if let Some(p) = &self.job.parameterized {
            for key in &p.meta_optional {
                meta.entry(key.clone()).or_default();
            }
        }
        meta
    }

    /// The child as Nomad shows it: a copy of the parent marked dispatched, with merged meta.
    /// `payload` is the base64 payload when the caller has loaded it from the store.
    pub fn to_child_job(&self, payload: Option<String>) -> Job {
        let mut job = (*self.job).clone();
        job.id = self.id.to_string();
        job.name = self.id.to_string();
        job.parent_id = self.job.id.clone();
        job.dispatched = true;
        job.stop = self.status == DispatchStatus::Stopped;
        job.status = self.status.nomad_job_status().to_string();
        job.status_description = self.description.as_deref().unwrap_or_default().to_string();
        job.priority = self.priority as i64;
        job.meta = self.merged_meta();
        job.submit_time = self.submit_time;
        job.create_index = self.create_index;
        job.modify_index = self.modify_index;
        job.job_modify_index = self.create_index;
        job.version = 0;
        job.payload = payload;
        // Dispatch extension: the precise status (Nomad's `Status` only says dead).
        job.extra.insert(
            "DispatchStatus".into(),
            serde_json::Value::String(self.status.as_str().into()),
        );
        if let Some(by) = &self.dispatched_by {
            // Dispatch extension: who dispatched it (the token's accessor ID)
            job.extra.insert(
                "DispatchedBy".into(),
                serde_json::Value::String(by.to_string()),
            );
        }
        job.dispatch_idempotency_token = self
            .idempotency_token
            .as_deref()
            .unwrap_or_default()
            .to_string();
        job
    }
}

/// Build a child ID the way Nomad does: `<parent>/dispatch-[<prefix>-]<unix>-<8 hex>`.
pub fn child_id(parent: &str, prefix: &str, unix_seconds: i64, random: uuid::Uuid) -> String {
    let hex = random.simple().to_string();
    let short = &hex[..8];
    if prefix.is_empty() {
        format!("{parent}/dispatch-{unix_seconds}-{short}")
    } else {
        format!("{parent}/dispatch-{prefix}-{unix_seconds}-{short}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ids_follow_nomads_format() {
        let u = uuid::Uuid::parse_str("3fa9c1d2-0000-4000-8000-000000000000").unwrap();
        assert_eq!(
            child_id("transcode", "", 1766410000, u),
            "transcode/dispatch-1766410000-3fa9c1d2"
        );
        assert_eq!(
            child_id("transcode", "cust42", 1766410000, u),
            "transcode/dispatch-cust42-1766410000-3fa9c1d2"
        );
    }
}
