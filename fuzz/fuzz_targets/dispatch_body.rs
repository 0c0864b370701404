//! A dispatch as `PUT /v1/job/<id>/dispatch` receives it: the body decoded as the API does,
//! then, with the meta the job permits (what the writer would accept), the child rendered:
//! meta and payload interpolated into commands, environment and templates.
#![no_main]

use std::sync::{Arc, OnceLock};

use dispatch::model::{Dispatch, DispatchStatus, Job, Meta};
use dispatch::render::{render_task, RenderInput};
use libfuzzer_sys::fuzz_target;

fn jobs() -> &'static [Arc<Job>] {
    static JOBS: OnceLock<Vec<Arc<Job>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        [
            include_str!("../../jobs/transcode.hcl"),
            include_str!("../../jobs/gif.hcl"),
        ]
        .iter()
        .map(|text| {
            let mut job = dispatch::spec::parse_job(text, "job.hcl").expect("a shipped job").job;
            job.canonicalize();
            Arc::new(job)
        })
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let job = &jobs()[usize::from(which) % jobs().len()];
    let query = (which & 0x80 != 0).then_some("idempotency_token=a&pretty");
    let Ok(request) = dispatch::api::decode_dispatch(&job.id, query, body) else {
        return;
    };
    let Some(params) = &job.parameterized else {
        return;
    };
    let allowed: Meta = request
        .meta
        .iter()
        .filter(|(k, _)| params.meta_required.contains(k) || params.meta_optional.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let d = Dispatch {
        id: format!("{}/dispatch-1700000000-1a2b3c4d", job.id).into(),
        job: job.clone(),
        meta: (&allowed).into(),
        priority: 50,
        status: DispatchStatus::Pending,
        idempotency_token: None,
        payload_len: request.payload.as_ref().map_or(0, |p| p.len() as u32),
        eval_id: Default::default(),
        submit_time: 1_700_000_000_000_000_000,
        create_index: 1,
        modify_index: 1,
        description: None,
        ended_at: 0,
        runs: Vec::new(),
        dispatched_by: None,
    };
    for group in &job.task_groups {
        for task in &group.tasks {
            let _ = render_task(&RenderInput {
                dispatch: &d,
                group,
                instance: 0,
                task,
                attempt: 1,
                payload: request.payload.as_deref(),
            });
        }
    }
});
