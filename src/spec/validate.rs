//! Semantic checks of a canonicalized job (Nomad's `Job.Validate` subset Dispatch relies
//! on), reported as one Nomad-style multi-error with Nomad's literal messages.

use std::collections::HashSet;

use super::error::SpecError;
use crate::model::job::{Task, TaskGroup, MAX_PRIORITY};
use crate::model::Job;

/// All problems of a job at once; Ok when there are none.
pub fn validate(job: &Job) -> Result<(), SpecError> {
    let mut errs = Vec::new();
    job_fields(job, &mut errs);
    let mut seen = std::collections::HashMap::new();
    for (i, g) in job.task_groups.iter().enumerate() {
        if !g.name.is_empty() {
            if let Some(prev) = seen.insert(g.name.clone(), i) {
                errs.push(format!(
                    "Job task group {} redefines '{}' from group {}",
                    i + 1,
                    g.name,
                    prev + 1
                ));
            }
        }
        group(g, &mut errs);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(SpecError::validation(errs))
    }
}

fn job_fields(job: &Job, errs: &mut Vec<String>) {
    if job.id.is_empty() {
        errs.push("Missing job ID".into());
    } else if job.id.contains(' ') {
        errs.push("Job ID contains a space".into());
    } else if job.id.contains('\0') {
        errs.push("Job ID contains a null character".into());
    }
    if job.name.is_empty() {
        errs.push("Missing job name".into());
    } else if job.name.contains('\0') {
        errs.push("Job Name contains a null character".into());
    }
    if job.namespace.is_empty() {
        errs.push("Job must be in a namespace".into());
    }
    match job.r#type.as_str() {
        "" => errs.push("Missing job type".into()),
        "service" | "batch" | "system" | "sysbatch" => {}
        other => errs.push(format!("Invalid job type: {other:?}")),
    }
    if job.priority < 1 || job.priority > MAX_PRIORITY {
        errs.push(format!("Job priority must be between [1, {MAX_PRIORITY}]"));
    }
    if job.datacenters.is_empty() {
        errs.push("Missing job datacenters".into());
    } else if job.datacenters.iter().any(|d| d.is_empty()) {
        errs.push("Job datacenter must be non-empty string".into());
    }
    if job.task_groups.is_empty() {
        errs.push("Missing job task groups".into());
    }
    if let Some(p) = &job.parameterized {
        if job.r#type != "batch" && job.r#type != "sysbatch" {
            errs.push(
                "Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler"
                    .into(),
            );
        }
        match p.payload.as_str() {
            "" | "optional" | "required" | "forbidden" => {}
            other => errs.push(format!("Unknown payload requirement: {other:?}")),
        }
        let required: HashSet<&String> = p.meta_required.iter().collect();
        let dups: Vec<&str> = p
            .meta_optional
            .iter()
            .filter(|k| required.contains(k))
            .map(String::as_str)
            .collect();
        if !dups.is_empty() {
            errs.push(format!(
                "Required and optional meta keys should be disjoint. Following keys exist in both: [{}]",
                dups.join(" ")
            ));
        }
        let declared: Vec<&str> = p
            .meta_required
            .iter()
            .chain(&p.meta_optional)
            .map(String::as_str)
            .collect();
        for key in p.meta_descriptions.keys() {
            if !declared.contains(&key.as_str()) {
                errs.push(format!(
                    "meta_descriptions describes {key:?}, which is neither in meta_required nor in meta_optional (declared: [{}])",
                    declared.join(" ")
                ));
            }
        }
    }
}

