//! The two encodings of the scheduler API, behind one interface: calls go out as bytes with
//! the exact `Content-Type`, events come in as bytes of one RecordIO record.
//!
//! Both decode into the JSON codec's `Event` (offers and statuses as `cluster::types`), so the
//! driver does not care which one is on the wire.

use prost::Message;

use super::{convert, json, proto};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot decode a JSON event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot decode a protobuf event: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error(transparent)]
    Convert(#[from] convert::ConvertError),
}

impl Encoding {
    /// The exact `Content-Type` (and SUBSCRIBE `Accept`) string; the master compares it
    /// literally.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Protobuf => "application/x-protobuf",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    }

    pub fn encode_call(self, call: &json::Call) -> Result<Vec<u8>, CodecError> {
        match self {
            Encoding::Json => Ok(json::encode_call(call)),
            Encoding::Protobuf => Ok(convert::call_to_proto(call)?.encode_to_vec()),
        }
    }

    pub fn decode_event(self, record: &[u8]) -> Result<json::Event, CodecError> {
        match self {
            Encoding::Json => Ok(json::decode_event(record)?),
            Encoding::Protobuf => {
                let event = proto::Event::decode(record)?;
                Ok(convert::event_from_proto(&event)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::{Id, TaskId};

    #[test]
    fn both_encodings_round_trip_a_call() {
        let call = json::Call::kill(
            Id::new("fw"),
            json::Kill {
                task_id: TaskId::new("t1"),
                agent_id: Some(Id::new("a1")),
                kill_policy: None,
            },
        );
        for enc in [Encoding::Json, Encoding::Protobuf] {
            let bytes = enc.encode_call(&call).unwrap();
            let back = match enc {
                Encoding::Json => serde_json::from_slice::<json::Call>(&bytes).unwrap(),
                Encoding::Protobuf => {
                    convert::call_from_proto(&proto::Call::decode(&bytes[..]).unwrap()).unwrap()
                }
            };
            assert_eq!(back, call, "{}", enc.name());
        }
    }

    #[test]
    fn operator_calls_round_trip_in_both_encodings() {
        let fid = Id::new("fw");
        let info = json::FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            id: Some(fid.clone()),
            roles: vec!["a".into(), "b".into()],
            failover_timeout: Some(60.0),
            ..Default::default()
        };
        let calls = [
            json::Call::answer_inverse_offers(fid.clone(), true, vec![Id::new("io-1")], 3600.0),
            json::Call::answer_inverse_offers(fid.clone(), false, vec![Id::new("io-2")], 60.0),
            json::Call::acknowledge_operation_status(
                fid.clone(),
                json::AcknowledgeOperationStatus {
                    agent_id: Some(Id::new("a1")),
                    uuid: "PyqcHlt9TiGaDG2OHys8TQ==".into(),
                    operation_id: Id::new("op-1"),
                },
            ),
            json::Call::reconcile_operations(
                fid.clone(),
                vec![json::ReconcileOperation {
                    operation_id: Id::new("op-1"),
                    agent_id: Some(Id::new("a1")),
                }],
            ),
            json::Call::update_framework(info, vec!["b".into()]),
        ];
        for call in calls {
            for enc in [Encoding::Json, Encoding::Protobuf] {
                let bytes = enc.encode_call(&call).unwrap();
                let back = match enc {
                    Encoding::Json => serde_json::from_slice::<json::Call>(&bytes).unwrap(),
                    Encoding::Protobuf => {
                        convert::call_from_proto(&proto::Call::decode(&bytes[..]).unwrap()).unwrap()
                    }
                };
                assert_eq!(back, call, "{}", enc.name());
            }
        }
    }

    #[test]
    fn operator_events_decode_in_both_encodings() {
        let events = [
            serde_json::json!({"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [{
                "id": {"value": "io-1"}, "framework_id": {"value": "fw"}, "agent_id": {"value": "a1"},
                "unavailability": {"start": {"nanoseconds": 1700000000000000000i64},
                                   "duration": {"nanoseconds": 3600000000000i64}}}]}}),
            serde_json::json!({"type": "RESCIND_INVERSE_OFFER",
                "rescind_inverse_offer": {"inverse_offer_id": {"value": "io-1"}}}),
            serde_json::json!({"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": {
                "operation_id": {"value": "op-1"}, "state": "OPERATION_FAILED", "message": "no",
                "uuid": {"value": "PyqcHlt9TiGaDG2OHys8TQ=="}, "agent_id": {"value": "a1"}}}}),
        ];
        for e in events {
            let from_json = Encoding::Json
                .decode_event(e.to_string().as_bytes())
                .unwrap();
            let pb: proto::Event = serde_json::from_value(e.clone()).unwrap();
            let from_pb = Encoding::Protobuf
                .decode_event(&pb.encode_to_vec())
                .unwrap();
            assert_eq!(from_pb, from_json, "{e}");
            assert!(from_json.extra.is_empty(), "{e}: modelled, not extra");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Encoding::Json.decode_event(b"{not json").is_err());
        assert!(Encoding::Protobuf.decode_event(b"\xff\xff\xff").is_err());
    }
}
