//! Metrics against the real server: exact queue-depth and demand gauges after known
//! dispatches (pending for lack of capacity, finished, failed), back to zero as the queue
//! drains; `promtool check metrics` on our output; `promtool check rules` on the shipped
//! rules; the same values over DogStatsD on a UDP socket bound here.
//!
//! promtool comes from the Debian package `prometheus` (`scripts/test-deps.sh` installs it).
//! These tests fail, never skip, when it is missing.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, wait_until, TestServer};
use serde_json::{json, Value};

const MIB: f64 = 1048576.0;

struct Client {
    url: String,
    http: reqwest::Client,
}

impl Client {
    fn new(server: &TestServer) -> Client {
        Client {
            url: server.url(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> String {
        let (status, text) = self.send(method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {text}");
        text
    }

    async fn register(&self, id: &str, script: &str, cpu: i64, memory_mb: i64) {
        let job = json!({"Job": {
            "ID": id, "Type": "batch",
            "ParameterizedJob": {"Payload": "optional", "MetaOptional": ["n"]},
            "TaskGroups": [{
                "Name": "g",
                "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
                "Tasks": [{
                    "Name": "t", "Driver": "raw_exec",
                    "Config": {"command": "/bin/sh", "args": ["-c", script]},
                    "Resources": {"CPU": cpu, "MemoryMB": memory_mb, "DiskMB": 10}
                }]
            }]
        }});
        self.ok("PUT", "/v1/jobs", Some(job)).await;
    }

    async fn dispatch(&self, id: &str, n: usize) {
        for i in 0..n {
            self.ok(
                "PUT",
                &format!("/v1/job/{id}/dispatch"),
                Some(json!({"Meta": {"n": i.to_string()}})),
            )
            .await;
        }
    }

    async fn metrics(&self) -> String {
        self.ok("GET", "/metrics", None).await
    }
}

/// `name{labels}` -> value, labels in the order rendered.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The value of a sample with these labels (any order), or `None`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text).into_iter().find_map(|(k, v)| {
        let (n, rest) = k.split_once('{').unwrap_or((k.as_str(), "}"));
        if n != name {
            return None;
        }
        let body = rest.trim_end_matches('}');
        let mut have: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split(',').collect()
        };
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        have.sort();
        want.sort();
        (have == want).then_some(v)
    })
}

fn depth(text: &str, job: &str, state: &str) -> Option<f64> {
    value(
        text,
        "dispatch_queue_depth",
        &[("job", job), ("state", state)],
    )
}

/// Poll `/metrics` until `check` holds (or panic with the last text after `timeout`).
async fn wait_for(
    client: &Client,
    what: &str,
    timeout: Duration,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = client.metrics().await;
        if check(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; last /metrics:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn promtool() -> &'static str {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "promtool not found: install the Debian package `prometheus` (scripts/test-deps.sh does)"
    );
    "promtool"
}

