//! Compatibility with the real python-nomad client: runs tests/python/test_python_nomad.py
//! against a fresh server. Needs python3 with python-nomad (`scripts/test-deps.sh`).

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/postgres.rs"]
mod pg;

use std::process::Command;

use common::{wait_until, TestServer};

const SCRIPT: &str = "tests/python/test_python_nomad.py";
const INSTALL_HINT: &str =
    "python-nomad is not importable by python3: run scripts/test-deps.sh (pip install python-nomad)";

/// Fail, never skip, when the client is missing: a skipped compatibility test is a lie.
fn require_python_nomad() {
    let probe = Command::new("python3")
        .args(["-c", "import nomad"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {INSTALL_HINT}"));
    assert!(
        probe.status.success(),
        "{INSTALL_HINT}\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

#[test]
fn python_nomad_client_works() {
    require_python_nomad();
    // No cpus to offer: dispatched children stay pending, as the checks expect.
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    run_script(&server, &server.addr().to_string());
}

/// The same checks against a standby of two servers on PostgreSQL: it forwards the writes
/// to the leader and answers the reads from its own copy.
#[test]
fn python_nomad_client_works_against_a_standby() {
    require_python_nomad();
    let pg = pg::Postgres::start();
    let url = pg.database("python");
    let args = ["-local-cpus", "0", "-store", &url, "-store-lease", "2s"];
    let leader = TestServer::start_with(&args);
    wait_until(20, "the first server to lead", || {
        common::get_json(&leader, "/v1/agent/self")["Role"] == "leader"
    });
    let standby = TestServer::start_with(&args);
    assert_eq!(
        common::get_json(&standby, "/v1/agent/self")["Role"],
        "standby"
    );
    wait_until(20, "the standby to know the leader", || {
        common::get_json(&standby, "/v1/status/leader") == leader.addr().to_string().as_str()
    });
    run_script(&standby, &leader.addr().to_string());
}

fn run_script(server: &TestServer, expect_leader: &str) {
    let out = Command::new("python3")
        .arg(common::repo_root().join(SCRIPT))
        .env("NOMAD_ADDR", server.url())
        .env("DISPATCH_EXPECT_LEADER", expect_leader)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{SCRIPT} failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
        out.status,
        server.log()
    );
    print!("{stdout}");
}

/// python-nomad with `token=` over HTTPS with client certificates: a dispatch-only token
/// dispatches, and everything else raises python-nomad's Forbidden exception.
#[test]
fn python_nomad_tokens_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new(dir.path(), "py");
    let server_pair = ca.server("server");
    let client = ca.client("python");
    let token_file = dir.path().join("bootstrap.token");
    let management = "0b6c2d1e-7f3a-4b5c-9d8e-1f2a3b4c5d6e";
    std::fs::write(&token_file, management).unwrap();
    let server = TestServer::start_with(&[
        "-local-cpus",
        "0",
        "-acl-enabled",
        "-acl-bootstrap-token-file",
        token_file.to_str().unwrap(),
        "-tls-cert-file",
        server_pair.cert.to_str().unwrap(),
        "-tls-key-file",
        server_pair.key.to_str().unwrap(),
        "-tls-ca-file",
        ca.cert.to_str().unwrap(),
        "-tls-verify-clients",
    ]);
    let script = "tests/python/test_python_nomad_acl.py";
    let out = Command::new("python3")
        .arg(common::repo_root().join(script))
        .env("NOMAD_ADDR", server.url())
        .env("DISPATCH_TEST_CA", &ca.cert)
        .env("DISPATCH_TEST_CERT", &client.cert)
        .env("DISPATCH_TEST_KEY", &client.key)
        .env("DISPATCH_TEST_MANAGEMENT", management)
        .env_remove("NOMAD_TOKEN")
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed with {}\n--- stdout\n{stdout}\n--- stderr\n{}\n--- server log\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    print!("{stdout}");
}
