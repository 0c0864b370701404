//! Dispatch: a parameterized batch dispatch service.
//!
//! See ARCHITECTURE.md for the map. In short: `spec` turns job files into a `model::Job`;
//! `api` (HTTP) and `cli` send commands to `state`, the single writer, which makes them
//! durable in `store` before anyone is answered.

pub mod acl;
pub mod api;
pub mod batch;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod gc;
pub mod leadership;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod render;
pub mod scheduler;
pub mod server;
pub mod spec;
pub mod state;
pub mod store;
pub mod systemd;
pub mod ui;
