//! `GET /v1/event/stream`: Nomad's event stream, fed by the state writer's commits
//! (`state::events`). Newline-delimited JSON: one `{"Index": N, "Events": [...]}` frame per
//! index with matching events, and a heartbeat `{}` at once and every 30 seconds.
//!
//! Query: `index` (resume from this index, inclusive; 0 replays what the buffer holds),
//! `topic` (repeatable, `Topic` or `Topic:Key`; none means every topic), `namespace`
//! (`default`; `*` for all). Topics with objects: `Job` (key: job ID; a child's parent is
//! one of its filter keys, so `Job:transcode` follows the parent and every child),
//! `Allocation` and `Evaluation` (filter keys: the child and its parent). `Deployment` and
//! `Node` are accepted and quiet: Dispatch has none.
//!
//! A client that reads too slowly falls behind the buffer and its stream ends (Nomad's
//! `event dropped from buffer`); it resubscribes from the last index it saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{json, Value};

use super::error::ApiError;
use super::wire::{Allocation, Evaluation};
use super::AppState;
use crate::state::events::{Event, EventBatch, EventObject, Subscription};

/// How often an idle stream sends `{}` (Nomad: 30 s).
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Which events a subscriber asked for: topic -> keys (`*` = any).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicFilter {
    topics: HashMap<String, Vec<String>>,
    namespace: String,
}

impl TopicFilter {
    /// From the query's `topic` values (`Topic` or `Topic:Key`) and `namespace`.
    pub fn parse(topics: &[String], namespace: Option<&str>) -> Result<TopicFilter, ApiError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        if topics.is_empty() {
            map.insert("*".into(), vec!["*".into()]);
        }
        for t in topics {
            let (topic, key) = match t.split(':').collect::<Vec<_>>()[..] {
                [topic] => (topic, "*"),
                [topic, key] => (topic, key),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: {t}"
                    )))
                }
            };
            let key = if key.is_empty() { "*" } else { key };
            map.entry(topic.to_string())
                .or_default()
                .push(key.to_string());
        }
        Ok(TopicFilter {
            topics: map,
            namespace: namespace
                .filter(|n| !n.is_empty())
                .unwrap_or("default")
                .to_string(),
        })
    }

    pub fn matches(&self, e: &Event) -> bool {
        if self.namespace != "*" && namespace(e) != self.namespace {
            return false;
        }
        let wanted = |keys: &Vec<String>| {
            keys.iter()
                .any(|k| k == "*" || **k == *e.key || e.filter_keys.iter().any(|f| **k == **f))
        };
        self.topics.get("*").is_some_and(wanted)
            || self.topics.get(e.topic.as_str()).is_some_and(wanted)
    }
}

fn namespace(e: &Event) -> &str {
    match &e.object {
        EventObject::Job(job) => &job.namespace,
        EventObject::Child(d) | EventObject::Evaluation(d) => &d.job.namespace,
        EventObject::Allocation { dispatch, .. } => &dispatch.job.namespace,
        EventObject::JobDeleted(_) | EventObject::ChildDeleted { .. } => "default",
    }
}

/// An event in Nomad's wire shape.
pub fn event_json(e: &Event) -> Value {
    let payload = match &e.object {
        EventObject::Job(job) => json!({ "Job": &**job }),
        EventObject::Child(d) => json!({ "Job": d.to_child_job(None) }),
        EventObject::JobDeleted(id) => json!({
            "Job": {"ID": &**id, "Name": &**id, "Namespace": "default"},
            "Deleted": true,
        }),
        EventObject::ChildDeleted { id, parent } => json!({
            "Job": {
                "ID": &**id, "Name": &**id, "ParentID": &**parent,
                "Namespace": "default", "Dispatched": true,
            },
            "Deleted": true,
        }),
        EventObject::Allocation { dispatch, .. } => {
            let alloc = Allocation::of_dispatch(dispatch)
                .into_iter()
                .find(|a| *a.id == *e.key);
            json!({ "Allocation": alloc })
        }
        EventObject::Evaluation(d) => json!({ "Evaluation": Evaluation::of_dispatch(d) }),
    };
    let filter_keys = if e.filter_keys.is_empty() {
        Value::Null
    } else {
        e.filter_keys.iter().map(|k| Value::from(&**k)).collect()
    };
    json!({
        "Topic": e.topic.as_str(),
        "Type": e.kind,
        "Key": &*e.key,
        "Namespace": namespace(e),
        "FilterKeys": filter_keys,
        "Index": e.index,
        "Payload": payload,
    })
}

