//! Limits that keep slow, idle or greedy clients from exhausting the server: connections per
//! client and in all, the time to send request headers, and backpressure on dispatches.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{wait_until, TestServer};

/// Open a connection and send nothing (an idle client).
fn idle(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Everything the server sends on `s` until it closes it.
fn read_all(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A keep-alive connection that asked for something: its status code, and the connection
/// (left open).
fn keep_alive(server: &TestServer) -> (u16, TcpStream, String) {
    let mut s = idle(server);
    s.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let code = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, s, head)
}

#[test]
fn connections_per_client_and_in_all_are_capped() {
    let server = TestServer::start_with(&["-max-conns-per-client", "2"]);
    // (the harness's own readiness probe may still be closing: try until two are in)
    let mut open = Vec::new();
    wait_until(10, "two connections in, a third refused", || {
        open.clear();
        for _ in 0..2 {
            let (code, s, _) = keep_alive(&server);
            if code != 200 {
                return false;
            }
            open.push(s);
        }
        true
    });
    let (code, s, head) = keep_alive(&server);
    assert_eq!(code, 429, "{head}");
    let body = read_all(s);
    assert_eq!(
        body,
        "Your IP is issuing too many concurrent connections, please rate limit your calls\n"
    );
    // a closed connection frees its place
    open.pop();
    wait_until(10, "a place freed", || keep_alive(&server).0 == 200);
    drop(server);

    let server = TestServer::start_with(&["-max-conns", "2", "-max-conns-per-client", "0"]);
    wait_until(10, "two connections in", || {
        open.clear();
        for _ in 0..2 {
            let (code, s, _) = keep_alive(&server);
            if code != 200 {
                return false;
            }
            open.push(s);
        }
        true
    });
    let (code, _, head) = keep_alive(&server);
    assert_eq!(code, 503, "{head}");
    assert!(head.contains("Retry-After: 1"), "{head}");
}

#[test]
fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let server = TestServer::start_with(&["-header-timeout", "1s"]);
    let mut slow = idle(&server);
    slow.write_all(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // never the blank line: the server closes the connection
    let mut buf = [0u8; 1024];
    let n = slow
        .read(&mut buf)
        .expect("closed, not timed out on our side");
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || reply.starts_with("HTTP/1.1 408"), "{reply}");
    // the server serves others
    assert_eq!(
        common::http_get_status(server.addr(), "/v1/status/leader"),
        Some(200)
    );
}

/// One HTTP call with curl: status, response headers (lower-cased names), body.
fn http(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-X", method]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("X-Nomad-Token: {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-d", b]);
    }
    let out = cmd
        .arg(format!("{}{}", server.url(), path))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

const JOB: &str = r#"{"Job": {"ID": "w", "Type": "batch", "ParameterizedJob": {},
  "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "exec",
  "Config": {"command": "true"}}]}]}}"#;

/// `value` of a metric line with these labels.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_full_backlog_refuses_dispatches_with_429_and_stores_nothing() {
    let server = TestServer::start_with(&["-local-cpus", "0", "-max-pending", "2"]);
    assert_eq!(http(&server, "PUT", "/v1/jobs", None, Some(JOB)).0, 200);
    let once = "/v1/job/w/dispatch?idempotency_token=first";
    assert_eq!(http(&server, "PUT", once, None, Some("{}")).0, 200);
    assert_eq!(
        http(&server, "PUT", "/v1/job/w/dispatch", None, Some("{}")).0,
        200
    );
    let (status, headers, body) = http(&server, "PUT", "/v1/job/w/dispatch", None, Some("{}"));
    assert_eq!(status, 429, "{body}");
    assert_eq!(header(&headers, "retry-after"), Some("5"));
    assert_eq!(
        body,
        "too many dispatches pending: the backlog is full (2, -max-pending); retry later"
    );
    // the raw-payload form is capped too
    assert_eq!(
        http(
            &server,
            "PUT",
            "/v1/job/w/dispatch/payload",
            None,
            Some("x")
        )
        .0,
        429
    );
    // a repeat of an accepted dispatch is still answered (it stores nothing either)
    assert_eq!(http(&server, "PUT", once, None, Some("{}")).0, 200);
    let summary = common::get_json(&server, "/v1/job/w/summary");
    assert_eq!(summary["Children"]["Pending"], 2, "{summary}");
    let text = common::get_text(&server, "/metrics");
    assert_eq!(
        metric(
            &text,
            "dispatch_dispatch_requests_total",
            &[
                "job=\"w\"",
                "outcome=\"rejected\"",
                "reason=\"backlog_full\""
            ]
        ),
        Some(2.0),
        "{text}"
    );
}

#[test]
fn the_dispatch_rate_is_per_token_or_client_address() {
    // 2 at once, then one per 100 s: the third within the test is always refused
    let server = TestServer::start_with(&[
        "-local-cpus",
        "0",
        "-acl-enabled",
        "-dispatch-rate",
        "0.01/2",
    ]);
    let (_, _, boot) = http(&server, "POST", "/v1/acl/bootstrap", None, None);
    let m: serde_json::Value = serde_json::from_str(&boot).unwrap();
    let m = m["SecretID"].as_str().unwrap().to_string();
    assert_eq!(http(&server, "PUT", "/v1/jobs", Some(&m), Some(JOB)).0, 200);
    let (_, _, other) = http(
        &server,
        "POST",
        "/v1/acl/token",
        Some(&m),
        Some(r#"{"Name": "other", "Type": "management"}"#),
    );
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    let other = other["SecretID"].as_str().unwrap().to_string();
    let dispatch =
        |token: Option<&str>| http(&server, "PUT", "/v1/job/w/dispatch", token, Some("{}"));
    assert_eq!(dispatch(Some(&m)).0, 200);
    assert_eq!(dispatch(Some(&m)).0, 200);
    let (status, headers, body) = dispatch(Some(&m));
    assert_eq!(status, 429, "{body}");
    let wait: u64 = header(&headers, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=100).contains(&wait), "{wait}");
    assert!(
        body.starts_with("dispatch rate exceeded for this caller (-dispatch-rate)"),
        "{body}"
    );
    // another token has its own allowance
    assert_eq!(dispatch(Some(&other)).0, 200);
    // anonymous callers share their address's allowance
    let policy = r#"{"Rules": "job \"w\" {\n  capabilities = [\"dispatch-job\"]\n}\n"}"#;
    assert_eq!(
        http(
            &server,
            "POST",
            "/v1/acl/policy/anonymous",
            Some(&m),
            Some(policy)
        )
        .0,
        200
    );
    assert_eq!(dispatch(None).0, 200);
    assert_eq!(dispatch(None).0, 200);
    assert_eq!(dispatch(None).0, 429);
    // refused dispatches stored nothing, and are counted
    let summary = common::get_json_with(&server, "/v1/job/w/summary", &m);
    assert_eq!(summary["Children"]["Pending"], 5, "{summary}");
    let (_, _, text) = http(&server, "GET", "/metrics", Some(&m), None);
    assert_eq!(
        metric(
            &text,
            "dispatch_dispatch_requests_total",
            &["job=\"w\"", "reason=\"rate_limited\""]
        ),
        Some(2.0),
        "{text}"
    );
}
