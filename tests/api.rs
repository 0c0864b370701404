//! The Nomad-compatible HTTP API as a client sees it: real server on loopback, real HTTP.
//! The tests that go through the store run twice: on SQLite in the data dir (`sqlite::`)
//! and on PostgreSQL (`postgres::`, a fresh database on a throwaway cluster this test binary
//! shares).

#[path = "common/postgres.rs"]
mod pg;

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Where a test server keeps its state.
#[derive(Debug, Clone, Copy)]
enum Store {
    /// SQLite in its data dir.
    Sqlite,
    /// A fresh database on the shared PostgreSQL cluster.
    Postgres,
}

/// Each test, once per store: `sqlite::<test>` and `postgres::<test>`.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::Store::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(super::Store::Postgres).await
                }
            )*
        }
    };
}

on_both_stores!(
    dispatch_creates_a_child_with_merged_meta_and_nomads_id_format,
    payloads_follow_the_parameterized_rules_and_round_trip,
    rejected_dispatches_say_why_and_store_nothing,
    idempotency_tokens_give_exactly_one_child_even_under_concurrency,
    stopping_a_parent_stops_its_queued_children_and_purge_removes_them,
    register_checks_the_job,
    blocking_queries_wait_for_a_change,
    event_stream_filters_by_topic_and_resumes_by_index,
);

