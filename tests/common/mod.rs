//! Shared test helper: run the real `dispatch` binary on loopback port 0 with a temporary
//! data dir, read the address it bound from its log, wait until it answers, kill it when the
//! test is done.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `start`/`restart` wait for the server to listen and answer
/// `GET /v1/status/leader`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server logs (at info, the default level) once it listens.
const LISTENING: &str = "Dispatch API listening on ";

/// Drivers the test servers allow unless a test says otherwise: the examples and most tests
/// run shell commands with `raw_exec`, which a server allows only when told to.
pub const TEST_DRIVERS: &str = "exec,raw_exec,docker,mesos_executor";

thread_local! {
    /// The shared store the servers this test thread starts keep their state in.
    static STORE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// From now on, the servers this test (thread) starts keep their state in the shared store
/// `url` (`-store url`) and are ready once they lead it and run their backend.
pub fn store_in(url: &str) {
    STORE.with(|s| *s.borrow_mut() = Some(url.to_string()));
}

/// The shared store `store_in` chose for this test, if any.
pub fn shared_store() -> Option<String> {
    STORE.with(|s| s.borrow().clone())
}

/// What the server logs once its backend runs (`dispatch::server::BACKEND_RUNS`).
const BACKEND_RUNS: &str = "the backend runs: scheduling";

/// A running `dispatch server`; killed on drop.
pub struct TestServer {
    /// The shared store `store_in` chose (`-store`): ready once it leads it and runs its
    /// backend.
    store: Option<String>,
    /// How many times the process was started.
    starts: usize,
    child: Option<Child>,
    /// The address the first run bound (port 0 → the port the system gave); later runs
    /// (`restart`) bind it again.
    addr: Option<SocketAddr>,
    /// Holds the data dir and the server log; removed on drop.
    dir: tempfile::TempDir,
    /// Extra server flags.
    args: Vec<String>,
    /// `http` or `https`, as the server reported.
    scheme: &'static str,
    /// Add `-driver-allowlist TEST_DRIVERS` unless the args choose a policy.
    test_drivers: bool,
}

/// How one start of the server ended.
enum Started {
    Listening(SocketAddr),
    /// The port is taken (only possible when `restart` binds the port again).
    PortInUse,
}

impl TestServer {
    /// Start a server on port 0 with a fresh data dir and wait until it is ready.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// Like `start`, with extra `dispatch server` flags (kept across `restart`).
    pub fn start_with(args: &[&str]) -> TestServer {
        TestServer::start_inner(args, true)
    }

    /// Like `start_with`, without the harness's `-driver-allowlist` (the server's own
    /// default: no raw_exec).
    pub fn start_with_server_defaults(args: &[&str]) -> TestServer {
        TestServer::start_inner(args, false)
    }

    fn start_inner(args: &[&str], test_drivers: bool) -> TestServer {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let mut server = TestServer {
            store: STORE.with(|s| s.borrow().clone()),
            starts: 0,
            child: None,
            addr: None,
            dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            scheme: "http",
            test_drivers,
        };
        server.spawn();
        server
    }

    /// `127.0.0.1:PORT`, the address the server bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the server has started")
    }

    /// `http://127.0.0.1:PORT` (`https://` when the server serves TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr())
    }

    /// The server's data dir (kept across `restart`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Everything the server wrote to stderr so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The process ID of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send `signal` to the server process (SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.pid().expect("the server runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .expect("signal the server");
    }

    /// Wait up to `secs` for the server process to end by itself; its exit status.
    #[track_caller]
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {secs} s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL the server and reap it (no graceful shutdown).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill the server if it runs, start it again on the same data dir and port, and wait
    /// until it is ready.
    ///
    /// The port was the old process's until it died, so it is normally free; should
    /// something else have taken it in between (another test's outgoing connection, say),
    /// the start is retried until `READY_TIMEOUT`, then the test fails saying so. Clients
    /// keep their URL, as they would across a real restart.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Like `restart`, with other server flags from now on (same data dir and port).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_once(deadline) {
                Started::Listening(addr) => {
                    self.addr = Some(addr);
                    self.starts += 1;
                    break;
                }
                Started::PortInUse if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Started::PortInUse => panic!(
                    "cannot restart the server: port {} stayed in use for {READY_TIMEOUT:?}; log:\n{}",
                    self.addr(),
                    self.log()
                ),
            }
        }
        self.wait_ready(deadline);
    }

    /// Start the process and wait for the address it logs.
    fn spawn_once(&mut self, deadline: Instant) -> Started {
        let log_start = std::fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the server log");
        let bind = self
            .addr
            .map_or("127.0.0.1:0".to_string(), |a| a.to_string());
        let policy_given = self
            .args
            .iter()
            .any(|a| a == "-dev" || a.starts_with("-driver-allowlist"));
        let drivers: &[&str] = if policy_given || !self.test_drivers {
            &[]
        } else {
            &["-driver-allowlist", TEST_DRIVERS]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .arg("server")
            .arg("-data-dir")
            .arg(self.data_dir())
            .arg("-bind")
            .arg(&bind)
            .args(drivers)
            .args(&self.args)
            .args(self.store.iter().flat_map(|url| ["-store", url.as_str()]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start the dispatch binary");
        self.child = Some(child);
        loop {
            let run_log = self.log().get(log_start..).unwrap_or_default().to_string();
            if let Some((scheme, addr)) = listening_url(&run_log) {
                self.scheme = scheme;
                return Started::Listening(addr);
            }
            if let Some(status) = self.exited() {
                if run_log.contains("Address already in use") && self.addr.is_some() {
                    return Started::PortInUse;
                }
                panic!("dispatch server exited with {status} before it listened; log:\n{run_log}");
            }
            if Instant::now() > deadline {
                panic!(
                    "dispatch server did not log \"{LISTENING}...\" on -bind {bind} within \
                     {READY_TIMEOUT:?} (the harness reads the address from that info line); \
                     log:\n{run_log}"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status, if the server process has ended.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn wait_ready(&mut self, deadline: Instant) {
        if self.scheme == "https" {
            // bound and accepting (the listener queues connections); the TLS tests check
            // answers with their own certificates
            return;
        }
        loop {
            if http_get_status(self.addr(), "/v1/status/leader") == Some(200)
                && (self.store.is_none() || self.log().matches(BACKEND_RUNS).count() >= self.starts)
            {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "dispatch server exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "dispatch server not ready on {} after {READY_TIMEOUT:?}; log:\n{}",
                    self.addr(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The address in the server's "Dispatch API listening on http://ADDR" log line.
pub fn listening_addr(log: &str) -> Option<SocketAddr> {
    listening_url(log).map(|(_, addr)| addr)
}

/// The scheme and address in the server's "Dispatch API listening on http(s)://ADDR" line.
pub fn listening_url(log: &str) -> Option<(&'static str, SocketAddr)> {
    let rest = &log[log.find(LISTENING)? + LISTENING.len()..];
    let line = rest.lines().next()?;
    if !rest.contains('\n') {
        return None; // the line is still being written
    }
    let (scheme, addr) = line.trim().split_once("://")?;
    let scheme = match scheme {
        "https" => "https",
        _ => "http",
    };
    Some((scheme, addr.parse().ok()?))
}

/// A loopback TCP port that refuses connections for as long as the value lives: the port is
/// bound (so nobody else can listen on it) but not listening.
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind a loopback port");
    let addr = socket.local_addr().expect("local address");
    ClosedPort {
        _socket: socket,
        addr,
    }
}

/// The status code of a plain `GET path`, or `None` if the server does not answer.
pub fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A finished command's exit code, stdout and stderr, for assertion messages.
pub fn show(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Assert a command exited 0 and return its stdout.
#[track_caller]
pub fn ok(o: &std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The child ID from `dispatch job dispatch` / `dispatch run` output.
pub fn dispatched_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Dispatched Job ID = "))
        .unwrap_or_else(|| panic!("no Dispatched Job ID in:\n{out}"))
        .trim()
        .to_string()
}

/// `GET path` on the server, as text (through curl, as a user would).
pub fn get_text(server: &TestServer, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-fsS", &format!("{}{}", server.url(), path)])
        .output()
        .expect("curl (run scripts/test-deps.sh)");
    assert!(out.status.success(), "GET {path}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET path` on the server, as JSON.
pub fn get_json(server: &TestServer, path: &str) -> serde_json::Value {
    serde_json::from_str(&get_text(server, path)).expect("a JSON answer")
}

/// `GET path` on the server with an ACL token, as JSON.
pub fn get_json_with(server: &TestServer, path: &str, token: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-fsS", "-H", &format!("X-Nomad-Token: {token}")])
        .arg(format!("{}{}", server.url(), path))
        .output()
        .expect("curl (run scripts/test-deps.sh)");
    assert!(out.status.success(), "GET {path}: {}", show(&out));
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

/// Every task run (attempt) of a dispatched child, from its allocations.
pub fn task_runs(server: &TestServer, child: &str) -> Vec<serde_json::Value> {
    let child = child.replace('/', "%2F");
    get_json(server, &format!("/v1/job/{child}/allocations"))
        .as_array()
        .expect("allocations")
        .iter()
        .flat_map(|a| a["TaskRuns"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// A 2-second test clip (video and audio) made with real ffmpeg.
pub fn make_clip(dir: &Path) -> PathBuf {
    let available = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        available,
        "ffmpeg is missing: run scripts/test-deps.sh (it installs ffmpeg)"
    );
    let clip = dir.join("clip.mp4");
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=320x240:rate=10",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&clip)
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "{}", show(&out));
    clip
}

/// Run the `dispatch` CLI against `server` (as a user would: `DISPATCH_ADDR`).
pub fn dispatch(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(args)
        .env("DISPATCH_ADDR", server.url())
        .env_remove("NOMAD_ADDR")
        .output()
        .expect("run dispatch")
}

/// Run `command` to its end; fail the test (killing it) if it is still running after `secs`
/// seconds: for commands whose bug would be to never return.
#[track_caller]
pub fn output_within(command: &mut Command, secs: u64) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} was still running after {secs} s; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.join().unwrap_or_default()),
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Poll until `f` is true; fail the test after `secs` seconds, naming `what`.
#[track_caller]
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Nomad `Status` of a job or dispatched child (`pending`, `running`, `dead`).
pub fn status_of(server: &TestServer, id: &str) -> String {
    let id = id.replace('/', "%2F");
    get_json(server, &format!("/v1/job/{id}"))["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
