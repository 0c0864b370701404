//! Talking HTTP to the masters: finding the leader, opening the SUBSCRIBE stream on its own
//! connection, and POSTing every other call on pooled connections.
//!
//! Redirects are followed by hand: a non-leader answers 307 with a scheme-less `Location`
//! (`//host:5050/api/v1/scheduler`), which is resolved against the URL we used and then
//! remembered as the leader for all later calls. 503 (no leader, or registry recovery), 404
//! (routes not installed yet) and connection errors move on to the next master.

use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};

use super::codec::Encoding;

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
    #[error("no master answered as leader (tried {tried}): {last}")]
    NoLeader { tried: String, last: String },
    #[error("the master refused our credentials (401): check -mesos-principal / -mesos-secret")]
    Unauthorized,
    #[error("the master answered {status}: {body}")]
    Refused { status: StatusCode, body: String },
    #[error("the SUBSCRIBE answer has no Mesos-Stream-Id header")]
    NoStreamId,
    #[error("request to {url} failed: {}", chain(source))]
    Http { url: String, source: reqwest::Error },
}

/// An error with its causes (reqwest's own text leaves out why, e.g., a TLS handshake
/// failed: an unknown issuer, a name mismatch).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

impl MasterError {
    /// The master certainly did not act on the call (safe to treat it as not sent).
    pub fn not_processed(&self) -> bool {
        matches!(
            self,
            MasterError::Unauthorized | MasterError::Refused { .. } | MasterError::NoLeader { .. }
        )
    }
}

/// An open subscription: the streaming response and its stream ID.
pub struct Subscription {
    pub response: reqwest::Response,
    pub stream_id: String,
    /// The master that answered (the leader).
    pub leader: String,
}

pub struct Masters {
    list: Vec<String>,
    leader: RwLock<Option<String>>,
    encoding: Encoding,
    authorization: Option<HeaderValue>,
    calls: reqwest::Client,
    stream: reqwest::Client,
}

impl Masters {
    pub fn new(
        list: Vec<String>,
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
        Ok(Masters {
            list,
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

    /// `GET /master/redirect` on each master until one names the leader.
    pub async fn find_leader(&self) -> Option<String> {
        for m in &self.list {
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

    /// Masters to try, best first: the known leader, the one `/master/redirect` names, then
    /// the configured list.
    async fn candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(l) = self.leader() {
            out.push(l);
        }
        if let Some(l) = self.find_leader().await {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        for m in &self.list {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// POST a SUBSCRIBE to the leader and return the open stream.
    pub async fn subscribe(&self, body: Bytes) -> Result<Subscription, MasterError> {
        let mut last = String::from("no master configured");
        let candidates = self.candidates().await;
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
                    let stream_id = response
                        .headers()
                        .get("Mesos-Stream-Id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .ok_or(MasterError::NoStreamId)?;
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
                    if retry_elsewhere(status) {
                        last = format!("{leader} answered {status}: {}", text.trim());
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED {
                        return Err(MasterError::Unauthorized);
                    }
                    return Err(MasterError::Refused {
                        status,
                        body: text.trim().to_string(),
                    });
                }
                Err(e) => last = e.to_string(),
            }
        }
        *self.leader.write() = None;
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
            return Err(MasterError::Unauthorized);
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
                    url: url.clone(),
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
