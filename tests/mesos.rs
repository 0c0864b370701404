//! Dispatch as a Mesos framework, end to end: the real `dispatch` server process talks the v1
//! scheduler API to the strict master double (`crates/mesos-double`), driven through the
//! `dispatch` CLI and the HTTP API as a user would.

mod common;

#[path = "common/certs.rs"]
mod certs;
#[path = "common/mesos.rs"]
mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    dispatch, dispatched_id, get_json, get_text, ok, repo_root, show, status_of, task_runs,
    wait_until, TestServer,
};
use harness::{fast_config, master, server, Master};
use mesos_double::{Config, TaskBehavior};

fn register(server: &TestServer, file: &str) {
    let path = format!("{}/{file}", repo_root().display());
    ok(&dispatch(server, &["job", "run", &path]));
}

/// Every status update the double sent with a uuid was acknowledged, with the exact uuid.
fn assert_every_update_acked(m: &Master) {
    // Acknowledgements follow the commit of each update: wait until none is outstanding.
    wait_until(20, "every update acknowledged", || m.unacked().is_empty());
    let acks = m.acks();
    for e in m.events() {
        if e["type"] == "UPDATE" {
            if let Some(uuid) = e["update"]["status"]["uuid"].as_str() {
                assert!(
                    acks.iter().any(|a| a.uuid == uuid),
                    "update not acknowledged: {e}"
                );
            }
        }
    }
    assert!(acks.iter().all(|a| a.matched), "stray acks: {acks:?}");
}

fn transcode_and_gif(encoding: &str) {
    let m = master(fast_config());
    let s = server(&m.url(), encoding, &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 8.0, 16384.0, 100_000.0);
    register(&s, "jobs/transcode.hcl");
    register(&s, "jobs/gif.hcl");

    let out = ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-meta",
            "input=http://media.example/in.mov",
            "-meta",
            "profile=large",
            "transcode",
        ],
    ));
    let transcode = dispatched_id(&out);
    let out = ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-meta",
            "input=http://media.example/in.mov",
            "gif",
        ],
    ));
    let gif = dispatched_id(&out);
    assert_eq!(status_of(&s, &transcode), "dead", "{}", s.log());
    assert_eq!(status_of(&s, &gif), "dead");
    for child in [&transcode, &gif] {
        let runs = task_runs(&s, child);
        assert!(!runs.is_empty());
        for r in &runs {
            assert_eq!(r["State"], "TASK_FINISHED", "{child}: {r}");
        }
    }

    let launched = m.launched_tasks();
    let tc = launched
        .iter()
        .find(|t| t.task_id.starts_with("transcode.dispatch-"))
        .expect("transcode launched");
    let info = &tc.task_info;
    assert_eq!(info["agent_id"]["value"], "agent-1");
    assert_eq!(info["command"]["shell"], false);
    let args: Vec<&str> = info["command"]["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        ["transcode.sh", "http://media.example/in.mov", "large"]
    );
    // Resources carved from the offer keep its identity (MULTI_ROLE allocation_info).
    for r in info["resources"].as_array().unwrap() {
        assert_eq!(r["allocation_info"]["role"], "*", "{r}");
    }
    // The GIF pipeline ran its four steps one after another, each launched once.
    let steps: Vec<&str> = launched
        .iter()
        .filter(|t| t.task_id.starts_with("gif.dispatch-"))
        .map(|t| t.task_info["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 4, "{steps:?}");
    // The steps share alloc/ through one directory on the agent.
    let shared: Vec<String> = launched
        .iter()
        .filter(|t| t.task_id.starts_with("gif.dispatch-"))
        .map(|t| {
            let v = &t.task_info["container"]["volumes"][0];
            assert_eq!(v["container_path"], "alloc", "{}", t.task_info);
            v["host_path"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(shared[0].starts_with("/tmp/dispatch-allocs/"), "{shared:?}");
    assert!(shared.iter().all(|h| *h == shared[0]), "{shared:?}");
    assert!(launched
        .iter()
        .filter(|t| t.task_id.starts_with("gif.dispatch-"))
        .all(|t| t.agent_id == "agent-1"));
    for (step, name) in steps
        .iter()
        .zip(["download", "palettegen", "paletteuse", "publish"])
    {
        assert!(step.ends_with(&format!("/{name}")), "{steps:?}");
    }
    assert_every_update_acked(&m);
    // Idle again: offers are suppressed.
    wait_until(10, "SUPPRESS when idle", || m.suppressed());
    assert!(m.violations().is_empty(), "{:?}", m.violations());

    // What the framework told Mesos about itself.
    let fi = m.framework_info().unwrap();
    assert_eq!(fi["name"], "dispatch");
    assert_eq!(fi["failover_timeout"], 604800.0);
    assert_eq!(fi["checkpoint"], true);
    assert_eq!(fi["roles"], serde_json::json!(["*"]));
    assert_eq!(fi["webui_url"], s.url());
    let caps: Vec<&str> = fi["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    for cap in ["MULTI_ROLE", "PARTITION_AWARE", "TASK_KILLING_STATE"] {
        assert!(caps.contains(&cap), "{caps:?}");
    }
    let ct = if encoding == "json" {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    for c in m.calls() {
        assert_eq!(c.headers.get("content-type").map(String::as_str), Some(ct));
    }
}

#[test]
fn transcode_and_gif_run_on_mesos_over_json() {
    transcode_and_gif("json");
}

#[test]
fn transcode_and_gif_run_on_mesos_over_protobuf() {
    transcode_and_gif("protobuf");
}

const PAIR_JOB: &str = r#"job "pair" {
  type = "batch"
  parameterized {
    payload = "optional"
  }
  group "g" {
    restart {
      attempts = 0
    }
    reschedule {
      attempts = 0
    }
    task "left" {
      driver = "raw_exec"
      dispatch_payload {
        file = "input.txt"
      }
      config {
        command = "/bin/sh"
        args    = ["-c", "cat local/input.txt"]
      }
      resources {
        cpu    = 500
        memory = 64
      }
    }
    task "right" {
      driver = "raw_exec"
      config {
        command = "/bin/echo"
        args    = ["right side"]
      }
      resources {
        cpu    = 500
        memory = 64
      }
    }
  }
}
"#;

/// A group with two tasks is one LAUNCH_GROUP (DEFAULT executor, shared alloc/); its payload
/// reaches the sandbox through a fetcher URI served by our API; logs and fs read the
/// sandbox through the agent's files API.
#[test]
fn task_group_payload_logs_and_fs_on_mesos() {
    let m = master(fast_config());
    m.set_task_behavior(
        "pair.",
        TaskBehavior::Finish {
            after: Duration::from_millis(1500),
        },
    );
    let mut s = server(&m.url(), "protobuf", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("pair.hcl");
    std::fs::write(&job, PAIR_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let payload = dir.path().join("payload.txt");
    std::fs::write(&payload, "hello from the payload\n").unwrap();
    let child = dispatched_id(&ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-detach",
            "pair",
            payload.to_str().unwrap(),
        ],
    )));

    wait_until(20, "the group launched", || m.launched_tasks().len() == 2);
    let launched = m.launched_tasks();
    assert!(launched.iter().all(|t| t.group), "{launched:?}");
    let exec = launched[0].executor_id.clone().unwrap();
    assert!(exec.ends_with(".g.0.executor"), "{exec}");
    assert_eq!(launched[1].executor_id.as_deref(), Some(exec.as_str()));
    // Nomad's alloc/ is the executor's directory, mounted into every task of the group.
    for t in &launched {
        let v = &t.task_info["container"]["volumes"][0];
        assert_eq!(v["container_path"], "alloc", "{}", t.task_info);
        assert_eq!(v["source"]["sandbox_path"]["type"], "PARENT");
    }
    // The payload travels as a fetcher URI on our API, and the API serves its bytes.
    let left = launched
        .iter()
        .find(|t| t.task_info["name"].as_str().unwrap().ends_with("/left"))
        .unwrap();
    let uri = left.task_info["command"]["uris"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["output_file"] == "local/input.txt")
        .unwrap_or_else(|| panic!("no payload URI in {}", left.task_info));
    let url = uri["value"].as_str().unwrap();
    assert!(url.starts_with(&s.url()), "{url}");
    let fetched = Command::new("curl").args(["-fsS", url]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&fetched.stdout),
        "hello from the payload\n",
        "{}",
        show(&fetched)
    );
    assert!(left.task_info.get("data").is_none());

    // What the task printed, through the agent's files API.
    m.append_sandbox_file(&left.task_id, "stdout", b"hello from the payload\n");
    let out = ok(&dispatch(&s, &["logs", &child, "left"]));
    assert!(out.contains("hello from the payload"), "{out}");
    let listing = ok(&dispatch(&s, &["fs", &child, "left"]));
    assert!(
        listing.contains("stdout") && listing.contains("stderr"),
        "{listing}"
    );

    wait_until(20, "the dispatch complete", || {
        status_of(&s, &child) == "dead"
    });
    for r in task_runs(&s, &child) {
        assert_eq!(r["State"], "TASK_FINISHED", "{r}");
    }
    // After the group, the sandbox can still be read; the payload URL is gone (task over).
    let out = ok(&dispatch(&s, &["logs", &child, "left"]));
    assert!(out.contains("hello from the payload"), "{out}");
    let gone = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&gone.stdout), "404");
    assert_every_update_acked(&m);

    // The agent's address is stored: after a restart the sandbox is readable before the
    // agent offers again (here it never does: another framework holds its resources).
    m.withhold_offers("agent-1");
    s.kill9();
    wait_until(20, "the master to see the framework go", || {
        !m.is_subscribed()
    });
    s.restart();
    wait_until(20, "resubscription", || m.is_subscribed());
    let out = ok(&dispatch(&s, &["logs", &child, "left"]));
    assert!(out.contains("hello from the payload"), "{out}");
}

