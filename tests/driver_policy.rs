//! Which task drivers a server runs (`-driver-allowlist`, `raw_exec` off unless listed or
//! `-dev`), and the refusal to listen beyond loopback without ACLs unless told so loudly.

mod common;

use std::process::{Command, Stdio};

use common::{dispatch, ok, show, wait_until, TestServer};

const RAW_EXEC_JOB: &str = r#"job "raw" {
  type = "batch"
  parameterized {}
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "true"
      }
    }
  }
}
"#;

const DOCKER_JOB: &str = r#"job "img" {
  type = "batch"
  parameterized {}
  group "g" {
    task "t" {
      driver = "docker"
      config {
        image = "alpine:3"
      }
    }
  }
}
"#;

#[test]
fn raw_exec_is_refused_unless_listed_or_dev() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.hcl");
    std::fs::write(&raw, RAW_EXEC_JOB).unwrap();
    let img = dir.path().join("img.hcl");
    std::fs::write(&img, DOCKER_JOB).unwrap();

    // the default: everything but raw_exec
    let server = TestServer::start_with_server_defaults(&[]);
    let out = dispatch(&server, &["job", "run", raw.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "group \"g\" task \"t\": driver \"raw_exec\" is not allowed on this server; \
             allowed: exec, docker, mesos_executor (-driver-allowlist) (raw_exec runs \
             commands unconfined, so it is off unless listed or the server runs with -dev)"
        ),
        "{err}"
    );
    // nothing was stored
    let jobs = common::get_json(&server, "/v1/jobs");
    assert_eq!(jobs, serde_json::json!([]));
    // the same over HTTP: 400
    let body = serde_json::json!({"Job": {"ID": "raw", "Type": "batch",
        "ParameterizedJob": {}, "TaskGroups": [{"Name": "g", "Tasks": [
            {"Name": "t", "Driver": "raw_exec", "Config": {"command": "true"}}]}]}});
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/stderr",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-d",
        ])
        .arg(body.to_string())
        .arg(format!("{}/v1/jobs", server.url()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "400",
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("driver \"raw_exec\" is not allowed"),
        "{}",
        show(&out)
    );
    ok(&dispatch(&server, &["job", "run", img.to_str().unwrap()]));
    drop(server);

    // a list without docker refuses docker
    let server = TestServer::start_with(&["-driver-allowlist", "raw_exec"]);
    ok(&dispatch(&server, &["job", "run", raw.to_str().unwrap()]));
    let out = dispatch(&server, &["job", "run", img.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("driver \"docker\" is not allowed on this server; allowed: raw_exec"),
        "{}",
        show(&out)
    );
    drop(server);

    // -dev allows raw_exec
    let server = TestServer::start_with(&["-dev"]);
    ok(&dispatch(&server, &["job", "run", raw.to_str().unwrap()]));
    let security = &common::get_json(&server, "/v1/agent/self")["config"]["Dispatch"]["Security"];
    assert_eq!(
        security["DriverAllowlist"],
        serde_json::json!(["exec", "raw_exec", "docker", "mesos_executor"]),
        "{security}"
    );
}

#[test]
fn unknown_drivers_in_the_list_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args([
            "server",
            "-bind",
            "127.0.0.1:0",
            "-driver-allowlist",
            "exec,podman",
        ])
        .arg("-data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "-driver-allowlist: unknown driver \"podman\"; Dispatch runs: exec, raw_exec, docker, mesos_executor"
        ),
        "{}",
        show(&out)
    );
}

#[test]
fn an_api_beyond_loopback_needs_acls_or_an_explicit_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["server", "-bind", "0.0.0.0:0", "-data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("-bind: 0.0.0.0 lets other machines reach the API, and ACLs are off")
            && err.contains("-acl-enabled=false"),
        "{err}"
    );

    // said explicitly: it starts, and says it is open, in the log and on /v1/agent/self
    let log = dir.path().join("server.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args([
            "server",
            "-bind",
            "0.0.0.0:0",
            "-acl-enabled=false",
            "-data-dir",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut addr = None;
    wait_until(20, "the server to listen", || {
        addr = common::listening_addr(&read_log());
        addr.is_some()
    });
    let port = addr.unwrap().port();
    let text = read_log();
    assert!(
        text.contains("THE API IS OPEN: it listens on 0.0.0.0:")
            && text.contains("with ACLs off (-acl-enabled=false)"),
        "{text}"
    );
    let local: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until(20, "the API", || {
        common::http_get_status(local, "/v1/status/leader") == Some(200)
    });
    let out = Command::new("curl")
        .args(["-fsS", &format!("http://{local}/v1/agent/self")])
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let security = &body["config"]["Dispatch"]["Security"];
    assert_eq!(security["Open"], true, "{security}");
    assert!(
        security["Warning"]
            .as_str()
            .is_some_and(|w| w.starts_with("THE API IS OPEN")),
        "{security}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
