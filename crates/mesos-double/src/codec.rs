//! The two encodings of the scheduler API: calls in (`Content-Type`), events out (`Accept` of
//! SUBSCRIBE), following mesos-scheduler-api.md §1.1 and §1.7.
//!
//! Protobuf goes through the double's own schema (`proto/`, compiled by `build.rs`) as
//! dynamic messages (prost-reflect), not through the `dispatch` crate's hand-written prost
//! types: a wrong field number or type on either side shows as a mismatch. A protobuf call
//! becomes the Mesos JSON `Value` the handler processes (proto field names, enums by name,
//! 64-bit integers as numbers, bytes as base64: Mesos's JSON shape); a call missing a
//! `required` field is refused, as the master's protobuf parser refuses it. Events are built as
//! JSON and encoded through the same schema; a key the schema does not know is an error of
//! the double (the event is reported and not sent).

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{
    Cardinality, DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor,
    ReflectMessage, SerializeOptions, Value as Field,
};
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

/// The compiled `mesos.v1` and `mesos.v1.scheduler` descriptors.
fn schema() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let bytes: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mesos.bin"));
        DescriptorPool::decode(bytes).expect("the compiled Mesos descriptors load")
    })
}

fn message(name: &str) -> MessageDescriptor {
    schema()
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} is in proto/"))
}

/// A protobuf `scheduler.Call` as the Mesos JSON value the handler processes.
pub fn decode_protobuf_call(body: &[u8]) -> Result<Value, String> {
    let call = DynamicMessage::decode(message("mesos.v1.scheduler.Call"), body)
        .map_err(|_| PROTOBUF_PARSE_ERROR.to_string())?;
    if missing_required(&call).is_some() {
        return Err(PROTOBUF_PARSE_ERROR.to_string());
    }
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    call.serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|_| PROTOBUF_PARSE_ERROR.to_string())
}

/// The first `required` field left unset in `msg` or in a message it holds, as a path.
fn missing_required(msg: &DynamicMessage) -> Option<String> {
    for field in msg.descriptor().fields() {
        if field.cardinality() == Cardinality::Required && !msg.has_field(&field) {
            return Some(field.name().to_string());
        }
        if !msg.has_field(&field) {
            continue;
        }
        let value = msg.get_field(&field);
        let inner: Vec<&DynamicMessage> = match &*value {
            Field::Message(m) => vec![m],
            Field::List(items) => items.iter().filter_map(Field::as_message).collect(),
            Field::Map(entries) => entries.values().filter_map(Field::as_message).collect(),
            _ => Vec::new(),
        };
        for m in inner {
            if let Some(path) = missing_required(m) {
                return Some(format!("{}.{path}", field.name()));
            }
        }
    }
    None
}

/// One event in the stream's encoding (the RecordIO payload).
pub fn encode_event(event: &Value, encoding: Encoding) -> Result<Vec<u8>, String> {
    match encoding {
        Encoding::Json => serde_json::to_vec(event).map_err(|e| e.to_string()),
        Encoding::Protobuf => {
            let options = DeserializeOptions::new().deny_unknown_fields(true);
            DynamicMessage::deserialize_with_options(
                message("mesos.v1.scheduler.Event"),
                event.clone(),
                &options,
            )
            .map(|m| m.encode_to_vec())
            .map_err(|e| format!("event {event} has no protobuf form: {e}"))
        }
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

/// SUBSCRIBE's stream encoding: JSON wins when acceptable, no header means JSON, `None` when
/// neither is acceptable (406). With `only`, that encoding or nothing.
pub fn negotiate(accept: Option<&str>, only: Option<Encoding>) -> Option<Encoding> {
    let admitted = |e: Encoding| accept.is_none_or(|a| admits(a, e.content_type()));
    match only {
        Some(e) => admitted(e).then_some(e),
        None if admitted(Encoding::Json) => Some(Encoding::Json),
        None if admitted(Encoding::Protobuf) => Some(Encoding::Protobuf),
        None => None,
    }
}