#[test]
fn framework_id_is_kept_across_restart_and_tasks_are_reconciled_not_relaunched() {
    let m = master(fast_config());
    let mut s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    let first_id = m.framework_id().unwrap();
    m.set_task_behavior("sleeper.", TaskBehavior::RunUntilKilled);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("sleeper.hcl");
    std::fs::write(
        &job,
        r#"job "sleeper" {
  type = "batch"
  parameterized {}
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 500
        memory = 64
      }
    }
  }
}
"#,
    )
    .unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(
        &s,
        &["job", "dispatch", "-detach", "sleeper"],
    )));
    wait_until(20, "the task running", || {
        task_runs(&s, &child)
            .iter()
            .any(|r| r["State"] == "TASK_RUNNING")
    });
    let task_id = m.launched_tasks()[0].task_id.clone();
    let control = dispatched_id(&ok(&dispatch(
        &s,
        &["job", "dispatch", "-detach", "sleeper"],
    )));
    wait_until(20, "the control task running", || {
        launched_of(&m, &control).len() == 1
    });

    s.kill9();
    wait_until(20, "the master to see the framework go", || {
        !m.is_subscribed()
    });
    s.restart();
    wait_until(20, "resubscription", || m.is_subscribed());
    assert_eq!(m.framework_id().unwrap(), first_id);
    let subscribes = m.accepted_calls("SUBSCRIBE");
    let last = subscribes.last().unwrap();
    assert_eq!(last["framework_id"]["value"], first_id);
    assert_eq!(last["subscribe"]["framework_info"]["id"]["value"], first_id);
    // Reconciliation after the resubscribe asks about the running task by ID.
    wait_until(20, "explicit reconciliation", || {
        m.accepted_calls("RECONCILE").iter().any(|c| {
            c["reconcile"]["tasks"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["task_id"]["value"] == task_id))
        })
    });
    let control_task = launched_of(&m, &control)[0].clone();
    relaunch_control(&m, &control, &control_task);
    assert_eq!(
        launched_of(&m, &child),
        std::slice::from_ref(&task_id),
        "relaunched after restart"
    );
    assert_eq!(status_of(&s, &child), "running");

    // Stopping the job kills the task on Mesos, with the task's kill timeout as grace.
    ok(&dispatch(&s, &["job", "stop", &child]));
    wait_until(20, "KILL", || m.kills().contains(&task_id));
    wait_until(20, "TASK_KILLED recorded", || {
        task_runs(&s, &child)
            .iter()
            .any(|r| r["State"] == "TASK_KILLED")
    });
    assert_every_update_acked(&m);
}

#[test]
fn failover_to_a_second_master_resubscribes_with_the_same_id() {
    let m1 = master(fast_config());
    let m2 = master(fast_config());
    let masters = format!("{},{}", m1.addr(), m2.addr());
    let s = server(&masters, "json", &[]);
    wait_until(20, "SUBSCRIBED on the first master", || m1.is_subscribed());
    let id = m1.framework_id().unwrap();
    m1.fail_over(&m2.addr().to_string());
    wait_until(30, "SUBSCRIBED on the new leader", || m2.is_subscribed());
    assert_eq!(m2.framework_id().unwrap(), id);
    // Work dispatched now runs on the new leader's agents.
    m2.offer("agent-9", 2.0, 2048.0, 4096.0);
    register(&s, "jobs/transcode.hcl");
    let out = ok(&dispatch(
        &s,
        &["job", "dispatch", "-meta", "input=/tmp/x.mov", "transcode"],
    ));
    let child = dispatched_id(&out);
    assert_eq!(status_of(&s, &child), "dead");
    assert_eq!(m2.launched_tasks().len(), 1);
    assert!(
        s.log().contains("following the master's redirect")
            || s.log().contains(&m2.addr().to_string())
    );
}

#[test]
fn watchdog_reconnects_when_heartbeats_stop() {
    let m = master(fast_config());
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 2.0, 2048.0, 4096.0);
    wait_until(20, "SUPPRESS while idle", || m.suppressed());
    let first_stream = m.stream_id().unwrap();
    m.set_heartbeats(false);
    // 5 missed 1 s heartbeats, then a new subscription.
    wait_until(30, "a new stream", || {
        m.stream_id().is_some_and(|id| id != first_stream) && m.is_subscribed()
    });
    m.set_heartbeats(true);
    assert!(s.log().contains("heartbeats missed"), "{}", s.log());
    // Resubscribed suppressed (nothing was pending): new work still revives offers.
    let last = m.accepted_calls("SUBSCRIBE").last().cloned().unwrap();
    assert_eq!(
        last["subscribe"]["suppressed_roles"],
        serde_json::json!(["*"])
    );
    register(&s, "jobs/transcode.hcl");
    let child = dispatched_id(&ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "input=/tmp/in.mov",
            "transcode",
        ],
    )));
    wait_until(30, "the dispatch to run", || {
        status_of(&s, &child) == "dead"
    });
}

#[test]
fn unreachable_master_gives_a_clear_error_and_dispatches_still_queue() {
    // Bound but not listening: connections to it are refused, and nobody else can take it.
    let nobody = common::closed_port();
    let s = server(&nobody.addr.to_string(), "json", &[]);
    register(&s, "jobs/transcode.hcl");
    let out = ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "input=/tmp/x.mov",
            "transcode",
        ],
    ));
    let child = dispatched_id(&out);
    assert_eq!(status_of(&s, &child), "pending");
    wait_until(20, "the error in the log", || {
        s.log()
            .contains("cannot subscribe: no master answered as leader")
    });
    let conn = &get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"];
    assert!(
        conn["State"] == "disconnected" || conn["State"] == "connecting",
        "{conn}"
    );
    assert!(
        conn["LastError"]
            .as_str()
            .is_some_and(|e| e.contains("no master answered as leader")),
        "{conn}"
    );
    assert!(conn["Leader"].is_null(), "{conn}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Mesosfile");
    std::fs::write(&file, "- name: hi\n  command:\n    value: echo hi\n").unwrap();
    let o = dispatch(&s, &["run", "-detach", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Note: the server is not subscribed to Mesos (cannot subscribe: no master answered as leader"),
        "{err}"
    );
    let text = get_text(&s, "/metrics");
    assert!(
        text.lines()
            .any(|l| l.starts_with("dispatch_cluster_connected{backend=\"mesos\"} 0")),
        "{text}"
    );
    // A long-running server keeps retrying, and says the same cause once, not per attempt.
    wait_until(30, "several attempts", || {
        get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"]["Attempts"]
            .as_u64()
            .is_some_and(|n| n >= 4)
    });
    let log = s.log();
    let said = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("cannot subscribe"))
        .count();
    assert_eq!(said, 1, "{log}");
}

