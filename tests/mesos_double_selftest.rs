//! Drives the Mesos master double (`crates/mesos-double`) with plain HTTP and checks it
//! answers like the real master in `tests/fixtures/mesos-captures` (or `MESOS_CAPTURES`).

use std::time::{Duration, Instant};

use dispatch::cluster::mesos::proto;
use mesos_double::{Config, MesosDouble, TaskBehavior};
use prost::Message;
use serde_json::{json, Value};

const CT: &str = "application/json";

/// A tiny RecordIO reader over a streaming reqwest response.
struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
    chunks: usize,
    /// Records are serialized `proto::Event`s (decoded to Mesos JSON here).
    protobuf: bool,
}

impl Events {
    async fn next(&mut self) -> Option<Value> {
        self.next_within(Duration::from_secs(5)).await
    }

    async fn next_within(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let len: usize = std::str::from_utf8(&self.buf[..nl])
                    .unwrap()
                    .parse()
                    .expect("decimal length");
                assert!(len > 0);
                if self.buf.len() >= nl + 1 + len {
                    let rec: Vec<u8> = self.buf.drain(..nl + 1 + len).skip(nl + 1).collect();
                    return Some(self.decode(&rec));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Ok(Ok(Some(c))) => {
                    self.chunks += 1;
                    self.buf.extend_from_slice(&c);
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    assert!(self.buf.is_empty(), "EOF mid-record");
                    return None;
                }
                Err(_) => panic!("no event within {d:?}"),
            }
        }
    }

    fn decode(&self, rec: &[u8]) -> Value {
        if !self.protobuf {
            return serde_json::from_slice(rec).expect("record is JSON");
        }
        let e = proto::Event::decode(rec).expect("record is a protobuf Event");
        serde_json::to_value(&e).expect("event as JSON")
    }

    /// Next event that is not a HEARTBEAT.
    async fn next_non_hb(&mut self) -> Value {
        loop {
            let e = self.next().await.expect("stream ended");
            if e["type"] != "HEARTBEAT" {
                return e;
            }
        }
    }

    async fn next_of(&mut self, typ: &str) -> Value {
        loop {
            let e = self.next().await.expect("stream ended");
            if e["type"] == typ {
                return e;
            }
        }
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    fid: String,
    sid: String,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn post_raw(url: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
    let mut rb = reqwest::Client::new().post(url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn subscribe_call(caps: &[&str]) -> Value {
    let caps: Vec<Value> = caps.iter().map(|c| json!({ "type": c })).collect();
    json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "root", "name": "selftest", "failover_timeout": 3600, "checkpoint": true,
        "roles": ["*"], "capabilities": caps}}})
}

const ALL_CAPS: &[&str] = &["MULTI_ROLE", "PARTITION_AWARE", "TASK_KILLING_STATE"];

async fn open_stream(d: &MesosDouble, call: &Value) -> (Events, reqwest::header::HeaderMap) {
    let resp = reqwest::Client::new()
        .post(d.scheduler_url())
        .header("Content-Type", CT)
        .header("Accept", CT)
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let headers = resp.headers().clone();
    (
        Events {
            resp,
            buf: Vec::new(),
            chunks: 0,
            protobuf: false,
        },
        headers,
    )
}

async fn subscribe(d: &MesosDouble, caps: &[&str]) -> (Client, Events) {
    subscribe_with(d, &subscribe_call(caps)).await
}

async fn subscribe_with(d: &MesosDouble, call: &Value) -> (Client, Events) {
    let (mut ev, headers) = open_stream(d, call).await;
    assert_eq!(headers["content-type"], CT);
    let sid = headers["mesos-stream-id"].to_str().unwrap().to_string();
    let sub = ev.next().await.unwrap();
    assert_eq!(sub["type"], "SUBSCRIBED");
    let fid = sub["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ev.next().await.unwrap()["type"], "HEARTBEAT");
    (
        Client {
            http: reqwest::Client::new(),
            url: d.scheduler_url(),
            fid,
            sid,
        },
        ev,
    )
}

impl Client {
    async fn call(&self, mut call: Value) -> Reply {
        call["framework_id"] = json!({ "value": self.fid });
        let r = self
            .http
            .post(&self.url)
            .header("Content-Type", CT)
            .header("Accept", CT)
            .header("Mesos-Stream-Id", &self.sid)
            .body(call.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Reply {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    async fn ok(&self, call: Value) {
        let r = self.call(call).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body, "");
        assert_eq!(r.headers["content-length"], "0");
    }

    async fn ack(&self, update: &Value) {
        let s = &update["update"]["status"];
        self.ok(json!({"type": "ACKNOWLEDGE", "acknowledge": {
            "agent_id": s["agent_id"], "task_id": s["task_id"], "uuid": s["uuid"]}}))
            .await;
    }
}

fn task(id: &str, agent: &str, cpus: f64, mem: f64) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": {"value": agent},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "allocation_info": {"role": "*"}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "allocation_info": {"role": "*"}}],
        "command": {"shell": true, "value": "true"}})
}

fn launch(offers: &[&str], tasks: Vec<Value>) -> Value {
    let ids: Vec<Value> = offers.iter().map(|o| json!({ "value": o })).collect();
    json!({"type": "ACCEPT", "accept": {"offer_ids": ids,
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        "filters": {"refuse_seconds": 1}}})
}

fn status(e: &Value) -> &Value {
    assert_eq!(e["type"], "UPDATE", "{e}");
    &e["update"]["status"]
}

/// Waits (5 s at most) until the double's clock has passed `t`: everything due by then has
/// happened.
async fn clock_past(d: &MesosDouble, t: Instant) {
    wait_for(|| d.clock() >= t, "the double's clock").await;
}

/// Polls `f` until it holds; fails after 5 s, naming `what`.
async fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn fast() -> Config {
    Config {
        heartbeat_interval: Duration::from_secs(15),
        resend_interval: Duration::from_millis(300),
        ..Config::default()
    }
}

fn captures() -> std::path::PathBuf {
    std::env::var_os("MESOS_CAPTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/mesos-captures"
            ))
        })
}

/// A capture file, one JSON value per line (missing captures fail the test).
fn capture(path: &str) -> Vec<Value> {
    let p = captures().join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn captured_call(name: &str) -> Value {
    capture("json/calls.jsonl")
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no call {name} in json/calls.jsonl"))
}

/// Our answer must equal the real master's (status, Content-Type, body).
fn assert_like_capture(name: &str, r: &Reply) {
    let c = captured_call(name);
    assert_eq!(r.status as u64, c["status"].as_u64().unwrap(), "{name}");
    assert_eq!(r.body, c["response_body"].as_str().unwrap_or(""), "{name}");
    if let Some(ct) = c["response_headers"]["Content-Type"].as_str() {
        assert_eq!(r.headers["content-type"], ct, "{name}");
    }
}

#[tokio::test]
async fn subscribe_stream_headers_and_first_events() {
    let d = MesosDouble::start(fast()).await;
    let (mut ev, headers) = open_stream(&d, &subscribe_call(ALL_CAPS)).await;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert!(headers.get("content-length").is_none());
    let sid = headers["mesos-stream-id"].to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(sid).unwrap().to_string(), sid);
    let sub = ev.next().await.unwrap();
    assert_eq!(sub["type"], "SUBSCRIBED");
    assert_eq!(sub["subscribed"]["heartbeat_interval_seconds"], 15.0);
    assert_eq!(
        sub["subscribed"]["framework_id"]["value"].as_str(),
        d.framework_id().as_deref()
    );
    assert_eq!(ev.next().await.unwrap(), json!({"type": "HEARTBEAT"}));
    // Same key set as the captured SUBSCRIBED.
    if let Some(real) = capture("json/events.jsonl").first() {
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&sub["subscribed"]), keys(&real["event"]["subscribed"]));
    }
    // Offers: MULTI_ROLE puts allocation_info on the offer and each resource.
    let oid = d.offer("agent-1", 2.0, 1024.0, 4096.0).unwrap();
    let offers = ev.next_non_hb().await;
    assert_eq!(offers["type"], "OFFERS");
    let o = &offers["offers"]["offers"][0];
    assert_eq!(o["id"]["value"], oid.as_str());
    assert_eq!(o["agent_id"]["value"], "agent-1");
    assert_eq!(o["allocation_info"]["role"], "*");
    for r in o["resources"].as_array().unwrap() {
        assert_eq!(r["allocation_info"]["role"], "*");
    }
}

#[tokio::test]
async fn heartbeats_follow_interval() {
    let d = MesosDouble::start(Config {
        heartbeat_interval: Duration::from_millis(100),
        ..fast()
    })
    .await;
    let (_c, mut ev) = subscribe(&d, ALL_CAPS).await;
    for _ in 0..3 {
        let e = ev.next_within(Duration::from_millis(500)).await.unwrap();
        assert_eq!(e["type"], "HEARTBEAT");
    }
    d.set_heartbeats(false);
    let sent = d.events().len();
    // Three intervals pass on the double's own clock; then what it sent since: nothing.
    clock_past(&d, Instant::now() + Duration::from_millis(300)).await;
    assert!(
        d.events()[sent..].is_empty(),
        "sent after set_heartbeats(false): {:?}",
        &d.events()[sent..]
    );
    // And on the wire: the next record after the heartbeats already in flight is an event
    // caused now, with no HEARTBEAT after the last one that was sent.
    let heartbeats_sent = d.events()[..sent]
        .iter()
        .filter(|e| e["type"] == "HEARTBEAT")
        .count();
    d.offer("agent-1", 1.0, 128.0, 128.0).unwrap();
    let mut heartbeats_seen = 4; // SUBSCRIBED's companion + the three above
    loop {
        let e = ev.next().await.unwrap();
        if e["type"] == "OFFERS" {
            break;
        }
        assert_eq!(e["type"], "HEARTBEAT");
        heartbeats_seen += 1;
    }
    assert_eq!(heartbeats_seen, heartbeats_sent);
}

#[tokio::test]
async fn records_split_across_chunks_are_reassembled() {
    let d = MesosDouble::start(Config {
        split_records: true,
        ..fast()
    })
    .await;
    let (_c, ev) = subscribe(&d, ALL_CAPS).await;
    assert!(
        ev.chunks >= 2,
        "records were not split: {} chunks",
        ev.chunks
    );
}

