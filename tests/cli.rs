//! The `dispatch` binary as a user runs it: register, dispatch (one-dash and two-dash flags,
//! payload from a file and stdin), status, inspect, stop, validate, errors and exit codes,
//! and a `kill -9` + restart that keeps every dispatch.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::TestServer;

const TRANSCODE_JSON: &str = r#"{"Job": {
  "ID": "transcode", "Type": "batch",
  "Meta": {"input": "", "profile": "small"},
  "ParameterizedJob": {"Payload": "optional", "MetaRequired": ["input"], "MetaOptional": ["profile"]},
  "TaskGroups": [{"Name": "tc", "Tasks": [{"Name": "tc", "Driver": "exec",
    "Config": {"command": "transcode.sh", "args": ["${NOMAD_META_input}", "${NOMAD_META_profile}"]},
    "Resources": {"CPU": 1000, "MemoryMB": 256}}]}]}}"#;

/// Run `dispatch ARGS` against `server` (through DISPATCH_ADDR unless the args say otherwise).
fn dispatch(server: Option<&TestServer>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch"));
    cmd.args(args)
        .env_remove("DISPATCH_ADDR")
        .env_remove("NOMAD_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(server) = server {
        cmd.env("DISPATCH_ADDR", server.url());
    }
    let mut child = cmd.spawn().expect("run dispatch");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[track_caller]
fn fails(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

/// A `key = value` line of Nomad's aligned key/value blocks.
fn has_kv(out: &str, key: &str, value: &str) -> bool {
    out.lines().any(|l| {
        l.split_once(" = ")
            .is_some_and(|(k, v)| k.trim_end() == key && v == value)
    })
}

fn dispatched_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Dispatched Job ID = "))
        .unwrap_or_else(|| panic!("no Dispatched Job ID in:\n{out}"))
        .trim()
        .to_string()
}

fn write_job_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("transcode.json");
    std::fs::write(&path, TRANSCODE_JSON).unwrap();
    path
}

