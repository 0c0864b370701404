//! The API's listener: the TCP accept loop, TLS (rustls) when configured, and HTTP/1.1
//! (hyper) on each connection, serving the axum router. It owns what protects the server
//! below HTTP: a cap on open connections (in all, and per client address, Nomad's
//! `http_max_conns_per_client`), the time a client gets to finish its TLS handshake and to
//! send its request headers, and the handling of clients that speak the wrong protocol
//! (plain HTTP to the TLS port gets Go's 400 and a clean close; TLS failures are logged
//! once per client address, and the server keeps serving).
//!
//! Why our own loop instead of `axum::serve` or `axum-server`: `axum::serve` has no TLS, no
//! header-read timeout and no connection cap; `axum-server` adds TLS but keeps the accept
//! loop to itself, so the per-client cap, the plain-HTTP answer and the once-per-client
//! failure log would have to be bolted on around it. tokio-rustls + hyper-util's connection
//! builder is the same machinery both of them use, with the loop in our hands.

pub mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

pub use tls::{ServerTls, TlsError, TlsFiles};

/// Limits on connections (the `limits {}` block and its flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections in all; beyond it a new connection is answered 503 and closed.
    pub max_conns: usize,
    /// Open connections from one client address (0 = no limit); beyond it 429, as Nomad.
    pub max_conns_per_client: usize,
    /// Time to send a request's headers (also how long an idle keep-alive connection stays).
    pub header_timeout: Duration,
    /// Time to finish the TLS handshake (Nomad's `https_handshake_timeout`).
    pub handshake_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_conns: 4096,
            max_conns_per_client: 100,
            header_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// Nomad's answer to a client over `http_max_conns_per_client`.
const TOO_MANY_PER_CLIENT: &str =
    "Your IP is issuing too many concurrent connections, please rate limit your calls\n";
/// Go's answer to plain HTTP on a TLS port.
const PLAIN_HTTP_TO_TLS: &str = "Client sent an HTTP request to an HTTPS server.\n";
/// How long open connections may finish their requests after a shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A client whose handshake failed is logged again after this long.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(600);

/// Serve `router` on `listener` until `shutdown` resolves, then let open requests finish
/// (up to a grace period).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let conns = Arc::new(Connections::new(&limits));
    let failures = Arc::new(FailureLog::default());
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // out of file descriptors and the like: wait for connections to close
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let permit = match conns.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                crate::metrics::connection_refused(match refusal {
                    Refusal::PerClient => "per_client",
                    Refusal::Total => "total",
                });
                let plain = tls.is_none();
                tokio::spawn(refuse(stream, refusal, plain));
                continue;
            }
        };
        let conn = Connection {
            router: router.clone(),
            tls: tls.clone(),
            limits: limits.clone(),
            failures: failures.clone(),
            peer,
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            conn.run(stream, watcher).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {}s after shutdown; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    router: Router,
    tls: Option<ServerTls>,
    limits: Arc<ConnLimits>,
    failures: Arc<FailureLog>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        let Some(tls) = self.tls.clone() else {
            self.http(stream, watcher).await;
            return;
        };
        let handshake = async {
            // A TLS client speaks first, with a handshake record (0x16).
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(0) | Err(_) => Handshake::Gone,
                Ok(_) if first[0] != 0x16 => Handshake::NotTls(stream, first[0]),
                Ok(_) => match tls.acceptor().accept(stream).await {
                    Ok(stream) => Handshake::Done(Box::new(stream)),
                    Err(e) => Handshake::Failed(e.to_string()),
                },
            }
        };
        match tokio::time::timeout(self.limits.handshake_timeout, handshake).await {
            Ok(Handshake::Done(stream)) => self.http(*stream, watcher).await,
            Ok(Handshake::NotTls(mut stream, first)) => {
                crate::metrics::tls_failure("not_tls");
                self.failures.note(
                    self.peer,
                    "the client did not start a TLS handshake (plain HTTP to the HTTPS port?)",
                );
                if first.is_ascii_uppercase() {
                    let reply = format!(
                        "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_TO_TLS}",
                        PLAIN_HTTP_TO_TLS.len()
                    );
                    close_after(&mut stream, reply.as_bytes()).await;
                }
            }
            Ok(Handshake::Failed(why)) => {
                crate::metrics::tls_failure("handshake");
                self.failures.note(self.peer, &why)
            }
            Ok(Handshake::Gone) => {}
            Err(_) => {
                crate::metrics::tls_failure("timeout");
                self.failures.note(self.peer, "the TLS handshake timed out")
            }
        }
    }

    async fn http<I>(self, io: I, watcher: hyper_util::server::graceful::Watcher)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let service = self
            .router
            .map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let service = TowerToHyperService::new(service.map_request(
            |req: hyper::Request<hyper::body::Incoming>| req.map(axum::body::Body::new),
        ));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::trace!("connection from {peer}: {e}");
        }
    }
}

