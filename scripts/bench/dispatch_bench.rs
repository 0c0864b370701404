//! `dispatch-bench`: durable dispatch throughput and latency over real HTTP.
//!
//! Registers a parameterized job, then fires `--requests` dispatches over `--concurrency`
//! keep-alive HTTP/1.1 connections and prints `name: value` lines (throughput, latency
//! percentiles). With `--restart-check` (only when the bench started the server itself) it
//! then SIGKILLs the server, restarts it on the same data dir and reports how long until the
//! API answers and the job summary shows every dispatch Pending, plus the server's RSS
//! before the kill and after the restart. With `--compare-security ROUNDS` it starts two
//! servers, one plain and one with TLS and ACLs (the dispatches sent with an application's
//! dispatch-only token over HTTPS), and alternates rounds between them in the same run, so
//! both see the same machine; it prints each one's totals and the difference. See
//! scripts/bench/README.md.

mod ceiling;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(
    name = "dispatch-bench",
    about = "Durable dispatch throughput/latency over HTTP, and restart time with many pending dispatches"
)]
struct Args {
    /// An already running server (host:port or http://host:port); without it the bench
    /// starts `dispatch server` on a temp data dir and a free port
    #[arg(long)]
    addr: Option<String>,
    /// The `dispatch` binary to start [default: `dispatch` next to this executable]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Number of dispatches to send
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// Concurrent keep-alive connections (one in-flight request each)
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Payload size of each dispatch in bytes (sent base64-encoded)
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Keep the temp data dir of a server the bench started (its path is printed)
    #[arg(long)]
    keep_data_dir: bool,
    /// After the load: SIGKILL the server, restart it on the same data dir and time the
    /// recovery (needs a server started by the bench, i.e. no --addr)
    #[arg(long)]
    restart_check: bool,
    /// ID of the parameterized job to register and dispatch
    #[arg(long, default_value = "bench")]
    job: String,
    /// HTTP client: a minimal HTTP/1.1 client on tokio (cheapest on a shared CPU) or reqwest
    #[arg(long, value_enum, default_value_t = ClientKind::Raw)]
    client: ClientKind,
    /// Do not bench: serve the trivial-handler ceiling (same route, parsed JSON body, no
    /// storage) on this address until killed (`scripts/bench/p1.sh` compares against it)
    #[arg(long, value_name = "ADDR")]
    ceiling: Option<SocketAddr>,
    /// Start a plain server and one with TLS + ACLs, and alternate ROUNDS rounds of
    /// --requests/ROUNDS dispatches between them (raw client; needs `openssl` to make the
    /// throwaway certificate)
    #[arg(long, value_name = "ROUNDS")]
    compare_security: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClientKind {
    Raw,
    Reqwest,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("dispatch-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    if let Some(bind) = args.ceiling {
        return ceiling::serve(bind).await;
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if let Some(rounds) = args.compare_security {
        if args.addr.is_some() || args.restart_check {
            return Err(
                "--compare-security starts its own servers (no --addr, no --restart-check)".into(),
            );
        }
        return compare_security(&args, rounds.max(1)).await;
    }
    let mut server = match &args.addr {
        Some(_) => {
            if args.restart_check {
                return Err(
                    "--restart-check needs a server started by the bench (omit --addr)".into(),
                );
            }
            None
        }
        None => Some(Server::start(
            args.server_bin.clone(),
            args.keep_data_dir,
            Vec::new(),
        )?),
    };
    let addr: SocketAddr = match (&args.addr, &server) {
        (Some(a), _) => resolve(a)?,
        (None, Some(s)) => s.addr,
        (None, None) => unreachable!("a server was started"),
    };
    let control = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let base = format!("http://{addr}");
    if let Some(s) = &mut server {
        let waited = s.wait_ready(&control, Duration::from_secs(60)).await?;
        line("server_start_ms", ms(waited));
        line("data_dir", s.data_dir.display());
    }
    line("addr", addr);

    register(&control, &base, &args.job).await?;
    let before = pending(&control, &base, &args.job).await?;

    let body = dispatch_body(args.payload_bytes);
    line("requests", args.requests);
    line("concurrency", args.concurrency);
    line("payload_bytes", args.payload_bytes);
    line("client", format!("{:?}", args.client).to_lowercase());
    let target = Target::plain(addr);
    let result = load(&args, &target, &body, args.requests).await;
    result.print();

    let after = pending(&control, &base, &args.job).await?;
    line("summary_pending", after);
    let expected = before + result.ok as u64;
    if after != expected {
        eprintln!("warning: summary shows {after} pending, expected {expected}");
    }

    if let Some(s) = &mut server {
        if let Some(rss) = s.rss_kib() {
            line("server_rss_mib", format!("{:.1}", rss as f64 / 1024.0));
        }
        if let Some(hwm) = s.status_kib("VmHWM:") {
            line("server_peak_rss_mib", format!("{:.1}", hwm as f64 / 1024.0));
        }
        line(
            "data_dir_mib",
            format!("{:.1}", dir_size(&s.data_dir) as f64 / (1 << 20) as f64),
        );
        if args.restart_check {
            restart_check(s, &control, &base, &args.job, after).await?;
        }
    }
    Ok(())
}

/// Kill -9, restart on the same data dir, time until the API answers and the summary is whole.
async fn restart_check(
    server: &mut Server,
    control: &reqwest::Client,
    base: &str,
    job: &str,
    expected: u64,
) -> Result<(), BoxError> {
    line("restart_pending_before_kill", expected);
    if let Some(rss) = server.rss_kib() {
        line("rss_before_kill_mib", format!("{:.1}", rss as f64 / 1024.0));
    }
    server.kill9();
    let started = Instant::now();
    server.spawn()?;
    server.wait_ready(control, Duration::from_secs(600)).await?;
    line("restart_leader_ms", ms(started.elapsed()));
    loop {
        if let Ok(n) = pending(control, base, job).await {
            if n == expected {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("summary did not show {expected} pending within 600 s").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    line("restart_summary_ms", ms(started.elapsed()));
    line("restart_summary_pending", expected);
    if let Some(rss) = server.rss_kib() {
        line(
            "rss_after_restart_mib",
            format!("{:.1}", rss as f64 / 1024.0),
        );
    }
    if let Some(hwm) = server.status_kib("VmHWM:") {
        line(
            "peak_rss_after_restart_mib",
            format!("{:.1}", hwm as f64 / 1024.0),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The load phase.

/// What the workers measured.
struct LoadResult {
    ok: usize,
    errors: usize,
    first_errors: Vec<String>,
    wall: Duration,
    /// Latency of every successful request, in microseconds, sorted.
    latencies_us: Vec<u32>,
}

impl LoadResult {
    fn print(&self) {
        line("ok", self.ok);
        line("errors", self.errors);
        for e in &self.first_errors {
            line("error_sample", e);
        }
        line("wall_s", format!("{:.3}", self.wall.as_secs_f64()));
        let rate = self.ok as f64 / self.wall.as_secs_f64().max(1e-9);
        line("dispatches_per_s", format!("{rate:.0}"));
        for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999)] {
            line(
                &format!("latency_{name}_ms"),
                format!("{:.2}", self.percentile(q)),
            );
        }
        let max = self.latencies_us.last().copied().unwrap_or(0);
        line("latency_max_ms", format!("{:.2}", max as f64 / 1000.0));
    }

    fn percentile(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 * q).ceil() as usize)
            .clamp(1, self.latencies_us.len());
        self.latencies_us[i - 1] as f64 / 1000.0
    }
}

/// What one worker measured.
#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: usize,
    first_errors: Vec<String>,
}

impl WorkerResult {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_errors.len() < 3 {
            self.first_errors.push(e.to_string());
        }
    }
}

/// Where the load goes: the address, TLS (a connector trusting the server's certificate),
/// the ACL token sent with every dispatch.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
    token: Option<String>,
}

impl Target {
    fn plain(addr: SocketAddr) -> Target {
        Target {
            addr,
            tls: None,
            token: None,
        }
    }
}

async fn load(args: &Args, target: &Target, body: &str, requests: usize) -> LoadResult {
    let addr = target.addr;
    let next = Arc::new(AtomicUsize::new(0));
    let path = format!("/v1/job/{}/dispatch", args.job);
    let expect = format!("\"DispatchedJobID\":\"{}/dispatch-", args.job);
    let reqwest_client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client");
    // Workers open their connections first; the clock starts when all are connected.
    let ready = Arc::new(tokio::sync::Barrier::new(args.concurrency + 1));
    let mut tasks = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let next = next.clone();
        let ready = ready.clone();
        let n = requests;
        let expect = expect.clone();
        let task = match args.client {
            ClientKind::Raw => {
                let request = raw_request(addr, &path, body, target.token.as_deref());
                tokio::spawn(raw_worker(target.clone(), request, expect, next, n, ready))
            }
            ClientKind::Reqwest => {
                let url = format!("http://{addr}{path}");
                tokio::spawn(reqwest_worker(
                    reqwest_client.clone(),
                    url,
                    body.to_string(),
                    expect,
                    next,
                    n,
                    ready,
                ))
            }
        };
        tasks.push(task);
    }
    ready.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(requests);
    let mut errors = 0;
    let mut first_errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok(w) => {
                latencies.extend_from_slice(&w.latencies_us);
                errors += w.errors;
                first_errors.extend(w.first_errors);
            }
            Err(e) => {
                errors += 1;
                first_errors.push(format!("worker panicked: {e}"));
            }
        }
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    first_errors.truncate(5);
    LoadResult {
        ok: latencies.len(),
        errors,
        first_errors,
        wall,
        latencies_us: latencies,
    }
}

