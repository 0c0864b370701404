//! `dispatch run` / `dispatch task` / `dispatch tasks`: Mesosfiles, task lists and Org
//! documents run once on the embedded local runner with real processes.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{
    dispatch, dispatched_id, get_json, make_clip, ok, show, task_runs as runs, TestServer,
};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    common::repo_root().join("tests/fixtures/batch").join(name)
}

fn dispatch_at(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(args)
        .env("DISPATCH_ADDR", url)
        .env_remove("NOMAD_ADDR")
        .output()
        .expect("run dispatch")
}

/// No server: commands that must fail (or finish) before talking to one.
fn offline(args: &[&str]) -> Output {
    dispatch_at("http://127.0.0.1:9", args)
}

fn dispatch_stdin(server: &TestServer, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(args)
        .env("DISPATCH_ADDR", server.url())
        .env_remove("NOMAD_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn fails(o: &Output, code: i32, needle: &str) -> String {
    let all = show(o);
    if code < 0 {
        assert!(o.status.code().is_some_and(|c| c != 0), "{all}");
    } else {
        assert_eq!(o.status.code(), Some(code), "{all}");
    }
    assert!(all.contains(needle), "{needle:?} missing in:\n{all}");
    all
}

#[test]
fn a_four_step_mesosfile_pipeline_makes_a_gif_with_sync() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path());
    let shared = dir.path().join("shared");
    let out_dir = dir.path().join("out");
    let text = std::fs::read_to_string(fixture("pipeline.Mesosfile"))
        .unwrap()
        .replace("@SHARED@", shared.to_str().unwrap())
        .replace("@CLIP@", clip.to_str().unwrap())
        .replace("@OUT@", out_dir.to_str().unwrap());
    let file = dir.path().join("Mesosfile");
    std::fs::write(&file, text).unwrap();
    let out = ok(&dispatch(
        &server,
        &[
            "run",
            "-sync",
            "-kill-after",
            "2mins",
            file.to_str().unwrap(),
        ],
    ));
    let order: Vec<usize> = ["download", "palettegen", "paletteuse", "publish"]
        .iter()
        .map(|s| {
            let needle = format!("\"{s}\" finished");
            out.find(&needle)
                .unwrap_or_else(|| panic!("{needle} missing in:\n{out}"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{out}"
    );
    let gif = std::fs::read(out_dir.join("out.gif")).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    assert!(shared.join("palette.png").exists());
    // A run is a job + dispatch like any other: visible in the API and `job status`.
    let job = get_json(&server, "/v1/job/run-Mesosfile");
    assert_eq!(job["ParameterizedJob"]["Payload"], "forbidden");
    assert_eq!(job["TaskGroups"][0]["MaxRunDuration"], 120_000_000_000i64);
    let status = ok(&dispatch(&server, &["job", "status", "run-Mesosfile"]));
    assert!(status.contains(&dispatched_id(&out)), "{status}");
}

#[test]
fn a_group_entry_launches_its_tasks_together() {
    let server = TestServer::start();
    let out = ok(&dispatch(
        &server,
        &[
            "run",
            "-name",
            "grp",
            fixture("group.Mesosfile").to_str().unwrap(),
        ],
    ));
    let child = dispatched_id(&out);
    let allocs = get_json(
        &server,
        &format!("/v1/job/{}/allocations", child.replace('/', "%2F")),
    );
    let allocs = allocs.as_array().unwrap();
    assert_eq!(allocs.len(), 2, "{allocs:?}");
    let names: Vec<Vec<&str>> = allocs
        .iter()
        .map(|a| {
            let mut v: Vec<&str> = a["TaskRuns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Task"].as_str().unwrap())
                .collect();
            v.sort();
            v
        })
        .collect();
    assert!(names.contains(&vec!["left", "right"]), "{names:?}");
    assert!(names.contains(&vec!["alone"]), "{names:?}");
    let logs = ok(&dispatch(&server, &["logs", &child, "alone"]));
    assert_eq!(logs.trim(), "alone ok");
}

#[test]
fn a_nine_task_list_runs_every_task_and_mesos_flags_are_reported() {
    let server = TestServer::start_with(&["-local-cpus", "8"]);
    let path = fixture("nine.tasklist.json");
    let url = format!("file://{}", path.display());
    let o = dispatch(
        &server,
        &[
            "run",
            "-role",
            "test",
            "-framework-name",
            "batch",
            "-checkpoint",
            &url,
        ],
    );
    let out = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "-framework-name, -role, -checkpoint ignored: the server runs tasks on its embedded local runner"
        ),
        "{err}"
    );
    let child = dispatched_id(&out);
    let finished = runs(&server, &child)
        .iter()
        .filter(|r| r["State"] == "TASK_FINISHED")
        .count();
    assert_eq!(finished, 9, "{out}");
    // Inline JSON works too.
    let inline =
        r#"{"tasks": [{"name": "x", "agent_id": {"value": ""}, "command": {"value": "true"}}]}"#;
    ok(&dispatch(&server, &["run", inline]));
    // `dispatch tasks -all` lists the runs of both.
    let table = ok(&dispatch(&server, &["tasks", "-all", "-job", "run-nine"]));
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("TASK_FINISHED") && table.contains("t9"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 10, "{table}");
    let one = ok(&dispatch(&server, &["tasks", "-all", "-name", "t1"]));
    assert!(one.contains("2.5"), "{one}");
    let running = ok(&dispatch(&server, &["tasks"]));
    assert_eq!(running.trim(), "No tasks");
}

