//! Every file of the real-world corpus (tests/fixtures/nomad-jobs, see its README) gets the
//! outcome the README records: valid files parse to the right values, HCL1-only and invalid
//! files fail with the right line and reason.

use std::path::PathBuf;

use dispatch::model::job::{Task, TaskGroup};
use dispatch::model::Job;
use dispatch::spec::{self, SpecError};
use indexmap::IndexMap;
use serde_json::{json, Value};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nomad-jobs")
        .join(name)
}

fn source(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(name: &str) -> Job {
    let parsed =
        spec::parse_job(&source(name), name).unwrap_or_else(|e| panic!("{name} should parse: {e}"));
    assert_eq!(
        parsed.warnings,
        Vec::<String>::new(),
        "{name} is HCL2 or JSON"
    );
    parsed.job
}

fn parse_valid(name: &str) -> Job {
    let mut job = parse(name);
    job.canonicalize();
    spec::validate(&job).unwrap_or_else(|e| panic!("{name} should validate: {e}"));
    job
}

fn fail(name: &str) -> SpecError {
    match spec::parse_job(&source(name), name) {
        Ok(job) => panic!("{name} should fail, parsed as {job:?}"),
        Err(e) => e,
    }
}

fn group<'a>(job: &'a Job, name: &str) -> &'a TaskGroup {
    job.task_groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name:?}"))
}

fn task<'a>(g: &'a TaskGroup, name: &str) -> &'a Task {
    g.tasks
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name:?} in {}", g.name))
}

fn only_task(job: &Job) -> &Task {
    assert_eq!(job.task_groups.len(), 1);
    assert_eq!(job.task_groups[0].tasks.len(), 1);
    &job.task_groups[0].tasks[0]
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn constraint(extra: &IndexMap<String, Value>, i: usize) -> &Value {
    &extra["Constraints"][i]
}

#[test]
fn corpus_is_complete() {
    let mut n = 0;
    for entry in std::fs::read_dir(path("")).expect("corpus dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if name == "README.md" {
            continue;
        }
        n += 1;
        // every file is either parsed or rejected by exactly one of the tests below; the two
        // HCL1-only files parse (with warnings, see t01 and t12)
        let failing = [
            "angrycub__nomad_example_jobs__applications__wordpress__distributed__build-site.nomad",
            "testing-farm__infrastructure__terragrunt__environments__production__worker-redhat__jobs__tf-tmt-multihost.nomad",
        ];
        let result = spec::parse_job(&source(&name), &name);
        assert_eq!(
            result.is_err(),
            failing.contains(&name.as_str()),
            "{name}: {result:?}"
        );
    }
    assert_eq!(n, 26);
}

// ---- #1, #12: HCL1-only (accepted with a warning, as Nomad before 1.6); #7, #16: invalid ----

