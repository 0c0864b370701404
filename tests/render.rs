//! The renderer end to end: jobs in Nomad's API JSON, dispatches made by hand, TaskInfo JSON
//! asserted.

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use dispatch::model::{Dispatch, DispatchStatus, Job, Meta};
use dispatch::render::{
    self, check_job, demand, ids::is_valid_mesos_id, render_task, task_id, RenderError,
    RenderInput, SandboxFiles,
};

const CHILD: &str = "transcode/dispatch-1700000000-1a2b3c4d";

/// The seed transcode job (seed-systems.md §1), as API JSON.
fn transcode_job() -> Job {
    job(json!({
        "ID": "transcode", "Name": "transcode", "Type": "batch",
        "ParameterizedJob": {"Payload": "optional", "MetaRequired": ["input"], "MetaOptional": ["profile"]},
        "Meta": {"input": "", "profile": "small"},
        "TaskGroups": [{
            "Name": "tc", "Count": 1,
            "MaxRunDuration": 3_600_000_000_000i64,
            "Tasks": [{
                "Name": "tc", "Driver": "exec",
                "Config": {"command": "transcode.sh",
                           "args": ["${NOMAD_META_input}", "${NOMAD_META_profile}"]},
                "Env": {"S3_BUCKET": "videos", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                        "OUT_DIR": "${NOMAD_TASK_DIR}/out"},
                "Resources": {"CPU": 1000, "MemoryMB": 256},
                "DispatchPayload": {"File": "knobs.json"},
                "Templates": [{
                    "DestPath": "local/s3cfg.ini",
                    "EmbeddedTmpl": "[default]\naccess_key = {{ env \"AWS_ACCESS_KEY_ID\" }}\nprofile = {{ env \"NOMAD_META_profile\" }}\n"
                }],
                "KillTimeout": 5_000_000_000i64
            }]
        }]
    }))
}

fn job(v: Value) -> Job {
    let mut job: Job = serde_json::from_value(v).expect("job JSON");
    job.canonicalize();
    job
}

fn dispatch_of(job: Job, meta: &[(&str, &str)]) -> Dispatch {
    let id = format!("{}/dispatch-1700000000-1a2b3c4d", job.id);
    Dispatch {
        id: Arc::from(id.as_str()),
        job: Arc::new(job),
        meta: (&meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Meta>())
            .into(),
        priority: 50,
        status: DispatchStatus::Pending,
        idempotency_token: None,
        payload_len: 0,
        eval_id: uuid::Uuid::nil(),
        submit_time: 1_700_000_000_000_000_000,
        create_index: 10,
        modify_index: 10,
        description: None,
        ended_at: 0,
        runs: Vec::new(),
        dispatched_by: None,
    }
}

fn render(d: &Dispatch, attempt: u32, payload: Option<&[u8]>) -> Result<Value, RenderError> {
    let group = &d.job.task_groups[0];
    let task = &group.tasks[0];
    let info = render_task(&RenderInput {
        dispatch: d,
        group,
        instance: 0,
        task,
        attempt,
        payload,
    })?;
    Ok(serde_json::to_value(&info).unwrap())
}

