//! The web UI under `/ui/` (Nomad's path; `/` redirects there): server-rendered pages that
//! read without JavaScript, plus one small script for live updates.
//!
//! Pages: the jobs (`/ui/jobs`), a job or a child (`/ui/jobs/<id>`, Nomad's URL shape: the
//! ID as one encoded segment, `%2F` for a child's `/`; a raw `/`, an `@namespace` suffix and
//! Nomad's sub-page names are accepted too), the cluster (`/ui/cluster`). Forms post to
//! `/ui/jobs/<id>/dispatch`, `/ui/jobs/<child>/stop` and `/ui/jobs/<child>/redispatch`.
//! `/ui/live` is the pages' change feed: an index line whenever a commit touched what a
//! page shows (the event stream's filter, without payloads).
//!
//! With ACLs on, every page and form is authorised as the API route it mirrors, with the
//! token the page's script sends (`access.rs`); without a token the `anonymous` policy
//! applies, and a page it may not read answers 403 with the token field.
//!
//! The UI reads the state only through `State`'s query methods, and the cluster through the
//! `ClusterView` door; it dispatches and stops through the API's own paths
//! (`api::submit_dispatch`, the writer's commands), so validation and messages are the API's.
//! Templates live in `templates/` (see `templates.rs`); the queue chart's samples in
//! `history.rs`.

mod access;
mod child;
mod cluster;
mod format;
pub mod history;
mod job;
mod jobs;
mod live;
mod templates;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tera::Context;

use crate::api::AppState;
use access::{Route, Viewer};
pub use history::QueueHistory;
pub use templates::TemplateError;
use templates::Templates;

/// `ui { ... }` and `-ui-dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    /// When false, `/ui/` answers a page saying the UI is off (as Nomad's does).
    pub enabled: bool,
    /// Serve templates and assets from this directory, read on every request.
    pub dir: Option<PathBuf>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            dir: None,
        }
    }
}

/// What every UI handler reaches.
#[derive(Clone)]
pub struct Ui {
    app: AppState,
    templates: Arc<Templates>,
    history: Arc<QueueHistory>,
    enabled: bool,
    /// Who the request being answered is from (set per request).
    viewer: Arc<Viewer>,
}

/// The UI's routes (merged with the API's by the server), and the sampler of the queue
/// chart started on the current runtime.
pub fn router(app: AppState, config: &UiConfig) -> Result<Router, TemplateError> {
    let templates = Arc::new(Templates::load(config.dir.as_deref())?);
    let history = QueueHistory::new();
    history.spawn(app.state.clone(), app.clock.clone());
    let ui = Ui {
        app,
        templates,
        history,
        enabled: config.enabled,
        viewer: Arc::new(Viewer::everyone()),
    };
    Ok(Router::new()
        .route("/", get(root))
        .route("/ui", get(to_ui))
        .route("/ui/", get(index))
        .route("/ui/{*rest}", get(page).post(action))
        .layer(axum::extract::DefaultBodyLimit::max(job::FORM_LIMIT))
        .with_state(ui))
}

/// `/` -> `/ui/`, keeping the query (Nomad answers 307).
async fn root(RawQuery(raw): RawQuery) -> Response {
    let to = match raw {
        Some(q) if !q.is_empty() => format!("/ui/?{q}"),
        _ => "/ui/".to_string(),
    };
    Redirect::temporary(&to).into_response()
}

async fn to_ui() -> Response {
    Redirect::temporary("/ui/").into_response()
}

async fn index(State(ui): State<Ui>) -> Response {
    if !ui.enabled {
        return ui.disabled();
    }
    Redirect::temporary("/ui/jobs").into_response()
}

