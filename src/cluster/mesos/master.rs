//! Talking HTTP to the masters: finding the leader, opening the SUBSCRIBE stream on its own
//! connection, and POSTing every other call on pooled connections.
//!
//! The candidates come from the configured list (the known leader and whatever
//! `/master/redirect` names first) or from ZooKeeper (`zookeeper`: contender order, leader
//! first). Redirects are followed by hand: a non-leader answers 307 with a scheme-less
//! `Location` (`//host:5050/api/v1/scheduler`), which is resolved against the URL we used and
//! then remembered as the leader for all later calls. 503 (no leader, or registry recovery),
//! 404 from a master whose routes are not installed yet, and connection errors move on to the
//! next master.
//!
//! Errors say whether retrying alone can help (`MasterError::permanent`): refused
//! credentials, or an address that is not a Mesos master at all (a 404 from a server whose
//! `/master/redirect` is not Mesos's, a 200 without `Mesos-Stream-Id`), will not change until
//! someone changes a setting. A one-off run gives up on those at once.

use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

use super::codec::Encoding;
use super::settings::MasterSource;
use super::zookeeper::{self, Detected};

pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 4;
/// Bound on ordinary call responses (the stream has no total timeout, only a watchdog).
const CALL_TIMEOUT: Duration = Duration::from_secs(75);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a master may take to answer a SUBSCRIBE (status and headers).
const SUBSCRIBE_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("no master answered as leader{}: {last}", tried_list(.tried))]
    NoLeader { tried: String, last: String },
    #[error("{master} refused our credentials (401): check -mesos-principal / -mesos-secret")]
    Unauthorized { master: String },
    #[error("the master answered {status}: {body}")]
    Refused { status: StatusCode, body: String },
    #[error("{master} is not a Mesos master: {answer}")]
    NotAMaster { master: String, answer: String },
    #[error("{url}: {}", describe_http_error(.source))]
    Http { url: String, source: reqwest::Error },
}

impl MasterError {
    /// The master certainly did not act on the call (safe to treat it as not sent).
    pub fn not_processed(&self) -> bool {
        matches!(
            self,
            MasterError::Unauthorized { .. }
                | MasterError::Refused { .. }
                | MasterError::NoLeader { .. }
                | MasterError::NotAMaster { .. }
        )
    }

    /// Retrying alone will not help: a setting (credentials, the address) or the master
    /// must change first.
    pub fn permanent(&self) -> bool {
        matches!(
            self,
            MasterError::Unauthorized { .. }
                | MasterError::NotAMaster { .. }
                | MasterError::Refused { .. }
        )
    }
}

/// ` (tried a, b)` when more than one master was tried (one is named by the error itself).
fn tried_list(tried: &str) -> String {
    if tried.contains(',') {
        format!(" (tried {tried})")
    } else {
        String::new()
    }
}

/// A reqwest error as a person reads it: what failed, down to the root cause
/// (`cannot connect: Connection refused (os error 111)`).
pub fn describe_http_error(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    format!("{what}: {root}")
}

/// An open subscription: the streaming response and its stream ID.
pub struct Subscription {
    pub response: reqwest::Response,
    pub stream_id: String,
    /// The master that answered (the leader).
    pub leader: String,
}

/// Where the candidates come from.
enum Candidates {
    List(Vec<String>),
    ZooKeeper(tokio::sync::watch::Receiver<Detected>),
}

pub struct Masters {
    candidates: Candidates,
    leader: RwLock<Option<String>>,
    encoding: Encoding,
    authorization: Option<HeaderValue>,
    calls: reqwest::Client,
    stream: reqwest::Client,
}

