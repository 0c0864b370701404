//! Dispatched work really runs: the scheduler and the embedded local runner end to end,
//! with real processes and real ffmpeg, driven through the `dispatch` CLI.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    dispatch, dispatched_id, get_json, make_clip, ok, show, task_runs as runs, wait_until,
    TestServer,
};
use serde_json::Value;

fn register(server: &TestServer, dir: &Path, name: &str, hcl: &str) {
    let path = dir.join(format!("{name}.hcl"));
    std::fs::write(&path, hcl).unwrap();
    ok(&dispatch(server, &["job", "run", path.to_str().unwrap()]));
}

fn children(server: &TestServer, job: &str) -> Value {
    get_json(server, &format!("/v1/job/{job}/summary"))["Children"].clone()
}

fn shell_job(name: &str, script: &str, extra_group: &str, extra_param: &str) -> String {
    format!(
        r#"job "{name}" {{
  type = "batch"
  parameterized {{
    meta_optional = ["n"]
    {extra_param}
  }}
  group "g" {{
    {extra_group}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "{script}"]
      }}
      resources {{
        cpu    = 1000
        memory = 32
      }}
    }}
  }}
}}
"#
    )
}

const NO_RETRY: &str = "restart {\n attempts = 0\n }\n reschedule {\n attempts = 0\n }";

fn width_of(video: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width",
            "-of",
            "csv=p=0",
        ])
        .arg(video)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn transcode_makes_small_and_large_mp4s_with_ffmpeg() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path());
    let out_dir = dir.path().join("videos");
    let root = env!("CARGO_MANIFEST_DIR");
    ok(&dispatch(
        &server,
        &["job", "run", &format!("{root}/jobs/transcode.hcl")],
    ));
    let input = format!("input={}", clip.display());
    let output = format!("output_dir={}", out_dir.display());
    // Dispatch-and-wait: follows to the end and exits with the task's code.
    let small = dispatch(
        &server,
        &[
            "job",
            "dispatch",
            "-meta",
            &input,
            "-meta",
            &output,
            "transcode",
        ],
    );
    let text = ok(&small);
    assert!(
        text.contains("is running") && text.contains("finished (exit code 0)"),
        "{text}"
    );
    assert!(text.contains("complete"), "{text}");
    let large = dispatch(
        &server,
        &[
            "job",
            "dispatch",
            "-meta",
            &input,
            "-meta",
            "profile=large",
            "-meta",
            &output,
            "transcode",
        ],
    );
    ok(&large);
    let mut widths: Vec<u64> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| width_of(&e.unwrap().path()))
        .collect();
    widths.sort();
    assert_eq!(widths, [640, 1280], "outputs in {}", out_dir.display());
    // The rendered template reached the sandbox.
    let child = dispatched_id(&text);
    let ini = ok(&dispatch(&server, &["fs", &child, "tc/local/s3cfg.ini"]));
    assert!(ini.starts_with("[default]\naccess_key = "), "{ini}");
    let logs = ok(&dispatch(&server, &["logs", &child]));
    assert!(logs.contains("Transcoding"), "{logs}");
}

#[test]
fn the_gif_pipeline_runs_its_four_steps_in_order() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path());
    let out_dir = dir.path().join("gifs");
    let root = env!("CARGO_MANIFEST_DIR");
    ok(&dispatch(
        &server,
        &["job", "run", &format!("{root}/jobs/gif.hcl")],
    ));
    let run = dispatch(
        &server,
        &[
            "job",
            "dispatch",
            "-meta",
            &format!("input={}", clip.display()),
            "-meta",
            &format!("output_dir={}", out_dir.display()),
            "-meta",
            "width=160",
            "gif",
        ],
    );
    let text = ok(&run);
    let child = dispatched_id(&text);
    let order: Vec<usize> = [
        "\"download\" finished",
        "\"palettegen\" finished",
        "\"paletteuse\" finished",
        "\"publish\" finished",
    ]
    .iter()
    .map(|s| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing in:\n{text}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "steps out of order:\n{text}"
    );
    let gifs: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(gifs.len(), 1, "{gifs:?}");
    let bytes = std::fs::read(&gifs[0]).unwrap();
    assert!(bytes.starts_with(b"GIF89a"), "not a GIF");
    let listing = ok(&dispatch(&server, &["fs", &child, "alloc"]));
    assert!(
        listing.contains("output.gif") && listing.contains("palette.png"),
        "{listing}"
    );
    let logs = ok(&dispatch(&server, &["logs", &child, "publish"]));
    assert!(logs.contains("published"), "{logs}");
}

