//! `-mesos-master zk://...`: the leading master found in a real ZooKeeper (Debian's
//! `zookeeper`, started by the test as a throwaway server), where the master doubles register
//! as Mesos masters do (`json.info_` ephemeral sequential nodes with their `MasterInfo`).

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/mesos.rs"]
mod mesos;
#[path = "common/zookeeper.rs"]
mod zookeeper;

use common::{dispatched_id, get_json, ok, show, status_of, wait_until, TestServer};
use mesos::{address_in_zk, fast_config, master, server};
use mesos_double::Config;
use zookeeper::{fresh_path, shared, ZooKeeper};

fn register(server: &TestServer, file: &str) {
    let path = common::repo_root().join(file);
    ok(&common::dispatch(
        server,
        &["job", "run", path.to_str().unwrap()],
    ));
}

fn connection(s: &TestServer) -> serde_json::Value {
    get_json(s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"]["Connection"].clone()
}

/// Dispatch the transcode job and wait for it (the double finishes the task).
fn transcode_runs(s: &TestServer) -> String {
    let out = ok(&common::dispatch(
        s,
        &["job", "dispatch", "-meta", "input=/tmp/x.mov", "transcode"],
    ));
    let child = dispatched_id(&out);
    assert_eq!(status_of(s, &child), "dead");
    child
}

/// The lowest sequence leads; when its node goes (its session ended) the framework moves to
/// the next master at once, with its FrameworkID, although the old master never closed the
/// stream: with 15 s heartbeats, waiting for it to fall silent would take 75 s.
#[test]
fn the_leader_in_zookeeper_is_followed_with_the_same_framework_id() {
    let zk = shared();
    let path = fresh_path();
    let a = master(Config::default());
    let b = master(Config::default());
    a.register_in_zk(&zk.servers(), &path);
    b.register_in_zk(&zk.servers(), &path);
    a.offer("agent-a", 2.0, 2048.0, 4096.0);
    b.offer("agent-b", 2.0, 2048.0, 4096.0);
    let s = server(&zk.url(&path), "json", &[]);
    wait_until(20, "SUBSCRIBED on the first registered master", || {
        a.is_subscribed()
    });
    assert!(b.calls().is_empty(), "only the leader is asked");
    let id = a.framework_id().unwrap();
    register(&s, "jobs/transcode.hcl");
    transcode_runs(&s);
    assert_eq!(a.launched_tasks().len(), 1);
    let info = &get_json(&s, "/v1/agent/self")["config"]["Dispatch"]["Mesos"];
    assert_eq!(
        info["Masters"],
        serde_json::json!([zk.url(&path)]),
        "{info}"
    );
    assert_eq!(connection(&s)["Leader"], a.url());

    a.withdraw_from_zk();
    wait_until(20, "SUBSCRIBED on the new leader", || b.is_subscribed());
    assert_eq!(b.framework_id().as_deref(), Some(id.as_str()));
    let resubscribe = b.accepted_calls("SUBSCRIBE").pop().unwrap();
    assert_eq!(resubscribe["framework_id"]["value"], id.as_str());
    // The framework left the old master's stream itself.
    wait_until(10, "the old stream closed", || !a.is_subscribed());
    transcode_runs(&s);
    assert_eq!(b.launched_tasks().len(), 1);
    assert_eq!(a.launched_tasks().len(), 1);
    wait_until(10, "the new leader on /v1/agent/self", || {
        connection(&s)["Leader"] == b.url().as_str()
    });
    assert!(
        s.log().contains("ZooKeeper names a new leading master"),
        "{}",
        s.log()
    );
}

/// Before any master registers, the reason is on `/v1/agent/self`; a registered leader that
/// does not answer is skipped for the next contender.
#[test]
fn no_master_is_reported_and_a_dead_leader_is_skipped() {
    let zk = shared();
    let path = fresh_path();
    let s = server(&zk.url(&path), "protobuf", &[]);
    wait_until(20, "the missing registration reported", || {
        connection(&s)["LastError"].as_str().is_some_and(|e| {
            e.contains(&format!(
                "no Mesos master has registered in ZooKeeper at {}",
                zk.url(&path)
            ))
        })
    });
    let nobody = common::closed_port();
    let _dead = address_in_zk(&zk.servers(), &path, nobody.addr);
    let live = master(fast_config());
    live.register_in_zk(&zk.servers(), &path);
    wait_until(20, "SUBSCRIBED on the live master", || live.is_subscribed());
    wait_until(10, "the live master on /v1/agent/self", || {
        connection(&s)["Leader"] == live.url().as_str()
    });
}

/// ZooKeeper going away does not take the framework down (the masters still answer for
/// themselves); once it is back, leader changes are followed again.
#[test]
fn zookeeper_down_then_up() {
    let zk = ZooKeeper::start();
    let path = "/mesos";
    let a = master(fast_config());
    a.register_in_zk(&zk.servers(), path);
    a.offer("agent-a", 2.0, 2048.0, 4096.0);
    let s = server(&zk.url(path), "json", &[]);
    wait_until(20, "SUBSCRIBED", || a.is_subscribed());
    let id = a.framework_id().unwrap();
    register(&s, "jobs/transcode.hcl");

    zk.stop();
    wait_until(20, "the lost ZooKeeper connection noticed", || {
        s.log().contains("lost the connection to ZooKeeper")
    });
    transcode_runs(&s);
    assert!(a.is_subscribed());

    zk.restart();
    wait_until(30, "reconnected to ZooKeeper", || {
        s.log().contains("reconnected to ZooKeeper")
            || s.log()
                .contains("watching the masters' registrations in ZooKeeper")
                && s.log().matches("watching the masters'").count() > 1
    });
    let b = master(fast_config());
    b.offer("agent-b", 2.0, 2048.0, 4096.0);
    b.register_in_zk(&zk.servers(), path);
    a.withdraw_from_zk();
    wait_until(30, "SUBSCRIBED on the new leader", || b.is_subscribed());
    assert_eq!(b.framework_id().as_deref(), Some(id.as_str()));
    transcode_runs(&s);
    assert_eq!(b.launched_tasks().len(), 1);
}

/// `dispatch run -master zk://...`: a one-off framework finds its master the same way.
#[test]
fn a_one_off_run_finds_its_master_in_zookeeper() {
    let zk = shared();
    let path = fresh_path();
    let m = master(fast_config());
    m.register_in_zk(&zk.servers(), &path);
    m.offer("agent-1", 4.0, 4096.0, 10_000.0);
    let tasks = r#"{"tasks": [{"name": "hello", "task_id": {"value": "x"}, "agent_id": {"value": ""},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
        "command": {"value": "echo hello"}}]}"#;
    let url = zk.url(&path);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["run", "-master", &url, "-connect-timeout", "20s", tasks])
        .env_remove("DISPATCH_ADDR")
        .env_remove("NOMAD_ADDR")
        .output()
        .unwrap();
    let out = ok(&o);
    assert!(
        out.contains(&format!(
            "Running as Mesos framework \"dispatch-run\" on {url}"
        )),
        "{}",
        show(&o)
    );
    assert_eq!(m.launched_tasks().len(), 1, "{}", show(&o));
}