/// The lines for these batches: one frame per batch with matching events.
fn frames(batches: &[Arc<EventBatch>], filter: &TopicFilter) -> Vec<u8> {
    let mut out = Vec::new();
    for batch in batches {
        let events: Vec<Value> = batch
            .events
            .iter()
            .filter(|e| filter.matches(e))
            .map(event_json)
            .collect();
        if events.is_empty() {
            continue;
        }
        let frame = json!({"Index": batch.index, "Events": events});
        if serde_json::to_writer(&mut out, &frame).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// The body: a heartbeat at once, then frames as batches are committed, a heartbeat after
/// every `heartbeat` of silence; it ends when the subscriber falls out of the buffer.
pub fn body_stream(
    subscription: Subscription,
    filter: TopicFilter,
    heartbeat: Duration,
) -> impl Stream<Item = Bytes> + Send {
    struct S {
        sub: Subscription,
        filter: TopicFilter,
        first: bool,
        heartbeat: Duration,
    }
    let s = S {
        sub: subscription,
        filter,
        first: true,
        heartbeat,
    };
    futures_util::stream::unfold(s, |mut s| async move {
        if s.first {
            s.first = false;
            return Some((Bytes::from_static(b"{}\n"), s));
        }
        loop {
            let next = tokio::time::timeout(s.heartbeat, s.sub.next()).await;
            match next {
                Err(_) => return Some((Bytes::from_static(b"{}\n"), s)),
                Ok(Err(lagged)) => {
                    tracing::debug!("event stream subscriber dropped: {lagged}");
                    return None;
                }
                Ok(Ok(batches)) => {
                    let out = frames(&batches, &s.filter);
                    if !out.is_empty() {
                        return Some((Bytes::from(out), s));
                    }
                }
            }
        }
    })
}

/// Every `topic=` value of the query, decoded.
pub fn topics(raw: Option<&str>) -> Vec<String> {
    super::query::query_pairs(raw)
        .into_iter()
        .filter_map(|(k, v)| (k == "topic").then_some(v))
        .collect()
}

pub async fn stream(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = super::query::Query::parse(raw.as_deref());
    let index = match query.get("index") {
        None | Some("") => 0,
        Some(i) => i
            .parse::<u64>()
            .map_err(|e| ApiError::BadRequest(format!("Unable to parse index: {e}")))?,
    };
    let filter = TopicFilter::parse(&topics(raw.as_deref()), query.get("namespace"))?;
    let subscription = app.state.subscribe_events(index);
    let body = futures_util::StreamExt::map(body_stream(subscription, filter, HEARTBEAT), |b| {
        Ok::<_, std::io::Error>(b)
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::events::{EventFeed, Topic};
    use futures_util::StreamExt;

    fn event(topic: Topic, key: &str, filter_keys: &[&str]) -> Event {
        Event {
            topic,
            kind: "JobRegistered",
            key: key.into(),
            filter_keys: filter_keys.iter().map(|k| (*k).into()).collect(),
            index: 1,
            object: EventObject::JobDeleted(key.into()),
        }
    }

    #[test]
    fn topics_filter_by_key_and_filter_keys() {
        let f = TopicFilter::parse(&["Job:transcode".into()], None).unwrap();
        assert!(f.matches(&event(Topic::Job, "transcode", &[])));
        assert!(f.matches(&event(Topic::Job, "transcode/dispatch-1-a", &["transcode"])));
        assert!(!f.matches(&event(Topic::Job, "gif", &[])));
        assert!(!f.matches(&event(Topic::Allocation, "x", &["transcode"])));
        let all = TopicFilter::parse(&[], None).unwrap();
        assert!(all.matches(&event(Topic::Evaluation, "e", &[])));
        let allocs = TopicFilter::parse(&["Allocation".into()], None).unwrap();
        assert!(allocs.matches(&event(Topic::Allocation, "x", &[])));
        assert!(!allocs.matches(&event(Topic::Job, "x", &[])));
        let err = TopicFilter::parse(&["Job:a:b".into()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Job:a:b"
        );
        let other_ns = TopicFilter::parse(&["Job".into()], Some("prod")).unwrap();
        assert!(!other_ns.matches(&event(Topic::Job, "transcode", &[])));
    }

    /// `{}` at once, then after every heartbeat interval of silence (time is paused: the
    /// runtime jumps to each timer).
    #[tokio::test(start_paused = true)]
    async fn heartbeats_while_idle() {
        let feed = EventFeed::new(8);
        let filter = TopicFilter::parse(&[], None).unwrap();
        let mut body = Box::pin(body_stream(feed.subscribe(0), filter, HEARTBEAT));
        let started = tokio::time::Instant::now();
        assert_eq!(&body.next().await.unwrap()[..], b"{}\n");
        assert_eq!(&body.next().await.unwrap()[..], b"{}\n");
        assert_eq!(started.elapsed(), HEARTBEAT);
        assert_eq!(&body.next().await.unwrap()[..], b"{}\n");
        assert_eq!(started.elapsed(), 2 * HEARTBEAT);
    }
}