/// `dispatch run -master` gives up the way mesos-batch does: one line naming the master and
/// the cause, exit 1; at once for what retrying cannot fix, after -connect-timeout otherwise.
/// A master's web UI address as copied from a browser names the master.
#[test]
fn a_one_off_run_gives_up_cleanly() {
    let run = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dispatch"));
        c.args(args)
            .env_remove("DISPATCH_ADDR")
            .env_remove("NOMAD_ADDR");
        common::output_within(&mut c, 30)
    };
    let tasks = r#"{"tasks": [{"name": "hello", "task_id": {"value": "x"}, "agent_id": {"value": ""},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
        "command": {"value": "echo hello"}}]}"#;
    // Nothing listening: waits (says so once), then gives up.
    let nobody = common::closed_port();
    let o = run(&[
        "run",
        "-master",
        &nobody.addr.to_string(),
        "-connect-timeout",
        "2s",
        tasks,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(
        out.matches("Waiting for a Mesos master at").count(),
        1,
        "{}",
        show(&o)
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "Error running on the Mesos master at http://{}: ",
            nobody.addr
        )) && last.contains("Connection refused")
            && last.ends_with("(gave up after 2s, -connect-timeout)"),
        "{}",
        show(&o)
    );
    assert!(err.matches("WARN").count() <= 1, "{}", show(&o));
    assert!(
        !out.contains("Dispatched Job ID"),
        "nothing submitted: {}",
        show(&o)
    );

    // Not a Mesos master (a Dispatch server): at once, whatever the timeout.
    let not_mesos = TestServer::start();
    let o = run(&["run", "-master", &not_mesos.url(), tasks]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "Error running on the Mesos master at {}: {} is not a Mesos master: POST /api/v1/scheduler answered 404",
            not_mesos.url(),
            not_mesos.url()
        )) && !last.contains("gave up after"),
        "{}",
        show(&o)
    );

    // Refused credentials: at once.
    let m = master(Config {
        credentials: Some(("dispatch".into(), "s3cret".into())),
        ..fast_config()
    });
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let addr = m.addr().to_string();
    let o = run(&[
        "run",
        "-master",
        &addr,
        "-principal",
        "dispatch",
        "-secret",
        "wrong",
        tasks,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("http://{addr} refused our credentials (401)"))
            && !last.contains("gave up after"),
        "{}",
        show(&o)
    );
    assert!(m.launched_tasks().is_empty());

    // The web UI address from a browser works.
    let m = master(fast_config());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let ui = format!("http://{}/#/", m.addr());
    let o = run(&["run", "-master", &ui, "-content-type", "json", tasks]);
    let out = ok(&o);
    assert!(
        out.contains(&format!("on http://{} (-master)", m.addr())),
        "{out}"
    );
    assert_eq!(m.launched_tasks().len(), 1);
}

#[test]
fn bad_mesos_flags_are_usage_errors() {
    for (args, want) in [
        (
            vec!["-mesos-master", "zk://z:2181"],
            "is not a ZooKeeper URL; expected zk://host:port,host:port/path",
        ),
        (
            vec!["-mesos-master", "m:5050", "-mesos-capabilities", "TELEPORT"],
            "unknown capability \"TELEPORT\"",
        ),
        (
            vec!["-mesos-master", "m:5050", "-mesos-content-type", "xml"],
            "expected json or protobuf",
        ),
        (
            vec!["-mesos-master", "m:5050", "-mesos-secret", "s"],
            "-mesos-secret: needs a principal",
        ),
        (
            vec!["-mesos-master", "m:5050", "-mesos-role", "a b"],
            "not a valid role name",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut argv = vec!["server", "-data-dir", dir.path().to_str().unwrap()];
        argv.extend(args);
        let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .args(&argv)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{want}: {}",
            show(&out)
        );
    }
}

const STICKY_JOB: &str = r#"job "cache" {
  type = "batch"
  parameterized {}
  group "g" {
    ephemeral_disk {
      sticky = true
      size   = 500
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "date >> data/runs.log"]
      }
      resources {
        cpu    = 500
        memory = 64
      }
    }
  }
}
"#;

fn operation_types(m: &Master) -> Vec<String> {
    m.accepted_calls("ACCEPT")
        .iter()
        .flat_map(|c| {
            c["accept"]["operations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|op| op["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A sticky ephemeral disk is a persistent volume on a dynamic reservation: RESERVE + CREATE
/// once, every later dispatch runs on the same volume, and purging the job destroys it
/// (DESTROY + UNRESERVE).
#[test]
fn sticky_disk_is_a_persistent_volume_reserved_once_and_released_on_purge() {
    let m = master(fast_config());
    let s = server(
        &m.url(),
        "protobuf",
        &["-mesos-role", "batch", "-mesos-principal", "dispatch"],
    );
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("cache.hcl");
    std::fs::write(&job, STICKY_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));

    let first = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "cache"])));
    assert_eq!(status_of(&s, &first), "dead", "{}", s.log());
    let volume = "dispatch.cache.g.volume";
    assert_eq!(m.volumes("agent-1"), vec![volume.to_string()]);
    assert_eq!(
        operation_types(&m),
        ["RESERVE", "CREATE", "LAUNCH"],
        "{:?}",
        m.rejected_operations()
    );
    let reserved = m.reserved("agent-1");
    assert!(
        reserved
            .iter()
            .any(|r| r.to_string().contains("\"principal\":\"dispatch\"")
                && r.to_string().contains("\"batch\"")),
        "{reserved:?}"
    );

    let second = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "cache"])));
    assert_eq!(status_of(&s, &second), "dead", "{}", s.log());
    let launched = m.launched_tasks();
    assert_eq!(launched.len(), 2);
    for t in &launched {
        let has_volume = t.task_info["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["disk"]["persistence"]["id"] == volume);
        assert!(has_volume, "{}", t.task_info);
    }
    // Still one reservation and one volume: the second run reused them.
    assert_eq!(
        operation_types(&m),
        ["RESERVE", "CREATE", "LAUNCH", "LAUNCH"]
    );

    ok(&dispatch(&s, &["job", "stop", "-purge", "cache"]));
    wait_until(20, "DESTROY + UNRESERVE", || {
        m.volumes("agent-1").is_empty()
    });
    wait_until(20, "the reservation released", || {
        m.reserved("agent-1").is_empty()
    });
    let ops = operation_types(&m);
    assert_eq!(&ops[ops.len() - 2..], ["DESTROY", "UNRESERVE"], "{ops:?}");
    assert!(
        m.rejected_operations().is_empty(),
        "{:?}",
        m.rejected_operations()
    );
}

fn batch_fixture(name: &str) -> String {
    repo_root()
        .join("tests/fixtures/batch")
        .join(name)
        .display()
        .to_string()
}

