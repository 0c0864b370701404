//! A throwaway real ZooKeeper server for the tests: Debian's `zookeeper` package
//! (`/usr/share/java/zookeeper.jar`, installed by `scripts/test-deps.sh`), standalone
//! (`ZooKeeperServerMain <port> <dataDir>`), on a free loopback port, data in a temp dir, no
//! admin server. Included with `#[path = "common/zookeeper.rs"]` next to `mod common;`.
//!
//! `shared()` starts one server per test binary (each test works under its own path);
//! `ZooKeeper::start()` a private one a test may stop and start again. The java process dies
//! with the test binary (`PR_SET_PDEATHSIG`, set from a thread that lives as long as the
//! process), so no server outlives a run.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const JAR: &str = "/usr/share/java/zookeeper.jar";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running ZooKeeper server; killed on drop.
pub struct ZooKeeper {
    child: Mutex<Option<Child>>,
    port: u16,
    dir: tempfile::TempDir,
}

impl ZooKeeper {
    /// A private server on a free port.
    pub fn start() -> ZooKeeper {
        assert!(
            std::path::Path::new(JAR).exists(),
            "{JAR} is missing: run scripts/test-deps.sh (it installs Debian's zookeeper package)"
        );
        let mut dir = tempfile::Builder::new()
            .prefix("zookeeper-")
            .tempdir()
            .expect("a temp dir for ZooKeeper");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let port = free_port();
            let zk = ZooKeeper {
                child: Mutex::new(None),
                port,
                dir,
            };
            if zk.launch(deadline) {
                return zk;
            }
            // The port was taken between our probe and the server's bind: another one.
            dir = zk.into_dir();
        }
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.stop();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    /// `127.0.0.1:PORT`, a ZooKeeper connection string.
    pub fn servers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `zk://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}{path}", self.servers())
    }

    /// Kill the server (SIGKILL: clients see their connections drop).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port and data (sessions and nodes come back).
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.launch(deadline) {
            assert!(
                Instant::now() < deadline,
                "ZooKeeper could not bind port {} again",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }

    /// Start the process; true once it answers, false if it exited (port taken).
    fn launch(&self, deadline: Instant) -> bool {
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).expect("ZooKeeper data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("ZooKeeper log");
        let mut command = Command::new("java");
        command
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.admin.enableServer=false",
                "-Dzookeeper.4lw.commands.whitelist=srvr",
                "-cp",
                JAR,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(self.port.to_string())
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let child = spawn_tied_to_this_process(command);
        *self.child.lock().unwrap() = Some(child);
        loop {
            if answers(self.port) {
                return true;
            }
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                self.child.lock().unwrap().take();
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not answer on port {} within {READY_TIMEOUT:?}; log:\n{}",
                self.port,
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server every test of this binary shares (each under its own path).
pub fn shared() -> &'static ZooKeeper {
    static SHARED: OnceLock<ZooKeeper> = OnceLock::new();
    SHARED.get_or_init(ZooKeeper::start)
}

/// A fresh path for one test on a shared server (`/mesos-<8 hex>`).
pub fn fresh_path() -> String {
    format!("/mesos-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// ZooKeeper's `srvr` four-letter word answers with `Mode: standalone` once it serves.
fn answers(port: u16) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("Mode:")
}

/// Spawn `command` so that it is killed when this test process ends: `PR_SET_PDEATHSIG`
/// fires when the *thread* that spawned the child exits, so the spawn happens on a thread
/// that lives as long as the process.
fn spawn_tied_to_this_process(command: Command) -> Child {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                            .map_err(std::io::Error::from)
                    });
                }
                let _ = reply.send(command.spawn());
            }
            // The senders live in a static: this loop, and the thread, last until exit.
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, reply_tx))
        .expect("the spawner thread runs");
    reply_rx
        .recv()
        .expect("the spawner answers")
        .expect("start java (run scripts/test-deps.sh: it installs zookeeper and a JRE)")
}