#[tokio::test]
async fn transport_errors_match_capture() {
    let d = MesosDouble::start(fast()).await;
    let url = d.scheduler_url();
    // 1. SUBSCRIBE with a Mesos-Stream-Id header.
    let r = post_raw(
        &url,
        &[("Content-Type", CT), ("Accept", CT), ("Mesos-Stream-Id", "bogus")],
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "x"}}})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "Subscribe calls should not include the 'Mesos-Stream-Id' header"
    );
    assert_like_capture("subscribe-with-stream-id-header", &r);

    let (c, _ev) = subscribe(&d, ALL_CAPS).await;
    let revive = json!({"framework_id": {"value": c.fid}, "type": "REVIVE"}).to_string();
    // 3. No stream id.
    let r = post_raw(
        &url,
        &[("Content-Type", CT), ("Accept", CT)],
        revive.clone(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
    );
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    assert_like_capture("call-without-stream-id", &r);
    // Wrong stream id.
    let wrong = "f4a4014b-02eb-4500-bf9e-0fddfc0a1356";
    let r = post_raw(
        &url,
        &[
            ("Content-Type", CT),
            ("Accept", CT),
            ("Mesos-Stream-Id", wrong),
        ],
        revive.clone(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, format!("The stream ID '{wrong}' included in this request didn't match the stream ID currently associated with framework ID {}", c.fid));
    // Content-Type with a charset.
    let r = post_raw(
        &url,
        &[
            ("Content-Type", "application/json; charset=utf-8"),
            ("Accept", CT),
            ("Mesos-Stream-Id", &c.sid),
        ],
        revive.clone(),
    )
    .await;
    assert_like_capture("call-content-type-with-charset", &r);
    assert_eq!(r.status, 415);
    assert_eq!(
        r.body,
        "Expecting 'Content-Type' of application/json or application/x-protobuf"
    );
    // Garbage body.
    let r = post_raw(
        &url,
        &[
            ("Content-Type", CT),
            ("Accept", CT),
            ("Mesos-Stream-Id", &c.sid),
        ],
        "garbage{",
    )
    .await;
    assert_like_capture("call-garbage-body", &r);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "Failed to parse body into JSON: syntax error at line 1 near: garbage{"
    );
    // Missing Content-Type.
    let r = post_raw(&url, &[("Mesos-Stream-Id", &c.sid)], revive.clone()).await;
    assert_eq!(r.status, 400);
    // Not POST.
    let r = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // Accept that admits neither encoding.
    let r = post_raw(
        &url,
        &[("Content-Type", CT), ("Accept", "text/html")],
        subscribe_call(ALL_CAPS).to_string(),
    )
    .await;
    assert_eq!(r.status, 406);
    // Unknown framework.
    let r = post_raw(
        &url,
        &[("Content-Type", CT), ("Mesos-Stream-Id", &c.sid)],
        json!({"framework_id": {"value": "nope"}, "type": "REVIVE"}).to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Framework cannot be found")
    );
    // Missing type / payload / framework_id.
    let r = c.call(json!({"kill": {"task_id": {"value": "x"}}})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.starts_with("Failed to validate scheduler::Call"),
        "{}",
        r.body
    );
    let r = c.call(json!({"type": "KILL"})).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("'kill'"), "{}", r.body);
    // Valid call: 202, empty body, Content-Length 0 (like the capture).
    c.ok(json!({"type": "REVIVE"})).await;
    // Every request was logged with its headers.
    let calls = d.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.status == 415
                && c.headers["content-type"] == "application/json; charset=utf-8")
    );
}