fn promtool_check_metrics(text: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shipped_rules_pass_promtool() {
    let rules = repo_root().join("deploy/prometheus/rules.yml");
    let out = Command::new(promtool())
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules {}:\n{}{}",
        rules.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // as installed: the config, its rules and the scrape's token file side by side
    let dir = tempfile::tempdir().unwrap();
    for file in ["prometheus.yml", "rules.yml"] {
        std::fs::copy(
            repo_root().join("deploy/prometheus").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("dispatch-metrics.token"), "").unwrap();
    let config = dir.path().join("prometheus.yml");
    let out = Command::new(promtool())
        .args(["check", "config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check config {}:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "deploy/grafana/dispatch.json",
        "deploy/datadog/dashboard.json",
    ] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect(file);
        let _: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// Pending only (no capacity at all): exact gauges, dispatch outcomes, drain on stop, the
/// JSON summary, and promtool on the output. Does not need tasks to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_gauges_are_exact_and_drain_on_stop() {
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    let c = Client::new(&server);
    c.register("waiter", "sleep 30", 1000, 64).await;
    c.register("other", "sleep 30", 500, 32).await;
    c.dispatch("waiter", 3).await;
    c.dispatch("other", 2).await;
    // A rejection (unknown meta key) and an idempotent replay.
    let (status, _) = c
        .send(
            "PUT",
            "/v1/job/waiter/dispatch",
            Some(json!({"Meta": {"bad": "1"}})),
        )
        .await;
    assert_eq!(status, 400);
    for _ in 0..2 {
        c.ok(
            "PUT",
            "/v1/job/other/dispatch?idempotency_token=once",
            Some(json!({"Meta": {}})),
        )
        .await;
    }
    let (status, _) = c
        .send("PUT", "/v1/job/nosuch/dispatch", Some(json!({})))
        .await;
    assert_eq!(status, 404);

    let text = c.metrics().await;
    assert_eq!(depth(&text, "waiter", "pending"), Some(3.0), "{text}");
    assert_eq!(depth(&text, "waiter", "running"), Some(0.0));
    assert_eq!(depth(&text, "other", "pending"), Some(3.0));
    let w = [("job", "waiter")];
    let o = [("job", "other")];
    assert_eq!(value(&text, "dispatch_pending_cpus", &w), Some(3.0));
    assert_eq!(
        value(&text, "dispatch_pending_memory_bytes", &w),
        Some(3.0 * 64.0 * MIB)
    );
    assert_eq!(
        value(&text, "dispatch_pending_disk_bytes", &w),
        Some(3.0 * 10.0 * MIB)
    );
    assert_eq!(value(&text, "dispatch_pending_gpus", &w), Some(0.0));
    assert_eq!(value(&text, "dispatch_pending_cpus", &o), Some(1.5));
    let requests = "dispatch_dispatch_requests_total";
    let accepted = |job| [("job", job), ("outcome", "accepted"), ("reason", "none")];
    assert_eq!(value(&text, requests, &accepted("waiter")), Some(3.0));
    assert_eq!(value(&text, requests, &accepted("other")), Some(3.0));
    assert_eq!(
        value(
            &text,
            requests,
            &[("job", "other"), ("outcome", "replay"), ("reason", "none")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            requests,
            &[
                ("job", "waiter"),
                ("outcome", "rejected"),
                ("reason", "unpermitted_meta")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            requests,
            &[
                ("job", "_unknown"),
                ("outcome", "rejected"),
                ("reason", "parent_not_found")
            ]
        ),
        Some(1.0)
    );
    assert!(
        !text.contains("dispatch-"),
        "no dispatch IDs in labels:\n{text}"
    );
    assert!(
        text.contains("dispatch_http_request_duration_seconds_bucket{route=\"/v1/job/:id/dispatch\",method=\"PUT\",status=\"2xx\",le=\"0.005\"}"),
        "HTTP latency is a histogram per route template:\n{text}"
    );
    assert!(
        text.contains("# TYPE dispatch_store_commit_seconds histogram"),
        "{text}"
    );
    promtool_check_metrics(&text);

    // Same text at the Nomad-compatible address; JSON summary without format.
    let (status, nomad) = c.send("GET", "/v1/metrics?format=prometheus", None).await;
    assert_eq!(status, 200);
    assert_eq!(depth(&nomad, "waiter", "pending"), Some(3.0));
    let summary: Value =
        serde_json::from_str(&c.ok("GET", "/v1/metrics", None).await).expect("json");
    let gauge = summary["Gauges"]
        .as_array()
        .expect("Gauges")
        .iter()
        .find(|g| {
            g["Name"] == "dispatch_queue_depth"
                && g["Labels"]["job"] == "waiter"
                && g["Labels"]["state"] == "pending"
        })
        .cloned()
        .unwrap_or_else(|| panic!("no queue depth gauge in {summary}"));
    assert_eq!(gauge["Value"], 3.0);
    assert!(summary["Timestamp"].is_string());
    assert!(summary["Counters"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    assert!(summary["Samples"].as_array().is_some_and(|c| !c.is_empty()));

    // Drain: stopping the parents stops their pending children.
    c.ok("DELETE", "/v1/job/waiter", None).await;
    c.ok("DELETE", "/v1/job/other?purge=true", None).await;
    let text = c.metrics().await;
    assert_eq!(depth(&text, "waiter", "pending"), Some(0.0), "{text}");
    assert_eq!(depth(&text, "waiter", "stopped"), Some(3.0));
    assert_eq!(value(&text, "dispatch_pending_cpus", &w), Some(0.0));
    assert_eq!(value(&text, "dispatch_pending_memory_bytes", &w), Some(0.0));
    // A purged job's gauges go to zero (and expire later).
    assert!(
        matches!(depth(&text, "other", "pending"), None | Some(0.0)),
        "{text}"
    );
    assert!(matches!(
        value(&text, "dispatch_pending_cpus", &o),
        None | Some(0.0)
    ));
    promtool_check_metrics(&text);
}

/// With one cpu: finished and failed dispatches, one running and two pending for lack of
/// capacity; exact gauges; back to zero when the job is stopped. Needs the local runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_gauges_follow_the_runner() {
    let server = TestServer::start_with(&["-local-cpus", "1", "-local-memory-mb", "1024"]);
    let c = Client::new(&server);
    c.register("ok", "true", 500, 32).await;
    c.register("bad", "false", 500, 32).await;
    c.register("sleeper", "sleep 30", 1000, 64).await;
    c.dispatch("ok", 2).await;
    c.dispatch("bad", 1).await;
    wait_for(
        &c,
        "2 complete and 1 failed",
        Duration::from_secs(30),
        |t| depth(t, "ok", "complete") == Some(2.0) && depth(t, "bad", "failed") == Some(1.0),
    )
    .await;
    c.dispatch("sleeper", 3).await;
    let text = wait_for(&c, "a sleeper running", Duration::from_secs(30), |t| {
        depth(t, "sleeper", "running") == Some(1.0)
    })
    .await;
    let s = [("job", "sleeper")];
    assert_eq!(depth(&text, "sleeper", "pending"), Some(2.0), "{text}");
    assert_eq!(value(&text, "dispatch_pending_cpus", &s), Some(2.0));
    assert_eq!(
        value(&text, "dispatch_pending_memory_bytes", &s),
        Some(2.0 * 64.0 * MIB)
    );
    for (job, state, n) in [
        ("ok", "complete", 2.0),
        ("ok", "pending", 0.0),
        ("ok", "running", 0.0),
        ("ok", "failed", 0.0),
        ("bad", "failed", 1.0),
        ("bad", "complete", 0.0),
    ] {
        assert_eq!(depth(&text, job, state), Some(n), "{job} {state}:\n{text}");
    }
    assert_eq!(
        value(&text, "dispatch_cluster_connected", &[("backend", "local")]),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            "dispatch_tasks_launched_total",
            &[("backend", "local")]
        )
        .unwrap_or(0.0)
            >= 4.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "dispatch_queue_wait_seconds_count", &[("job", "ok")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "dispatch_task_run_seconds_count", &[("job", "bad")]),
        Some(1.0)
    );
    promtool_check_metrics(&text);

    c.ok("DELETE", "/v1/job/sleeper", None).await;
    let text = wait_for(
        &c,
        "the sleeper queue to drain",
        Duration::from_secs(30),
        |t| {
            depth(t, "sleeper", "pending") == Some(0.0)
                && depth(t, "sleeper", "running") == Some(0.0)
        },
    )
    .await;
    assert_eq!(depth(&text, "sleeper", "stopped"), Some(3.0), "{text}");
    assert_eq!(value(&text, "dispatch_pending_cpus", &s), Some(0.0));
}

/// DogStatsD: the same gauge values arrive over UDP, with tags instead of labels and the
/// names Datadog's openmetrics check would give them (`dispatch.queue_depth`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dogstatsd_lines_carry_the_same_values() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let addr = socket.local_addr().expect("udp addr").to_string();
    let server = TestServer::start_with(&["-local-cpus", "0", "-statsd-addr", &addr]);
    let c = Client::new(&server);
    c.register("statsd", "sleep 30", 1000, 64).await;
    c.dispatch("statsd", 4).await;
    let text = c.metrics().await; // also refreshes the gauges for both exporters
    assert_eq!(depth(&text, "statsd", "pending"), Some(4.0), "{text}");

    let want = [
        (
            "dispatch.queue_depth",
            "4",
            &["job:statsd", "state:pending"][..],
        ),
        ("dispatch.pending_cpus", "4", &["job:statsd"][..]),
        (
            "dispatch.pending_memory_bytes",
            "268435456",
            &["job:statsd"][..],
        ),
    ];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 65536];
    let mut found = [false; 3];
    while Instant::now() < deadline && !found.iter().all(|f| *f) {
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        for line in String::from_utf8_lossy(&buf[..n]).lines() {
            // name:value|g[|#tag:v,tag:v][|T<timestamp>]
            let Some((name, rest)) = line.split_once(':') else {
                continue;
            };
            let mut parts = rest.split('|');
            let v = parts.next().unwrap_or_default();
            let kind = parts.next().unwrap_or_default();
            let tags: Vec<&str> = parts
                .filter_map(|p| p.strip_prefix('#'))
                .flat_map(|t| t.split(','))
                .collect();
            for (i, (wname, wvalue, wtags)) in want.iter().enumerate() {
                if name == *wname
                    && kind == "g"
                    && wtags.iter().all(|t| tags.contains(t))
                    && v.parse::<f64>().ok() == wvalue.parse::<f64>().ok()
                {
                    found[i] = true;
                }
            }
            seen.push(line.to_string());
        }
    }
    assert!(
        found.iter().all(|f| *f),
        "missing DogStatsD lines {:?}; received:\n{}",
        want.iter()
            .zip(found)
            .filter(|(_, f)| !f)
            .map(|(w, _)| w.0)
            .collect::<Vec<_>>(),
        seen.join("\n")
    );
}

/// Every request is labelled with the template of the route that answered it, including
/// routes the router lists directly (`/v1/allocations`, `/v1/system/gc`, `/v1/sandbox/...`)
/// and job sub-resources; a path no route matches is `other`, never the raw path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_latency_is_labelled_by_route_template() {
    let server = TestServer::start_with(&[]);
    let c = Client::new(&server);
    let eval = "00000000-0000-0000-0000-000000000000";
    let requests = [
        (
            "GET",
            "/v1/allocations".to_string(),
            "/v1/allocations",
            "2xx",
        ),
        ("PUT", "/v1/system/gc".to_string(), "/v1/system/gc", "2xx"),
        (
            "GET",
            "/v1/sandbox/no-task/no-token/local/x".to_string(),
            "/v1/sandbox/:task_id/:token/:path",
            "4xx",
        ),
        (
            "GET",
            format!("/v1/evaluation/{eval}"),
            "/v1/evaluation/:id",
            "4xx",
        ),
        (
            "GET",
            "/v1/job/nope/deployments".to_string(),
            "/v1/job/:id/deployments",
            "2xx",
        ),
        ("GET", "/v1/job/nope".to_string(), "/v1/job/:id", "4xx"),
        ("GET", "/v1/no/such/thing".to_string(), "other", "4xx"),
    ];
    for (method, path, _, _) in &requests {
        c.send(method, path, None).await;
    }
    let text = c.ok("GET", "/metrics", None).await;
    for (method, path, route, status) in &requests {
        let labels = [("route", *route), ("method", *method), ("status", *status)];
        assert!(
            value(
                &text,
                "dispatch_http_request_duration_seconds_count",
                &labels
            )
            .is_some_and(|n| n >= 1.0),
            "{method} {path} labelled {route} {status}:\n{text}"
        );
    }
    assert!(
        !text.contains("no/such/thing"),
        "raw paths stay out:\n{text}"
    );
}

/// The shipped Prometheus config scrapes a server with ACLs on through its bearer-token
/// file: with an empty file Prometheus is refused (403), with a metrics token it gets
/// through. Seen from the server: `/metrics` answers counted by status class.
#[test]
fn prometheus_scrapes_with_the_shipped_bearer_token_config() {
    let dir = tempfile::tempdir().unwrap();
    let management = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";
    let boot = dir.path().join("bootstrap.token");
    std::fs::write(&boot, management).unwrap();
    let server = TestServer::start_with(&[
        "-acl-enabled",
        "-acl-bootstrap-token-file",
        boot.to_str().unwrap(),
        "-local-cpus",
        "0",
    ]);
    let dispatch_cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .args(args)
            .env("DISPATCH_ADDR", server.url())
            .env("DISPATCH_TOKEN", management)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let policy = repo_root().join("deploy/acl/metrics.hcl");
    dispatch_cli(&[
        "acl",
        "policy",
        "apply",
        "metrics",
        policy.to_str().unwrap(),
    ]);
    let out = dispatch_cli(&[
        "acl",
        "token",
        "create",
        "-name",
        "prometheus",
        "-policy",
        "metrics",
    ]);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("Secret ID"))
        .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
        .expect("the token's secret");

    // the shipped config, pointed at this server, scraping every second
    let shipped =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/prometheus.yml")).unwrap();
    let config = shipped
        .replace("127.0.0.1:4646", &server.addr().to_string())
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    assert!(
        config.contains("credentials_file: dispatch-metrics.token"),
        "{config}"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(
        repo_root().join("deploy/prometheus/rules.yml"),
        dir.path().join("rules.yml"),
    )
    .unwrap();
    let token_file = dir.path().join("dispatch-metrics.token");
    std::fs::write(&token_file, "").unwrap();
    let prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package prometheus; scripts/test-deps.sh)");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prometheus = Kill(prometheus);
    let scrapes = |class: &str| -> f64 {
        let out = Command::new("curl")
            .args(["-fsS", "-H", &format!("X-Nomad-Token: {management}")])
            .arg(format!("{}/metrics", server.url()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        value(
            &text,
            "dispatch_http_request_duration_seconds_count",
            &[("route", "/metrics"), ("method", "GET"), ("status", class)],
        )
        .unwrap_or(0.0)
    };
    // no token: refused (this test's own reads are never 4xx)
    wait_until(60, "Prometheus refused without a token", || {
        scrapes("4xx") >= 1.0
    });
    // the metrics token: Prometheus gets through (beyond this test's own 2xx reads)
    std::fs::write(&token_file, &secret).unwrap();
    let baseline = scrapes("2xx");
    let mut own = 1.0;
    wait_until(60, "Prometheus scraping with the token", || {
        let now = scrapes("2xx");
        let prometheus = now - baseline - own;
        own += 1.0;
        prometheus >= 1.0
    });
}
