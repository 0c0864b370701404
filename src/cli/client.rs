//! The HTTP client the CLI uses, and the reply shapes it reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

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

/// Where the server is and how to talk to it (see `AddressArgs`).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub address: String,
    /// ACL token secret, sent as `X-Nomad-Token`.
    pub token: Option<String>,
    /// CA bundle the server's certificate must chain to (instead of the system's roots).
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// An error and its causes, `a: b: c` (reqwest's own text leaves out why a TLS handshake
/// failed).
pub fn error_chain(e: &dyn std::error::Error) -> String {
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

fn read_file(path: &Path, flag: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::new(format!("Error reading {flag} {}: {e}", path.display())))
}

impl Client {
    /// A plain connection to `addr`, no token.
    pub fn new(addr: &str) -> Result<Client, CliError> {
        Client::connect(&Connection {
            address: addr.to_string(),
            ..Connection::default()
        })
    }

    pub fn connect(conn: &Connection) -> Result<Client, CliError> {
        let addr = conn.address.trim_end_matches('/');
        let base = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(token) = &conn.token {
            let mut value = HeaderValue::from_str(token.trim()).map_err(|_| {
                CliError::new("Error: the ACL token (-token, DISPATCH_TOKEN or NOMAD_TOKEN) is not a valid header value")
            })?;
            value.set_sensitive(true);
            let mut headers = HeaderMap::new();
            headers.insert("X-Nomad-Token", value);
            builder = builder.default_headers(headers);
        }
        if let Some(ca) = &conn.ca_cert {
            let pem = read_file(ca, "-ca-cert")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    CliError::new(format!(
                        "Error reading -ca-cert {}: no PEM certificate in it",
                        ca.display()
                    ))
                })?;
            builder = builder.tls_certs_only(certs);
        }
        match (&conn.client_cert, &conn.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = read_file(cert, "-client-cert")?;
                pem.push(b'\n');
                pem.extend(read_file(key, "-client-key")?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    CliError::new(format!(
                        "Error reading the client certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(CliError::new(
                    "Error: a client certificate needs its key: give both -client-cert and -client-key \
                     (or DISPATCH_CLIENT_CERT and DISPATCH_CLIENT_KEY)",
                ))
            }
        }
        let http = builder
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
                "Error querying the server at {}: {}; is `dispatch server` running? (set -address or DISPATCH_ADDR)",
                self.base,
                error_chain(&e)
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

    /// A write whose answer has no body worth reading (Nomad answers policy writes and
    /// deletes with an empty 200): only success or the server's message.
    pub async fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Result<(), ApiFailure>, CliError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            CliError::new(format!(
                "Error querying the server at {}: {}",
                self.base,
                error_chain(&e)
            ))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(()));
        }
        let message = response.text().await.unwrap_or_default().trim().to_string();
        Ok(Err(ApiFailure {
            status: status.as_u16(),
            message,
        }))
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
