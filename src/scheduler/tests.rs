//! The scheduler's decisions on fixed states, offers and times: no cluster, no writer, no
//! sleeps. States are built with the writer's own command functions (`State::apply_at`);
//! backends are `Capabilities` values.

use std::sync::Arc;

use super::core::{next_retry, Core, Placement, KILL_RETRY, OVERDUE_SLACK_NS};
use crate::cluster::{Capabilities, Capacity, ClusterCall, Demand, Offer, TaskState};
use crate::model::Slot;
use crate::state::{Command, DispatchRequest, LaunchRun, Reply, State, TaskUpdate};

const SEC: i64 = 1_000_000_000;
/// The fixed "now" tests start at (any value far from 0 does).
const T0: i64 = 1_700_000_000 * SEC;

/// A backend with none of the optional features, measured by its largest offer, one
/// second between revives.
fn plain() -> Capabilities {
    Capabilities::plain()
}

/// A backend of agents: task groups, alloc dirs on the agent, persistent volumes.
fn agents() -> Capabilities {
    Capabilities {
        task_groups: true,
        agent_alloc_dirs: true,
        custom_executors: true,
        persistent_volumes: true,
        source_templates: false,
        sandbox_fetch_base: None,
        ..plain()
    }
}

/// A job `id` whose group `g` holds `tasks` (HCL task blocks), with `group_extra` (HCL) in
/// the group and `params` in `parameterized`.
fn job_hcl(id: &str, params: &str, group_extra: &str, tasks: &str) -> String {
    format!(
        r#"job "{id}" {{
  type = "batch"
  parameterized {{
    {params}
  }}
  group "g" {{
    {group_extra}
    {tasks}
  }}
}}"#
    )
}

/// One raw_exec task asking for `cpu` MHz and `mem` MB (and `extra` HCL in the task).
fn task(name: &str, cpu: u32, mem: u32, extra: &str) -> String {
    format!(
        r#"task "{name}" {{
      driver = "raw_exec"
      config {{ command = "true" }}
      resources {{
        cpu    = {cpu}
        memory = {mem}
      }}
      {extra}
    }}"#
    )
}

struct World {
    state: State,
    now: i64,
}

impl World {
    fn new() -> World {
        World {
            state: State::default(),
            now: T0,
        }
    }

    fn apply(&mut self, command: Command) -> Reply {
        self.state.apply_at(command, self.now).expect("applied")
    }

    fn register(&mut self, hcl: &str) {
        let job = crate::spec::parse_hcl(hcl, "test.hcl").expect("the job parses");
        self.apply(Command::RegisterJob(Box::new(job)));
    }

    /// A simple job: one task of `cpu` MHz, 64 MB, no retries.
    fn register_simple(&mut self, id: &str, cpu: u32, params: &str) {
        let hcl = job_hcl(id, params, NO_RETRY, &task("t", cpu, 64, ""));
        self.register(&hcl);
    }

    fn dispatch(&mut self, job: &str, priority: i64) -> Arc<str> {
        let request = DispatchRequest {
            job_id: job.into(),
            priority,
            ..Default::default()
        };
        match self.apply(Command::Dispatch(request)) {
            Reply::Dispatched(d) => d.dispatched_job_id.into(),
            other => panic!("not dispatched: {other:?}"),
        }
    }

    /// Record what a placement launched, as the loop does before it accepts.
    fn record(&mut self, placement: &Placement) -> Vec<String> {
        let mut task_ids = Vec::new();
        for plan in &placement.offers {
            for &i in &plan.units {
                let unit = &placement.units[i];
                let runs: Vec<LaunchRun> = unit
                    .slots
                    .iter()
                    .map(|(slot, attempt)| {
                        let task_id = format!("{}.{}.{}", unit.dispatch.id, slot.task, attempt);
                        task_ids.push(task_id.clone());
                        LaunchRun {
                            slot: *slot,
                            attempt: *attempt,
                            task_id: task_id.into(),
                            agent_id: plan.offer.agent_id.value.clone(),
                        }
                    })
                    .collect();
                self.apply(Command::Launch {
                    dispatch_id: unit.dispatch.id.clone(),
                    runs,
                });
            }
        }
        task_ids
    }

    fn update(&mut self, task_id: &str, state: TaskState) {
        self.update_with(task_id, state, None);
    }

