//! The web UI in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`,
//! installed by `scripts/test-deps.sh`) driven over WebDriver (fantoccini). Each test starts
//! its own `dispatch server`, its own chromedriver on a port the system picks and a browser
//! with a throwaway profile, and asserts what a user sees on the pages.
//!
//! A failing test saves a screenshot of the page beside its output
//! (`target/ui-test-screenshots/<test>.png`). With `DISPATCH_UI_SCREENSHOTS=<dir>` the
//! README's screenshots (the job page, a child following its logs) are written there.
//!
//! Pages are checked with axe-core (`tests/fixtures/axe/axe.min.js`, MPL-2.0) run in the
//! page: labels on inputs, heading order, contrast, ARIA.

mod common;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{dispatch, dispatched_id, get_json, http_get_status, make_clip, ok, TestServer};
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{json, Value};

/// How long a page may take to show what a test waits for.
const PAGE_WAIT: Duration = Duration::from_secs(60);

/// A chromedriver process on a loopback port of its choosing; killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    let profile = tempfile::tempdir().expect("a profile dir");
    let mut child = Command::new("chromedriver")
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is missing: run scripts/test-deps.sh (it installs chromium-driver)");
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    let port = loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .expect("chromedriver ended before saying its port");
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            break rest.trim_end_matches('.').trim().to_string();
        }
    };
    // Keep reading so chromedriver never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    }
}

/// A headless Chromium session on `driver`.
async fn browser(driver: &Driver) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("chromedriver not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a browser session: {e}"),
        }
    }
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("ui-test-screenshots"))
        .unwrap_or_else(|| PathBuf::from("ui-test-screenshots"))
}

/// Run a scenario in a fresh browser; when it fails, save the page's screenshot first.
async fn scenario<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let driver = start_driver();
    let client = browser(&driver).await;
    let outcome = AssertUnwindSafe(body(client.clone())).catch_unwind().await;
    if let Err(panic) = outcome {
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{name}.png"));
        match client.screenshot().await {
            Ok(png) if std::fs::write(&file, &png).is_ok() => {
                eprintln!("screenshot of the failing page: {}", file.display())
            }
            _ => eprintln!("no screenshot could be taken"),
        }
        if let Ok(url) = client.current_url().await {
            eprintln!("page: {url}");
        }
        let _ = client.close().await;
        std::panic::resume_unwind(panic);
    }
    let _ = client.close().await;
}

/// Save a screenshot for the README when asked to (`DISPATCH_UI_SCREENSHOTS=<dir>`).
async fn readme_screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("DISPATCH_UI_SCREENSHOTS") {
        let png = c.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(&dir).expect("the screenshot dir");
        std::fs::write(PathBuf::from(dir).join(name), png).expect("write the screenshot");
    }
}