/// A server running in this process on a free loopback port, with its own data dir.
struct Api {
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(store: Store) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = match store {
            Store::Sqlite => None,
            Store::Postgres => {
                let url = tokio::task::spawn_blocking(pg::fresh_database)
                    .await
                    .unwrap();
                Some(dispatch::server::SharedStore {
                    target: dispatch::store::PgTarget::parse(&url, None).unwrap(),
                    lease: dispatch::leadership::DEFAULT_LEASE,
                })
            }
        };
        let shared = store.is_some();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let data = dir.path().to_path_buf();
        tokio::spawn(async move {
            let config = dispatch::server::ServerConfig {
                bind: listener.local_addr().unwrap(),
                data_dir: data,
                local: dispatch::server::LocalOptions {
                    // Nothing in these tests should run: no cpus to offer.
                    cpus: Some(0.0),
                    ..Default::default()
                },
                statsd_addr: None,
                mesos: None,
                gc: Default::default(),
                fetch_bind: None,
                tls: None,
                conn_limits: Default::default(),
                drivers: dispatch::model::drivers::DriverPolicy::all(),
                backpressure: Default::default(),
                open: false,
                acl: false,
                acl_bootstrap_secret: None,
                acl_bootstrap_reload: None,
                clock: dispatch::clock::Clock::system(),
                mesos_updates: None,
                store,
                advertise: None,
                ui: Default::default(),
            };
            dispatch::server::serve(listener, config, std::future::pending())
                .await
                .unwrap();
        });
        let api = Api {
            url,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        api.wait_loaded().await;
        if shared {
            // alone on its database, it leads once it has taken the lease, and then starts
            // its backend
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let agent = match api
                    .http
                    .get(format!("{}/v1/agent/self", api.url))
                    .send()
                    .await
                {
                    Ok(r) => r.json::<Value>().await.ok(),
                    Err(_) => None,
                };
                if agent.is_some_and(|a| {
                    a["Role"] == "leader" && a["config"]["Dispatch"]["Capabilities"].is_object()
                }) {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the server did not lead its database within 20 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        api
    }

    /// The server answers from the start, 503 until its state is loaded.
    async fn wait_loaded(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let health = self
                .http
                .get(format!("{}/v1/agent/health", self.url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not finish loading"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self.call(method, path, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Expect an error status and return the plain-text message.
    async fn err(&self, method: &str, path: &str, body: Option<Value>, want: StatusCode) -> String {
        let (status, text) = self.call(method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {text}");
        text
    }

    async fn register_transcode(&self) {
        self.ok("PUT", "/v1/jobs", Some(transcode_job("optional")))
            .await;
    }

    async fn dispatch(&self, job: &str, body: Value) -> Value {
        self.ok("POST", &format!("/v1/job/{job}/dispatch"), Some(body))
            .await
    }

    async fn children(&self, job: &str) -> Value {
        self.ok("GET", &format!("/v1/job/{job}/summary"), None)
            .await["Children"]
            .clone()
    }
}

/// A GET written on its own connection, read later: whether (and what) it was answered can
/// be checked at any point.
struct RawGet {
    stream: tokio::net::TcpStream,
}

impl RawGet {
    async fn send(url: &str, path: &str) -> RawGet {
        use tokio::io::AsyncWriteExt;
        let addr = url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        RawGet { stream }
    }

    /// No byte of an answer has arrived.
    fn silent(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// The answer's `X-Nomad-Index` and JSON body (status 200).
    async fn answer(mut self) -> (u64, Value) {
        use tokio::io::AsyncReadExt;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut raw))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let index = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-nomad-index")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("X-Nomad-Index");
        (index, serde_json::from_str(body).unwrap())
    }
}

fn transcode_job(payload: &str) -> Value {
    json!({"Job": {
        "ID": "transcode", "Type": "batch",
        "Meta": {"input": "", "profile": "small"},
        "ParameterizedJob": {"Payload": payload, "MetaRequired": ["input"], "MetaOptional": ["profile"]},
        "TaskGroups": [{"Name": "tc", "Tasks": [{
            "Name": "tc", "Driver": "exec",
            "Config": {"command": "transcode.sh", "args": ["${NOMAD_META_input}", "${NOMAD_META_profile}"]},
            "Env": {"S3_BUCKET": ""},
            "Resources": {"CPU": 1000, "MemoryMB": 256}
        }]}]
    }})
}

fn is_child_id(id: &str, parent: &str, prefix: Option<&str>) -> bool {
    let Some(rest) = id.strip_prefix(&format!("{parent}/dispatch-")) else {
        return false;
    };
    let rest = match prefix {
        Some(p) => match rest.strip_prefix(&format!("{p}-")) {
            Some(r) => r,
            None => return false,
        },
        None => rest,
    };
    let Some((unix, hex)) = rest.split_once('-') else {
        return false;
    };
    unix.parse::<u64>().is_ok()
        && hex.len() == 8
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

async fn dispatch_creates_a_child_with_merged_meta_and_nomads_id_format(store: Store) {
    let api = Api::start(store).await;
    let reg = api
        .ok("PUT", "/v1/jobs", Some(transcode_job("optional")))
        .await;
    assert_eq!(
        reg["EvalID"], "",
        "registering a parameterized job creates no evaluation"
    );

    let reply = api
        .dispatch("transcode", json!({"Meta": {"input": "a.mp4"}}))
        .await;
    let child = reply["DispatchedJobID"].as_str().unwrap();
    assert!(is_child_id(child, "transcode", None), "{child}");
    assert_eq!(reply["EvalID"].as_str().unwrap().len(), 36);

    // Python-style unescaped path and Go-style escaped path name the same child.
    let job = api.ok("GET", &format!("/v1/job/{child}"), None).await;
    let escaped = child.replace('/', "%2F");
    let same = api.ok("GET", &format!("/v1/job/{escaped}"), None).await;
    // (The scheduler may note in between that no agent offers cpus: compare identity.)
    for field in ["ID", "SubmitTime", "Meta", "TaskGroups", "CreateIndex"] {
        assert_eq!(job[field], same[field], "{field}");
    }
    assert_eq!(job["ID"], child);
    assert_eq!(job["Name"], child);
    assert_eq!(job["ParentID"], "transcode");
    assert_eq!(job["Dispatched"], true);
    assert_eq!(job["Status"], "pending");
    assert_eq!(job["Meta"], json!({"input": "a.mp4", "profile": "small"}));
    assert_eq!(job["Priority"], 50);
    // Runtime interpolations reach the child untouched, for the renderer.
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["args"],
        json!(["${NOMAD_META_input}", "${NOMAD_META_profile}"])
    );

    let prefixed = api
        .dispatch("transcode", json!({"Meta": {"input": "b", "profile": "large"}, "IdPrefixTemplate": "cust42", "Priority": 70}))
        .await;
    let id = prefixed["DispatchedJobID"].as_str().unwrap();
    assert!(is_child_id(id, "transcode", Some("cust42")), "{id}");
    let job = api.ok("GET", &format!("/v1/job/{id}"), None).await;
    assert_eq!(job["Priority"], 70);
    assert_eq!(job["Meta"]["profile"], "large");

    // Sub-resources work on child IDs too.
    let summary = api.ok("GET", &format!("/v1/job/{id}/summary"), None).await;
    assert_eq!(summary["JobID"], id);
    assert_eq!(summary["Summary"]["tc"]["Queued"], 1);
    let evals = api
        .ok("GET", &format!("/v1/job/{id}/evaluations"), None)
        .await;
    assert_eq!(evals[0]["ID"], prefixed["EvalID"]);
    assert_eq!(evals[0]["JobID"], id);
    let eval = api
        .ok(
            "GET",
            &format!("/v1/evaluation/{}", prefixed["EvalID"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(eval["TriggeredBy"], "job-register");
    assert_eq!(eval["QueuedAllocations"]["tc"], 1);
    assert_eq!(
        api.ok("GET", &format!("/v1/job/{id}/allocations"), None)
            .await,
        json!([])
    );
    assert_eq!(
        api.ok("GET", "/v1/job/transcode/evaluations", None).await,
        json!([])
    );

    assert_eq!(
        api.children("transcode").await,
        json!({"Pending": 2, "Running": 0, "Dead": 0})
    );
    let list = api.ok("GET", "/v1/jobs?prefix=transcode", None).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], "transcode");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by ID: {ids:?}");
    assert_eq!(list[0]["ParameterizedJob"], true);
    assert_eq!(list[0]["JobSummary"]["Children"]["Pending"], 2);
    assert_eq!(list[1]["ParentID"], "transcode");
    let children = api.ok("GET", "/v1/jobs?prefix=transcode/", None).await;
    assert_eq!(children.as_array().unwrap().len(), 2);
}

async fn payloads_follow_the_parameterized_rules_and_round_trip(store: Store) {
    let api = Api::start(store).await;
    api.register_transcode().await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let reply = api
        .dispatch(
            "transcode",
            json!({"Meta": {"input": "x"}, "Payload": b64.encode(b"{\"crop\":\"16:9\"}")}),
        )
        .await;
    let child = reply["DispatchedJobID"].as_str().unwrap();
    let job = api.ok("GET", &format!("/v1/job/{child}"), None).await;
    assert_eq!(
        b64.decode(job["Payload"].as_str().unwrap()).unwrap(),
        b"{\"crop\":\"16:9\"}"
    );

    // Exactly 16 KiB is allowed; one byte more is not.
    let max = vec![b'a'; 16384];
    api.dispatch(
        "transcode",
        json!({"Meta": {"input": "x"}, "Payload": b64.encode(&max)}),
    )
    .await;
    let too_big = vec![b'a'; 16385];
    let msg = api
        .err(
            "POST",
            "/v1/job/transcode/dispatch",
            Some(json!({"Meta": {"input": "x"}, "Payload": b64.encode(&too_big)})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(msg, "Payload exceeds maximum size; 16385 > 16384");

    // The raw variant stores the body bytes as the payload.
    api.ok("PUT", "/v1/jobs", Some(json!({"Job": {"ID": "raw", "Type": "batch", "ParameterizedJob": {"Payload": "required"},
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "exec", "Config": {"command": "cat"}}]}]}}))).await;
    let resp = api
        .http
        .post(format!("{}/v1/job/raw/dispatch/payload", api.url))
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let reply: Value = resp.json().await.unwrap();
    let job = api
        .ok(
            "GET",
            &format!("/v1/job/{}", reply["DispatchedJobID"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        b64.decode(job["Payload"].as_str().unwrap()).unwrap(),
        vec![0u8, 1, 2, 255]
    );
    let msg = api
        .err(
            "POST",
            "/v1/job/raw/dispatch",
            Some(json!({})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        msg,
        "Payload is not provided but required by parameterized job"
    );
    let msg = api
        .err(
            "POST",
            "/v1/job/raw/dispatch",
            Some(json!({"Payload": ""})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        msg, "Payload is not provided but required by parameterized job",
        "empty counts as not provided"
    );

    api.ok("PUT", "/v1/jobs", Some(json!({"Job": {"ID": "nopayload", "Type": "batch", "ParameterizedJob": {"Payload": "forbidden"},
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "exec", "Config": {"command": "true"}}]}]}}))).await;
    let msg = api
        .err(
            "POST",
            "/v1/job/nopayload/dispatch",
            Some(json!({"Payload": b64.encode(b"x")})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(msg, "Payload provided but forbidden by parameterized job");
}

async fn rejected_dispatches_say_why_and_store_nothing(store: Store) {
    let api = Api::start(store).await;
    api.register_transcode().await;
    api.ok("PUT", "/v1/jobs", Some(json!({"Job": {"ID": "plain", "Type": "batch",
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "exec", "Config": {"command": "true"}}]}]}}))).await;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "transcode",
            json!({"Meta": {}}),
            StatusCode::BAD_REQUEST,
            "Dispatch did not provide required meta keys: [input]",
        ),
        (
            "transcode",
            json!({"Meta": {"input": "a", "foo": "1"}}),
            StatusCode::BAD_REQUEST,
            "Dispatch request included unpermitted metadata keys: [foo]",
        ),
        (
            "transcode",
            json!({"Meta": {"input": "a"}, "Priority": 101}),
            StatusCode::BAD_REQUEST,
            "dispatch job priority must be between [1, 100]",
        ),
        (
            "transcode",
            json!({"Meta": {"input": "a"}, "Priority": -1}),
            StatusCode::BAD_REQUEST,
            "dispatch job priority must be between [1, 100]",
        ),
        (
            "nope",
            json!({"Meta": {"input": "a"}}),
            StatusCode::NOT_FOUND,
            "parameterized job not found",
        ),
        (
            "plain",
            json!({}),
            StatusCode::BAD_REQUEST,
            "Specified job \"plain\" is not a parameterized job",
        ),
        (
            "transcode",
            json!({"Meta": {"input": 1}}),
            StatusCode::BAD_REQUEST,
            "Meta[\"input\"] must be a string, got 1; dispatch meta values are strings",
        ),
        (
            "transcode",
            json!({"Meta": {"input": "a"}, "Payload": "%%%"}),
            StatusCode::BAD_REQUEST,
            "Payload must be standard base64 with padding",
        ),
        (
            "transcode",
            json!({"JobID": "other", "Meta": {"input": "a"}}),
            StatusCode::BAD_REQUEST,
            "Job ID does not match",
        ),
        (
            "transcode",
            json!([1, 2]),
            StatusCode::BAD_REQUEST,
            "Dispatch request must be a JSON object",
        ),
    ];
    for (job, body, status, want) in cases {
        let msg = api
            .err(
                "POST",
                &format!("/v1/job/{job}/dispatch"),
                Some(body.clone()),
                status,
            )
            .await;
        assert!(
            msg.starts_with(want),
            "body {body}: got {msg:?}, want {want:?}"
        );
    }
    let resp = api
        .http
        .post(format!("{}/v1/job/transcode/dispatch", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.text().await.unwrap(), "Request body is empty");
    let resp = api
        .http
        .post(format!("{}/v1/job/transcode/dispatch", api.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .starts_with("Failed to parse request body as JSON"));
    let msg = api
        .err(
            "GET",
            "/v1/job/transcode/dispatch",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        )
        .await;
    assert_eq!(msg, "Invalid method");

    // A child is not a parameterized job.
    let child = api
        .dispatch("transcode", json!({"Meta": {"input": "a"}}))
        .await;
    let child = child["DispatchedJobID"].as_str().unwrap().to_string();
    let msg = api
        .err(
            "POST",
            &format!("/v1/job/{child}/dispatch"),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        msg,
        format!("Specified job {child:?} is not a parameterized job")
    );

    // Only the one valid dispatch was stored.
    assert_eq!(
        api.children("transcode").await,
        json!({"Pending": 1, "Running": 0, "Dead": 0})
    );
    assert_eq!(
        api.ok("GET", "/v1/jobs?prefix=transcode/", None)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn idempotency_tokens_give_exactly_one_child_even_under_concurrency(store: Store) {
    let api = Api::start(store).await;
    api.register_transcode().await;
    let first = api
        .ok(
            "POST",
            "/v1/job/transcode/dispatch?idempotency_token=upload-1",
            Some(json!({"Meta": {"input": "a"}})),
        )
        .await;
    let again = api
        .ok(
            "POST",
            "/v1/job/transcode/dispatch?idempotency_token=upload-1",
            Some(json!({"Meta": {"input": "a"}})),
        )
        .await;
    assert_eq!(again["DispatchedJobID"], first["DispatchedJobID"]);
    assert_eq!(again["EvalID"], "", "a repeat creates no evaluation");
    // Body spellings: Nomad's IdempotencyToken and python-nomad's idempotency_token.
    let a = api
        .dispatch(
            "transcode",
            json!({"Meta": {"input": "a"}, "IdempotencyToken": "body-1"}),
        )
        .await;
    let b = api
        .dispatch(
            "transcode",
            json!({"Meta": {"input": "a"}, "idempotency_token": "body-1"}),
        )
        .await;
    assert_eq!(a["DispatchedJobID"], b["DispatchedJobID"]);
    let child = api
        .ok(
            "GET",
            &format!("/v1/job/{}", a["DispatchedJobID"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(child["DispatchIdempotencyToken"], "body-1");

    // 64 concurrent requests with one token: one child, every caller gets its ID.
    let mut handles = Vec::new();
    for _ in 0..64 {
        let http = api.http.clone();
        let url = format!(
            "{}/v1/job/transcode/dispatch?idempotency_token=race",
            api.url
        );
        handles.push(tokio::spawn(async move {
            let resp = http
                .put(url)
                .json(&json!({"Meta": {"input": "r"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()["DispatchedJobID"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all callers got the same child: {ids:?}");
    assert_eq!(api.children("transcode").await["Pending"], 3);
}

async fn stopping_a_parent_stops_its_queued_children_and_purge_removes_them(store: Store) {
    let api = Api::start(store).await;
    api.register_transcode().await;
    for i in 0..3 {
        api.dispatch("transcode", json!({"Meta": {"input": format!("{i}")}}))
            .await;
    }
    let reply = api.ok("DELETE", "/v1/job/transcode", None).await;
    assert_eq!(reply["EvalID"], "");
    let job = api.ok("GET", "/v1/job/transcode", None).await;
    assert_eq!(job["Stop"], true);
    assert_eq!(job["Status"], "dead");
    assert_eq!(
        api.children("transcode").await,
        json!({"Pending": 0, "Running": 0, "Dead": 3})
    );
    for stub in api
        .ok("GET", "/v1/jobs?prefix=transcode/", None)
        .await
        .as_array()
        .unwrap()
    {
        assert_eq!(stub["Status"], "dead");
    }
    let msg = api
        .err(
            "POST",
            "/v1/job/transcode/dispatch",
            Some(json!({"Meta": {"input": "a"}})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(msg, "Specified job \"transcode\" is stopped");

    // Registering again starts it again; purge removes the job and every child.
    api.register_transcode().await;
    api.dispatch("transcode", json!({"Meta": {"input": "again"}}))
        .await;
    assert_eq!(api.ok("GET", "/v1/job/transcode", None).await["Version"], 1);
    api.ok("DELETE", "/v1/job/transcode?purge=true", None).await;
    assert_eq!(
        api.err("GET", "/v1/job/transcode", None, StatusCode::NOT_FOUND)
            .await,
        "job not found"
    );
    assert_eq!(api.ok("GET", "/v1/jobs", None).await, json!([]));
    // Deleting an unknown job is a no-op, as in Nomad.
    api.ok("DELETE", "/v1/job/unknown", None).await;
    let msg = api
        .err(
            "DELETE",
            "/v1/job/x?purge=maybe",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        msg.starts_with("Failed to parse value of \"purge\""),
        "{msg}"
    );
}

async fn register_checks_the_job(store: Store) {
    let api = Api::start(store).await;
    let msg = api
        .err("PUT", "/v1/jobs", Some(json!({})), StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(msg, "Job must be specified");
    let msg = api
        .err(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": {"Type": "batch"}})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(msg, "Job ID hasn't been provided");
    let msg = api
        .err(
            "POST",
            "/v1/job/other",
            Some(transcode_job("optional")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(msg, "Job ID does not match name");
    let msg = api
        .err(
            "PUT",
            "/v1/jobs",
            Some(json!({"Job": {"ID": "x", "Priority": "high"}})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        msg.starts_with("Job.Priority: invalid type: string \"high\""),
        "{msg}"
    );
    let mut service = transcode_job("optional");
    service["Job"]["Type"] = json!("service");
    let msg = api
        .err("PUT", "/v1/jobs", Some(service), StatusCode::BAD_REQUEST)
        .await;
    assert!(
        msg.contains("Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler"),
        "{msg}"
    );
    let msg = api
        .err(
            "PUT",
            "/v1/jobs",
            Some(transcode_job("sometimes")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        msg.contains("Unknown payload requirement: \"sometimes\""),
        "{msg}"
    );
    assert_eq!(
        api.ok("GET", "/v1/jobs", None).await,
        json!([]),
        "nothing half-stored"
    );

    // POST /v1/job/<id> registers too; the parameterized flag cannot flip.
    api.ok("POST", "/v1/job/transcode", Some(transcode_job("optional")))
        .await;
    let mut flipped = transcode_job("optional");
    flipped["Job"]["ParameterizedJob"] = Value::Null;
    let msg = api
        .err("PUT", "/v1/jobs", Some(flipped), StatusCode::BAD_REQUEST)
        .await;
    assert_eq!(
        msg,
        "cannot update parameterized job to being non-parameterized"
    );
}

async fn blocking_queries_wait_for_a_change(store: Store) {
    let api = Api::start(store).await;
    api.register_transcode().await;
    let resp = api
        .http
        .get(format!("{}/v1/job/transcode/summary", api.url))
        .send()
        .await
        .unwrap();
    let index: u64 = resp.headers()["x-nomad-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    // Nothing changes: the wait runs out and the same answer comes back. (Only the server's
    // own timer can show that it waited: a lower bound, which a correct server cannot miss.)
    let started = std::time::Instant::now();
    let resp = api
        .http
        .get(format!(
            "{}/v1/job/transcode/summary?index={index}&wait=300ms",
            api.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-nomad-index"].to_str().unwrap(),
        index.to_string()
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A client waits on the summary at the current index; its request is on the wire.
    let waiter = RawGet::send(
        &api.url,
        &format!("/v1/job/transcode/summary?index={index}&wait=60s"),
    )
    .await;
    // The server answers later requests (nothing changed: same index) while the waiter gets
    // nothing: a query that did not block would have been answered by now.
    for _ in 0..10 {
        let resp = api
            .http
            .get(format!("{}/v1/job/transcode/summary", api.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-nomad-index"], index.to_string().as_str());
    }
    assert!(
        waiter.silent(),
        "the blocking query was answered before anything changed"
    );
    // A dispatch arrives while the client waits: the client is answered with the new
    // counters and an index past the one it gave.
    api.dispatch("transcode", json!({"Meta": {"input": "a"}}))
        .await;
    let (new_index, summary) = waiter.answer().await;
    assert!(new_index > index, "X-Nomad-Index {new_index} after {index}");
    assert_eq!(summary["Children"]["Pending"], 1, "{summary}");

    let list = api
        .http
        .get(format!("{}/v1/jobs?index={new_index}&wait=200ms", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let msg = api
        .err("GET", "/v1/jobs?index=abc", None, StatusCode::BAD_REQUEST)
        .await;
    assert!(msg.contains("Invalid index"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_and_status_endpoints_answer_like_nomad() {
    let api = Api::start(Store::Sqlite).await;
    let leader = api.ok("GET", "/v1/status/leader", None).await;
    assert_eq!(format!("http://{}", leader.as_str().unwrap()), api.url);
    let agent = api.ok("GET", "/v1/agent/self", None).await;
    assert_eq!(agent["config"]["UI"]["ShowCLIHints"], false);
    api.register_transcode().await;
    let search = api
        .ok(
            "PUT",
            "/v1/search",
            Some(json!({"Prefix": "trans", "Context": "all"})),
        )
        .await;
    assert_eq!(search["Matches"]["jobs"], json!(["transcode"]));
    let msg = api
        .err("GET", "/v2/nothing", None, StatusCode::NOT_FOUND)
        .await;
    assert!(msg.contains("no such endpoint"), "{msg}");
}

/// The demo's own HCL1 job file: `/v1/jobs/parse` reads it as Nomad's HCL1 parser did and
/// names the HCL1 construct in `X-Dispatch-Warnings` (Nomad's parse reply is the bare job,
/// with no Warnings field); `HCLv1: true` forces HCL1; invalid files stay 400.
#[tokio::test(flavor = "multi_thread")]
async fn parse_accepts_hcl1_job_files_with_a_warning() {
    let api = Api::start(Store::Sqlite).await;
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nomad-jobs");
    let hcl1 = std::fs::read_to_string(
        corpus.join("hashicorp__nomad-dispatch-ffmpeg__nomad__transcode.nomad"),
    )
    .unwrap();
    let resp = api
        .http
        .put(format!("{}/v1/jobs/parse", api.url))
        .json(&json!({ "JobHCL": hcl1, "Canonicalize": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let warning = resp.headers()["x-dispatch-warnings"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        warning,
        "JobHCL:28: HCL1: quoted attribute name \"S3_BUCKET\"; HCL2 writes S3_BUCKET = ..."
    );
    let job: Value = resp.json().await.unwrap();
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Env"]["S3_BUCKET"],
        "BUCKET_NAME"
    );
    // registering what parse returned works, as `nomad job run` does it
    api.ok("PUT", "/v1/jobs", Some(json!({ "Job": job }))).await;

    // HCL2 files carry no warning header
    let resp = api
        .http
        .put(format!("{}/v1/jobs/parse", api.url))
        .json(&json!({ "JobHCL": "job \"j\" {\n  type = \"batch\"\n}\n" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("x-dispatch-warnings").is_none());

    // HCLv1: strings are literal, as HCL1 left them for the client
    let job = api
        .ok(
            "PUT",
            "/v1/jobs/parse",
            Some(json!({ "JobHCL": "job \"j\" {\n  meta {\n    a = \"${x}\"\n  }\n}\n", "HCLv1": true })),
        )
        .await;
    assert_eq!(job["Meta"]["a"], "${x}");

    for invalid in [
        "angrycub__nomad_example_jobs__applications__wordpress__distributed__build-site.nomad",
        "testing-farm__infrastructure__terragrunt__environments__production__worker-redhat__jobs__tf-tmt-multihost.nomad",
    ] {
        let src = std::fs::read_to_string(corpus.join(invalid)).unwrap();
        let msg = api
            .err(
                "PUT",
                "/v1/jobs/parse",
                Some(json!({ "JobHCL": src })),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert!(msg.contains("invalid HCL2 syntax"), "{invalid}: {msg}");
    }
}

/// From the moment it binds, the server answers: every route 503 with `Retry-After` while
/// the state loads (`/v1/agent/health` in Nomad's shape, "loading"), then the real API.
/// Loading is held here by not handing over the loaded router yet.
#[tokio::test(flavor = "multi_thread")]
async fn while_loading_every_route_answers_503_with_retry_after() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (ready, starting) = dispatch::api::starting_router("reading /data");
    tokio::spawn(async move { axum::serve(listener, starting).await });
    let http = reqwest::Client::new();

    let health = http
        .get(format!("{url}/v1/agent/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.headers()["retry-after"], "1");
    let body: Value = health.json().await.unwrap();
    assert_eq!(body, json!({"server": {"ok": false, "message": "loading"}}));

    let dispatch = http
        .put(format!("{url}/v1/job/transcode/dispatch"))
        .body(r#"{"Meta": {"input": "a.mp4"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(dispatch.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(dispatch.headers()["retry-after"], "1");
    let text = dispatch.text().await.unwrap();
    assert!(text.contains("loading its state (reading /data)"), "{text}");

    // Loaded: the same connection pool now reaches the real routes.
    let loaded = axum::Router::new().route(
        "/v1/agent/health",
        axum::routing::get(|| async { "{\"server\": {\"ok\": true}}" }),
    );
    ready.send_replace(Some(loaded));
    let health = http
        .get(format!("{url}/v1/agent/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().get("retry-after").is_none());
}

/// Reads newline-delimited JSON frames from a streaming answer.
struct Frames {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Frames {
    async fn open(api: &Api, query: &str) -> Frames {
        let resp = api
            .http
            .get(format!("{}/v1/event/stream?{query}", api.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        Frames {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next line as JSON (`{}` for a heartbeat), within 10 s.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return serde_json::from_slice(&line).expect("a JSON line");
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("a frame within 10 s")
                .unwrap()
                .expect("the stream is still open");
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The next frame with events (heartbeats skipped).
    async fn frame(&mut self) -> Value {
        loop {
            let v = self.next().await;
            if v.get("Events").is_some() {
                return v;
            }
        }
    }
}

/// Frames until one has an event keyed `key`; every event must belong to `parent`.
async fn until_key(frames: &mut Frames, parent: &str, key: &str) -> Value {
    loop {
        let frame = frames.frame().await;
        let mut found = false;
        for e in frame["Events"].as_array().unwrap() {
            let k = e["Key"].as_str().unwrap();
            assert!(k.starts_with(parent), "only {parent}'s events: {e}");
            found |= k == key;
        }
        if found {
            return frame;
        }
    }
}

/// `GET /v1/event/stream`: a heartbeat first; `topic=Job:<id>` follows a parent and its
/// children and nothing else; `index` resumes after what was seen; bad topics are refused.
async fn event_stream_filters_by_topic_and_resumes_by_index(store: Store) {
    let api = Api::start(store).await;
    let mut all = Frames::open(&api, "topic=Job:transcode").await;
    assert_eq!(all.next().await, json!({}), "a heartbeat at once");
    api.register_transcode().await;
    let mut other = transcode_job("optional");
    other["Job"]["ID"] = json!("other");
    other["Job"]["Name"] = json!("other");
    api.ok("PUT", "/v1/jobs", Some(other)).await;
    let child = api
        .dispatch("transcode", json!({"Meta": {"input": "a.mp4"}}))
        .await["DispatchedJobID"]
        .as_str()
        .unwrap()
        .to_string();
    api.dispatch("other", json!({"Meta": {"input": "b.mp4"}}))
        .await;
    let second = api
        .dispatch("transcode", json!({"Meta": {"input": "c.mp4"}}))
        .await["DispatchedJobID"]
        .as_str()
        .unwrap()
        .to_string();

    let registered = all.frame().await;
    let e = &registered["Events"][0];
    assert_eq!(e["Topic"], "Job");
    assert_eq!(e["Type"], "JobRegistered");
    assert_eq!(e["Key"], "transcode");
    assert_eq!(e["Payload"]["Job"]["ID"], "transcode");
    let dispatched = all.frame().await;
    assert_eq!(dispatched["Events"][0]["Key"], json!(child));
    assert_eq!(dispatched["Events"][0]["FilterKeys"], json!(["transcode"]));
    assert_eq!(
        dispatched["Events"][0]["Payload"]["Job"]["ParentID"],
        "transcode"
    );
    let resume_after = dispatched["Index"].as_u64().unwrap();
    // Then the second child (the scheduler's notes on the first may come between); never
    // anything of the other job.
    until_key(&mut all, "transcode", &second).await;

    // Resuming after the first child's index replays from there on.
    let mut resumed = Frames::open(
        &api,
        &format!("topic=Job:transcode&index={}", resume_after + 1),
    )
    .await;
    let first_resumed = resumed.frame().await;
    assert!(first_resumed["Index"].as_u64().unwrap() > resume_after);
    let replayed = until_key(&mut resumed, "transcode", &second).await;
    assert!(replayed["Index"].as_u64().unwrap() > resume_after);

    // Evaluation topic, filtered by the child: its evaluation (nothing runs here, so there
    // are no allocations; tests/ui.rs follows those through /ui/live).
    let mut evals = Frames::open(&api, &format!("topic=Evaluation:{second}&index=1")).await;
    let frame = evals.frame().await;
    for e in frame["Events"].as_array().unwrap() {
        assert_eq!(e["Topic"], "Evaluation");
        assert_eq!(e["Payload"]["Evaluation"]["JobID"], json!(second));
    }

    let msg = api
        .err(
            "GET",
            "/v1/event/stream?topic=Job:a:b",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("Invalid topic query"), "{msg}");
    api.err(
        "GET",
        "/v1/event/stream?index=x",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

/// A slow consumer of `GET /v1/event/stream` is dropped and never slows the writer: a
/// stream whose reader stops reading (a small receive window, nothing read) while more
/// dispatches are committed than the feed's buffer holds. Every dispatch of the burst is
/// answered 200 while the reader is stalled; when it reads again it gets what was already
/// on its way and then the end of the stream (not the burst's last child); a fresh stream
/// works.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_event_stream_is_dropped_and_never_slows_dispatches() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let api = Api::start(Store::Sqlite).await;
    api.register_transcode().await;
    let addr: std::net::SocketAddr = api.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    stalled
        .write_all(
            b"GET /v1/event/stream?topic=Job:transcode HTTP/1.1\r\nHost: dispatch\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    // The answer's head and the first heartbeat: the stream is open.
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !seen.windows(3).any(|w| w == b"{}\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf))
            .await
            .expect("the stream's head within 10 s")
            .unwrap();
        assert!(n > 0, "the stream ended before its first heartbeat");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // The burst, with the reader stalled: more commits than the feed keeps.
    let burst = dispatch::state::events::DEFAULT_BUFFER + 2_000;
    let url = format!("{}/v1/job/transcode/dispatch", api.url);
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut sent = 0;
    let mut answered = 0;
    let mut last = String::new();
    let mut newest = 0;
    while answered < burst {
        while sent < burst && pending.len() < 64 {
            sent += 1;
            let req = api
                .http
                .post(&url)
                .json(&json!({"Meta": {"input": format!("{sent}.mp4")}}))
                .send();
            pending.push(async move {
                let resp = req.await?;
                assert_eq!(resp.status(), StatusCode::OK);
                resp.json::<Value>().await
            });
        }
        let reply = futures_util::StreamExt::next(&mut pending)
            .await
            .unwrap()
            .expect("a dispatch answered while the reader is stalled");
        answered += 1;
        if answered == burst {
            last = reply["DispatchedJobID"].as_str().unwrap().to_string();
        }
        newest = newest.max(reply["Index"].as_u64().expect("the dispatch's Index"));
    }
    assert_eq!(api.children("transcode").await["Pending"], burst as u64);

    // The reader resumes: what was in flight, then the end (the server dropped it).
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), stalled.read_to_end(&mut rest))
        .await
        .expect("the stalled stream is ended by the server")
        .unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.ends_with("0\r\n\r\n"),
        "the stream ended as a whole HTTP answer: ...{}",
        &text[text.len().saturating_sub(200)..]
    );
    assert!(
        !text.contains(&last),
        "a dropped consumer does not get the burst's last child"
    );

    // A fresh stream works, from after the burst (from 0 it would replay the whole buffer).
    let mut fresh = Frames::open(&api, &format!("topic=Job:transcode&index={}", newest + 1)).await;
    assert_eq!(fresh.next().await, json!({}), "a heartbeat at once");
    let child = api
        .dispatch("transcode", json!({"Meta": {"input": "after.mp4"}}))
        .await["DispatchedJobID"]
        .as_str()
        .unwrap()
        .to_string();
    until_key(&mut fresh, "transcode", &child).await;
}