    fn update_with(&mut self, task_id: &str, state: TaskState, message: Option<&str>) {
        self.apply(Command::TaskUpdate(TaskUpdate {
            task_id: task_id.into(),
            state,
            agent_id: None,
            message: message.map(String::from),
            exit_code: None,
        }));
    }
}

const NO_RETRY: &str = r#"restart {
      attempts = 0
    }
    reschedule {
      attempts = 0
    }"#;

fn offer(id: &str, agent: &str, cpus: f64, mem_mb: f64) -> Offer {
    offer_with(id, agent, cpus, mem_mb, 0.0)
}

fn offer_with(id: &str, agent: &str, cpus: f64, mem_mb: f64, gpus: f64) -> Offer {
    let mut resources = vec![
        serde_json::json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}),
        serde_json::json!({"name": "mem", "type": "SCALAR", "scalar": {"value": mem_mb}}),
        serde_json::json!({"name": "disk", "type": "SCALAR", "scalar": {"value": 10000.0}}),
    ];
    if gpus > 0.0 {
        resources
            .push(serde_json::json!({"name": "gpus", "type": "SCALAR", "scalar": {"value": gpus}}));
    }
    serde_json::from_value(serde_json::json!({
        "id": {"value": id}, "agent_id": {"value": agent}, "hostname": agent,
        "resources": resources,
    }))
    .expect("an offer")
}

/// An offer of an agent scheduled for maintenance from `start_ns`.
fn offer_unavailable(id: &str, agent: &str, cpus: f64, start_ns: i64) -> Offer {
    let mut o = offer(id, agent, cpus, 4096.0);
    o.extra.insert(
        "unavailability".into(),
        serde_json::json!({"start": {"nanoseconds": start_ns}}),
    );
    o
}

/// Dispatch IDs launched on each offer, in the order placed: `[(offer ids, [dispatch])]`.
fn launched(p: &Placement) -> Vec<(Vec<String>, Vec<Arc<str>>)> {
    p.offers
        .iter()
        .map(|plan| {
            let ids = plan.offer_ids.iter().map(|o| o.value.clone()).collect();
            let ds = plan
                .units
                .iter()
                .map(|i| p.units[*i].dispatch.id.clone())
                .collect();
            (ids, ds)
        })
        .collect()
}

fn ids(ds: &[&Arc<str>]) -> Vec<Arc<str>> {
    ds.iter().map(|d| Arc::clone(d)).collect()
}

/// First fit with no head-of-line blocking: work that does not fit is skipped and what fits
/// behind it launches; nothing is placed twice.
#[test]
fn first_fit_skips_what_does_not_fit() {
    // (task MHz of each dispatch in queue order, offered cpus, launched positions)
    let cases: &[(&[u32], f64, &[usize])] = &[
        (&[4000, 1000, 1000], 2.0, &[1, 2]),
        (&[1000, 4000, 1000], 2.0, &[0, 2]),
        (&[1500, 1500, 500], 2.0, &[0, 2]),
        (&[3000], 2.0, &[]),
        (&[500, 500, 500, 500], 2.0, &[0, 1, 2, 3]),
    ];
    for (sizes, cpus, expected) in cases {
        let mut w = World::new();
        let mut dispatched = Vec::new();
        for (i, cpu) in sizes.iter().enumerate() {
            let job = format!("j{i}");
            w.register_simple(&job, *cpu, "");
            dispatched.push(w.dispatch(&job, 50));
        }
        let mut core = Core::new(plain());
        let p = core.place(&w.state, vec![offer("o1", "a1", *cpus, 4096.0)], w.now);
        let want: Vec<Arc<str>> = expected.iter().map(|i| dispatched[*i].clone()).collect();
        assert_eq!(
            launched(&p),
            vec![(vec!["o1".to_string()], want)],
            "sizes {sizes:?} on {cpus} cpus"
        );
        assert_eq!(p.all_placed, expected.len() == sizes.len());
    }
}

/// Higher priority first, then oldest first; one offer takes as many as fit (several tasks
/// per offer), the next offer the rest.
#[test]
fn priority_then_fifo_across_offers() {
    let mut w = World::new();
    w.register_simple("j", 1000, "");
    let low1 = w.dispatch("j", 20);
    let high1 = w.dispatch("j", 90);
    let low2 = w.dispatch("j", 20);
    let high2 = w.dispatch("j", 90);
    let mid = w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(
        &w.state,
        vec![
            offer("o1", "a1", 3.0, 4096.0),
            offer("o2", "a2", 8.0, 4096.0),
        ],
        w.now,
    );
    assert_eq!(
        launched(&p),
        vec![
            (vec!["o1".into()], ids(&[&high1, &high2, &mid])),
            (vec!["o2".into()], ids(&[&low1, &low2])),
        ]
    );
    assert!(p.all_placed);
}