async fn page(
    State(ui): State<Ui>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !ui.enabled {
        return ui.disabled();
    }
    if let Some(name) = rest.strip_prefix("assets/") {
        // the stylesheet and script: public, as the API's status routes are
        return ui.asset(name);
    }
    let ui = ui.for_request(&headers);
    let query = crate::api::query_pairs(raw.as_deref());
    match rest.as_str() {
        "jobs" | "jobs/" => match ui.refused(&Route::Jobs) {
            Some(refusal) => refusal,
            None => jobs::page(&ui).await,
        },
        "cluster" | "clients" | "servers" => match ui.refused(&Route::Cluster) {
            Some(refusal) => refusal,
            None => cluster::page(&ui).await,
        },
        "live" => {
            let topics = crate::api::events::topics(raw.as_deref());
            match ui.refused_plain(&Route::Live(&topics)) {
                Some(refusal) => refusal,
                None => live::stream(&ui, raw.as_deref()).await,
            }
        }
        other => match other.strip_prefix("jobs/") {
            Some(id) => job_page(&ui, id, &query).await,
            None => ui.not_found(&format!("There is no page /ui/{other}.")),
        },
    }
}

/// Nomad's job sub-pages: all of them show on the job's one page.
const SUB_PAGES: &[&str] = &[
    "definition",
    "versions",
    "deployments",
    "allocations",
    "evaluations",
    "clients",
    "services",
    "variables",
    "dispatch",
];

/// `<id>[@namespace][/<sub-page>]` -> the job or child ID.
fn job_id_of(path: &str) -> &str {
    let mut id = path.trim_end_matches('/');
    if let Some((head, tail)) = id.rsplit_once('/') {
        if SUB_PAGES.contains(&tail) {
            id = head;
        }
    }
    match id.rsplit_once('@') {
        Some((head, ns)) if !ns.contains('/') && !head.is_empty() => head,
        _ => id,
    }
}

async fn job_page(ui: &Ui, path: &str, query: &[(String, String)]) -> Response {
    let exact = path.trim_end_matches('/');
    // An ID that ends like a sub-page name is still an ID when it exists.
    let id = {
        let s = ui.app.state.read();
        if s.job(exact).is_some() || s.dispatch(exact).is_some() {
            exact.to_string()
        } else {
            job_id_of(path).to_string()
        }
    };
    // authorised before it is looked up, as the API is (a token that may not read a job
    // cannot tell whether it exists)
    if let Some(refusal) = ui.refused(&Route::Job(&id)) {
        return refusal;
    }
    let (is_parent, is_child) = {
        let s = ui.app.state.read();
        (s.job(&id).is_some(), s.dispatch(&id).is_some())
    };
    if is_parent {
        job::page(ui, &id, query, None).await
    } else if is_child {
        child::page(ui, &id, query, None).await
    } else {
        ui.not_found(&format!("No job or dispatched child has the ID {id:?}."))
    }
}

async fn action(State(ui): State<Ui>, Path(rest): Path<String>, request: Request) -> Response {
    if !ui.enabled {
        return ui.disabled();
    }
    if let Some(refusal) = cross_site(request.headers()) {
        return refusal;
    }
    let ui = ui.for_request(request.headers());
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(path) = rest.strip_prefix("jobs/") else {
        return ui.not_found(&format!("Nothing to post to at /ui/{rest}."));
    };
    if let Some(id) = path.strip_suffix("/dispatch") {
        if let Some((need, message)) = ui.viewer.refusal(&ui.app, &Route::Dispatch(id)) {
            // A job the caller may read: its page, the refusal on the form.
            let readable = ui.viewer.refusal(&ui.app, &Route::Job(id)).is_none()
                && ui.app.state.read().job(id).is_some();
            if readable {
                let text = format!("{message}: dispatching needs {}", need.describe());
                return job::refused(&ui, id, text).await;
            }
            return ui
                .refused(&Route::Dispatch(id))
                .unwrap_or_else(|| ui.not_found(id));
        }
        if let Some(too_many) =
            crate::api::auth::over_dispatch_rate(&ui.app, ui.identity(), peer, id)
        {
            return too_many;
        }
        return job::dispatch(&ui, id, request).await;
    }
    if let Some(id) = path.strip_suffix("/stop") {
        if let Some(refusal) = ui.refused(&Route::Stop(id)) {
            return refusal;
        }
        return child::stop(&ui, id).await;
    }
    if let Some(id) = path.strip_suffix("/redispatch") {
        // a new child of the parent: dispatch-job on it (and read-job on this child, whose
        // meta and payload it copies)
        let parent = id.split_once('/').map_or(id, |(p, _)| p);
        for route in [Route::Job(id), Route::Dispatch(parent)] {
            if let Some(refusal) = ui.refused(&route) {
                return refusal;
            }
        }
        if let Some(too_many) =
            crate::api::auth::over_dispatch_rate(&ui.app, ui.identity(), peer, parent)
        {
            return too_many;
        }
        return child::redispatch(&ui, id).await;
    }
    ui.not_found(&format!("Nothing to post to at /ui/{rest}."))
}

