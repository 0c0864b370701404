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
