//! A standby's door to the leader: requests that change something (register, dispatch,
//! stop, garbage collection, ACL bootstrap, policies and tokens) or need the cluster backend
//! (task logs and files, rendered tasks, which only the leader runs) are sent on to the
//! leader as they came, with the caller's token (`X-Nomad-Token` / `Authorization`), so the
//! leader authorizes them; its answer comes back as is. This layer sits outside the ACL
//! edge: a forwarded request is checked once, by the leader, against the same tokens and
//! policies (a standby's copy follows the leader's).
//! Reads are answered here, from this server's warm copy (blocking queries included).
//! A forwarded write is answered once this server's copy has caught up with the index the
//! leader answered (`X-Nomad-Index`, waiting at most `CATCH_UP`), so a client that reads
//! back what it just wrote through the same server finds it.
//!
//! No leader known (an election is under way): 503 with what to do. The leader's address
//! comes from the store (`leadership::Role`), so it is right within one renewal.
//!
//! The caller's address travels with a forwarded request (`X-Dispatch-Client`), so the
//! leader's per-caller limits (the dispatch rate of an anonymous caller) see the client, not
//! the standby. The leader believes it only beside the servers' shared secret
//! (`X-Dispatch-Peer`, from the store: `store::Lease::peer_secret`); both headers are taken
//! off every request as it arrives, so a client that sends them itself changes nothing.
//!
//! The client that forwards (`Forwarding`) is built again when a configuration reload
//! replaced the TLS certificates, so it trusts and presents the new ones.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::error::ApiError;
use super::AppState;
use crate::listener::ServerTls;

/// Longest a forwarded write's answer waits for this server's copy to catch up.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest request body forwarded (a payload is at most 16 KiB; a job file is small).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Marks a forwarded request: a server that receives one and does not lead answers 503
/// rather than forwarding again (no loops while servers disagree for a moment).
const FORWARDED: &str = "x-dispatch-forwarded";
/// The address of the client a standby forwards for.
const CLIENT: &str = "x-dispatch-client";
/// The servers' shared secret, which makes `CLIENT` believed.
const PEER: &str = "x-dispatch-peer";

/// How this server reaches the leader, and what proves it is one of the servers.
pub struct Forwarding {
    tls: Option<ServerTls>,
    /// The client, and the TLS configuration it was built for.
    client: Mutex<Built>,
    /// The secret every server of a shared store knows (`None`: a server alone).
    secret: Option<String>,
}

struct Built {
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    client: reqwest::Client,
}

impl Forwarding {
    /// `tls`: the API's TLS settings (servers reach each other over https then).
    pub fn new(tls: Option<ServerTls>, secret: Option<String>) -> Result<Forwarding, String> {
        let client = client_for(tls.as_ref())?;
        Ok(Forwarding {
            client: Mutex::new(Built {
                tls: tls.as_ref().map(ServerTls::current),
                client,
            }),
            tls,
            secret,
        })
    }

    /// The client, built again first if the TLS certificates were reloaded since (a
    /// rebuild that fails keeps the old client and says why).
    fn client(&self) -> reqwest::Client {
        let mut built = self.client.lock();
        if let Some(tls) = &self.tls {
            let now = tls.current();
            if !built.tls.as_ref().is_some_and(|b| Arc::ptr_eq(b, &now)) {
                match client_for(Some(tls)) {
                    Ok(client) => {
                        tracing::info!("forwarding to the leader with the reloaded certificates");
                        built.client = client;
                    }
                    Err(e) => tracing::error!(
                        "cannot forward with the reloaded certificates ({e}); keeping the old ones"
                    ),
                }
                built.tls = Some(now);
            }
        }
        built.client.clone()
    }

    /// The caller a forwarded request names, if the sender proved it is one of the servers.
    fn vouched_client(
        &self,
        client: Option<&HeaderValue>,
        proof: Option<&HeaderValue>,
    ) -> Option<IpAddr> {
        let secret = self.secret.as_deref()?;
        let proof = proof?;
        aws_lc_rs::constant_time::verify_slices_are_equal(proof.as_bytes(), secret.as_bytes())
            .ok()?;
        client?.to_str().ok()?.parse().ok()
    }
}

/// The client a standby forwards writes to the leader with. With TLS on, servers reach each
/// other over https: the leader's certificate is checked against the server's CA file
/// (`tls.ca_file`) when there is one, else the system's roots; when servers verify client
/// certificates, this server presents its own certificate and key.
fn client_for(tls: Option<&ServerTls>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5));
    if let Some(tls) = tls {
        let files = tls.files();
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
        };
        if let Some(ca) = &files.ca_file {
            let certs = reqwest::Certificate::from_pem_bundle(&read(ca)?)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        if files.verify_clients {
            let mut pem = read(&files.cert_file)?;
            pem.push(b'\n');
            pem.extend(read(&files.key_file)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                format!(
                    "{} and {}: {e}",
                    files.cert_file.display(),
                    files.key_file.display()
                )
            })?;
            builder = builder.identity(identity);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// Take the forwarding headers off a request as it arrives; when another server vouches
/// for the client it names, the request is that client's from here on.
fn adopt_client(app: &AppState, request: &mut Request) {
    let headers = request.headers_mut();
    let client = headers.remove(CLIENT);
    let proof = headers.remove(PEER);
    if client.is_none() && proof.is_none() {
        return;
    }
    match app
        .forwarding
        .vouched_client(client.as_ref(), proof.as_ref())
    {
        Some(ip) => {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 0)));
        }
        None => tracing::debug!("ignored {CLIENT} from a sender that is not a server"),
    }
}