/// An HCL1 corpus file and its HCL2 rewrite (tests/fixtures/hcl1) parse to the same job.
fn hcl1_equals_rewrite(name: &str, rewrite: &str) -> Vec<String> {
    let parsed = spec::parse_job(&source(name), name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let hcl2_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hcl1")
        .join(rewrite);
    let hcl2 = std::fs::read_to_string(&hcl2_path).expect("rewrite");
    let rewritten = spec::parse_job(&hcl2, rewrite).expect("the rewrite is HCL2");
    assert!(rewritten.warnings.is_empty(), "{:?}", rewritten.warnings);
    assert_eq!(
        serde_json::to_value(&parsed.job).expect("json"),
        serde_json::to_value(&rewritten.job).expect("json"),
        "{name} reads as its HCL2 rewrite {rewrite}"
    );
    // as Nomad's HCL2 parser does, the rewrite alone is strict: the original is not HCL2
    let strict = spec::parse_hcl(&source(name), name).expect_err("not HCL2");
    assert!(
        strict.to_string().contains("HCL1 syntax is not supported"),
        "{strict}"
    );
    // and with canonicalization and validation, the file is a valid job
    let mut job = parsed.job;
    job.canonicalize();
    spec::validate(&job).unwrap_or_else(|e| panic!("{name} validates: {e}"));
    parsed.warnings
}

#[test]
fn t01_transcode_hcl1_quoted_attribute_name() {
    let name = "hashicorp__nomad-dispatch-ffmpeg__nomad__transcode.nomad";
    let warnings = hcl1_equals_rewrite(name, "transcode.hcl2.nomad");
    assert_eq!(
        warnings,
        [format!(
            "{name}:28: HCL1: quoted attribute name \"S3_BUCKET\"; HCL2 writes S3_BUCKET = ..."
        )]
    );
    let job = parse_hcl1_ok(name);
    let t = only_task(&job);
    assert_eq!(t.env["S3_BUCKET"], "BUCKET_NAME");
    // strings stay as written for the client to interpolate
    assert_eq!(
        t.config["args"],
        json!(["${NOMAD_META_INPUT}", "${NOMAD_META_PROFILE}"])
    );
    assert!(t.templates[0].embedded_tmpl.contains("[default]"));
}

fn parse_hcl1_ok(name: &str) -> Job {
    spec::parse_job(&source(name), name).expect("HCL1").job
}

#[test]
fn t12_make_map_hcl1_comma_after_attribute() {
    let name = "DingoEatingFuzz__hashitalks-2020-map-dispatch__infra__make-map.nomad";
    let warnings = hcl1_equals_rewrite(name, "make-map.hcl2.nomad");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "{name}:8: HCL1: comma after the attribute \"meta_required\""
        )),
        "{warnings:?}"
    );
    let job = parse_hcl1_ok(name);
    assert_eq!(
        job.parameterized
            .as_ref()
            .expect("parameterized")
            .meta_required,
        strs(&["DATA_FILE", "PROJECTION"])
    );
}

#[test]
fn hcl1_shape_errors_name_the_files_own_line() {
    // several items on one line (HCL1) are split for HCL2; an error after them still names
    // the line as written
    let src = "job \"j\" {\n  type = \"batch\"\n  group \"g\" { count = 1, bogus = 2 }\n}\n";
    let e = spec::parse_job(src, "j.nomad").expect_err("bogus");
    assert_eq!(e.pos.map(|p| p.0), Some(3), "{e}");
    assert!(e.to_string().contains("bogus"), "{e}");
    // a file with HCL2-only features is never read as HCL1
    let src = "variable \"x\" {\n  default = 1\n}\njob \"j\" {\n  \"a\" = 1\n}\n";
    let e = spec::parse_job(src, "v.nomad").expect_err("HCL2 file with an HCL1 construct");
    assert!(
        e.to_string().contains("HCL1 syntax is not supported"),
        "{e}"
    );
    // the parse API's HCLv1 reads strings literally, as HCL1 did
    let src = "job \"j\" {\n  meta {\n    \"a.b\" = \"${x} %{y}\"\n  }\n}\n";
    let parsed = spec::parse_hcl1(src, "m.nomad").expect("HCL1");
    assert_eq!(parsed.job.meta["a.b"], "${x} %{y}");
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert!(spec::parse_hcl1("job \"j\" { a = b(1) }", "f.nomad").is_err());
}

#[test]
fn t07_build_site_invalid_heredoc() {
    let e = fail(
        "angrycub__nomad_example_jobs__applications__wordpress__distributed__build-site.nomad",
    );
    assert_eq!(e.pos.map(|p| p.0), Some(20));
    let text = e.to_string();
    assert!(text.contains("invalid HCL2 syntax"), "{text}");
    assert!(text.contains("no space after <<"), "{text}");
}

#[test]
fn t16_tf_tmt_removed_comment_line() {
    let e = fail("testing-farm__infrastructure__terragrunt__environments__production__worker-redhat__jobs__tf-tmt-multihost.nomad");
    assert_eq!(e.pos, Some((11, 1)));
    assert!(e.to_string().contains("***REMOVED***"), "{e}");
}

// ---- parameterized HCL files ----

