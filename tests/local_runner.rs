//! The embedded local runner driven through its `ClusterHandle`, with real processes: offers,
//! launches, fetching, kills, reconciliation and restart after a crash.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use dispatch::cluster::local::{self, LocalConfig};
use dispatch::cluster::types::Id;
use dispatch::cluster::{
    ClusterCall, ClusterEvent, ClusterHandle, Offer, TaskInfo, TaskState, TaskStatus,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

struct Runner {
    h: ClusterHandle,
    root: PathBuf,
    backlog: Vec<ClusterEvent>,
    _dir: Option<tempfile::TempDir>,
}

fn config(root: &Path) -> LocalConfig {
    LocalConfig {
        cpus: 4.0,
        mem_mb: 2048.0,
        disk_mb: 1000.0,
        gpus: 0.0,
        sandbox_root: root.to_path_buf(),
        task_path: vec![root.join("bin")],
        hostname: "testhost".into(),
        clock: dispatch::clock::Clock::system(),
    }
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Runner::on(&dir.path().join("sandboxes"));
        r._dir = Some(dir);
        r
    }

    fn on(root: &Path) -> Runner {
        let h = local::start(config(root)).unwrap();
        Runner {
            h,
            root: root.to_path_buf(),
            backlog: Vec::new(),
            _dir: None,
        }
    }

    fn call(&self, c: ClusterCall) {
        self.h.calls.send(c).unwrap();
    }

    fn sandbox(&self, id: &str) -> PathBuf {
        local::task_sandbox(&self.root, id)
    }

    /// The first event (backlog first) that `pick` accepts; others are kept for later.
    async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&ClusterEvent) -> Option<T>,
    ) -> Option<T> {
        if let Some(i) = self.backlog.iter().position(|e| pick(e).is_some()) {
            let e = self.backlog.remove(i);
            return pick(&e);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let e = tokio::time::timeout_at(deadline, self.h.events.recv())
                .await
                .ok()??;
            if let Some(t) = pick(&e) {
                return Some(t);
            }
            self.backlog.push(e);
        }
    }

    async fn offer(&mut self) -> Offer {
        self.try_offer(WAIT).await.expect("an offer")
    }

    async fn try_offer(&mut self, t: Duration) -> Option<Offer> {
        self.wait_for(t, |e| match e {
            ClusterEvent::Offers(o) => o.first().cloned(),
            _ => None,
        })
        .await
    }

    async fn update(&mut self, task_id: &str) -> TaskStatus {
        let st = self
            .wait_for(WAIT, |e| match e {
                ClusterEvent::Update(s) if s.task_id.value == task_id => Some(s.clone()),
                _ => None,
            })
            .await
            .unwrap_or_else(|| panic!("no update for {task_id}"));
        if let Some(uuid) = &st.uuid {
            self.call(ClusterCall::Acknowledge {
                agent_id: Id::new("local-agent"),
                task_id: st.task_id.clone(),
                uuid: uuid.clone(),
            });
        }
        st
    }

    /// Updates of a task up to (and including) the first terminal one.
    async fn updates_to_end(&mut self, task_id: &str) -> Vec<TaskStatus> {
        let mut out = Vec::new();
        loop {
            let st = self.update(task_id).await;
            let end = st.state.is_terminal();
            out.push(st);
            if end {
                return out;
            }
        }
    }

    async fn launch(&mut self, tasks: Vec<TaskInfo>) {
        let offer = self.offer().await;
        self.call(ClusterCall::Accept {
            offer_ids: vec![offer.id],
            tasks,
            refuse_seconds: 0.0,
        });
    }

    async fn run(&mut self, t: TaskInfo) -> Vec<TaskStatus> {
        let id = t.task_id.value.clone();
        self.launch(vec![t]).await;
        self.updates_to_end(&id).await
    }

    async fn wait_state(&mut self, task_id: &str, state: TaskState) -> TaskStatus {
        loop {
            let st = self.update(task_id).await;
            if st.state == state {
                return st;
            }
            assert!(!st.state.is_terminal(), "{task_id} ended early: {st:?}");
        }
    }
}

fn task(id: &str, command: Value) -> TaskInfo {
    task_with(id, json!({ "command": command }))
}

