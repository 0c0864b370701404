//! `mesos-double`: the strict Mesos master + agent double in its own process (see the
//! crate's documentation). Prints `mesos-double listening on http://ADDR` once it accepts
//! connections and serves until killed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use mesos_double::{Config, Encoding, MesosDouble, TaskBehavior};

#[derive(Parser)]
#[command(
    name = "mesos-double",
    about = "A strict Mesos master + agents test double"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 takes any free port (printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Simulated agents (`agent-1` ...), each offering the resources below.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    #[arg(long, default_value_t = 8.0)]
    cpus: f64,
    /// Memory per agent, MB.
    #[arg(long, default_value_t = 16384.0)]
    mem: f64,
    /// Disk per agent, MB.
    #[arg(long, default_value_t = 100_000.0)]
    disk: f64,
    /// Every launched task finishes (exit 0) this many seconds after it started.
    #[arg(long, default_value_t = 0.05)]
    task_secs: f64,
    /// Seconds between HEARTBEAT events (a real master: 15).
    #[arg(long, default_value_t = 15.0)]
    heartbeat_secs: f64,
    /// Seconds between allocation cycles (a real master's `--allocation_interval`: 1). 0
    /// offers each agent's resources as soon as they are free, one OFFERS event per agent.
    #[arg(long, default_value_t = 0.0)]
    allocation_interval: f64,
    /// Speak only this encoding (`json` or `protobuf`): calls in the other are refused (415).
    /// Default: both, as a real master.
    #[arg(long, value_parser = ["json", "protobuf"])]
    content_type: Option<String>,
    /// Register in ZooKeeper as a contending master (`zk://host:port,host:port/path`), as a
    /// master started with `--zk` does.
    #[arg(long, value_name = "URL")]
    zk: Option<String>,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mesos-double: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(args));
    std::process::exit(code);
}

async fn run(args: Args) -> i32 {
    let secs = |s: f64, flag: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| format!("--{flag} must be a number of seconds >= 0, got {s}"))
    };
    let allocation_interval = match secs(args.allocation_interval, "allocation-interval") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mesos-double: {e}");
            return 2;
        }
    };
    let (after, heartbeat) = match (
        secs(args.task_secs, "task-secs"),
        secs(args.heartbeat_secs, "heartbeat-secs"),
    ) {
        (Ok(a), Ok(h)) if !h.is_zero() => (a, h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("mesos-double: {e}");
            return 2;
        }
        _ => {
            eprintln!("mesos-double: --heartbeat-secs must be more than 0");
            return 2;
        }
    };
    let only_encoding = match args.content_type.as_deref() {
        Some("json") => Some(Encoding::Json),
        Some(_) => Some(Encoding::Protobuf),
        None => None,
    };
    let cfg = Config {
        heartbeat_interval: heartbeat,
        default_behavior: TaskBehavior::Finish { after },
        only_encoding,
        allocation_interval,
        ..Config::default()
    };
    let bind = SocketAddr::new(args.host, args.port);
    let double = match MesosDouble::start_on(bind, cfg).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mesos-double: cannot listen on {bind}: {e}");
            return 1;
        }
    };
    for i in 1..=args.agents {
        double.offer(&format!("agent-{i}"), args.cpus, args.mem, args.disk);
    }
    if let Some(url) = &args.zk {
        let Some((servers, path)) = url
            .strip_prefix("zk://")
            .and_then(|rest| rest.find('/').map(|i| (&rest[..i], &rest[i..])))
        else {
            eprintln!("mesos-double: --zk {url:?}: expected zk://host:port,host:port/path");
            return 2;
        };
        match double.register_in_zookeeper(servers, path).await {
            Ok(node) => println!("mesos-double registered in ZooKeeper as {node}"),
            Err(e) => {
                eprintln!("mesos-double: {e}");
                return 1;
            }
        }
    }
    println!("mesos-double listening on {}", double.url());
    match tokio::signal::ctrl_c().await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mesos-double: {e}");
            1
        }
    }
}
