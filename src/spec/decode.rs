//! HCL job blocks -> `model::Job`: `job`, `group`, `task` and their known sub-blocks, with
//! every other Nomad block kept in the matching `extra` map.

use hcl::edit::structure::Body;
use indexmap::IndexMap;
use serde_json::Value;

use super::body::{check_known, Cx, Item, Kind, Res};
use super::eval::Scope;
use super::extra::attr_key;
use crate::model::job::{
    Artifact, DispatchPayload, EphemeralDisk, Lifecycle, Parameterized, ReschedulePolicy,
    Resources, RestartPolicy, Task, TaskGroup, Template,
};
use crate::model::Job;

const JOB_FIELDS: &[&str] = &[
    "type",
    "priority",
    "datacenters",
    "region",
    "namespace",
    "node_pool",
    "name",
    "id",
    "meta",
    "parameterized",
    "group",
    "task",
    "all_at_once",
    "constraint",
    "affinity",
    "spread",
    "periodic",
    "update",
    "migrate",
    "reschedule",
    "vault",
    "vault_token",
    "vault_namespace",
    "consul",
    "consul_token",
    "consul_namespace",
    "multiregion",
    "ui",
    "payload",
];
/// Job-level names kept in `Job.extra`.
const JOB_EXTRA: &[&str] = &[
    "all_at_once",
    "constraint",
    "affinity",
    "spread",
    "periodic",
    "update",
    "migrate",
    "reschedule",
    "vault",
    "vault_token",
    "vault_namespace",
    "consul",
    "consul_token",
    "consul_namespace",
    "multiregion",
    "ui",
    "payload",
];

const GROUP_FIELDS: &[&str] = &[
    "count",
    "restart",
    "reschedule",
    "ephemeral_disk",
    "meta",
    "max_run_duration",
    "task",
    "constraint",
    "affinity",
    "spread",
    "network",
    "volume",
    "service",
    "update",
    "migrate",
    "scaling",
    "shutdown_delay",
    "stop_after_client_disconnect",
    "max_client_disconnect",
    "disconnect",
    "prevent_reschedule_on_lost",
    "consul",
    "vault",
];

const TASK_FIELDS: &[&str] = &[
    "driver",
    "user",
    "config",
    "env",
    "resources",
    "artifact",
    "template",
    "dispatch_payload",
    "kill_timeout",
    "kill_signal",
    "meta",
    "lifecycle",
    "leader",
    "depends_on",
    "constraint",
    "affinity",
    "service",
    "logs",
    "identity",
    "vault",
    "volume_mount",
    "csi_plugin",
    "shutdown_delay",
    "kind",
    "restart",
    "scaling",
    "consul",
    "action",
    "schedule",
    "secret",
];

/// The single label and the body of a `job`/`group`/`task` block.
fn labeled<'i, 'a>(
    cx: &Cx,
    item: &'i Item<'a>,
    path: &str,
    what: &str,
) -> Res<(&'i str, &'a Body)> {
    match &item.kind {
        Kind::Block { labels, body } if labels.len() == 1 => Ok((labels[0].as_str(), body)),
        Kind::Block { labels, .. } => Err(cx.err(
            &item.span,
            path,
            format!(
                "{what} block needs exactly one label ({what} \"name\" {{ ... }}), got {}",
                labels.len()
            ),
        )),
        Kind::Attr(_) => Err(cx.err(
            &item.span,
            path,
            format!("{what} is a block: write {what} \"name\" {{ ... }}"),
        )),
    }
}