pub async fn to_leader(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    adopt_client(&app, &mut request);
    let Some(role) = &app.role else {
        return next.run(request).await;
    };
    let role = role.borrow().clone();
    if role.leading || !needs_leader(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    if request.headers().contains_key(FORWARDED) {
        return ApiError::Unavailable(
            "this server was named leader but no longer leads; retry".into(),
        )
        .into_response();
    }
    let Some(leader) = role.leader else {
        return ApiError::Unavailable(
            "no server leads right now (an election is under way); retry in a few seconds".into(),
        )
        .into_response();
    };
    match forward(&app.forwarding, &leader.url, request).await {
        Ok(response) => {
            crate::metrics::forwarded(Some(response.status().as_u16()));
            let index = response
                .headers()
                .get("x-nomad-index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(index) = index.filter(|_| response.status().is_success()) {
                app.state
                    .wait_for_index(index.saturating_sub(1), CATCH_UP)
                    .await;
            }
            response
        }
        Err(e) => {
            crate::metrics::forwarded(None);
            ApiError::Unavailable(format!(
                "the leader {} did not answer ({e}); retry",
                leader.address
            ))
            .into_response()
        }
    }
}

/// Writes, and whatever needs the backend.
fn needs_leader(method: &Method, path: &str) -> bool {
    let read_only_put = path == "/v1/search" || path == "/v1/jobs/parse";
    let writes = !(method == Method::GET || method == Method::HEAD || read_only_put);
    let ui_backend = matches!(path, "/ui/cluster" | "/ui/clients" | "/ui/servers");
    let backend = ui_backend
        || path.starts_with("/v1/sandbox/")
        || (path.starts_with("/v1/job/")
            && (path.ends_with("/logs") || path.ends_with("/fs") || path.ends_with("/rendered")));
    writes || backend
}

async fn forward(with: &Forwarding, base: &str, request: Request) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| format!("cannot read the request body: {e}"))?;
    let mut out = with.client().request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            out = out.header(name, value);
        }
    }
    out = out.header(FORWARDED, "1");
    if let (Some(ip), Some(secret)) = (client, &with.secret) {
        out = out.header(CLIENT, ip.to_string()).header(PEER, secret);
    }
    let answer = out.send().await.map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(answer.status().as_u16())
        .map_err(|e| format!("bad status from the leader: {e}"))?;
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    response
        .body(Body::from(bytes))
        .map_err(|e| format!("cannot relay the leader's answer: {e}"))
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "content-length"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_address_is_believed_only_beside_the_servers_secret() {
        let alone = Forwarding::new(None, None).unwrap();
        let shared = Forwarding::new(None, Some("s3cret".into())).unwrap();
        let ip = HeaderValue::from_static("192.0.2.7");
        let right = HeaderValue::from_static("s3cret");
        let wrong = HeaderValue::from_static("s3creT");
        assert_eq!(
            shared.vouched_client(Some(&ip), Some(&right)),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(shared.vouched_client(Some(&ip), Some(&wrong)), None);
        assert_eq!(shared.vouched_client(Some(&ip), None), None);
        assert_eq!(alone.vouched_client(Some(&ip), Some(&right)), None);
        let junk = HeaderValue::from_static("not an address");
        assert_eq!(shared.vouched_client(Some(&junk), Some(&right)), None);
    }

    #[test]
    fn writes_and_backend_reads_go_to_the_leader() {
        assert!(needs_leader(&Method::PUT, "/v1/job/j/dispatch"));
        assert!(needs_leader(&Method::POST, "/v1/jobs"));
        assert!(needs_leader(&Method::DELETE, "/v1/job/j"));
        assert!(needs_leader(&Method::GET, "/v1/job/j/dispatch-1-ab/logs"));
        assert!(needs_leader(
            &Method::GET,
            "/v1/job/j/dispatch-1-ab/rendered"
        ));
        assert!(needs_leader(&Method::POST, "/v1/acl/bootstrap"));
        assert!(needs_leader(&Method::POST, "/v1/acl/token"));
        assert!(needs_leader(&Method::DELETE, "/v1/acl/policy/p"));
        assert!(!needs_leader(&Method::GET, "/v1/acl/token/self"));
        assert!(needs_leader(&Method::POST, "/ui/jobs/j/dispatch"));
        assert!(needs_leader(&Method::GET, "/ui/cluster"));
        assert!(!needs_leader(&Method::GET, "/ui/jobs"));
        assert!(!needs_leader(&Method::GET, "/v1/job/j"));
        assert!(!needs_leader(&Method::GET, "/v1/jobs"));
        assert!(!needs_leader(&Method::PUT, "/v1/search"));
        assert!(!needs_leader(&Method::POST, "/v1/jobs/parse"));
    }
}