/// The text of the element `css` once `pred` holds for it (the element is looked up again
/// each time: live updates replace regions).
async fn wait_text(c: &Client, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PAGE_WAIT;
    let mut last = String::new();
    loop {
        if let Some(t) = try_text(c, css).await {
            if pred(&t) {
                return t;
            }
            last = t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({css}); it shows {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's path once it starts with `prefix` and is not `from` (after a form post's
/// redirect).
async fn wait_path(c: &Client, prefix: &str, from: &str) -> String {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let path = c.current_url().await.expect("the URL").path().to_string();
        if path.starts_with(prefix) && path != from {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {prefix}...; at {path}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The rendered text of `css`, `None` when it is not on the page (read in one script: a live
/// update may replace an element between two WebDriver calls).
async fn try_text(c: &Client, css: &str) -> Option<String> {
    let v = c
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;",
            vec![json!(css)],
        )
        .await
        .expect("read the page");
    v.as_str().map(str::to_string)
}

async fn text(c: &Client, css: &str) -> String {
    try_text(c, css)
        .await
        .unwrap_or_else(|| panic!("no {css} on the page"))
}

/// Click `css`, looking it up again if a live update replaced it meanwhile.
async fn click(c: &Client, css: &str) {
    let mut tries = 0;
    loop {
        let e = c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
        match e.click().await {
            Ok(()) => return,
            Err(e) if tries < 5 && e.to_string().contains("stale") => tries += 1,
            Err(e) => panic!("cannot click {css}: {e}"),
        }
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    e.clear().await.expect("clear the field");
    if !value.is_empty() {
        e.send_keys(value).await.expect("type into the field");
    }
}

/// Run axe-core in the page; fail naming every violation.
async fn accessible(c: &Client, page: &str) {
    static AXE: &str = include_str!("fixtures/axe/axe.min.js");
    c.execute(AXE, vec![]).await.expect("load axe-core");
    let result = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, { resultTypes: ["violations"] })
                 .then(r => done(r.violations.map(v => ({
                     id: v.id, impact: v.impact, help: v.help,
                     nodes: v.nodes.slice(0, 3).map(n => n.html) }))))
                 .catch(e => done([{ id: "axe-error", help: String(e) }]));"#,
            vec![],
        )
        .await
        .expect("run axe-core");
    let violations = result.as_array().cloned().unwrap_or_default();
    assert!(
        violations.is_empty(),
        "{page}: accessibility violations:\n{}",
        serde_json::to_string_pretty(&violations).unwrap_or_default()
    );
}

/// A mark the page keeps until it is reloaded.
async fn mark_page(c: &Client) {
    c.execute("window.__notReloaded = true;", vec![])
        .await
        .expect("mark the page");
}

async fn still_marked(c: &Client) -> bool {
    c.execute("return window.__notReloaded === true;", vec![])
        .await
        .expect("read the mark")
        == Value::Bool(true)
}

fn children_of(s: &TestServer, job: &str) -> u64 {
    let summary = get_json(s, &format!("/v1/job/{job}/summary"));
    let c = &summary["Children"];
    ["Pending", "Running", "Dead"]
        .iter()
        .map(|k| c[k].as_u64().unwrap_or(0))
        .sum()
}

const NAPS: &str = r#"job "naps" {
  type = "batch"
  parameterized {
    meta_required = ["secs"]
    meta_optional = ["note"]
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "sleep"
        args    = ["${NOMAD_META_secs}"]
      }
      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
"#;

fn register_naps(s: &TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("naps.hcl");
    std::fs::write(&file, NAPS).unwrap();
    ok(&dispatch(s, &["job", "run", file.to_str().unwrap()]));
}

fn dispatch_naps(s: &TestServer, meta: &[&str]) -> String {
    let mut args = vec!["job", "dispatch", "-detach"];
    for m in meta {
        args.push("-meta");
        args.push(m);
    }
    args.push("naps");
    dispatched_id(&ok(&dispatch(s, &args)))
}

/// The jobs page, the `transcode` job's form refusing a dispatch without its required key
/// (nothing dispatched), then dispatching for real: the child's page shows it run and
/// complete without a reload, and shows what transcode.sh printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_from_the_form_and_watch_the_child_finish() {
    let s = TestServer::start();
    ok(&dispatch(&s, &["job", "run", "jobs/transcode.hcl"]));
    let work = tempfile::tempdir().unwrap();
    let clip = make_clip(work.path());
    let out_dir = work.path().join("out");
    let base = s.url();
    scenario("dispatch_from_the_form", |c| async move {
        c.goto(&format!("{base}/")).await.expect("open /");
        assert_eq!(
            c.current_url().await.unwrap().path(),
            "/ui/jobs",
            "/ leads to the jobs page"
        );
        let row = text(&c, "table.jobs tbody tr").await;
        assert!(
            row.starts_with("transcode"),
            "the jobs table lists transcode: {row:?}"
        );
        accessible(&c, "jobs page").await;

        click(&c, "table.jobs a[href='/ui/jobs/transcode']").await;
        assert_eq!(
            text(&c, "h1").await.lines().next(),
            Some("transcode parameterized batch")
        );
        let label = text(&c, "label[for='meta-0']").await;
        assert!(
            label.starts_with("input"),
            "the required key comes first: {label:?}"
        );
        let profile = c
            .find(Locator::Css("input[name='meta.profile']"))
            .await
            .unwrap();
        assert_eq!(
            profile.prop("value").await.unwrap().as_deref(),
            Some("small"),
            "defaults are pre-filled"
        );
        accessible(&c, "job page").await;
        readme_screenshot(&c, "ui-job.png").await;

        // Without the required key: the form comes back saying which one, nothing dispatched.
        click(&c, "button.primary").await;
        let error = wait_text(&c, "#meta-0-error", "the form's error", |t| !t.is_empty()).await;
        assert!(
            error.contains("input"),
            "the error names the missing key: {error:?}"
        );
        assert_eq!(children_of(&s, "transcode"), 0, "nothing was dispatched");

        fill(&c, "input[name='meta.input']", clip.to_str().unwrap()).await;
        fill(
            &c,
            "input[name='meta.output_dir']",
            out_dir.to_str().unwrap(),
        )
        .await;
        click(&c, "button.primary").await;
        let path = wait_path(&c, "/ui/jobs/transcode%2Fdispatch-", "").await;
        assert!(
            path.starts_with("/ui/jobs/transcode%2Fdispatch-"),
            "the child's page: {path}"
        );
        mark_page(&c).await;
        let first = text(&c, "#child-status").await;
        let done = wait_text(&c, "#child-status", "the child to complete", |t| {
            t == "complete"
        })
        .await;
        assert_eq!(done, "complete");
        assert!(
            still_marked(&c).await,
            "the status changed without a reload (it was {first})"
        );
        let log = wait_text(&c, "#log", "transcode.sh's output", |t| {
            t.contains("Output:")
        })
        .await;
        assert!(
            log.contains("Transcoding"),
            "the log shows the task's stdout: {log}"
        );
        c.execute("document.getElementById('logs').scrollIntoView();", vec![])
            .await
            .unwrap();
        readme_screenshot(&c, "ui-child.png").await;
        let meta = text(&c, "#input table").await;
        assert!(
            meta.contains(clip.to_str().unwrap()),
            "merged meta shows the input: {meta}"
        );
        let words = meta.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("profile small dispatch"),
            "and the pre-filled default: {meta}"
        );
        accessible(&c, "child page").await;

        // The same page under the raw-slash URL.
        let raw = path.replace("%2F", "/");
        c.goto(&format!("{base}{raw}")).await.unwrap();
        assert_eq!(text(&c, "#child-status").await, "complete");
    })
    .await;
}

/// A sleeping child followed live and stopped from its page; meta with markup shows as text;
/// an unknown job gives the 404 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_a_sleeping_child_escape_meta_and_404() {
    let s = TestServer::start();
    register_naps(&s);
    let script = "<script>window.__pwned = 1</script><b>bold</b>";
    let child = dispatch_naps(&s, &["secs=300", &format!("note={script}")]);
    let base = s.url();
    let old_path = format!("/ui/jobs/{}", child.replace('/', "%2F"));
    let url = format!("{base}{old_path}");
    scenario("stop_a_sleeping_child", |c| async move {
        c.goto(&url).await.unwrap();
        mark_page(&c).await;
        wait_text(&c, "#child-status", "the child to run", |t| t == "running").await;
        let runs = wait_text(&c, "table.runs tbody", "the task running", |t| {
            t.contains("TASK_RUNNING")
        })
        .await;
        assert!(runs.contains("local-ag"), "the agent is shown: {runs}");
        assert!(still_marked(&c).await, "running showed without a reload");

        let shown = c
            .find(Locator::XPath(
                "//section[@id='input']//tr[th='note']/td/code",
            ))
            .await
            .expect("the note row")
            .text()
            .await
            .unwrap();
        assert_eq!(shown, script, "meta markup shows as text");
        let pwned = c
            .execute("return window.__pwned === undefined;", vec![])
            .await
            .unwrap();
        assert_eq!(pwned, Value::Bool(true), "the meta's script did not run");

        click(&c, "#stop-button").await;
        wait_text(&c, "#child-status", "the child stopped", |t| t == "stopped").await;
        let runs = wait_text(&c, "table.runs tbody", "the task killed", |t| {
            t.contains("TASK_KILLED")
        })
        .await;
        assert!(runs.contains("TASK_KILLED"), "{runs}");

        // Dispatch again: a new child with the same meta, running (then stopped too).
        click(&c, "#redispatch-button").await;
        let again = wait_path(&c, "/ui/jobs/naps%2Fdispatch-", &old_path).await;
        assert!(again.len() == old_path.len(), "a child's page: {again}");
        wait_text(&c, "#child-status", "the new child to run", |t| {
            t == "running"
        })
        .await;
        let meta = text(&c, "#input table").await;
        assert!(meta.contains("<script>"), "the same meta: {meta}");
        click(&c, "#stop-button").await;
        wait_text(&c, "#child-status", "the new child stopped", |t| {
            t == "stopped"
        })
        .await;

        c.goto(&format!("{base}/ui/cluster")).await.unwrap();
        let backend = text(&c, "#backend").await;
        assert!(backend.contains("local"), "the backend is named: {backend}");
        let agents = text(&c, "#agents table").await;
        assert!(
            agents.contains("local-ag"),
            "the agent seen in offers: {agents}"
        );
        accessible(&c, "cluster page").await;

        c.goto(&format!("{base}/ui/jobs/no-such-job"))
            .await
            .unwrap();
        assert_eq!(text(&c, "h1").await, "Not found");
        assert!(text(&c, "main").await.contains("\"no-such-job\""));
    })
    .await;
    assert_eq!(http_get_status(s.addr(), "/ui/jobs/no-such-job"), Some(404));
    assert_eq!(
        get_json(&s, &format!("/v1/job/{}", child.replace('/', "%2F")))["Status"],
        "dead"
    );
}

/// The child IDs of the children table, in page order.
/// (Read in one script: a live update may replace the table between two WebDriver calls.)
async fn row_ids(c: &Client) -> Vec<String> {
    let ids = c
        .execute(
            "return Array.from(document.querySelectorAll('table.children tbody tr th a'))\
               .map(a => a.getAttribute('data-full'));",
            vec![],
        )
        .await
        .expect("the children's IDs");
    serde_json::from_value(ids).expect("a list of IDs")
}

/// The most recently dispatched child of `naps` (highest create index), from the API.
fn newest_child(s: &TestServer) -> String {
    let jobs = get_json(s, "/v1/jobs?prefix=naps/");
    jobs.as_array()
        .expect("job stubs")
        .iter()
        .max_by_key(|j| j["CreateIndex"].as_u64().unwrap_or(0))
        .and_then(|j| j["ID"].as_str())
        .expect("a child")
        .to_string()
}

/// 5,000 queued children, a page of 50 at a time, newest first; the status filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_through_5000_children() {
    // No cpus: every child stays queued.
    let s = TestServer::start_with(&["-local-cpus", "0"]);
    register_naps(&s);
    let oldest = dispatch_naps(&s, &["secs=1"]);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/job/naps/dispatch", s.url());
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut sent = 1;
    while sent < 5000 || !pending.is_empty() {
        while sent < 5000 && pending.len() < 32 {
            sent += 1;
            let req = http.post(&url).json(&json!({"Meta": {"secs": "1"}})).send();
            pending.push(async move { req.await?.error_for_status()?.json::<Value>().await });
        }
        if let Some(r) = futures_util::StreamExt::next(&mut pending).await {
            r.expect("a dispatch");
        }
    }
    assert_eq!(children_of(&s, "naps"), 5000);
    let newest = newest_child(&s);
    let base = s.url();
    scenario("page_through_5000_children", |c| async move {
        c.goto(&format!("{base}/ui/jobs/naps")).await.unwrap();
        assert_eq!(
            text(&c, "#children caption").await,
            "50 of 5000 children, newest first"
        );
        let pending_tab = text(&c, "#children .tabs a[href*='status=pending']").await;
        assert_eq!(pending_tab, "Pending 5000");
        let first_page = row_ids(&c).await;
        assert_eq!(first_page.len(), 50);
        assert_eq!(first_page[0], newest, "newest first");

        click(&c, "a[rel='next']").await;
        let second_page = row_ids(&c).await;
        assert_eq!(second_page.len(), 50);
        assert!(
            second_page.iter().all(|id| !first_page.contains(id)),
            "Older shows the next 50"
        );
        click(&c, "a[rel='prev']").await;
        assert_eq!(row_ids(&c).await, first_page, "Newer goes back");

        click(&c, "a[rel='last']").await;
        let last_page = row_ids(&c).await;
        assert_eq!(
            last_page.last(),
            Some(&oldest),
            "the oldest page ends with the first child"
        );
        assert!(
            c.find(Locator::Css("a[rel='next']")).await.is_err(),
            "nothing older than the oldest"
        );

        click(&c, "#children .tabs a[href*='status=running']").await;
        assert_eq!(text(&c, "#children .empty").await, "No running children.");
    })
    .await;
}

/// A server with ACLs on, its management secret (from `-acl-bootstrap-token-file`), the
/// `transcode` job (which the client token may list, read and dispatch) and `naps` (which it
/// may not see), and a client token made through the API.
struct AclServer {
    server: TestServer,
    management: String,
    client: String,
    _dir: tempfile::TempDir,
}

/// The client's policy: Dispatch's `job` block, for transcode only.
const TRANSCODE_ONLY: &str = r#"job "transcode" {
  capabilities = ["list-jobs", "read-job", "dispatch-job"]
}
"#;

