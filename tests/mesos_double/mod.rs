//! A strict in-process Mesos master double for the v1 scheduler HTTP API,
//! written against mesos-scheduler-api.md and the captures of a real Apache
//! Mesos 1.12 master and agent. One axum server plays the master and the
//! agents (offers' `url` points back at it). See `master.rs` for the
//! controls and inspection functions.
//!
//! What it models:
//! * Transport (§1): `POST /api/v1/scheduler` in both encodings
//!   (`codec.rs`): JSON and `application/x-protobuf` calls (prost decode, 400
//!   "Failed to parse body into Call protobuf"), SUBSCRIBE `Accept`
//!   negotiation (JSON wins, absent = JSON, protobuf only -> protobuf stream,
//!   neither -> 406), RecordIO event stream in the negotiated encoding
//!   (`stream.rs`); exact Content-Type (415), stream-id rules (400), 403
//!   before SUBSCRIBED, 405, 501 for UNKNOWN; HTTP Basic authentication
//!   (`Config::credentials`: 401 before the leader check, principal must
//!   match `FrameworkInfo.principal`: 200 + ERROR on SUBSCRIBE, 400 on other
//!   calls); 307 / 503 leadership, `GET /master/redirect`.
//! * Framework lifecycle: SUBSCRIBED + HEARTBEATs, failover ("Framework
//!   failed over"), failover timeout, removed frameworks, TEARDOWN,
//!   UPDATE_FRAMEWORK, SUPPRESS/REVIVE, DECLINE filters, RESCIND.
//! * Offers: one per agent with its free resources (`allocation_info` for
//!   MULTI_ROLE), `url` = this server, `executor_ids` of our running DEFAULT
//!   executors.
//! * ACCEPT (`master.rs`, `validate.rs`): offer validation (TASK_DROPPED /
//!   TASK_LOST, REASON_INVALID_OFFERS), LAUNCH task validation and
//!   containment (TASK_ERROR); LAUNCH_GROUP (`group.rs`, §6.1) with DEFAULT
//!   executors charged once per agent, sibling kills, FAILURE status 0 when
//!   the executor's groups are over; RESERVE / UNRESERVE / CREATE / DESTROY
//!   (`operations.rs`, §5) in both reservation formats, dropped silently
//!   when invalid (see `rejected_operations`).
//! * Tasks: STARTING, RUNNING, terminal per `TaskBehavior`; updates with
//!   uuid re-sent until acknowledged, later ones held back; KILL (with
//!   TASK_KILLING_STATE); RECONCILE answers.
//! * Agent files API (`files.rs`): `/files/browse`, `/files/read` over
//!   simulated sandboxes (absolute and `runs/latest` virtual paths).
//!
//! Known gaps: one framework at a time; no operation IDs
//! (UPDATE_OPERATION_STATUS, ACKNOWLEDGE_OPERATION_STATUS,
//! RECONCILE_OPERATIONS); reservation operations only in JSON calls (the
//! crate's `proto::Operation` does not model them, so they are lost from a
//! protobuf ACCEPT); no refined (stacked) RESERVE for child roles beyond
//! popping the top reservation; no shared volumes, resource providers,
//! static reservations, quota, inverse offers, MESSAGE/REQUEST/SHUTDOWN
//! effects, health checks, agent loss/partition (only manual
//! `send_master_update`), TASK_UNREACHABLE timing; custom-executor LAUNCH
//! executors are not listed in `executor_ids`; `/files/read` ignores
//! the agent's authorization and `/files/download`; the allocator is
//! immediate (no allocation interval).
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