#[test]
fn register_dispatch_status_and_survive_kill_9() {
    // No cpus to offer: everything dispatched stays queued.
    let mut server = TestServer::start_with(&["-local-cpus", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let job_file = write_job_file(dir.path());
    let job_file = job_file.to_str().unwrap();

    assert_eq!(
        ok(&dispatch(Some(&server), &["job", "run", job_file], None)).trim(),
        "Job registration successful"
    );

    // One-dash (Nomad) and two-dash flags, detached.
    let out = ok(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=a.mp4",
            "-detach",
            "transcode",
        ],
        None,
    ));
    let first = dispatched_id(&out);
    assert!(first.starts_with("transcode/dispatch-"), "{out}");
    assert!(out.contains("Evaluation ID     = "), "{out}");
    let out = ok(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "--meta",
            "input=b.mp4",
            "--meta=profile=large",
            "--detach",
            "transcode",
        ],
        None,
    ));
    let second = dispatched_id(&out);

    // Payload from a file and from stdin; -address instead of the environment.
    let payload = dir.path().join("knobs.json");
    std::fs::write(&payload, b"{\"crop\": \"16:9\"}").unwrap();
    let out = ok(&dispatch(
        None,
        &[
            "job",
            "dispatch",
            "-address",
            &server.url(),
            "-meta",
            "input=c",
            "-detach",
            "transcode",
            payload.to_str().unwrap(),
        ],
        None,
    ));
    let third = dispatched_id(&out);
    let out = ok(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=d",
            "-detach",
            "-id-prefix-template",
            "nightly",
            "-priority",
            "80",
            "transcode",
            "-",
        ],
        Some(b"from stdin"),
    ));
    let fourth = dispatched_id(&out);
    assert!(
        fourth.starts_with("transcode/dispatch-nightly-"),
        "{fourth}"
    );

    let out = ok(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=e",
            "-detach",
            "transcode",
        ],
        None,
    ));
    let fifth = dispatched_id(&out);

    // Idempotency token: the repeat prints only the existing child.
    let out = ok(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-idempotency-token",
            "tok-1",
            "-meta",
            "input=f",
            "-detach",
            "transcode",
        ],
        None,
    ));
    let sixth = dispatched_id(&out);
    let again = ok(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-idempotency-token",
            "tok-1",
            "-meta",
            "input=f",
            "-detach",
            "transcode",
        ],
        None,
    ));
    assert_eq!(again.trim(), format!("Dispatched Job ID = {sixth}"));

    let status = ok(&dispatch(
        Some(&server),
        &["job", "status", "transcode"],
        None,
    ));
    for line in [
        "ID            = transcode",
        "Type          = batch",
        "Status        = running",
        "Parameterized = true",
        "Parameterized Job\nPayload           = optional\nRequired Metadata = input\nOptional Metadata = profile",
        "Parameterized Job Summary\nPending  Running  Dead\n6        0        0",
        "Dispatched Jobs\nID ",
    ] {
        assert!(status.contains(line), "missing {line:?} in:\n{status}");
    }
    let all = [&first, &second, &third, &fourth, &fifth, &sixth];
    for id in all {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(id.as_str()) && l.ends_with("pending")),
            "{id} in:\n{status}"
        );
    }

    // kill -9, restart: every dispatch is still there, with its meta and payload.
    server.kill9();
    server.restart();
    let status = ok(&dispatch(
        Some(&server),
        &["job", "status", "transcode"],
        None,
    ));
    assert!(
        status.contains("Pending  Running  Dead\n6        0        0"),
        "{status}"
    );
    for id in all {
        assert!(
            status.contains(id.as_str()),
            "{id} lost after kill -9:\n{status}"
        );
    }
    let child = ok(&dispatch(Some(&server), &["job", "inspect", &third], None));
    let child: serde_json::Value = serde_json::from_str(&child).unwrap();
    assert_eq!(child["Job"]["Meta"]["input"], "c");
    assert_eq!(child["Job"]["Payload"], "eyJjcm9wIjogIjE2OjkifQ==");
    let child = ok(&dispatch(Some(&server), &["job", "status", &second], None));
    assert!(
        has_kv(&child, "Meta", "input=b.mp4 profile=large"),
        "{child}"
    );
    assert!(has_kv(&child, "Status", "pending"), "{child}");
    assert!(has_kv(&child, "Dispatch Status", "pending"), "{child}");
    assert!(
        child.contains("Task Runs\nNo tasks launched yet"),
        "{child}"
    );
    let child = ok(&dispatch(Some(&server), &["job", "status", &fourth], None));
    assert!(has_kv(&child, "Priority", "80"), "{child}");

    let list = ok(&dispatch(Some(&server), &["status"], None));
    assert!(list.starts_with("ID "), "{list}");
    assert!(
        list.lines().any(|l| l.starts_with("transcode ")
            && l.contains("batch/parameterized")
            && l.contains("running")),
        "{list}"
    );
    assert_eq!(list.lines().count(), 1 + 1 + 6, "{list}");

    // Stop: pending children stop with the parent; dispatching is refused with Nomad's text.
    let out = ok(&dispatch(
        Some(&server),
        &["job", "stop", "transcode"],
        None,
    ));
    assert!(out.contains("Job \"transcode\" stopped"), "{out}");
    let status = ok(&dispatch(
        Some(&server),
        &["job", "status", "transcode"],
        None,
    ));
    assert!(
        status.contains("Status        = dead (stopped)"),
        "{status}"
    );
    assert!(
        status.contains("Pending  Running  Dead\n0        0        6"),
        "{status}"
    );
    let err = fails(&dispatch(
        Some(&server),
        &["job", "dispatch", "-meta", "input=x", "transcode"],
        None,
    ));
    assert!(
        err.contains("No parameterized job(s) with prefix or ID \"transcode\" found")
            || err.contains("is stopped"),
        "{err}"
    );

    let out = ok(&dispatch(
        Some(&server),
        &["job", "stop", "-purge", "transcode"],
        None,
    ));
    assert!(out.contains("purged"), "{out}");
    assert_eq!(
        ok(&dispatch(Some(&server), &["status"], None)).trim(),
        "No running jobs"
    );
}

