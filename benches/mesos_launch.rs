//! Throughput of the Mesos launch path, end to end: the real `dispatch server -mesos-master`
//! process against the master double (`crates/mesos-double`) running in **its own process**
//! (the `mesos-double` binary, so its CPU is not ours) with 1,000 simulated agents: offers,
//! ACCEPTs, status updates and acknowledgements over real HTTP on loopback, in both
//! encodings.
//!
//! `cargo bench --bench mesos_launch [-- --tasks N --stream M --agents A --allocation-interval S
//! --task-secs T --encodings json,protobuf --before OLD_DISPATCH_BIN]` prints one line per
//! server, encoding and phase (`--before`: the same runs with another `dispatch` binary,
//! alternating with this one, for a before/after in one run):
//!
//! * `drain`: N dispatches are queued while the cluster has no agents; then A agents appear
//!   and the queue drains. `launched_per_s` is N over the time from the agents' arrival to
//!   the N-th launch the double saw; `completed_per_s` is N over the time until the job
//!   summary shows N dead (dispatch accepted -> TASK_FINISHED recorded).
//! * `stream`: M more dispatches sent at full speed (64 connections) while the agents run
//!   them; `completed_per_s` is M over the time from the first request to the summary
//!   showing all of them dead (the HTTP intake shares the CPU).
//!
//! Both print `tasks_per_accept`, `acks_per_s` (acknowledgements the double received, per
//! second of the phase) and `cpu_ms_per_1000_tasks`: the Dispatch server's own CPU time
//! (utime+stime of its process) per 1,000 tasks, steadier than a rate on a shared machine.
//! The double's allocation interval defaults to a real master's 1 s (`--allocation-interval`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const JOB: &str = r#"job "bench" {
  type = "batch"
  parameterized {
    meta_required = ["input"]
  }
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
        args    = ["${NOMAD_META_input}"]
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#;

struct Options {
    tasks: usize,
    stream: usize,
    agents: usize,
    allocation_interval: f64,
    task_secs: f64,
    encodings: Vec<String>,
    /// Another `dispatch` binary (e.g. a release build of an older commit) run after this
    /// one for each encoding: before/after in one run.
    before: Option<PathBuf>,
}

fn options() -> Options {
    let mut o = Options {
        tasks: 50_000,
        stream: 20_000,
        agents: 1000,
        allocation_interval: 1.0,
        task_secs: 0.05,
        encodings: vec!["json".into(), "protobuf".into()],
        before: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = || -> f64 {
            value.parse().unwrap_or_else(|_| {
                eprintln!("mesos_launch: {} needs a number, got {value:?}", args[i]);
                std::process::exit(2)
            })
        };
        match args[i].as_str() {
            "--tasks" => o.tasks = number() as usize,
            "--stream" => o.stream = number() as usize,
            "--agents" => o.agents = number() as usize,
            "--allocation-interval" => o.allocation_interval = number(),
            "--task-secs" => o.task_secs = number(),
            "--encodings" => o.encodings = value.split(',').map(str::to_string).collect(),
            "--before" => o.before = Some(PathBuf::from(&value)),
            // `cargo bench` passes --bench; anything else is a mistake worth saying.
            "--bench" => {
                i += 1;
                continue;
            }
            other => {
                eprintln!("mesos_launch: unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    o
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// utime + stime of the process, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit(')').next().unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / clock_ticks()
    }
}

/// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Spawn `cmd`, read its output until a line contains `marker`, return the rest of that line.
fn spawn_and_read(mut cmd: Command, marker: &'static str, stdout: bool) -> (Proc, String) {
    if stdout {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    } else {
        cmd.stderr(Stdio::piped()).stdout(Stdio::null());
    }
    let mut child = cmd.spawn().expect("spawn");
    let out: Box<dyn std::io::Read + Send> = if stdout {
        Box::new(child.stdout.take().expect("stdout"))
    } else {
        Box::new(child.stderr.take().expect("stderr"))
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read every line (a full pipe would stall the child); report the marker once.
        let mut tx = Some(tx);
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(marker).nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.trim().to_string());
                }
            } else if line.contains("ERROR") || line.contains("panicked") {
                eprintln!("{line}");
            }
        }
    });
    let found = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no {marker:?} line from the child"));
    (Proc(child), found)
}