#[tokio::test]
async fn resubscribe_rules_and_failover_error() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev1) = subscribe(&d, ALL_CAPS).await;
    // framework_info.id without the Call's framework_id: 400 (capture 2a).
    let mut call = subscribe_call(ALL_CAPS);
    call["subscribe"]["framework_info"]["id"] = json!({ "value": c.fid });
    let r = post_raw(
        &d.scheduler_url(),
        &[("Content-Type", CT), ("Accept", CT)],
        call.to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'");
    if let Some(real) =
        capture("failover-json/2a-resubscribe-without-call-framework-id/calls.jsonl").first()
    {
        assert_eq!(r.status as u64, real["status"].as_u64().unwrap());
        assert_eq!(r.body, real["response_body"].as_str().unwrap());
    }
    // A second subscription with the same id fails over the first.
    call["framework_id"] = json!({ "value": c.fid });
    let (mut ev2, h2) = open_stream(&d, &call).await;
    let e = ev2.next().await.unwrap();
    assert_eq!(e["subscribed"]["framework_id"]["value"], c.fid.as_str());
    assert_eq!(
        ev1.next_non_hb().await,
        json!({"type": "ERROR", "error": {"message": "Framework failed over"}})
    );
    assert!(ev1.next().await.is_none(), "old stream must end");
    // The old stream id is now stale.
    let r = c.call(json!({"type": "REVIVE"})).await;
    assert_eq!(r.status, 400);
    let c2 = Client {
        sid: h2["mesos-stream-id"].to_str().unwrap().to_string(),
        ..c
    };
    c2.ok(json!({"type": "REVIVE"})).await;
    // Disconnected framework: 403.
    drop(ev2);
    wait_for(|| !d.is_subscribed(), "the double to see the stream closed").await;
    let r = c2.call(json!({"type": "REVIVE"})).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, "Framework is not subscribed")
    );
    // Teardown, then subscribing with that id: 200 + ERROR + end.
    let (c3, _ev3) = {
        let (mut ev, h) = open_stream(&d, &call).await;
        assert_eq!(ev.next().await.unwrap()["type"], "SUBSCRIBED");
        let c3 = Client {
            sid: h["mesos-stream-id"].to_str().unwrap().to_string(),
            ..c2
        };
        (c3, ev)
    };
    c3.ok(json!({"type": "TEARDOWN"})).await;
    assert_eq!(d.teardowns(), 1);
    let (mut ev4, _) = open_stream(&d, &call).await;
    assert_eq!(
        ev4.next().await.unwrap(),
        json!({"type": "ERROR", "error": {"message": "Framework has been removed"}})
    );
    assert!(ev4.next().await.is_none());
    let r = c3.call(json!({"type": "REVIVE"})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn leader_redirect_and_no_leader() {
    let d = MesosDouble::start(fast()).await;
    d.fail_over("10.0.0.7:5050");
    let r = post_raw(
        &d.scheduler_url(),
        &[("Content-Type", CT)],
        subscribe_call(ALL_CAPS).to_string(),
    )
    .await;
    // reqwest follows redirects by default; use a non-following client.
    let _ = r;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(d.scheduler_url())
        .header("Content-Type", CT)
        .body(subscribe_call(ALL_CAPS).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(r.headers()["location"], "//10.0.0.7:5050/api/v1/scheduler");
    d.no_leader();
    let r = http
        .post(d.scheduler_url())
        .header("Content-Type", CT)
        .body(subscribe_call(ALL_CAPS).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.text().await.unwrap(), "No leader elected");
    d.set_leader(true);
    let r = http
        .get(format!("{}/master/redirect", d.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(r.headers()["location"], format!("//{}", d.addr()));
    let (_c, _ev) = subscribe(&d, ALL_CAPS).await;
}

#[tokio::test]
async fn launch_runs_to_finished_with_acks_and_resends() {
    let d = MesosDouble::start(fast()).await;
    d.set_task_behavior(
        "bad",
        TaskBehavior::Fail {
            after: Duration::from_millis(30),
            exit_code: 3,
        },
    );
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let oid = d.offer("agent-1", 2.0, 1024.0, 4096.0).unwrap();
    ev.next_of("OFFERS").await;
    c.ok(launch(
        &[&oid],
        vec![
            task("good-1", "agent-1", 0.1, 32.0),
            task("bad-1", "agent-1", 0.1, 32.0),
        ],
    ))
    .await;
    assert_eq!(d.launched_tasks().len(), 2);
    let mut finals = Vec::new();
    let mut seen = Vec::new();
    while finals.len() < 2 {
        let e = ev.next_non_hb().await;
        if e["type"] != "UPDATE" {
            continue;
        }
        let s = status(&e).clone();
        assert_eq!(s["source"], "SOURCE_EXECUTOR");
        assert!(s["uuid"].is_string());
        seen.push((
            s["task_id"]["value"].as_str().unwrap().to_string(),
            s["state"].as_str().unwrap().to_string(),
        ));
        c.ack(&e).await;
        if s["state"] == "TASK_FINISHED" || s["state"] == "TASK_FAILED" {
            finals.push(s);
        }
    }
    let states = |id: &str| -> Vec<String> {
        seen.iter()
            .filter(|(t, _)| t == id)
            .map(|(_, s)| s.clone())
            .collect()
    };
    assert_eq!(
        states("good-1"),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    assert_eq!(
        states("bad-1"),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    );
    let failed = finals.iter().find(|s| s["state"] == "TASK_FAILED").unwrap();
    assert_eq!(failed["message"], "Command exited with status 3");
    assert!(d.violations().is_empty(), "{:?}", d.violations());
    assert!(d.acks().iter().all(|a| a.matched));

    // Without an ack the same update is re-sent, and the next one waits.
    d.set_task_behavior("slow", TaskBehavior::RunUntilKilled);
    let oid = ev.next_of("OFFERS").await["offers"]["offers"][0]["id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(launch(&[&oid], vec![task("slow-1", "agent-1", 0.1, 32.0)]))
        .await;
    let first = ev.next_of("UPDATE").await;
    assert_eq!(status(&first)["state"], "TASK_STARTING");
    let again = ev.next_of("UPDATE").await;
    assert_eq!(status(&again)["state"], "TASK_STARTING");
    assert_eq!(status(&again)["uuid"], status(&first)["uuid"]);
    c.ack(&again).await;
    let running = ev.next_of("UPDATE").await;
    assert_eq!(status(&running)["state"], "TASK_RUNNING");
    c.ack(&running).await;
    // Acking something unknown is a violation (the real master ignores it).
    c.ok(
        json!({"type": "ACKNOWLEDGE", "acknowledge": {"agent_id": {"value": "agent-1"},
        "task_id": {"value": "slow-1"}, "uuid": "PyqcHlt9TiGaDG2OHys8TQ=="}}),
    )
    .await;
    assert_eq!(d.violations().len(), 1);
    // Bad uuid: 400.
    let r = c
        .call(
            json!({"type": "ACKNOWLEDGE", "acknowledge": {"agent_id": {"value": "agent-1"},
        "task_id": {"value": "slow-1"}, "uuid": "nope"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    // KILL: TASK_KILLING then TASK_KILLED (TASK_KILLING_STATE declared).
    c.ok(json!({"type": "KILL", "kill": {"task_id": {"value": "slow-1"}, "agent_id": {"value": "agent-1"}}}))
        .await;
    let k1 = ev.next_of("UPDATE").await;
    assert_eq!(status(&k1)["state"], "TASK_KILLING");
    c.ack(&k1).await;
    let k2 = ev.next_of("UPDATE").await;
    assert_eq!(status(&k2)["state"], "TASK_KILLED");
    assert_eq!(
        status(&k2)["message"],
        "Command terminated with signal Terminated"
    );
    c.ack(&k2).await;
    assert_eq!(d.kills(), ["slow-1"]);
}

#[tokio::test]
async fn invalid_accepts_drop_or_error_tasks() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    // Unknown offer: TASK_DROPPED, REASON_INVALID_OFFERS, no uuid (capture 14).
    c.ok(launch(
        &["no-such-offer"],
        vec![task("ghost", "agent-1", 0.1, 32.0)],
    ))
    .await;
    let e = ev.next_non_hb().await;
    let s = status(&e);
    assert_eq!(s["state"], "TASK_DROPPED");
    assert_eq!(s["reason"], "REASON_INVALID_OFFERS");
    assert_eq!(s["source"], "SOURCE_MASTER");
    assert_eq!(
        s["message"],
        "Task launched with invalid offers: Offer no-such-offer is no longer valid"
    );
    assert!(s.get("uuid").is_none());

    // Too big: TASK_ERROR, REASON_TASK_INVALID (capture 15).
    let o1 = d.offer("agent-1", 2.0, 1024.0, 4096.0).unwrap();
    ev.next_of("OFFERS").await;
    c.ok(launch(&[&o1], vec![task("big", "agent-1", 999.0, 32.0)]))
        .await;
    let s = status(&ev.next_non_hb().await).clone();
    assert_eq!(s["state"], "TASK_ERROR");
    assert_eq!(s["reason"], "REASON_TASK_INVALID");
    assert!(s["message"].as_str().unwrap().starts_with(
        "Total resources cpus(allocated: *):999; mem(allocated: *):32 required by task and its executor is more than available"
    ), "{s}");
    assert!(s.get("uuid").is_none());
    // The used offer is gone: reusing it drops the task.
    c.ok(launch(&[&o1], vec![task("again", "agent-1", 0.1, 32.0)]))
        .await;
    assert_eq!(status(&ev.next_non_hb().await)["state"], "TASK_DROPPED");

    // Metadata must match: a task asking for a role it was not offered.
    d.reoffer();
    let o2 = ev.next_of("OFFERS").await["offers"]["offers"][0]["id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let mut t = task("wrong-role", "agent-1", 0.1, 32.0);
    t["resources"][0]["allocation_info"]["role"] = json!("batch");
    // Invalid specs: empty id, duplicate id, no command, wrong agent.
    let mut empty = task("x", "agent-1", 0.1, 32.0);
    empty["task_id"]["value"] = json!("");
    let mut nocmd = task("nocmd", "agent-1", 0.1, 32.0);
    nocmd.as_object_mut().unwrap().remove("command");
    let wrong_agent = task("elsewhere", "agent-2", 0.1, 32.0);
    let ok = task("dup", "agent-1", 0.1, 32.0);
    c.ok(launch(
        &[&o2],
        vec![t, empty, nocmd, wrong_agent, ok.clone(), ok],
    ))
    .await;
    let mut errors = Vec::new();
    let mut dup_ok = false;
    while errors.len() < 5 {
        let e = ev.next_non_hb().await;
        let s = status(&e);
        if s["state"] == "TASK_ERROR" {
            assert_eq!(s["source"], "SOURCE_MASTER");
            errors.push(s["task_id"]["value"].as_str().unwrap().to_string());
        } else if s["task_id"]["value"] == "dup" {
            dup_ok = true;
        }
    }
    assert_eq!(errors, ["wrong-role", "", "nocmd", "elsewhere", "dup"]);
    assert!(dup_ok || ev.next_of("UPDATE").await["update"]["status"]["task_id"]["value"] == "dup");
    assert_eq!(d.launched_tasks().len(), 1);

    // Offers from different agents cannot be pooled. (REVIVE lifts the ACCEPT's 1 s filter
    // on agent-1.)
    c.ok(json!({"type": "REVIVE", "revive": {}})).await;
    let a = d.outstanding_offers();
    let b = d.offer("agent-2", 1.0, 512.0, 1024.0).unwrap();
    let mut offers = a.clone();
    offers.push(b.clone());
    assert!(offers.len() >= 2, "{offers:?}");
    let refs: Vec<&str> = offers.iter().map(String::as_str).collect();
    c.ok(launch(&refs, vec![task("pooled", "agent-1", 0.1, 32.0)]))
        .await;
    let e = loop {
        let e = ev.next_of("UPDATE").await;
        if e["update"]["status"]["task_id"]["value"] == "pooled" {
            break e;
        }
    };
    let s = status(&e);
    assert_eq!(s["state"], "TASK_DROPPED");
    assert!(
        s["message"].as_str().unwrap().contains("one single agent"),
        "{s}"
    );
}

#[tokio::test]
async fn non_partition_aware_gets_task_lost() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe(&d, &["MULTI_ROLE"]).await;
    c.ok(launch(&["nope"], vec![task("ghost", "agent-1", 0.1, 32.0)]))
        .await;
    assert_eq!(status(&ev.next_non_hb().await)["state"], "TASK_LOST");
    c.ok(json!({"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "x"}}]}}))
        .await;
    assert_eq!(status(&ev.next_non_hb().await)["state"], "TASK_LOST");
}

#[tokio::test]
async fn reconciliation_answers() {
    let d = MesosDouble::start(fast()).await;
    d.set_task_behavior("", TaskBehavior::RunUntilKilled);
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let o = d.offer("agent-1", 2.0, 1024.0, 4096.0).unwrap();
    ev.next_of("OFFERS").await;
    c.ok(launch(&[&o], vec![task("live", "agent-1", 0.1, 32.0)]))
        .await;
    for _ in 0..2 {
        let e = ev.next_of("UPDATE").await;
        c.ack(&e).await;
    }
    // Finish "done" and ack its terminal update: it is forgotten by the master.
    d.finish_task("live");
    let e = ev.next_of("UPDATE").await;
    assert_eq!(status(&e)["state"], "TASK_FINISHED");
    c.ack(&e).await;
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0]["id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(launch(&[&o], vec![task("run", "agent-1", 0.1, 32.0)]))
        .await;
    for _ in 0..2 {
        let e = ev.next_of("UPDATE").await;
        c.ack(&e).await;
    }
    c.ok(json!({"type": "RECONCILE", "reconcile": {"tasks": [
        {"task_id": {"value": "live"}, "agent_id": {"value": "agent-1"}},
        {"task_id": {"value": "never-launched"}},
        {"task_id": {"value": "run"}}]}}))
        .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = ev.next_of("UPDATE").await;
        let s = status(&e).clone();
        assert_eq!(s["reason"], "REASON_RECONCILIATION");
        assert_eq!(s["source"], "SOURCE_MASTER");
        assert!(s.get("uuid").is_none());
        got.push((
            s["task_id"]["value"].as_str().unwrap().to_string(),
            s["state"].as_str().unwrap().to_string(),
            s["message"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        got,
        [
            (
                "live".into(),
                "TASK_GONE".into(),
                "Reconciliation: Task is unknown to the agent".into()
            ),
            (
                "never-launched".into(),
                "TASK_UNKNOWN".into(),
                "Reconciliation: Task is unknown".into()
            ),
            (
                "run".into(),
                "TASK_RUNNING".into(),
                "Reconciliation: Latest task state".into()
            ),
        ]
    );
    // Implicit: only the active task. The answers are sent before the call is answered, so
    // the next event caused after it (an offer) comes right after them.
    c.ok(json!({"type": "RECONCILE", "reconcile": {}})).await;
    let s = status(&ev.next_of("UPDATE").await).clone();
    assert_eq!(
        (s["task_id"]["value"].as_str(), s["state"].as_str()),
        (Some("run"), Some("TASK_RUNNING"))
    );
    d.offer("agent-9", 1.0, 128.0, 128.0).unwrap();
    assert_eq!(ev.next_non_hb().await["type"], "OFFERS");
    // Task survives a reconnect; unacked updates are resent at once.
    d.send_update("run", "TASK_RUNNING", Some("still here"), None);
    let e = ev.next_of("UPDATE").await;
    d.drop_stream();
    while ev.next_within(Duration::from_secs(2)).await.is_some() {}
    let mut call = subscribe_call(ALL_CAPS);
    call["framework_id"] = json!({ "value": c.fid });
    call["subscribe"]["framework_info"]["id"] = json!({ "value": c.fid });
    let (mut ev2, _) = open_stream(&d, &call).await;
    assert_eq!(ev2.next().await.unwrap()["type"], "SUBSCRIBED");
    let re = ev2.next_of("UPDATE").await;
    assert_eq!(status(&re)["uuid"], status(&e)["uuid"]);
}

#[tokio::test]
async fn decline_filters_suppress_and_revive() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let o = d.offer("agent-1", 2.0, 1024.0, 4096.0).unwrap();
    ev.next_of("OFFERS").await;
    let declined = Instant::now();
    c.ok(
        json!({"type": "DECLINE", "decline": {"offer_ids": [{"value": o}],
        "filters": {"refuse_seconds": 0.5}}}),
    )
    .await;
    assert_eq!(d.declines()[0].refuse_seconds, Some(0.5));
    // Filtered: adding resources on agent-1 yields no offer until expiry...
    assert!(d.offer("agent-1", 1.0, 0.0, 0.0).is_none());
    // ...then one offer of everything, made by the first tick after the filter's expiry.
    let e = ev.next_non_hb().await;
    assert_eq!(e["type"], "OFFERS");
    assert!(d.clock() >= declined + Duration::from_millis(500));
    let cpus = e["offers"]["offers"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "cpus")
        .unwrap()["scalar"]["value"]
        .as_f64()
        .unwrap();
    assert_eq!(cpus, 3.0);
    // SUPPRESS: no offers until REVIVE.
    c.ok(json!({"type": "SUPPRESS", "suppress": {}})).await;
    assert!(d.suppressed());
    let o = d.outstanding_offers();
    c.ok(
        json!({"type": "DECLINE", "decline": {"offer_ids": [{"value": o[0]}],
        "filters": {"refuse_seconds": 0.1}}}),
    )
    .await;
    assert!(d.offer("agent-2", 1.0, 1.0, 1.0).is_none());
    // The 0.1 s filter expires while suppressed: still no offer.
    clock_past(&d, Instant::now() + Duration::from_millis(200)).await;
    assert!(d.outstanding_offers().is_empty());
    c.ok(json!({"type": "REVIVE", "revive": {}})).await;
    assert!(!d.suppressed());
    ev.next_of("OFFERS").await;
    ev.next_of("OFFERS").await;
    assert_eq!(d.revives(), 1);
    // Rescind.
    let o = d.outstanding_offers();
    assert!(d.rescind(&o[0]));
    let e = ev.next_of("RESCIND").await;
    assert_eq!(e["rescind"]["offer_id"]["value"], o[0].as_str());
}

// ------------------------------------------------------------ protobuf

const PB: &str = "application/x-protobuf";

/// A Mesos JSON call as protobuf bytes (through the crate's prost types).
fn pb_bytes(call: &Value) -> Vec<u8> {
    let c: proto::Call = serde_json::from_value(call.clone()).expect("call has a protobuf form");
    c.encode_to_vec()
}

async fn pb_call(c: &Client, mut call: Value) -> Reply {
    call["framework_id"] = json!({ "value": c.fid });
    post_raw(
        &c.url,
        &[("Content-Type", PB), ("Mesos-Stream-Id", &c.sid)],
        pb_bytes(&call),
    )
    .await
}

async fn pb_ack(c: &Client, update: &Value) {
    let s = &update["update"]["status"];
    let r = pb_call(
        c,
        json!({"type": "ACKNOWLEDGE", "acknowledge": {
        "agent_id": s["agent_id"], "task_id": s["task_id"], "uuid": s["uuid"]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
}

#[tokio::test]
async fn protobuf_subscription_launch_ack_finished() {
    let d = MesosDouble::start(fast()).await;
    let resp = reqwest::Client::new()
        .post(d.scheduler_url())
        .header("Content-Type", PB)
        .header("Accept", PB)
        .body(pb_bytes(&subscribe_call(ALL_CAPS)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], PB);
    let sid = resp.headers()["mesos-stream-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut ev = Events {
        resp,
        buf: Vec::new(),
        chunks: 0,
        protobuf: true,
    };
    let sub = ev.next().await.unwrap();
    assert_eq!(sub["type"], "SUBSCRIBED");
    assert_eq!(sub["subscribed"]["heartbeat_interval_seconds"], 15.0);
    let fid = sub["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ev.next().await.unwrap()["type"], "HEARTBEAT");
    let c = Client {
        http: reqwest::Client::new(),
        url: d.scheduler_url(),
        fid,
        sid,
    };
    let oid = d.offer("a1", 2.0, 1024.0, 1000.0).unwrap();
    let offers = ev.next_of("OFFERS").await;
    assert_eq!(offers["offers"]["offers"][0]["id"]["value"], oid);
    let r = pb_call(&c, launch(&[&oid], vec![task("pb-1", "a1", 1.0, 64.0)])).await;
    assert_eq!(r.status, 202, "{}", r.body);
    for state in ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"] {
        let u = ev.next_of("UPDATE").await;
        assert_eq!(status(&u)["state"], state);
        assert_eq!(status(&u)["task_id"]["value"], "pb-1");
        pb_ack(&c, &u).await;
    }
    assert!(d.acks().iter().all(|a| a.matched));
    assert_eq!(d.acks().len(), 3);
    // Garbage protobuf: 400 with the real master's text.
    let r = post_raw(
        &c.url,
        &[("Content-Type", PB), ("Mesos-Stream-Id", &c.sid)],
        &b"\x00garbage{"[..],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, "Failed to parse body into Call protobuf");
    if let Some(cap) = capture("protobuf/calls.jsonl")
        .into_iter()
        .find(|x| x["name"] == "call-garbage-body")
    {
        assert_eq!(r.body, cap["response_body"]);
    }
    // The operator events in protobuf, through the double's schema and read with ours.
    let oid = d.offer("a2", 1.0, 64.0, 64.0).unwrap();
    ev.next_of("OFFERS").await;
    d.schedule_maintenance(
        "a2",
        mesos_double::Unavailability::from_now(Duration::from_secs(60), None),
    );
    // The agent's offer comes back with its unavailability, and an inverse offer.
    let (mut inverse, mut offer) = (None, None);
    while inverse.is_none() || offer.is_none() {
        let e = ev.next_non_hb().await;
        match e["type"].as_str() {
            Some("INVERSE_OFFERS") => {
                inverse = Some(e["inverse_offers"]["inverse_offers"][0].clone())
            }
            Some("OFFERS") if e["offers"]["offers"][0]["agent_id"]["value"] == "a2" => {
                offer = Some(e["offers"]["offers"][0].clone())
            }
            _ => {}
        }
    }
    let (inverse, offer) = (inverse.unwrap(), offer.unwrap());
    assert_eq!(inverse["agent_id"]["value"], "a2", "{inverse}");
    assert_ne!(offer["id"]["value"], oid.as_str());
    assert!(
        offer["unavailability"]["start"]["nanoseconds"].is_i64(),
        "{offer}"
    );
    let reserve = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]], "operations": [
        {"type": "RESERVE", "id": {"value": "op-pb"}, "reserve": {"resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
             "allocation_info": {"role": "*"}, "role": "x"}]}}]}});
    let r = pb_call(&c, reserve).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
    let st = &e["update_operation_status"]["status"];
    assert_eq!(st["operation_id"]["value"], "op-pb", "{e}");
    assert_eq!(st["state"], "OPERATION_ERROR", "{e}");
}

#[tokio::test]
async fn subscribe_accept_negotiation() {
    let d = MesosDouble::start(fast()).await;
    let body = subscribe_call(ALL_CAPS).to_string();
    let ct_for = |accept: Option<&'static str>| {
        let url = d.scheduler_url();
        let body = body.clone();
        async move {
            let mut rb = reqwest::Client::new().post(url).header("Content-Type", CT);
            if let Some(a) = accept {
                rb = rb.header("Accept", a);
            }
            let r = rb.body(body).send().await.unwrap();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), ct)
        }
    };
    assert_eq!(ct_for(None).await, (200, Some(CT.to_string())));
    let both = Some("application/x-protobuf, application/json");
    assert_eq!(ct_for(both).await, (200, Some(CT.to_string())));
    assert_eq!(ct_for(Some(PB)).await, (200, Some(PB.to_string())));
    assert_eq!(ct_for(Some("*/*")).await.1, Some(CT.to_string()));
    assert_eq!(ct_for(Some("text/html")).await.0, 406);
}

/// A protobuf call missing a `required` field does not parse, as with the master's parser:
/// REVIVE with a `framework_id` whose `value` is absent.
#[tokio::test]
async fn protobuf_call_missing_a_required_field_is_refused() {
    let d = MesosDouble::start(fast()).await;
    let body: Vec<u8> = vec![0x0a, 0x00, 0x10, 0x05];
    let r = post_raw(&d.scheduler_url(), &[("Content-Type", PB)], body).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Failed to parse body into Call protobuf")
    );
    // With the value it parses, and fails later for the unknown framework.
    let complete: Vec<u8> = vec![0x0a, 0x03, 0x0a, 0x01, b'x', 0x10, 0x05];
    let r = post_raw(&d.scheduler_url(), &[("Content-Type", PB)], complete).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Framework cannot be found")
    );
}

#[tokio::test]
async fn a_double_speaking_only_protobuf_refuses_json() {
    let d = MesosDouble::start(Config {
        only_encoding: Some(mesos_double::Encoding::Protobuf),
        ..fast()
    })
    .await;
    let body = subscribe_call(ALL_CAPS).to_string();
    let json = post_raw(&d.scheduler_url(), &[("Content-Type", CT)], body).await;
    assert_eq!(
        (json.status, json.body.as_str()),
        (415, "Expecting 'Content-Type' of application/x-protobuf")
    );
    let pb = pb_bytes(&subscribe_call(ALL_CAPS));
    let json_only = [("Content-Type", PB), ("Accept", CT)];
    assert_eq!(
        post_raw(&d.scheduler_url(), &json_only, pb.clone())
            .await
            .status,
        406
    );
    let (mut ev, headers) = {
        let r = reqwest::Client::new()
            .post(d.scheduler_url())
            .header("Content-Type", PB)
            .header("Accept", "application/json, application/x-protobuf")
            .body(pb)
            .send()
            .await
            .unwrap();
        let headers = r.headers().clone();
        (
            Events {
                resp: r,
                buf: Vec::new(),
                chunks: 0,
                protobuf: true,
            },
            headers,
        )
    };
    assert_eq!(headers["content-type"], PB);
    assert_eq!(ev.next().await.unwrap()["type"], "SUBSCRIBED");
}

// ------------------------------------------------------------ auth, redirect

fn basic(principal: &str, secret: &str) -> String {
    use base64::Engine;
    let raw = format!("{principal}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn subscribe_as(d: &MesosDouble, auth: &str, principal: &str) -> (u16, Events) {
    let mut call = subscribe_call(ALL_CAPS);
    call["subscribe"]["framework_info"]["principal"] = json!(principal);
    let resp = reqwest::Client::new()
        .post(d.scheduler_url())
        .header("Content-Type", CT)
        .header("Authorization", auth)
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ev = Events {
        resp,
        buf: Vec::new(),
        chunks: 0,
        protobuf: false,
    };
    (status, ev)
}

#[tokio::test]
async fn basic_auth_before_leadership_and_principal_match() {
    let d = MesosDouble::start(Config {
        credentials: Some(("dispatch".into(), "s3cret".into())),
        ..fast()
    })
    .await;
    let url = d.scheduler_url();
    let body = subscribe_call(ALL_CAPS).to_string();
    let r = post_raw(&url, &[("Content-Type", CT)], body.clone()).await;
    assert_eq!(r.status, 401);
    let wrong = basic("dispatch", "nope");
    let r = post_raw(
        &url,
        &[("Content-Type", CT), ("Authorization", &wrong)],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 401);
    // Authentication comes before the leader check.
    d.no_leader();
    let r = post_raw(&url, &[("Content-Type", CT)], body.clone()).await;
    assert_eq!(r.status, 401);
    let good = basic("dispatch", "s3cret");
    let r = post_raw(
        &url,
        &[("Content-Type", CT), ("Authorization", &good)],
        body,
    )
    .await;
    assert_eq!(r.status, 503);
    d.set_leader(true);
    // A principal other than the authenticated one: 200, ERROR, end of stream.
    let (st, mut ev) = subscribe_as(&d, &good, "someone-else").await;
    assert_eq!(st, 200);
    let e = ev.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("someone-else"));
    assert!(ev.next().await.is_none());
    let (st, mut ev) = subscribe_as(&d, &good, "dispatch").await;
    assert_eq!(st, 200);
    assert_eq!(ev.next().await.unwrap()["type"], "SUBSCRIBED");
    let last = d.calls().pop().unwrap();
    assert_eq!(last.headers["authorization"], good);
}

#[tokio::test]
async fn master_redirect_endpoint() {
    let d = MesosDouble::start(fast()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = || http.get(format!("{}/master/redirect", d.url())).send();
    let r = get().await.unwrap();
    assert_eq!(r.status().as_u16(), 307);
    let port = d.addr().port();
    assert_eq!(r.headers()["location"], format!("//127.0.0.1:{port}"));
    d.fail_over("127.0.0.1:5050");
    let r = get().await.unwrap();
    assert_eq!(r.headers()["location"], "//127.0.0.1:5050");
    d.no_leader();
    assert_eq!(get().await.unwrap().status().as_u16(), 503);
}

// ------------------------------------------------------------ task groups

fn scalar(name: &str, v: f64, role: &str) -> Value {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": v}, "allocation_info": {"role": role}})
}

fn group_task(id: &str, agent: &str, cpus: f64) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": {"value": agent},
        "resources": [scalar("cpus", cpus, "*"), scalar("mem", 64.0, "*")],
        "command": {"value": format!("echo {id}")}})
}

fn default_executor(id: &str, fid: &str, resources: Vec<Value>) -> Value {
    json!({"type": "DEFAULT", "executor_id": {"value": id}, "framework_id": {"value": fid},
        "resources": resources})
}

fn group_accept(offer: &str, executor: Value, tasks: Vec<Value>) -> Value {
    json!({"type": "ACCEPT", "accept": {"offer_ids": [{"value": offer}],
        "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
            "executor": executor, "task_group": {"tasks": tasks}}}],
        "filters": {"refuse_seconds": 0}}})
}