#[test]
fn t02_autoscaler_batch_heredoc_keeps_bash_and_runtime_refs() {
    let job = parse_valid("hashicorp__nomad-autoscaler-demos__cloud__demos__on-demand-batch__shared__terraform__modules__nomad-jobs__jobs__batch.nomad");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "optional");
    assert!(p.meta_required.is_empty());
    assert_eq!(p.meta_optional, strs(&["sleep", "splay"]));
    assert_eq!(job.meta["sleep"], "180");
    assert_eq!(constraint(&job.extra, 0)["LTarget"], json!("${node.class}"));
    let t = only_task(&job);
    assert_eq!(t.config["args"], json!(["${NOMAD_TASK_DIR}/sleep.sh"]));
    let data = &t.templates[0].embedded_tmpl;
    assert!(
        data.contains("dur=$((${NOMAD_META_sleep} + RANDOM % ${NOMAD_META_splay}))"),
        "{data}"
    );
    assert!(data.contains("echo \"Sleeping for ${dur}s\""), "{data}");
    assert!(
        data.starts_with("#!/usr/bin/env bash\n"),
        "indented closing marker: {data:?}"
    );
}

#[test]
fn t03_sysbatch_dispatch() {
    let job =
        parse_valid("hashicorp__nomad__e2e__scheduler_sysbatch__input__sysbatch_dispatch.nomad");
    assert_eq!(job.r#type, "sysbatch");
    assert_eq!(job.datacenters, strs(&["dc1", "dc2"]));
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "forbidden");
    assert_eq!(p.meta_required, strs(&["KEY"]));
    assert_eq!(
        constraint(&job.extra, 0)["LTarget"],
        json!("${attr.kernel.name}")
    );
    assert_eq!(job.task_groups[0].count, Some(1));
}

#[test]
fn t04_register_volumes() {
    let job = parse_valid(
        "hashicorp__nomad__e2e__dynamic_host_volumes__input__register-volumes.nomad.hcl",
    );
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.meta_required, strs(&["vol_name", "vol_size", "vol_path"]));
    assert_eq!(job.datacenters, strs(&["*"]), "default datacenters");
    let g = &job.task_groups[0];
    let r = g.restart_policy.as_ref().expect("restart");
    assert_eq!((r.attempts, r.mode.as_str()), (Some(0), "fail"));
    let t = &g.tasks[0];
    assert_eq!(t.driver, "raw_exec");
    assert_eq!(t.config["args"][1], json!("${node.unique.id}"));
    assert_eq!(t.templates.len(), 2);
    let data = &t.templates[0].embedded_tmpl;
    assert!(
        data.contains("mkdir -p \"${NOMAD_META_vol_path}\""),
        "{data}"
    );
    assert!(data.contains("\"s~NODE_ID~$NODE_ID~\" \\\n"), "{data}");
    assert!(t.templates[1].embedded_tmpl.contains("capability {\n"));
    assert_eq!(t.extra["Identity"], json!({"Env": true}));
}

#[test]
fn t05_canonical_fixture_needs_batch_type() {
    let mut job = parse("hashicorp__nomad__jobspec__test-fixtures__parameterized_job.hcl");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "required");
    assert_eq!(p.meta_required, strs(&["foo", "bar"]));
    assert_eq!(p.meta_optional, strs(&["baz", "bam"]));
    assert_eq!(job.r#type, "");
    let t = task(group(&job, "foo"), "bar");
    assert_eq!(
        t.dispatch_payload.as_ref().map(|d| d.file.as_str()),
        Some("foo/bar")
    );
    job.canonicalize();
    let e = spec::validate(&job).expect_err("service + parameterized");
    assert!(e.is_validation());
    assert_eq!(
        e.to_string(),
        "1 error occurred:\n\t* Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler\n\n"
    );
    // and read_job_file reports it with the file name
    let e = spec::read_job_file(&path(
        "hashicorp__nomad__jobspec__test-fixtures__parameterized_job.hcl",
    ))
    .expect_err("invalid");
    assert!(
        e.to_string()
            .contains("parameterized_job.hcl: 1 error occurred"),
        "{e}"
    );
}

#[test]
fn t06_to_specific_client() {
    let job = parse_valid(
        "angrycub__nomad_example_jobs__parameterized__to_specific_client__example.nomad",
    );
    assert_eq!(job.id, "example.nomad");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(
        (p.payload.as_str(), p.meta_optional.len()),
        ("forbidden", 0)
    );
    assert_eq!(p.meta_required, strs(&["input_node_id"]));
    let c = constraint(&job.task_groups[0].extra, 0);
    assert_eq!(c["LTarget"], json!("${node.unique.id}"));
    assert_eq!(c["RTarget"], json!("${NOMAD_META_INPUT_NODE_ID}"));
}