/// The `mesos-double` binary of this workspace, built (release) if needed.
fn double_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let status = Command::new(cargo)
        .current_dir(manifest)
        // Not `-p mesos-double`: built alone it would resolve features differently and
        // rebuild its dependencies.
        .args(["build", "--release", "--bin", "mesos-double"])
        .status()
        .expect("run cargo build for mesos-double");
    assert!(status.success(), "cargo build --bin mesos-double failed");
    Path::new(env!("CARGO_BIN_EXE_dispatch"))
        .parent()
        .expect("target dir")
        .join("mesos-double")
}

fn start_double(bin: &Path, o: &Options, encoding: &str) -> (Proc, String) {
    let mut cmd = Command::new(bin);
    cmd.args(["--port", "0", "--agents", "0", "--content-type", encoding]);
    cmd.args(["--task-secs", &o.task_secs.to_string()]);
    cmd.args(["--allocation-interval", &o.allocation_interval.to_string()]);
    spawn_and_read(cmd, "mesos-double listening on ", true)
}

fn start_server(bin: &Path, master: &str, encoding: &str, dir: &Path) -> (Proc, String) {
    let mut cmd = Command::new(bin);
    cmd.args(["server", "-bind", "127.0.0.1:0", "-mesos-master", master]);
    cmd.args([
        "-mesos-content-type",
        encoding,
        "-driver-allowlist",
        "raw_exec",
        "-log-level",
        "warn,dispatch::server=info",
    ]);
    cmd.arg("-data-dir").arg(dir);
    spawn_and_read(cmd, "Dispatch API listening on ", false)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    for _ in 0..100 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                if let Ok(v) = r.json().await {
                    return v;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET {url} did not answer");
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn dead(http: &reqwest::Client, server: &str) -> u64 {
    let s = get_json(http, &format!("{server}/v1/job/bench/summary")).await;
    s["Children"]["Dead"].as_u64().unwrap_or(0)
}

/// Send `n` dispatches over 64 concurrent requests; returns how many were answered 200.
async fn dispatch_many(http: &reqwest::Client, server: &str, n: usize) -> usize {
    let url = format!("{server}/v1/job/bench/dispatch");
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = (0..64).map(|_| {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        tokio::spawn(async move {
            let mut ok = 0;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let r = http
                    .put(&url)
                    .body(r#"{"Meta": {"input": "in.mp4"}}"#)
                    .send()
                    .await;
                ok += usize::from(r.is_ok_and(|r| r.status().is_success()));
            }
            ok
        })
    });
    let mut ok = 0;
    for w in workers.collect::<Vec<_>>() {
        ok += w.await.unwrap_or(0);
    }
    ok
}

/// What the double counted (`GET /double/counters`).
struct Counters(Value);

impl Counters {
    async fn read(http: &reqwest::Client, double: &str) -> Counters {
        Counters(get_json(http, &format!("{double}/double/counters")).await)
    }
    fn get(&self, path: &[&str]) -> u64 {
        path.iter()
            .fold(&self.0, |v, k| &v[*k])
            .as_u64()
            .unwrap_or(0)
    }
}

struct Phase<'a> {
    server: &'a str,
    encoding: &'a str,
    name: &'static str,
    agents: usize,
    tasks: usize,
    launched_in: Option<Duration>,
    completed_in: Duration,
    cpu: f64,
    before: Counters,
    after: Counters,
}

impl Phase<'_> {
    fn print(&self) {
        let delta = |path: &[&str]| self.after.get(path) - self.before.get(path);
        let secs = self.completed_in.as_secs_f64();
        let accepts = delta(&["calls", "ACCEPT"]);
        let launched = delta(&["tasks_launched"]);
        println!(
            "mesos_launch server={} encoding={} phase={} agents={} tasks={} launched_per_s={} \
             completed_per_s={:.0} tasks_per_accept={:.1} acks_per_s={:.0} \
             cpu_ms_per_1000_tasks={:.1} accepts={accepts} declines={} offers={} revives={} \
             suppresses={} violations={}",
            self.server,
            self.encoding,
            self.name,
            self.agents,
            self.tasks,
            self.launched_in.map_or("-".to_string(), |d| format!(
                "{:.0}",
                launched as f64 / d.as_secs_f64()
            )),
            self.tasks as f64 / secs,
            launched as f64 / accepts.max(1) as f64,
            delta(&["acks"]) as f64 / secs,
            self.cpu * 1000.0 * 1000.0 / self.tasks.max(1) as f64,
            delta(&["calls", "DECLINE"]),
            delta(&["offers_sent"]),
            delta(&["calls", "REVIVE"]),
            delta(&["calls", "SUPPRESS"]),
            self.after.get(&["violations"]),
        );
    }
}