#[test]
fn an_org_document_runs_its_blocks_and_show_lists_them() {
    let server = TestServer::start();
    let path = fixture("two-blocks.org");
    let shown = offline(&["run", "-show", path.to_str().unwrap()]);
    let text = ok(&shown);
    assert!(
        text.contains("shell-step") && text.contains("block-2"),
        "{text}"
    );
    assert!(text.contains("python") && text.contains("0.25"), "{text}");
    let line = text.lines().find(|l| l.contains("shell-step")).unwrap();
    assert!(line.contains("0.5") && line.contains("64"), "{line}");
    let o = dispatch(&server, &["run", path.to_str().unwrap()]);
    let out = ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "#+master: 127.0.0.1:5050 ignored: the server runs tasks on its embedded local runner"
        ),
        "{}",
        show(&o)
    );
    let child = dispatched_id(&out);
    let logs = ok(&dispatch(&server, &["logs", &child, "shell-step"]));
    assert_eq!(logs.trim(), "hello org");
    let logs = ok(&dispatch(&server, &["logs", &child, "block-2"]));
    assert_eq!(logs.trim(), "python True");
    // Each block launched exactly once.
    assert_eq!(runs(&server, &child).len(), 2);
}

#[test]
fn a_redis_block_needs_docker_and_says_so() {
    let server = TestServer::start();
    let o = dispatch(&server, &["run", fixture("redis.org").to_str().unwrap()]);
    let all = fails(&o, 1, "task \"redis-server\": TASK_FAILED");
    assert!(all.contains("container image \"redis\""), "{all}");
    assert!(all.contains("command: redis-server --version"), "{all}");
}

#[test]
fn a_failed_task_is_reported_with_its_state_and_command() {
    let server = TestServer::start();
    let o = dispatch(
        &server,
        &["run", fixture("failing.Mesosfile").to_str().unwrap()],
    );
    let all = fails(&o, -1, "task \"broken\": TASK_FAILED: exit code 3");
    assert!(all.contains("command: echo about to fail; exit 3"), "{all}");
}