#[test]
fn t08_fortress() {
    let job = parse_valid("fortress-shell__configurations__fortress.hcl");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "required");
    assert_eq!(
        p.meta_required,
        strs(&[
            "build_id",
            "user_id",
            "repository_url",
            "branch",
            "commit",
            "ssh_key"
        ])
    );
    let t = only_task(&job);
    assert_eq!(t.env["PAYLOAD_PATH"], "${NOMAD_TASK_DIR}/payload.yml");
    assert_eq!(
        t.dispatch_payload.as_ref().map(|d| d.file.as_str()),
        Some("payload.yml")
    );
}

#[test]
fn t09_matlab_no_final_newline() {
    let job = parse_valid("GummyJum__MatlabNomadCluster__matlab.hcl");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert!(p.meta_required.is_empty());
    assert_eq!(p.meta_optional, strs(&["Cmd", "Path", "CreatedBy", "RAM"]));
    let t = only_task(&job);
    assert_eq!(
        t.config["args"][1],
        json!("run('${NOMAD_TASK_DIR}/task.m');")
    );
    assert_eq!(
        t.dispatch_payload.as_ref().map(|d| d.file.as_str()),
        Some("task.m")
    );
}

#[test]
fn t10_triggered_job_variables() {
    let job = parse_valid("hyperbadger__nomad-pipeline__examples__triggered-job.hcl");
    assert_eq!(job.datacenters, strs(&["dc1"]), "var.datacenters resolved");
    assert_eq!(job.name, "triggered-job");
    assert_eq!(job.meta["nomad-pipeline.enabled"], "true");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "forbidden");
    assert_eq!(p.meta_required, strs(&["name", "object_path"]));
    let data = &only_task(&job).templates[0].embedded_tmpl;
    assert!(
        data.contains("echo \"name -> ${NOMAD_META_name}\""),
        "{data}"
    );
    assert!(
        data.starts_with("#!/bin/bash\n"),
        "<<-EOT strips the indent: {data:?}"
    );
    // -var style override
    let mut vars = IndexMap::new();
    vars.insert("datacenters".to_string(), "[\"a\", \"b\"]".to_string());
    let src = source("hyperbadger__nomad-pipeline__examples__triggered-job.hcl");
    let job = spec::parse_hcl_with_vars(&src, "t.hcl", &vars).expect("parse with vars");
    assert_eq!(job.datacenters, strs(&["a", "b"]));
}

#[test]
fn t11_gtts_payload_into_alloc_dir() {
    let job = parse_valid("Great-Stone__nomad-param-gtts-demo__gtts-param.hcl");
    assert_eq!(job.r#type, "sysbatch");
    let g = &job.task_groups[0];
    assert_eq!(g.tasks.len(), 2);
    let creator = &g.tasks[0];
    assert_eq!(
        creator.dispatch_payload.as_ref().map(|d| d.file.as_str()),
        Some("../../alloc/conversation.txt")
    );
    assert_eq!(
        creator.lifecycle.as_ref().map(|l| l.hook.as_str()),
        Some("prestart")
    );
    assert_eq!(creator.resources.as_ref().and_then(|r| r.cpu), Some(1));
    for t in &g.tasks {
        assert_eq!(t.artifacts.len(), 1);
        assert_eq!(t.artifacts[0].relative_dest, "local");
        assert_eq!(t.templates.len(), 1);
    }
    assert_eq!(g.tasks[1].env["MY_PORT"], "${NOMAD_PORT_player}");
    assert_eq!(
        g.extra["Networks"][0]["DynamicPorts"][0]["Label"],
        json!("player")
    );
}

#[test]
fn t13_plotter_tabs_distinct_property() {
    let job = parse_valid("DingoEatingFuzz__hashiconf-genart__nomad__hashiconf-plotter.nomad");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "forbidden");
    let c = constraint(&only_task(&job).extra, 0);
    assert_eq!(c["LTarget"], json!("${meta.axidraw}"));
    assert_eq!(c["Operand"], json!("distinct_property"));
    assert_eq!(c["RTarget"], json!("true"));
}