#[test]
fn failures_are_retried_then_the_dispatch_fails_with_the_exit_code() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let job = shell_job(
        "flaky",
        "echo try; echo flaky: error: the thing is missing >&2; exit 3",
        "restart {\n attempts = 2\n delay = \"200ms\"\n }\n reschedule {\n attempts = 0\n }",
        "",
    );
    register(&server, dir.path(), "flaky", &job);
    let out = dispatch(&server, &["job", "dispatch", "flaky"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("attempt 3 launched"), "{text}");
    assert!(text.contains("failed"), "{text}");
    // Why, under the failure: the failed attempt's stderr.
    let why = "    Last 1 line(s) of task \"t\" stderr (attempt 3, TASK_FAILED):\n      flaky: error: the thing is missing\n";
    assert!(text.ends_with(why), "{text}");
    let child = dispatched_id(&text);
    let runs = runs(&server, &child);
    assert_eq!(runs.len(), 3, "{runs:?}");
    let mut ids: Vec<&str> = runs.iter().map(|r| r["TaskID"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every attempt has its own task ID");
    assert!(
        runs.iter()
            .all(|r| r["State"] == "TASK_FAILED" && r["ExitCode"] == 3),
        "{runs:?}"
    );
    let status = ok(&dispatch(&server, &["job", "status", &child]));
    assert!(
        status.contains("Task Runs") && status.contains("TASK_FAILED"),
        "{status}"
    );
    assert!(
        status.contains("Last 1 line(s) of task \"t\" stderr (attempt 3, TASK_FAILED):\n  flaky: error: the thing is missing"),
        "{status}"
    );
    assert_eq!(
        children(&server, "flaky"),
        serde_json::json!({"Pending": 0, "Running": 0, "Dead": 1})
    );
}

#[test]
fn max_run_duration_kills_a_long_task() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let job = shell_job(
        "slow",
        "sleep 30",
        &format!("max_run_duration = \"1s\"\n {NO_RETRY}"),
        "",
    );
    register(&server, dir.path(), "slow", &job);
    let out = dispatch(&server, &["job", "dispatch", "slow"]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let child = dispatched_id(&String::from_utf8_lossy(&out.stdout));
    let runs = runs(&server, &child);
    assert!(
        runs[0]["Message"]
            .as_str()
            .unwrap()
            .contains("MAX_COMPLETION_TIME"),
        "{runs:?}"
    );
}

#[test]
fn work_waits_in_the_queue_when_the_machine_is_full() {
    let server = TestServer::start_with(&["-local-cpus", "1"]);
    let dir = tempfile::tempdir().unwrap();
    register(
        &server,
        dir.path(),
        "one",
        &shell_job("one", "sleep 1", NO_RETRY, ""),
    );
    for _ in 0..5 {
        ok(&dispatch(&server, &["job", "dispatch", "-detach", "one"]));
    }
    let mut saw_queue = false;
    wait_until(60, "all five to finish", || {
        let c = children(&server, "one");
        assert!(
            c["Running"].as_u64().unwrap() <= 1,
            "more than one runs on 1 cpu: {c}"
        );
        if c["Running"] == 1 && c["Pending"].as_u64().unwrap() >= 3 {
            saw_queue = true;
        }
        c["Dead"] == 5
    });
    assert!(saw_queue, "the queue was never seen holding work");
}

#[test]
fn max_running_limits_concurrent_children_of_a_job() {
    let server = TestServer::start_with(&["-local-cpus", "8"]);
    let dir = tempfile::tempdir().unwrap();
    register(
        &server,
        dir.path(),
        "capped",
        &shell_job("capped", "sleep 1", NO_RETRY, "max_running = 2"),
    );
    for _ in 0..5 {
        ok(&dispatch(
            &server,
            &["job", "dispatch", "-detach", "capped"],
        ));
    }
    let mut max_seen = 0;
    wait_until(60, "all five to finish", || {
        let c = children(&server, "capped");
        max_seen = max_seen.max(c["Running"].as_u64().unwrap());
        assert!(c["Running"].as_u64().unwrap() <= 2, "limit broken: {c}");
        c["Dead"] == 5
    });
    assert_eq!(max_seen, 2, "two should run at once");
}

#[test]
fn stopping_a_job_kills_its_running_tasks() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    register(
        &server,
        dir.path(),
        "sleepy",
        &shell_job("sleepy", "sleep 60", NO_RETRY, ""),
    );
    let child = dispatched_id(&ok(&dispatch(
        &server,
        &["job", "dispatch", "-detach", "sleepy"],
    )));
    wait_until(20, "the task to run", || {
        runs(&server, &child)
            .iter()
            .any(|r| r["State"] == "TASK_RUNNING")
    });
    ok(&dispatch(&server, &["job", "stop", "sleepy"]));
    wait_until(20, "the task to be killed", || {
        runs(&server, &child)
            .iter()
            .all(|r| r["State"] == "TASK_KILLED")
    });
    let job = get_json(&server, &format!("/v1/job/{child}"));
    assert_eq!(job["DispatchStatus"], "stopped");
}

/// Whether process `pid` still runs the script that names `marker` (not a zombie, not a
/// reused PID).
fn runs_script(pid: &str, marker: &Path) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|r| r.trim_start().starts_with('Z'));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*marker.to_string_lossy());
    ours && !zombie
}

