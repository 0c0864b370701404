//! A strict in-process Mesos master double for the v1 scheduler HTTP API
//! (JSON encoding), written against mesos-scheduler-api.md and the captures of
//! a real Apache Mesos 1.12 master. See `master.rs` for the controls.
#![allow(dead_code, unused_imports)]

mod codec;
mod files;
mod group;
mod master;
mod operations;
mod stream;
mod validate;

pub use master::*;
pub use stream::{frame, record};
pub use validate::Pool;