#[test]
fn t14_dispatcher_kill_timeout_and_escape() {
    let job = parse_valid("kaminskip88__nomad-dispatcher__job.nomad");
    let g = &job.task_groups[0];
    assert_eq!(g.restart_policy.as_ref().and_then(|r| r.attempts), Some(0));
    assert_eq!(
        g.reschedule_policy.as_ref().and_then(|r| r.attempts),
        Some(0)
    );
    assert_eq!(g.ephemeral_disk.as_ref().and_then(|d| d.size_mb), Some(200));
    let t = &g.tasks[0];
    assert_eq!(t.kill_timeout, Some(10_000_000_000));
    assert_eq!(
        t.dispatch_payload.as_ref().map(|d| d.file.as_str()),
        Some("payload.txt")
    );
    let data = &t.templates[0].embedded_tmpl;
    assert!(
        data.contains("echo \"${NOMAD_META_META_DATA_1}\""),
        "{data}"
    );
    assert!(!data.contains("$${"), "{data}");
    assert!(t.extra.contains_key("LogConfig"));
}

#[test]
fn t15_immich_single_line_blocks() {
    let job = parse_valid("DingoEatingFuzz__system__jobs__immich-auto-folder.nomad.hcl");
    let c = constraint(&job.extra, 0);
    assert_eq!(c["LTarget"], json!("${node.unique.name}"));
    assert_eq!(c["Operand"], json!("="));
    let g = &job.task_groups[0];
    assert_eq!(g.restart_policy.as_ref().and_then(|r| r.attempts), Some(0));
    assert_eq!(
        g.reschedule_policy.as_ref().and_then(|r| r.attempts),
        Some(0)
    );
    assert_eq!(g.extra["Volumes"]["nix"]["Type"], json!("host"));
    assert_eq!(g.tasks[0].extra["VolumeMounts"][0]["Volume"], json!("nix"));
    assert_eq!(g.tasks[0].driver, "exec");
}

// ---- other HCL feature files ----

#[test]
fn t17_lifecycle_batch() {
    let job = parse_valid("hashicorp__nomad__e2e__lifecycle__inputs__batch.nomad");
    let g = &job.task_groups[0];
    let hooks: Vec<Option<&str>> = g
        .tasks
        .iter()
        .map(|t| t.lifecycle.as_ref().map(|l| l.hook.as_str()))
        .collect();
    assert_eq!(hooks, vec![Some("prestart"), None, Some("poststart")]);
    for t in &g.tasks {
        assert_eq!(t.templates.len(), 1);
        assert!(t.templates[0]
            .embedded_tmpl
            .contains("touch ${NOMAD_ALLOC_DIR}/"));
    }
}

#[test]
fn t18_auth_basic_variables_and_locals() {
    let job = parse_valid("hashicorp__nomad__e2e__docker__input__auth_basic.hcl");
    let t = only_task(&job);
    assert_eq!(
        t.config["image"],
        json!("localhost:7511/docker.io/library/bash_auth_basic:private")
    );
    assert_eq!(
        t.config["auth"],
        json!([{"username": "auth_basic_user", "password": "auth_basic_pass"}])
    );
    assert_eq!(
        job.task_groups[0].extra["Networks"][0]["Mode"],
        json!("host")
    );
    // the (unused) local evaluates: use it to prove base64encode and var conversion work
    let src = source("hashicorp__nomad__e2e__docker__input__auth_basic.hcl").replace(
        "auth_soft_fail = true",
        "auth_soft_fail = true\n        token = local.registry_auth\n        port = var.registry_port + 1",
    );
    let job = spec::parse_hcl(&src, "auth_basic.hcl").expect("parse");
    let t = only_task(&job);
    assert_eq!(
        t.config["token"],
        json!("YXV0aF9iYXNpY191c2VyOmF1dGhfYmFzaWNfcGFzcw==")
    );
    assert_eq!(
        t.config["port"],
        json!(7512),
        "string default \"7511\" became a number"
    );
}