fn group(g: &TaskGroup, errs: &mut Vec<String>) {
    if g.name.is_empty() {
        errs.push("Missing task group name".into());
    }
    if g.count.is_some_and(|c| c < 0) {
        errs.push("Task group count can't be negative".into());
    }
    if g.tasks.is_empty() {
        errs.push(format!("Task group {:?} missing tasks", g.name));
    }
    if let Some(r) = &g.restart_policy {
        if !r.mode.is_empty() && r.mode != "delay" && r.mode != "fail" {
            errs.push(format!("Unsupported restart mode: {:?}", r.mode));
        }
        if r.attempts.is_some_and(|a| a < 0) {
            errs.push("Restart attempts can't be negative".into());
        }
    }
    if let Some(r) = &g.reschedule_policy {
        if !r.delay_function.is_empty()
            && !["constant", "exponential", "fibonacci"].contains(&r.delay_function.as_str())
        {
            errs.push(format!(
                "Invalid delay function {:?}, must be one of [constant exponential fibonacci]",
                r.delay_function
            ));
        }
    }
    if g.max_run_duration.is_some_and(|d| d < 0) {
        errs.push("max_run_duration can't be negative".into());
    }
    let mut seen = std::collections::HashMap::new();
    for (i, t) in g.tasks.iter().enumerate() {
        if !t.name.is_empty() {
            if let Some(prev) = seen.insert(t.name.clone(), i) {
                errs.push(format!(
                    "Task {} redefines '{}' from task {}",
                    i + 1,
                    t.name,
                    prev + 1
                ));
            }
        }
        task(t, errs);
    }
    depends_on(g, errs);
}

/// `depends_on` names tasks of the same group, not itself, without cycles.
fn depends_on(g: &TaskGroup, errs: &mut Vec<String>) {
    let names: Vec<&str> = g.tasks.iter().map(|t| t.name.as_str()).collect();
    for t in &g.tasks {
        for dep in &t.depends_on {
            if dep == &t.name {
                errs.push(format!("Task {:?} depends_on itself", t.name));
            } else if !names.contains(&dep.as_str()) {
                errs.push(format!(
                    "Task {:?} depends_on unknown task {dep:?}; tasks of group {:?}: {}",
                    t.name,
                    g.name,
                    names.join(", ")
                ));
            }
        }
    }
    // Kahn's algorithm: whatever cannot be ordered is on a cycle.
    let mut done: Vec<bool> = vec![false; g.tasks.len()];
    loop {
        let next = (0..g.tasks.len()).find(|&i| {
            !done[i]
                && g.tasks[i].depends_on.iter().all(|d| {
                    names
                        .iter()
                        .position(|n| n == d)
                        .is_none_or(|j| done[j] || j == i)
                })
        });
        match next {
            Some(i) => done[i] = true,
            None => break,
        }
    }
    let cyclic: Vec<&str> = (0..g.tasks.len())
        .filter(|&i| !done[i])
        .map(|i| names[i])
        .collect();
    if !cyclic.is_empty() {
        errs.push(format!(
            "Tasks of group {:?} depend on each other in a cycle: {}",
            g.name,
            cyclic.join(", ")
        ));
    }
}

fn task(t: &Task, errs: &mut Vec<String>) {
    if t.name.is_empty() {
        errs.push("Missing task name".into());
    }
    if t.driver.is_empty() {
        errs.push("Missing task driver".into());
    }
    if t.kill_timeout.is_some_and(|k| k < 0) {
        errs.push("KillTimeout must be a positive value".into());
    }
    if let Some(r) = &t.resources {
        if let Some(cpu) = r.cpu {
            if cpu < 1 {
                errs.push(format!("minimum CPU value is 1; got {cpu}"));
            }
        }
        if let Some(mem) = r.memory_mb {
            if mem < 10 {
                errs.push(format!("minimum MemoryMB value is 10; got {mem}"));
            }
        }
        for (name, v) in [("cores", r.cores), ("disk", r.disk_mb), ("gpus", r.gpus)] {
            if v.is_some_and(|n| n < 0) {
                errs.push(format!("resources.{name} can't be negative"));
            }
        }
    }
    if let Some(d) = &t.dispatch_payload {
        if escapes_alloc_dir(&["task", "local"], &d.file) {
            errs.push("dispatch_payload destination escapes allocation directory".into());
        }
    }
    for (i, tmpl) in t.templates.iter().enumerate() {
        let n = i + 1;
        if tmpl.source_path.is_empty() && tmpl.embedded_tmpl.is_empty() {
            errs.push(format!(
                "Template {n} validation failed: Must specify a source path or have an embedded template"
            ));
        }
        if !tmpl.source_path.is_empty() && !tmpl.embedded_tmpl.is_empty() {
            errs.push(format!(
                "Template {n} validation failed: Cannot specify both a source path and an embedded template"
            ));
        }
        if tmpl.dest_path.is_empty() {
            errs.push(format!(
                "Template {n} validation failed: Must specify a destination for the template"
            ));
        } else if !tmpl.dest_path.starts_with("${") && escapes_alloc_dir(&["task"], &tmpl.dest_path)
        {
            errs.push(format!(
                "Template {n} validation failed: destination escapes allocation directory"
            ));
        }
        match tmpl.change_mode.as_str() {
            "" | "noop" | "restart" | "signal" | "script" => {}
            other => errs.push(format!(
                "Template {n} validation failed: Unsupported change mode {other:?}"
            )),
        }
    }
    for (i, a) in t.artifacts.iter().enumerate() {
        if a.getter_source.is_empty() {
            errs.push(format!(
                "Artifact {} validation failed: source must be specified",
                i + 1
            ));
        }
        match a.getter_mode.as_str() {
            "" | "any" | "file" | "dir" => {}
            other => errs.push(format!(
                "Artifact {} validation failed: invalid artifact mode {other:?}; must be one of: any, file, dir",
                i + 1
            )),
        }
    }
    if let Some(l) = &t.lifecycle {
        match l.hook.as_str() {
            "prestart" | "poststart" | "poststop" => {}
            other => errs.push(format!(
                "Lifecycle validation failed: invalid hook: {other:?}"
            )),
        }
    }
}