fn env_of(info: &Value) -> Vec<(String, String)> {
    info["command"]["environment"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn env_var(info: &Value, name: &str) -> Option<String> {
    env_of(info)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn files_of(info: &Value) -> SandboxFiles {
    SandboxFiles::decode(info["data"].as_str().expect("data")).unwrap()
}

fn file(info: &Value, path: &str) -> String {
    let files = files_of(info);
    let f = files
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path} in {files:?}"));
    String::from_utf8(f.bytes().unwrap()).unwrap()
}

#[test]
fn transcode_seed_job_renders() {
    let d = dispatch_of(transcode_job(), &[("input", "http://media.example/in.mov")]);
    let info = render(&d, 1, Some(br#"{"crf": 23}"#)).unwrap();

    assert_eq!(info["name"], format!("{CHILD}/tc"));
    assert_eq!(
        info["task_id"]["value"],
        "transcode.dispatch-1700000000-1a2b3c4d.tc.0.tc.1"
    );
    assert_eq!(info["agent_id"]["value"], "");
    assert_eq!(
        info["resources"],
        json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
               {"name": "mem", "type": "SCALAR", "scalar": {"value": 256.0}}])
    );
    let cmd = &info["command"];
    assert_eq!(cmd["shell"], false);
    assert_eq!(cmd["value"], "transcode.sh");
    // argv[0] first, input from dispatch meta, profile from the job's default.
    assert_eq!(
        cmd["arguments"],
        json!(["transcode.sh", "http://media.example/in.mov", "small"])
    );
    assert!(info.get("container").is_none());

    assert_eq!(env_var(&info, "S3_BUCKET").as_deref(), Some("videos"));
    assert_eq!(
        env_var(&info, "NOMAD_META_input").as_deref(),
        Some("http://media.example/in.mov")
    );
    assert_eq!(
        env_var(&info, "NOMAD_META_INPUT").as_deref(),
        Some("http://media.example/in.mov")
    );
    assert_eq!(
        env_var(&info, "NOMAD_META_profile").as_deref(),
        Some("small")
    );
    assert_eq!(env_var(&info, "NOMAD_JOB_ID").as_deref(), Some(CHILD));
    assert_eq!(
        env_var(&info, "NOMAD_JOB_PARENT_ID").as_deref(),
        Some("transcode")
    );
    assert_eq!(
        env_var(&info, "NOMAD_ALLOC_NAME").as_deref(),
        Some(&*format!("{CHILD}.tc[0]"))
    );
    assert_eq!(env_var(&info, "NOMAD_CPU_LIMIT").as_deref(), Some("1000"));
    assert_eq!(env_var(&info, "NOMAD_MEMORY_LIMIT").as_deref(), Some("256"));
    assert_eq!(env_var(&info, "NOMAD_TASK_DIR").as_deref(), Some("local"));
    assert_eq!(env_var(&info, "NOMAD_DC").as_deref(), Some("dc1"));
    assert_eq!(env_var(&info, "OUT_DIR").as_deref(), Some("local/out"));
    let alloc = env_var(&info, "NOMAD_ALLOC_ID").unwrap();
    assert!(uuid::Uuid::parse_str(&alloc).is_ok());
    assert_eq!(env_var(&info, "NOMAD_SHORT_ALLOC_ID").unwrap(), alloc[..8]);
    let names: Vec<String> = env_of(&info).into_iter().map(|(k, _)| k).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "environment is sorted");

    assert_eq!(
        file(&info, "local/s3cfg.ini"),
        "[default]\naccess_key = AKIAEXAMPLE\nprofile = small\n"
    );
    assert_eq!(file(&info, "local/knobs.json"), r#"{"crf": 23}"#);
    let files = files_of(&info);
    assert!(files.files.iter().all(|f| f.mode == "0644"));
    // data is standard padded base64 of {"files": [...]}.
    let raw = base64::engine::general_purpose::STANDARD
        .decode(info["data"].as_str().unwrap())
        .unwrap();
    let doc: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(doc["files"][0]["path"], "local/s3cfg.ini");

    assert_eq!(
        info["kill_policy"],
        json!({"grace_period": {"nanoseconds": 5_000_000_000i64}})
    );
    assert_eq!(
        info["max_completion_time"],
        json!({"nanoseconds": 3_600_000_000_000i64})
    );
    assert_eq!(
        info["labels"]["labels"],
        json!([
            {"key": "dispatch.job", "value": CHILD},
            {"key": "dispatch.parent", "value": "transcode"},
            {"key": "dispatch.group", "value": "tc"},
            {"key": "dispatch.instance", "value": "0"},
            {"key": "dispatch.task", "value": "tc"},
            {"key": "dispatch.attempt", "value": "1"},
            {"key": "dispatch.alloc", "value": format!("{CHILD}.tc[0]")},
            {"key": "dispatch.driver", "value": "exec"},
        ])
    );
    check_job(&d.job).unwrap();
}

#[test]
fn dispatch_meta_overrides_the_default_and_no_payload_means_no_file() {
    let d = dispatch_of(
        transcode_job(),
        &[
            ("input", "http://media.example/b.mov"),
            ("profile", "large"),
        ],
    );
    let info = render(&d, 1, None).unwrap();
    assert_eq!(info["command"]["arguments"][2], "large");
    let files = files_of(&info);
    assert_eq!(files.files.len(), 1, "only the template: {files:?}");
    // An empty payload writes nothing either (Nomad).
    let info = render(&d, 1, Some(b"")).unwrap();
    assert_eq!(files_of(&info).files.len(), 1);
}

#[test]
fn task_ids_differ_per_attempt_and_are_valid() {
    let d = dispatch_of(transcode_job(), &[("input", "x")]);
    let a = render(&d, 1, None).unwrap();
    let b = render(&d, 2, None).unwrap();
    let (ia, ib) = (
        a["task_id"]["value"].as_str().unwrap(),
        b["task_id"]["value"].as_str().unwrap(),
    );
    assert_ne!(ia, ib);
    assert!(is_valid_mesos_id(ia) && is_valid_mesos_id(ib));
    assert_eq!(b["labels"]["labels"][5]["value"], "2");
    // Instances differ too, and the alloc id follows the instance, not the attempt.
    assert_ne!(
        task_id(CHILD, "tc", 0, "tc", 1),
        task_id(CHILD, "tc", 1, "tc", 1)
    );
    assert_eq!(env_var(&a, "NOMAD_ALLOC_ID"), env_var(&b, "NOMAD_ALLOC_ID"));
}

#[test]
fn rendering_is_deterministic() {
    let d = dispatch_of(transcode_job(), &[("input", "x")]);
    let a = serde_json::to_string(&render(&d, 1, Some(b"p")).unwrap()).unwrap();
    let b = serde_json::to_string(&render(&d, 1, Some(b"p")).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn cores_and_other_resources() {
    let mut j = transcode_job();
    let res = j.task_groups[0].tasks[0].resources.as_mut().unwrap();
    res.cores = Some(2);
    res.disk_mb = Some(2048);
    res.gpus = Some(1);
    res.memory_max_mb = Some(512);
    let d = dispatch_of(j, &[("input", "x")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(
        info["resources"],
        json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}},
               {"name": "mem", "type": "SCALAR", "scalar": {"value": 256.0}},
               {"name": "disk", "type": "SCALAR", "scalar": {"value": 2048.0}},
               {"name": "gpus", "type": "SCALAR", "scalar": {"value": 1.0}}])
    );
    assert_eq!(env_var(&info, "NOMAD_CPU_CORES").as_deref(), Some("2"));
    assert_eq!(env_var(&info, "NOMAD_CPU_LIMIT").as_deref(), Some("2000"));
    assert_eq!(
        env_var(&info, "NOMAD_MEMORY_MAX_LIMIT").as_deref(),
        Some("512")
    );
    let g = &d.job.task_groups[0];
    let dm = demand(g, &g.tasks[0]);
    assert_eq!(
        (dm.cpus, dm.mem_mb, dm.disk_mb, dm.gpus),
        (2.0, 256.0, 2048.0, 1.0)
    );
    // 250 MHz -> 0.25 cpus.
    let mut t = g.tasks[0].clone();
    t.resources = Some(dispatch::model::job::Resources {
        cpu: Some(250),
        memory_mb: Some(64),
        ..Default::default()
    });
    assert_eq!(demand(g, &t).cpus, 0.25);
}

#[test]
fn unknown_references_stay_literal() {
    let j = job(json!({
        "ID": "probe", "Type": "batch", "ParameterizedJob": {"MetaRequired": ["time"]},
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/echo",
                       "args": ["${node.unique.id}", "${attr.kernel.name}", "${dur}",
                                "${NOMAD_META_TIME", "${NOMAD_META_TIME}", "${meta.time}",
                                "${NOMAD_GROUP_NAME}/${NOMAD_TASK_NAME}/${NOMAD_ALLOC_INDEX}"]}
        }]}]
    }));
    let d = dispatch_of(j, &[("time", "5")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(
        info["command"]["arguments"],
        json!([
            "/bin/echo",
            "${node.unique.id}",
            "${attr.kernel.name}",
            "${dur}",
            "${NOMAD_META_TIME",
            "5",
            "5",
            "g/t/0"
        ])
    );
    assert!(info.get("data").is_none(), "no files, no data");
    check_job(&d.job).unwrap();
}

#[test]
fn docker_driver_container() {
    let j = job(json!({
        "ID": "ffmpeg", "Type": "batch", "ParameterizedJob": {"MetaRequired": ["input"]},
        "TaskGroups": [{"Name": "work", "Tasks": [{
            "Name": "ffmpeg", "Driver": "docker", "User": "nobody",
            "Config": {"image": "example/ffmpeg:6",
                       "args": ["-i", "${NOMAD_META_input}", "${NOMAD_TASK_DIR}/out.mp4"],
                       "ports": ["http"]},
            "Resources": {"CPU": 2000, "MemoryMB": 1024}
        }]}]
    }));
    let d = dispatch_of(j, &[("input", "in.mov")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(
        info["container"],
        json!({"type": "DOCKER", "docker": {"image": "example/ffmpeg:6", "network": "HOST"}})
    );
    // docker run <image> <value> <arguments...>: the image's entrypoint gets the args.
    assert_eq!(info["command"]["shell"], false);
    assert_eq!(info["command"]["value"], "-i");
    assert_eq!(
        info["command"]["arguments"],
        json!(["in.mov", "local/out.mp4"])
    );
    assert_eq!(info["command"]["user"], "nobody");
    assert_eq!(info["resources"][0]["scalar"]["value"], 2.0);
    assert_eq!(info["labels"]["labels"][7]["value"], "docker");
}

#[test]
fn unsupported_driver_is_an_error_naming_the_task() {
    let j = job(json!({
        "ID": "j", "Type": "batch",
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "jar", "Driver": "java",
                                                  "Config": {"jar_path": "x.jar"}}]}]
    }));
    let d = dispatch_of(j, &[]);
    let err = render(&d, 1, None).unwrap_err();
    assert!(matches!(err, RenderError::UnsupportedDriver { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("task \"jar\"") && msg.contains("\"java\""),
        "{msg}"
    );
    assert!(msg.contains("exec, raw_exec, docker"), "{msg}");
    assert!(check_job(&d.job).unwrap_err().to_string().contains("java"));
}

#[test]
fn broken_templates_are_rejected_at_registration() {
    let mut j = transcode_job();
    j.task_groups[0].tasks[0].templates[0].embedded_tmpl =
        "access_key = {{ env \"AWS_ACCESS_KEY_ID\" \n".into();
    let msg = check_job(&j).unwrap_err().to_string();
    assert!(msg.contains("task \"tc\""), "{msg}");
    assert!(msg.contains("local/s3cfg.ini"), "{msg}");

    j.task_groups[0].tasks[0].templates[0].embedded_tmpl = "{{ key \"service/s3/key\" }}".into();
    let msg = check_job(&j).unwrap_err().to_string();
    assert!(
        msg.contains("consul key lookups are not supported"),
        "{msg}"
    );

    j.task_groups[0].tasks[0].templates[0].embedded_tmpl = "ok".into();
    j.task_groups[0].tasks[0].templates[0].dest_path = "/etc/passwd".into();
    let msg = check_job(&j).unwrap_err().to_string();
    assert!(msg.contains("absolute"), "{msg}");
}

#[test]
fn env_templates_and_custom_delimiters() {
    let mut j = transcode_job();
    let t = &mut j.task_groups[0].tasks[0];
    t.templates.push(serde_json::from_value(json!({
        "DestPath": "${NOMAD_SECRETS_DIR}/run.env", "Envvars": true, "Perms": "600",
        "LeftDelim": "[[", "RightDelim": "]]",
        "EmbeddedTmpl": "PROFILE=[[ env \"NOMAD_META_profile\" | toUpper ]]\nS3_BUCKET=override\n"
    })).unwrap());
    let d = dispatch_of(j, &[("input", "x")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(env_var(&info, "PROFILE").as_deref(), Some("SMALL"));
    // Template env wins over the task env, as in Nomad.
    assert_eq!(env_var(&info, "S3_BUCKET").as_deref(), Some("override"));
    let files = files_of(&info);
    let f = files
        .files
        .iter()
        .find(|f| f.path == "secrets/run.env")
        .unwrap();
    assert_eq!(f.mode, "0600");
}

#[test]
fn source_templates_are_rendered_after_fetch() {
    let mut j = transcode_job();
    j.task_groups[0].tasks[0].templates = vec![serde_json::from_value(json!({
        "SourcePath": "local/template.out", "DestPath": "local/rendered.out"
    }))
    .unwrap()];
    check_job(&j).unwrap();
    let d = dispatch_of(j, &[("input", "x")]);
    let info = render(&d, 1, None).unwrap();
    let files = files_of(&info);
    let f = &files.files[0];
    assert_eq!(f.path, "local/rendered.out");
    assert!(f.render_after_fetch && f.content.is_none());
    assert_eq!(f.source.as_deref(), Some("local/template.out"));
}

#[test]
fn artifacts_become_fetcher_uris() {
    let mut j = transcode_job();
    j.task_groups[0].tasks[0].artifacts = serde_json::from_value(json!([
        {"GetterSource": "https://artifacts.example/tools/transcode-${NOMAD_META_profile}.tar.gz?v=2"},
        {"GetterSource": "https://raw.example/t.tpl?raw", "RelativeDest": "local/template.out", "GetterMode": "file"},
        {"GetterSource": "https://h/x.zip", "RelativeDest": "${NOMAD_ALLOC_DIR}/shared", "GetterOptions": {"archive": "false"}}
    ]))
    .unwrap();
    check_job(&j).unwrap();
    let d = dispatch_of(j, &[("input", "x")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(
        info["command"]["uris"],
        json!([
            {"value": "https://artifacts.example/tools/transcode-small.tar.gz?v=2",
             "executable": false, "extract": true, "output_file": "local/transcode-small.tar.gz"},
            {"value": "https://raw.example/t.tpl?raw",
             "executable": false, "extract": true, "output_file": "local/template.out"},
            {"value": "https://h/x.zip",
             "executable": false, "extract": false, "output_file": "alloc/shared/x.zip"}
        ])
    );
}

#[test]
fn payload_paths_may_reach_alloc_but_not_escape() {
    let mut j = transcode_job();
    j.task_groups[0].tasks[0].dispatch_payload =
        serde_json::from_value(json!({"File": "../../alloc/in.json"})).unwrap();
    check_job(&j).unwrap();
    let d = dispatch_of(j.clone(), &[("input", "x")]);
    let info = render(&d, 1, Some(b"{}")).unwrap();
    assert_eq!(file(&info, "alloc/in.json"), "{}");

    j.task_groups[0].tasks[0].dispatch_payload =
        serde_json::from_value(json!({"File": "../../../etc/x"})).unwrap();
    let msg = check_job(&j).unwrap_err().to_string();
    assert!(
        msg.contains("dispatch_payload.file") && msg.contains("escapes"),
        "{msg}"
    );
    let d = dispatch_of(j, &[("input", "x")]);
    assert!(render(&d, 1, Some(b"{}")).is_err());
}

#[test]
fn kill_timeout_and_no_max_run_duration() {
    let mut j = transcode_job();
    j.task_groups[0].max_run_duration = None;
    j.task_groups[0].tasks[0].kill_timeout = Some(30_000_000_000);
    let d = dispatch_of(j, &[("input", "x")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(
        info["kill_policy"]["grace_period"]["nanoseconds"],
        30_000_000_000i64
    );
    assert!(info.get("max_completion_time").is_none());
}

#[test]
fn shell_mode_for_a_bare_command_line() {
    let mut j = transcode_job();
    let t = &mut j.task_groups[0].tasks[0];
    t.config =
        serde_json::from_value(json!({"command": "echo ${NOMAD_META_input} > out.txt"})).unwrap();
    let d = dispatch_of(j, &[("input", "hello")]);
    let info = render(&d, 1, None).unwrap();
    assert_eq!(info["command"]["shell"], true);
    assert_eq!(info["command"]["value"], "echo hello > out.txt");
    assert!(info["command"].get("arguments").is_none());
    let _ = render::SUPPORTED_DRIVERS;
}

/// Three task kinds in one job: Mesos containerizer image, Docker containerizer with
/// parameters, custom executor.
fn task_kinds_job() -> Job {
    job(json!({
        "ID": "kinds", "Type": "batch", "ParameterizedJob": {"MetaRequired": ["input"]},
        "TaskGroups": [
            {"Name": "ucr", "Tasks": [{
                "Name": "probe", "Driver": "docker",
                "Config": {"image": "jrottenberg/ffmpeg:6", "containerizer": "mesos",
                           "command": "ffprobe", "args": ["${NOMAD_META_input}"],
                           "volumes": ["/srv/media:/media:ro"]},
                "Resources": {"CPU": 500, "MemoryMB": 128}
            }]},
            {"Name": "dock", "Tasks": [{
                "Name": "thumb", "Driver": "docker",
                "Config": {"image": "alpine:3", "command": "sh", "args": ["-c", "true"],
                           "force_pull": true, "parameters": {"memory": "1g"},
                           "volumes": ["/srv/out:/out"]},
                "Resources": {"CPU": 500, "MemoryMB": 128}
            }]},
            {"Name": "exe", "Tasks": [{
                "Name": "legacy", "Driver": "mesos_executor", "User": "batch",
                "Config": {"command": "java -cp executor.jar com.example.Executor"},
                "Artifacts": [{"GetterSource": "http://artifacts.example/executor.jar",
                               "RelativeDest": "executor.jar", "GetterMode": "file"}],
                "DispatchPayload": {"File": "job.json"},
                "Resources": {"CPU": 1000, "MemoryMB": 256}
            }]}
        ]
    }))
}

fn render_at(d: &Dispatch, group: usize, payload: Option<&[u8]>) -> Value {
    let g = &d.job.task_groups[group];
    let info = render_task(&RenderInput {
        dispatch: d,
        group: g,
        instance: 0,
        task: &g.tasks[0],
        attempt: 1,
        payload,
    })
    .unwrap();
    serde_json::to_value(&info).unwrap()
}

/// The TaskInfo without its labels and environment (asserted elsewhere).
fn without_env_and_labels(mut info: Value) -> Value {
    info.as_object_mut().unwrap().remove("labels");
    for path in ["/command", "/executor/command"] {
        if let Some(cmd) = info.pointer_mut(path) {
            cmd.as_object_mut().unwrap().remove("environment");
        }
    }
    info
}

#[test]
fn mesos_containerizer_image_task() {
    let d = dispatch_of(task_kinds_job(), &[("input", "/media/in.mov")]);
    let info = render_at(&d, 0, None);
    assert_eq!(
        without_env_and_labels(info),
        json!({
            "name": "kinds/dispatch-1700000000-1a2b3c4d/probe",
            "task_id": {"value": "kinds.dispatch-1700000000-1a2b3c4d.ucr.0.probe.1"},
            "agent_id": {"value": ""},
            "kill_policy": {"grace_period": {"nanoseconds": 5_000_000_000i64}},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}}],
            "command": {"shell": false, "value": "ffprobe",
                        "arguments": ["ffprobe", "/media/in.mov"]},
            "container": {"type": "MESOS",
                          "mesos": {"image": {"type": "DOCKER",
                                              "docker": {"name": "jrottenberg/ffmpeg:6"},
                                              "cached": true}},
                          "volumes": [{"container_path": "/media", "host_path": "/srv/media",
                                       "mode": "RO"}]}
        })
    );
}

#[test]
fn docker_containerizer_task_with_parameters() {
    let d = dispatch_of(task_kinds_job(), &[("input", "x")]);
    let info = render_at(&d, 1, None);
    assert_eq!(
        without_env_and_labels(info),
        json!({
            "name": "kinds/dispatch-1700000000-1a2b3c4d/thumb",
            "task_id": {"value": "kinds.dispatch-1700000000-1a2b3c4d.dock.0.thumb.1"},
            "agent_id": {"value": ""},
            "kill_policy": {"grace_period": {"nanoseconds": 5_000_000_000i64}},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}}],
            "command": {"shell": false, "value": "sh", "arguments": ["-c", "true"]},
            "container": {"type": "DOCKER",
                          "docker": {"image": "alpine:3", "network": "HOST",
                                     "force_pull_image": true,
                                     "parameters": [{"key": "memory", "value": "1g"}]},
                          "volumes": [{"container_path": "/out", "host_path": "/srv/out",
                                       "mode": "RW"}]}
        })
    );
}

#[test]
fn custom_executor_task() {
    let d = dispatch_of(task_kinds_job(), &[("input", "x")]);
    let info = render_at(&d, 2, Some(b"{\"k\": 1}"));
    let id = "kinds.dispatch-1700000000-1a2b3c4d.exe.0.legacy.1";
    // The executor gets the task's environment; the task has no command.
    assert_eq!(
        info["executor"]["command"]["environment"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "NOMAD_TASK_NAME")
            .unwrap()["value"],
        "legacy"
    );
    // The payload stays in data, for the executor to read.
    let files = files_of(&info);
    assert_eq!(files.files[0].path, "local/job.json");
    let mut info = without_env_and_labels(info);
    info.as_object_mut().unwrap().remove("data");
    assert_eq!(
        info,
        json!({
            "name": "kinds/dispatch-1700000000-1a2b3c4d/legacy",
            "task_id": {"value": id},
            "agent_id": {"value": ""},
            "kill_policy": {"grace_period": {"nanoseconds": 5_000_000_000i64}},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 256.0}}],
            "executor": {
                "type": "CUSTOM",
                "executor_id": {"value": id},
                "name": "dispatch kinds/dispatch-1700000000-1a2b3c4d/legacy",
                "command": {"uris": [{"value": "http://artifacts.example/executor.jar",
                                      "executable": false, "extract": true,
                                      "output_file": "executor.jar"}],
                            "shell": true,
                            "value": "java -cp executor.jar com.example.Executor",
                            "user": "batch"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                              {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}]
            }
        })
    );
    // Queue fitting counts the executor too.
    let g = &d.job.task_groups[2];
    let need = demand(g, &g.tasks[0]);
    assert_eq!((need.cpus, need.mem_mb), (1.1, 288.0));
}

#[test]
fn task_kind_config_errors_are_rejected_at_registration() {
    check_job(&task_kinds_job()).unwrap();
    let cases: [(usize, &str, Value, &str); 6] = [
        (0, "containerizer", json!("podman"), "config.containerizer"),
        (0, "volumes", json!(["media:/media"]), "config.volumes[0]"),
        (1, "volumes", json!(["/a:/b:z"]), "config.volumes[0]"),
        (
            0,
            "parameters",
            json!({"memory": "1g"}),
            "config.parameters",
        ),
        (0, "command", Value::Null, "config.command"),
        (2, "command", Value::Null, "config.command"),
    ];
    for (group, key, value, field) in cases {
        let mut j = task_kinds_job();
        let task = &mut j.task_groups[group].tasks[0];
        if value.is_null() {
            task.config.shift_remove(key);
            task.config.shift_remove("args");
        } else {
            task.config.insert(key.into(), value);
        }
        let msg = check_job(&j).unwrap_err().to_string();
        let names = format!(
            "job \"kinds\", group {:?}, task {:?}: {field}:",
            j.task_groups[group].name, j.task_groups[group].tasks[0].name
        );
        assert!(msg.starts_with(&names), "{key}: {msg}");
    }
}
