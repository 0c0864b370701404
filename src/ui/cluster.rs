//! The cluster page: which backend runs tasks, its connection, leader and FrameworkID, the
//! agents seen in offers with what they offered last, what it can do, and recent errors.
//! Everything comes through the `ClusterView` door (`Describe::overview`, `Capabilities`).

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::format::{self, Time};
use super::{Live, Ui};

#[derive(Debug, Serialize)]
struct Setting {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct Capability {
    name: &'static str,
    on: bool,
}

#[derive(Debug, Serialize)]
struct Agent {
    id: String,
    short: String,
    hostname: String,
    url: Option<String>,
    offered: String,
    offered_at: Option<Time>,
    capacity: String,
}

#[derive(Debug, Serialize)]
struct ErrorRow {
    at: Time,
    message: String,
}

pub async fn page(ui: &Ui) -> Response {
    let now = ui.app.clock.now_ns();
    // (a standby sends this page's requests to the leader, which runs the backend; this
    // answers while no server leads)
    let cluster = match ui.app.cluster() {
        Ok(cluster) => cluster,
        Err(e) => {
            return ui.message(
                StatusCode::SERVICE_UNAVAILABLE,
                "No cluster backend here",
                &e.to_string(),
            )
        }
    };
    let o = cluster.status.overview();
    let caps = &cluster.capabilities;
    let capabilities = vec![
        Capability {
            name: "task groups (LAUNCH_GROUP)",
            on: caps.task_groups,
        },
        Capability {
            name: "shared alloc dirs on agents",
            on: caps.agent_alloc_dirs,
        },
        Capability {
            name: "custom executors",
            on: caps.custom_executors,
        },
        Capability {
            name: "persistent volumes",
            on: caps.persistent_volumes,
        },
        Capability {
            name: "source templates",
            on: caps.source_templates,
        },
        Capability {
            name: "docker",
            on: caps.docker,
        },
        Capability {
            name: "GPUs",
            on: caps.gpus,
        },
    ];
    let agents: Vec<Agent> = o
        .agents
        .iter()
        .map(|a| Agent {
            id: a.id.clone(),
            short: format::short_id(&a.id),
            hostname: a.hostname.clone(),
            url: a.url.clone(),
            offered: format::demand(&a.offered),
            offered_at: (a.offered_at > 0).then(|| Time::at(a.offered_at, now)),
            capacity: a
                .capacity
                .as_ref()
                .map_or_else(|| "not known".into(), format::demand),
        })
        .collect();
    let errors: Vec<ErrorRow> = o
        .recent_errors
        .iter()
        .map(|e| ErrorRow {
            at: Time::at(e.at as i64 * 1_000_000_000, now),
            message: e.message.clone(),
        })
        .collect();
    let view = serde_json::json!({
        "backend": o.backend,
        "connection": o.connection,
        "connection_class": o.connection,
        "since": Time::at(o.since as i64 * 1_000_000_000, now),
        "leader": o.leader.unwrap_or_else(|| "none".into()),
        "framework_id": o.framework_id.unwrap_or_else(|| "none yet".into()),
        "settings": o.settings.into_iter().map(|(name, value)| Setting { name, value }).collect::<Vec<_>>(),
        "capabilities": capabilities,
        "agents": agents,
        "errors": errors,
    });
    let index = ui.app.state.read().index();
    // Offers and connections are not committed state: the page follows the jobs' feed, and
    // the script refreshes it on any commit.
    let live = Live {
        topics: "Allocation".into(),
        index: index + 1,
    };
    let mut c = ui.context("Cluster", "cluster", Some(live));
    c.insert("cluster", &view);
    ui.render(StatusCode::OK, "cluster.html", &c)
}