#[test]
fn a_restart_fails_running_attempts_cleanly_and_never_relaunches_one() {
    let mut server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("finished-by");
    let pids = dir.path().join("pids");
    let started = dir.path().join("started");
    // Attempt 1 records its PID and runs until killed; attempt 2 finishes at once.
    let script = format!(
        "read -r pid rest < /proc/self/stat; echo $pid >> {pids}; \
         if [ -e {started} ]; then echo $NOMAD_ALLOC_INDEX >> {marker}; \
         else touch {started}; sleep 600; fi",
        pids = pids.display(),
        started = started.display(),
        marker = marker.display()
    );
    let job = shell_job(
        "survivor",
        &script,
        "restart {\n attempts = 1\n delay = \"100ms\"\n }\n reschedule {\n attempts = 0\n }",
        "",
    );
    register(&server, dir.path(), "survivor", &job);
    let child = dispatched_id(&ok(&dispatch(
        &server,
        &["job", "dispatch", "-detach", "survivor"],
    )));
    wait_until(20, "the task to run", || {
        runs(&server, &child)
            .iter()
            .any(|r| r["State"] == "TASK_RUNNING")
            && started.exists()
    });
    server.kill9();
    server.restart();
    wait_until(30, "the dispatch to finish", || {
        get_json(&server, &format!("/v1/job/{child}"))["DispatchStatus"] == "complete"
    });
    let runs = runs(&server, &child);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["Attempt"], 1);
    assert_eq!(runs[0]["State"], "TASK_GONE", "{runs:?}");
    assert_eq!(runs[1]["Attempt"], 2);
    assert_eq!(runs[1]["State"], "TASK_FINISHED");
    assert_ne!(runs[0]["TaskID"], runs[1]["TaskID"]);
    // The first attempt's process did not survive the old server: the new one killed it.
    let pids = std::fs::read_to_string(&pids).unwrap();
    let first = pids
        .lines()
        .next()
        .expect("attempt 1 recorded its PID")
        .to_string();
    wait_until(20, "attempt 1's process to be gone", || {
        !runs_script(&first, &marker)
    });
    let lines = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

