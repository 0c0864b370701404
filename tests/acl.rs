//! ACLs as a user meets them: the real server with `-acl-enabled`, the `dispatch acl ...`
//! CLI, curl with `X-Nomad-Token` and `Authorization: Bearer`; a token that may dispatch
//! one job and nothing else; policy and token errors; what survives a restart; the bootstrap
//! token file and its reload; expiry on the server's clock. The tests that go through the
//! store run on SQLite and again on PostgreSQL (`on_postgres::`: a fresh database on a
//! throwaway cluster this test binary shares).

mod common;
#[path = "common/postgres.rs"]
mod pg;

use std::process::{Command, Output};

use common::{ok, repo_root, show, wait_until, TestServer};

/// `dispatch ARGS` against `server` with `token` as DISPATCH_TOKEN (or none).
fn cli(server: &TestServer, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch"));
    cmd.args(args)
        .env("DISPATCH_ADDR", server.url())
        .env_remove("NOMAD_ADDR")
        .env_remove("DISPATCH_TOKEN")
        .env_remove("NOMAD_TOKEN");
    if let Some(t) = token {
        cmd.env("DISPATCH_TOKEN", t);
    }
    cmd.output().expect("run dispatch")
}

/// One HTTP call with curl: (status, body). `auth` is a whole header line.
fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(h) = auth {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["-d", b]);
    }
    let out = cmd
        .arg(format!("{}{}", server.url(), path))
        .output()
        .expect("curl (scripts/test-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.parse().unwrap_or(0), body.to_string())
}

fn token_header(secret: &str) -> String {
    format!("X-Nomad-Token: {secret}")
}

/// A `key = value` line of the CLI's output.
fn field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key:?} in:\n{out}"))
}

const OTHER_JOB: &str = r#"job "other" {
  type = "batch"
  parameterized {}
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "true"
      }
    }
  }
}
"#;

