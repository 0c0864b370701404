//! A strict Apache Mesos master + agent test double for the v1 scheduler HTTP API, written
//! against `mesos-scheduler-api.md` and the traffic of a real Mesos 1.12 master and agent
//! recorded in `tests/fixtures/mesos-captures/` (`tests/mesos_double_selftest.rs` holds the
//! double to them). One axum server plays the master and the agents (offers' `url` points
//! back at it). It rejects what a real master rejects (missing or stale `Mesos-Stream-Id`,
//! unknown offers, resources not in the offer, bad bodies, ...) and records what a correct
//! framework should not do but a real master tolerates silently (`violations`).
//!
//! Modules, one concept each:
//! * `http` — `POST /api/v1/scheduler` and `GET /master/redirect`: authentication,
//!   leadership, request checks in the master's order and with its messages;
//! * `stream` — SUBSCRIBE: `Accept` negotiation, stream IDs, failover of an older stream,
//!   the RecordIO-framed event stream;
//! * `codec` — the two encodings (JSON, protobuf) of calls in and events out; protobuf
//!   through the double's own schema (`proto/mesos/v1/`, written from the reference's wire
//!   tables, compiled by `build.rs` with protox) as dynamic messages: the double shares no
//!   code with the `dispatch` crate, so it checks our codecs instead of mirroring them;
//! * `allocator` — agents' free resources, offers per role (MULTI_ROLE), DECLINE filters
//!   per agent and role, per-role SUPPRESS/REVIVE, RESCIND, ACCEPT's offer validation;
//! * `operations` — RESERVE / UNRESERVE / CREATE / DESTROY (reservations, volumes);
//! * `feedback` — operation feedback: `Offer.Operation.id`, UPDATE_OPERATION_STATUS,
//!   ACKNOWLEDGE_OPERATION_STATUS, RECONCILE_OPERATIONS;
//! * `framework` — SUBSCRIBE's suppressed roles and UPDATE_FRAMEWORK;
//! * `maintenance` — maintenance schedules (unavailability, inverse offers and their
//!   answers) and agent draining;
//! * `agent` — tasks and executors: LAUNCH, LAUNCH_GROUP, status updates re-sent until
//!   acknowledged, KILL, RECONCILE answers;
//! * `validate`, `group` — resource arithmetic, task and task-group validation;
//! * `files` — the agents' files API (`/files/browse`, `/files/read`) over simulated
//!   sandboxes;
//! * `state` — everything behind the one lock, and the ticker that drives time;
//! * `config` — behaviour knobs; `double` — the public handle (controls, inspection);
//! * `zookeeper` — registering as a contending master in ZooKeeper (`json.info_` nodes).
//! * `control` — the same over HTTP for a double in its own process (`/double/agents`,
//!   `/double/counters`).
//!
//! Known gaps: one framework at a time (so no fairness between frameworks or roles: a
//! MULTI_ROLE framework's unreserved resources go to its first unsuppressed role); no
//! refined (stacked) RESERVE for child roles beyond popping the top reservation; no shared
//! volumes, resource providers, static reservations, quota, offer constraints, machine
//! DOWN/UP (only schedules and DRAIN_AGENT), MESSAGE/REQUEST/SHUTDOWN effects, health
//! checks, agent loss/partition (only manual `send_master_update`), TASK_UNREACHABLE timing;
//! custom-executor LAUNCH executors are not listed in `executor_ids`; `/files/read` ignores
//! the agent's authorization and `/files/download`; the allocator offers at once
//! unless `Config::allocation_interval` batches offers into cycles as a real master does.
//!
//! The `mesos-double` binary runs the double in its own process, e.g. for a benchmark whose
//! framework should not share a process with its master:
//!
//! ```text
//! mesos-double --port 0 --agents 4 --cpus 32 --mem 65536 --disk 100000 --task-secs 0.01 \
//!     --content-type protobuf
//! ```
//!
//! It prints `mesos-double listening on http://127.0.0.1:PORT` on stdout once it accepts
//! connections, then serves until killed: N agents (`agent-1` ...) offering the given
//! resources, every launched task finishing after `--task-secs`. Like a real master it speaks
//! whichever encoding each call and subscription asks for; `--content-type json|protobuf`
//! makes it refuse the other (415, 406), so a run cannot silently measure the wrong one.
//! `--zk zk://host:port/path` registers it in ZooKeeper as a contending master.

mod agent;
mod allocator;
mod codec;
mod config;
mod control;
mod double;
mod feedback;
mod files;
mod framework;
mod group;
mod http;
pub mod maintenance;
mod operations;
mod state;
mod stream;
mod validate;
pub mod zookeeper;

pub use codec::{Encoding, JSON, PROTOBUF};
pub use config::{Config, TaskBehavior};
pub use double::MesosDouble;
pub use feedback::OperationAck;
pub use maintenance::{InverseResponse, Unavailability};
pub use state::{Ack, Decline, LaunchedTask, Leadership, RecordedCall};
pub use stream::{frame, record};
pub use validate::Pool;
