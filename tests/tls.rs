//! HTTPS on the API: the real server with certificates made at test time, the `dispatch`
//! CLI and curl as clients; mutual TLS; what a wrong client sees; certificates reloaded on
//! SIGHUP.

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use certs::{Ca, Pair};
use common::{dispatched_id, ok, show, wait_until, TestServer};

const JOB: &str = r#"job "hello" {
  type = "batch"
  parameterized {
    meta_required = ["who"]
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo hello ${NOMAD_META_who}"]
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#;

/// `dispatch ARGS` with exactly the environment given (no inherited DISPATCH_*/NOMAD_*).
fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch"));
    cmd.args(args);
    for var in [
        "DISPATCH_ADDR",
        "NOMAD_ADDR",
        "DISPATCH_TOKEN",
        "NOMAD_TOKEN",
        "DISPATCH_CACERT",
        "NOMAD_CACERT",
        "DISPATCH_CLIENT_CERT",
        "NOMAD_CLIENT_CERT",
        "DISPATCH_CLIENT_KEY",
        "NOMAD_CLIENT_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run dispatch")
}

/// `curl -sS` over HTTPS with the given CA and client pair: (exit code, body).
fn curl(url: &str, ca: &Path, client: Option<&Pair>) -> (i32, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"]).arg(ca);
    if let Some(pair) = client {
        cmd.arg("--cert")
            .arg(&pair.cert)
            .arg("--key")
            .arg(&pair.key);
    }
    let out = cmd.arg(url).output().expect("curl (scripts/test-deps.sh)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn tls_server(extra: &[&str], ca: &Ca, server: &Pair, verify_clients: bool) -> TestServer {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-tls-cert-file".to_string(),
        server.cert.display().to_string(),
        "-tls-key-file".to_string(),
        server.key.display().to_string(),
    ]);
    if verify_clients {
        args.extend([
            "-tls-ca-file".to_string(),
            ca.cert.display().to_string(),
            "-tls-verify-clients".to_string(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start_with(&args)
}

#[test]
fn the_cli_works_over_https_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "main");
    let server_pair = ca.server("server");
    let client = ca.client("cli");
    // HTTPS with client certificates, and ACLs
    let management = "5d0c8a3e-1b2f-4e6a-9c7d-0e1f2a3b4c5d";
    let token_file = dir.path().join("bootstrap.token");
    std::fs::write(&token_file, management).unwrap();
    let server = tls_server(
        &[
            "-acl-enabled",
            "-acl-bootstrap-token-file",
            token_file.to_str().unwrap(),
        ],
        &ca,
        &server_pair,
        true,
    );
    assert!(
        server.url().starts_with("https://127.0.0.1:"),
        "{}",
        server.url()
    );
    let url = server.url();
    let job = dir.path().join("hello.hcl");
    std::fs::write(&job, JOB).unwrap();

    // flags
    let tls_flags = [
        "-token",
        management,
        "-address",
        &url,
        "-ca-cert",
        ca.cert.to_str().unwrap(),
        "-client-cert",
        client.cert.to_str().unwrap(),
        "-client-key",
        client.key.to_str().unwrap(),
    ];
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(tls_flags.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args, &[])
    };
    ok(&run(with(&["job", "run", job.to_str().unwrap()])));
    let out = ok(&run(with(&[
        "job", "dispatch", "-meta", "who=tls", "hello",
    ])));
    let child = dispatched_id(&out);
    assert!(
        out.contains("complete"),
        "the dispatch was followed to its end:\n{out}"
    );
    let status = ok(&run(with(&["job", "status", "hello"])));
    assert!(status.contains(&child), "{status}");
    let logs = ok(&run(with(&["logs", &child])));
    assert_eq!(logs.trim(), "hello tls");
    // ACL administration over HTTPS, and an application's token
    let policy = dir.path().join("hello.policy.hcl");
    std::fs::write(
        &policy,
        "job \"hello\" {\n  capabilities = [\"dispatch-job\", \"read-job\"]\n}\n",
    )
    .unwrap();
    ok(&run(with(&[
        "acl",
        "policy",
        "apply",
        "dispatch-hello",
        policy.to_str().unwrap(),
    ])));
    let out = ok(&run(with(&[
        "acl",
        "token",
        "create",
        "-name",
        "app",
        "-policy",
        "dispatch-hello",
    ])));
    let app = out
        .lines()
        .find_map(|l| l.strip_prefix("Secret ID"))
        .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
        .expect("a secret");

    // DISPATCH_* variables, then NOMAD_* as the fallback
    for prefix in ["DISPATCH", "NOMAD"] {
        let (addr, cacert, cert, key, token) = (
            format!("{prefix}_ADDR"),
            format!("{prefix}_CACERT"),
            format!("{prefix}_CLIENT_CERT"),
            format!("{prefix}_CLIENT_KEY"),
            format!("{prefix}_TOKEN"),
        );
        let env = |secret: &'static str| {
            vec![
                (addr.clone(), url.clone()),
                (cacert.clone(), ca.cert.display().to_string()),
                (cert.clone(), client.cert.display().to_string()),
                (key.clone(), client.key.display().to_string()),
                (token.clone(), secret.to_string()),
            ]
        };
        let as_pairs = |v: &Vec<(String, String)>| -> Vec<(String, String)> { v.clone() };
        let m = as_pairs(&env(management));
        let pairs: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let text = ok(&cli(&["status"], &pairs));
        assert!(text.contains("hello"), "{prefix}_*: {text}");
        // the application's token dispatches, and may not list
        let mut a = m.clone();
        a.last_mut().unwrap().1 = app.clone();
        let pairs: Vec<(&str, &str)> = a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = ok(&cli(
            &["job", "dispatch", "-detach", "-meta", "who=app", "hello"],
            &pairs,
        ));
        assert!(out.contains("Dispatched Job ID"), "{out}");
        let out = cli(&["status"], &pairs);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    }

    // no client certificate: refused by the server
    let out = cli(
        &[
            "status",
            "-address",
            &url,
            "-ca-cert",
            ca.cert.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error querying the server at https://"),
        "{err}"
    );
    // the server's certificate is not signed by a root the CLI knows
    let out = cli(&["status", "-address", &url], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        show(&out)
    );
    // a client certificate of another CA is refused too
    let other = Ca::new(dir.path(), "other");
    let stranger = other.client("stranger");
    let (code, _) = curl(&format!("{url}/v1/jobs"), &ca.cert, Some(&stranger));
    assert_ne!(code, 0);
    // ... and the server keeps serving the right clients
    let (code, body) = curl(&format!("{url}/v1/status/leader"), &ca.cert, Some(&client));
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("127.0.0.1"), "{body}");
    // a key without its certificate is a usage error
    let out = cli(
        &[
            "status",
            "-address",
            &url,
            "-client-key",
            client.key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a client certificate needs its key"),
        "{}",
        show(&out)
    );
}