/// `max_running` caps the dispatches of a job running at once, counting those already
/// running; other jobs are not held back.
#[test]
fn max_running_limits_a_job() {
    let mut w = World::new();
    w.register_simple("capped", 100, "max_running = 2");
    w.register_simple("free", 100, "");
    let capped: Vec<_> = (0..4).map(|_| w.dispatch("capped", 50)).collect();
    let free = w.dispatch("free", 50);
    let mut core = Core::new(plain());
    let p = core.place(&w.state, vec![offer("o1", "a1", 16.0, 8192.0)], w.now);
    assert_eq!(
        launched(&p),
        vec![(vec!["o1".into()], ids(&[&capped[0], &capped[1], &free]))]
    );
    assert!(!p.all_placed, "two capped dispatches wait");
    let tasks = w.record(&p);
    // One of the two running ends: one more may start.
    w.update(&tasks[0], TaskState::TaskFinished);
    let p = core.place(&w.state, vec![offer("o2", "a1", 16.0, 8192.0)], w.now);
    assert_eq!(launched(&p), vec![(vec!["o2".into()], ids(&[&capped[2]]))]);
}

/// Offers of one agent are pooled into one ACCEPT; other agents' are not.
#[test]
fn offers_of_one_agent_are_pooled() {
    let mut w = World::new();
    w.register_simple("j", 1500, "");
    let d = w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(
        &w.state,
        vec![
            offer("o1", "a1", 1.0, 1024.0),
            offer("o2", "a2", 1.0, 1024.0),
            offer("o3", "a1", 1.0, 1024.0),
        ],
        w.now,
    );
    assert_eq!(
        launched(&p),
        vec![
            (vec!["o1".into(), "o3".into()], ids(&[&d])),
            (vec!["o2".into()], vec![]),
        ]
    );
}

/// Work larger than any agent gets one note (with the largest offer seen) and stays queued;
/// a GPU ask where no GPU was offered says how to get GPUs; a fixed machine measures by
/// its size, not by its offers.
#[test]
fn too_large_work_gets_one_note() {
    let mut w = World::new();
    w.register_simple("big", 8000, "");
    let gpu_task = r#"task "t" {
      driver = "raw_exec"
      config { command = "true" }
      resources {
        cpu    = 100
        memory = 64
        gpus   = 1
      }
    }"#;
    w.register(&job_hcl("gpu", "", NO_RETRY, gpu_task));
    let big = w.dispatch("big", 50);
    let gpu = w.dispatch("gpu", 50);
    let mut core = Core::new(plain());
    let p = core.place(
        &w.state,
        vec![
            offer("o1", "a1", 4.0, 4096.0),
            offer("o2", "a2", 2.0, 8192.0),
        ],
        w.now,
    );
    let largest = "cpus=4 mem=8192MB disk=10000MB gpus=0";
    assert_eq!(
        p.notes,
        vec![
            (
                big.clone(),
                format!(
                    "waiting: needs cpus=8 mem=64MB disk=0MB gpus=0 but no agent has offered \
                     that much (largest: {largest})"
                )
            ),
            (
                gpu.clone(),
                format!(
                    "waiting: needs cpus=0.1 mem=64MB disk=0MB gpus=1 but no agent has offered \
                     that much (largest: {largest}); ask for GPUs"
                )
            ),
        ]
    );
    let again = core.place(&w.state, vec![offer("o3", "a1", 4.0, 4096.0)], w.now);
    assert!(again.notes.is_empty(), "each dispatch is told once");

    let machine = Demand {
        cpus: 4.0,
        mem_mb: 65536.0,
        disk_mb: 100_000.0,
        gpus: 1.0,
    };
    let mut fixed = Core::new(Capabilities {
        capacity: Capacity::Fixed(machine),
        ..plain()
    });
    let p = fixed.place(&w.state, vec![offer("o4", "a1", 1.0, 128.0)], w.now);
    let notes: Vec<&Arc<str>> = p.notes.iter().map(|(d, _)| d).collect();
    assert_eq!(notes, vec![&big], "the GPU task fits the machine, later");
}