pub(crate) fn job<'a>(cx: &Cx<'a>, item: &Item<'a>) -> Res<Job> {
    let (id, body) = labeled(cx, item, "", "job")?;
    let id = id.to_string();
    let path = format!("job {id:?}");
    let mut job = Job {
        id,
        ..Job::default()
    };
    for it in cx.items(body, &item.scope, &path)? {
        check_known(cx, &it, JOB_FIELDS, &path, "job")?;
        let p = &path;
        match it.name.as_str() {
            "type" => job.r#type = cx.string(&it, p, "type")?,
            "priority" => job.priority = cx.int(&it, p, "priority")?,
            "datacenters" => job.datacenters = cx.strings(&it, p, "datacenters")?,
            "region" => job.region = cx.string(&it, p, "region")?,
            "namespace" => job.namespace = cx.string(&it, p, "namespace")?,
            "node_pool" => job.node_pool = cx.string(&it, p, "node_pool")?,
            "name" => job.name = cx.string(&it, p, "name")?,
            "id" => job.id = cx.string(&it, p, "id")?,
            "meta" => job.meta.extend(cx.string_map(&it, p, "meta")?),
            "parameterized" => job.parameterized = Some(parameterized(cx, &it, p)?),
            "group" => job.task_groups.push(group(cx, &it, p)?),
            "task" => {
                // Nomad wraps a task written directly under job in a group of its name.
                let t = task(cx, &it, p)?;
                job.task_groups.push(TaskGroup {
                    name: t.name.clone(),
                    tasks: vec![t],
                    ..TaskGroup::default()
                });
            }
            n if JOB_EXTRA.contains(&n) => cx.put_extra(&mut job.extra, &it, p)?,
            _ => {}
        }
    }
    // Nomad's HCL parser names the job after its label unless `name` says otherwise.
    if job.name.is_empty() {
        job.name = job.id.clone();
    }
    Ok(job)
}

fn block_items<'a>(
    cx: &Cx<'a>,
    item: &Item<'a>,
    path: &str,
    field: &str,
    allowed: &[&str],
) -> Res<Vec<Item<'a>>> {
    let (body, scope) = cx.block(item, path, field)?;
    let items = cx.items(body, scope, path)?;
    for it in &items {
        check_known(cx, it, allowed, path, field)?;
    }
    Ok(items)
}

fn parameterized<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<Parameterized> {
    let mut out = Parameterized::default();
    for it in block_items(
        cx,
        item,
        p,
        "parameterized",
        &[
            "payload",
            "meta_required",
            "meta_optional",
            "max_running",
            "meta_descriptions",
        ],
    )? {
        match it.name.as_str() {
            "payload" => out.payload = cx.string(&it, p, "parameterized.payload")?,
            "meta_descriptions" => {
                out.meta_descriptions = cx.string_map(&it, p, "parameterized.meta_descriptions")?
            }
            "meta_required" => {
                out.meta_required = cx.strings(&it, p, "parameterized.meta_required")?
            }
            "meta_optional" => {
                out.meta_optional = cx.strings(&it, p, "parameterized.meta_optional")?
            }
            _ => {
                let n = cx.int(&it, p, "parameterized.max_running")?;
                out.max_running = u32::try_from(n).map_err(|_| {
                    cx.err(
                        &it.span,
                        p,
                        format!(
                            "parameterized.max_running must be between 0 and {}, got {n}",
                            u32::MAX
                        ),
                    )
                })?;
            }
        }
    }
    Ok(out)
}

fn group<'a>(cx: &Cx<'a>, item: &Item<'a>, parent: &str) -> Res<TaskGroup> {
    let (name, body) = labeled(cx, item, parent, "group")?;
    let name = name.to_string();
    let path = format!("{parent} > group {name:?}");
    let p = &path;
    let mut g = TaskGroup {
        name,
        ..TaskGroup::default()
    };
    for it in cx.items(body, &item.scope, p)? {
        check_known(cx, &it, GROUP_FIELDS, p, "group")?;
        match it.name.as_str() {
            "count" => g.count = Some(cx.int(&it, p, "count")?),
            "restart" => g.restart_policy = Some(restart(cx, &it, p)?),
            "reschedule" => g.reschedule_policy = Some(reschedule(cx, &it, p)?),
            "ephemeral_disk" => g.ephemeral_disk = Some(ephemeral_disk(cx, &it, p)?),
            "meta" => g.meta.extend(cx.string_map(&it, p, "meta")?),
            "max_run_duration" => {
                g.max_run_duration = Some(cx.duration(&it, p, "max_run_duration")?)
            }
            "task" => g.tasks.push(task(cx, &it, p)?),
            "shutdown_delay" | "stop_after_client_disconnect" | "max_client_disconnect" => {
                let ns = cx.duration(&it, p, &it.name)?;
                g.extra.insert(attr_key(&it.name), Value::from(ns));
            }
            _ => cx.put_extra(&mut g.extra, &it, p)?,
        }
    }
    Ok(g)
}