/// How a TLS handshake ended.
enum Handshake {
    Done(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// The first byte was not a TLS handshake record.
    NotTls(TcpStream, u8),
    Failed(String),
    /// Closed before saying anything.
    Gone,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    PerClient,
    Total,
}

/// Answer a connection that is over a limit (in plain HTTP only: a TLS client could not
/// read it) and close it.
async fn refuse(mut stream: TcpStream, refusal: Refusal, plain: bool) {
    if plain {
        let (status, body) = match refusal {
            Refusal::PerClient => ("429 Too Many Requests", TOO_MANY_PER_CLIENT),
            Refusal::Total => (
                "503 Service Unavailable",
                "The server has too many open connections; retry later\n",
            ),
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        close_after(&mut stream, reply.as_bytes()).await;
    }
}

/// Write `reply`, stop writing, and read what the client still sends for a moment, so the
/// close does not reset the connection before the client read the reply.
async fn close_after(stream: &mut TcpStream, reply: &[u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(reply).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Open connections, in all and per client address.
struct Connections {
    total: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_client: usize,
}

/// Holds a connection's place until it closes.
struct Admitted {
    _total: OwnedSemaphorePermit,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut map = self.per_client.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    fn new(limits: &ConnLimits) -> Self {
        Connections {
            total: Arc::new(Semaphore::new(limits.max_conns.max(1))),
            per_client: Arc::default(),
            max_per_client: limits.max_conns_per_client,
        }
    }

    fn admit(&self, ip: IpAddr) -> Result<Admitted, Refusal> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let mut map = self.per_client.lock();
        let open = map.entry(ip).or_insert(0);
        if self.max_per_client > 0 && *open >= self.max_per_client {
            if *open == 0 {
                map.remove(&ip);
            }
            return Err(Refusal::PerClient);
        }
        *open += 1;
        Ok(Admitted {
            _total: total,
            per_client: self.per_client.clone(),
            ip,
        })
    }
}

/// Logs a failing client once (per `FAILURE_LOG_EVERY`), not once per attempt.
#[derive(Default)]
struct FailureLog {
    seen: Mutex<HashMap<IpAddr, (Instant, u64)>>,
}

impl FailureLog {
    fn note(&self, peer: SocketAddr, what: &str) {
        let now = Instant::now();
        let mut seen = self.seen.lock();
        if seen.len() > 10_000 {
            seen.retain(|_, (at, _)| now.duration_since(*at) < FAILURE_LOG_EVERY);
        }
        let entry = seen.entry(peer.ip()).or_insert((now, 0));
        let first = entry.1 == 0 || now.duration_since(entry.0) >= FAILURE_LOG_EVERY;
        if first {
            let again = entry.1.saturating_sub(1);
            *entry = (now, 1);
            drop(seen);
            let more = if again > 0 {
                format!(" ({again} more failures from it since the last message)")
            } else {
                String::new()
            };
            tracing::warn!(
                "TLS handshake with {} failed: {what}{more}; further failures from this client are not logged for {} minutes",
                peer.ip(),
                FAILURE_LOG_EVERY.as_secs() / 60
            );
        } else {
            entry.1 += 1;
        }
    }
}