#[test]
fn plain_http_and_failed_handshakes_get_a_clean_close_and_one_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "main");
    let server_pair = ca.server("server");
    let client = ca.client("cli");
    let server = tls_server(&[], &ca, &server_pair, true);

    // plain HTTP to the HTTPS port: Go's 400, then the connection closes (EOF, not a reset)
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .expect("the reply, then EOF");
    assert!(reply.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{reply}");
    assert!(
        reply.ends_with("\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"),
        "{reply}"
    );

    // three failed handshakes from one client (no client certificate)
    for _ in 0..3 {
        let (code, _) = curl(&format!("{}/v1/jobs", server.url()), &ca.cert, None);
        assert_ne!(code, 0);
    }
    // the server still serves, and said it once
    let (code, body) = curl(
        &format!("{}/v1/jobs", server.url()),
        &ca.cert,
        Some(&client),
    );
    assert_eq!(code, 0, "{body}");
    // it counted every failure, and said it once
    let failures = |reason: &str| -> u64 {
        let (_, text) = curl(
            &format!("{}/metrics", server.url()),
            &ca.cert,
            Some(&client),
        );
        text.lines()
            .find(|l| {
                l.starts_with("dispatch_tls_handshake_failures_total")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    wait_until(10, "the failures counted", || {
        failures("handshake") == 3 && failures("not_tls") == 1
    });
    let log = server.log();
    assert_eq!(
        log.matches("TLS handshake with 127.0.0.1 failed").count(),
        1,
        "one line per client:\n{log}"
    );
    assert!(
        log.contains("plain HTTP to the HTTPS port?"),
        "the first failure was the plain request:\n{log}"
    );
}

#[test]
fn https_without_client_verification_and_certificates_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = Ca::new(dir.path(), "first");
    let pair = first.server("server");
    // the files the server is configured with; their content is replaced below
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server-key.pem");
    std::fs::copy(&pair.cert, &cert).unwrap();
    std::fs::copy(&pair.key, &key).unwrap();
    let config = dir.path().join("tls.hcl");
    std::fs::write(
        &config,
        format!(
            "tls {{\n  http = true\n  cert_file = \"{}\"\n  key_file = \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&["-config", config.to_str().unwrap()]);
    let url = format!("{}/v1/status/leader", server.url());
    let (code, body) = curl(&url, &first.cert, None);
    assert_eq!(code, 0, "{body}");
    let self_ = {
        let (code, body) = curl(
            &format!("{}/v1/agent/self", server.url()),
            &first.cert,
            None,
        );
        assert_eq!(code, 0, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let security = &self_["config"]["Dispatch"]["Security"];
    assert_eq!(security["TLS"], true, "{security}");
    assert_eq!(security["VerifyClients"], false, "{security}");

    // renewed by another CA: after SIGHUP new connections get the new certificate
    let second = Ca::new(dir.path(), "second");
    let renewed = second.server("server");
    std::fs::copy(&renewed.cert, &cert).unwrap();
    std::fs::copy(&renewed.key, &key).unwrap();
    let pid = nix::unistd::Pid::from_raw(server.pid().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_until(20, "the reload", || {
        server
            .log()
            .contains("configuration reloaded: tls: certificates read again")
    });
    let (code, body) = curl(&url, &second.cert, None);
    assert_eq!(code, 0, "{body}");
    let (code, _) = curl(&url, &first.cert, None);
    assert_ne!(code, 0, "the old certificate is no longer served");

    // a broken key is refused as a whole: the running certificates stay
    std::fs::write(&key, "not a key\n").unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_until(20, "the refused reload", || {
        server
            .log()
            .contains("reload refused, keeping the running configuration")
    });
    let (code, body) = curl(&url, &second.cert, None);
    assert_eq!(code, 0, "{body}");
}

#[test]
fn bad_tls_settings_stop_the_server_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "main");
    let pair = ca.server("server");
    let other = ca.server("other");
    let refused = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_dispatch"))
            .arg("server")
            .args(["-data-dir", dir.path().join("data").to_str().unwrap()])
            .args(["-bind", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&[
        "-tls-cert-file",
        pair.cert.to_str().unwrap(),
        "-tls-key-file",
        pair.key.to_str().unwrap(),
        "-tls-verify-clients",
    ]);
    assert!(
        err.contains("-tls-verify-clients: verifying client certificates needs the CA that signs them: tls.ca_file (-tls-ca-file)"),
        "{err}"
    );
    let err = refused(&["-tls-cert-file", pair.cert.to_str().unwrap()]);
    assert!(
        err.contains("HTTPS needs a certificate and its key"),
        "{err}"
    );
    let err = refused(&[
        "-tls-cert-file",
        pair.cert.to_str().unwrap(),
        "-tls-key-file",
        other.key.to_str().unwrap(),
    ]);
    assert!(
        err.contains("the certificate and key do not go together"),
        "{err}"
    );
    let err = refused(&[
        "-tls-cert-file",
        pair.key.to_str().unwrap(),
        "-tls-key-file",
        pair.key.to_str().unwrap(),
    ]);
    assert!(err.contains("no certificate in the file"), "{err}");
}
