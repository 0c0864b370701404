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