/// `dispatch run` on Mesos: a mesos-batch task list packs many tasks into each offer; a
/// Mesosfile group entry is one LAUNCH_GROUP, its lone entry a plain LAUNCH.
#[test]
fn task_list_and_group_entry_run_on_mesos() {
    let m = master(fast_config());
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 16.0, 16384.0, 100_000.0);
    let url = format!("file://{}", batch_fixture("nine.tasklist.json"));
    let o = dispatch(&s, &["run", "-role", "test", "-content-type", "json", &url]);
    let out = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("-role \"test\" differs from the server's framework ([\"*\"])"),
        "{err}"
    );
    assert!(!err.contains("-content-type"), "{err}");
    let child = dispatched_id(&out);
    let runs = task_runs(&s, &child);
    assert_eq!(runs.len(), 9, "{out}");
    assert!(
        runs.iter().all(|r| r["State"] == "TASK_FINISHED"),
        "{runs:?}"
    );
    let accepts = m.accepted_calls("ACCEPT");
    let most = accepts
        .iter()
        .map(|c| {
            c["accept"]["operations"][0]["launch"]["task_infos"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .max()
        .unwrap_or(0);
    assert!(most > 1, "every ACCEPT launched one task: {accepts:?}");
    assert_eq!(m.launched_tasks().len(), 9);

    let out = ok(&dispatch(
        &s,
        &["run", "-name", "grp", &batch_fixture("group.Mesosfile")],
    ));
    let child = dispatched_id(&out);
    let runs = task_runs(&s, &child);
    assert_eq!(runs.len(), 3, "{runs:?}");
    let launched: Vec<_> = m
        .launched_tasks()
        .into_iter()
        .filter(|t| t.task_id.contains("grp"))
        .collect();
    let grouped: Vec<&str> = launched
        .iter()
        .filter(|t| t.group)
        .map(|t| t.task_info["name"].as_str().unwrap())
        .collect();
    assert_eq!(grouped.len(), 2, "{launched:?}");
    assert!(
        grouped.iter().any(|n| n.ends_with("/left"))
            && grouped.iter().any(|n| n.ends_with("/right"))
    );
    let alone = launched
        .iter()
        .find(|t| t.task_info["name"].as_str().unwrap().ends_with("/alone"))
        .unwrap();
    assert!(!alone.group);
    assert_every_update_acked(&m);
}

/// `-kill-after` on Mesos: the framework KILLs a task still running past the deadline and
/// the run fails, naming the task and its state.
#[test]
fn kill_after_kills_a_task_on_mesos() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Mesosfile");
    std::fs::write(&file, "- name: sleepy\n  command:\n    value: sleep 600\n").unwrap();
    let o = dispatch(&s, &["run", "-kill-after", "1s", file.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    let all = show(&o);
    assert!(
        all.contains("sleepy") && all.contains("TASK_KILLED"),
        "{all}"
    );
    // The task runs until killed: TASK_KILLED after one KILL is the limit at work.
    assert_eq!(m.kills().len(), 1, "{:?}", m.kills());
}

const NO_RETRY_JOB: &str = r#"job "hold" {
  type = "batch"
  parameterized {}
  group "g" {
    restart {
      attempts = 0
    }
    reschedule {
      attempts = 0
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#;

fn run_states(s: &TestServer, child: &str) -> Vec<String> {
    task_runs(s, child)
        .iter()
        .map(|r| r["State"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Task IDs launched for one dispatched child, in launch order.
fn launched_of(m: &Master, child: &str) -> Vec<String> {
    let prefix = format!("{}.", child.replace('/', "."));
    m.launched_tasks()
        .into_iter()
        .map(|t| t.task_id)
        .filter(|id| id.starts_with(&prefix))
        .collect()
}

/// The positive event behind "nothing was relaunched": the running task `control` (of
/// `control_child`) is lost to the infrastructure (TASK_GONE) and waits for its
/// relaunch. That relaunch comes after the scheduler's shortest retry delay and needs an
/// offer, which the scheduler revives for: a relaunch decided before the GONE would have
/// been launched by then (older dispatches launch first).
fn relaunch_control(m: &Master, control_child: &str, control: &str) {
    let before = launched_of(m, control_child).len();
    m.send_master_update(
        control,
        "TASK_GONE",
        "REASON_CONTAINER_PREEMPTED",
        "Container preempted",
    );
    wait_until(20, "the control task's relaunch", || {
        launched_of(m, control_child).len() > before
    });
}

/// UNREACHABLE waits for the agent; GONE/DROPPED relaunch under a new task ID without using
/// the job's retry budget; ERROR and FAILED end the dispatch when no retry is left.
#[test]
fn task_states_map_to_retry_decisions() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("hold.hcl");
    std::fs::write(&job, NO_RETRY_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));

    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "hold"])));
    wait_until(20, "running", || run_states(&s, &child) == ["TASK_RUNNING"]);
    let control = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "hold"])));
    wait_until(20, "the control running", || {
        run_states(&s, &control) == ["TASK_RUNNING"]
    });
    let first = launched_of(&m, &child)[0].clone();
    m.send_master_update(
        &first,
        "TASK_UNREACHABLE",
        "REASON_AGENT_UNREACHABLE",
        "Agent is unreachable",
    );
    wait_until(20, "unreachable recorded", || {
        run_states(&s, &child) == ["TASK_UNREACHABLE"]
    });
    let control_task = launched_of(&m, &control)[0].clone();
    relaunch_control(&m, &control, &control_task);
    assert_eq!(
        launched_of(&m, &child),
        std::slice::from_ref(&first),
        "UNREACHABLE must wait, not relaunch"
    );
    m.send_update(
        &first,
        "TASK_RUNNING",
        Some("agent reregistered"),
        Some("REASON_AGENT_REREGISTERED"),
    );
    wait_until(20, "running again", || {
        run_states(&s, &child) == ["TASK_RUNNING"]
    });

    m.send_master_update(
        &first,
        "TASK_GONE",
        "REASON_CONTAINER_PREEMPTED",
        "Container preempted",
    );
    wait_until(20, "a relaunch after GONE", || {
        launched_of(&m, &child).len() == 2
    });
    let second = launched_of(&m, &child)[1].clone();
    assert!(
        first.ends_with(".1") && second.ends_with(".2"),
        "{first} {second}"
    );
    // The replaced task shows up alive again: it is not ours any more, so it is killed.
    m.send_update(
        &first,
        "TASK_RUNNING",
        Some("back"),
        Some("REASON_AGENT_REREGISTERED"),
    );
    wait_until(20, "the stray killed", || m.kills().contains(&first));
    m.finish_task(&second);
    wait_until(20, "complete", || status_of(&s, &child) == "dead");
    assert_eq!(run_states(&s, &child), ["TASK_GONE", "TASK_FINISHED"]);
    let summary = get_json(&s, "/v1/job/hold/summary");
    assert_eq!(summary["Children"]["Dead"], 1);

    // TASK_ERROR: the spec is wrong; no retry: the dispatch fails at once (a dispatch that
    // ended launches nothing more).
    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "hold"])));
    wait_until(20, "launched", || launched_of(&m, &child).len() == 1);
    let third = launched_of(&m, &child)[0].clone();
    m.send_master_update(
        &third,
        "TASK_ERROR",
        "REASON_TASK_INVALID",
        "Task uses more resources than offered",
    );
    wait_until(20, "failed", || {
        let c = get_json(&s, &format!("/v1/job/{}", child.replace('/', "%2F")));
        c["DispatchStatus"] == "failed"
            && c["StatusDescription"]
                .as_str()
                .is_some_and(|d| d.contains("TASK_ERROR"))
    });
    let control_task = launched_of(&m, &control)[1].clone();
    relaunch_control(&m, &control, &control_task);
    assert_eq!(launched_of(&m, &child), [third]);
    assert_every_update_acked(&m);
}