/// Suppress once everything is placed; revive only for work newer than that decision, at
/// most once per debounce window (a revive wanted inside it is deferred, not dropped).
#[test]
fn suppress_then_revive_for_newer_work() {
    let mut w = World::new();
    w.register_simple("j", 1000, "");
    w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(&w.state, vec![offer("o1", "a1", 4.0, 4096.0)], w.now);
    w.record(&p);
    let committed = w.state.index();
    assert_eq!(
        core.offers_answered(p.all_placed, p.newest_dispatch, committed, w.now),
        Some(ClusterCall::Suppress)
    );
    assert_eq!(
        core.offers_answered(true, p.newest_dispatch, committed, w.now),
        None,
        "already suppressed"
    );
    assert_eq!(core.revive(&w.state, committed, w.now), None, "nothing new");

    w.now += SEC;
    w.dispatch("j", 50);
    assert_eq!(
        core.revive(&w.state, w.state.index(), w.now),
        Some(ClusterCall::Revive(vec![]))
    );
    // Turned away again; newer work inside the debounce window waits for its end.
    let p = core.place(&w.state, vec![], w.now);
    core.offers_answered(p.all_placed, p.newest_dispatch, w.state.index(), w.now);
    w.now += SEC / 10;
    w.dispatch("j", 50);
    assert_eq!(core.revive(&w.state, w.state.index(), w.now), None);
    assert_eq!(core.revive_check_at(), Some(T0 + 2 * SEC));
    w.now = T0 + 2 * SEC;
    assert_eq!(
        core.revive(&w.state, w.state.index(), w.now),
        Some(ClusterCall::Revive(vec![]))
    );
    assert_eq!(core.revive_check_at(), None);
}

/// Declined offers with work waiting for resources: a commit that frees nothing new does not
/// revive; a newer dispatch does.
#[test]
fn waiting_work_does_not_revive_by_itself() {
    let mut w = World::new();
    w.register_simple("j", 4000, "");
    w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(&w.state, vec![offer("o1", "a1", 2.0, 4096.0)], w.now);
    assert!(!p.all_placed);
    assert_eq!(
        core.offers_answered(p.all_placed, p.newest_dispatch, w.state.index(), w.now),
        None,
        "work waits: no suppress"
    );
    w.now += 5 * SEC;
    assert_eq!(core.revive(&w.state, w.state.index(), w.now), None);
    w.dispatch("j", 50);
    assert_eq!(
        core.revive(&w.state, w.state.index(), w.now),
        Some(ClusterCall::Revive(vec![]))
    );
}

/// Retry delays by policy: `restart` tries first, then `reschedule` ones growing by its
/// delay function up to `max_delay`. Each failed attempt's retry is not placed before its
/// delay is over, `next_retry` names that moment, and the attempt after it is the next one.
#[test]
fn retries_wait_their_backoff() {
    // (delay function, restart block, the delay before each retry in seconds, to the last)
    let policies: &[(&str, &str, &[i64])] = &[
        (
            "constant",
            "restart {\n attempts = 1\n delay = \"3s\"\n }",
            &[3, 10, 10, 10, 10],
        ),
        (
            "exponential",
            "restart {\n attempts = 0\n }",
            &[10, 20, 25, 25],
        ),
        (
            "fibonacci",
            "restart {\n attempts = 0\n }",
            &[10, 10, 20, 25],
        ),
    ];
    for (function, restart, delays) in policies {
        let reschedule = format!(
            "reschedule {{\n attempts = 4\n delay = \"10s\"\n delay_function = \"{function}\"\n max_delay = \"25s\"\n }}"
        );
        let group = format!("{restart}\n{reschedule}");
        let mut w = World::new();
        w.register(&job_hcl("j", "", &group, &task("t", 100, 64, "")));
        let d = w.dispatch("j", 50);
        let mut core = Core::new(plain());
        for (n, delay) in delays.iter().enumerate() {
            let p = core.place(&w.state, vec![offer("o", "a1", 4.0, 4096.0)], w.now);
            assert_eq!(
                launched(&p)[0].1,
                ids(&[&d]),
                "{function}: attempt {}",
                n + 1
            );
            let task = w.record(&p).remove(0);
            w.now += SEC;
            w.update(&task, TaskState::TaskFailed);
            let due = w.now + delay * SEC;
            assert_eq!(
                next_retry(&w.state, w.now),
                Some(due),
                "{function}: retry {}",
                n + 1
            );
            w.now = due - 1;
            let early = core.place(&w.state, vec![offer("o", "a1", 4.0, 4096.0)], w.now);
            assert!(
                early.units.is_empty(),
                "{function}: retry {} too early",
                n + 1
            );
            w.now = due;
        }
        // The last retry runs; when it fails too, the dispatch has failed for good.
        let p = core.place(&w.state, vec![offer("o", "a1", 4.0, 4096.0)], w.now);
        assert_eq!(launched(&p)[0].1, ids(&[&d]), "{function}: the last retry");
        let task = w.record(&p).remove(0);
        w.update(&task, TaskState::TaskFailed);
        assert_eq!(
            next_retry(&w.state, w.now),
            None,
            "{function}: no retry left"
        );
        let state = w.state.dispatch(&d).map(|d| d.status);
        assert_eq!(
            state,
            Some(crate::model::DispatchStatus::Failed),
            "{function}"
        );
    }
}