#[test]
fn logs_follow_a_running_task_to_its_end_and_fs_reads_the_sandbox() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let job = shell_job(
        "talk",
        "echo one; echo oops >&2; sleep 1; echo two",
        NO_RETRY,
        "",
    );
    register(&server, dir.path(), "talk", &job);
    let child = dispatched_id(&ok(&dispatch(
        &server,
        &["job", "dispatch", "-detach", "talk"],
    )));
    wait_until(20, "the task to start", || {
        runs(&server, &child)
            .iter()
            .any(|r| r["State"] == "TASK_RUNNING" || r["State"] == "TASK_FINISHED")
    });
    // -f keeps streaming until the task ends, then returns.
    let followed = ok(&dispatch(&server, &["logs", "-f", &child]));
    assert_eq!(followed, "one\ntwo\n");
    assert_eq!(
        ok(&dispatch(&server, &["logs", "-stderr", &child, "t"])),
        "oops\n"
    );
    assert_eq!(
        ok(&dispatch(&server, &["logs", "-tail", "-n", "1", &child])),
        "two\n"
    );
    let root = ok(&dispatch(&server, &["fs", &child]));
    assert!(root.contains("alloc/") && root.contains("t/"), "{root}");
    let sandbox = ok(&dispatch(&server, &["fs", &child, "t"]));
    assert!(
        sandbox.contains("stdout") && sandbox.contains("local/"),
        "{sandbox}"
    );
    assert_eq!(
        ok(&dispatch(&server, &["fs", &child, "t/stdout"])),
        "one\ntwo\n"
    );
    let escape = dispatch(&server, &["fs", &child, "t/../../../etc/passwd"]);
    assert_eq!(escape.status.code(), Some(1), "{}", show(&escape));
    assert!(String::from_utf8_lossy(&escape.stderr).contains("must stay inside the sandbox"));
}

#[test]
fn a_task_too_large_for_the_machine_is_reported_and_does_not_block_smaller_ones() {
    let server = TestServer::start_with(&["-local-cpus", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let big = shell_job("big", "true", NO_RETRY, "").replace("cpu    = 1000", "cpu    = 4000");
    register(&server, dir.path(), "big", &big);
    register(
        &server,
        dir.path(),
        "small",
        &shell_job("small", "true", NO_RETRY, ""),
    );
    let big_child = dispatched_id(&ok(&dispatch(
        &server,
        &["job", "dispatch", "-detach", "big"],
    )));
    // The small one runs to completion although the big one is ahead of it in the queue.
    ok(&dispatch(&server, &["job", "dispatch", "small"]));
    wait_until(20, "the big dispatch to be reported", || {
        get_json(&server, &format!("/v1/job/{big_child}"))["StatusDescription"]
            .as_str()
            .is_some_and(|d| d.contains("needs cpus=4") && d.contains("largest: cpus=1"))
    });
    let job = get_json(&server, &format!("/v1/job/{big_child}"));
    assert_eq!(job["DispatchStatus"], "pending");

    // More of them: each carries the note, the log says it once for the job.
    let more: Vec<String> = (0..3)
        .map(|_| {
            dispatched_id(&ok(&dispatch(
                &server,
                &["job", "dispatch", "-detach", "big"],
            )))
        })
        .collect();
    for child in &more {
        wait_until(20, "every big dispatch to be reported", || {
            get_json(&server, &format!("/v1/job/{child}"))["StatusDescription"]
                .as_str()
                .is_some_and(|d| d.contains("needs cpus=4"))
        });
    }
    let log = server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no agent has offered that much"))
        .collect();
    assert_eq!(lines.len(), 1, "one log line per job and reason:\n{log}");
    assert!(
        lines[0].contains("job=\"big\"") || lines[0].contains("job=big"),
        "{}",
        lines[0]
    );
}