fn task_with(id: &str, more: Value) -> TaskInfo {
    let mut t = json!({
        "name": id,
        "task_id": {"value": id},
        "agent_id": {"value": "local-agent"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}
        ]
    });
    if let (Some(t), Some(m)) = (t.as_object_mut(), more.as_object()) {
        for (k, v) in m {
            t.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(t).unwrap()
}

fn shell(cmd: &str) -> Value {
    json!({ "value": cmd })
}

fn states(updates: &[TaskStatus]) -> Vec<TaskState> {
    updates.iter().map(|s| s.state).collect()
}

fn last(updates: &[TaskStatus]) -> &TaskStatus {
    updates.last().unwrap()
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn subscribes_and_offers_the_configured_resources() {
    let mut r = Runner::new();
    let first = r.h.events.recv().await.unwrap();
    assert!(
        matches!(first, ClusterEvent::Subscribed { ref framework_id } if framework_id == "local")
    );
    let offer = r.offer().await;
    assert_eq!(offer.agent_id.value, "local-agent");
    assert_eq!(offer.hostname, "testhost");
    assert!(offer.id.value.starts_with("local-O"));
    let res: Vec<(String, f64)> = offer
        .resources
        .iter()
        .map(|x| (x.name.clone(), x.scalar.as_ref().unwrap().value))
        .collect();
    assert_eq!(
        res,
        vec![
            ("cpus".into(), 4.0),
            ("mem".into(), 2048.0),
            ("disk".into(), 1000.0)
        ]
    );
}

#[tokio::test]
async fn shell_command_runs_to_finished() {
    let mut r = Runner::new();
    let ups = r.run(task("echo-1", shell("echo hello"))).await;
    assert_eq!(
        states(&ups),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    for u in &ups {
        assert_eq!(u.source.as_deref(), Some("SOURCE_EXECUTOR"));
        assert_eq!(u.agent_id.as_ref().unwrap().value, "local-agent");
        assert!(u.uuid.is_some() && u.timestamp.is_some());
    }
    assert_eq!(read(r.sandbox("echo-1").join("stdout")), "hello\n");
    assert!(!r.sandbox("echo-1").join(".pid").exists());
}

#[tokio::test]
async fn argv_mode_reports_the_exit_status() {
    let mut r = Runner::new();
    let cmd = json!({"shell": false, "value": "sh", "arguments": ["sh", "-c", "exit 3"]});
    let ups = r.run(task("argv-1", cmd)).await;
    let end = last(&ups);
    assert_eq!(end.state, TaskState::TaskFailed);
    assert_eq!(end.message.as_deref(), Some("Command exited with status 3"));
    assert_eq!(end.extra.get("exit_code"), Some(&json!(3)));
    assert_eq!(end.exit_code(), Some(3));
}

#[tokio::test]
async fn environment_and_task_path() {
    let mut r = Runner::new();
    let bin = r.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("my-tool");
    std::fs::write(&tool, "#!/bin/sh\necho tool:$1\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cmd = json!({
        "value": "echo \"$FOO|$NOMAD_TASK_DIR|$NOMAD_SECRETS_DIR|$NOMAD_ALLOC_DIR|$MESOS_SANDBOX|$MESOS_DIRECTORY|$(pwd)\"; my-tool x",
        "environment": {"variables": [
            {"name": "FOO", "value": "bar baz"},
            {"name": "NOMAD_TASK_DIR", "value": "local"},
            {"name": "NOMAD_ALLOC_DIR", "value": "alloc"}
        ]}
    });
    let ups = r.run(task("env-1", cmd)).await;
    assert_eq!(last(&ups).state, TaskState::TaskFinished);
    let sb = r.sandbox("env-1");
    let alloc = r.root.join("allocs").join("env-1").join("alloc");
    let want = format!(
        "bar baz|{0}/local|{0}/secrets|{1}|{0}|{0}|{0}\ntool:x\n",
        sb.display(),
        alloc.display()
    );
    assert_eq!(read(sb.join("stdout")), want);
    // argv mode finds programs in the task path too.
    let cmd = json!({"shell": false, "value": "my-tool", "arguments": ["my-tool", "y"]});
    let ups = r.run(task("env-2", cmd)).await;
    assert_eq!(last(&ups).state, TaskState::TaskFinished);
    assert_eq!(read(r.sandbox("env-2").join("stdout")), "tool:y\n");
}

fn data(files: Value) -> String {
    b64(serde_json::to_string(&json!({ "files": files }))
        .unwrap()
        .as_bytes())
}

#[tokio::test]
async fn data_files_are_written_before_the_process_starts() {
    let mut r = Runner::new();
    let d = data(json!([
        {"path": "local/x.txt", "content": b64(b"from data\n"), "mode": "0600"},
        {"path": "secrets/token", "content": b64(b"s3cr3t")}
    ]));
    let t = task_with(
        "data-1",
        json!({"command": shell("cat local/x.txt secrets/token"), "data": d}),
    );
    let ups = r.run(t).await;
    assert_eq!(last(&ups).state, TaskState::TaskFinished);
    let sb = r.sandbox("data-1");
    assert_eq!(read(sb.join("stdout")), "from data\ns3cr3t");
    let mode = std::fs::metadata(sb.join("local/x.txt"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    let d = data(json!([{"path": "local/../../escape.txt", "content": b64(b"x")}]));
    let t = task_with("data-2", json!({"command": shell("true"), "data": d}));
    let ups = r.run(t).await;
    let end = last(&ups);
    assert_eq!(end.state, TaskState::TaskFailed);
    assert!(
        end.message
            .as_deref()
            .unwrap_or("")
            .contains("escapes the sandbox"),
        "{end:?}"
    );
    assert!(!r.root.join("tasks/escape.txt").exists());
}

#[tokio::test]
async fn tasks_of_one_alloc_share_the_alloc_dir() {
    let mut r = Runner::new();
    let labels = json!({"labels": [{"key": "dispatch.alloc", "value": "job/dispatch-1"}]});
    let a = task_with(
        "alloc-a",
        json!({"command": shell("echo shared > alloc/f"), "labels": labels}),
    );
    assert_eq!(last(&r.run(a).await).state, TaskState::TaskFinished);
    let b = task_with(
        "alloc-b",
        json!({"command": shell("cat alloc/f"), "labels": labels}),
    );
    assert_eq!(last(&r.run(b).await).state, TaskState::TaskFinished);
    assert_eq!(read(r.sandbox("alloc-b").join("stdout")), "shared\n");
}

#[tokio::test]
async fn kill_sends_killing_then_killed() {
    let mut r = Runner::new();
    r.launch(vec![task("kill-1", shell("sleep 60"))]).await;
    r.wait_state("kill-1", TaskState::TaskRunning).await;
    r.call(ClusterCall::Kill {
        task_id: Id::new("kill-1"),
        agent_id: None,
        grace_ns: None,
    });
    let ups = r.updates_to_end("kill-1").await;
    assert_eq!(
        states(&ups),
        vec![TaskState::TaskKilling, TaskState::TaskKilled]
    );
    // Killing it again answers with its state; an unknown task is gone.
    r.call(ClusterCall::Kill {
        task_id: Id::new("kill-1"),
        agent_id: None,
        grace_ns: None,
    });
    let again = r.update("kill-1").await;
    assert_eq!(
        (again.state, again.uuid.as_deref()),
        (TaskState::TaskKilled, None)
    );
    r.call(ClusterCall::Kill {
        task_id: Id::new("nope"),
        agent_id: None,
        grace_ns: None,
    });
    assert_eq!(r.update("nope").await.state, TaskState::TaskGone);
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_sigkilled_after_the_grace() {
    let mut r = Runner::new();
    let t = task_with(
        "trap-1",
        json!({
            "command": shell("trap '' TERM; touch ready; while :; do sleep 0.1; done"),
            "kill_policy": {"grace_period": {"nanoseconds": 500_000_000}}
        }),
    );
    r.launch(vec![t]).await;
    r.wait_state("trap-1", TaskState::TaskRunning).await;
    let ready = r.sandbox("trap-1").join("ready");
    let t0 = Instant::now();
    while !ready.exists() && t0.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.call(ClusterCall::Kill {
        task_id: Id::new("trap-1"),
        agent_id: None,
        grace_ns: None,
    });
    assert_eq!(r.update("trap-1").await.state, TaskState::TaskKilling);
    let t0 = Instant::now();
    let end = r.update("trap-1").await;
    let took = t0.elapsed();
    assert_eq!(end.state, TaskState::TaskKilled);
    assert_eq!(
        end.message.as_deref(),
        Some("Command terminated with signal SIGKILL")
    );
    // It outlived SIGTERM for the grace period (a lower bound on the runner's own timer),
    // then SIGKILL ended it (the message).
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

#[tokio::test]
async fn max_completion_time_fails_the_task() {
    let mut r = Runner::new();
    let t = task_with(
        "max-1",
        json!({"command": shell("sleep 30"), "max_completion_time": {"nanoseconds": 300_000_000}}),
    );
    let ups = r.run(t).await;
    let end = last(&ups);
    assert_eq!(end.state, TaskState::TaskFailed);
    assert_eq!(
        end.reason.as_deref(),
        Some("REASON_MAX_COMPLETION_TIME_REACHED")
    );
    assert!(
        end.message.as_deref().unwrap_or("").contains("300ms"),
        "{end:?}"
    );
}

/// A one-file HTTP server: `/web.txt` answers, anything else is 404.
async fn http_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf);
                let path = req.split_whitespace().nth(1).unwrap_or("");
                if path == "/slow" {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                let (status, body) = if path == "/files/web.txt" {
                    ("200 OK", "from the web\n")
                } else {
                    ("404 Not Found", "not found\n")
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn fetcher_copies_extracts_and_downloads() {
    let mut r = Runner::new();
    let src = r.root.parent().unwrap().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("plain.txt"), "plain\n").unwrap();
    std::fs::write(src.join("run.sh"), "#!/bin/sh\necho script ran\n").unwrap();
    // A tar.gz with inner/data.txt.
    let tgz = src.join("bundle.tar.gz");
    {
        let f = std::fs::File::create(&tgz).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let body = b"archived\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "inner/data.txt", &body[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    let web = http_server().await;
    let cmd = json!({
        "value": "cat sub/renamed.txt inner/data.txt web.txt && ./run.sh",
        "uris": [
            {"value": format!("file://{}", src.join("plain.txt").display()), "output_file": "sub/renamed.txt"},
            {"value": tgz.display().to_string()},
            {"value": src.join("run.sh").display().to_string(), "executable": true},
            {"value": format!("{web}/files/web.txt")}
        ]
    });
    let ups = r.run(task("fetch-1", cmd)).await;
    let sb = r.sandbox("fetch-1");
    assert_eq!(
        last(&ups).state,
        TaskState::TaskFinished,
        "{ups:?} {}",
        read(sb.join("stderr"))
    );
    assert_eq!(
        read(sb.join("stdout")),
        "plain\narchived\nfrom the web\nscript ran\n"
    );

    let missing = format!("{web}/files/missing.txt");
    let cmd = json!({"value": "touch ran", "uris": [{"value": missing}]});
    let ups = r.run(task("fetch-2", cmd)).await;
    let end = last(&ups);
    assert_eq!(end.state, TaskState::TaskFailed);
    assert_eq!(
        end.reason.as_deref(),
        Some("REASON_CONTAINER_LAUNCH_FAILED")
    );
    let msg = end.message.clone().unwrap_or_default();
    assert!(msg.contains(&missing) && msg.contains("404"), "{msg}");
    assert!(!r.sandbox("fetch-2").join("ran").exists());
}

#[tokio::test]
async fn accept_on_an_unknown_offer_drops_the_tasks() {
    let mut r = Runner::new();
    let _ = r.offer().await;
    r.call(ClusterCall::Accept {
        offer_ids: vec![Id::new("local-O999")],
        tasks: vec![task("drop-1", shell("true"))],
        refuse_seconds: 5.0,
    });
    let st = r.update("drop-1").await;
    assert_eq!(st.state, TaskState::TaskDropped);
    assert_eq!(st.reason.as_deref(), Some("REASON_INVALID_OFFERS"));
    assert_eq!(st.source.as_deref(), Some("SOURCE_MASTER"));
    assert!(st.uuid.is_none());
}

#[tokio::test]
async fn invalid_tasks_get_task_error() {
    let mut r = Runner::new();
    let big = task_with(
        "big-1",
        json!({"command": shell("true"), "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 100.0}}]}),
    );
    let mut wrong_agent = task("agent-1", shell("true"));
    wrong_agent.agent_id = Id::new("other");
    r.launch(vec![big, wrong_agent, task("", shell("true"))])
        .await;
    let st = r.update("big-1").await;
    assert_eq!(st.state, TaskState::TaskError);
    assert_eq!(st.reason.as_deref(), Some("REASON_TASK_INVALID"));
    assert_eq!(
        st.message.as_deref(),
        Some("Task uses more resources cpus=100 than available cpus=4")
    );
    assert_eq!(r.update("agent-1").await.state, TaskState::TaskError);
    assert_eq!(r.update("").await.state, TaskState::TaskError);
}

#[tokio::test]
async fn image_tasks_need_a_docker_engine() {
    if Path::new("/var/run/docker.sock").exists() || std::env::var_os("DOCKER_HOST").is_some() {
        eprintln!("a Docker engine may be present; skipping the no-engine test");
        return;
    }
    let mut r = Runner::new();
    let t = task_with(
        "img-1",
        json!({"command": shell("ffmpeg -version"),
               "container": {"type": "DOCKER", "docker": {"image": "jrottenberg/ffmpeg"}}}),
    );
    let ups = r.run(t).await;
    let end = last(&ups);
    assert_eq!(end.state, TaskState::TaskFailed);
    assert_eq!(
        end.reason.as_deref(),
        Some("REASON_CONTAINER_LAUNCH_FAILED")
    );
    assert_eq!(
        end.message.as_deref(),
        Some("task needs container image \"jrottenberg/ffmpeg\": no Docker engine reachable at /var/run/docker.sock; the local runner never runs image tasks on the host")
    );
}

#[tokio::test]
async fn suppress_rescinds_and_revive_offers_again() {
    let mut r = Runner::new();
    let offer = r.offer().await;
    r.call(ClusterCall::Suppress);
    let rescinded = r
        .wait_for(WAIT, |e| match e {
            ClusterEvent::Rescind(id) => Some(id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(rescinded, Some(offer.id.clone()));
    assert!(r.try_offer(Duration::from_millis(500)).await.is_none());
    r.call(ClusterCall::Revive(Vec::new()));
    let again = r.offer().await;
    assert_ne!(again.id, offer.id);
}

#[tokio::test]
async fn decline_filters_until_resources_free_up_or_revive() {
    let mut r = Runner::new();
    let offer = r.offer().await;
    // Accept a short task; the rest is declined for an hour.
    r.call(ClusterCall::Accept {
        offer_ids: vec![offer.id],
        tasks: vec![task("short-1", shell("sleep 0.5"))],
        refuse_seconds: 3600.0,
    });
    assert!(r.try_offer(Duration::from_millis(300)).await.is_none());
    r.updates_to_end("short-1").await;
    // The task freed resources: offered again despite the filter.
    let offer = r.offer().await;
    assert_eq!(offer.resources[0].scalar.as_ref().unwrap().value, 4.0);
    r.call(ClusterCall::Decline {
        offer_ids: vec![offer.id],
        refuse_seconds: 3600.0,
    });
    assert!(r.try_offer(Duration::from_millis(500)).await.is_none());
    r.call(ClusterCall::Revive(Vec::new()));
    r.offer().await;
}

#[tokio::test]
async fn reconciliation_explicit_and_implicit() {
    let mut r = Runner::new();
    r.launch(vec![task("rec-1", shell("sleep 60"))]).await;
    r.wait_state("rec-1", TaskState::TaskRunning).await;
    r.call(ClusterCall::Reconcile(vec![
        (Id::new("rec-1"), Some(Id::new("local-agent"))),
        (Id::new("never-heard-of"), None),
    ]));
    let known = r.update("rec-1").await;
    assert_eq!(known.state, TaskState::TaskRunning);
    assert_eq!(known.reason.as_deref(), Some("REASON_RECONCILIATION"));
    assert_eq!(known.source.as_deref(), Some("SOURCE_MASTER"));
    assert!(known.uuid.is_none());
    let unknown = r.update("never-heard-of").await;
    assert_eq!(unknown.state, TaskState::TaskGone);
    assert!(unknown.uuid.is_none());
    r.call(ClusterCall::Reconcile(vec![]));
    let implicit = r.update("rec-1").await;
    assert_eq!(
        (implicit.state, implicit.uuid.as_deref()),
        (TaskState::TaskRunning, None)
    );
    r.call(ClusterCall::Kill {
        task_id: Id::new("rec-1"),
        agent_id: None,
        grace_ns: Some(0),
    });
    assert_eq!(
        last(&r.updates_to_end("rec-1").await).state,
        TaskState::TaskKilled
    );
    // Finished tasks answer their terminal state.
    r.call(ClusterCall::Reconcile(vec![(Id::new("rec-1"), None)]));
    assert_eq!(r.update("rec-1").await.state, TaskState::TaskKilled);
}

/// Whether any live (non-zombie) process is in group `pgid`.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string()
    })
}

#[test]
fn restart_kills_leftovers_and_reports_them_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sandboxes");
    // A server that "crashes": its runtime goes away without killing anything.
    let old = tokio::runtime::Runtime::new().unwrap();
    let pgid: i32 = old.block_on(async {
        let mut r = Runner::on(&root);
        r.launch(vec![task("old-1", shell("sleep 60"))]).await;
        r.wait_state("old-1", TaskState::TaskRunning).await;
        read(r.sandbox("old-1").join(".pid"))
            .trim()
            .parse()
            .unwrap()
    });
    old.shutdown_background();
    assert!(
        group_alive(pgid),
        "the task should outlive the crashed runner"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = Runner::on(&root);
        let t0 = Instant::now();
        while group_alive(pgid) && t0.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !group_alive(pgid),
            "the leftover process group must be killed"
        );
        assert!(!r.sandbox("old-1").join(".pid").exists());
        r.call(ClusterCall::Reconcile(vec![(Id::new("old-1"), None)]));
        assert_eq!(r.update("old-1").await.state, TaskState::TaskGone);
        // The ID cannot be reused on this agent.
        r.launch(vec![task("old-1", shell("true"))]).await;
        assert_eq!(r.update("old-1").await.state, TaskState::TaskError);
    });
}

#[tokio::test]
async fn a_kill_during_the_fetch_cancels_the_launch() {
    let mut r = Runner::new();
    let web = http_server().await;
    let cmd = json!({"value": "touch ran", "uris": [{"value": format!("{web}/slow"), "output_file": "x"}]});
    r.launch(vec![task("slow-1", cmd)]).await;
    r.wait_state("slow-1", TaskState::TaskStarting).await;
    r.call(ClusterCall::Kill {
        task_id: Id::new("slow-1"),
        agent_id: None,
        grace_ns: None,
    });
    let end = r.update("slow-1").await;
    assert_eq!(end.state, TaskState::TaskKilled);
    assert_eq!(
        end.reason.as_deref(),
        Some("REASON_TASK_KILLED_DURING_LAUNCH")
    );
    assert!(!r.sandbox("slow-1").join("ran").exists());
}

#[tokio::test]
async fn command_user() {
    let mut r = Runner::new();
    let cmd = json!({"value": "true", "user": "no-such-user-x"});
    let end = last(&r.run(task("user-1", cmd)).await).clone();
    assert_eq!(end.state, TaskState::TaskFailed);
    assert!(
        end.message
            .as_deref()
            .unwrap_or("")
            .contains("'no-such-user-x'"),
        "{end:?}"
    );
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    // As root the task runs as that user (the sandbox root must be reachable for it).
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut r = Runner::on(&dir.path().join("sandboxes"));
    let cmd = json!({"value": "id -un; touch local/mine", "user": "nobody"});
    let ups = r.run(task("user-2", cmd)).await;
    let sb = r.sandbox("user-2");
    assert_eq!(
        last(&ups).state,
        TaskState::TaskFinished,
        "{ups:?} {}",
        read(sb.join("stderr"))
    );
    assert_eq!(read(sb.join("stdout")), "nobody\n");
}