/// A retry whose delay ran out since offers were turned away revives them.
#[test]
fn a_retry_coming_due_revives() {
    let mut w = World::new();
    let group = "restart {\n attempts = 1\n delay = \"5s\"\n }";
    w.register(&job_hcl("j", "", group, &task("t", 100, 64, "")));
    w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(&w.state, vec![offer("o", "a1", 4.0, 4096.0)], w.now);
    let task = w.record(&p).remove(0);
    w.update(&task, TaskState::TaskFailed);
    let p = core.place(&w.state, vec![], w.now);
    core.offers_answered(p.all_placed, p.newest_dispatch, w.state.index(), w.now);
    w.now += 4 * SEC;
    assert_eq!(core.revive(&w.state, w.state.index(), w.now), None);
    w.now += SEC;
    assert_eq!(
        core.revive(&w.state, w.state.index(), w.now),
        Some(ClusterCall::Revive(vec![]))
    );
}

/// Pipelines: a step waits for its prerequisites (`depends_on`, else prestart → main →
/// poststop) and runs on the agent of the steps before it.
#[test]
fn pipeline_steps_follow_each_other_on_one_agent() {
    let cases: &[(&str, &[&str])] = &[
        (
            "depends_on",
            &[
                &task("b", 100, 64, "depends_on = [\"a\"]"),
                &task("a", 100, 64, ""),
                &task("c", 100, 64, "depends_on = [\"b\"]"),
            ],
        ),
        (
            "lifecycle",
            &[
                &task("b", 100, 64, ""),
                &task("c", 100, 64, "lifecycle {\n hook = \"poststop\"\n }"),
                &task("a", 100, 64, "lifecycle {\n hook = \"prestart\"\n }"),
            ],
        ),
    ];
    for (kind, tasks) in cases {
        let mut w = World::new();
        w.register(&job_hcl("p", "", NO_RETRY, &tasks.join("\n")));
        w.dispatch("p", 50);
        let mut core = Core::new(plain());
        let mut order = Vec::new();
        for step in 0..3 {
            // The first step takes the first offer (agent a2); later steps are pinned to
            // a2 even when a1's offer comes first.
            let offers = if step == 0 {
                vec![offer("x", "a2", 4.0, 4096.0), offer("o", "a1", 4.0, 4096.0)]
            } else {
                vec![offer("o", "a1", 4.0, 4096.0), offer("x", "a2", 4.0, 4096.0)]
            };
            let p = core.place(&w.state, offers, w.now);
            let placed: Vec<(String, Vec<String>)> = p
                .offers
                .iter()
                .map(|plan| {
                    let names = plan
                        .units
                        .iter()
                        .flat_map(|i| &p.units[*i].slots)
                        .map(|(slot, _)| w.state_task_name(slot))
                        .collect();
                    (plan.offer.agent_id.value.clone(), names)
                })
                .filter(|(_, names): &(String, Vec<String>)| !names.is_empty())
                .collect();
            assert_eq!(placed.len(), 1, "{kind} step {step}: one step at a time");
            let (agent, names) = &placed[0];
            assert_eq!(agent, "a2", "{kind} step {step}: on the first step's agent");
            order.extend(names.clone());
            for t in w.record_on(&p, agent) {
                w.update(&t, TaskState::TaskFinished);
            }
        }
        assert_eq!(order, ["a", "b", "c"], "{kind}");
    }
}