fn restart<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<RestartPolicy> {
    let mut r = RestartPolicy::default();
    for it in block_items(
        cx,
        item,
        p,
        "restart",
        &["attempts", "interval", "delay", "mode", "render_templates"],
    )? {
        let f = format!("restart.{}", it.name);
        match it.name.as_str() {
            "attempts" => r.attempts = Some(cx.int(&it, p, &f)?),
            "interval" => r.interval = Some(cx.duration(&it, p, &f)?),
            "delay" => r.delay = Some(cx.duration(&it, p, &f)?),
            "mode" => r.mode = cx.string(&it, p, &f)?,
            _ => {
                let b = cx.bool(&it, p, &f)?;
                r.extra.insert("RenderTemplates".into(), Value::Bool(b));
            }
        }
    }
    Ok(r)
}

fn reschedule<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<ReschedulePolicy> {
    let mut r = ReschedulePolicy::default();
    let allowed = [
        "attempts",
        "interval",
        "delay",
        "delay_function",
        "max_delay",
        "unlimited",
    ];
    for it in block_items(cx, item, p, "reschedule", &allowed)? {
        let f = format!("reschedule.{}", it.name);
        match it.name.as_str() {
            "attempts" => r.attempts = Some(cx.int(&it, p, &f)?),
            "interval" => r.interval = Some(cx.duration(&it, p, &f)?),
            "delay" => r.delay = Some(cx.duration(&it, p, &f)?),
            "delay_function" => r.delay_function = cx.string(&it, p, &f)?,
            "max_delay" => r.max_delay = Some(cx.duration(&it, p, &f)?),
            _ => r.unlimited = Some(cx.bool(&it, p, &f)?),
        }
    }
    Ok(r)
}

fn ephemeral_disk<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<EphemeralDisk> {
    let mut d = EphemeralDisk::default();
    for it in block_items(
        cx,
        item,
        p,
        "ephemeral_disk",
        &["size", "sticky", "migrate"],
    )? {
        let f = format!("ephemeral_disk.{}", it.name);
        match it.name.as_str() {
            "size" => d.size_mb = Some(cx.int(&it, p, &f)?),
            _ => {
                let b = cx.bool(&it, p, &f)?;
                d.extra.insert(attr_key(&it.name), Value::Bool(b));
            }
        }
    }
    Ok(d)
}

