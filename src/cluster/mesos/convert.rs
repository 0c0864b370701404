//! Protobuf messages (`proto`) <-> the cluster interface's types (`cluster::types`) and the JSON
//! codec's calls and events (`json`).
//!
//! The protobuf messages serialize to Mesos's JSON shape, so each conversion goes through a
//! `serde_json::Value`: typed fields land in typed fields, and every other modelled field
//! (resource identity: allocation_info, reservation(s), disk, revocable, shared, provider_id,
//! ranges, set; offer url/attributes; status container_status, ...) lands in `extra` and comes
//! back out of it unchanged. `TaskStatus.uuid` becomes standard base64 and back.

use super::{json, proto as pb};
use crate::cluster::types;
use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("mesos: cannot convert to {target}: {source}")]
pub struct ConvertError {
    target: &'static str,
    source: serde_json::Error,
}

fn via_json<A: Serialize, B: DeserializeOwned>(a: &A) -> Result<B, ConvertError> {
    let target = std::any::type_name::<B>();
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|source| ConvertError { target, source })
}

pub fn offer_from_proto(o: &pb::Offer) -> Result<types::Offer, ConvertError> {
    via_json(o)
}

pub fn offer_to_proto(o: &types::Offer) -> Result<pb::Offer, ConvertError> {
    via_json(o)
}

pub fn resource_from_proto(r: &pb::Resource) -> Result<types::Resource, ConvertError> {
    via_json(r)
}

pub fn resource_to_proto(r: &types::Resource) -> Result<pb::Resource, ConvertError> {
    via_json(r)
}

pub fn task_info_from_proto(t: &pb::TaskInfo) -> Result<types::TaskInfo, ConvertError> {
    via_json(t)
}

pub fn task_info_to_proto(t: &types::TaskInfo) -> Result<pb::TaskInfo, ConvertError> {
    via_json(t)
}

pub fn task_status_from_proto(s: &pb::TaskStatus) -> Result<types::TaskStatus, ConvertError> {
    via_json(s)
}

pub fn task_status_to_proto(s: &types::TaskStatus) -> Result<pb::TaskStatus, ConvertError> {
    via_json(s)
}

/// A protobuf event as the JSON codec's `Event` (offers, statuses as `cluster::types`).
pub fn event_from_proto(e: &pb::Event) -> Result<json::Event, ConvertError> {
    via_json(e)
}

/// A JSON-codec call as a protobuf call (payloads not modelled in `proto` are dropped).
pub fn call_to_proto(c: &json::Call) -> Result<pb::Call, ConvertError> {
    via_json(c)
}

pub fn call_from_proto(c: &pb::Call) -> Result<json::Call, ConvertError> {
    via_json(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::{Id, TaskState};

    #[test]
    fn task_status_uuid_is_base64() {
        let s = pb::TaskStatus {
            task_id: pb::Id::new("t"),
            state: pb::TaskState::TaskRunning as i32,
            uuid: Some(vec![0xff; 16]),
            source: Some(pb::TaskStatusSource::SourceExecutor as i32),
            reason: Some(999),
            ..Default::default()
        };
        let t = task_status_from_proto(&s).unwrap();
        assert_eq!(t.state, TaskState::TaskRunning);
        assert_eq!(t.uuid.as_deref(), Some("/////////////////////w=="));
        assert_eq!(t.source.as_deref(), Some("SOURCE_EXECUTOR"));
        // An unknown reason number is dropped (Mesos's JSON does the same).
        assert_eq!(t.reason, None);
        assert_eq!(
            task_status_to_proto(&t).unwrap(),
            pb::TaskStatus { reason: None, ..s }
        );
    }

    #[test]
    fn resource_identity_goes_through_extra() {
        let r = pb::Resource {
            name: "disk".into(),
            r#type: pb::ValueType::Scalar as i32,
            scalar: Some(pb::Scalar { value: 100.0 }),
            reservations: vec![pb::ReservationInfo {
                r#type: Some(pb::ReservationType::Dynamic as i32),
                role: Some("batch".into()),
                principal: Some("p".into()),
                labels: None,
            }],
            disk: Some(pb::DiskInfo {
                persistence: Some(pb::Persistence {
                    id: "vol-1".into(),
                    principal: None,
                }),
                volume: Some(pb::Volume {
                    container_path: "data".into(),
                    mode: pb::VolumeMode::Rw as i32,
                    ..Default::default()
                }),
                source: Some(pb::DiskSource {
                    r#type: pb::DiskSourceType::Mount as i32,
                    mount: Some(pb::DiskSourcePath {
                        root: Some("/mnt/d1".into()),
                    }),
                    ..Default::default()
                }),
            }),
            revocable: Some(pb::RevocableInfo {}),
            shared: Some(pb::SharedInfo {}),
            provider_id: Some(pb::Id::new("rp")),
            allocation_info: Some(pb::AllocationInfo {
                role: Some("batch".into()),
            }),
            ..Default::default()
        };
        let t = resource_from_proto(&r).unwrap();
        assert_eq!(t.extra["disk"]["source"]["type"], "MOUNT");
        assert_eq!(t.extra["reservations"][0]["type"], "DYNAMIC");
        let carved = t.with_value(10.0);
        let back = resource_to_proto(&carved).unwrap();
        assert_eq!(back.scalar, Some(pb::Scalar { value: 10.0 }));
        assert_eq!(
            pb::Resource {
                scalar: r.scalar.clone(),
                ..back
            },
            r
        );
    }

    #[test]
    fn task_info_round_trip() {
        let t: types::TaskInfo = serde_json::from_value(serde_json::json!({
            "name": "n", "task_id": {"value": "t"}, "agent_id": {"value": "a"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5},
                           "allocation_info": {"role": "*"}}],
            "command": {"shell": false, "value": "/bin/true", "arguments": ["true", "x"],
                        "uris": [{"value": "http://x/y.tgz", "extract": true}],
                        "environment": {"variables": [{"name": "A", "value": "1"}]}},
            "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER",
                          "docker": {"name": "alpine"}}}},
            "labels": {"labels": [{"key": "k", "value": "v"}]},
            "kill_policy": {"grace_period": {"nanoseconds": 3000000000i64}},
            "max_completion_time": {"nanoseconds": 60000000000i64},
            "data": "aGVsbG8="
        }))
        .unwrap();
        let p = task_info_to_proto(&t).unwrap();
        assert_eq!(p.data.as_deref(), Some(&b"hello"[..]));
        assert_eq!(p.command.as_ref().unwrap().shell, Some(false));
        assert_eq!(task_info_from_proto(&p).unwrap(), t);
        let bytes = prost::Message::encode_to_vec(&p);
        let again: pb::TaskInfo = prost::Message::decode(&bytes[..]).unwrap();
        assert_eq!(again, p);
        assert_eq!(t.task_id, Id::new("t"));
    }
}
