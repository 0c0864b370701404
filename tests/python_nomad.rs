//! Compatibility with the real python-nomad client: runs tests/python/test_python_nomad.py
//! against a fresh server. Needs python3 with python-nomad (`scripts/test-deps.sh`).

mod common;

use std::process::Command;

use common::TestServer;

const SCRIPT: &str = "tests/python/test_python_nomad.py";
const INSTALL_HINT: &str =
    "python-nomad is not importable by python3: run scripts/test-deps.sh (pip install python-nomad)";

#[test]
fn python_nomad_client_works() {
    // Fail, never skip, when the client is missing: a skipped compatibility test is a lie.
    let probe = Command::new("python3")
        .args(["-c", "import nomad"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {INSTALL_HINT}"));
    assert!(
        probe.status.success(),
        "{INSTALL_HINT}\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // No cpus to offer: dispatched children stay pending, as the checks expect.
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    let out = Command::new("python3")
        .arg(common::repo_root().join(SCRIPT))
        .env("NOMAD_ADDR", server.url())
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