fn exec_resources(disk: bool) -> Vec<Value> {
    let mut r = vec![scalar("cpus", 0.1, "*"), scalar("mem", 32.0, "*")];
    if disk {
        r.push(scalar("disk", 32.0, "*"));
    }
    r
}

/// Reads `n` UPDATEs (acking those with a uuid); other events are skipped.
async fn updates(ev: &mut Events, c: &Client, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = ev.next_of("UPDATE").await;
        if status(&e)["uuid"].is_string() {
            c.ack(&e).await;
        }
        out.push(status(&e).clone());
    }
    out
}

fn states_of(updates: &[Value], task: &str) -> Vec<String> {
    updates
        .iter()
        .filter(|s| s["task_id"]["value"] == task)
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

async fn next_offer(d: &MesosDouble, ev: &mut Events) -> Value {
    d.reoffer();
    ev.next_of("OFFERS").await["offers"]["offers"][0].clone()
}

/// The outstanding offers, as sent.
fn outstanding(d: &MesosDouble) -> Vec<Value> {
    let ids = d.outstanding_offers();
    d.events()
        .iter()
        .filter(|e| e["type"] == "OFFERS")
        .flat_map(|e| {
            e["offers"]["offers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|o| ids.iter().any(|id| o["id"]["value"] == id.as_str()))
        .collect()
}

fn offered(offer: &Value, name: &str) -> f64 {
    offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == name && r["reservations"].is_null())
        .map(|r| r["scalar"]["value"].as_f64().unwrap())
        .sum()
}

#[tokio::test]
async fn launch_group_validation() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let oid = d.offer("a1", 4.0, 4096.0, 1000.0).unwrap();
    ev.next_of("OFFERS").await;
    let tasks = vec![group_task("g-a", "a1", 1.0), group_task("g-b", "a1", 1.0)];
    let ex = default_executor("ex1", &c.fid, exec_resources(false));
    c.ok(group_accept(&oid, ex, tasks.clone())).await;
    let errs = updates(&mut ev, &c, 2).await;
    for s in &errs {
        assert_eq!(s["state"], "TASK_ERROR");
        assert_eq!(s["reason"], "REASON_TASK_GROUP_INVALID");
        assert_eq!(s["message"], "Executor 'ex1' uses no disk");
        assert!(s["uuid"].is_null());
    }
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"executor_id": {"value": "ex1"}, "framework_id": {"value": c.fid},
                   "resources": exec_resources(true)}),
            "'ExecutorInfo.type' must be set",
        ),
        (
            json!({"type": "DEFAULT", "executor_id": {"value": "ex1"},
                   "resources": exec_resources(true)}),
            "'ExecutorInfo.framework_id' must be set",
        ),
        (
            json!({"type": "DEFAULT", "executor_id": {"value": "ex1"}, "framework_id": {"value": c.fid},
                   "command": {"value": "x"}, "resources": exec_resources(true)}),
            "'ExecutorInfo.command' must not be set",
        ),
        (
            json!({"type": "DEFAULT", "executor_id": {"value": "ex1"}, "framework_id": {"value": c.fid},
                   "container": {"type": "DOCKER", "docker": {"image": "x"}},
                   "resources": exec_resources(true)}),
            "Docker ContainerInfo is not supported on the executor",
        ),
    ];
    for (ex, want) in cases {
        let o = next_offer(&d, &mut ev).await;
        let oid = o["id"]["value"].as_str().unwrap();
        c.ok(group_accept(oid, ex, tasks.clone())).await;
        for s in updates(&mut ev, &c, 2).await {
            assert_eq!(s["reason"], "REASON_TASK_GROUP_INVALID");
            assert!(s["message"].as_str().unwrap().contains(want), "{s}");
        }
    }
    // A DOCKER task, and duplicate task IDs within the group.
    let mut docker = group_task("g-c", "a1", 1.0);
    docker["container"] = json!({"type": "DOCKER", "docker": {"image": "x"}});
    let dup = vec![group_task("g-d", "a1", 1.0), group_task("g-d", "a1", 1.0)];
    for (ts, want) in [
        (vec![docker], "Docker ContainerInfo is not supported"),
        (dup, "duplicate ID"),
    ] {
        let o = next_offer(&d, &mut ev).await;
        let oid = o["id"]["value"].as_str().unwrap();
        let ex = default_executor("ex1", &c.fid, exec_resources(true));
        let n = ts.len();
        c.ok(group_accept(oid, ex, ts)).await;
        for s in updates(&mut ev, &c, n).await {
            assert!(s["message"].as_str().unwrap().contains(want), "{s}");
        }
    }
    // More than offered.
    let o = next_offer(&d, &mut ev).await;
    let ex = default_executor("ex1", &c.fid, exec_resources(true));
    let big = vec![group_task("g-e", "a1", 3.0), group_task("g-f", "a1", 1.0)];
    c.ok(group_accept(o["id"]["value"].as_str().unwrap(), ex, big))
        .await;
    for s in updates(&mut ev, &c, 2).await {
        assert_eq!(s["state"], "TASK_ERROR");
        assert!(s["message"]
            .as_str()
            .unwrap()
            .contains("required by task group and its executor is more than available"));
    }
    assert!(d.launched_tasks().is_empty());
    assert!(d.executors("a1").is_empty());
}