/// Claim the next request number, or `None` when all are taken.
fn claim(next: &AtomicUsize, n: usize) -> bool {
    next.fetch_add(1, Ordering::Relaxed) < n
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

async fn reqwest_worker(
    client: reqwest::Client,
    url: String,
    body: String,
    expect: String,
    next: Arc<AtomicUsize>,
    n: usize,
    ready: Arc<tokio::sync::Barrier>,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    ready.wait().await;
    while claim(&next, n) {
        let t = Instant::now();
        let res = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.text().await {
                    Ok(text) if status == 200 && text.contains(&expect) => {
                        out.latencies_us.push(micros(t.elapsed()))
                    }
                    Ok(text) => out.error(format!("HTTP {status}: {}", text.trim())),
                    Err(e) => out.error(e),
                }
            }
            Err(e) => out.error(e),
        }
    }
    out
}

fn raw_request(addr: SocketAddr, path: &str, body: &str, token: Option<&str>) -> Vec<u8> {
    let token = token
        .map(|t| format!("X-Nomad-Token: {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{token}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A plain or TLS connection.
trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Conn for T {}

/// One keep-alive connection, one request in flight; reconnects after an I/O error.
async fn raw_worker(
    target: Target,
    request: Vec<u8>,
    expect: String,
    next: Arc<AtomicUsize>,
    n: usize,
    ready: Arc<tokio::sync::Barrier>,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut conn = connect(&target).await.ok();
    ready.wait().await;
    let mut body = Vec::new();
    while claim(&next, n) {
        let t = Instant::now();
        if conn.is_none() {
            match connect(&target).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    out.error(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let stream = conn.as_mut().expect("connected");
        match raw_roundtrip(stream, &request, &mut body).await {
            Ok((status, keep_alive)) => {
                if status == 200 && contains(&body, expect.as_bytes()) {
                    out.latencies_us.push(micros(t.elapsed()));
                } else {
                    out.error(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body).trim()
                    ));
                }
                if !keep_alive {
                    conn = None;
                }
            }
            Err(e) => {
                out.error(format!("I/O: {e}"));
                conn = None;
            }
        }
    }
    out
}

async fn connect(target: &Target) -> std::io::Result<BufReader<Box<dyn Conn>>> {
    let s = TcpStream::connect(target.addr).await?;
    s.set_nodelay(true)?;
    let conn: Box<dyn Conn> = match &target.tls {
        Some(tls) => {
            let name =
                tokio_rustls::rustls::pki_types::ServerName::IpAddress(target.addr.ip().into());
            Box::new(tls.connect(name, s).await?)
        }
        None => Box::new(s),
    };
    Ok(BufReader::with_capacity(16 * 1024, conn))
}

/// Send `request`, read one response into `body`; returns (status, keep-alive).
async fn raw_roundtrip(
    stream: &mut BufReader<Box<dyn Conn>>,
    request: &[u8],
    body: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    stream.get_mut().write_all(request).await?;
    stream.get_mut().flush().await?;
    let mut header = String::new();
    let mut status = 0u16;
    let mut length: Option<usize> = None;
    let mut keep_alive = true;
    let mut first = true;
    loop {
        header.clear();
        if stream.read_line(&mut header).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let h = header.trim_end();
        if first {
            first = false;
            status = h
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad status line {h:?}")))?;
            continue;
        }
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(std::io::Error::other("chunked responses are not supported"));
            }
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("response without Content-Length"))?;
    body.resize(length, 0);
    stream.read_exact(body).await?;
    Ok((status, keep_alive))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// TLS and ACLs on versus off.

/// The throwaway certificate of the secure server (`openssl`, valid for 127.0.0.1).
fn make_certificate(dir: &Path) -> Result<(PathBuf, PathBuf), BoxError> {
    let (cert, key) = (dir.join("bench-cert.pem"), dir.join("bench-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // an end-entity certificate: rustls refuses a CA certificate as the server's own
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("cannot run openssl to make the bench's certificate: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok((cert, key))
}

async fn compare_security(args: &Args, rounds: usize) -> Result<(), BoxError> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let dir =
        std::env::temp_dir().join(format!("dispatch-bench-tls-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = make_certificate(&dir)?;
    let management = uuid::Uuid::new_v4().to_string();
    let token_file = dir.join("bootstrap.token");
    std::fs::write(&token_file, &management)?;
    let path = |p: &Path| p.display().to_string();
    let mut plain = Server::start(args.server_bin.clone(), args.keep_data_dir, Vec::new())?;
    let mut secure = Server::start(
        args.server_bin.clone(),
        args.keep_data_dir,
        vec![
            "--tls-cert-file".into(),
            path(&cert),
            "--tls-key-file".into(),
            path(&key),
            "--acl-enabled".into(),
            "--acl-bootstrap-token-file".into(),
            path(&token_file),
        ],
    )?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert)?)?;
    let plain_control = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("X-Nomad-Token", management.parse()?);
    let secure_control = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .tls_certs_only([ca])
        .default_headers(headers)
        .build()?;
    plain
        .wait_ready(&plain_control, Duration::from_secs(60))
        .await?;
    secure
        .wait_ready(&secure_control, Duration::from_secs(60))
        .await?;
    let plain_base = format!("http://{}", plain.addr);
    let secure_base = format!("https://{}", secure.addr);
    register(&plain_control, &plain_base, &args.job).await?;
    register(&secure_control, &secure_base, &args.job).await?;
    // the application's token: it may dispatch the bench job and nothing else
    let rules = format!(
        "job \"{}\" {{\n  capabilities = [\"dispatch-job\"]\n}}\n",
        args.job
    );
    let res = secure_control
        .put(format!("{secure_base}/v1/acl/policy/bench"))
        .json(&json!({"Name": "bench", "Rules": rules}))
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(format!("policy: {}", res.text().await?).into());
    }
    let token: Value = secure_control
        .put(format!("{secure_base}/v1/acl/token"))
        .json(&json!({"Name": "bench", "Type": "client", "Policies": ["bench"]}))
        .send()
        .await?
        .json()
        .await?;
    let secret = token["SecretID"]
        .as_str()
        .ok_or_else(|| format!("no token: {token}"))?
        .to_string();
    let roots = {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        let der = tokio_rustls::rustls::pki_types::pem::PemObject::pem_file_iter(&cert)?
            .collect::<Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, _>>(
            )?;
        roots.add_parsable_certificates(der);
        roots
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let tls = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let targets = [
        ("plain", Target::plain(plain.addr)),
        (
            "tls_acl",
            Target {
                addr: secure.addr,
                tls: Some(tokio_rustls::TlsConnector::from(Arc::new(tls))),
                token: Some(secret),
            },
        ),
    ];
    let per_round = (args.requests / rounds).max(1);
    let body = dispatch_body(args.payload_bytes);
    line("requests_per_round", per_round);
    line("rounds", rounds);
    line("concurrency", args.concurrency);
    let mut totals: Vec<(usize, usize, Duration, Vec<u32>)> =
        vec![(0, 0, Duration::ZERO, Vec::new()); 2];
    // Each round's secure/plain ratio: the two ran back to back on the same machine, so the
    // median of these pairs is steadier than the ratio of totals on a noisy host.
    let mut round_ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // alternate which goes first, so neither always runs on a warmer machine
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut round_rates = [0.0f64; 2];
        for i in order {
            let (name, target) = &targets[i];
            let r = load(args, target, &body, per_round).await;
            round_rates[i] = r.ok as f64 / r.wall.as_secs_f64().max(1e-9);
            line(
                &format!("round_{round}_{name}_dispatches_per_s"),
                format!("{:.0}", round_rates[i]),
            );
            for e in &r.first_errors {
                line(&format!("{name}_error_sample"), e);
            }
            let t = &mut totals[i];
            t.0 += r.ok;
            t.1 += r.errors;
            t.2 += r.wall;
            t.3.extend(r.latencies_us);
        }
        let ratio = round_rates[1] / round_rates[0].max(1e-9);
        line(
            &format!("round_{round}_tls_acl_vs_plain"),
            format!("{ratio:.2}"),
        );
        round_ratios.push(ratio);
    }
    let mut rates = Vec::new();
    let mut p50s = Vec::new();
    for (i, (name, _)) in targets.iter().enumerate() {
        let (ok, errors, wall, mut lat) = totals[i].clone();
        lat.sort_unstable();
        let result = LoadResult {
            ok,
            errors,
            first_errors: Vec::new(),
            wall,
            latencies_us: lat,
        };
        let rate = ok as f64 / wall.as_secs_f64().max(1e-9);
        line(&format!("{name}_ok"), ok);
        line(&format!("{name}_errors"), errors);
        line(&format!("{name}_dispatches_per_s"), format!("{rate:.0}"));
        for (q, v) in [("p50", 0.5), ("p99", 0.99)] {
            line(
                &format!("{name}_latency_{q}_ms"),
                format!("{:.2}", result.percentile(v)),
            );
        }
        rates.push(rate);
        p50s.push(result.percentile(0.5));
    }
    line(
        "tls_acl_throughput_vs_plain",
        format!("{:+.1}%", (rates[1] / rates[0].max(1e-9) - 1.0) * 100.0),
    );
    line("tls_acl_p50_extra_ms", format!("{:+.2}", p50s[1] - p50s[0]));
    round_ratios.sort_by(f64::total_cmp);
    let median = match round_ratios.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => round_ratios[n / 2],
        n => (round_ratios[n / 2 - 1] + round_ratios[n / 2]) / 2.0,
    };
    line(
        "tls_acl_vs_plain_median_of_rounds",
        format!("{median:.2} ({:+.1}%)", (median - 1.0) * 100.0),
    );
    drop(plain);
    drop(secure);
    if !args.keep_data_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Control-plane requests.

fn dispatch_body(payload_bytes: usize) -> String {
    let mut body = json!({"Meta": {"input": "in.mp4"}});
    if payload_bytes > 0 {
        let payload: Vec<u8> = (0..payload_bytes).map(|i| (i * 31 % 251) as u8).collect();
        body["Payload"] = Value::String(base64::engine::general_purpose::STANDARD.encode(payload));
    }
    body.to_string()
}

async fn register(client: &reqwest::Client, base: &str, job: &str) -> Result<(), BoxError> {
    let spec = json!({"Job": {
        "ID": job,
        "Name": job,
        "Type": "batch",
        "Datacenters": ["dc1"],
        "Meta": {"profile": "small"},
        "ParameterizedJob": {
            "Payload": "optional",
            "MetaRequired": ["input"],
            "MetaOptional": ["profile"],
        },
        "TaskGroups": [{
            "Name": "work",
            "Count": 1,
            "Tasks": [{
                "Name": "work",
                "Driver": "exec",
                "Config": {"command": "/bin/true", "args": ["${NOMAD_META_input}"]},
                "Resources": {"CPU": 100, "MemoryMB": 64},
            }],
        }],
    }});
    let res = client
        .put(format!("{base}/v1/jobs"))
        .json(&spec)
        .send()
        .await?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!("register {job}: HTTP {status}: {}", res.text().await?).into());
    }
    Ok(())
}

/// `Children.Pending` of the job's summary.
async fn pending(client: &reqwest::Client, base: &str, job: &str) -> Result<u64, BoxError> {
    let res = client
        .get(format!("{base}/v1/job/{job}/summary"))
        .send()
        .await?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!("summary of {job}: HTTP {status}: {}", res.text().await?).into());
    }
    let v: Value = res.json().await?;
    v["Children"]["Pending"]
        .as_u64()
        .ok_or_else(|| format!("summary without Children.Pending: {v}").into())
}