/// A well-behaved framework: unused offers declined with a long filter, SUPPRESS when idle,
/// REVIVE when work arrives.
#[test]
fn idle_framework_declines_long_suppresses_and_revives_for_new_work() {
    let m = master(fast_config());
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    wait_until(20, "SUPPRESS", || m.suppressed());
    let declines = m.declines();
    assert!(!declines.is_empty());
    assert!(
        declines.iter().all(|d| d.refuse_seconds == Some(600.0)),
        "{declines:?}"
    );
    let revives = m.revives();
    register(&s, "jobs/transcode.hcl");
    let child = dispatched_id(&ok(&dispatch(
        &s,
        &["job", "dispatch", "-meta", "input=/tmp/in.mov", "transcode"],
    )));
    assert_eq!(status_of(&s, &child), "dead");
    assert!(m.revives() > revives);
    wait_until(20, "SUPPRESS again", || m.suppressed());
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

/// HTTP Basic credentials from -mesos-principal and -mesos-secret-file; a wrong secret is a
/// clear error, not a hot loop; no leader (503) is retried until one is elected.
#[test]
fn credentials_and_no_leader() {
    let m = master(Config {
        credentials: Some(("dispatch".into(), "s3cret".into())),
        ..fast_config()
    });
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "wrong\n").unwrap();
    let bad = server(
        &m.url(),
        "json",
        &[
            "-mesos-principal",
            "dispatch",
            "-mesos-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    wait_until(20, "the 401 reported", || {
        bad.log().contains("refused our credentials")
    });
    assert!(!m.is_subscribed());
    let conn = &get_json(&bad, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"];
    assert!(
        conn["LastError"]
            .as_str()
            .is_some_and(|e| e.contains("refused our credentials")),
        "{conn}"
    );
    drop(bad);

    m.no_leader();
    std::fs::write(&secret, "s3cret\n").unwrap();
    let s = server(
        &m.url(),
        "protobuf",
        &[
            "-mesos-principal",
            "dispatch",
            "-mesos-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    wait_until(20, "the 503 reported", || s.log().contains("503"));
    assert!(!m.is_subscribed());
    m.set_leader(true);
    wait_until(20, "SUBSCRIBED once a leader is elected", || {
        m.is_subscribed()
    });
    assert_eq!(m.framework_info().unwrap()["principal"], "dispatch");
    wait_until(10, "the subscription on /v1/agent/self", || {
        let conn = &get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"];
        conn["State"] == "subscribed" && conn["LastError"].is_null()
    });
    let conn = &get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"];
    assert_eq!(conn["Leader"].as_str(), Some(m.url().as_str()), "{conn}");
    let auth = m
        .calls()
        .last()
        .unwrap()
        .headers
        .get("authorization")
        .cloned();
    assert_eq!(auth.as_deref(), Some("Basic ZGlzcGF0Y2g6czNjcmV0"));
}

/// `-mesos-master https://...`: the master's certificate is checked against
/// `-mesos-ca-file` (the system's roots do not know a private CA), and work runs through the
/// TLS connection.
#[test]
fn an_https_master_is_trusted_through_the_mesos_ca_file() {
    let m = master(fast_config());
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new(dir.path(), "mesos");
    let pair = ca.server("master");
    let front = certs::tls_proxy(&pair, m.addr());
    let url = format!("https://{front}");

    let untrusting = server(&url, "json", &[]);
    wait_until(20, "the certificate error reported", || {
        let conn =
            &get_json(&untrusting, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"];
        conn["LastError"]
            .as_str()
            .is_some_and(|e| e.contains("certificate") || e.contains("UnknownIssuer"))
    });
    assert!(!m.is_subscribed());
    drop(untrusting);

    let s = server(
        &url,
        "protobuf",
        &["-mesos-ca-file", ca.cert.to_str().unwrap()],
    );
    wait_until(20, "SUBSCRIBED over TLS", || m.is_subscribed());
    wait_until(10, "the TLS master as the leader", || {
        let conn = &get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"];
        conn["State"] == "subscribed" && conn["Leader"].as_str() == Some(url.as_str())
    });
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    register(&s, "jobs/transcode.hcl");
    let out = ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-meta",
            "input=http://media.example/in.mov",
            "transcode",
        ],
    ));
    let child = dispatched_id(&out);
    assert_eq!(status_of(&s, &child), "dead", "{}", s.log());
    assert_every_update_acked(&m);
}

/// Away longer than the failover timeout: Mesos removed the framework (and killed its tasks).
/// The refused SUBSCRIBE (200 + ERROR) is reported, Dispatch registers as a new framework and
/// relaunches the work that was lost.
#[test]
fn framework_removed_after_failover_timeout_registers_anew_and_relaunches() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let mut s = server(&m.url(), "json", &["-mesos-failover-timeout", "1s"]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    let first_id = m.framework_id().unwrap();
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("hold.hcl");
    std::fs::write(&job, NO_RETRY_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "hold"])));
    wait_until(20, "running", || run_states(&s, &child) == ["TASK_RUNNING"]);

    s.kill9();
    // The master removes the framework once the failover timeout (1 s) has passed.
    wait_until(20, "the master to remove the framework", || {
        m.framework_id().is_none()
    });
    s.restart();
    wait_until(30, "a new registration", || {
        m.is_subscribed() && m.framework_id().is_some_and(|id| id != first_id)
    });
    assert!(
        s.log().contains("Framework has been removed"),
        "{}",
        s.log()
    );
    // The lost attempt is relaunched under the new framework, not counted as a failure.
    wait_until(30, "the relaunch", || m.launched_tasks().len() == 2);
    let second = m.launched_tasks()[1].task_id.clone();
    assert!(second.ends_with(".2"), "{second}");
    wait_until(20, "running again", || {
        run_states(&s, &child).last().map(String::as_str) == Some("TASK_RUNNING")
    });
    assert_eq!(status_of(&s, &child), "running");
}

/// Several offers from one agent are pooled: a task larger than any one of them launches with
/// one ACCEPT naming them all.
#[test]
fn offers_of_one_agent_are_pooled_into_one_accept() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("big.hcl");
    std::fs::write(
        &job,
        NO_RETRY_JOB
            .replace("\"hold\"", "\"big\"")
            .replace("cpu    = 100", "cpu    = 1500"),
    )
    .unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "big"])));
    m.split_offers(2);
    m.offer("agent-1", 2.0, 2048.0, 4096.0);
    wait_until(20, "launched", || m.launched_tasks().len() == 1);
    let launched = &m.launched_tasks()[0];
    assert_eq!(launched.offer_ids.len(), 2, "{launched:?}");
    wait_until(20, "running", || run_states(&s, &child) == ["TASK_RUNNING"]);
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

/// An Org document's `#+master:` is compared with the server's masters; its blocks run on
/// Mesos, each launched once.
#[test]
fn org_document_runs_on_mesos_and_its_master_is_checked() {
    let m = master(fast_config());
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let doc = |master: &str| {
        format!(
            "#+title: t\n#+master: {master}\n\n#+name: one\n#+BEGIN_SRC sh :cpus 0.5\necho one\n#+END_SRC\n\n#+BEGIN_SRC python\nprint(2)\n#+END_SRC\n"
        )
    };
    let same = dir.path().join("same.org");
    std::fs::write(&same, doc(&m.addr().to_string())).unwrap();
    let o = dispatch(&s, &["run", same.to_str().unwrap()]);
    let out = ok(&o);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("#+master"),
        "{}",
        show(&o)
    );
    let child = dispatched_id(&out);
    assert_eq!(task_runs(&s, &child).len(), 2);
    assert_eq!(m.launched_tasks().len(), 2);

    let other = dir.path().join("other.org");
    std::fs::write(&other, doc("10.9.9.9:5050")).unwrap();
    let o = dispatch(&s, &["run", other.to_str().unwrap()]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("#+master: 10.9.9.9:5050 differs from the server's masters"),
        "{err}"
    );
}

const SOURCE_TEMPLATE_JOB: &str = r#"job "tpl" {
  type = "batch"
  parameterized {}
  group "g" {
    task "prep" {
      lifecycle {
        hook = "prestart"
      }
      driver = "raw_exec"
      config {
        command = "true"
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "cat"
        args    = ["local/app.conf"]
      }
      artifact {
        source = "http://files.example/app.conf.tpl"
      }
      template {
        source      = "local/app.conf.tpl"
        destination = "local/app.conf"
      }
    }
  }
}
"#;