#[tokio::test]
async fn launch_group_lifecycle_sibling_kills_and_executor_failure() {
    let d = MesosDouble::start(fast()).await;
    d.set_task_behavior("g-", TaskBehavior::RunUntilKilled);
    d.set_task_behavior(
        "g-fail",
        TaskBehavior::Fail {
            after: Duration::from_millis(100),
            exit_code: 2,
        },
    );
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let oid = d.offer("a1", 4.0, 4096.0, 1000.0).unwrap();
    let first = ev.next_of("OFFERS").await;
    let url = &first["offers"]["offers"][0]["url"];
    assert_eq!(url["address"]["port"], d.addr().port());
    assert_eq!(url["address"]["ip"], "127.0.0.1");
    assert_eq!(url["address"]["hostname"], "a1");
    assert_eq!(url["path"], "/slave(1)");
    let ex = default_executor("ex1", &c.fid, exec_resources(true));
    let g1 = vec![group_task("g-a", "a1", 1.0), group_task("g-b", "a1", 1.0)];
    c.ok(group_accept(&oid, ex.clone(), g1)).await;
    let ups = updates(&mut ev, &c, 4).await;
    for t in ["g-a", "g-b"] {
        assert_eq!(states_of(&ups, t), ["TASK_STARTING", "TASK_RUNNING"]);
    }
    assert!(ups.iter().all(|s| s["executor_id"]["value"] == "ex1"));
    let launched = d.launched_tasks();
    assert!(launched
        .iter()
        .all(|l| l.group && l.executor_id.as_deref() == Some("ex1")));
    // The executor shows in offers; its resources are not charged twice.
    let o = next_offer(&d, &mut ev).await;
    assert_eq!(o["executor_ids"], json!([{"value": "ex1"}]));
    assert!((offered(&o, "cpus") - 1.9).abs() < 1e-9, "{o}");
    let g2 = vec![
        group_task("g-fail-c", "a1", 0.95),
        group_task("g-d", "a1", 0.95),
    ];
    c.ok(group_accept(o["id"]["value"].as_str().unwrap(), ex, g2))
        .await;
    // g-fail-c fails: the default executor kills g-d; group 1 is untouched.
    let ups = updates(&mut ev, &c, 7).await;
    assert_eq!(
        states_of(&ups, "g-fail-c"),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    );
    assert_eq!(
        states_of(&ups, "g-d"),
        [
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_KILLING",
            "TASK_KILLED"
        ]
    );
    assert!(states_of(&ups, "g-a").is_empty());
    assert_eq!(d.executors("a1"), ["ex1"]);
    // KILL of g-a takes g-b down too; then the executor exits.
    c.ok(json!({"type": "KILL", "kill": {"task_id": {"value": "g-a"}}}))
        .await;
    let ups = updates(&mut ev, &c, 4).await;
    assert_eq!(states_of(&ups, "g-a"), ["TASK_KILLING", "TASK_KILLED"]);
    assert_eq!(states_of(&ups, "g-b"), ["TASK_KILLING", "TASK_KILLED"]);
    let f = ev.next_of("FAILURE").await;
    assert_eq!(
        f["failure"],
        json!({"agent_id": {"value": "a1"}, "executor_id": {"value": "ex1"}, "status": 0})
    );
    assert!(d.executors("a1").is_empty());
    // Everything, executor resources included, is offered again: the executor's resources
    // are offered right after FAILURE.
    ev.next_of("OFFERS").await;
    let open = outstanding(&d);
    let cpus: f64 = open.iter().map(|o| offered(o, "cpus")).sum();
    assert!((cpus - 4.0).abs() < 1e-9, "{open:?}");
    // The offer made when the executor exited no longer lists it.
    assert!(open.last().unwrap()["executor_ids"].is_null());
    assert!(d.violations().is_empty(), "{:?}", d.violations());
}

// ------------------------------------------------------------ agent files API

struct FileReply {
    status: u16,
    body: String,
}

/// GET on the agent the offer's URL names.
async fn agent_get(offer: &Value, endpoint: &str, query: &[(&str, &str)]) -> FileReply {
    let a = &offer["url"]["address"];
    let url = format!(
        "{}://{}:{}/files/{endpoint}",
        offer["url"]["scheme"].as_str().unwrap(),
        a["ip"].as_str().unwrap(),
        a["port"]
    );
    let r = reqwest::Client::new()
        .get(url)
        .query(query)
        .send()
        .await
        .unwrap();
    FileReply {
        status: r.status().as_u16(),
        body: r.text().await.unwrap(),
    }
}