/// True when `path`, taken relative to `base` inside the alloc dir, ends up outside it.
/// Paths starting with a runtime interpolation (`${NOMAD_ALLOC_DIR}/x`) are left to the client.
pub fn escapes_alloc_dir(base: &[&str], path: &str) -> bool {
    if path.starts_with('/') || path.starts_with('\\') {
        return true;
    }
    let mut depth = base.len() as i64;
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::job::{DispatchPayload, Parameterized};

    fn base() -> Job {
        let mut job = Job {
            id: "j".into(),
            r#type: "batch".into(),
            task_groups: vec![TaskGroup {
                name: "g".into(),
                tasks: vec![Task {
                    name: "t".into(),
                    driver: "exec".into(),
                    ..Task::default()
                }],
                ..TaskGroup::default()
            }],
            ..Job::default()
        };
        job.canonicalize();
        job
    }

    #[test]
    fn valid_job_passes() {
        assert_eq!(validate(&base()), Ok(()));
    }

    #[test]
    fn parameterized_rules() {
        let mut job = base();
        job.r#type = "service".into();
        job.parameterized = Some(Parameterized {
            payload: "sometimes".into(),
            meta_required: vec!["a".into(), "b".into()],
            meta_optional: vec!["b".into(), "a".into()],
            max_running: 0,
            meta_descriptions: [("a".into(), "the a".into()), ("c".into(), "?".into())]
                .into_iter()
                .collect(),
        });
        let text = validate(&job).unwrap_err().to_string();
        assert!(text.starts_with("4 errors occurred:\n\t* "), "{text}");
        assert!(text.contains(
            "meta_descriptions describes \"c\", which is neither in meta_required nor in meta_optional (declared: [a b b a])"
        ), "{text}");
        assert!(text.contains(
            "Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler"
        ));
        assert!(text.contains("Unknown payload requirement: \"sometimes\""));
        assert!(text.contains("Following keys exist in both: [b a]"));
    }

    #[test]
    fn dispatch_payload_escape() {
        assert!(!escapes_alloc_dir(&["task", "local"], "foo/bar"));
        assert!(!escapes_alloc_dir(&["task", "local"], "../../alloc/x"));
        assert!(escapes_alloc_dir(&["task", "local"], "../../../x"));
        assert!(escapes_alloc_dir(&["task", "local"], "/etc/passwd"));
        let mut job = base();
        job.task_groups[0].tasks[0].dispatch_payload = Some(DispatchPayload {
            file: "../../../x".into(),
        });
        let text = validate(&job).unwrap_err().to_string();
        assert!(text.contains("dispatch_payload destination escapes allocation directory"));
    }

    #[test]
    fn missing_basics() {
        let job = Job {
            id: "a b".into(),
            task_groups: vec![TaskGroup::default()],
            ..Job::default()
        };
        let text = validate(&job).unwrap_err().to_string();
        for m in [
            "Job ID contains a space",
            "Missing job type",
            "Job priority must be between [1, 100]",
            "Missing task group name",
            "Task group \"\" missing tasks",
        ] {
            assert!(text.contains(m), "{m} not in {text}");
        }
    }
}