async fn run(double_bin: &Path, o: &Options, encoding: &str, label: &str, server_bin: &Path) {
    let (_double, double_url) = start_double(double_bin, o, encoding);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, url) = start_server(server_bin, &double_url, encoding, &dir.path().join("data"));
    let http = reqwest::Client::new();
    wait_until("subscription", Duration::from_secs(60), async || {
        let s = get_json(&http, &format!("{url}/v1/agent/self")).await;
        s["config"]["Dispatch"]["Mesos"]["Connection"]["State"] == "subscribed"
    })
    .await;
    let job = dispatch::spec::parse_hcl(JOB, "bench.hcl").expect("job parses");
    http.put(format!("{url}/v1/jobs"))
        .json(&serde_json::json!({ "Job": job }))
        .send()
        .await
        .expect("register")
        .error_for_status()
        .expect("registered");

    // Drain: fill the queue with no agents, then let 1,000 agents empty it.
    let queued = dispatch_many(&http, &url, o.tasks).await;
    assert_eq!(queued, o.tasks, "every dispatch answered 200");
    let before = Counters::read(&http, &double_url).await;
    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    http.post(format!(
        "{double_url}/double/agents?count={}&cpus=8&mem=16384&disk=100000",
        o.agents
    ))
    .send()
    .await
    .expect("add agents")
    .error_for_status()
    .expect("agents added");
    let mut launched_in = None;
    let target = before.get(&["tasks_launched"]) + o.tasks as u64;
    wait_until("the queue to drain", Duration::from_secs(900), async || {
        if launched_in.is_none() {
            let c = Counters::read(&http, &double_url).await;
            if c.get(&["tasks_launched"]) >= target {
                launched_in = Some(started.elapsed());
            }
        }
        dead(&http, &url).await >= o.tasks as u64
    })
    .await;
    let completed_in = started.elapsed();
    let cpu = server.cpu_seconds() - cpu0;
    let after = Counters::read(&http, &double_url).await;
    Phase {
        server: label,
        encoding,
        name: "drain",
        agents: o.agents,
        tasks: o.tasks,
        launched_in,
        completed_in,
        cpu,
        before,
        after,
    }
    .print();

    // Stream: dispatch at full speed while the agents run what arrives.
    if o.stream > 0 {
        let before = Counters::read(&http, &double_url).await;
        let cpu0 = server.cpu_seconds();
        let started = Instant::now();
        let sent = dispatch_many(&http, &url, o.stream).await;
        assert_eq!(sent, o.stream, "every dispatch answered 200");
        let total = (o.tasks + o.stream) as u64;
        wait_until(
            "the stream to finish",
            Duration::from_secs(900),
            async || dead(&http, &url).await >= total,
        )
        .await;
        let completed_in = started.elapsed();
        let cpu = server.cpu_seconds() - cpu0;
        let after = Counters::read(&http, &double_url).await;
        Phase {
            server: label,
            encoding,
            name: "stream",
            agents: o.agents,
            tasks: o.stream,
            launched_in: None,
            completed_in,
            cpu,
            before,
            after,
        }
        .print();
    }
}

fn main() {
    let o = options();
    let double_bin = double_binary();
    println!(
        "# mesos_launch: {} cores, load average {}, double: {} agents x 8 cpus, allocation \
         interval {} s, tasks finish after {} s",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        o.agents,
        o.allocation_interval,
        o.task_secs,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let this = PathBuf::from(env!("CARGO_BIN_EXE_dispatch"));
    for encoding in &o.encodings {
        rt.block_on(run(&double_bin, &o, encoding, "this", &this));
        if let Some(before) = &o.before {
            rt.block_on(run(&double_bin, &o, encoding, "before", before));
        }
    }
}