impl World {
    /// The task name of a slot of the only job with several tasks.
    fn state_task_name(&self, slot: &Slot) -> String {
        let job = self.state.job("p").expect("the pipeline job");
        job.job.task_groups[slot.group as usize].tasks[slot.task as usize]
            .name
            .clone()
    }

    /// `record`, for the offers of one agent only.
    fn record_on(&mut self, p: &Placement, agent: &str) -> Vec<String> {
        let offers = p
            .offers
            .iter()
            .filter(|plan| plan.offer.agent_id.value == agent)
            .map(|plan| super::placement::OfferPlan {
                offer_ids: plan.offer_ids.clone(),
                offer: plan.offer.clone(),
                units: plan.units.clone(),
            })
            .collect();
        let only = Placement {
            releases: Vec::new(),
            units: p.units.clone(),
            offers,
            notes: Vec::new(),
            all_placed: p.all_placed,
            newest_dispatch: p.newest_dispatch,
        };
        self.record(&only)
    }
}

/// On a backend with task groups, the tasks of a group instance that start together launch
/// as one group with a DEFAULT executor, whose resources the offer must also hold.
#[test]
fn task_groups_carry_their_executor() {
    let mut w = World::new();
    let tasks = [task("a", 1000, 64, ""), task("b", 1000, 64, "")].join("\n");
    w.register(&job_hcl("grp", "", NO_RETRY, &tasks));
    w.dispatch("grp", 50);
    let mut groups = Core::new(agents());
    let tight = groups.place(&w.state, vec![offer("o1", "a1", 2.0, 4096.0)], w.now);
    assert!(tight.offers[0].units.is_empty(), "no room for the executor");
    let p = groups.place(&w.state, vec![offer("o2", "a1", 2.1, 4096.0)], w.now);
    let plan = &p.offers[0];
    let unit = &p.units[plan.units[0]];
    let infos =
        super::placement::render_unit(groups.caps(), unit, &plan.offer, None).expect("rendered");
    assert_eq!(infos.len(), 2);
    for info in &infos {
        let executor = info.extra.get("executor").expect("an executor");
        assert_eq!(executor["type"], "DEFAULT");
    }
    let mut plain_core = Core::new(plain());
    let p = plain_core.place(&w.state, vec![offer("o3", "a1", 2.0, 4096.0)], w.now);
    let plan = &p.offers[0];
    let infos = super::placement::render_unit(
        plain_core.caps(),
        &p.units[plan.units[0]],
        &plan.offer,
        None,
    )
    .expect("rendered");
    assert!(infos.iter().all(|i| !i.extra.contains_key("executor")));
}

/// Ended dispatches have their tasks killed, overdue runs (`max_run_duration`) too, each kill
/// repeated only after `KILL_RETRY` and forgotten once the task ended; tasks reported alive
/// that are not tracked are killed.
#[test]
fn kills_are_due_once_per_retry_window() {
    let mut w = World::new();
    let group = format!("{NO_RETRY}\nmax_run_duration = \"60s\"");
    w.register(&job_hcl("j", "", &group, &task("t", 100, 64, "")));
    let stopped = w.dispatch("j", 50);
    let long = w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(&w.state, vec![offer("o", "a1", 4.0, 4096.0)], w.now);
    let tasks = w.record(&p);
    for t in &tasks {
        w.update(t, TaskState::TaskRunning);
    }
    w.apply(Command::StopJob {
        id: stopped.to_string(),
        purge: false,
    });
    let killed = |calls: Vec<ClusterCall>| -> Vec<String> {
        calls
            .into_iter()
            .map(|c| match c {
                ClusterCall::Kill { task_id, .. } => task_id.value,
                other => panic!("not a kill: {other:?}"),
            })
            .collect()
    };
    let stopped_task = format!("{stopped}.0.1");
    let long_task = format!("{long}.0.1");
    assert_eq!(killed(core.kills(&w.state, w.now)), [stopped_task.as_str()]);
    assert!(
        core.kills(&w.state, w.now + SEC).is_empty(),
        "asked already"
    );
    w.now += KILL_RETRY.as_secs() as i64 * SEC;
    assert_eq!(killed(core.kills(&w.state, w.now)), [stopped_task.as_str()]);
    assert!(core.overdue(&w.state, w.now).is_empty(), "not yet overdue");
    w.now = T0 + 60 * SEC + OVERDUE_SLACK_NS + 1;
    let mut due = killed(core.overdue(&w.state, w.now));
    due.sort();
    let mut want = vec![stopped_task.clone(), long_task.clone()];
    want.sort();
    assert_eq!(
        due, want,
        "both runs are overdue; the stop kill was due again anyway"
    );
    assert!(core.kills(&w.state, w.now).is_empty(), "asked a moment ago");
    w.update(&stopped_task, TaskState::TaskKilled);
    core.ended(&stopped_task);
    w.now += KILL_RETRY.as_secs() as i64 * SEC;
    assert!(
        core.kills(&w.state, w.now).is_empty(),
        "the stopped task ended"
    );
    assert_eq!(killed(core.overdue(&w.state, w.now)), [long_task.as_str()]);

    let stray: crate::cluster::TaskStatus = serde_json::from_value(serde_json::json!({
        "task_id": {"value": "not-ours"}, "state": "TASK_RUNNING",
        "agent_id": {"value": "a9"}
    }))
    .expect("a status");
    let calls = core.strays(&w.state, &[stray], w.now);
    assert!(
        matches!(&calls[..], [ClusterCall::Kill { task_id, agent_id: Some(a), .. }]
        if task_id.value == "not-ours" && a.value == "a9")
    );
}