fn task<'a>(cx: &Cx<'a>, item: &Item<'a>, parent: &str) -> Res<Task> {
    let (name, body) = labeled(cx, item, parent, "task")?;
    let name = name.to_string();
    let path = format!("{parent} > task {name:?}");
    let p = &path;
    let mut t = Task {
        name,
        ..Task::default()
    };
    for it in cx.items(body, &item.scope, p)? {
        check_known(cx, &it, TASK_FIELDS, p, "task")?;
        let n = it.name.clone();
        match n.as_str() {
            "driver" => t.driver = cx.string(&it, p, &n)?,
            "user" => t.user = cx.string(&it, p, &n)?,
            "config" => t.config.extend(cx.free_map(&it, p, &n)?),
            "env" => t.env.extend(cx.string_map(&it, p, &n)?),
            "meta" => t.meta.extend(cx.string_map(&it, p, &n)?),
            "resources" => t.resources = Some(resources(cx, &it, p)?),
            "artifact" => t.artifacts.push(artifact(cx, &it, p)?),
            "template" => t.templates.push(template(cx, &it, p)?),
            "dispatch_payload" => {
                let mut d = DispatchPayload::default();
                for f in block_items(cx, &it, p, "dispatch_payload", &["file"])? {
                    d.file = cx.string(&f, p, "dispatch_payload.file")?;
                }
                t.dispatch_payload = Some(d);
            }
            "kill_timeout" => t.kill_timeout = Some(cx.duration(&it, p, &n)?),
            "kill_signal" => t.kill_signal = cx.string(&it, p, &n)?,
            "leader" => t.leader = cx.bool(&it, p, &n)?,
            "depends_on" => t.depends_on = cx.strings(&it, p, &n)?,
            "lifecycle" => {
                let mut l = Lifecycle::default();
                for f in block_items(cx, &it, p, "lifecycle", &["hook", "sidecar"])? {
                    match f.name.as_str() {
                        "hook" => l.hook = cx.string(&f, p, "lifecycle.hook")?,
                        _ => l.sidecar = cx.bool(&f, p, "lifecycle.sidecar")?,
                    }
                }
                t.lifecycle = Some(l);
            }
            "shutdown_delay" => {
                let ns = cx.duration(&it, p, &n)?;
                t.extra.insert("ShutdownDelay".into(), Value::from(ns));
            }
            _ => cx.put_extra(&mut t.extra, &it, p)?,
        }
    }
    Ok(t)
}

fn resources<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<Resources> {
    let allowed = [
        "cpu",
        "cores",
        "memory",
        "memory_max",
        "disk",
        "gpus",
        "device",
        "network",
        "iops",
        "numa",
        "secrets",
    ];
    let mut r = Resources::default();
    for it in block_items(cx, item, p, "resources", &allowed)? {
        let f = format!("resources.{}", it.name);
        match it.name.as_str() {
            "cpu" => r.cpu = Some(cx.int(&it, p, &f)?),
            "cores" => r.cores = Some(cx.int(&it, p, &f)?),
            "memory" => r.memory_mb = Some(cx.int(&it, p, &f)?),
            "memory_max" => r.memory_max_mb = Some(cx.int(&it, p, &f)?),
            "disk" => r.disk_mb = Some(cx.int(&it, p, &f)?),
            "gpus" => r.gpus = Some(cx.int(&it, p, &f)?),
            "device" => {
                let before = r.extra.get("Devices").cloned();
                cx.put_extra(&mut r.extra, &it, p)?;
                let dev_name = match &it.kind {
                    Kind::Block { labels, .. } => labels.first().cloned().unwrap_or_default(),
                    Kind::Attr(_) => String::new(),
                };
                if dev_name.contains("gpu") {
                    let count = device_count(r.extra.get("Devices"), before.as_ref());
                    r.gpus = Some(r.gpus.unwrap_or(0) + count);
                }
            }
            _ => cx.put_extra(&mut r.extra, &it, p)?,
        }
    }
    Ok(r)
}