#[test]
fn a_dispatch_only_token_dispatches_one_job_and_nothing_else() {
    let server = TestServer::start_with(&["-acl-enabled", "-local-cpus", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.hcl");
    std::fs::write(&other, OTHER_JOB).unwrap();

    // without a token: public status only
    assert_eq!(
        call(&server, "GET", "/v1/jobs", None, None),
        (403, "Permission denied".into())
    );
    assert_eq!(call(&server, "GET", "/v1/status/leader", None, None).0, 200);
    for path in ["/metrics", "/v1/agent/self", "/v1/acl/tokens"] {
        assert_eq!(call(&server, "GET", path, None, None).0, 403, "{path}");
    }

    // bootstrap, once
    let out = ok(&cli(&server, &["acl", "bootstrap"], None));
    let management = field(&out, "Secret ID");
    assert_eq!(field(&out, "Type"), "management");
    assert_eq!(field(&out, "Name"), "Bootstrap Token");
    let again = cli(&server, &["acl", "bootstrap"], None);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("ACL bootstrap already done (reset index: "),
        "{err}"
    );
    let (code, body) = call(&server, "POST", "/v1/acl/bootstrap", None, None);
    assert_eq!(code, 400);
    assert!(
        body.starts_with("ACL bootstrap already done (reset index: "),
        "{body}"
    );

    // the operator registers jobs and makes the application's token
    let m = Some(management.as_str());
    let transcode = repo_root().join("jobs/transcode.hcl");
    ok(&cli(
        &server,
        &["job", "run", transcode.to_str().unwrap()],
        m,
    ));
    ok(&cli(&server, &["job", "run", other.to_str().unwrap()], m));
    let policy = repo_root().join("deploy/acl/dispatch-transcode.hcl");
    let out = ok(&cli(
        &server,
        &[
            "acl",
            "policy",
            "apply",
            "-description",
            "transcode dispatcher",
            "dispatch-transcode",
            policy.to_str().unwrap(),
        ],
        m,
    ));
    assert_eq!(
        out.trim(),
        "Successfully wrote \"dispatch-transcode\" ACL policy!"
    );
    let out = ok(&cli(
        &server,
        &[
            "acl",
            "token",
            "create",
            "-name",
            "uploader",
            "-policy",
            "dispatch-transcode",
        ],
        m,
    ));
    let app = field(&out, "Secret ID");
    let accessor = field(&out, "Accessor ID");
    assert_eq!(field(&out, "Policies"), "dispatch-transcode");
    assert_eq!(field(&out, "Type"), "client");

    // the application dispatches, and can follow what it dispatched
    let out = ok(&cli(
        &server,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "input=/tmp/in.mov",
            "transcode",
        ],
        Some(&app),
    ));
    let child = common::dispatched_id(&out);
    let path = format!("/v1/job/{}", child.replace('/', "%2F"));
    let (code, body) = call(&server, "GET", &path, Some(&token_header(&app)), None);
    assert_eq!(code, 200, "{body}");
    let job: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(job["DispatchedBy"], accessor.as_str());
    let inspect = ok(&cli(&server, &["job", "inspect", &child], m));
    assert!(
        inspect.contains(&format!("\"DispatchedBy\": \"{accessor}\"")),
        "{inspect}"
    );
    assert!(!inspect.contains(&app), "never the secret");
    // Authorization: Bearer works as well as X-Nomad-Token
    let (code, body) = call(
        &server,
        "PUT",
        "/v1/job/transcode/dispatch",
        Some(&format!("Authorization: Bearer {app}")),
        Some(r#"{"Meta": {"input": "/tmp/b.mov"}}"#),
    );
    assert_eq!(code, 200, "{body}");

    // ... and nothing else
    let register = format!(
        "{{\"Job\": {}}}",
        serde_json::to_string(&common::get_json_with(
            &server,
            "/v1/job/other",
            &management
        ))
        .unwrap()
    );
    let forbidden: Vec<(&str, &str, Option<&str>)> = vec![
        ("GET", "/v1/jobs", None),
        ("PUT", "/v1/job/other/dispatch", Some("{}")),
        ("GET", "/v1/job/other", None),
        ("DELETE", "/v1/job/transcode", None),
        ("PUT", "/v1/jobs", Some(&register)),
        ("PUT", "/v1/job/transcode", Some(&register)),
        ("GET", "/v1/agent/self", None),
        ("GET", "/metrics", None),
        ("PUT", "/v1/system/gc", None),
        ("GET", "/v1/acl/tokens", None),
        ("POST", "/v1/acl/policy/mine", Some(r#"{"Rules": ""}"#)),
        ("POST", "/v1/acl/token", Some(r#"{"Type": "management"}"#)),
        ("GET", "/v1/job/transcode%2Fdispatch-1-abcd/logs", None),
    ];
    for (method, path, body) in forbidden {
        let (code, text) = call(&server, method, path, Some(&token_header(&app)), body);
        assert_eq!(
            (code, text.as_str()),
            (403, "Permission denied"),
            "{method} {path}"
        );
    }
    // the CLI says so, with NOMAD_TOKEN as the fallback
    let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(["job", "run", other.to_str().unwrap()])
        .env("DISPATCH_ADDR", server.url())
        .env_remove("DISPATCH_TOKEN")
        .env("NOMAD_TOKEN", &app)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        show(&out)
    );
    // unknown and malformed tokens: the same answer, nothing that tells them apart
    for bad in ["3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a", "not-a-uuid", ""] {
        let (code, text) = call(
            &server,
            "GET",
            "/v1/job/transcode",
            Some(&token_header(bad)),
            None,
        );
        assert_eq!((code, text.as_str()), (403, "Permission denied"), "{bad:?}");
    }
    // the token sees itself
    let me = ok(&cli(&server, &["acl", "token", "self"], Some(&app)));
    assert_eq!(field(&me, "Accessor ID"), accessor);
    assert_eq!(field(&me, "Name"), "uploader");
    // deleted: refused from then on
    ok(&cli(&server, &["acl", "token", "delete", &accessor], m));
    let (code, _) = call(
        &server,
        "PUT",
        "/v1/job/transcode/dispatch",
        Some(&token_header(&app)),
        Some(r#"{"Meta": {"input": "x"}}"#),
    );
    assert_eq!(code, 403);
}

#[test]
fn policy_and_token_mistakes_are_refused_saying_why() {
    let server = TestServer::start_with(&["-acl-enabled", "-local-cpus", "0"]);
    let (_, body) = call(&server, "POST", "/v1/acl/bootstrap", None, None);
    let boot: serde_json::Value = serde_json::from_str(&body).unwrap();
    let m = boot["SecretID"].as_str().unwrap().to_string();
    let h = token_header(&m);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.hcl");

    std::fs::write(&bad, "namespace \"default\" {\n  policy = \"read\"\n").unwrap();
    let out = cli(
        &server,
        &["acl", "policy", "apply", "p", bad.to_str().unwrap()],
        Some(&m),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy 0 invalid: failed to parse rules: line 2: invalid HCL"),
        "{err}"
    );
    std::fs::write(
        &bad,
        "namespace \"default\" {\n  capabilities = [\"dispatch-jobs\"]\n}\n",
    )
    .unwrap();
    let err = String::from_utf8_lossy(
        &cli(
            &server,
            &["acl", "policy", "apply", "p", bad.to_str().unwrap()],
            Some(&m),
        )
        .stderr,
    )
    .into_owned();
    assert!(
        err.contains("line 2: namespace \"default\": unknown capability \"dispatch-jobs\""),
        "{err}"
    );
    std::fs::write(&bad, "agent {\n  policy = \"root\"\n}\n").unwrap();
    let err = String::from_utf8_lossy(
        &cli(
            &server,
            &["acl", "policy", "apply", "p", bad.to_str().unwrap()],
            Some(&m),
        )
        .stderr,
    )
    .into_owned();
    assert!(
        err.contains("line 2: agent: invalid policy \"root\"; expected deny, read, write"),
        "{err}"
    );
    let (code, body) = call(
        &server,
        "POST",
        "/v1/acl/policy/p",
        Some(&h),
        Some(r#"{"Name": "q", "Rules": ""}"#),
    );
    assert_eq!(
        (code, body.as_str()),
        (400, "ACL policy name does not match request path")
    );
    // nothing half-stored
    let (_, list) = call(&server, "GET", "/v1/acl/policies", Some(&h), None);
    assert_eq!(list.trim(), "[]");

    let out = cli(
        &server,
        &["acl", "token", "create", "-name", "x", "-policy", "missing"],
        Some(&m),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policy \"missing\" does not exist"),
        "{}",
        show(&out)
    );
    let (code, body) = call(
        &server,
        "POST",
        "/v1/acl/token",
        Some(&h),
        Some(r#"{"Type": "client"}"#),
    );
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            "token 0 invalid: client token missing policies or roles"
        )
    );
    let (code, body) = call(
        &server,
        "POST",
        "/v1/acl/token",
        Some(&h),
        Some(r#"{"Type": "management", "ExpirationTTL": "48h"}"#),
    );
    assert_eq!(code, 400);
    assert_eq!(
        body,
        "token 0 invalid: expiration time cannot be more than 24h0m0s in the future (was 48h0m0s)"
    );
    let (code, body) = call(
        &server,
        "DELETE",
        "/v1/acl/token/3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a",
        Some(&h),
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            "Cannot delete nonexistent tokens: 3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a"
        )
    );
    let (code, _) = call(&server, "GET", "/v1/acl/policy/nosuch", Some(&h), None);
    assert_eq!(code, 404);

    // lists and info, as nomad acl prints them
    std::fs::write(
        &bad,
        "namespace \"default\" {\n  policy = \"read\"\n}\nagent {\n  policy = \"read\"\n}\n",
    )
    .unwrap();
    ok(&cli(
        &server,
        &[
            "acl",
            "policy",
            "apply",
            "-description",
            "read all",
            "reader",
            bad.to_str().unwrap(),
        ],
        Some(&m),
    ));
    let list = ok(&cli(&server, &["acl", "policy", "list"], Some(&m)));
    assert!(
        list.lines()
            .any(|l| l.starts_with("reader") && l.ends_with("read all")),
        "{list}"
    );
    let info = ok(&cli(
        &server,
        &["acl", "policy", "info", "reader"],
        Some(&m),
    ));
    assert!(
        info.contains("Rules") && info.contains("policy = \"read\""),
        "{info}"
    );
    let (_, body) = call(&server, "GET", "/v1/acl/policy/reader", Some(&h), None);
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        p["RulesJSON"]["Namespaces"][0]["Capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "list-jobs"),
        "{p}"
    );
    let out = ok(&cli(
        &server,
        &[
            "acl", "token", "create", "-name", "ops", "-policy", "reader", "-ttl", "1h",
        ],
        Some(&m),
    ));
    let reader = field(&out, "Secret ID");
    assert_ne!(field(&out, "Expiry Time"), "<none>");
    let tokens = ok(&cli(&server, &["acl", "token", "list"], Some(&m)));
    assert!(
        tokens.contains("ops") && tokens.contains("Bootstrap Token"),
        "{tokens}"
    );
    // a read policy: lists and agent, but no writes
    assert_eq!(
        call(
            &server,
            "GET",
            "/v1/jobs",
            Some(&token_header(&reader)),
            None
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/metrics",
            Some(&token_header(&reader)),
            None
        )
        .0,
        200
    );
    assert_eq!(
        call(
            &server,
            "PUT",
            "/v1/job/x/dispatch",
            Some(&token_header(&reader)),
            Some("{}")
        )
        .0,
        403
    );
    // a non-management token reads its own policies only
    let (_, own) = call(
        &server,
        "GET",
        "/v1/acl/policies",
        Some(&token_header(&reader)),
        None,
    );
    assert!(own.contains("\"reader\""), "{own}");

    // the anonymous policy applies to requests without a token
    assert_eq!(call(&server, "GET", "/v1/jobs", None, None).0, 403);
    std::fs::write(
        &bad,
        "namespace \"default\" {\n  capabilities = [\"list-jobs\"]\n}\n",
    )
    .unwrap();
    ok(&cli(
        &server,
        &["acl", "policy", "apply", "anonymous", bad.to_str().unwrap()],
        Some(&m),
    ));
    assert_eq!(call(&server, "GET", "/v1/jobs", None, None).0, 200);
    let (_, me) = call(&server, "GET", "/v1/acl/token/self", None, None);
    assert!(me.contains("\"AccessorID\":\"anonymous\""), "{me}");
}

/// A refused request with a body keeps its connection usable: a client that reuses the
/// pooled connection (python-nomad's requests does) gets the next answer, not a connection
/// closed without response (seen as a flaky python-nomad test under load).
#[test]
fn a_refused_request_with_a_body_leaves_the_connection_usable() {
    use std::io::{BufRead, BufReader, Read, Write};
    let server = TestServer::start_with(&["-acl-enabled", "-local-cpus", "0"]);
    let stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let body = format!("{{\"Meta\":{{\"input\":\"{}\"}}}}", "x".repeat(4000));
    for round in 0..3 {
        // As python's requests does: the headers, then the body in a second write (here a
        // little later, as a busy client would).
        write!(
            writer,
            "POST /v1/job/transcode/dispatch HTTP/1.1\r\nHost: test\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        writer.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let sent = writer.write_all(body.as_bytes());
        assert!(sent.is_ok(), "round {round}: the server closed: {sent:?}");
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(
            status.starts_with("HTTP/1.1 403"),
            "round {round}: the answer was {status:?}"
        );
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("connection: close"),
                "round {round}: {line}"
            );
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0u8; length];
        reader.read_exact(&mut answer).unwrap();
        assert_eq!(String::from_utf8_lossy(&answer), "Permission denied");
    }
}

#[test]
fn acls_off_answer_as_nomad_does() {
    let server = TestServer::start_with(&["-local-cpus", "0"]);
    let (code, body) = call(&server, "GET", "/v1/acl/token/self", None, None);
    assert_eq!(code, 200);
    assert!(body.contains("\"AccessorID\":\"acls-disabled\""), "{body}");
    assert_eq!(
        call(&server, "GET", "/v1/acl/tokens", None, None),
        (400, "ACL support disabled".into())
    );
    assert_eq!(
        call(&server, "POST", "/v1/acl/bootstrap", None, None),
        (400, "ACL support disabled".into())
    );
    // tokens are ignored
    assert_eq!(
        call(
            &server,
            "GET",
            "/v1/jobs",
            Some("X-Nomad-Token: whatever"),
            None
        )
        .0,
        200
    );
}

#[test]
fn tokens_and_policies_survive_a_restart_and_the_bootstrap_file_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bootstrap.token");
    let first = "3f4a0fcd-5c2b-4a1e-9d0e-7b8c9d0e1f2a";
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let config = dir.path().join("acl.hcl");
    std::fs::write(
        &config,
        format!(
            "acl {{\n  enabled = true\n  bootstrap_token_file = \"{}\"\n}}\n",
            file.display()
        ),
    )
    .unwrap();
    let mut server =
        TestServer::start_with(&["-config", config.to_str().unwrap(), "-local-cpus", "0"]);
    // the file's secret is a management token; the API's bootstrap is done
    let me = ok(&cli(&server, &["acl", "token", "self"], Some(first)));
    assert_eq!(field(&me, "Type"), "management");
    assert_eq!(
        call(&server, "POST", "/v1/acl/bootstrap", None, None).0,
        400
    );
    let policy = repo_root().join("deploy/acl/metrics.hcl");
    ok(&cli(
        &server,
        &[
            "acl",
            "policy",
            "apply",
            "metrics",
            policy.to_str().unwrap(),
        ],
        Some(first),
    ));
    let out = ok(&cli(
        &server,
        &[
            "acl",
            "token",
            "create",
            "-name",
            "prometheus",
            "-policy",
            "metrics",
        ],
        Some(first),
    ));
    let scraper = field(&out, "Secret ID");
    assert_eq!(
        call(
            &server,
            "GET",
            "/metrics",
            Some(&format!("Authorization: Bearer {scraper}")),
            None
        )
        .0,
        200
    );

    // kill -9 and start again: everything is still there, the secrets are not on disk
    server.restart();
    assert_eq!(
        call(
            &server,
            "GET",
            "/metrics",
            Some(&format!("Authorization: Bearer {scraper}")),
            None
        )
        .0,
        200
    );
    ok(&cli(&server, &["acl", "token", "self"], Some(first)));
    let stored: Vec<Vec<u8>> = match common::shared_store() {
        None => vec![
            std::fs::read(server.data_dir().join("dispatch.sqlite")).unwrap(),
            std::fs::read(server.data_dir().join("dispatch.sqlite-wal")).unwrap_or_default(),
        ],
        Some(url) => {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let tokens = db.query("SELECT json FROM acl_tokens", &[]).unwrap();
            let log = db.query("SELECT changes FROM change_log", &[]).unwrap();
            tokens
                .iter()
                .map(|r| r.get::<_, String>(0).into_bytes())
                .chain(log.iter().map(|r| r.get::<_, Vec<u8>>(0)))
                .collect()
        }
    };
    assert!(!stored.is_empty());
    for secret in [first, scraper.as_str()] {
        for bytes in &stored {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret is stored in clear"
            );
        }
    }

    // a new secret in the file: after SIGHUP it is the management token, the old one is gone
    let second = "9b2e1c4d-0a1b-4c2d-8e3f-112233445566";
    std::fs::write(&file, format!("{second}\n")).unwrap();
    let pid = nix::unistd::Pid::from_raw(server.pid().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let kind = |secret: &str| {
        let out = ok(&cli(&server, &["acl", "token", "self"], Some(secret)));
        (field(&out, "Accessor ID"), field(&out, "Type"))
    };
    wait_until(20, "the new bootstrap token", || {
        kind(second).1 == "management"
    });
    assert_eq!(kind(first).0, "anonymous", "the old secret is revoked");
}

/// Expiry is decided on the server's clock: here a manual one, moved past the token's TTL
/// (no waiting). An expired token gets 403 saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_saying_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let clock = dispatch::clock::Clock::manual(1_800_000_000_000_000_000);
    let config = dispatch::server::ServerConfig {
        bind: listener.local_addr().unwrap(),
        data_dir: dir.path().to_path_buf(),
        local: dispatch::server::LocalOptions {
            cpus: Some(0.0),
            ..Default::default()
        },
        statsd_addr: None,
        mesos: None,
        gc: Default::default(),
        fetch_bind: None,
        tls: None,
        conn_limits: Default::default(),
        drivers: Default::default(),
        backpressure: Default::default(),
        open: false,
        acl: true,
        acl_bootstrap_secret: None,
        acl_bootstrap_reload: None,
        clock: clock.clone(),
        mesos_updates: None,
        store: None,
        advertise: None,
        ui: Default::default(),
    };
    tokio::spawn(dispatch::server::serve(
        listener,
        config,
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    // the server answers 503 from the moment it binds until its state is loaded
    let health = format!("{url}/v1/agent/health");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http
        .get(&health)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let boot: serde_json::Value = http
        .post(format!("{url}/v1/acl/bootstrap"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = boot["SecretID"].as_str().unwrap();
    let token: serde_json::Value = http
        .post(format!("{url}/v1/acl/token"))
        .header("X-Nomad-Token", m)
        .json(&serde_json::json!({"Name": "short", "Type": "management", "ExpirationTTL": "1m"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["ExpirationTTL"], "1m0s", "{token}");
    assert_eq!(token["ExpirationTime"], "2027-01-15T08:01:00Z", "{token}");
    let secret = token["SecretID"].as_str().unwrap();
    let get = |secret: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http
                .get(format!("{url}/v1/jobs"))
                .header("X-Nomad-Token", secret)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get(secret.into()).await.0, 200);
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(get(secret.into()).await, (403, "ACL token expired".into()));
    // the bootstrap token has no expiry
    assert_eq!(get(m.into()).await.0, 200);
}

/// The tests above that go through the store, each on its own PostgreSQL database.
mod on_postgres {
    #[test]
    fn a_dispatch_only_token_dispatches_one_job_and_nothing_else() {
        super::common::store_in(&super::pg::fresh_database());
        super::a_dispatch_only_token_dispatches_one_job_and_nothing_else()
    }
    #[test]
    fn tokens_and_policies_survive_a_restart_and_the_bootstrap_file_reloads() {
        super::common::store_in(&super::pg::fresh_database());
        super::tokens_and_policies_survive_a_restart_and_the_bootstrap_file_reloads()
    }
}