impl Masters {
    /// The HTTP clients for `source`; with ZooKeeper, the detector starts on the current
    /// runtime.
    pub fn new(
        source: &MasterSource,
        encoding: Encoding,
        authorization: Option<String>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Masters, String> {
        let roots = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    format!("cannot read the Mesos CA file {}: {e}", path.display())
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("{}: not a PEM CA bundle: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("{}: no certificate in the CA file", path.display()));
                }
                Some(certs)
            }
            None => None,
        };
        let builder = || {
            let b = reqwest::Client::builder();
            match &roots {
                Some(certs) => b.tls_certs_only(certs.iter().cloned()),
                None => b,
            }
        };
        let http_error = |e: reqwest::Error| format!("cannot build the HTTP client: {e}");
        let calls = builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .pool_max_idle_per_host(super::driver::MAX_CALLS_IN_FLIGHT)
            .http1_only()
            .build()
            .map_err(http_error)?;
        // The stream gets its own client: its connection is never shared with calls.
        let stream = builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(0)
            .http1_only()
            .build()
            .map_err(http_error)?;
        let candidates = match source {
            MasterSource::List(list) => Candidates::List(list.clone()),
            // MasterInfo carries no scheme: a Mesos CA file says the masters speak TLS.
            MasterSource::ZooKeeper(url) => Candidates::ZooKeeper(zookeeper::spawn(
                url.clone(),
                if ca_file.is_some() { "https" } else { "http" },
            )),
        };
        Ok(Masters {
            candidates,
            leader: RwLock::new(None),
            encoding,
            authorization: authorization.and_then(|a| HeaderValue::from_str(&a).ok()),
            calls,
            stream,
        })
    }

    pub fn leader(&self) -> Option<String> {
        self.leader.read().clone()
    }

    fn headers(&self, subscribe: bool, stream_id: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let ct = HeaderValue::from_static(self.encoding.content_type());
        h.insert(CONTENT_TYPE, ct.clone());
        if subscribe {
            h.insert(ACCEPT, ct);
        }
        if let Some(id) = stream_id.and_then(|s| HeaderValue::from_str(s).ok()) {
            h.insert("Mesos-Stream-Id", id);
        }
        if let Some(auth) = &self.authorization {
            h.insert(AUTHORIZATION, auth.clone());
        }
        h
    }

    /// The leader ZooKeeper names (`None` without ZooKeeper, or while none is registered).
    pub fn detected_leader(&self) -> Option<String> {
        match &self.candidates {
            Candidates::List(_) => None,
            Candidates::ZooKeeper(rx) => rx.borrow().leader().map(String::from),
        }
    }

    /// Resolves when ZooKeeper names a leader other than `current`; never without ZooKeeper.
    pub async fn leader_change(&self, current: Option<String>) -> Option<String> {
        let Candidates::ZooKeeper(rx) = &self.candidates else {
            return std::future::pending().await;
        };
        let mut rx = rx.clone();
        loop {
            let now = rx.borrow_and_update().leader().map(String::from);
            if now != current {
                return now;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// `GET /master/redirect` on each master until one names the leader.
    pub async fn find_leader(&self, list: &[String]) -> Option<String> {
        for m in list {
            let Ok(resp) = self.calls.get(format!("{m}/master/redirect")).send().await else {
                continue;
            };
            if resp.status() == StatusCode::TEMPORARY_REDIRECT {
                if let Some(leader) = location_base(m, resp.headers()) {
                    return Some(leader);
                }
            }
        }
        None
    }

    /// Whether `base` answers `/master/redirect` as a Mesos master does (307 to the leader,
    /// or 503 while none is elected).
    async fn speaks_mesos(&self, base: &str) -> bool {
        let Ok(resp) = self
            .calls
            .get(format!("{base}/master/redirect"))
            .send()
            .await
        else {
            return false;
        };
        matches!(
            resp.status(),
            StatusCode::TEMPORARY_REDIRECT | StatusCode::SERVICE_UNAVAILABLE
        )
    }

    /// Masters to try, best first. With a list: the known leader, the one
    /// `/master/redirect` names, then the list. With ZooKeeper: its contenders, leader first
    /// (or, when it names none, why not).
    async fn candidates(&self) -> Result<Vec<String>, String> {
        let list = match &self.candidates {
            Candidates::List(list) => list,
            Candidates::ZooKeeper(rx) => {
                let detected = rx.borrow().clone();
                if detected.masters.is_empty() {
                    return Err(detected
                        .problem
                        .unwrap_or_else(|| "ZooKeeper names no master".into()));
                }
                return Ok(detected.masters);
            }
        };
        let mut out: Vec<String> = Vec::new();
        if let Some(l) = self.leader() {
            out.push(l);
        }
        if let Some(l) = self.find_leader(list).await {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        for m in list {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        Ok(out)
    }

    /// POST a SUBSCRIBE to the leader and return the open stream.
    pub async fn subscribe(&self, body: Bytes) -> Result<Subscription, MasterError> {
        let candidates = match self.candidates().await {
            Ok(c) => c,
            Err(problem) => {
                return Err(MasterError::NoLeader {
                    tried: "none".into(),
                    last: problem,
                })
            }
        };
        let mut last = String::from("no master configured");
        let mut not_masters: Vec<MasterError> = Vec::new();
        for candidate in &candidates {
            // The stream has no total timeout; its answer (status and headers) does.
            let answer = tokio::time::timeout(
                SUBSCRIBE_ANSWER_TIMEOUT,
                self.post_following(&self.stream, candidate, body.clone(), true, None),
            )
            .await;
            let Ok(answer) = answer else {
                last = format!(
                    "{candidate} did not answer SUBSCRIBE within {} s",
                    SUBSCRIBE_ANSWER_TIMEOUT.as_secs()
                );
                continue;
            };
            match answer {
                Ok((leader, response)) if response.status() == StatusCode::OK => {
                    let Some(stream_id) = response
                        .headers()
                        .get("Mesos-Stream-Id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                    else {
                        let e = MasterError::NotAMaster {
                            master: leader,
                            answer: format!(
                                "its answer to SUBSCRIBE (200, {}) has no Mesos-Stream-Id header",
                                content_type(&response)
                            ),
                        };
                        last = e.to_string();
                        not_masters.push(e);
                        continue;
                    };
                    *self.leader.write() = Some(leader.clone());
                    return Ok(Subscription {
                        response,
                        stream_id,
                        leader,
                    });
                }
                Ok((leader, response)) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let text = text.trim();
                    if status == StatusCode::NOT_FOUND && !self.speaks_mesos(&leader).await {
                        let e = MasterError::NotAMaster {
                            answer: format!(
                                "POST {SCHEDULER_PATH} answered 404 ({})",
                                first_line(text, "no body")
                            ),
                            master: leader,
                        };
                        last = e.to_string();
                        not_masters.push(e);
                        continue;
                    }
                    if retry_elsewhere(status) {
                        last = format!("{leader} answered {status}: {}", first_line(text, ""));
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        return Err(MasterError::Unauthorized { master: leader });
                    }
                    return Err(MasterError::Refused {
                        status,
                        body: text.to_string(),
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        *self.leader.write() = None;
        // Every candidate answered, and none is a Mesos master: that will not change.
        if not_masters.len() == candidates.len() {
            if let Some(e) = not_masters.into_iter().next() {
                return Err(e);
            }
        }
        Err(MasterError::NoLeader {
            tried: candidates.join(", "),
            last,
        })
    }

    /// POST one (non-SUBSCRIBE) call to the leader; `Ok` on 202/200.
    pub async fn call(&self, stream_id: &str, body: Bytes) -> Result<(), MasterError> {
        let Some(leader) = self.leader() else {
            return Err(MasterError::NoLeader {
                tried: String::new(),
                last: "not subscribed".into(),
            });
        };
        let (_, response) = self
            .post_following(&self.calls, &leader, body, false, Some(stream_id))
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED {
            return Err(MasterError::Unauthorized { master: leader });
        }
        Err(MasterError::Refused {
            status,
            body: text.trim().to_string(),
        })
    }

    /// POST to `base`, following 307s; returns the master that answered and its response.
    async fn post_following(
        &self,
        client: &reqwest::Client,
        base: &str,
        body: Bytes,
        subscribe: bool,
        stream_id: Option<&str>,
    ) -> Result<(String, reqwest::Response), MasterError> {
        let mut base = base.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let url = format!("{base}{SCHEDULER_PATH}");
            let response = client
                .post(&url)
                .headers(self.headers(subscribe, stream_id))
                .body(body.clone())
                .send()
                .await
                .map_err(|source| MasterError::Http {
                    url: base.clone(),
                    source,
                })?;
            if response.status() != StatusCode::TEMPORARY_REDIRECT {
                return Ok((base, response));
            }
            match location_base(&base, response.headers()) {
                Some(next) => {
                    tracing::info!(from = %base, to = %next, "following the master's redirect to the leader");
                    base = next;
                }
                None => {
                    return Err(MasterError::Refused {
                        status: response.status(),
                        body: "307 without a usable Location".into(),
                    })
                }
            }
        }
        Err(MasterError::Refused {
            status: StatusCode::TEMPORARY_REDIRECT,
            body: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

/// The first line of an answer's body, shortened (an HTML page says little in one line).
fn first_line(text: &str, empty: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => empty.to_string(),
        Some(l) if l.chars().count() > 120 => {
            format!("{}...", l.chars().take(120).collect::<String>())
        }
        Some(l) => l.to_string(),
    }
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no Content-Type")
        .to_string()
}

/// Answers after which another master may do better.
fn retry_elsewhere(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::NOT_FOUND | StatusCode::BAD_GATEWAY
    )
}

/// A (scheme-less) `Location` resolved against the master we asked, as a base URL
/// (`scheme://host:port`).
pub fn location_base(asked: &str, headers: &HeaderMap) -> Option<String> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let resolved = Url::parse(asked).ok()?.join(location).ok()?;
    let host = resolved.host_str()?;
    let port = resolved.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", resolved.scheme()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_less_locations_keep_our_scheme() {
        let mut h = HeaderMap::new();
        h.insert(
            LOCATION,
            HeaderValue::from_static("//10.0.0.6:5050/api/v1/scheduler"),
        );
        assert_eq!(
            location_base("https://10.0.0.5:5050", &h).as_deref(),
            Some("https://10.0.0.6:5050")
        );
        h.insert(LOCATION, HeaderValue::from_static("//127.0.0.1:5050"));
        assert_eq!(
            location_base("http://m1:5050", &h).as_deref(),
            Some("http://127.0.0.1:5050")
        );
    }
}
