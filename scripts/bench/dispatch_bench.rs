//! `dispatch-bench`: durable dispatch throughput and latency over real HTTP.
//!
//! Registers a parameterized job, then fires `--requests` dispatches over `--concurrency`
//! keep-alive HTTP/1.1 connections and prints `name: value` lines (throughput, latency
//! percentiles). With `--restart-check` (only when the bench started the server itself) it
//! then SIGKILLs the server, restarts it on the same data dir and reports how long until the
//! API answers and the job summary shows every dispatch Pending, plus the server's RSS
//! before the kill and after the restart. See scripts/bench/README.md.

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
    let mut server = match &args.addr {
        Some(_) => {
            if args.restart_check {
                return Err(
                    "--restart-check needs a server started by the bench (omit --addr)".into(),
                );
            }
            None
        }
        None => Some(Server::start(args.server_bin.clone(), args.keep_data_dir)?),
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
    let result = load(&args, addr, &body).await;
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

async fn load(args: &Args, addr: SocketAddr, body: &str) -> LoadResult {
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
        let n = args.requests;
        let expect = expect.clone();
        let task = match args.client {
            ClientKind::Raw => {
                let request = raw_request(addr, &path, body);
                tokio::spawn(raw_worker(addr, request, expect, next, n, ready))
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
    let mut latencies = Vec::with_capacity(args.requests);
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

fn raw_request(addr: SocketAddr, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One keep-alive connection, one request in flight; reconnects after an I/O error.
async fn raw_worker(
    addr: SocketAddr,
    request: Vec<u8>,
    expect: String,
    next: Arc<AtomicUsize>,
    n: usize,
    ready: Arc<tokio::sync::Barrier>,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut conn = connect(addr).await.ok();
    ready.wait().await;
    let mut body = Vec::new();
    while claim(&next, n) {
        let t = Instant::now();
        if conn.is_none() {
            match connect(addr).await {
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

async fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(BufReader::with_capacity(16 * 1024, s))
}

/// Send `request`, read one response into `body`; returns (status, keep-alive).
async fn raw_roundtrip(
    stream: &mut BufReader<TcpStream>,
    request: &[u8],
    body: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    stream.get_mut().write_all(request).await?;
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
}

impl Server {
    fn start(bin: Option<PathBuf>, keep: bool) -> Result<Server, BoxError> {
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
        };
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
        let url = format!("http://{}/v1/status/leader", self.addr);
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
