//! Garbage collection of dead children, as a user sees it: a finished child disappears from
//! the API after `-gc-threshold` (or at once with `PUT /v1/system/gc`), with its sandbox;
//! running children stay; the parent still counts it as dead; a restart does not bring it back.

mod common;

use std::process::Command;

use common::{
    dispatch, dispatched_id, get_json, get_text, http_get_status, ok, status_of, task_runs,
    wait_until, TestServer,
};

const JOB: &str = r#"job "naps" {
  type = "batch"
  parameterized {
    meta_required = ["secs"]
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "sleep"
        args    = ["${NOMAD_META_secs}"]
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#;

fn register(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("naps.hcl");
    std::fs::write(&file, JOB).unwrap();
    ok(&dispatch(s, &["job", "run", file.to_str().unwrap()]));
}

fn dispatch_sleep(s: &TestServer, secs: &str) -> String {
    let meta = format!("secs={secs}");
    dispatched_id(&ok(&dispatch(
        s,
        &["job", "dispatch", "-detach", "-meta", &meta, "naps"],
    )))
}

fn job_status_code(s: &TestServer, id: &str) -> Option<u16> {
    http_get_status(s.addr(), &format!("/v1/job/{}", id.replace('/', "%2F")))
}

fn sandbox_of(s: &TestServer, child: &str) -> std::path::PathBuf {
    let runs = task_runs(s, child);
    let task_id = runs[0]["TaskID"].as_str().unwrap().to_string();
    s.data_dir().join("sandboxes").join("tasks").join(task_id)
}

#[test]
fn dead_children_are_collected_after_the_threshold() {
    let mut s = TestServer::start_with(&["-gc-threshold", "3s", "-gc-interval", "1s"]);
    register(&s);
    let long = dispatch_sleep(&s, "60");
    wait_until(20, "the long one running", || {
        status_of(&s, &long) == "running"
    });
    let done = dispatch_sleep(&s, "0");
    wait_until(20, "the short one dead", || status_of(&s, &done) == "dead");
    let sandbox = sandbox_of(&s, &done);
    assert!(sandbox.is_dir(), "{}", sandbox.display());

    wait_until(20, "the dead child collected", || {
        job_status_code(&s, &done) == Some(404)
    });
    // The directories go right after the removal is committed.
    wait_until(10, "the sandbox removed", || !sandbox.exists());
    assert_eq!(status_of(&s, &long), "running");
    let summary = get_json(&s, "/v1/job/naps/summary");
    assert_eq!(summary["Children"]["Dead"], 1, "{summary}");
    assert_eq!(summary["Children"]["Running"], 1, "{summary}");
    let text = get_text(&s, "/metrics");
    assert!(
        text.lines()
            .any(|l| l == "dispatch_gc_children_removed_total 1"),
        "{text}"
    );

    // Removed from the store too: a restart does not bring it back.
    s.restart();
    assert_eq!(job_status_code(&s, &done), Some(404));
    assert_eq!(get_json(&s, "/v1/job/naps/summary")["Children"]["Dead"], 1);
}

#[test]
fn forced_gc_collects_every_dead_child_at_once() {
    let s = TestServer::start();
    register(&s);
    let done = dispatch_sleep(&s, "0");
    wait_until(20, "dead", || status_of(&s, &done) == "dead");
    // The default threshold (4h) keeps it...
    assert_eq!(job_status_code(&s, &done), Some(200));
    let o = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            &format!("{}/v1/system/gc", s.url()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "200");
    // ...a forced collection does not wait.
    assert_eq!(job_status_code(&s, &done), Some(404));
    let o = dispatch(&s, &["job", "status", &done]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn bad_gc_flags_are_usage_errors() {
    for (args, want) in [
        (vec!["-gc-threshold", "soon"], "gc-threshold"),
        (
            vec!["-gc-interval", "0s"],
            "-gc-interval: must be more than 0",
        ),
    ] {
        let mut full = vec!["server", "-bind", "127.0.0.1:0"];
        full.extend(args);
        let o = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .args(&full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
    }
}
