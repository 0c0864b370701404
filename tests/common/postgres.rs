//! A throwaway PostgreSQL cluster for one test: `initdb` into a temp dir, `postgres` on a
//! free loopback port (and a Unix socket in the same dir), run as an unprivileged user
//! (`nobody` when the tests run as root, as on CI: PostgreSQL refuses to run as root),
//! stopped and removed on drop. Debian's `postgresql` package (scripts/test-deps.sh).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where Debian puts the server binaries.
const BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/14/bin",
    "/usr/lib/postgresql/13/bin",
];

/// The superuser `initdb` creates (trust authentication on loopback and the socket).
pub const USER: &str = "dispatch";

pub struct Postgres {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    /// uid/gid the server runs as (`None`: this process's).
    run_as: Option<(u32, u32)>,
}

fn bin_dir() -> PathBuf {
    BIN_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("initdb").exists())
        .unwrap_or_else(|| {
            panic!("PostgreSQL is missing ({BIN_DIRS:?}): run scripts/test-deps.sh (it installs postgresql)")
        })
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Postgres {
    /// Create and start a cluster; waits until it accepts connections.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("dispatch-pg")
            .tempdir()
            .expect("temp dir");
        let run_as = if nix::unistd::getuid().is_root() {
            let nobody = nix::unistd::User::from_name("nobody")
                .ok()
                .flatten()
                .expect("a user `nobody` to run PostgreSQL as (it refuses root)");
            Some((nobody.uid.as_raw(), nobody.gid.as_raw()))
        } else {
            None
        };
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid);
        }
        let data = dir.path().join("data");
        let out = Command::new(bin.join("initdb"))
            .args(["-A", "trust", "-U", USER, "-E", "UTF8", "--no-instructions"])
            .arg("-D")
            .arg(&data)
            .current_dir(dir.path())
            .as_user(run_as)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            child: None,
            dir,
            port: free_port(),
            bin,
            run_as,
        };
        pg.spawn();
        pg
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("open the postgres log");
        if let Some((uid, gid)) = self.run_as {
            chown(&self.dir.path().join("postgres.log"), uid, gid);
        }
        let child = Command::new(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "max_connections=200", "-c", "fsync=on"])
            .current_dir(self.dir.path())
            .as_user(self.run_as)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("postgres exited with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections within 30 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// `postgres://dispatch@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The loopback TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of its Unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Create a database and answer its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c = self.client("postgres");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.url(name)
    }

    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect to postgres")
    }

    /// Stop the server fast (SIGINT) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = child.wait();
        }
    }

    /// Start it again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .expect("chown the PostgreSQL dir");
}

trait AsUser {
    fn as_user(&mut self, run_as: Option<(u32, u32)>) -> &mut Self;
}

impl AsUser for Command {
    fn as_user(&mut self, run_as: Option<(u32, u32)>) -> &mut Self {
        if let Some((uid, gid)) = run_as {
            self.uid(uid).gid(gid).env("HOME", "/tmp");
        }
        self
    }
}

/// A TCP proxy on loopback in front of the cluster, for one server's connections: `cut`
/// closes every connection through it and refuses new ones (a network partition between
/// that server and the database, the database and everyone else staying up); `heal` lets
/// connections through again.
pub struct Proxy {
    port: u16,
    /// Cut or not, and the connections through it (both ends); one lock, so a connection
    /// accepted while the proxy is being cut is either closed by `cut` or refused.
    state: std::sync::Arc<Mutex<(bool, Vec<std::net::TcpStream>)>>,
}

impl Proxy {
    /// Forward `127.0.0.1:<new port>` to the cluster's port.
    pub fn to(pg: &Postgres) -> Proxy {
        let upstream = pg.port;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = std::sync::Arc::new(Mutex::new((false, Vec::new())));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
                if state.0 {
                    continue; // cut: both ends close as they drop
                }
                for s in [&client, &server] {
                    if let Ok(s) = s.try_clone() {
                        state.1.push(s);
                    }
                }
                drop(state);
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Proxy { port, state }
    }

    /// `postgres://dispatch@127.0.0.1:<proxy port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Close every connection through the proxy and refuse new ones.
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = true;
        for s in state.1.drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Let connections through again.
    pub fn heal(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 = false;
    }
}

/// Copy `from` to `to` on a thread until either side closes.
fn pipe(from: &std::net::TcpStream, to: &std::net::TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

/// The cluster `fresh_database` shares among the tests of one test binary.
static SHARED: OnceLock<Mutex<Option<Postgres>>> = OnceLock::new();

/// A new, empty database on a cluster shared by every test of this test binary (started on
/// first use, stopped and removed when the binary exits); its URL. Blocking (call it off
/// the async threads).
pub fn fresh_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let shared = SHARED.get_or_init(|| {
        let pg = Postgres::start();
        // SAFETY: registers a plain `extern "C" fn` that only takes the cluster out of
        // its mutex and drops it (stops the server, removes its directory).
        unsafe { nix::libc::atexit(stop_shared) };
        Mutex::new(Some(pg))
    });
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let cluster = shared.lock().unwrap_or_else(|e| e.into_inner());
    cluster
        .as_ref()
        .expect("the shared cluster runs")
        .database(&format!("test_{}_{n}", std::process::id()))
}

extern "C" fn stop_shared() {
    if let Some(shared) = SHARED.get() {
        let cluster = shared.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(cluster);
    }
}