// ---------------------------------------------------------------------------------------
// A server started by the bench.

struct Server {
    bin: PathBuf,
    addr: SocketAddr,
    /// Holds `data/` (the store) and `server.log`.
    dir: PathBuf,
    data_dir: PathBuf,
    keep: bool,
    child: Option<Child>,
    /// More `dispatch server` flags.
    extra: Vec<String>,
    scheme: &'static str,
}

impl Server {
    fn start(bin: Option<PathBuf>, keep: bool, extra: Vec<String>) -> Result<Server, BoxError> {
        let bin = match bin {
            Some(b) => b,
            None => std::env::current_exe()?
                .parent()
                .ok_or("current exe has no directory")?
                .join("dispatch"),
        };
        if !bin.exists() {
            return Err(format!(
                "server binary {} not found (use --server-bin)",
                bin.display()
            )
            .into());
        }
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let dir =
            std::env::temp_dir().join(format!("dispatch-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut server = Server {
            bin,
            addr,
            data_dir: dir.join("data"),
            dir,
            keep,
            child: None,
            extra,
            scheme: "http",
        };
        if server.extra.iter().any(|a| a == "--tls-cert-file") {
            server.scheme = "https";
        }
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), BoxError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let child = Command::new(&self.bin)
            .arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--bind")
            .arg(self.addr.to_string())
            .arg("--log-level")
            .arg("warn")
            // Measure the dispatch path: the local runner offers nothing, so the queue only
            // grows (as it does when a cluster is full).
            .arg("--local-cpus")
            .arg("0")
            // every connection comes from this one address
            .arg("--max-conns-per-client")
            .arg("0")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Poll `/v1/status/leader` until it answers 200; returns how long that took.
    async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        limit: Duration,
    ) -> Result<Duration, BoxError> {
        let started = Instant::now();
        let url = format!("{}://{}/v1/status/leader", self.scheme, self.addr);
        loop {
            let res = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(res, Ok(ref r) if r.status().is_success()) {
                return Ok(started.elapsed());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(format!("server exited with {status}; log:\n{log}").into());
            }
            if started.elapsed() > limit {
                return Err(format!("server not ready after {limit:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn status_kib(&self, key: &str) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if self.keep {
            eprintln!("kept data dir {}", self.data_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn resolve(addr: &str) -> Result<SocketAddr, BoxError> {
    let hostport = addr.trim_start_matches("http://").trim_end_matches('/');
    use std::net::ToSocketAddrs;
    hostport
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("cannot resolve {addr}").into())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn line(name: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{name}: {value}");
    let _ = out.flush();
}
