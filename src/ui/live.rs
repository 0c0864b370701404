//! `GET /ui/live?topic=...&index=N`: the pages' change feed. The event stream's topics and
//! filter (`api::events::TopicFilter`), but one small line per commit that touched what a
//! page shows (`{"Index":N}`) instead of the objects: a page refetches itself, so a busy
//! queue costs the browser a few bytes per change, not a child's JSON. Heartbeats (`{}`)
//! as in the event stream; a follower too slow for the feed's buffer gets `{"Lagged":true}`
//! and the stream ends (the script reloads the page's live regions and follows again).
//! With ACLs on, only changes to jobs the caller may read (`read-job`) make a line.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Ui;
use crate::api::events::{topics, TopicFilter};

/// How often an idle feed says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub async fn stream(ui: &Ui, raw: Option<&str>) -> Response {
    let query = crate::api::query_pairs(raw);
    let index = query
        .iter()
        .rev()
        .find(|(k, _)| k == "index")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        // No index: from the next commit on.
        .unwrap_or_else(|| ui.app.state.committed_index() + 1);
    let filter = match TopicFilter::parse(&topics(raw), None) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                e.to_string(),
            )
                .into_response()
        }
    };
    let sub = ui.app.state.subscribe_events(index);
    let viewer = ui.viewer.clone();
    let lines = futures_util::stream::unfold(
        (sub, filter, true, false),
        move |(mut sub, filter, first, over)| {
            let viewer = viewer.clone();
            async move {
                if over {
                    return None;
                }
                if first {
                    return Some((Bytes::from_static(b"{}\n"), (sub, filter, false, false)));
                }
                loop {
                    match tokio::time::timeout(HEARTBEAT, sub.next()).await {
                        Err(_) => {
                            return Some((Bytes::from_static(b"{}\n"), (sub, filter, false, false)))
                        }
                        Ok(Err(_lagged)) => {
                            return Some((
                                Bytes::from_static(b"{\"Lagged\":true}\n"),
                                (sub, filter, false, true),
                            ))
                        }
                        Ok(Ok(batches)) => {
                            let last = batches
                                .iter()
                                .filter(|b| {
                                    b.events
                                        .iter()
                                        .any(|e| filter.matches(e) && readable(&viewer, e))
                                })
                                .map(|b| b.index)
                                .max();
                            if let Some(index) = last {
                                let line = format!("{{\"Index\":{index}}}\n");
                                return Some((Bytes::from(line), (sub, filter, false, false)));
                            }
                        }
                    }
                }
            }
        },
    );
    let body = futures_util::StreamExt::map(lines, Ok::<_, std::io::Error>);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Whether the caller may read what `e` is about (its key, or the job or child it belongs to).
fn readable(viewer: &super::access::Viewer, e: &crate::state::events::Event) -> bool {
    std::iter::once(&e.key)
        .chain(e.filter_keys.iter())
        .any(|k| viewer.may_read(k))
}
