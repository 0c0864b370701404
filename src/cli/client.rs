//! The HTTP client the CLI uses, and the reply shapes it reads.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::CliError;
pub use crate::api::wire::DispatchResponse;
use crate::api::wire::{Children, TaskGroupSummary};

/// A connection to a Dispatch (or Nomad) server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// A non-2xx answer: the status and the server's message.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

impl From<ApiFailure> for CliError {
    fn from(f: ApiFailure) -> Self {
        CliError::new(f.message)
    }
}

/// Percent-encode one path segment (job IDs contain `/`, which becomes `%2F`).
pub fn escape_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(addr: &str) -> Result<Client, CliError> {
        let base = if addr.contains("://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", addr.trim_end_matches('/'))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CliError::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Send a request; decode a 2xx JSON answer, return the server's message otherwise.
    /// Also returns the answer's `X-Nomad-Index` (0 when absent).
    async fn send_indexed<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Result<(T, u64), ApiFailure>, CliError> {
        let response = request.send().await.map_err(|e| {
            CliError::new(format!(
                "Error querying the server at {}: {e}; is `dispatch server` running? (set -address or DISPATCH_ADDR)",
                self.base
            ))
        })?;
        let status = response.status();
        let index = response
            .headers()
            .get("x-nomad-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::new(format!("Error reading the server's answer: {e}")))?;
        if !status.is_success() {
            return Ok(Err(ApiFailure {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).trim().to_string(),
            }));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Ok((v, index)))
            .map_err(|e| CliError::new(format!("Unexpected answer from the server: {e}")))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Result<T, ApiFailure>, CliError> {
        Ok(self.send_indexed(request).await?.map(|(v, _)| v))
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Result<T, ApiFailure>, CliError> {
        let url = format!("{}{}", self.base, path);
        self.send(self.http.get(url).query(query)).await
    }

    /// GET a text answer; `None` on any failure (for output shown only when available).
    pub async fn get_text(&self, path: &str, query: &[(&str, &str)]) -> Option<String> {
        let url = format!("{}{}", self.base, path);
        let response = self.http.get(url).query(query).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    /// A blocking query: GET with `?index=&wait=`, returning the answer and its
    /// `X-Nomad-Index`.
    pub async fn get_blocking<T: DeserializeOwned>(
        &self,
        path: &str,
        index: u64,
        wait: &str,
    ) -> Result<Result<(T, u64), ApiFailure>, CliError> {
        let url = format!("{}{}", self.base, path);
        let index_s = index.to_string();
        self.send_indexed(
            self.http
                .get(url)
                .query(&[("index", index_s.as_str()), ("wait", wait)]),
        )
        .await
    }

    /// A GET whose body the caller reads itself (a followed log, a file of any type): the
    /// answer when it is 2xx. `what` names the request in errors (`reading logs`:
    /// `Error reading logs: <the server's message>`).
    pub async fn get_raw(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<reqwest::Response, CliError> {
        let url = format!("{}{}", self.base, path);
        let response = self
            .http
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(|e| CliError::new(format!("Error {what}: {e}")))?;
        if !response.status().is_success() {
            let message = response.text().await.unwrap_or_default();
            return Err(CliError::new(format!("Error {what}: {}", message.trim())));
        }
        Ok(response)
    }

    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Result<T, ApiFailure>, CliError> {
        let url = format!("{}{}", self.base, path);
        self.send(self.http.put(url).query(query).json(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Result<T, ApiFailure>, CliError> {
        let url = format!("{}{}", self.base, path);
        self.send(self.http.delete(url).query(query)).await
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ParentID", default)]
    pub parent_id: String,
    #[serde(default)]
    pub r#type: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub submit_time: i64,
    #[serde(default)]
    pub parameterized_job: bool,
    #[serde(default)]
    pub periodic: bool,
}

impl JobStub {
    /// The type as `dispatch status` shows it: `batch/parameterized`, `batch/periodic`, `batch`.
    pub fn display_type(&self) -> String {
        if self.parameterized_job {
            format!("{}/parameterized", self.r#type)
        } else if self.periodic {
            format!("{}/periodic", self.r#type)
        } else {
            self.r#type.clone()
        }
    }
}

/// `GET /v1/job/<id>/summary`, the parts the CLI shows (the server's own wire types).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobSummary {
    #[serde(default)]
    pub summary: indexmap::IndexMap<String, TaskGroupSummary>,
    #[serde(default)]
    pub children: Option<Children>,
}