/// Why it failed, where the user looks: the last lines of the failed task's stderr under it.
#[test]
fn a_failed_task_shows_the_end_of_its_stderr() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Mesosfile");
    std::fs::write(
        &file,
        "- name: convert\n  command:\n    value: \"echo working; echo 'convert: error: ffmpeg not found on PATH' >&2; exit 1\"\n",
    )
    .unwrap();
    let o = dispatch(&server, &["run", file.to_str().unwrap()]);
    let all = fails(&o, 1, "task \"convert\": TASK_FAILED: exit code 1");
    assert!(
        all.contains(
            "    stderr (last 1 line(s)):\n      convert: error: ffmpeg not found on PATH"
        ),
        "{all}"
    );
}

#[test]
fn retry_relaunches_a_failed_task_with_new_ids() {
    let server = TestServer::start();
    let o = dispatch(
        &server,
        &[
            "run",
            "-retry",
            "1",
            fixture("failing.Mesosfile").to_str().unwrap(),
        ],
    );
    let all = fails(&o, -1, "after 2 attempts");
    let child = dispatched_id(&String::from_utf8_lossy(&o.stdout));
    let broken: Vec<Value> = runs(&server, &child)
        .into_iter()
        .filter(|r| r["Task"] == "broken")
        .collect();
    assert_eq!(broken.len(), 2, "{all}");
    assert_ne!(broken[0]["TaskID"], broken[1]["TaskID"]);
}

#[test]
fn a_task_too_large_is_reported_without_blocking_the_others() {
    let server = TestServer::start_with(&["-local-cpus", "1"]);
    let o = dispatch(
        &server,
        &["run", fixture("too-large.org").to_str().unwrap()],
    );
    let all = fails(&o, 1, "task \"huge\": not launched");
    assert!(all.contains("needs cpus=4"), "{all}");
    assert!(all.contains("\"small\" finished"), "{all}");
}

#[test]
fn dispatch_task_output_round_trips_through_run_stdin() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("vol");
    let vol = format!("{}:data:rw", host.display());
    let yaml = ok(&offline(&[
        "task",
        "-name",
        "rt",
        "-e",
        "WHO=world",
        "-v",
        &vol,
        "-cpus",
        "0.2",
        "-mem",
        "32",
        "--",
        "echo hello $WHO > data/greeting",
    ]));
    assert!(yaml.starts_with("- name: rt"), "{yaml}");
    ok(&dispatch_stdin(
        &server,
        &["run", "-name", "rt", "-"],
        yaml.as_bytes(),
    ));
    assert_eq!(
        std::fs::read_to_string(host.join("greeting")).unwrap(),
        "hello world\n"
    );
    let json = ok(&offline(&[
        "task",
        "-format",
        "json",
        "-name",
        "j",
        "--",
        "/bin/echo",
        "a b",
    ]));
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["command"]["shell"], false);
    let o = dispatch_stdin(&server, &["run", "-"], json.as_bytes());
    let child = dispatched_id(&ok(&o));
    let logs = ok(&dispatch(&server, &["logs", &child, "j"]));
    assert_eq!(logs.trim(), "a b");
}

#[test]
fn bad_input_is_a_usage_error_with_the_reason() {
    let bad_yaml = offline(&["run", fixture("bad.Mesosfile").to_str().unwrap()]);
    fails(&bad_yaml, 1, "invalid YAML");
    let bad_json = offline(&[
        "run",
        fixture("bad.tasklist.json").to_str().unwrap(),
        "-format",
        "tasklist",
    ]);
    fails(&bad_json, 1, "invalid task list JSON");
    let inline = offline(&["run", "{\"tasks\": [}"]);
    fails(&inline, 1, "Error");
    let missing = offline(&["run", "file:///nonexistent/tasks.json"]);
    fails(&missing, 1, "Error reading /nonexistent/tasks.json");
    let fmt = offline(&[
        "run",
        "-format",
        "xml",
        fixture("group.Mesosfile").to_str().unwrap(),
    ]);
    fails(&fmt, 1, "unknown format \"xml\"");
    let field = offline(&["run", fixture("unknown-field.Mesosfile").to_str().unwrap()]);
    fails(&field, 1, "colour");
    let restart = offline(&[
        "run",
        "-restart",
        "-retry",
        "2",
        fixture("group.Mesosfile").to_str().unwrap(),
    ]);
    fails(&restart, 1, "cannot be used with");
    let dur = offline(&[
        "run",
        "-kill-after",
        "soon",
        fixture("group.Mesosfile").to_str().unwrap(),
    ]);
    fails(&dur, 1, "Invalid -kill-after");
    let lang = offline(&["run", "-format", "org", "-"]);
    fails(&lang, 1, "no #+BEGIN_SRC blocks");
}

