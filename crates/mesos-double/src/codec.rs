//! The two encodings of the scheduler API: calls in (`Content-Type`), events
//! out (`Accept` of SUBSCRIBE), following mesos-scheduler-api.md §1.1.
//!
//! Protobuf calls are decoded with the crate's prost messages and turned into
//! the Mesos JSON `Value` the handler processes (the prost types serialize in
//! Mesos's JSON shape); protobuf events are built from the JSON `Value` the
//! double produces. Whatever the crate's `proto` does not model is lost on the
//! way (e.g. RESERVE/CREATE operations in a protobuf ACCEPT).

use dispatch::cluster::mesos::proto;
use prost::Message;
use serde_json::Value;

pub const JSON: &str = "application/json";
pub const PROTOBUF: &str = "application/x-protobuf";

/// Encoding of a request body or of a subscription's event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON,
            Encoding::Protobuf => PROTOBUF,
        }
    }
}

/// The real master's answer to an undecodable protobuf body.
pub const PROTOBUF_PARSE_ERROR: &str = "Failed to parse body into Call protobuf";

/// A protobuf `scheduler.Call` as the Mesos JSON value the handler processes.
pub fn decode_protobuf_call(body: &[u8]) -> Result<Value, String> {
    let call = proto::Call::decode(body).map_err(|_| PROTOBUF_PARSE_ERROR.to_string())?;
    serde_json::to_value(&call).map_err(|_| PROTOBUF_PARSE_ERROR.to_string())
}

/// One event in the stream's encoding (the RecordIO payload).
pub fn encode_event(event: &Value, encoding: Encoding) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Json => serde_json::to_vec(event).map_err(|e| e.to_string()),
        Encoding::Protobuf => serde_json::from_value::<proto::Event>(event.clone())
            .map(|e| e.encode_to_vec())
            .map_err(|e| format!("event {event} has no protobuf form: {e}")),
    }
}

/// Whether an `Accept` header admits `media_type` (`q=0` excludes it).
fn admits(accept: &str, media_type: &str) -> bool {
    accept.split(',').any(|p| {
        let mut parts = p.split(';');
        let mt = parts.next().unwrap_or("").trim();
        let q0 = parts.any(|x| {
            let x = x.trim().replace(' ', "");
            x == "q=0" || x == "q=0.0" || x == "q=0.00" || x == "q=0.000"
        });
        !q0 && (mt == media_type || mt == "*/*" || mt == "application/*")
    })
}

/// SUBSCRIBE's stream encoding: JSON wins when acceptable, no header means
/// JSON, `None` when neither is acceptable (406).
pub fn negotiate(accept: Option<&str>) -> Option<Encoding> {
    let Some(a) = accept else {
        return Some(Encoding::Json);
    };
    if admits(a, JSON) {
        Some(Encoding::Json)
    } else if admits(a, PROTOBUF) {
        Some(Encoding::Protobuf)
    } else {
        None
    }
}