#[test]
fn t19_snapshot_agent_periodic() {
    let job = parse_valid("hashicorp__nomad__demo__snapshotagent__snapshot-agent.nomad.hcl");
    assert_eq!(job.namespace, "infra");
    assert_eq!(
        job.extra["Periodic"],
        json!({"Specs": ["*/5 * * * *"], "ProhibitOverlap": true})
    );
    let t = only_task(&job);
    assert_eq!(t.env["NOMAD_ADDR"], "${NOMAD_UNIX_ADDR}");
    assert_eq!(t.config["args"].as_array().map(Vec::len), Some(7));
}

#[test]
fn t20_rawexecmax_unary_minus() {
    let job = parse_valid("hashicorp__nomad__e2e__oversubscription__input__rawexecmax.hcl");
    let t = only_task(&job);
    assert_eq!(t.resources.as_ref().and_then(|r| r.memory_max_mb), Some(-1));
    let args = t.config["args"].to_string();
    assert!(
        args.contains("$(cat /proc/self/cgroup | cut -d':' -f3)/memory.{low,max}"),
        "{args}"
    );
    let g = &job.task_groups[0];
    assert_eq!(
        g.reschedule_policy.as_ref().and_then(|r| r.unlimited),
        Some(false)
    );
}

#[test]
fn t21_dynamic_blocks() {
    let name = "angrycub__nomad_example_jobs__HCL2__dynamic__example.nomad";
    let job = parse_valid(name);
    assert_eq!(job.name, "example", "%{{ if }} directive with empty var");
    let names: Vec<&str> = job.task_groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["example-zpool", "example-zmirror"]);
    let g = group(&job, "example-zmirror");
    let t = task(g, "example-zmirror-redis");
    assert_eq!(t.config["image"], json!("redis:latest"));
    assert_eq!(t.config["ports"], json!(["example-zmirror-redis-db-6379"]));
    assert_eq!(
        g.extra["Networks"][0]["DynamicPorts"][0],
        json!({"Label": "example-zmirror-redis-db-6379", "To": 6379})
    );
    let mut vars = IndexMap::new();
    vars.insert("job_name".to_string(), "web".to_string());
    let job = spec::parse_hcl_with_vars(&source(name), name, &vars).expect("parse");
    assert_eq!(job.name, "web");
    assert_eq!(job.task_groups[0].name, "web-zpool");
}

#[test]
fn t22_template_from_artifact() {
    let job = parse_valid("angrycub__nomad_example_jobs__template__from_consul__artifact.nomad");
    let t = only_task(&job);
    assert_eq!(t.artifacts.len(), 1);
    let a = &t.artifacts[0];
    assert!(a.getter_source.ends_with("?raw"));
    assert_eq!(
        (a.relative_dest.as_str(), a.getter_mode.as_str()),
        ("local/template.out", "file")
    );
    assert_eq!(t.templates[0].source_path, "local/template.out");
    assert_eq!(t.templates[0].embedded_tmpl, "");
}

#[test]
fn t23_dynamic_job_emoji_label() {
    let job = parse_valid("hyperbadger__nomad-pipeline__examples__dynamic-job.hcl");
    assert_eq!(job.name, "dynamic-job");
    let g = group(&job, "▶️");
    let t = task(g, "init");
    assert_eq!(
        t.config["extra_hosts"],
        json!(["host.docker.internal:host-gateway"])
    );
    assert_eq!(t.env["NOMAD_ADDR"], "http://host.docker.internal:4646");
    let g = group(&job, "1-generate-tasks");
    assert_eq!(g.count, Some(0));
    assert_eq!(g.meta["nomad-pipeline.root"], "true");
    let t = &g.tasks[0];
    assert_eq!(t.templates.len(), 3);
    assert_eq!(
        t.templates[0].dest_path,
        "${NOMAD_TASK_DIR}/task.template.json"
    );
    assert!(t.templates[0]
        .embedded_tmpl
        .contains("\"Name\": \"${TASK_NAME}\","));
}

// ---- JSON ----

