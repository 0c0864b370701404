//! Throughput of the Mesos path, end to end: the real `dispatch server -mesos-master` process
//! against the master double (`crates/mesos-double`) (offers, ACCEPTs, status updates,
//! acknowledgements over real HTTP on loopback), in both encodings.
//!
//! `cargo bench --bench mesos_launch [-- N]` prints, per encoding: dispatches completed per
//! second (dispatch accepted -> TASK_FINISHED recorded), ACCEPT calls and tasks per ACCEPT.
//! The double runs in this process and shares the 2 cores with the server: a lower bound.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesos_double::{Config, MesosDouble, TaskBehavior};

const JOB: &str = r#"job "bench" {
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
        command = "/bin/true"
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#;

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the server logs once it listens (kept at info by the `-log-level` below).
const LISTENING: &str = "Dispatch API listening on ";

/// `dispatch server` on port 0; its URL is read from its log.
fn start_server(master: &str, encoding: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args([
            "server",
            "-data-dir",
            dir.path().join("data").to_str().unwrap_or("data"),
            "-bind",
            "127.0.0.1:0",
            "-mesos-master",
            master,
            "-mesos-content-type",
            encoding,
            "-driver-allowlist",
            "raw_exec",
            "-log-level",
            "warn,dispatch::server=info",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dispatch server");
    let stderr = child.stderr.take().expect("server stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read every line (a full pipe would stall the server); report the address once.
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split(LISTENING).nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs the address it listens on");
    Server {
        child,
        url,
        _dir: dir,
    }
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if http
            .get(format!("{url}/v1/agent/health"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

async fn run(encoding: &str, n: usize) {
    let double = MesosDouble::start(Config {
        default_behavior: TaskBehavior::Finish {
            after: Duration::from_millis(10),
        },
        ..Config::default()
    })
    .await;
    let server = start_server(&double.url(), encoding);
    let http = reqwest::Client::new();
    wait_ready(&http, &server.url).await;
    let job = dispatch::spec::parse_hcl(JOB, "bench.hcl").expect("job parses");
    http.put(format!("{}/v1/jobs", server.url))
        .json(&serde_json::json!({ "Job": job }))
        .send()
        .await
        .expect("register")
        .error_for_status()
        .expect("registered");
    for i in 0..4 {
        double.offer(&format!("agent-{i}"), 32.0, 65536.0, 100_000.0);
    }

    let started = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let http = http.clone();
        let url = format!("{}/v1/job/bench/dispatch", server.url);
        handles.push(tokio::spawn(async move {
            let r = http.put(url).json(&serde_json::json!({})).send().await;
            drop(permit);
            r.map(|r| r.status().is_success()).unwrap_or(false)
        }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap_or(false) {
            ok += 1;
        }
    }
    let dispatched = started.elapsed();
    loop {
        let summary: serde_json::Value = http
            .get(format!("{}/v1/job/bench/summary", server.url))
            .send()
            .await
            .expect("summary")
            .json()
            .await
            .expect("summary json");
        let dead = summary["Children"]["Dead"].as_u64().unwrap_or(0) as usize;
        if dead >= ok {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            println!("{encoding}: timed out with {dead}/{ok} done");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let accepts = double.accepted_calls("ACCEPT").len();
    let launched = double.launched_tasks().len();
    let acks = double.acks().len();
    println!(
        "encoding={encoding} dispatches={ok} dispatched_in_ms={} all_finished_in_ms={} \
         completed_per_s={:.0} accepts={accepts} tasks_per_accept={:.1} launched={launched} acks={acks}",
        dispatched.as_millis(),
        elapsed.as_millis(),
        ok as f64 / elapsed.as_secs_f64(),
        launched as f64 / accepts.max(1) as f64,
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for encoding in ["json", "protobuf"] {
        rt.block_on(run(encoding, n));
    }
}