/// Forms post only from the UI's own pages: a post another site makes a browser send is
/// refused (the `Origin` names another host).
fn cross_site(headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    if origin == "null" || origin_host != host {
        return Some(
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "cross-site form post refused: Origin {origin} is not this server ({host})"
                ),
            )
                .into_response(),
        );
    }
    None
}

/// A page's change feed: the event topics it follows and the index it was rendered at.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    pub topics: String,
    pub index: u64,
}

impl Ui {
    /// This UI answering one request: its caller resolved from the request's headers.
    fn for_request(&self, headers: &HeaderMap) -> Ui {
        Ui {
            viewer: Arc::new(Viewer::of(&self.app, headers)),
            ..self.clone()
        }
    }

    fn identity(&self) -> &crate::api::auth::Identity {
        self.viewer.identity()
    }

    /// The 403 page when the caller may not use `route`: what is missing, and the token
    /// field to give a token that has it.
    fn refused(&self, route: &Route) -> Option<Response> {
        let (need, message) = self.viewer.refusal(&self.app, route)?;
        let mut c = self.context("Permission denied", "", None);
        c.insert("heading", "403 · Permission denied");
        c.insert("reason", message);
        c.insert("need", &need.describe());
        Some(self.render(StatusCode::FORBIDDEN, "denied.html", &c))
    }

    /// A refusal as the API words it, for the script's feeds (not a page).
    fn refused_plain(&self, route: &Route) -> Option<Response> {
        let (need, message) = self.viewer.refusal(&self.app, route)?;
        Some(
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{message}: needs {}", need.describe()),
            )
                .into_response(),
        )
    }

    /// The context every page starts from.
    fn context(&self, title: &str, section: &str, live: Option<Live>) -> Context {
        let mut c = Context::new();
        c.insert("title", title);
        c.insert("section", section);
        c.insert("live", &live);
        c.insert("acl", &self.viewer.access());
        c.insert("can", &self.viewer.anywhere());
        c.insert("version", env!("CARGO_PKG_VERSION"));
        c.insert("asset_version", &self.templates.asset_version);
        c
    }

    fn render(&self, status: StatusCode, name: &str, context: &Context) -> Response {
        match self.templates.render(name, context) {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!("{e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("the page cannot be shown: {e}"),
                )
                    .into_response()
            }
        }
    }

    fn not_found(&self, message: &str) -> Response {
        self.message(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub(crate) fn message(&self, status: StatusCode, heading: &str, message: &str) -> Response {
        let mut c = self.context(heading, "", None);
        c.insert("heading", heading);
        c.insert("message", message);
        self.render(status, "not_found.html", &c)
    }

    fn disabled(&self) -> Response {
        self.render(StatusCode::OK, "disabled.html", &Context::new())
    }

    fn asset(&self, name: &str) -> Response {
        match self.templates.asset(name) {
            Some((content_type, body)) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                body.into_owned(),
            )
                .into_response(),
            None => self.not_found(&format!("There is no asset {name:?}.")),
        }
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// After a form post: see the result page (303, so a reload does not post again).
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_from_nomad_ui_paths() {
        assert_eq!(job_id_of("transcode"), "transcode");
        assert_eq!(job_id_of("transcode@default"), "transcode");
        assert_eq!(job_id_of("transcode@default/dispatch"), "transcode");
        assert_eq!(
            job_id_of("transcode/dispatch-1796651101-baa3958e@default"),
            "transcode/dispatch-1796651101-baa3958e"
        );
        assert_eq!(
            job_id_of("transcode/dispatch-1796651101-baa3958e/definition"),
            "transcode/dispatch-1796651101-baa3958e"
        );
    }

    /// Every template renders with the contexts the pages give (undefined variables are
    /// errors in tera 2, so this catches a page and its template drifting apart).
    #[test]
    fn embedded_templates_parse() {
        Templates::load(None).expect("templates");
    }
}