/// `count` of the device entry just added (Nomad's default count is 1).
fn device_count(after: Option<&Value>, before: Option<&Value>) -> i64 {
    let n_before = before.and_then(Value::as_array).map_or(0, Vec::len);
    after
        .and_then(Value::as_array)
        .and_then(|a| a.get(n_before))
        .and_then(|d| d.get("Count"))
        .and_then(|c| {
            c.as_i64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(1)
}

fn artifact<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<Artifact> {
    let mut a = Artifact::default();
    let allowed = [
        "source",
        "destination",
        "mode",
        "options",
        "headers",
        "chown",
    ];
    for it in block_items(cx, item, p, "artifact", &allowed)? {
        let f = format!("artifact.{}", it.name);
        match it.name.as_str() {
            "source" => a.getter_source = cx.string(&it, p, &f)?,
            "destination" => a.relative_dest = cx.string(&it, p, &f)?,
            "mode" => a.getter_mode = cx.string(&it, p, &f)?,
            "options" => a.getter_options.extend(cx.string_map(&it, p, &f)?),
            "headers" => {
                let h: IndexMap<String, String> = cx.string_map(&it, p, &f)?;
                a.extra.insert(
                    "GetterHeaders".into(),
                    serde_json::to_value(h).unwrap_or_default(),
                );
            }
            _ => {
                let b = cx.bool(&it, p, &f)?;
                a.extra.insert("Chown".into(), Value::Bool(b));
            }
        }
    }
    Ok(a)
}

fn template<'a>(cx: &Cx<'a>, item: &Item<'a>, p: &str) -> Res<Template> {
    let mut t = Template::default();
    let allowed = [
        "data",
        "source",
        "destination",
        "env",
        "perms",
        "change_mode",
        "change_signal",
        "left_delimiter",
        "right_delimiter",
        "splay",
        "once",
        "error_on_missing_key",
        "uid",
        "gid",
        "vault_grace",
        "wait",
        "change_script",
    ];
    for it in block_items(cx, item, p, "template", &allowed)? {
        let f = format!("template.{}", it.name);
        match it.name.as_str() {
            "data" => t.embedded_tmpl = cx.string(&it, p, &f)?,
            "source" => t.source_path = cx.string(&it, p, &f)?,
            "destination" => t.dest_path = cx.string(&it, p, &f)?,
            "env" => t.envvars = cx.bool(&it, p, &f)?,
            "perms" => t.perms = cx.string(&it, p, &f)?,
            "change_mode" => t.change_mode = cx.string(&it, p, &f)?,
            "left_delimiter" => t.left_delim = cx.string(&it, p, &f)?,
            "right_delimiter" => t.right_delim = cx.string(&it, p, &f)?,
            "change_signal" => {
                let s = cx.string(&it, p, &f)?;
                t.extra.insert("ChangeSignal".into(), Value::from(s));
            }
            "splay" | "vault_grace" => {
                let ns = cx.duration(&it, p, &f)?;
                t.extra.insert(attr_key(&it.name), Value::from(ns));
            }
            "once" | "error_on_missing_key" => {
                let b = cx.bool(&it, p, &f)?;
                let key = if it.name == "once" {
                    "Once"
                } else {
                    "ErrMissingKey"
                };
                t.extra.insert(key.into(), Value::Bool(b));
            }
            "uid" | "gid" => {
                let n = cx.int(&it, p, &f)?;
                t.extra.insert(attr_key(&it.name), Value::from(n));
            }
            _ => cx.put_extra(&mut t.extra, &it, p)?,
        }
    }
    Ok(t)
}

/// Scope of the top level (no iterators).
pub(crate) fn root_scope() -> Scope {
    Scope::default()
}

#[cfg(test)]
mod tests {
    use crate::spec::{parse_hcl, parse_hcl_with_vars};
    use indexmap::IndexMap;

    fn err(src: &str) -> String {
        match parse_hcl(src, "t.hcl") {
            Ok(job) => panic!("should fail: {job:?}"),
            Err(e) => {
                assert!(e.is_parse());
                e.to_string()
            }
        }
    }

    #[test]
    fn unknown_block_lists_allowed_names() {
        let text = err("job \"j\" {\n  group \"g\" {\n    restrat { attempts = 1 }\n  }\n}\n");
        assert!(
            text.starts_with("t.hcl:3:5: job \"j\" > group \"g\": unknown block \"restrat\" in group; allowed: count, restart,"),
            "{text}"
        );
    }

    #[test]
    fn unknown_field_in_sub_block() {
        let text = err("job \"j\" {\n  parameterized {\n    paylod = \"required\"\n  }\n}\n");
        assert!(text.contains("t.hcl:3:5: job \"j\": unknown field \"paylod\" in parameterized; allowed: payload, meta_required, meta_optional, max_running, meta_descriptions"), "{text}");
    }

    #[test]
    fn wrong_types_name_field_and_line() {
        let text = err("job \"j\" {\n  group \"g\" {\n    count = \"many\"\n  }\n}\n");
        assert_eq!(
            text,
            "t.hcl:3:5: job \"j\" > group \"g\": count must be a number, got \"many\""
        );
        let text = err("job \"j\" {\n  group \"g\" {\n    task \"t\" {\n      kill_timeout = \"soon\"\n    }\n  }\n}\n");
        assert!(text.contains("t.hcl:4:7: job \"j\" > group \"g\" > task \"t\": kill_timeout: invalid duration \"soon\""), "{text}");
        let text = err("job \"j\" {\n  parameterized {\n    meta_required = \"input\"\n  }\n}\n");
        assert!(
            text.contains("parameterized.meta_required must be a list of strings, got string"),
            "{text}"
        );
        let text = err("job \"j\" {\n  group \"g\" {\n    restart = 3\n  }\n}\n");
        assert!(text.contains("t.hcl:3:5"), "{text}");
        assert!(text.contains("restart is a block"), "{text}");
    }

    #[test]
    fn numeric_strings_convert_like_hcl() {
        let job = parse_hcl(
            "job \"j\" {\n  group \"g\" {\n    ephemeral_disk { size = \"5000\" }\n  }\n}\n",
            "t.hcl",
        )
        .expect("parse");
        assert_eq!(
            job.task_groups[0]
                .ephemeral_disk
                .as_ref()
                .and_then(|d| d.size_mb),
            Some(5000)
        );
    }

    #[test]
    fn labels_and_redefinitions() {
        let text = err("job \"j\" {\n  group {\n  }\n}\n");
        assert!(
            text.contains("group block needs exactly one label"),
            "{text}"
        );
        let text = err("job \"j\" {\n  type = \"batch\"\n  type = \"service\"\n}\n");
        assert!(
            text.starts_with("t.hcl:3:3: invalid HCL2 syntax")
                && text.contains("redefined attribute"),
            "{text}"
        );
        let text = err("job \"a\" {}\njob \"b\" {}\n");
        assert!(text.contains("only one job block"), "{text}");
        let text = err("variable \"x\" {}\njob \"a\" {}\n");
        assert!(text.contains("Unset variable \"x\""), "{text}");
    }

    #[test]
    fn expression_errors_point_at_the_expression() {
        let text = err("job \"j\" {\n  datacenters = var.missing\n}\n");
        assert!(
            text.starts_with(
                "t.hcl:2:17: job \"j\": datacenters: undeclared input variable \"var.missing\""
            ),
            "{text}"
        );
        let text =
            err("locals {\n  a = local.b\n  b = local.a\n}\njob \"j\" {\n  name = local.a\n}\n");
        assert!(text.contains("refers to itself"), "{text}");
        let text = err("job \"j\" {\n  name = nosuch(1)\n}\n");
        assert!(
            text.contains("nosuch(): call to unknown function"),
            "{text}"
        );
    }

    #[test]
    fn bad_var_override_is_an_error() {
        let mut vars = IndexMap::new();
        vars.insert("n".to_string(), "abc".to_string());
        let src = "variable \"n\" {\n  type = number\n  default = 1\n}\njob \"j\" {\n  priority = var.n\n}\n";
        let e = parse_hcl_with_vars(src, "t.hcl", &vars).expect_err("bad number");
        assert!(
            e.to_string().contains("Invalid value for variable \"n\""),
            "{e}"
        );
        vars.insert("n".to_string(), "70".to_string());
        let job = parse_hcl_with_vars(src, "t.hcl", &vars).expect("ok");
        assert_eq!(job.priority, 70);
        vars.insert("other".to_string(), "1".to_string());
        assert!(parse_hcl_with_vars(src, "t.hcl", &vars).is_err());
    }
}