fn captured_files() -> Option<Value> {
    let p = captures().join("json/agent-files.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Some(serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn agent_files_browse_and_read_sandboxes() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let oid = d.offer("a1", 4.0, 4096.0, 1000.0).unwrap();
    let offer = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let mut t = task("hello-1", "a1", 0.5, 64.0);
    t["command"]["value"] = json!("echo hello from mesos");
    c.ok(launch(&[&oid], vec![t])).await;
    let ups = updates(&mut ev, &c, 3).await;
    assert_eq!(states_of(&ups, "hello-1")[2], "TASK_FINISHED");
    let container = ups[0]["container_status"]["container_id"]["value"]
        .as_str()
        .unwrap();
    let sandbox = d.sandbox_dir("hello-1").unwrap();
    assert_eq!(
        sandbox,
        format!(
            "/var/lib/mesos/agent/slaves/a1/frameworks/{}/executors/hello-1/runs/{container}",
            c.fid
        )
    );
    // browse: the captured shape, key order included.
    let r = agent_get(&offer, "browse", &[("path", &sandbox)]).await;
    assert_eq!(r.status, 200);
    let entries: Value = serde_json::from_str(&r.body).unwrap();
    let paths: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    let stdout = format!("{sandbox}/stdout");
    assert_eq!(paths, [format!("{sandbox}/stderr"), stdout.clone()]);
    assert_eq!(entries[1]["size"], 22);
    assert_eq!(entries[1]["mode"], "-rw-r--r--");
    if let Some(cap) = captured_files() {
        let body = cap["answers"]["browse"]["body"].as_str().unwrap();
        let captured: Value = serde_json::from_str(body).unwrap();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(keys(&entries[0]), keys(&captured[0]));
    }
    // read: data + offset, -1 for the size, 404 for a missing file, 400 for a bad offset.
    let r = agent_get(
        &offer,
        "read",
        &[("path", &stdout), ("offset", "0"), ("length", "4096")],
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"data":"echo hello from mesos\n","offset":0}"#)
    );
    let r = agent_get(&offer, "read", &[("path", &stdout), ("offset", "-1")]).await;
    assert_eq!(r.body, r#"{"data":"","offset":22}"#);
    let r = agent_get(
        &offer,
        "read",
        &[("path", &stdout), ("offset", "5"), ("length", "5")],
    )
    .await;
    assert_eq!(r.body, r#"{"data":"hello","offset":5}"#);
    let missing = format!("{sandbox}/nope");
    let r = agent_get(&offer, "read", &[("path", &missing), ("offset", "0")]).await;
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    let r = agent_get(&offer, "browse", &[("path", &missing)]).await;
    assert_eq!(r.status, 404);
    for bad in ["abc", "-5"] {
        let r = agent_get(&offer, "read", &[("path", &stdout), ("offset", bad)]).await;
        assert_eq!(r.status, 400, "offset {bad}");
    }
    // The virtual path, and appended output.
    assert!(d.append_sandbox_file("hello-1", "stdout", b"more\n"));
    let virt = format!("/frameworks/{}/executors/hello-1/runs/latest/stdout", c.fid);
    let r = agent_get(&offer, "read", &[("path", &virt), ("offset", "0")]).await;
    assert_eq!(
        r.body,
        r#"{"data":"echo hello from mesos\nmore\n","offset":0}"#
    );
    assert_eq!(
        d.sandbox_file("hello-1", "stdout").unwrap(),
        b"echo hello from mesos\nmore\n"
    );
    assert!(d.sandbox_file("hello-1", "stderr").is_some());
    assert!(d.sandbox_file("nobody", "stdout").is_none());

    // A task group: the executor's sandbox has its own logs and tasks/<id>.
    let o = next_offer(&d, &mut ev).await;
    let ex = default_executor("gx", &c.fid, exec_resources(true));
    c.ok(group_accept(
        o["id"]["value"].as_str().unwrap(),
        ex,
        vec![group_task("gt-1", "a1", 0.5)],
    ))
    .await;
    updates(&mut ev, &c, 3).await;
    let exec_root = format!("/frameworks/{}/executors/gx/runs/latest", c.fid);
    let r = agent_get(&o, "browse", &[("path", &exec_root)]).await;
    let entries: Value = serde_json::from_str(&r.body).unwrap();
    let names: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["stderr", "stdout", "tasks"]);
    assert_eq!(entries[2]["mode"], "drwxr-xr-x");
    let task_dir = d.sandbox_dir("gt-1").unwrap();
    assert!(task_dir.starts_with("/var/lib/mesos/agent/slaves/a1/frameworks/"));
    assert!(task_dir.contains("/executors/gx/runs/"), "{task_dir}");
    assert!(task_dir.ends_with("/tasks/gt-1"), "{task_dir}");
    let r = agent_get(
        &o,
        "read",
        &[
            ("path", &format!("{exec_root}/tasks/gt-1/stdout")),
            ("offset", "0"),
        ],
    )
    .await;
    assert_eq!(r.body, r#"{"data":"echo gt-1\n","offset":0}"#);
}

// ------------------------------------------------------------ reservations and volumes

fn batch_framework(caps: &[&str]) -> Value {
    let mut call = subscribe_call(caps);
    call["subscribe"]["framework_info"]["roles"] = json!(["batch"]);
    call["subscribe"]["framework_info"]["principal"] = json!("dispatch");
    call
}

fn refined(name: &str, v: f64, principal: &str) -> Value {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": v}, "allocation_info": {"role": "batch"},
        "reservations": [{"type": "DYNAMIC", "role": "batch", "principal": principal,
            "labels": {"labels": [{"key": "owner", "value": "cache"}]}}]})
}

fn volume(id: &str, size: f64) -> Value {
    let mut v = refined("disk", size, "dispatch");
    v["disk"] = json!({"persistence": {"id": id, "principal": "dispatch"},
        "volume": {"container_path": "cache", "mode": "RW"}});
    v
}

fn accept_ops(offer: &Value, ops: Vec<Value>) -> Value {
    json!({"type": "ACCEPT", "accept": {"offer_ids": [offer["id"]],
        "operations": ops, "filters": {"refuse_seconds": 0}}})
}

fn find_resource(offer: &Value, pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| pred(r))
}

#[tokio::test]
async fn reserve_create_launch_destroy_unreserve() {
    let d = MesosDouble::start(fast()).await;
    d.set_task_behavior("w-", TaskBehavior::RunUntilKilled);
    let caps = ["MULTI_ROLE", "PARTITION_AWARE", "RESERVATION_REFINEMENT"];
    let (c, mut ev) = subscribe_with(&d, &batch_framework(&caps)).await;
    d.offer("a1", 4.0, 4096.0, 10000.0).unwrap();
    let offer = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let mut warm = task("w-1", "a1", 1.0, 64.0);
    warm["resources"] = json!([refined("cpus", 1.0, "dispatch"), volume("vol-1", 4096.0)]);
    let ops = vec![
        json!({"type": "RESERVE", "reserve": {"resources": [
            refined("cpus", 1.0, "dispatch"), refined("disk", 4096.0, "dispatch")]}}),
        json!({"type": "CREATE", "create": {"volumes": [volume("vol-1", 4096.0)]}}),
        json!({"type": "LAUNCH", "launch": {"task_infos": [warm]}}),
    ];
    c.ok(accept_ops(&offer, ops)).await;
    let ups = updates(&mut ev, &c, 2).await;
    assert_eq!(states_of(&ups, "w-1"), ["TASK_STARTING", "TASK_RUNNING"]);
    assert!(
        d.rejected_operations().is_empty(),
        "{:?}",
        d.rejected_operations()
    );
    assert_eq!(d.volumes("a1"), ["vol-1"]);
    let reserved = d.reserved("a1");
    assert_eq!(reserved.len(), 2, "{reserved:?}");
    assert!(reserved.iter().all(|r| r["allocation_info"].is_null()));

    // Refused operations are dropped (and recorded).
    let o = next_offer(&d, &mut ev).await;
    assert!(find_resource(&o, |r| !r["reservations"].is_null()).is_none());
    let ops = vec![
        json!({"type": "RESERVE", "reserve": {"resources": [refined("cpus", 1.0, "mallory")]}}),
        json!({"type": "DESTROY", "destroy": {"volumes": [volume("vol-1", 4096.0)]}}),
        json!({"type": "CREATE", "create": {"volumes": [volume("vol-1", 10.0)]}}),
        json!({"type": "UNRESERVE", "unreserve": {"resources": [refined("disk", 10.0, "dispatch")]}}),
    ];
    c.ok(accept_ops(&o, ops)).await;
    let rejected = d.rejected_operations();
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    assert!(rejected[0].starts_with("RESERVE") && rejected[0].contains("principal"));
    assert!(
        rejected[1].contains("in use by task 'w-1'"),
        "{}",
        rejected[1]
    );
    assert!(rejected[2].contains("already in use"), "{}", rejected[2]);
    assert!(rejected[3].contains("DESTROY it first"), "{}", rejected[3]);

    // Once the task is gone the reserved cpus and the volume are offered, exactly.
    c.ok(json!({"type": "KILL", "kill": {"task_id": {"value": "w-1"}}}))
        .await;
    updates(&mut ev, &c, 1).await;
    let o = next_offer(&d, &mut ev).await;
    let cpus = find_resource(&o, |r| r["name"] == "cpus" && !r["reservations"].is_null()).unwrap();
    assert_eq!(cpus, &refined("cpus", 1.0, "dispatch"));
    let vol = find_resource(&o, |r| !r["disk"]["persistence"].is_null()).unwrap();
    assert_eq!(vol, &volume("vol-1", 4096.0));
    // DESTROY then UNRESERVE: back to unreserved resources.
    let ops = vec![
        json!({"type": "DESTROY", "destroy": {"volumes": [volume("vol-1", 4096.0)]}}),
        json!({"type": "UNRESERVE", "unreserve": {"resources": [
            refined("cpus", 1.0, "dispatch"), refined("disk", 4096.0, "dispatch")]}}),
    ];
    c.ok(accept_ops(&o, ops)).await;
    assert_eq!(
        d.rejected_operations().len(),
        4,
        "{:?}",
        d.rejected_operations()
    );
    assert!(d.volumes("a1").is_empty());
    assert!(d.reserved("a1").is_empty());
    let o = next_offer(&d, &mut ev).await;
    assert!(find_resource(&o, |r| !r["reservations"].is_null()).is_none());
    assert!((offered(&o, "cpus") - 4.0).abs() < 1e-9, "{o}");
    assert!((offered(&o, "disk") - 10000.0).abs() < 1e-9, "{o}");
}