#[test]
fn errors_print_the_servers_message_and_exit_1() {
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let job_file = write_job_file(dir.path());
    ok(&dispatch(
        Some(&server),
        &["job", "run", job_file.to_str().unwrap()],
        None,
    ));

    let err = fails(&dispatch(
        Some(&server),
        &["job", "dispatch", "-detach", "transcode"],
        None,
    ));
    assert_eq!(
        err.trim(),
        "Failed to dispatch job: Dispatch did not provide required meta keys: [input]"
    );
    let err = fails(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=a",
            "-meta",
            "color=red",
            "transcode",
        ],
        None,
    ));
    assert_eq!(
        err.trim(),
        "Failed to dispatch job: Dispatch request included unpermitted metadata keys: [color]"
    );
    let err = fails(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=a",
            "-priority",
            "500",
            "transcode",
        ],
        None,
    ));
    assert_eq!(
        err.trim(),
        "Failed to dispatch job: dispatch job priority must be between [1, 100]"
    );
    let err = fails(&dispatch(
        Some(&server),
        &["job", "dispatch", "-meta", "noequals", "transcode"],
        None,
    ));
    assert!(err.contains("Error parsing meta value: noequals"), "{err}");
    let err = fails(&dispatch(
        Some(&server),
        &["job", "dispatch", "-meta", "input=a", "nosuchjob"],
        None,
    ));
    assert_eq!(
        err.trim(),
        "No parameterized job(s) with prefix or ID \"nosuchjob\" found"
    );
    let err = fails(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=a",
            "transcode",
            "/no/such/file",
        ],
        None,
    ));
    assert!(
        err.contains("Error reading input data: /no/such/file"),
        "{err}"
    );
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 20000]).unwrap();
    let err = fails(&dispatch(
        Some(&server),
        &[
            "job",
            "dispatch",
            "-meta",
            "input=a",
            "transcode",
            big.to_str().unwrap(),
        ],
        None,
    ));
    assert!(
        err.contains("Payload exceeds maximum size; 20000 > 16384"),
        "{err}"
    );
    let err = fails(&dispatch(
        Some(&server),
        &["job", "status", "nosuchjob"],
        None,
    ));
    assert!(
        err.contains("No job(s) with prefix or ID \"nosuchjob\" found"),
        "{err}"
    );
    let err = fails(&dispatch(
        Some(&server),
        &["job", "stop", "nosuchjob"],
        None,
    ));
    assert!(err.contains("No job with ID \"nosuchjob\" found"), "{err}");

    // Usage errors: exit 1 with usage.
    let err = fails(&dispatch(Some(&server), &["job", "dispatch"], None));
    assert!(err.contains("Usage:"), "{err}");
    let err = fails(&dispatch(
        Some(&server),
        &["job", "dispatch", "-nosuchflag", "transcode"],
        None,
    ));
    assert!(err.contains("Usage:"), "{err}");
    let err = fails(&dispatch(Some(&server), &["frobnicate"], None));
    assert!(err.contains("Usage:"), "{err}");

    // No server: a clear message.
    let err = fails(&dispatch(
        None,
        &["status", "-address", "http://127.0.0.1:1"],
        None,
    ));
    assert!(err.contains("is `dispatch server` running?"), "{err}");

    // Nothing was stored by the failures.
    let status = ok(&dispatch(
        Some(&server),
        &["job", "status", "transcode"],
        None,
    ));
    assert!(
        status.contains("No dispatched instances of parameterized job found"),
        "{status}"
    );
}

#[test]
fn validate_checks_a_file_locally() {
    let dir = tempfile::tempdir().unwrap();
    let job_file = write_job_file(dir.path());
    let out = ok(&dispatch(
        None,
        &["job", "validate", job_file.to_str().unwrap()],
        None,
    ));
    assert_eq!(out.trim(), "Job validation successful");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"Job": {"ID": "x", "Priority": "high"}}"#).unwrap();
    let err = fails(&dispatch(
        None,
        &["job", "validate", bad.to_str().unwrap()],
        None,
    ));
    assert!(err.contains("bad.json"), "{err}");
    assert!(err.contains("Priority"), "{err}");
    let err = fails(&dispatch(
        None,
        &["job", "validate", "/no/such/job.hcl"],
        None,
    ));
    assert!(err.contains("/no/such/job.hcl"), "{err}");
}

#[test]
fn dispatch_addr_and_nomad_addr_pick_the_server() {
    let server = TestServer::start();
    let run = |envs: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch"));
        cmd.arg("status")
            .env_remove("DISPATCH_ADDR")
            .env_remove("NOMAD_ADDR");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    assert_eq!(
        ok(&run(&[("NOMAD_ADDR", server.url())])).trim(),
        "No running jobs"
    );
    // DISPATCH_ADDR wins over NOMAD_ADDR.
    let out = run(&[
        ("DISPATCH_ADDR", server.url()),
        ("NOMAD_ADDR", "http://127.0.0.1:1".into()),
    ]);
    assert_eq!(ok(&out).trim(), "No running jobs");
    let out = run(&[
        ("DISPATCH_ADDR", "http://127.0.0.1:1".into()),
        ("NOMAD_ADDR", server.url()),
    ]);
    fails(&out);
}