/// A `source` template is rendered in the sandbox after the fetch, which only the local runner
/// does. A server on Mesos refuses to register such a job (400, the reason); one registered
/// earlier on the local runner fails its dispatch with the same reason, and nothing of the job
/// is launched, not even its prestart step. An inline template of the same job launches.
#[test]
fn source_templates_are_refused_on_mesos_with_a_reason() {
    let m = master(fast_config());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tpl.hcl");
    std::fs::write(&file, SOURCE_TEMPLATE_JOB).unwrap();
    let mut s = TestServer::start_with(&["-local-cpus", "0"]);
    ok(&dispatch(&s, &["job", "run", file.to_str().unwrap()]));
    let url = m.url();
    s.restart_with(&[
        "-mesos-master",
        &url,
        "-mesos-content-type",
        "json",
        "-mesos-max-backoff",
        "1s",
    ]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);

    let o = dispatch(&s, &["job", "run", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        show(&o).contains(r#"template "local/app.conf" has a `source`"#),
        "{}",
        show(&o)
    );

    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "tpl"])));
    wait_until(20, "the dispatch failed", || {
        status_of(&s, &child) == "dead"
    });
    let job = get_json(&s, &format!("/v1/job/{child}"));
    let reason = job["StatusDescription"].as_str().unwrap_or_default();
    assert!(
        reason.contains(r#"template "local/app.conf" has a `source`"#)
            && reason.contains("give the text inline with `data`"),
        "{job}"
    );
    assert!(m.launched_tasks().is_empty(), "{:?}", m.launched_tasks());
    let status = ok(&dispatch(&s, &["job", "status", &child]));
    assert!(status.contains("has a `source`"), "{status}");

    let inline = SOURCE_TEMPLATE_JOB
        .replace(
            r#"source      = "local/app.conf.tpl""#,
            r#"data        = "port=8080""#,
        )
        .replace(r#"job "tpl""#, r#"job "tpl2""#);
    std::fs::write(&file, inline).unwrap();
    ok(&dispatch(&s, &["job", "run", file.to_str().unwrap()]));
    ok(&dispatch(&s, &["job", "dispatch", "-detach", "tpl2"]));
    wait_until(20, "the inline template job launched", || {
        !m.launched_tasks().is_empty()
    });
}

/// `dispatch` with no server address in the environment: the way a mesos-batch or Org Babel
/// user runs it, with no server started.
fn dispatch_without_server(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(args)
        .env_remove("DISPATCH_ADDR")
        .env_remove("NOMAD_ADDR")
        .output()
        .expect("run dispatch")
}

/// The FrameworkInfo of the last SUBSCRIBE (the double forgets a one-off framework once it
/// has gone).
fn subscribed_framework_info(m: &Master) -> serde_json::Value {
    m.accepted_calls("SUBSCRIBE")
        .last()
        .map(|c| c["subscribe"]["framework_info"].clone())
        .expect("a SUBSCRIBE")
}

/// `dispatch run -master` (mesos-batch's `--master`): no server; the command is the framework,
/// described by the mesos-batch flags, one-off (failover_timeout 0), gone with the command.
#[test]
fn run_with_master_is_its_own_framework_without_a_server() {
    let m = master(fast_config());
    m.offer("agent-1", 16.0, 16384.0, 100_000.0);
    let url = format!("file://{}", batch_fixture("nine.tasklist.json"));
    let master_addr = m.addr().to_string();
    let o = dispatch_without_server(&[
        "run",
        "-master",
        &master_addr,
        "-content-type",
        "json",
        "-framework-name",
        "tiles",
        "-role",
        "test",
        &url,
    ]);
    let out = ok(&o);
    assert!(
        out.contains(&format!(
            "Running as Mesos framework \"tiles\" on http://{master_addr} (-master)"
        )),
        "{out}"
    );
    let info = subscribed_framework_info(&m);
    assert_eq!(info["name"], "tiles", "{info}");
    assert_eq!(info["roles"], serde_json::json!(["test"]), "{info}");
    assert_eq!(info["failover_timeout"], 0.0, "{info}");
    assert_eq!(m.launched_tasks().len(), 9);
    assert!(
        m.calls()
            .iter()
            .all(|c| c.headers.get("content-type").map(String::as_str) == Some("application/json")),
        "{:?}",
        m.calls()
            .iter()
            .map(|c| c.headers.get("content-type"))
            .collect::<Vec<_>>()
    );
    // (Acknowledgements of the last updates may still be on their way when the command
    // exits: with failover_timeout 0 Mesos forgets the framework anyway.)
    let finished: std::collections::HashSet<String> = m
        .events()
        .iter()
        .filter(|e| e["type"] == "UPDATE" && e["update"]["status"]["state"] == "TASK_FINISHED")
        .filter_map(|e| {
            e["update"]["status"]["task_id"]["value"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(finished.len(), 9, "{finished:?}");
    wait_until(10, "the framework gone with the command", || {
        !m.is_subscribed()
    });

    // -detach has no server to leave the run with.
    let o = dispatch_without_server(&["run", "-master", &master_addr, "-detach", &url]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot be used with '--detach'"),
        "{}",
        show(&o)
    );
    let o = dispatch_without_server(&["run", "-master", "zk://z:2181", &url]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("-master: \"zk://z:2181\" is not a ZooKeeper URL"),
        "{}",
        show(&o)
    );
}

/// An Org document's `#+master:` is where its blocks run when no server address is set.
#[test]
fn org_master_is_used_when_no_server_address_is_set() {
    let m = master(fast_config());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("notes.org");
    std::fs::write(
        &doc,
        format!(
            "#+master: {}\n\n#+name: one\n#+BEGIN_SRC sh :cpus 0.5\necho one\n#+END_SRC\n\n#+name: two\n#+BEGIN_SRC python\nprint(2)\n#+END_SRC\n",
            m.addr()
        ),
    )
    .unwrap();
    let o = dispatch_without_server(&["run", doc.to_str().unwrap()]);
    let out = ok(&o);
    assert!(out.contains("(#+master, no server address set)"), "{out}");
    let mut names: Vec<String> = m
        .launched_tasks()
        .iter()
        .map(|t| t.task_info["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].ends_with("one") && names[1].ends_with("two"),
        "{names:?}"
    );
    assert_eq!(subscribed_framework_info(&m)["name"], "dispatch-run");
}

/// A task that needs GPUs when no agent offers any: the note on the dispatch says why (the
/// framework needs GPU_RESOURCES), and other work is not held up.
#[test]
fn gpu_work_without_gpu_offers_is_noted_with_the_capability_it_needs() {
    let m = master(fast_config());
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Mesosfile");
    std::fs::write(
        &file,
        "- name: train\n  command:\n    value: nvidia-smi\n  resources: {cpus: 1, mem: 128, gpus: 1}\n",
    )
    .unwrap();
    let out = ok(&dispatch(&s, &["run", "-detach", file.to_str().unwrap()]));
    let child = dispatched_id(&out);
    wait_until(20, "the note", || {
        get_json(&s, &format!("/v1/job/{child}"))["StatusDescription"]
            .as_str()
            .is_some_and(|n| n.contains("GPU_RESOURCES"))
    });
    let note = get_json(&s, &format!("/v1/job/{child}"))["StatusDescription"].clone();
    assert!(
        note.as_str().unwrap().contains("needs cpus=1 mem=128MB")
            && note.as_str().unwrap().contains("gpus=1"),
        "{note}"
    );
    assert!(m.launched_tasks().is_empty());
    assert_eq!(status_of(&s, &child), "pending");
}

/// Wait until the double saw one launch; on a timeout, fail with what the command printed
/// and what the double saw.
fn launched_or_show(mut child: std::process::Child, m: &Master) -> std::process::Child {
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.launched_tasks().len() != 1 {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            let calls: Vec<_> = m.calls().iter().map(|c| c.call_type.clone()).collect();
            panic!(
                "no launch in 30 s\n{}\ncalls: {calls:?}\nevents: {:?}",
                show(&o),
                m.events()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Ctrl-C on `dispatch run -master`: the command ends (exit 130) with its framework, and
/// leaves no temporary data dir behind.
#[test]
fn interrupting_a_run_with_its_own_framework_ends_it_cleanly() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("Mesosfile");
    std::fs::write(&file, "- name: long\n  command:\n    value: sleep 600\n").unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args([
            "run",
            "-master",
            &m.addr().to_string(),
            "-content-type",
            "json",
        ])
        .arg(&file)
        .env_remove("DISPATCH_ADDR")
        .env_remove("NOMAD_ADDR")
        .env("TMPDIR", &scratch)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let child = launched_or_show(child, &m);
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        1,
        "a data dir while running"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Interrupted: the run's framework ends"),
        "{}",
        show(&o)
    );
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "temporary data dir left behind"
    );
    wait_until(10, "the framework gone", || !m.is_subscribed());
}

const TEMPLATE_RUN_JOB: &str = r#"job "tplrun" {
  type = "batch"
  parameterized {}
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "cat"
        args    = ["local/app.conf"]
      }
      template {
        data        = "port=8080"
        destination = "local/app.conf"
      }
    }
  }
}
"#;

/// Sandbox URLs are capabilities: agents fetch a task's rendered template with the token in
/// its URL; another token, another task's token, or the same URL once the task ended are
/// all 404; people reading the rendered TaskInfo see the token redacted.
#[test]
fn sandbox_urls_work_only_with_their_token_while_the_task_runs() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tplrun.hcl");
    std::fs::write(&file, TEMPLATE_RUN_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", file.to_str().unwrap()]));
    let first = dispatched_id(&ok(&dispatch(
        &s,
        &["job", "dispatch", "-detach", "tplrun"],
    )));
    let second = dispatched_id(&ok(&dispatch(
        &s,
        &["job", "dispatch", "-detach", "tplrun"],
    )));
    wait_until(30, "both launched", || m.launched_tasks().len() == 2);
    let uri_of = |i: usize| -> (String, String) {
        let task = m.launched_tasks()[i].task_info.clone();
        let uri = task["command"]["uris"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["output_file"] == "local/app.conf"))
            .unwrap_or_else(|| panic!("no template URI in {task}"))["value"]
            .as_str()
            .unwrap()
            .to_string();
        (task["task_id"]["value"].as_str().unwrap().to_string(), uri)
    };
    let (task_a, uri_a) = uri_of(0);
    let (task_b, uri_b) = uri_of(1);
    let get = |url: &str| -> (String, String) {
        let path = &url[url.find("/v1/sandbox/").unwrap()..];
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", &format!("{}{path}", s.url())])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    assert_eq!(get(&uri_a), ("200".into(), "port=8080".into()));
    let token_a = uri_a.split('/').nth_back(2).unwrap().to_string();
    let token_b = uri_b.split('/').nth_back(2).unwrap().to_string();
    assert_ne!(token_a, token_b, "each task has its own token");
    assert_eq!(token_a.len(), 43);
    let not_found = ("404".to_string(), "no such sandbox file".to_string());
    // A's path with B's token, a changed token, no token: the same 404
    assert_eq!(get(&uri_a.replace(&token_a, &token_b)), not_found);
    let mut flipped = token_a.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        get(&uri_a.replace(&token_a, std::str::from_utf8(&flipped).unwrap())),
        not_found
    );
    assert_eq!(get(&uri_a.replace(&format!("/{token_a}/"), "/")), not_found);
    // the rendered TaskInfo shows where the file comes from, not the token
    let rendered = ok(&dispatch(&s, &["job", "inspect", "-rendered", &first]));
    assert!(rendered.contains("/REDACTED/local/app.conf"), "{rendered}");
    assert!(
        !rendered.contains(&token_a) && !rendered.contains(&token_b),
        "{rendered}"
    );
    // the task ends: its URL no longer works; the other task's still does
    let which = if task_a.starts_with(&first.replace('/', ".")) {
        &first
    } else {
        &second
    };
    ok(&dispatch(&s, &["job", "stop", which]));
    wait_until(30, "the task's kill recorded", || {
        let runs = task_runs(&s, which);
        !runs.is_empty() && runs.iter().all(|r| r["State"] == "TASK_KILLED")
    });
    assert_eq!(get(&uri_a), not_found);
    assert_eq!(get(&uri_b), ("200".into(), "port=8080".into()));
    let _ = task_b;
}