#[tokio::test]
async fn reservation_formats_and_role_star() {
    // Without RESERVATION_REFINEMENT: the old `role` + `reservation` format.
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe_with(&d, &batch_framework(&["MULTI_ROLE"])).await;
    d.offer("a1", 2.0, 1024.0, 1000.0).unwrap();
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let old = json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
        "allocation_info": {"role": "batch"}, "role": "batch",
        "reservation": {"principal": "dispatch"}});
    let ops = vec![
        json!({"type": "RESERVE", "reserve": {"resources": [refined("cpus", 1.0, "dispatch")]}}),
        json!({"type": "RESERVE", "reserve": {"resources": [old.clone()]}}),
    ];
    c.ok(accept_ops(&o, ops)).await;
    let rejected = d.rejected_operations();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].contains("RESERVATION_REFINEMENT"));
    let o = next_offer(&d, &mut ev).await;
    assert_eq!(find_resource(&o, |r| r["role"] == "batch").unwrap(), &old);
    drop(ev);

    // Role "*" cannot reserve.
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    d.offer("a1", 2.0, 1024.0, 1000.0).unwrap();
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    let mut star = refined("cpus", 1.0, "dispatch");
    star["allocation_info"] = json!({"role": "*"});
    star["reservations"][0]["role"] = json!("*");
    c.ok(accept_ops(
        &o,
        vec![json!({"type": "RESERVE", "reserve": {"resources": [star]}})],
    ))
    .await;
    assert!(d.rejected_operations()[0].contains("'*'"));
    assert!(d.reserved("a1").is_empty());
}

