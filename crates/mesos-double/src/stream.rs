//! SUBSCRIBE and its event stream: a new stream ID per subscription, one live stream per
//! framework (an older one gets ERROR "Framework failed over" and ends: capture
//! `failover-json/2-second-subscribe-same-id`), refusals as 200 + ERROR (`4-subscribe-torn-down-id`),
//! SUBSCRIBED + an immediate HEARTBEAT (`json/02-subscribe`), and RecordIO framing
//! (`<decimal length>\n<bytes>`, `subscribe-stream.recordio`) of records in the negotiated
//! encoding, optionally split across HTTP chunks.

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::codec::{encode_event, Encoding};
use crate::http::principal_mismatch;
use crate::state::{Framework, Shared, St};

/// Frames one payload as a RecordIO record.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Frames one JSON event as a RecordIO record.
pub fn record(event: &Value) -> Vec<u8> {
    frame(&serde_json::to_vec(event).expect("event serializes"))
}

/// The server side of one subscription stream.
pub struct StreamTx {
    pub stream_id: String,
    pub encoding: Encoding,
    tx: UnboundedSender<Bytes>,
    /// Split every record into three HTTP chunks (length line cut in two,
    /// payload cut in two) so clients prove they do not rely on chunk boundaries.
    split: bool,
}

impl StreamTx {
    pub fn new(
        stream_id: String,
        encoding: Encoding,
        tx: UnboundedSender<Bytes>,
        split: bool,
    ) -> Self {
        StreamTx {
            stream_id,
            encoding,
            tx,
            split,
        }
    }

    /// The event as a record in this stream's encoding; an event without a
    /// protobuf form is reported and not sent.
    pub(crate) fn encode(&self, event: &Value) -> Option<Vec<u8>> {
        match encode_event(event, self.encoding) {
            Ok(p) => Some(frame(&p)),
            Err(e) => {
                eprintln!("mesos double: {e}");
                None
            }
        }
    }

    /// Sends several events; with `split` off they are coalesced into one chunk
    /// (records merged within a chunk).
    pub fn send_all(&self, events: &[Value]) -> bool {
        if self.split {
            return events.iter().all(|e| self.send(e));
        }
        let mut buf = Vec::new();
        for e in events {
            buf.extend(self.encode(e).unwrap_or_default());
        }
        self.tx.send(Bytes::from(buf)).is_ok()
    }

    pub fn send(&self, event: &Value) -> bool {
        let Some(rec) = self.encode(event) else {
            return false;
        };
        if !self.split || rec.len() < 4 {
            return self.tx.send(Bytes::from(rec)).is_ok();
        }
        let nl = rec.iter().position(|b| *b == b'\n').unwrap_or(1);
        let cut1 = (nl / 2).max(1);
        let cut2 = nl + 1 + (rec.len() - nl - 1) / 2;
        let ok = self.tx.send(Bytes::copy_from_slice(&rec[..cut1])).is_ok()
            && self
                .tx
                .send(Bytes::copy_from_slice(&rec[cut1..cut2]))
                .is_ok();
        ok && self.tx.send(Bytes::copy_from_slice(&rec[cut2..])).is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Why a well-formed SUBSCRIBE is refused (200 + ERROR event), if it is.
pub(crate) fn subscribe_refusal(s: &St, call: &Value, principal: Option<&str>) -> Option<String> {
    let info = &call["subscribe"]["framework_info"];
    let requested = info["id"]["value"].as_str();
    if requested.is_some_and(|id| s.removed.contains(id)) {
        return Some("Framework has been removed".into());
    }
    if let Err(e) = crate::framework::suppressed_roles(info, &call["subscribe"]) {
        return Some(e);
    }
    principal_mismatch(principal, info)
}

pub(crate) fn subscribe(
    st: &Shared,
    call: &Value,
    encoding: Encoding,
    principal: Option<&str>,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let stream_id = uuid::Uuid::new_v4().to_string();
    let mut s = st.lock();
    let split = s.cfg.split_records;
    let tx = StreamTx::new(stream_id.clone(), encoding, tx, split);
    let info = call["subscribe"]["framework_info"].clone();
    let requested = info["id"]["value"].as_str().map(String::from);
    if let Some(message) = subscribe_refusal(&s, call, principal) {
        tx.send(&json!({"type": "ERROR", "error": {"message": message}}));
        drop(tx);
    } else {
        // One live subscription per framework: the old stream is failed over.
        let same = s
            .framework
            .as_ref()
            .is_some_and(|f| Some(&f.id) == requested.as_ref());
        if let Some(old) = s.framework.as_mut() {
            if let Some(old_tx) = old.stream.take() {
                old_tx
                    .send(&json!({"type": "ERROR", "error": {"message": "Framework failed over"}}));
            }
        }
        if !same {
            // A different framework: this double serves one framework at a time.
            s.remove_framework();
        }
        s.drop_offers(false);
        s.filters.clear();
        let id = match requested {
            Some(id) => id,
            None => {
                s.fw_seq += 1;
                format!("{}-{:04}", s.master_id, s.fw_seq)
            }
        };
        let suppressed =
            crate::framework::suppressed_roles(&info, &call["subscribe"]).unwrap_or_default();
        s.framework = Some(Framework {
            id: id.clone(),
            info,
            stream: None,
            disconnected_at: None,
            suppressed,
            last_heartbeat: Instant::now(),
        });
        let subscribed = json!({"type": "SUBSCRIBED", "subscribed": {
        "framework_id": {"value": id},
        "heartbeat_interval_seconds": s.cfg.heartbeat_interval.as_secs_f64(),
        "master_info": s.master_info(),
        }});
        let hb = json!({"type": "HEARTBEAT"});
        tx.send_all(&[subscribed.clone(), hb.clone()]);
        s.events.push(subscribed);
        s.events.push(hb);
        s.framework.as_mut().unwrap().stream = Some(tx);
        // Unacknowledged updates are re-sent at once after a re-subscribe.
        for t in s.tasks.values_mut() {
            t.head_sent = None;
        }
        s.pump();
        s.resend_operations_now();
        s.allocate_all();
    }
    drop(s);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, encoding.content_type())
        .header("Mesos-Stream-Id", stream_id)
        .body(Body::from_stream(body))
        .unwrap()
}