/// `dispatch run -master` of a job with templates: agents fetch them from a listener that
/// serves sandbox files only; the API itself is not on it.
#[test]
fn run_with_master_serves_templates_to_agents_but_not_its_api() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tplrun.hcl");
    std::fs::write(&file, TEMPLATE_RUN_JOB).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args([
            "run",
            "-master",
            &m.addr().to_string(),
            "-content-type",
            "json",
        ])
        .arg(&file)
        .env_remove("DISPATCH_ADDR")
        .env_remove("NOMAD_ADDR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let child = launched_or_show(child, &m);
    let task = m.launched_tasks()[0].task_info.clone();
    let uri = task["command"]["uris"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["output_file"] == "local/app.conf"))
        .unwrap_or_else(|| panic!("no template URI in {task}"))["value"]
        .as_str()
        .unwrap()
        .to_string();
    // http://<host name>:<port>/v1/sandbox/<task>/local/app.conf, reachable on every interface.
    let port = uri
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|host_port| host_port.rsplit(':').next())
        .unwrap()
        .to_string();
    let path = &uri[uri.find("/v1/sandbox/").unwrap()..];
    let get = |p: &str| {
        Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                &format!("http://127.0.0.1:{port}{p}"),
            ])
            .output()
            .unwrap()
    };
    let fetched = String::from_utf8_lossy(&get(path).stdout).to_string();
    assert_eq!(fetched, "port=8080\n200", "{uri}");
    let api = String::from_utf8_lossy(&get("/v1/jobs").stdout).to_string();
    assert!(
        api.ends_with("404"),
        "the API is reachable on the fetch listener: {api}"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", show(&o));
}

/// Offer calls reach the master in the order the scheduler made them: a REVIVE for new work
/// does not overtake the SUPPRESS sent just before it (here held 500 ms on its way), which
/// would leave the framework suppressed and the work waiting for good.
#[test]
fn a_revive_never_overtakes_the_suppress_before_it() {
    let m = master(Config {
        slow_calls: vec![("SUPPRESS", Duration::from_millis(500))],
        ..fast_config()
    });
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let s = server(&m.url(), "json", &[]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("hold.hcl");
    std::fs::write(&job, NO_RETRY_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    // Nothing to run yet: the offer is declined and SUPPRESS leaves (and is held).
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    wait_until(20, "the offer declined", || !m.declines().is_empty());
    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "hold"])));
    wait_until(20, "the new work launched", || {
        m.launched_tasks().len() == 1
    });
    wait_until(20, "running", || status_of(&s, &child) == "running");
    let order: Vec<String> = m
        .calls()
        .iter()
        .filter_map(|c| c.call_type.clone())
        .filter(|t| t == "SUPPRESS" || t == "REVIVE")
        .collect();
    assert_eq!(
        order.first().map(String::as_str),
        Some("SUPPRESS"),
        "{order:?}"
    );
}

/// A failure says why where the user looks, on Mesos too: dispatch-and-wait and
/// `job status <child>` show the end of the failed attempt's stderr, read through the
/// agent's files API.
#[test]
fn a_failed_dispatch_shows_the_end_of_its_stderr_from_the_agent() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let s = server(&m.url(), "json", &[]);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("conv.hcl");
    std::fs::write(
        &job,
        r#"job "conv" {
  type = "batch"
  parameterized {}
  group "g" {
    restart {
      attempts = 0
    }
    reschedule {
      attempts = 0
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "convert.sh"]
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#,
    )
    .unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let waiting = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["job", "dispatch", "conv"])
        .env("DISPATCH_ADDR", s.url())
        .env_remove("NOMAD_ADDR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = launched_or_show(waiting, &m);
    let task = m.launched_tasks()[0].task_id.clone();
    assert!(m.append_sandbox_file(
        &task,
        "stderr",
        b"starting\nconvert.sh: error: ffmpeg not found on PATH\n"
    ));
    m.fail_task(&task, 1);
    let o = waiting.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.ends_with("      starting\n      convert.sh: error: ffmpeg not found on PATH\n")
            && out.contains("    Last 3 line(s) of task \"t\" stderr (attempt 1, TASK_FAILED):\n      Starting task "),
        "{}",
        show(&o)
    );
    let child = dispatched_id(&out);
    let status = ok(&dispatch(&s, &["job", "status", &child]));
    assert!(
        status.contains("  convert.sh: error: ffmpeg not found on PATH"),
        "{status}"
    );
}

/// A configuration reload (SIGHUP) that changes the framework's roles, capabilities and
/// failover timeout sends UPDATE_FRAMEWORK: the same subscription, no re-registration, the
/// running task untouched, offers for the new role.
#[test]
fn a_reload_updates_the_framework_without_resubscribing() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dispatch.hcl");
    let write = |roles: &str, failover: &str, caps: &str| {
        std::fs::write(
            &config,
            format!(
                "mesos {{\n  master = \"{}\"\n  content_type = \"json\"\n  max_backoff = \"1s\"\n  role = {roles}\n  failover_timeout = \"{failover}\"\n  capabilities = {caps}\n}}\n",
                m.url()
            ),
        )
        .unwrap();
    };
    write("[\"a\"]", "1h", "[]");
    let s = TestServer::start_with(&["-config", config.to_str().unwrap()]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    register(&s, "jobs/transcode.hcl");
    ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "input=/tmp/x.mov",
            "transcode",
        ],
    ));
    wait_until(20, "the task running", || {
        m.launched_tasks()
            .first()
            .is_some_and(|t| m.task_state(&t.task_id).as_deref() == Some("TASK_RUNNING"))
    });
    let task = m.launched_tasks()[0].task_id.clone();
    let stream = m.stream_id();
    let subscribes = m.accepted_calls("SUBSCRIBE").len();

    write("[\"a\", \"b\"]", "2h", "[\"GPU_RESOURCES\"]");
    let pid = nix::unistd::Pid::from_raw(s.pid().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_until(20, "UPDATE_FRAMEWORK applied", || {
        m.framework_updates() == 1
    });
    let info = m.framework_info().unwrap();
    assert_eq!(info["roles"], serde_json::json!(["a", "b"]), "{info}");
    assert_eq!(info["failover_timeout"], 7200.0, "{info}");
    assert!(
        info["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "GPU_RESOURCES"),
        "{info}"
    );
    assert_eq!(m.stream_id(), stream, "the same subscription");
    assert_eq!(m.accepted_calls("SUBSCRIBE").len(), subscribes);
    assert_eq!(m.task_state(&task).as_deref(), Some("TASK_RUNNING"));
    assert!(m.kills().is_empty());
    wait_until(10, "the reload logged", || {
        s.log()
            .contains("configuration reloaded: mesos.role [\"a\"] -> [\"a\", \"b\"]")
    });
    let mesos = &get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"];
    assert_eq!(mesos["Roles"], serde_json::json!(["a", "b"]), "{mesos}");
    assert!(
        !s.log().contains("takes effect after a restart"),
        "{}",
        s.log()
    );
}
const SOLO_JOB: &str = r#"job "solo" {
  type = "batch"
  parameterized {}
  group "g" {
    restart {
      attempts = 0
    }
    reschedule {
      attempts = 0
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "sleep 600"]
      }
      resources {
        cpu    = 500
        memory = 32
      }
    }
  }
}
"#;