/// Masters that speak TLS, found in ZooKeeper (`MasterInfo` has no scheme): with a Mesos CA
/// file they are reached over https and their certificate is checked against it, for a
/// server (`-mesos-ca-file`) and a one-off run (`dispatch run -master-ca-file`) alike;
/// without it, plain HTTP to a TLS port fails and says so.
#[test]
fn masters_found_in_zookeeper_are_reached_over_tls_with_the_mesos_ca_file() {
    let zk = shared();
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new(dir.path(), "mesos");
    let ca_file = ca.cert.to_str().unwrap();
    // A double behind a TLS proxy, registered in ZooKeeper under its own path.
    let tls_master = || {
        let m = master(fast_config());
        m.offer("agent-1", 4.0, 4096.0, 10_000.0);
        let front = certs::tls_proxy(&ca.server("master"), m.addr());
        let path = fresh_path();
        let registration = address_in_zk(&zk.servers(), &path, front);
        (m, front, zk.url(&path), registration)
    };

    let (m, front, url, _registration) = tls_master();
    let plain = server(&url, "json", &[]);
    wait_until(20, "the failed plain-HTTP attempt reported", || {
        connection(&plain)["LastError"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("http://{front}")))
    });
    assert!(!m.is_subscribed());
    drop(plain);
    let s = server(&url, "json", &["-mesos-ca-file", ca_file]);
    wait_until(20, "SUBSCRIBED over TLS", || m.is_subscribed());
    wait_until(10, "the https leader on /v1/agent/self", || {
        connection(&s)["Leader"] == format!("https://{front}").as_str()
    });
    register(&s, "jobs/transcode.hcl");
    transcode_runs(&s);

    let (m, _, url, _registration) = tls_master();
    let tasks = r#"{"tasks": [{"name": "hello", "task_id": {"value": "x"}, "agent_id": {"value": ""},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
        "command": {"value": "echo hello"}}]}"#;
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["run", "-master", &url, "-master-ca-file", ca_file])
        .args(["-connect-timeout", "20s", tasks])
        .env_remove("DISPATCH_ADDR")
        .env_remove("NOMAD_ADDR")
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(m.launched_tasks().len(), 1, "{}", show(&o));
}