/// An agent scheduled for maintenance takes no new work; the next retry of work whose run
/// there was lost to the infrastructure goes elsewhere too, while an ordinary retry stays
/// pinned to its agent (and may use the draining one: it empties the agent all the same).
#[test]
fn agents_in_maintenance_take_no_new_work() {
    // (how the first run on a1 ended (None: never launched), launched on a1's tagged offer,
    //  launched on a2's plain offer)
    type FirstRun = Option<(TaskState, &'static str)>;
    let cases: &[(FirstRun, bool, bool)] = &[
        (None, false, true),
        (
            Some((
                TaskState::TaskKilled,
                "Agent is draining (REASON_AGENT_DRAINING)",
            )),
            false,
            true,
        ),
        (Some((TaskState::TaskGoneByOperator, "gone")), false, true),
        (
            Some((TaskState::TaskFailed, "Command exited with status 1")),
            true,
            false,
        ),
    ];
    for (first, on_a1, on_a2) in cases {
        let mut w = World::new();
        let hcl = job_hcl(
            "j",
            "",
            "restart {\n attempts = 1\n delay = \"1s\"\n }\n reschedule {\n attempts = 0\n }",
            &task("t", 1000, 64, ""),
        );
        w.register(&hcl);
        let d = w.dispatch("j", 50);
        let mut core = Core::new(plain());
        if let Some((state, message)) = first {
            let p = core.place(&w.state, vec![offer("o0", "a1", 4.0, 4096.0)], w.now);
            let tasks = w.record(&p);
            w.update_with(&tasks[0], *state, Some(message));
            w.now += 10 * SEC;
        }
        let p = core.place(
            &w.state,
            vec![
                offer_unavailable("o1", "a1", 4.0, w.now + 3600 * SEC),
                offer("o2", "a2", 4.0, 4096.0),
            ],
            w.now,
        );
        let placed = launched(&p);
        assert_eq!(
            placed[0].1.contains(&d),
            *on_a1,
            "{first:?}: on the agent in maintenance"
        );
        assert_eq!(placed[1].1.contains(&d), *on_a2, "{first:?}: elsewhere");
    }
}

/// Inverse offers are accepted, with a long filter, once nothing of ours runs on the agent;
/// one whose agent still runs our task waits; a rescinded one is forgotten.
#[test]
fn inverse_offers_are_accepted_once_the_agent_is_free() {
    let mut w = World::new();
    w.register_simple("j", 1000, "");
    w.dispatch("j", 50);
    let mut core = Core::new(plain());
    let p = core.place(&w.state, vec![offer("o1", "a1", 4.0, 4096.0)], w.now);
    let tasks = w.record(&p);
    let start_ns = w.now + 3600 * SEC;
    let io = |id: &str, agent: &str| crate::cluster::InverseOffer {
        id: crate::cluster::Id::new(id),
        agent_id: crate::cluster::Id::new(agent),
        start_ns,
    };
    core.inverse_offers(vec![io("i1", "a1"), io("i2", "a2"), io("i3", "a3")]);
    core.rescind_inverse_offer("i3");
    let answer = |ids: &[&str]| ClusterCall::AnswerInverseOffers {
        inverse_offer_ids: ids.iter().map(|i| crate::cluster::Id::new(*i)).collect(),
        accept: true,
        refuse_seconds: super::core::INVERSE_OFFER_REFUSE_SECONDS,
    };
    assert_eq!(core.answer_inverse_offers(&w.state), Some(answer(&["i2"])));
    assert_eq!(core.answer_inverse_offers(&w.state), None, "a1 still busy");
    w.update(&tasks[0], TaskState::TaskFinished);
    assert_eq!(core.answer_inverse_offers(&w.state), Some(answer(&["i1"])));
    assert_eq!(core.answer_inverse_offers(&w.state), None, "answered once");
    core.inverse_offers(vec![io("i4", "a1")]);
    core.disconnected();
    assert_eq!(
        core.answer_inverse_offers(&w.state),
        None,
        "void after a disconnection"
    );
}

/// A launch whose persistent volume could not be created: the first failure is its cause,
/// told once.
#[test]
fn a_volume_failure_is_told_once_per_launch() {
    let mut core = Core::new(agents());
    core.volume_failed("v1", Some("t1"), "RESERVE Failed: no disk");
    core.volume_failed("v1", Some("t1"), "CREATE Error: no reservation");
    assert_eq!(
        core.take_volume_failure("t1").as_deref(),
        Some("RESERVE Failed: no disk")
    );
    assert_eq!(core.take_volume_failure("t1"), None);
}

/// A job in a role's node pool, one task of `cpu` MHz, no retries.
fn register_in_pool(w: &mut World, id: &str, pool: &str) {
    let hcl = job_hcl(id, "", NO_RETRY, &task("t", 1000, 64, "")).replacen(
        "type = \"batch\"",
        &format!("type = \"batch\"\n  node_pool = \"{pool}\""),
        1,
    );
    w.register(&hcl);
}

fn offer_for_role(id: &str, agent: &str, role: &str) -> Offer {
    let mut o = offer(id, agent, 4.0, 4096.0);
    o.extra.insert(
        "allocation_info".into(),
        serde_json::json!({ "role": role }),
    );
    o
}

/// Per role: work whose job's node_pool names a role launches only on offers of that role,
/// and a revive asks for exactly the roles the ready work can use (every role as soon as
/// some work can use any).
#[test]
fn work_that_names_a_role_uses_and_revives_only_that_role() {
    // (node pools of the dispatched jobs, roles revived)
    let cases: &[(&[&str], &[&str])] = &[
        (&["b"], &["b"]),
        (&["c", "b", "b"], &["b", "c"]),
        (&["b", "default"], &[]),
        (&["all"], &[]),
    ];
    for (pools, roles) in cases {
        let mut w = World::new();
        let mut core = Core::new(plain());
        // Quiet: nothing was pending, offers suppressed.
        let p = core.place(&w.state, vec![], w.now);
        core.offers_answered(p.all_placed, p.newest_dispatch, w.state.index(), w.now);
        for (i, pool) in pools.iter().enumerate() {
            let id = format!("j{i}");
            register_in_pool(&mut w, &id, pool);
            w.dispatch(&id, 50);
        }
        w.now += 10 * SEC;
        let want: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            core.revive(&w.state, w.state.index(), w.now),
            Some(ClusterCall::Revive(want)),
            "{pools:?}"
        );
    }
    // Placement: the b job only on b's offer; the default job on the first offer.
    let mut w = World::new();
    register_in_pool(&mut w, "gpu", "b");
    register_in_pool(&mut w, "any", "default");
    let gpu = w.dispatch("gpu", 90);
    let any = w.dispatch("any", 50);
    let mut core = Core::new(plain());
    let p = core.place(
        &w.state,
        vec![
            offer_for_role("o1", "a1", "a"),
            offer_for_role("o2", "a2", "b"),
        ],
        w.now,
    );
    assert_eq!(
        launched(&p),
        vec![
            (vec!["o1".into()], ids(&[&any])),
            (vec!["o2".into()], ids(&[&gpu])),
        ]
    );
    // Offers that carry no role (the local runner's) take any work.
    let mut w = World::new();
    register_in_pool(&mut w, "gpu", "b");
    let gpu = w.dispatch("gpu", 50);
    let p = core.place(&w.state, vec![offer("o3", "local", 4.0, 4096.0)], w.now);
    assert_eq!(launched(&p), vec![(vec!["o3".into()], ids(&[&gpu]))]);
}
