//! `dispatch server -config`: the real binary started from config files (and flags over
//! them), refusing bad files with file:line and the key, telling systemd it is ready through
//! a real `NOTIFY_SOCKET`, and reloading on SIGHUP.

mod common;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{closed_port, http_get_status, listening_addr, wait_until};

/// A server process started with exactly the given arguments; killed on drop.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, args: &[&str], notify_socket: Option<&Path>) -> Server {
        let log = dir.join("server.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch"));
        cmd.arg("server")
            .args(args)
            .env_remove("DISPATCH_DATA_DIR")
            .env_remove("DISPATCH_LOG")
            .env_remove("DISPATCH_MESOS_MASTER")
            .env_remove("NOTIFY_SOCKET")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file);
        if let Some(socket) = notify_socket {
            cmd.env("NOTIFY_SOCKET", socket);
        }
        Server {
            child: cmd.spawn().expect("start dispatch"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str) {
        wait_until(20, what, || self.log().contains(what));
    }

    fn hangup(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dispatch server ARGS` that must refuse to start: its stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .arg("server")
        .args(args)
        .env_remove("DISPATCH_DATA_DIR")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run dispatch");
    assert_eq!(out.status.code(), Some(1), "{}", common::show(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-fsS", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", common::show(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The next sd_notify datagram, waiting at most `secs`.
fn next_notification(socket: &UnixDatagram, secs: u64) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(secs)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no sd_notify message within {secs}s: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn files_in_name_order_then_flags_over_them() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dispatch.d");
    std::fs::create_dir(&conf).unwrap();
    let data = dir.path().join("data");
    // The file names a port nobody can listen on (bound, not listening): were it used, the
    // server would not come up; the flag asks for any free port.
    let file_port = closed_port();
    let file_port = file_port.addr.port();
    let statsd = UdpSocket::bind("127.0.0.1:0").expect("udp");
    std::fs::write(
        conf.join("10-base.hcl"),
        format!(
            "data_dir = \"{}\"\nports {{\n  http = {file_port}\n}}\nmesos {{\n  master = \"127.0.0.1:1\"\n  framework_name = \"from-file\"\n  role = [\"batch\"]\n  failover_timeout = \"1h\"\n}}\n",
            data.display()
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("20-telemetry.json"),
        format!(
            "{{\n  \"telemetry\": {{\"statsd_address\": \"{}\"}},\n  \"mesos\": {{\"failover_timeout\": \"2h\"}}\n}}\n",
            statsd.local_addr().unwrap()
        ),
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "-config",
            conf.to_str().unwrap(),
            "-bind",
            "127.0.0.1:0",
            "-mesos-framework-name",
            "from-flag",
        ],
        None,
    );
    let mut bound = None;
    wait_until(20, "the API on the flag's address", || {
        bound = listening_addr(&server.log());
        bound.is_some_and(|a| http_get_status(a, "/v1/status/leader") == Some(200))
    });
    let flag_port = bound.expect("listening").port();
    assert_ne!(flag_port, file_port);
    assert_eq!(
        http_get_status(
            format!("127.0.0.1:{file_port}").parse().unwrap(),
            "/v1/status/leader"
        ),
        None,
        "-bind wins over ports.http"
    );
    let mesos = &get_json(flag_port, "/v1/agent/self")["config"]["Dispatch"]["Mesos"];
    assert_eq!(mesos["FrameworkName"], "from-flag", "{mesos}");
    assert_eq!(mesos["Roles"], serde_json::json!(["batch"]), "{mesos}");
    assert_eq!(
        mesos["FailoverTimeoutSeconds"], 7200.0,
        "the later file wins: {mesos}"
    );
    assert_eq!(mesos["Masters"], serde_json::json!(["http://127.0.0.1:1"]));
    assert!(
        data.join("dispatch.sqlite").exists(),
        "the store is in the file's data_dir"
    );
    // telemetry.statsd_address from the JSON file: DogStatsD lines arrive
    statsd
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 65536];
    let n = statsd.recv(&mut buf).expect("a DogStatsD datagram");
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("dispatch."),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let log = server.log();
    assert!(log.contains("configuration loaded from"), "{log}");
    assert!(
        log.contains("10-base.hcl") && log.contains("20-telemetry.json"),
        "{log}"
    );
}

#[test]
fn bad_files_stop_the_server_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dispatch.hcl");
    let cases: &[(&str, &str)] = &[
        ("data_dir = \"/tmp/x\"\nlocal_runner {\n  cpu = 2\n}\n", ":3: local_runner.cpu: unknown key; the local_runner block allows: cpus, memory_mb, disk_mb, gpus, task_path"),
        ("ports {\n  http = \"x\"\n}\n", ":2: ports.http: must be a port number, not a string"),
        ("gc {\n  threshold = \"forever\"\n", ":2: invalid HCL"),
        ("mesos {\n  master = \"m:5050\"\n  principal = \"p\"\n  secret_file = \"/no/such/secret\"\n}\n", ":4: mesos.secret_file: cannot read /no/such/secret"),
        ("tls {\n  cert_file = \"/no/such/cert.pem\"\n}\n", ":2: tls.cert_file: cannot read /no/such/cert.pem"),
        ("acl {\n  enabled = \"yes\"\n}\n", ":2: acl.enabled: must be true or false, not a string"),
        ("acl {\n  bootstrap_token_file = \"/no/such/token\"\n}\n", ":2: acl.bootstrap_token_file: cannot read /no/such/token"),
    ];
    for (text, want) in cases {
        std::fs::write(&file, text).unwrap();
        let err = refused(dir.path(), &["-config", file.to_str().unwrap()]);
        let expected = format!("Error loading configuration: {}{want}", file.display());
        assert!(err.starts_with(&expected), "{text:?}:\n{err}");
    }
    // a bad flag is named as the flag
    std::fs::write(&file, "log_level = \"info\"\n").unwrap();
    let err = refused(
        dir.path(),
        &["-config", file.to_str().unwrap(), "-gc-interval", "soon"],
    );
    assert!(
        err.starts_with("Error loading configuration: -gc-interval: \"soon\" is not a duration"),
        "{err}"
    );
}

#[test]
fn sd_notify_readiness_and_sighup_reload() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).expect("bind NOTIFY_SOCKET");
    let file = dir.path().join("dispatch.hcl");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\nbind_addr = \"127.0.0.1\"\nports {{\n  http = 0\n}}\nlog_level = \"info\"\ndriver_allowlist = [\"raw_exec\"]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        &["-config", file.to_str().unwrap()],
        Some(&socket_path),
    );
    let ready = next_notification(&notify, 20);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    let port: u16 = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=API listening on http://127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no listening address in {ready}"));
    // READY=1 came after the listener: the API answers now, no waiting
    assert_eq!(
        http_get_status(
            format!("127.0.0.1:{port}").parse().unwrap(),
            "/v1/status/leader"
        ),
        Some(200)
    );

    // a good reload: the log level applies at once; the port change waits for a restart
    let other_port = closed_port();
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\nbind_addr = \"127.0.0.1\"\nports {{\n  http = {}\n}}\nlog_level = \"DEBUG\"\ndriver_allowlist = [\"raw_exec\"]\n",
            dir.path().join("data").display(),
            other_port.addr.port()
        ),
    )
    .unwrap();
    server.hangup();
    let reloading = next_notification(&notify, 20);
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
    let done = next_notification(&notify, 20);
    assert!(done.lines().any(|l| l == "READY=1"), "{done}");
    server.wait_log("configuration reloaded: log_level info -> debug");
    server.wait_log("changed, takes effect after a restart: bind_addr / ports.http");
    assert_eq!(
        http_get_status(
            format!("127.0.0.1:{port}").parse().unwrap(),
            "/v1/status/leader"
        ),
        Some(200),
        "still on the old port"
    );
    // debug lines appear from now on: run something (offers and task updates log at debug)
    let before = server.log().len();
    let job = dir.path().join("t.hcl");
    std::fs::write(
        &job,
        "job \"t\" {\n  type = \"batch\"\n  parameterized {}\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      config {\n        command = \"true\"\n      }\n    }\n  }\n}\n",
    )
    .unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["job", "run", "-address", &addr, job.to_str().unwrap()],
        vec!["job", "dispatch", "-address", &addr, "t"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .args(&args)
            .output()
            .expect("dispatch");
        common::ok(&out);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log()[before..].contains(" DEBUG ") {
        assert!(
            Instant::now() < deadline,
            "no DEBUG line after the reload:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // a bad reload: refused with file:line and the key, the running configuration stays
    std::fs::write(&file, "log_level = \"trace\"\nbogus = 1\n").unwrap();
    server.hangup();
    server.wait_log(&format!(
        "reload refused, keeping the running configuration: {}:2: bogus: unknown key",
        file.display()
    ));
    let after = next_notification(&notify, 20);
    assert!(after.contains("RELOADING=1"), "{after}");
    assert!(next_notification(&notify, 20).contains("READY=1"));
    assert!(!server.log().contains(" TRACE "), "trace was not applied");
    assert_eq!(
        http_get_status(
            format!("127.0.0.1:{port}").parse().unwrap(),
            "/v1/status/leader"
        ),
        Some(200)
    );
}