/// The controls of a double in its own process: agents added over HTTP are offered together
/// at the next allocation cycle (one OFFERS event, as a real master batches them), and the
/// counters say what was sent; bad input is a 400 that says what was wrong.
#[tokio::test]
async fn agents_added_over_http_are_offered_in_one_allocation_cycle_and_counted() {
    let d = MesosDouble::start(Config {
        allocation_interval: Duration::from_millis(50),
        ..fast()
    })
    .await;
    let (_client, mut ev) = subscribe(&d, ALL_CAPS).await;
    let http = reqwest::Client::new();
    let added = http
        .post(format!("{}/double/agents?count=3&cpus=2&mem=1024", d.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 200);
    assert_eq!(added.json::<Value>().await.unwrap(), json!({"agents": 3}));
    let offers = ev.next_of("OFFERS").await;
    let agents: Vec<&str> = offers["offers"]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["agent_id"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(agents.len(), 3, "{offers}");
    for a in ["agent-1", "agent-2", "agent-3"] {
        assert!(agents.contains(&a), "{agents:?}");
    }
    let counters: Value = http
        .get(format!("{}/double/counters", d.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["offers_sent"], 3, "{counters}");
    assert_eq!(counters["events"]["OFFERS"], 1, "{counters}");
    assert_eq!(counters["calls"]["SUBSCRIBE"], 1, "{counters}");
    assert_eq!(counters["tasks_launched"], 0, "{counters}");
    assert_eq!(counters["violations"], 0, "{counters}");

    let bad = http
        .post(format!("{}/double/agents?count=many", d.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("count must be a number"));
}

// ------------------------------------------------------------ operator features

fn roles_framework(roles: &[&str], suppressed: &[&str]) -> Value {
    let mut call = subscribe_call(ALL_CAPS);
    call["subscribe"]["framework_info"]["roles"] = json!(roles);
    call["subscribe"]["suppressed_roles"] = json!(suppressed);
    call
}

fn offer_role(offer: &Value) -> &str {
    offer["allocation_info"]["role"]
        .as_str()
        .unwrap_or_default()
}

/// Maintenance (Mesos docs/maintenance.md): offers of a draining agent carry its
/// unavailability; a framework using the agent gets inverse offers, answered with filters;
/// cancelling rescinds them.
#[tokio::test]
async fn maintenance_unavailability_and_inverse_offers() {
    let d = MesosDouble::start(fast()).await;
    d.set_task_behavior("m-", TaskBehavior::RunUntilKilled);
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let o = d.offer("a1", 4.0, 4096.0, 4096.0).unwrap();
    let offer = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert!(offer["unavailability"].is_null());
    c.ok(launch(&[&o], vec![task("m-1", "a1", 1.0, 64.0)]))
        .await;
    updates(&mut ev, &c, 2).await;
    d.offer("a2", 1.0, 64.0, 64.0).unwrap();
    ev.next_of("OFFERS").await;
    let a2_offer = d.outstanding_offers();

    // a1 is scheduled: a new offer with the unavailability, and an inverse offer.
    let window = mesos_double::Unavailability::from_now(
        Duration::from_secs(3600),
        Some(Duration::from_secs(600)),
    );
    d.schedule_maintenance("a1", window.clone());
    let e = ev.next_of("INVERSE_OFFERS").await;
    let inverse = e["inverse_offers"]["inverse_offers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(inverse.len(), 1, "{e}");
    assert_eq!(inverse[0]["agent_id"]["value"], "a1");
    assert_eq!(
        inverse[0]["unavailability"]["start"]["nanoseconds"],
        window.start_ns
    );
    assert_eq!(
        inverse[0]["unavailability"]["duration"]["nanoseconds"],
        600_000_000_000i64
    );
    // a1's free resources come back (once the launch's 1 s filter is over), tagged.
    let tagged = loop {
        let e = ev.next_of("OFFERS").await;
        let o = e["offers"]["offers"][0].clone();
        if o["agent_id"]["value"] == "a1" {
            break o;
        }
    };
    assert_eq!(
        tagged["unavailability"], inverse[0]["unavailability"],
        "{tagged}"
    );
    // a2 is scheduled too, but nothing of ours runs there: only its offer is tagged again.
    d.schedule_maintenance("a2", window.clone());
    let e = ev.next_of("RESCIND").await;
    assert_eq!(e["rescind"]["offer_id"]["value"], a2_offer[0].as_str());
    let e = ev.next_of("OFFERS").await;
    assert!(!e["offers"]["offers"][0]["unavailability"].is_null(), "{e}");
    assert_eq!(d.outstanding_inverse_offers().len(), 2, "an offer is a use");

    // Accept with a short filter: recorded; asked again once it expires.
    let id = inverse[0]["id"].clone();
    c.ok(
        json!({"type": "ACCEPT_INVERSE_OFFERS", "accept_inverse_offers": {
        "inverse_offer_ids": [id], "filters": {"refuse_seconds": 0.3}}}),
    )
    .await;
    let r = d.inverse_offer_responses();
    assert_eq!(r.len(), 1);
    assert!(r[0].accepted && r[0].agent_id == "a1");
    let again = loop {
        let e = ev.next_of("INVERSE_OFFERS").await;
        let io = e["inverse_offers"]["inverse_offers"][0].clone();
        if io["agent_id"]["value"] == "a1" && io["id"] != id {
            break io;
        }
    };
    // Decline; an unknown ID is recorded as a mistake.
    c.ok(json!({"type": "DECLINE_INVERSE_OFFERS", "decline_inverse_offers": {
        "inverse_offer_ids": [again["id"], {"value": "nope"}], "filters": {"refuse_seconds": 3600}}}))
        .await;
    let r = d.inverse_offer_responses();
    assert!(!r[1].accepted && r[1].refuse_seconds == Some(3600.0));
    assert!(
        d.violations()
            .iter()
            .any(|v| v.contains("unknown inverse offer nope")),
        "{:?}",
        d.violations()
    );
    // Cancelling a2's maintenance rescinds its inverse offer.
    let (a2_inverse, _) = d
        .outstanding_inverse_offers()
        .into_iter()
        .find(|(_, a)| a == "a2")
        .unwrap();
    d.cancel_maintenance("a2");
    let e = ev.next_of("RESCIND_INVERSE_OFFER").await;
    assert_eq!(
        e["rescind_inverse_offer"]["inverse_offer_id"]["value"],
        a2_inverse.as_str()
    );
}

/// DRAIN_AGENT: no more offers of the agent, its tasks killed by the agent with
/// REASON_AGENT_DRAINING: TASK_GONE_BY_OPERATOR when it is marked gone, else TASK_KILLED.
#[tokio::test]
async fn draining_kills_tasks_and_deactivates_the_agent() {
    let d = MesosDouble::start(fast()).await;
    d.set_task_behavior("d-", TaskBehavior::RunUntilKilled);
    let (c, mut ev) = subscribe(&d, ALL_CAPS).await;
    let o1 = d.offer("a1", 4.0, 4096.0, 4096.0).unwrap();
    let o2 = d.offer("a2", 4.0, 4096.0, 4096.0).unwrap();
    c.ok(launch(
        &[&o1],
        vec![task("d-1", "a1", 1.0, 64.0), task("d-2", "a1", 1.0, 64.0)],
    ))
    .await;
    c.ok(launch(&[&o2], vec![task("d-3", "a2", 1.0, 64.0)]))
        .await;
    updates(&mut ev, &c, 6).await;
    d.reoffer();
    ev.next_of("OFFERS").await;

    d.drain_agent("a1", true);
    let ups = updates(&mut ev, &c, 4).await;
    for t in ["d-1", "d-2"] {
        assert_eq!(
            states_of(&ups, t),
            ["TASK_KILLING", "TASK_GONE_BY_OPERATOR"],
            "{ups:?}"
        );
    }
    assert!(ups
        .iter()
        .all(|u| u["reason"] == "REASON_AGENT_DRAINING" && u["uuid"].is_string()));
    assert!(
        d.outstanding_offer_roles().is_empty()
            || !outstanding(&d)
                .iter()
                .any(|o| o["agent_id"]["value"] == "a1"),
        "a1's offers rescinded"
    );
    assert!(
        d.offer("a1", 1.0, 1.0, 1.0).is_none(),
        "a drained agent offers nothing"
    );
    // Reconciliation of a task it does not know there: gone by operator.
    c.ok(json!({"type": "RECONCILE", "reconcile": {"tasks": [
        {"task_id": {"value": "d-9"}, "agent_id": {"value": "a1"}}]}}))
        .await;
    let e = ev.next_of("UPDATE").await;
    assert_eq!(status(&e)["state"], "TASK_GONE_BY_OPERATOR", "{e}");

    // Drained without being marked gone: TASK_KILLED; reactivated, it offers again.
    d.drain_agent("a2", false);
    let ups = updates(&mut ev, &c, 2).await;
    assert_eq!(states_of(&ups, "d-3"), ["TASK_KILLING", "TASK_KILLED"]);
    assert!(ups.iter().all(|u| u["reason"] == "REASON_AGENT_DRAINING"));
    d.reactivate_agent("a2");
    let e = ev.next_of("OFFERS").await;
    assert_eq!(e["offers"]["offers"][0]["agent_id"]["value"], "a2");
    d.reactivate_agent("a1");
    assert!(d.offer("a1", 1.0, 1.0, 1.0).is_none(), "gone stays gone");
}

/// Per-role SUPPRESS / REVIVE of a MULTI_ROLE framework: one offer per role, unreserved
/// resources to the first role that may have them.
#[tokio::test]
async fn per_role_suppress_and_revive() {
    let d = MesosDouble::start(fast()).await;
    let (c, mut ev) = subscribe_with(&d, &roles_framework(&["a", "b"], &["b"])).await;
    assert_eq!(d.suppressed_roles(), ["b"]);
    d.offer("x1", 2.0, 256.0, 256.0).unwrap();
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_eq!(offer_role(&o), "a");
    assert!(o["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["allocation_info"]["role"] == "a"));
    // Suppress a: its outstanding offer stays; declined, the resources go nowhere.
    c.ok(json!({"type": "SUPPRESS", "suppress": {"roles": ["a"]}}))
        .await;
    assert!(d.suppressed());
    assert_eq!(d.outstanding_offers().len(), 1);
    c.ok(
        json!({"type": "DECLINE", "decline": {"offer_ids": [o["id"]],
        "filters": {"refuse_seconds": 3600}}}),
    )
    .await;
    assert!(d.offer("x1", 1.0, 0.0, 0.0).is_none());
    // Revive b only: b gets everything (a's decline filter does not apply to b).
    c.ok(json!({"type": "REVIVE", "revive": {"roles": ["b"]}}))
        .await;
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_eq!(offer_role(&o), "b");
    assert!((offered(&o, "cpus") - 3.0).abs() < 1e-9, "{o}");
    assert_eq!(d.suppressed_roles(), ["a"]);
    // A role the framework does not have is ignored and recorded.
    c.ok(json!({"type": "REVIVE", "revive": {"roles": ["zz"]}}))
        .await;
    assert!(d
        .violations()
        .iter()
        .any(|v| v.contains("\"zz\" the framework is not subscribed to")));
}

/// UPDATE_FRAMEWORK (Mesos docs/scheduler-http-api.md): 200, same stream, no partial update;
/// removed roles lose their offers, suppressed roles come from the call; user, principal and
/// checkpoint cannot change. SUBSCRIBE refuses suppressed roles it does not have.
#[tokio::test]
async fn update_framework_changes_roles_without_resubscribing() {
    let d = MesosDouble::start(fast()).await;
    // A SUBSCRIBE suppressing a role it does not have: 200 + ERROR.
    let (mut ev, _) = open_stream(&d, &roles_framework(&["a"], &["zz"])).await;
    let e = ev.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("are not contained in the set of roles"),
        "{e}"
    );
    let (c, mut ev) = subscribe_with(&d, &roles_framework(&["a"], &[])).await;
    d.offer("x1", 2.0, 256.0, 256.0).unwrap();
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_eq!(offer_role(&o), "a");
    let mut info = d.framework_info().unwrap();
    info["id"] = json!({ "value": c.fid });
    let update = |info: &Value, suppressed: &[&str]| {
        json!({"type": "UPDATE_FRAMEWORK", "update_framework": {
            "framework_info": info, "suppressed_roles": suppressed}})
    };
    // Refused: another ID, a principal or checkpoint change, a suppressed role it lacks.
    let mut other = info.clone();
    other["id"] = json!({"value": "other"});
    let r = c.call(update(&other, &[])).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r
        .body
        .contains("differs from 'update_framework.framework_info.id'"));
    let mut bad = info.clone();
    bad["principal"] = json!("mallory");
    let r = c.call(update(&bad, &[])).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("Updating 'FrameworkInfo.principal' is unsupported"),
        "{}",
        r.body
    );
    let mut bad = info.clone();
    bad["checkpoint"] = json!(false);
    assert_eq!(c.call(update(&bad, &[])).await.status, 400);
    let r = c.call(update(&info, &["b"])).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("not contained in the set of roles"),
        "{}",
        r.body
    );
    assert_eq!(d.framework_updates(), 0);

    // Roles a -> b, c with c suppressed, a longer failover timeout and a new capability.
    let mut new = info.clone();
    new["roles"] = json!(["b", "c"]);
    new["failover_timeout"] = json!(7200.0);
    new["capabilities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "GPU_RESOURCES"}));
    let stream = d.stream_id();
    let r = c.call(update(&new, &["c"])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "");
    assert_eq!(d.framework_updates(), 1);
    assert_eq!(d.stream_id(), stream, "the same subscription");
    let e = ev.next_of("RESCIND").await;
    assert_eq!(e["rescind"]["offer_id"], o["id"]);
    let o = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    assert_eq!(offer_role(&o), "b");
    assert_eq!(d.suppressed_roles(), ["c"]);
    let now = d.framework_info().unwrap();
    assert_eq!(now["failover_timeout"], 7200.0);
    assert!(
        !d.events().iter().skip(2).any(|e| e["type"] == "SUBSCRIBED"),
        "no re-registration"
    );
}

fn reserve_op(id: Option<&str>, principal: &str) -> Value {
    let mut op =
        json!({"type": "RESERVE", "reserve": {"resources": [refined("cpus", 1.0, principal)]}});
    if let Some(id) = id {
        op["id"] = json!({ "value": id });
    }
    op
}

/// Operation feedback: OPERATION_FINISHED (reliable, uuid, converted resources),
/// OPERATION_ERROR from the master (no uuid), OPERATION_FAILED from the agent, acknowledged
/// with ACKNOWLEDGE_OPERATION_STATUS (agent_id required), reconciled with
/// RECONCILE_OPERATIONS; launches take no operation ID.
#[tokio::test]
async fn operation_feedback_for_reservations() {
    let d = MesosDouble::start(fast()).await;
    let caps = ["MULTI_ROLE", "PARTITION_AWARE", "RESERVATION_REFINEMENT"];
    let (c, mut ev) = subscribe_with(&d, &batch_framework(&caps)).await;
    d.offer("a1", 4.0, 4096.0, 10000.0).unwrap();
    let offer = ev.next_of("OFFERS").await["offers"]["offers"][0].clone();
    c.ok(accept_ops(
        &offer,
        vec![reserve_op(Some("op-1"), "dispatch")],
    ))
    .await;
    let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
    let st = e["update_operation_status"]["status"].clone();
    assert_eq!(st["operation_id"]["value"], "op-1");
    assert_eq!(st["state"], "OPERATION_FINISHED");
    assert_eq!(st["agent_id"]["value"], "a1");
    assert_eq!(
        st["converted_resources"][0],
        refined("cpus", 1.0, "dispatch")
    );
    let uuid = st["uuid"]["value"].as_str().unwrap().to_string();
    // Not acknowledged: sent again.
    let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
    assert_eq!(
        e["update_operation_status"]["status"]["uuid"]["value"],
        uuid.as_str()
    );
    // The master wants the agent ID.
    let r = c
        .call(
            json!({"type": "ACKNOWLEDGE_OPERATION_STATUS", "acknowledge_operation_status": {
            "operation_id": {"value": "op-1"}, "uuid": uuid}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    c.ok(
        json!({"type": "ACKNOWLEDGE_OPERATION_STATUS", "acknowledge_operation_status": {
        "agent_id": {"value": "a1"}, "operation_id": {"value": "op-1"}, "uuid": uuid}}),
    )
    .await;
    assert!(d.operation_acks()[0].matched);
    assert!(d.unacked_operations().is_empty());

    // Refused by the master (the principal is not ours): OPERATION_ERROR, no uuid.
    let o = next_offer(&d, &mut ev).await;
    c.ok(accept_ops(&o, vec![reserve_op(Some("op-2"), "mallory")]))
        .await;
    let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
    let st = &e["update_operation_status"]["status"];
    assert_eq!(st["state"], "OPERATION_ERROR", "{e}");
    assert!(st["uuid"].is_null());
    assert!(st["message"].as_str().unwrap().contains("principal"), "{e}");
    // Failed on the agent: OPERATION_FAILED, reliable.
    d.fail_operations("a1", true);
    let o = next_offer(&d, &mut ev).await;
    c.ok(accept_ops(&o, vec![reserve_op(Some("op-3"), "dispatch")]))
        .await;
    let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
    let st = &e["update_operation_status"]["status"];
    assert_eq!(st["state"], "OPERATION_FAILED", "{e}");
    assert!(st["uuid"]["value"].is_string());
    assert_eq!(d.unacked_operations(), ["op-3"]);
    // An ID still awaiting its acknowledgement cannot be reused.
    d.fail_operations("a1", false);
    let o = next_offer(&d, &mut ev).await;
    c.ok(accept_ops(&o, vec![reserve_op(Some("op-3"), "dispatch")]))
        .await;
    let e = loop {
        let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
        if e["update_operation_status"]["status"]["state"] == "OPERATION_ERROR" {
            break e;
        }
    };
    assert!(e.to_string().contains("already in use"), "{e}");
    // A launch with an operation ID: its tasks are refused.
    let o = next_offer(&d, &mut ev).await;
    let mut op = json!({"type": "LAUNCH", "id": {"value": "op-4"},
        "launch": {"task_infos": [task("t-1", "a1", 0.5, 32.0)]}});
    op["launch"]["task_infos"][0]["resources"][0]["allocation_info"]["role"] = json!("batch");
    op["launch"]["task_infos"][0]["resources"][1]["allocation_info"]["role"] = json!("batch");
    c.ok(accept_ops(&o, vec![op])).await;
    let e = ev.next_of("UPDATE").await;
    assert_eq!(status(&e)["state"], "TASK_ERROR", "{e}");
    // Reconciliation: the latest state without uuid; unknown IDs are OPERATION_UNKNOWN.
    c.ok(
        json!({"type": "RECONCILE_OPERATIONS", "reconcile_operations": {"operations": [
        {"operation_id": {"value": "op-1"}, "agent_id": {"value": "a1"}},
        {"operation_id": {"value": "op-x"}, "agent_id": {"value": "a1"}}]}}),
    )
    .await;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let e = ev.next_of("UPDATE_OPERATION_STATUS").await;
        let st = e["update_operation_status"]["status"].clone();
        if st["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Reconciliation"))
        {
            answers.push(st);
        }
    }
    assert_eq!(answers[0]["state"], "OPERATION_FINISHED");
    assert!(answers[0]["uuid"].is_null());
    assert_eq!(answers[1]["state"], "OPERATION_UNKNOWN");
}