#[test]
fn the_shipped_job_files_validate_and_register_from_hcl() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["jobs/transcode.hcl", "jobs/gif.hcl"] {
        let path = format!("{root}/{file}");
        let out = ok(&dispatch(None, &["job", "validate", &path], None));
        assert_eq!(out.trim(), "Job validation successful", "{file}");
    }
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    let out = ok(&dispatch(
        Some(&server),
        &["job", "run", &format!("{root}/jobs/transcode.hcl")],
        None,
    ));
    assert_eq!(out.trim(), "Job registration successful");
    let job = ok(&dispatch(
        Some(&server),
        &["job", "inspect", "transcode"],
        None,
    ));
    let job: serde_json::Value = serde_json::from_str(&job).unwrap();
    let task = &job["Job"]["TaskGroups"][0]["Tasks"][0];
    assert_eq!(
        task["Config"]["args"],
        serde_json::json!(["${NOMAD_META_input}", "${NOMAD_META_profile}"])
    );
    assert_eq!(task["Resources"]["CPU"], 1000);
    assert_eq!(task["Resources"]["MemoryMB"], 256);
    assert_eq!(task["Templates"][0]["DestPath"], "local/s3cfg.ini");
    assert_eq!(job["Job"]["Meta"]["profile"], "small");

    // scripts/dispatch.sh with the real client: two dispatches per line.
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs.txt");
    std::fs::write(&inputs, "/videos/a.mp4\n/videos/b.mp4").unwrap();
    let out = Command::new(format!("{root}/scripts/dispatch.sh"))
        .arg(&inputs)
        .env("DISPATCH_BIN", env!("CARGO_BIN_EXE_dispatch"))
        .env("DISPATCH_ADDR", server.url())
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(
        text.contains("Input file: /videos/a.mp4") && text.contains("Input file: /videos/b.mp4"),
        "{text}"
    );
    let status = ok(&dispatch(
        Some(&server),
        &["job", "status", "transcode"],
        None,
    ));
    assert!(
        status.contains("Pending  Running  Dead\n4        0        0"),
        "{status}"
    );
}

/// `dispatch job status | head -1`: when the reader goes away the CLI ends quietly (exit
/// 141, as a writer killed by SIGPIPE), never with a Rust panic about a broken pipe.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let server = TestServer::start();
    let job = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(job.path(), TRANSCODE_JSON).unwrap();
    let o = dispatch(
        Some(&server),
        &["job", "run", job.path().to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // The reader is gone before the CLI starts: its first write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["job", "status", "transcode"])
        .env("DISPATCH_ADDR", server.url())
        .env_remove("NOMAD_ADDR")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(o.status.code(), Some(141), "stderr: {stderr}");
}

/// `job validate` and `job run` take the demo's HCL1 `transcode.nomad` unchanged, printing
/// Nomad's "Job Warnings" block naming the HCL1 construct; the invalid corpus files stay
/// refused.
#[test]
fn hcl1_job_files_run_with_a_warning() {
    let corpus = common::repo_root().join("tests/fixtures/nomad-jobs");
    let file = corpus.join("hashicorp__nomad-dispatch-ffmpeg__nomad__transcode.nomad");
    let file = file.to_str().unwrap();
    let want = format!(
        "* {file}:28: HCL1: quoted attribute name \"S3_BUCKET\"; HCL2 writes S3_BUCKET = ..."
    );
    let o = dispatch(None, &["job", "validate", file], None);
    assert!(ok(&o).contains("Job validation successful"));
    assert!(
        stderr(&o).contains("Job Warnings:\n1 warning:\n"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));

    let server = TestServer::start();
    let o = dispatch(Some(&server), &["job", "run", file], None);
    assert!(ok(&o).contains("Job registration successful"));
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    let inspect: serde_json::Value = serde_json::from_str(&ok(&dispatch(
        Some(&server),
        &["job", "inspect", "transcode"],
        None,
    )))
    .unwrap();
    let task = &inspect["Job"]["TaskGroups"][0]["Tasks"][0];
    assert_eq!(task["Env"]["S3_BUCKET"], "BUCKET_NAME");
    assert_eq!(
        task["Config"]["args"],
        serde_json::json!(["${NOMAD_META_INPUT}", "${NOMAD_META_PROFILE}"])
    );

    let make_map =
        corpus.join("DingoEatingFuzz__hashitalks-2020-map-dispatch__infra__make-map.nomad");
    let o = dispatch(None, &["job", "validate", make_map.to_str().unwrap()], None);
    ok(&o);
    assert!(
        stderr(&o).contains(":8: HCL1: comma after the attribute \"meta_required\""),
        "{}",
        stderr(&o)
    );

    let invalid = corpus.join(
        "angrycub__nomad_example_jobs__applications__wordpress__distributed__build-site.nomad",
    );
    let err = fails(&dispatch(
        None,
        &["job", "validate", invalid.to_str().unwrap()],
        None,
    ));
    assert!(err.contains("invalid HCL2 syntax"), "{err}");
}