/// An operator drains the agent a task runs on: the agent kills it (TASK_KILLED, or
/// TASK_GONE_BY_OPERATOR when the agent is marked gone, both REASON_AGENT_DRAINING). That is
/// the infrastructure's doing: the task runs again elsewhere although the job allows no retry.
#[test]
fn tasks_killed_by_a_drain_run_again_elsewhere_without_using_retries() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    m.offer("agent-1", 2.0, 2048.0, 4096.0);
    let s = server(&m.url(), "json", &[]);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("solo.hcl");
    std::fs::write(&job, SOLO_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    for (round, mark_gone) in [(1usize, false), (2, true)] {
        let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "solo"])));
        let first = round * 2 - 1;
        wait_until(20, "the task running", || m.launched_tasks().len() == first);
        let on = m.launched_tasks()[first - 1].agent_id.clone();
        let spare = format!("spare-{round}");
        m.offer(&spare, 2.0, 2048.0, 4096.0);
        m.drain_agent(&on, mark_gone);
        let deadline = Instant::now() + Duration::from_secs(30);
        while m.launched_tasks().len() != first + 1 {
            assert!(
                Instant::now() < deadline,
                "no relaunch: {}\nruns {:?}\ncalls {:?}\nsuppressed {}\n{}",
                get_json(&s, &format!("/v1/job/{}", child.replace('/', "%2F")))["DispatchStatus"],
                task_runs(&s, &child),
                m.calls()
                    .iter()
                    .map(|c| c.call_type.clone())
                    .collect::<Vec<_>>(),
                m.suppressed(),
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let again = m.launched_tasks()[first].clone();
        assert_eq!(again.agent_id, spare, "not on the drained agent");
        let runs = task_runs(&s, &child);
        let drained = if mark_gone {
            "TASK_GONE_BY_OPERATOR"
        } else {
            "TASK_KILLED"
        };
        assert_eq!(runs[0]["State"], drained, "{runs:?}");
        assert!(
            runs[0]["Message"]
                .as_str()
                .is_some_and(|m| m.contains("REASON_AGENT_DRAINING")),
            "{runs:?}"
        );
        assert_ne!(status_of(&s, &child), "dead", "not failed");
        m.finish_task(&again.task_id);
        wait_until(20, "the dispatch complete", || {
            status_of(&s, &child) == "dead"
        });
        let job: serde_json::Value =
            get_json(&s, &format!("/v1/job/{}", child.replace('/', "%2F")));
        assert_eq!(job["DispatchStatus"], "complete", "{job}");
    }
}

/// An agent scheduled for maintenance (Mesos docs/maintenance.md): no new work starts there
/// (its offers carry the unavailability and are declined) and its inverse offer is accepted
/// once nothing of ours runs there, not before.
#[test]
fn maintenance_no_new_work_and_the_inverse_offer_accepted_once_vacated() {
    let m = master(fast_config());
    m.set_task_behavior("", TaskBehavior::RunUntilKilled);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let s = server(&m.url(), "json", &[]);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("solo.hcl");
    std::fs::write(&job, SOLO_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "solo"])));
    wait_until(20, "the first task running on agent-1", || {
        m.launched_tasks().len() == 1
    });
    let first = m.launched_tasks()[0].task_id.clone();

    m.schedule_maintenance(
        "agent-1",
        mesos_double::Unavailability::from_now(Duration::from_secs(3600), None),
    );
    wait_until(20, "the inverse offer sent", || {
        m.events().iter().any(|e| e["type"] == "INVERSE_OFFERS")
    });
    // New work: agent-1 has room, but it is going away; agent-2 comes later.
    let second = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "solo"])));
    wait_until(20, "agent-1's tagged offer declined", || {
        let tagged: Vec<String> = m
            .events()
            .iter()
            .filter(|e| e["type"] == "OFFERS")
            .flat_map(|e| {
                e["offers"]["offers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|o| !o["unavailability"].is_null())
            .filter_map(|o| o["id"]["value"].as_str().map(String::from))
            .collect();
        m.declines()
            .iter()
            .any(|d| d.offer_ids.iter().any(|id| tagged.contains(id)))
    });
    assert_eq!(m.launched_tasks().len(), 1, "nothing new on agent-1");
    m.offer("agent-2", 4.0, 4096.0, 10_000.0);
    wait_until(20, "the second task launched", || {
        m.launched_tasks().len() == 2
    });
    assert_eq!(m.launched_tasks()[1].agent_id, "agent-2");
    // Our task still runs on agent-1: no answer yet.
    assert!(m.inverse_offer_responses().is_empty());
    m.finish_task(&first);
    wait_until(20, "the inverse offer accepted", || {
        !m.inverse_offer_responses().is_empty()
    });
    let answer = &m.inverse_offer_responses()[0];
    assert!(
        answer.accepted && answer.agent_id == "agent-1",
        "{answer:?}"
    );
    assert_eq!(answer.refuse_seconds, Some(3600.0));
    assert_ne!(status_of(&s, &second), "pending");
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

/// Operation feedback: RESERVE / CREATE of a sticky disk carry IDs; when the agent fails to
/// apply them the framework hears it at once (acknowledged), forgets the volume it was waiting
/// for, and the launch that lacked it is tried again without using the job's retries.
#[test]
fn a_failed_reservation_is_seen_at_once_and_the_launch_retried() {
    let m = master(fast_config());
    let s = server(
        &m.url(),
        "json",
        &["-mesos-role", "batch", "-mesos-principal", "dispatch"],
    );
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.fail_operations("agent-1", true);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("cache.hcl");
    // No retries: a TASK_ERROR counted against the job would fail the dispatch.
    std::fs::write(
        &job,
        STICKY_JOB.replace(
            "group \"g\" {",
            "group \"g\" {\n    restart {\n      attempts = 0\n    }\n    reschedule {\n      attempts = 0\n    }",
        ),
    )
    .unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "cache"])));
    wait_until(20, "the failed RESERVE acknowledged", || {
        m.operation_acks().iter().any(|a| a.matched)
    });
    let failed: Vec<String> = m
        .operation_acks()
        .iter()
        .map(|a| a.operation_id.clone())
        .collect();
    assert!(
        failed.iter().any(|id| id.starts_with("reserve.")),
        "{failed:?}"
    );
    assert_eq!(
        m.operation_state(failed.iter().find(|id| id.starts_with("reserve.")).unwrap())
            .as_deref(),
        Some("OPERATION_FAILED")
    );
    m.fail_operations("agent-1", false);
    wait_until(30, "the dispatch complete", || {
        status_of(&s, &child) == "dead"
    });
    let job: serde_json::Value = get_json(&s, &format!("/v1/job/{}", child.replace('/', "%2F")));
    assert_eq!(job["DispatchStatus"], "complete", "{job}");
    let runs = task_runs(&s, &child);
    assert_eq!(runs[0]["State"], "TASK_ERROR", "{runs:?}");
    assert!(
        runs[0]["Message"]
            .as_str()
            .is_some_and(|msg| msg.contains("its persistent volume could not be created: RESERVE")),
        "{runs:?}"
    );
    assert_eq!(runs.last().unwrap()["State"], "TASK_FINISHED", "{runs:?}");
    assert_eq!(m.volumes("agent-1"), ["dispatch.cache.g.volume"]);
    assert!(
        m.unacked_operations().is_empty(),
        "{:?}",
        m.unacked_operations()
    );
}

/// MULTI_ROLE with several roles: a job whose node_pool names a role revives that role only
/// (the others stay suppressed) and launches on that role's offer.
#[test]
fn a_job_in_a_role_revives_and_uses_only_that_role() {
    let m = master(fast_config());
    let s = server(&m.url(), "json", &["-mesos-role", "a,b"]);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    wait_until(20, "SUPPRESS while idle", || m.suppressed());
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("gpu.hcl");
    std::fs::write(
        &job,
        SOLO_JOB
            .replace("job \"solo\" {", "job \"gpu\" {\n  node_pool = \"b\"")
            .replace("sleep 600", "true"),
    )
    .unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(&s, &["job", "dispatch", "-detach", "gpu"])));
    wait_until(20, "the launch", || m.launched_tasks().len() == 1);
    let revive = m.accepted_calls("REVIVE").pop().unwrap();
    assert_eq!(
        revive["revive"]["roles"],
        serde_json::json!(["b"]),
        "{revive}"
    );
    let offers_to_a = m
        .events()
        .iter()
        .filter(|e| e["type"] == "OFFERS")
        .flat_map(|e| {
            e["offers"]["offers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|o| o["allocation_info"]["role"] == "a")
        .count();
    assert_eq!(offers_to_a, 1, "a stays suppressed after the idle SUPPRESS");
    let launched = &m.launched_tasks()[0].task_info;
    assert!(
        launched["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["allocation_info"]["role"] == "b"),
        "{launched}"
    );
    wait_until(20, "the dispatch done", || status_of(&s, &child) == "dead");
}