fn cli_with_token(s: &TestServer, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch"))
        .args(args)
        .env("DISPATCH_ADDR", s.url())
        .env("DISPATCH_TOKEN", token)
        .env_remove("NOMAD_ADDR")
        .env_remove("NOMAD_TOKEN")
        .output()
        .expect("run dispatch")
}

async fn acl_server() -> AclServer {
    let dir = tempfile::tempdir().unwrap();
    let management = uuid::Uuid::new_v4().to_string();
    let file = dir.path().join("bootstrap.token");
    std::fs::write(&file, &management).unwrap();
    // No cpus: what is dispatched stays queued (stop then has something to stop).
    let server = TestServer::start_with(&[
        "-acl-enabled",
        "-acl-bootstrap-token-file",
        file.to_str().unwrap(),
        "-local-cpus",
        "0",
    ]);
    ok(&cli_with_token(
        &server,
        &management,
        &["job", "run", "jobs/transcode.hcl"],
    ));
    let naps = dir.path().join("naps.hcl");
    std::fs::write(&naps, NAPS).unwrap();
    ok(&cli_with_token(
        &server,
        &management,
        &["job", "run", naps.to_str().unwrap()],
    ));
    let http = reqwest::Client::new();
    let policy = http
        .post(format!("{}/v1/acl/policy/transcode-only", server.url()))
        .header("X-Nomad-Token", &management)
        .json(&json!({"Name": "transcode-only", "Rules": TRANSCODE_ONLY}))
        .send()
        .await
        .unwrap();
    assert!(policy.status().is_success(), "policy: {}", policy.status());
    let token: Value = http
        .post(format!("{}/v1/acl/token", server.url()))
        .header("X-Nomad-Token", &management)
        .json(&json!({"Name": "ui-client", "Type": "client", "Policies": ["transcode-only"]}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = token["SecretID"].as_str().expect("a SecretID").to_string();
    AclServer {
        server,
        management,
        client,
        _dir: dir,
    }
}

/// A multipart dispatch form as the job page posts it.
fn form_body(fields: &[(&str, &str)]) -> (String, String) {
    let boundary = "----dispatch-ui-test-boundary".to_string();
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Every UI route with ACLs on, over plain HTTP: refused (403) without a token and with one
/// lacking the capability the mirrored API route needs, whatever the page would hide; and
/// what the client token may use works. Nothing refused changed anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_routes_are_authorised_like_the_api() {
    let acl = acl_server().await;
    let s = &acl.server;
    let base = s.url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let child = dispatched_id(&ok(&cli_with_token(
        s,
        &acl.management,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "input=/tmp/a.mp4",
            "transcode",
        ],
    )));
    let naps_child = dispatched_id(&ok(&cli_with_token(
        s,
        &acl.management,
        &["job", "dispatch", "-detach", "-meta", "secs=300", "naps"],
    )));
    let enc = |id: &str| id.replace('/', "%2F");
    let get = |path: String, token: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.header("X-Nomad-Token", t);
        }
        async move {
            let resp = req.send().await.expect("a UI answer");
            let status = resp.status().as_u16();
            // a feed allowed is a stream that does not end: its status is the answer
            if resp
                .headers()
                .get("content-type")
                .is_some_and(|t| t.as_bytes().starts_with(b"application/x-ndjson"))
            {
                return (status, String::new());
            }
            (status, resp.text().await.unwrap_or_default())
        }
    };
    let post = |path: String, token: Option<&str>, form: Option<(String, String)>| {
        let mut req = http.post(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some((content_type, body)) = form {
            req = req.header("Content-Type", content_type).body(body);
        }
        async move {
            let resp = req.send().await.expect("a UI answer");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
    };
    let dispatch_form = || Some(form_body(&[("meta.input", "/tmp/b.mp4")]));

    // Without a token: the anonymous policy (none here) reads and changes nothing.
    for path in [
        "/ui/jobs".to_string(),
        "/ui/jobs/transcode".into(),
        format!("/ui/jobs/{}", enc(&child)),
        format!("/ui/jobs/{child}"),
        "/ui/jobs/no-such-job".into(),
        "/ui/cluster".into(),
        "/ui/live?topic=Job:transcode".into(),
        "/ui/live?topic=Job".into(),
    ] {
        let (status, body) = get(path.clone(), None).await;
        assert_eq!(status, 403, "GET {path} without a token: {body}");
        assert!(body.contains("Permission denied"), "{path}: {body}");
    }
    let (_, page) = get("/ui/jobs/transcode".into(), None).await;
    assert!(
        page.contains("read-job on job &quot;transcode&quot;")
            && page.contains("id=\"token-input\""),
        "the 403 page says what is missing and offers the token field: {page}"
    );
    for (path, form) in [
        ("/ui/jobs/transcode/dispatch".to_string(), dispatch_form()),
        (format!("/ui/jobs/{}/stop", enc(&child)), None),
        (format!("/ui/jobs/{}/redispatch", enc(&child)), None),
    ] {
        let (status, body) = post(path.clone(), None, form).await;
        assert_eq!(status, 403, "POST {path} without a token: {body}");
    }
    // The stylesheet and script load for the 403 page.
    assert_eq!(get("/ui/assets/ui.js".into(), None).await.0, 200);
    assert_eq!(get("/ui/assets/ui.css".into(), None).await.0, 200);

    // The client token: transcode only; no stop, no logs, no cluster, no other job.
    let c = Some(acl.client.as_str());
    let (status, jobs) = get("/ui/jobs".into(), c).await;
    assert_eq!(status, 200, "{jobs}");
    assert!(
        jobs.contains("/ui/jobs/transcode") && !jobs.contains("/ui/jobs/naps"),
        "the jobs page lists what the token may list: {jobs}"
    );
    assert!(jobs.contains("Token: ui-client (client)"), "{jobs}");
    let (status, page) = get("/ui/jobs/transcode".into(), c).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"primary\">Dispatch<"),
        "the dispatch button"
    );
    let (status, page) = get(format!("/ui/jobs/{}", enc(&child)), c).await;
    assert_eq!(status, 200);
    assert!(!page.contains("stop-button"), "no Stop for this token");
    assert!(
        page.contains("redispatch-button"),
        "Dispatch again is allowed"
    );
    assert!(page.contains("id=\"logs-denied\""), "no logs: {page}");
    assert!(page.contains("id=\"files-denied\""), "no sandbox: {page}");
    for path in [
        "/ui/jobs/naps".to_string(),
        format!("/ui/jobs/{}", enc(&naps_child)),
        "/ui/cluster".into(),
        "/ui/live?topic=Job:naps".into(),
    ] {
        let (status, body) = get(path.clone(), c).await;
        assert_eq!(status, 403, "GET {path} with the client token: {body}");
    }
    assert_eq!(get("/ui/live?topic=Job:transcode".into(), c).await.0, 200);
    let (status, body) = post(format!("/ui/jobs/{}/stop", enc(&child)), c, None).await;
    assert_eq!(status, 403, "stop needs submit-job: {body}");
    assert!(
        body.contains("submit-job or deregister-job or purge-job"),
        "{body}"
    );
    let (status, _) = post(
        "/ui/jobs/naps/dispatch".into(),
        c,
        Some(form_body(&[("meta.secs", "1")])),
    )
    .await;
    assert_eq!(status, 403, "no dispatch-job on naps");
    let (status, _) = post(format!("/ui/jobs/{}/redispatch", enc(&naps_child)), c, None).await;
    assert_eq!(status, 403);
    let m = acl.management.as_str();
    let child_status = |id: String| async move {
        let v: Value = reqwest::Client::new()
            .get(format!("{}/v1/job/{}", s.url(), enc(&id)))
            .header("X-Nomad-Token", m)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["Status"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(child_status(child.clone()).await, "pending", "not stopped");
    let summary: Value = http
        .get(format!("{base}/v1/job/naps/summary"))
        .header("X-Nomad-Token", m)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["Children"]["Pending"], 1,
        "nothing dispatched on naps"
    );

    // A token that may read transcode but not dispatch it: the job's page again, the
    // refusal on the form, nothing dispatched.
    let reader: Value = http
        .post(format!("{base}/v1/acl/policy/transcode-reader"))
        .header("X-Nomad-Token", m)
        .json(&json!({"Name": "transcode-reader",
                      "Rules": "job \"transcode\" {\n  capabilities = [\"read-job\"]\n}\n"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .map(|_| json!({}))
        .unwrap();
    assert_eq!(reader, json!({}));
    let reader: Value = http
        .post(format!("{base}/v1/acl/token"))
        .header("X-Nomad-Token", m)
        .json(&json!({"Name": "reader", "Type": "client", "Policies": ["transcode-reader"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reader = reader["SecretID"].as_str().unwrap().to_string();
    let (status, page) = post(
        "/ui/jobs/transcode/dispatch".into(),
        Some(&reader),
        dispatch_form(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        page.contains("id=\"form-error\"")
            && page.contains("dispatching needs dispatch-job on job &quot;transcode&quot;"),
        "the refusal on the form: {page}"
    );
    assert!(
        !page.contains("class=\"primary\">Dispatch<"),
        "and no Dispatch button"
    );
    let transcode: Value = http
        .get(format!("{base}/v1/job/transcode/summary"))
        .header("X-Nomad-Token", m)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(transcode["Children"]["Pending"], 1, "nothing dispatched");

    // What the client token may do, it does through the UI: a dispatch (recorded as its).
    let (status, body) = post("/ui/jobs/transcode/dispatch".into(), c, dispatch_form()).await;
    assert_eq!(status, 303, "the new child's page: {body}");
    // The management token sees and may do everything.
    let (status, page) = get(format!("/ui/jobs/{}", enc(&naps_child)), Some(m)).await;
    assert_eq!(status, 200);
    assert!(page.contains("stop-button") && page.contains("id=\"log\""));
    assert_eq!(get("/ui/cluster".into(), Some(m)).await.0, 200);
    let (status, _) = post(format!("/ui/jobs/{}/stop", enc(&naps_child)), Some(m), None).await;
    assert_eq!(status, 303);
    assert_eq!(child_status(naps_child.clone()).await, "dead");

    // No secret in the server's log.
    let log = s.log();
    assert!(
        !log.contains(&acl.client) && !log.contains(&acl.management),
        "a secret in the log:\n{log}"
    );
}

/// The token field in a real browser: a fresh browser meets the 403 page; the client token
/// (transcode only) lists and dispatches transcode from the form and sees no Stop; a
/// management token sees Stop and stops; signing out returns to the 403 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_field_signs_in_and_out() {
    let acl = acl_server().await;
    let base = acl.server.url();
    let client = acl.client.clone();
    let management = acl.management.clone();
    scenario("the_token_field", |c| async move {
        c.goto(&format!("{base}/ui/jobs")).await.unwrap();
        assert_eq!(text(&c, "h1").await, "403 · Permission denied");
        let reason = text(&c, "#denied-reason").await;
        assert!(reason.contains("list-jobs"), "{reason}");
        assert_eq!(text(&c, "label[for='token-input']").await, "ACL token");
        accessible(&c, "403 page").await;

        fill(&c, "#token-input", &client).await;
        click(&c, "#token-use").await;
        let jobs = wait_text(&c, "main", "the jobs page for the token", |t| {
            t.contains("transcode") && !t.contains("Permission denied")
        })
        .await;
        assert!(
            !jobs.contains("naps"),
            "only what the token may list: {jobs}"
        );
        assert_eq!(text(&c, "#token-who").await, "Token: ui-client (client)");
        assert!(
            !c.current_url().await.unwrap().as_str().contains(&client),
            "the secret is not in the URL"
        );
        let cookies = c.execute("return document.cookie;", vec![]).await.unwrap();
        assert_eq!(cookies, json!(""), "nor in a cookie");

        click(&c, "table.jobs a[href='/ui/jobs/transcode']").await;
        wait_text(&c, "h1", "the transcode page", |t| {
            t.starts_with("transcode")
        })
        .await;
        fill(&c, "input[name='meta.input']", "/tmp/from-the-browser.mp4").await;
        click(&c, "button.primary").await;
        let path = wait_path(&c, "/ui/jobs/transcode%2Fdispatch-", "").await;
        wait_text(&c, "#child-status", "the child's page", |t| t == "pending").await;
        assert!(
            c.find(Locator::Css("#stop-button")).await.is_err(),
            "Stop is hidden: the token lacks submit-job"
        );
        assert!(c.find(Locator::Css("#redispatch-button")).await.is_ok());
        assert!(text(&c, "#logs").await.contains("may not read logs"));
        accessible(&c, "child page (client token)").await;

        // A reload keeps the token (session storage) and shows the token's page again.
        c.refresh().await.unwrap();
        wait_text(
            &c,
            "#child-status",
            "the child's page after a reload",
            |t| t == "pending",
        )
        .await;

        click(&c, "#token-clear").await;
        wait_text(&c, "h1", "the 403 page after signing out", |t| {
            t == "403 · Permission denied"
        })
        .await;
        assert_eq!(c.current_url().await.unwrap().path(), path);

        fill(&c, "#token-input", &management).await;
        click(&c, "#token-use").await;
        wait_text(&c, "#child-status", "the child for management", |t| {
            t == "pending"
        })
        .await;
        assert_eq!(
            text(&c, "#token-who").await,
            "Token: Bootstrap Token (management)"
        );
        click(&c, "#stop-button").await;
        wait_text(&c, "#child-status", "the child stopped", |t| t == "stopped").await;

        click(&c, "#token-clear").await;
        wait_text(&c, "h1", "the 403 page after signing out", |t| {
            t == "403 · Permission denied"
        })
        .await;
    })
    .await;
}

/// The number of points of the jobs page's pending line for `job` (0 when not shown).
async fn chart_points(c: &Client, job: &str) -> Vec<(f64, f64)> {
    let points = c
        .execute(
            "const a = document.querySelector(`table.jobs a[href='/ui/jobs/${arguments[0]}']`);\
             const l = a && a.closest('tr').querySelector('svg polyline.line-pending');\
             return l ? l.getAttribute('points') : '';",
            vec![json!(job)],
        )
        .await
        .expect("read the chart");
    points
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| {
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

/// The dispatch form's payload file: uploaded from the browser, the child's page shows it.
/// The jobs page's queue chart: a point per sample (every 5 s) plus now, the pending line at
/// the top when the queue is at its deepest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_file_upload_and_the_queue_chart() {
    // No cpus: what is dispatched stays queued.
    let s = TestServer::start_with(&["-local-cpus", "0"]);
    ok(&dispatch(&s, &["job", "run", "jobs/transcode.hcl"]));
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("payload.txt");
    let content = "a payload from a file\n<b>not bold</b>\n";
    std::fs::write(&file, content).unwrap();
    for i in 0..2 {
        ok(&dispatch(
            &s,
            &[
                "job",
                "dispatch",
                "-detach",
                "-meta",
                &format!("input={i}.mp4"),
                "transcode",
            ],
        ));
    }
    let base = s.url();
    scenario("payload_file_upload_and_the_queue_chart", |c| async move {
        c.goto(&format!("{base}/ui/jobs/transcode")).await.unwrap();
        fill(&c, "input[name='meta.input']", "/tmp/uploaded.mp4").await;
        c.find(Locator::Css("#payload-file"))
            .await
            .expect("the file field")
            .send_keys(file.to_str().unwrap())
            .await
            .expect("choose the file");
        click(&c, "button.primary").await;
        wait_path(&c, "/ui/jobs/transcode%2Fdispatch-", "/ui/jobs/transcode").await;
        let shown = wait_text(&c, "#payload-view", "the uploaded payload", |t| {
            !t.is_empty()
        })
        .await;
        assert_eq!(
            shown,
            content.trim_end(),
            "the payload as uploaded, as text"
        );
        let help = text(&c, "#input .help").await;
        assert!(
            help.starts_with(&format!("{} bytes", content.len())),
            "{help}"
        );

        // The chart: samples every 5 s; wait for three (a reload shows new ones).
        c.goto(&format!("{base}/ui/jobs")).await.unwrap();
        let deadline = Instant::now() + PAGE_WAIT;
        let points = loop {
            let points = chart_points(&c, "transcode").await;
            if points.len() >= 4 {
                break points;
            }
            assert!(
                Instant::now() < deadline,
                "the chart never got 3 samples: {points:?}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.refresh().await.unwrap();
        };
        let label = c
            .find(Locator::Css("table.jobs svg"))
            .await
            .unwrap()
            .attr("aria-label")
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(!label.is_empty(), "the chart has a label");
        assert!(
            points.windows(2).all(|w| w[0].0 <= w[1].0),
            "points in time order: {points:?}"
        );
        // 3 pending is the deepest the queue was: the last point at the top (y = 1).
        let (_, y) = points[points.len() - 1];
        assert!(
            (y - 1.0).abs() < 0.01,
            "the pending line at its top: {points:?}"
        );
        assert_eq!(text(&c, "table.jobs tbody tr td:nth-child(3)").await, "3");
    })
    .await;
}
