//! Task kinds end to end: a Mesos containerizer image task with a volume, a Docker
//! containerizer task with parameters, and a custom executor task (driver `mesos_executor`),
//! launched by the real `dispatch` server against the Mesos master double; and the local
//! runner's refusal of custom executors.

mod common;

#[path = "common/mesos.rs"]
mod harness;

use std::time::Duration;

use common::{dispatch, dispatched_id, ok, status_of, task_runs, wait_until, TestServer};
use harness::master;
use mesos_double::Config;
use serde_json::{json, Value};

fn server(masters: &str, encoding: &str) -> TestServer {
    harness::server(masters, encoding, &[])
}

const KINDS_JOB: &str = r#"
job "kinds" {
  type = "batch"
  datacenters = ["*"]
  parameterized {
    meta_required = ["input"]
  }

  group "ucr" {
    task "probe" {
      driver = "docker"
      config {
        image         = "jrottenberg/ffmpeg:6"
        containerizer = "mesos"
        command       = "ffprobe"
        args          = ["${NOMAD_META_input}"]
        volumes       = ["/srv/media:/media:ro"]
      }
      resources {
        cpu    = 500
        memory = 128
      }
    }
  }

  group "dock" {
    task "thumb" {
      driver = "docker"
      config {
        image      = "alpine:3"
        command    = "sh"
        args       = ["-c", "echo thumb"]
        force_pull = true
        parameters = {
          memory = "1g"
        }
      }
      resources {
        cpu    = 500
        memory = 128
      }
    }
  }

  group "exe" {
    task "legacy" {
      driver = "mesos_executor"
      config {
        command = "java -cp executor.jar com.example.Executor"
      }
      artifact {
        source      = "http://artifacts.example/executor.jar"
        destination = "executor.jar"
        mode        = "file"
      }
      resources {
        cpu    = 1000
        memory = 256
      }
    }
  }
}
"#;

fn launched<'a>(
    tasks: &'a [mesos_double::LaunchedTask],
    name: &str,
) -> &'a mesos_double::LaunchedTask {
    tasks
        .iter()
        .find(|t| t.task_info["name"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} not launched: {tasks:?}"))
}

/// Every resource carries the offer's identity (MULTI_ROLE allocation_info).
#[track_caller]
fn assert_carved(resources: &Value) {
    let list = resources.as_array().expect("resources");
    assert!(!list.is_empty());
    for r in list {
        assert_eq!(r["allocation_info"]["role"], "*", "{r}");
    }
}

#[test]
fn image_docker_and_custom_executor_tasks_launch_on_mesos_over_json() {
    task_kinds("json");
}

#[test]
fn image_docker_and_custom_executor_tasks_launch_on_mesos_over_protobuf() {
    task_kinds("protobuf");
}

fn task_kinds(encoding: &str) {
    let m = master(Config {
        heartbeat_interval: Duration::from_secs(1),
        resend_interval: Duration::from_millis(500),
        ..Config::default()
    });
    let s = server(&m.url(), encoding);
    wait_until(20, "SUBSCRIBED", || m.is_subscribed());
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("kinds.hcl");
    std::fs::write(&job, KINDS_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(
        &s,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "input=/media/in.mov",
            "kinds",
        ],
    )));
    wait_until(30, "the dispatch complete", || {
        status_of(&s, &child) == "dead"
    });
    let runs = task_runs(&s, &child);
    assert_eq!(runs.len(), 3, "{runs:?}\n{}", s.log());
    for r in &runs {
        assert_eq!(r["State"], "TASK_FINISHED", "{r}");
    }
    let tasks = m.launched_tasks();
    assert!(tasks.iter().all(|t| !t.group), "{tasks:?}");

    // The Mesos containerizer pulls the image; the command is the full argv.
    let probe = &launched(&tasks, "/probe").task_info;
    assert_eq!(
        probe["container"],
        json!({"type": "MESOS",
               "mesos": {"image": {"type": "DOCKER", "docker": {"name": "jrottenberg/ffmpeg:6"},
                                   "cached": true}},
               "volumes": [{"container_path": "/media", "host_path": "/srv/media", "mode": "RO"}]})
    );
    assert_eq!(probe["command"]["shell"], false);
    assert_eq!(probe["command"]["value"], "ffprobe");
    assert_eq!(
        probe["command"]["arguments"],
        json!(["ffprobe", "/media/in.mov"])
    );
    assert_carved(&probe["resources"]);

    // The Docker containerizer with its parameters and a forced pull.
    let thumb = &launched(&tasks, "/thumb").task_info;
    assert_eq!(
        thumb["container"],
        json!({"type": "DOCKER",
               "docker": {"image": "alpine:3", "network": "HOST", "force_pull_image": true,
                          "parameters": [{"key": "memory", "value": "1g"}]}})
    );
    assert_eq!(thumb["command"]["value"], "sh");
    assert_eq!(thumb["command"]["arguments"], json!(["-c", "echo thumb"]));
    assert_carved(&thumb["resources"]);

    // The custom executor: no task command; the executor runs the command line with the
    // artifacts and the environment, and its resources come out of the offer too.
    let legacy = launched(&tasks, "/legacy");
    let info = &legacy.task_info;
    let id = info["task_id"]["value"].as_str().unwrap();
    assert_eq!(legacy.executor_id.as_deref(), Some(id));
    assert!(info.get("command").is_none(), "{info}");
    assert!(info.get("container").is_none(), "{info}");
    let ex = &info["executor"];
    assert_eq!(ex["type"], "CUSTOM");
    assert_eq!(ex["executor_id"]["value"], id);
    assert_eq!(ex["command"]["shell"], true);
    assert_eq!(
        ex["command"]["value"],
        "java -cp executor.jar com.example.Executor"
    );
    assert_eq!(
        ex["command"]["uris"],
        json!([{"value": "http://artifacts.example/executor.jar", "executable": false,
                "extract": true, "output_file": "executor.jar"}])
    );
    let env = ex["command"]["environment"]["variables"]
        .as_array()
        .unwrap();
    assert!(env
        .iter()
        .any(|v| v["name"] == "NOMAD_META_input" && v["value"] == "/media/in.mov"));
    assert_carved(&info["resources"]);
    assert_carved(&ex["resources"]);
    let ex_amounts: Vec<f64> = ex["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scalar"]["value"].as_f64().unwrap())
        .collect();
    assert_eq!(ex_amounts, [0.1, 32.0]);
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

const EXECUTOR_JOB: &str = r#"
job "legacy" {
  type = "batch"
  datacenters = ["*"]
  parameterized {}
  group "exe" {
    reschedule {
      attempts  = 0
      unlimited = false
    }
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "legacy" {
      driver = "mesos_executor"
      config {
        command = "java -cp executor.jar com.example.Executor"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#;

#[test]
fn local_runner_refuses_custom_executors() {
    let s = TestServer::start_with(&["-local-cpus", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("legacy.hcl");
    std::fs::write(&job, EXECUTOR_JOB).unwrap();
    ok(&dispatch(&s, &["job", "run", job.to_str().unwrap()]));
    let child = dispatched_id(&ok(&dispatch(
        &s,
        &["job", "dispatch", "-detach", "legacy"],
    )));
    wait_until(30, "the dispatch over", || status_of(&s, &child) == "dead");
    let runs = task_runs(&s, &child);
    assert!(!runs.is_empty());
    for r in &runs {
        assert_eq!(r["State"], "TASK_ERROR", "{r}");
        let msg = r["Message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(
                "custom executors (driver mesos_executor) run on Mesos only; \
                 this server uses the embedded local runner"
            ),
            "{r}"
        );
    }
}