#[test]
fn restart_keeps_relaunching_a_failing_task_until_it_finishes() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let file = dir.path().join("Mesosfile");
    // Fails twice, then succeeds: more failures than the default -retry 0 allows.
    std::fs::write(
        &file,
        format!(
            "- name: flaky\n  command:\n    value: 'echo x >> {c}; test $(wc -l < {c}) -ge 3'\n",
            c = count.display()
        ),
    )
    .unwrap();
    let out = ok(&dispatch(
        &server,
        &["run", "-restart", file.to_str().unwrap()],
    ));
    let child = dispatched_id(&out);
    let states: Vec<String> = runs(&server, &child)
        .iter()
        .map(|r| r["State"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["TASK_FAILED", "TASK_FAILED", "TASK_FINISHED"],
        "{out}"
    );
}

/// `dispatch tasks` lists running tasks by default (one `GET /v1/allocations?active=true`),
/// with the resources each asked for; `/v1/allocations` filters by job and allocation ID.
#[test]
fn tasks_lists_running_tasks_from_one_allocation_listing() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Mesosfile");
    std::fs::write(
        &file,
        "- name: sleepy\n  command:\n    value: sleep 60\n  resources: {cpus: 0.25, mem: 32, disk: 5}\n\
         - name: quick\n  command:\n    value: 'true'\n",
    )
    .unwrap();
    let out = ok(&dispatch(
        &server,
        &["run", "-detach", "-name", "naps", file.to_str().unwrap()],
    ));
    let child = dispatched_id(&out);
    common::wait_until(20, "sleepy running and quick finished", || {
        let r = runs(&server, &child);
        r.iter()
            .any(|r| r["Task"] == "sleepy" && r["State"] == "TASK_RUNNING")
            && r.iter()
                .any(|r| r["Task"] == "quick" && r["State"] == "TASK_FINISHED")
    });

    let table = ok(&dispatch(&server, &["tasks"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &cols[1..8],
        ["sleepy", &child, "TASK_RUNNING", "0.25", "32", "0", "5"],
        "{table}"
    );
    let all = ok(&dispatch(&server, &["tasks", "-all", "-job", "naps"]));
    assert!(
        all.contains("quick") && all.contains("TASK_FINISHED"),
        "{all}"
    );

    let active = get_json(&server, "/v1/allocations?active=true");
    let active = active.as_array().unwrap();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["JobID"], child.as_str());
    let id = active[0]["ID"].as_str().unwrap();
    let by_prefix = get_json(&server, &format!("/v1/allocations?prefix={}", &id[..8]));
    assert!(
        by_prefix.as_array().unwrap().iter().any(|a| a["ID"] == id),
        "{by_prefix}"
    );
    assert_eq!(
        get_json(&server, "/v1/allocations?job=naps")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(get_json(&server, "/v1/allocations?job=other")
        .as_array()
        .unwrap()
        .is_empty());
    let o = dispatch(&server, &["tasks", "-state", "bogus-state"]);
    assert_eq!(ok(&o).trim(), "No tasks");

    ok(&dispatch(&server, &["job", "stop", &child]));
    common::wait_until(20, "nothing running", || {
        ok(&dispatch(&server, &["tasks"])).trim() == "No tasks"
    });
}
