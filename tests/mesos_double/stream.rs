//! RecordIO framing of the SUBSCRIBE event stream (`<decimal length>\n<bytes>`),
//! records in the subscription's negotiated encoding.

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::codec::{encode_event, Encoding};

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
    fn encode(&self, event: &Value) -> Option<Vec<u8>> {
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
