//! Shared harness of the Mesos end-to-end tests: the master double on its own runtime and a
//! `dispatch server` pointed at it. Included with `#[path = "common/mesos.rs"]` next to
//! `mod common;`.

#![allow(dead_code)]

use std::time::Duration;

use crate::common::TestServer;
use mesos_double::{Config, MesosDouble};

/// The master double on its own runtime (its controls are plain functions).
pub struct Master {
    double: MesosDouble,
    _rt: tokio::runtime::Runtime,
}

impl std::ops::Deref for Master {
    type Target = MesosDouble;
    fn deref(&self) -> &MesosDouble {
        &self.double
    }
}

impl Master {
    /// Register in ZooKeeper (`servers`, under `path`) as a contending master does.
    pub fn register_in_zk(&self, servers: &str, path: &str) -> String {
        self._rt
            .block_on(self.double.register_in_zookeeper(servers, path))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Leave the contest in ZooKeeper while still serving (a master gone without closing
    /// its connections).
    pub fn withdraw_from_zk(&self) {
        self._rt
            .block_on(self.double.withdraw_from_zookeeper())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A registration in ZooKeeper naming `addr` as a master: one that is not there (nothing
/// listens), or a TLS proxy in front of a double.
pub struct ZkRegistration {
    _contender: mesos_double::zookeeper::Contender,
    _rt: tokio::runtime::Runtime,
}

pub fn address_in_zk(servers: &str, path: &str, addr: std::net::SocketAddr) -> ZkRegistration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let info = serde_json::json!({
        "id": "dead-master", "ip": 16777343, "port": addr.port(),
        "hostname": addr.ip().to_string(), "version": "1.12.0",
        "address": {"hostname": addr.ip().to_string(), "ip": addr.ip().to_string(), "port": addr.port()},
    });
    let contender = rt
        .block_on(mesos_double::zookeeper::Contender::register(
            servers, path, &info,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    ZkRegistration {
        _contender: contender,
        _rt: rt,
    }
}

pub fn master(cfg: Config) -> Master {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let double = rt.block_on(MesosDouble::start(cfg));
    Master { double, _rt: rt }
}

/// 1 s heartbeats and 0.5 s update resends: failures show within seconds.
pub fn fast_config() -> Config {
    Config {
        heartbeat_interval: Duration::from_secs(1),
        resend_interval: Duration::from_millis(500),
        ..Config::default()
    }
}

/// `dispatch server -mesos-master <masters> -mesos-content-type <encoding>` plus `extra`.
pub fn server(masters: &str, encoding: &str, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "-mesos-master",
        masters,
        "-mesos-content-type",
        encoding,
        "-mesos-max-backoff",
        "1s",
    ];
    args.extend_from_slice(extra);
    TestServer::start_with(&args)
}