#[test]
fn t24_python_nomad_json() {
    let job = parse_valid("jrxFive__python-nomad__example_batch_parameterized.json");
    assert_eq!(job.id, "example-batch");
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "optional");
    assert_eq!(p.meta_required, strs(&["time"]));
    let g = &job.task_groups[0];
    assert_eq!(g.count, Some(0));
    assert_eq!(
        g.restart_policy.as_ref().and_then(|r| r.interval),
        Some(600_000_000_000)
    );
    let t = &g.tasks[0];
    assert_eq!(t.config["args"], json!(["${NOMAD_META_TIME"]));
    assert_eq!(t.kill_timeout, Some(5_000_000_000));
    assert!(t.dispatch_payload.is_none());
}

#[test]
fn t25_example_short_nulls() {
    let mut job = parse("hashicorp__nomad__command__testdata__example-short.json");
    assert!(job.parameterized.is_none());
    assert_eq!(job.r#type, "");
    job.canonicalize();
    assert_eq!(job.r#type, "service");
    spec::validate(&job).expect("valid");
}

#[test]
fn t26_tides_inspect_dump_in_nomad_file() {
    let job = parse_valid("sabbene__nomad-jobs__tides.nomad");
    assert_eq!(job.r#type, "system");
    assert!(job.parameterized.is_none());
    let t = only_task(&job);
    assert_eq!(t.config["port_map"][0]["http"], json!(80.0));
    assert!(job.task_groups[0].extra.contains_key("Volumes"));
}

// ---- error messages on modified inputs ----

#[test]
fn wrong_type_names_file_line_and_field() {
    let src = "job \"transcode\" {\n  type = \"batch\"\n  group \"tc\" {\n    task \"tc\" {\n      driver = \"exec\"\n      resources {\n        cpu = \"abc\"\n      }\n    }\n  }\n}\n";
    let e = spec::parse_hcl(src, "transcode.hcl").expect_err("bad cpu");
    assert_eq!(
        e.to_string(),
        "transcode.hcl:7:9: job \"transcode\" > group \"tc\" > task \"tc\": resources.cpu must be a number, got \"abc\""
    );
}

#[test]
fn unknown_field_lists_allowed() {
    let src =
        "job \"j\" {\n  group \"g\" {\n    task \"t\" {\n      drivr = \"exec\"\n    }\n  }\n}\n";
    let e = spec::parse_hcl(src, "j.hcl").expect_err("typo");
    let text = e.to_string();
    assert!(text.starts_with("j.hcl:4:7: job \"j\" > group \"g\" > task \"t\": unknown field \"drivr\" in task; allowed: driver, user, config"), "{text}");
}

#[test]
fn json_shape_error_names_path() {
    let src = "{\"Job\": {\"ID\": \"x\", \"TaskGroups\": [{\"Tasks\": [{\"Resources\": {\"CPU\": \"abc\"}}]}]}}";
    let e = spec::parse_job(src, "x.json").expect_err("bad cpu");
    assert!(e.to_string().contains("x.json:1:"), "{e}");
    assert!(
        e.to_string().contains(
            "Job.TaskGroups[0].Tasks[0].Resources.CPU: invalid type: string \"abc\", expected i64"
        ),
        "{e}"
    );
}

#[test]
fn dispatch_payload_escaping_fails_validation() {
    let src = "job \"j\" {\n  type = \"batch\"\n  parameterized {}\n  group \"g\" {\n    task \"t\" {\n      driver = \"exec\"\n      dispatch_payload { file = \"../../../x\" }\n    }\n  }\n}\n";
    let mut job = spec::parse_hcl(src, "j.hcl").expect("parse");
    job.canonicalize();
    let e = spec::validate(&job).expect_err("escapes");
    assert!(e
        .to_string()
        .contains("dispatch_payload destination escapes allocation directory"));
}

#[test]
fn task_directly_under_job_becomes_group_and_extensions_map() {
    let src = r#"
job "transcode" {
  type = "batch"
  parameterized {
    meta_required = ["input"]
    max_running   = 4
  }
  meta { input = "" }
  task "tc" {
    driver = "exec"
    config { command = "ffmpeg" }
    resources {
      cpu    = 2000
      memory = 512
      disk   = 1024
      device "nvidia/gpu" { count = 2 }
    }
    template {
      data        = "x"
      destination = "local/x"
    }
    template {
      data        = "y"
      destination = "local/y"
      splay       = "1m30s"
    }
  }
}
"#;
    let job = spec::parse_hcl(src, "t.hcl").expect("parse");
    assert_eq!(job.task_groups[0].name, "tc");
    let p = job.parameterized.as_ref().expect("p");
    assert_eq!(p.max_running, 4);
    let t = only_task(&job);
    let r = t.resources.as_ref().expect("resources");
    assert_eq!(
        (r.cpu, r.memory_mb, r.disk_mb, r.gpus),
        (Some(2000), Some(512), Some(1024), Some(2))
    );
    assert_eq!(t.templates.len(), 2);
    assert_eq!(t.templates[1].extra["Splay"], json!(90_000_000_000i64));
}

/// The meta descriptions extension: a map (attribute or block) in HCL, `MetaDescriptions`
/// in JSON, absent from the JSON of jobs that do not use it (Nomad's shape unchanged).
#[test]
fn meta_descriptions_extension_in_hcl_and_json() {
    let src = r#"
job "transcode" {
  type = "batch"
  parameterized {
    meta_required     = ["input"]
    meta_optional     = ["profile"]
    meta_descriptions = {
      input   = "Path or URL of the source video"
      profile = "small or large"
    }
  }
  task "tc" {
    driver = "exec"
    config { command = "true" }
  }
}
"#;
    let job = spec::parse_hcl(src, "t.hcl").expect("parse");
    let p = job.parameterized.as_ref().expect("p");
    assert_eq!(
        p.meta_descriptions["input"],
        "Path or URL of the source video"
    );
    let block = src.replace("meta_descriptions = {", "meta_descriptions {");
    let from_block = spec::parse_hcl(&block, "t.hcl").expect("block form");
    assert_eq!(from_block.parameterized, job.parameterized);
    let json = serde_json::to_value(&job).expect("json");
    assert_eq!(
        json["ParameterizedJob"]["MetaDescriptions"]["profile"],
        json!("small or large")
    );
    let back = spec::parse_json(&json!({ "Job": json }).to_string(), "t.json").expect("json");
    assert_eq!(back.parameterized, job.parameterized);
    let without = r#"job "j" {
  type = "batch"
  parameterized {}
  task "t" {
    driver = "exec"
    config { command = "true" }
  }
}"#;
    let json =
        serde_json::to_value(spec::parse_hcl(without, "j.hcl").expect("parse")).expect("json");
    assert!(
        json["ParameterizedJob"].get("MetaDescriptions").is_none(),
        "{json}"
    );
}

#[test]
fn read_job_file_end_to_end() {
    let job = spec::read_job_file(&path(
        "hashicorp__nomad__e2e__scheduler_sysbatch__input__sysbatch_dispatch.nomad",
    ))
    .expect("valid")
    .job;
    assert_eq!(job.priority, 50, "canonicalized");
    assert_eq!(
        job.task_groups[0].tasks[0].kill_timeout,
        Some(5_000_000_000)
    );
    let e = spec::read_job_file(&path("does-not-exist.hcl")).expect_err("missing");
    assert_eq!(e.kind, spec::ErrorKind::Io);
    let parsed = spec::read_job_file(&path(
        "DingoEatingFuzz__hashitalks-2020-map-dispatch__infra__make-map.nomad",
    ))
    .expect("HCL1 is read with a warning");
    assert_eq!(parsed.warnings.len(), 1);
    let e = spec::read_job_file(&path(
        "testing-farm__infrastructure__terragrunt__environments__production__worker-redhat__jobs__tf-tmt-multihost.nomad",
    ))
    .expect_err("invalid");
    assert!(e.is_parse());
}

#[test]
fn variables_block_shorthand() {
    let src = "variables {\n  image = \"redis:7\"\n}\njob \"j\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config { image = var.image }\n    }\n  }\n}\n";
    let job = spec::parse_hcl(src, "v.hcl").expect("parse");
    assert_eq!(only_task(&job).config["image"], json!("redis:7"));
}
